//! The server-rendered pages: the customer's steps of KB3185444 as plain HTML forms,
//! written in `maud`.
//!
//! "Check ID" renders the `PartnerCheck` twice: as text for the customer (name,
//! location, the partner being replaced), and as JSON in a hidden form field that
//! "Submit" posts back. The service re-verifies everything at submit, so a forged field
//! changes nothing but the error shown.
//!
//! "Check ID" with the Microsoft Partner ID field cleared is the KB's removal gesture:
//! the pane shows the current partner and a "Remove" confirmation, which carries the
//! version of the subscription it showed: "Remove" on a page older than the partner of
//! record removes nothing ([`PorService::remove_partner_if_unchanged`]).
//!
//! A partner's quick link (`/link?subscription=...&mpn_id=...`, a
//! [`PartnerLink`]) opens the pane with the partner checked, ready to submit.
//!
//! [`PorService::remove_partner_if_unchanged`]: dpor::PorService::remove_partner_if_unchanged
//!
//! Every form carries the session's CSRF token ([`csrf_field`]); the
//! [`guard`](mod@crate::guard) checks it before any handler here runs.

use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use dpor::actor::Operation;
use dpor::link::PartnerLink;
use dpor::{
    Access, Action, Actor, AssociationEventKind, Cause, Clock, CustomerId, CustomerRole, Error,
    MpnId, Notification, NotificationKind, PartnerCheck, PartnerDirectory, PartnerOfRecord,
    RemovalReason, Store, Subscription, SubscriptionId, UserRef,
};
use maud::{Markup, html};
use serde::Deserialize;

use crate::app::{self, AppState, Shared, classify, describe, role_key, when};
use crate::layout::{self, Header, PathSegment, csrf_field};
use crate::session::{Session, SessionCookie, Who};
use crate::{api, guard};

/// The roles offered on the sign-in page: (form value, label).
const ROLES: [(&str, &str); 4] = [
    ("global_administrator", "Global administrator"),
    ("billing_administrator", "Billing administrator"),
    ("service_administrator", "Service administrator"),
    (
        "delegated_administrator",
        "Delegated administrator (a partner)",
    ),
];

type Crumbs = Vec<(String, Option<String>)>;

/// The navigation for `who`: (id, label, link).
fn nav(who: Option<&Who>) -> Vec<(&'static str, &'static str, &'static str)> {
    let outbox = ("nav-outbox", "Outbox", "/outbox");
    match who {
        Some(Who::Actor(Actor::Customer { .. })) => vec![
            (
                "nav-subscriptions",
                "Billing › Subscriptions",
                "/subscriptions",
            ),
            outbox,
        ],
        Some(Who::Actor(_)) => vec![
            ("nav-subscriptions", "My customers", "/subscriptions"),
            outbox,
        ],
        Some(Who::Operator) => vec![outbox],
        None => Vec::new(),
    }
}

/// Renders a page with `status` for the visitor of `session`.
fn render(
    session: Option<&Session>,
    status: StatusCode,
    title: &str,
    crumbs: &[(String, Option<String>)],
    body: Markup,
) -> Response {
    let who = session.and_then(|s| s.who.as_ref());
    let header = Header {
        session,
        who: who.map(describe),
        nav: nav(who),
        crumbs,
    };
    (status, Html(layout::page(title, &header, body))).into_response()
}

/// A page that went as it should (200).
fn page(session: &Session, title: &str, crumbs: &[(String, Option<String>)], body: Markup) -> Page {
    Ok(render(Some(session), StatusCode::OK, title, crumbs, body))
}

/// A page that only says what went wrong.
pub fn error_response(session: Option<&Session>, status: StatusCode, message: &str) -> Response {
    let body = html! {
        div.notice id="error" role="alert" { (message) }
        p { a href="/subscriptions" { "Back to the subscriptions" } }
    };
    let title = status.canonical_reason().unwrap_or("Error");
    render(session, status, title, &[], body)
}

/// A response that ends a handler early (a redirect, an error page), boxed so that
/// handlers can use `?` and their `Result` stays small.
pub struct EarlyResponse(Box<Response>);

impl From<Response> for EarlyResponse {
    fn from(response: Response) -> Self {
        EarlyResponse(Box::new(response))
    }
}

impl IntoResponse for EarlyResponse {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// What a page handler returns.
type Page = Result<Response, EarlyResponse>;

/// The path's subscription id, or a 400 page saying why it is none.
fn path_id(
    session: &Session,
    path: Result<Path<String>, PathRejection>,
) -> Result<SubscriptionId, EarlyResponse> {
    app::path_id(path)
        .map_err(|message| error_response(Some(session), StatusCode::BAD_REQUEST, &message).into())
}

/// The error page for what the service refused, for `map_err`.
fn service_error(session: &Session) -> impl Fn(Error) -> EarlyResponse + '_ {
    move |error| error_response(Some(session), classify(&error).0, &error.to_string()).into()
}

fn redirect_with(to: &str, set_cookie: String) -> Response {
    ([(header::SET_COOKIE, set_cookie)], Redirect::to(to)).into_response()
}

fn subscription_url(id: &SubscriptionId) -> String {
    format!("/subscriptions/{}", PathSegment(id))
}

fn crumbs(subscription: Option<&Subscription>, last: Option<&str>) -> Crumbs {
    let mut crumbs = vec![
        ("Billing".to_owned(), None),
        (
            "Subscriptions".to_owned(),
            Some("/subscriptions".to_owned()),
        ),
    ];
    if let Some(s) = subscription {
        let link = last.map(|_| subscription_url(s.id()));
        crumbs.push((s.name().to_owned(), link));
    }
    if let Some(last) = last {
        crumbs.push((last.to_owned(), None));
    }
    crumbs
}

/// The links under a change's confirmation: back to the subscription, or to the outbox.
fn after_change_links(subscription: &Subscription) -> Markup {
    html! {
        p {
            a id="back-to-subscription" href=(subscription_url(subscription.id())) {
                "Back to " (subscription.name())
            }
            " · "
            a id="open-outbox" href="/outbox" { "Open the outbox" }
        }
    }
}

fn action_label(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::AddPartnerOfRecord => ("action-add", "Add partner of record"),
        Action::EditPartnerOfRecord => ("action-edit", "Edit partner of record"),
        Action::RemovePartnerOfRecord => ("action-remove", "Remove partner of record"),
    }
}

fn por_cell(subscription: &Subscription) -> Markup {
    html! {
        @match subscription.partner_of_record() {
            Some(por) => { (por.partner_name()) " " span.muted { "(" (por.mpn_id()) ")" } }
            None => { span.muted { "none" } }
        }
    }
}

fn status_cell(subscription: &Subscription) -> Markup {
    let status = subscription.status();
    html! { span class=(format!("status-{status}")) { (status) } }
}

fn describe_event(kind: &AssociationEventKind) -> String {
    match kind {
        AssociationEventKind::PartnerAssociated {
            partner,
            partner_name,
            program,
            replaced,
        } => {
            let mut text = format!(
                "{partner_name} ({partner}) became partner of record for the {program} program"
            );
            if let Some(replaced) = replaced {
                text.push_str(&format!(", replacing {replaced}"));
            }
            text
        }
        AssociationEventKind::PartnerRemoved { partner, reason } => match reason {
            RemovalReason::RemovedByCustomer => {
                format!("{partner} was removed as partner of record by the customer")
            }
            RemovalReason::ReplacedBy(next) => format!("{partner} was replaced by {next}"),
            _ => format!("{partner} stopped being partner of record"),
        },
        AssociationEventKind::SubscriptionSuspended { .. } => {
            "the subscription was suspended".to_owned()
        }
        AssociationEventKind::SubscriptionReactivated { .. } => {
            "the subscription was reactivated".to_owned()
        }
        AssociationEventKind::SubscriptionCancelled { .. } => {
            "the subscription was cancelled".to_owned()
        }
        AssociationEventKind::SubscriptionMigrated { to } => {
            format!("the subscription was migrated to {to}")
        }
        _ => "the subscription changed".to_owned(),
    }
}

/// Who caused an event: "alice@contoso.example (global administrator)", "a global
/// administrator" (the user not named, or not shown to this reader), "the billing
/// system", "not recorded".
fn describe_cause(cause: &Cause) -> String {
    match cause {
        Cause::Customer {
            role,
            user: Some(user),
        } => format!("{user} ({role})"),
        Cause::Customer { role, user: None } => format!("a {role}"),
        Cause::BillingSystem => "the billing system".to_owned(),
        _ => "not recorded".to_owned(),
    }
}

/// One email of the outbox. The partner's address is shown to the operator and to the
/// partner itself, not to the customer.
fn notification_row(n: &Notification, show_address: bool) -> Markup {
    let subject = match n.kind {
        NotificationKind::Added => "You are now the partner of record",
        NotificationKind::Removed => "You are no longer the partner of record",
        _ => "Your partner-of-record status changed",
    };
    html! {
        tr data-notification=(n.id) {
            td.nowrap { (when(n.at)) }
            td {
                @if show_address {
                    (n.contact_email.as_deref().unwrap_or("(no contact email on file)")) br;
                }
                span.muted { "partner " (n.partner) }
            }
            td { (subject) " for " (n.customer) "'s " (n.service) " subscription " (n.subscription) }
            td.muted.nowrap { (n.id) }
        }
    }
}

fn error_line(id: &str, error: Option<&String>) -> Markup {
    html! {
        @if let Some(message) = error { p.error id=(id) role="alert" { (message) } }
    }
}

/// The largest `Set-Cookie` a session may take: browsers keep cookies of up to 4,096
/// bytes (name, value and attributes), and drop larger ones silently.
const MAX_COOKIE_BYTES: usize = 4096;

/// The sign-in forms' fields (three forms post here, told apart by `kind`).
#[derive(Deserialize)]
pub struct SignInForm {
    kind: String,
    #[serde(default)]
    customer: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    delegated_partner: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    mpn_id: String,
    #[serde(default)]
    operator_token: String,
}

/// What the sign-in page shows next to its fields after a failed attempt.
#[derive(Default)]
struct SignInState {
    notice: Option<String>,
    customer: Option<String>,
    role: Option<String>,
    delegated_partner: String,
    delegated_error: Option<String>,
    user: String,
    user_error: Option<String>,
    customer_error: Option<String>,
    mpn_id: String,
    mpn_error: Option<String>,
    operator_error: Option<String>,
}

/// "Check ID": what was typed.
#[derive(Deserialize)]
pub struct CheckForm {
    #[serde(default)]
    mpn_id: String,
}

/// "Submit": the check from the hidden field.
#[derive(Deserialize)]
pub struct SubmitForm {
    #[serde(default)]
    check: String,
}

/// The title of a partner's list of subscriptions.
const PORTFOLIO: &str = "Where you are partner of record";

/// "Remove": the version of the subscription the question showed.
#[derive(Deserialize)]
pub struct RemoveForm {
    version: u64,
}

/// The partner of record a removal by `actor` would take off `s`, or why the service
/// would refuse it: the service's own rules ([`Actor::may_attempt`],
/// [`Actor::authorize`], [`Subscription::remove_partner`]) asked without changing
/// anything, so that the question is put only to someone it could be put to.
fn removal_of<'a>(
    actor: &Actor,
    s: &'a Subscription,
    clock: &impl Clock,
) -> Result<&'a PartnerOfRecord, Error> {
    actor.may_attempt(Operation::ChangePartner)?;
    actor.authorize(s, Access::Change)?;
    s.remove_partner(clock.now())?;
    s.partner_of_record()
        .ok_or_else(|| Error::NoPartnerOfRecord(s.id().clone()))
}

/// What the Partner information pane shows.
struct Pane<'a> {
    session: &'a Session,
    subscription: &'a Subscription,
    actor: &'a Actor,
    typed: &'a str,
    error: Option<String>,
    check: Option<&'a PartnerCheck>,
    /// The field was cleared and "Check ID" pressed: confirm the removal of this partner.
    removing: Option<&'a PartnerOfRecord>,
}

impl<'a> Pane<'a> {
    fn new(
        session: &'a Session,
        subscription: &'a Subscription,
        actor: &'a Actor,
        typed: &'a str,
    ) -> Self {
        Pane {
            session,
            subscription,
            actor,
            typed,
            error: None,
            check: None,
            removing: None,
        }
    }

    /// The pane again, saying why the form posted to it could not be read.
    fn unreadable(self, rejection: &FormRejection) -> Response {
        let message = format!("the form could not be read: {}", rejection.body_text());
        self.failed(message, StatusCode::BAD_REQUEST)
    }

    /// The pane after "Check ID": the partner checked, ready for "Submit", or why
    /// not, next to the field.
    fn checked(self, checked: Result<PartnerCheck, Error>) -> Response {
        match checked {
            Ok(check) => Pane {
                check: Some(&check),
                typed: check.partner().mpn_id().as_str(),
                ..self
            }
            .render(StatusCode::OK),
            Err(e) => self.refused(&e),
        }
    }

    /// The pane answered with the service's refusal `e` next to the field.
    fn refused(self, e: &Error) -> Response {
        self.failed(e.to_string(), classify(e).0)
    }

    /// The pane answered with `status` and `message` next to the field.
    fn failed(self, message: String, status: StatusCode) -> Response {
        Pane {
            error: Some(message),
            ..self
        }
        .render(status)
    }

    fn render(self, status: StatusCode) -> Response {
        let s = self.subscription;
        let actions = s.actions_for(self.actor);
        let title = if s.partner_of_record().is_some() {
            "Edit partner of record"
        } else {
            "Add partner of record"
        };
        let may_change = actions.contains(&Action::AddPartnerOfRecord)
            || actions.contains(&Action::EditPartnerOfRecord);
        let body = html! {
            section.pane id="partner-pane" {
                h2 { "Partner information" }
                @match s.partner_of_record() {
                    Some(por) => p id="current-partner" {
                        "Current Microsoft Partner ID: " strong id="current-mpn-id" { (por.mpn_id()) }
                        " · " (por.partner_name()) " " span.muted { "since " (when(por.since())) }
                    },
                    None => p.muted id="current-partner" { "This subscription has no partner of record." },
                }
                @if may_change {
                    (self.form())
                } @else {
                    (error_line("mpn-id-error", self.error.as_ref()))
                    p.notice id="view-only" {
                        "You can view the partner of record. Only the customer's global administrator can change it, and only while the subscription is active."
                    }
                }
            }
        };
        render(
            Some(self.session),
            status,
            title,
            &crumbs(Some(s), Some(title)),
            body,
        )
    }

    /// The "Check ID" form and, after a check, what was found and "Submit" (or, after
    /// an empty check, the removal confirmation).
    fn form(&self) -> Markup {
        let url = subscription_url(self.subscription.id());
        let invalid = self.error.is_some();
        html! {
            p.muted {
                "Type the Microsoft Partner ID (MPN ID) your partner gave you, then check it. To remove the partner of record, clear the field and check."
            }
            form method="post" action={ (url) "/partner-of-record/check" } {
                (csrf_field(self.session))
                label for="mpn-id" { "Microsoft Partner ID" }
                div.row {
                    input type="text" id="mpn-id" name="mpn_id" value=(self.typed)
                        inputmode="numeric" autocomplete="off"
                        aria-invalid=[invalid.then_some("true")]
                        aria-describedby=[invalid.then_some("mpn-id-error")];
                    button id="check-id" { "Check ID" }
                }
                (error_line("mpn-id-error", self.error.as_ref()))
            }
            @if let Some(check) = self.check { (self.found(check, &url)) }
            @if let Some(por) = self.removing {
                (removal(self.session, self.subscription, por))
            }
        }
    }

    fn found(&self, check: &PartnerCheck, url: &str) -> Markup {
        let partner = check.partner();
        let replaced = check.current().filter(|_| !check.is_current());
        html! {
            div.found id="partner-found" {
                dl.facts {
                    dt { "Partner name" } dd id="partner-name" { (partner.name()) }
                    dt { "Location" } dd id="partner-location" { (partner.location().unwrap_or("not listed")) }
                    dt { "Microsoft Partner ID" } dd id="partner-mpn-id" { (partner.mpn_id()) }
                    dt { "Program" } dd { (check.program()) }
                    @if let Some(current) = replaced {
                        dt { "Replaces" }
                        dd id="partner-replaced" { (current.partner_name()) " (" (current.mpn_id()) ")" }
                    }
                }
            }
            @if check.is_current() {
                p.muted id="already-current" {
                    "This partner already is the partner of record: submitting changes nothing."
                }
            }
            @match serde_json::to_string(check) {
                Ok(json) => form method="post" action={ (url) "/partner-of-record" } {
                    (csrf_field(self.session))
                    input type="hidden" name="check" value=(json);
                    div.row {
                        button.primary id="submit" { "Submit" }
                        a href=(url) { "Cancel" }
                    }
                },
                Err(e) => p.error { "the check could not be prepared: " (e) },
            }
        }
    }
}

/// "Remove {partner} as the partner of record?" and its "Remove" button.
fn removal(session: &Session, s: &Subscription, por: &PartnerOfRecord) -> Markup {
    let url = subscription_url(s.id());
    html! {
        section.pane id="remove-pane" {
            h2 { "Remove partner of record" }
            p id="remove-question" {
                "Remove " strong id="remove-partner-name" { (por.partner_name()) }
                " (" span id="remove-mpn-id" { (por.mpn_id()) } ") as the partner of record of "
                (s.name()) "? The partner is told by email. You can add a partner again at any time."
            }
            form method="post" action={ (url) "/partner-of-record/remove" } {
                (csrf_field(session))
                // What the question showed: "Remove" refuses if it changed since.
                input type="hidden" name="version" value=(s.version());
                div.row {
                    button.danger id="confirm-remove" { "Remove" }
                    a href=(url) { "Cancel" }
                }
            }
        }
    }
}

/// Whether `typed` is the KB's removal gesture: nothing but spaces.
fn cleared(typed: &str) -> bool {
    typed.trim().is_empty()
}

impl<R, D, C> AppState<R, D, C>
where
    R: Store + 'static,
    D: PartnerDirectory + 'static,
    C: Clock + 'static,
{
    /// The visitor's session, when its cookie is valid.
    fn session(&self, headers: &HeaderMap) -> Option<Session> {
        self.config.sessions.read(headers).session()
    }

    /// The signed-in actor and its session; else a redirect to sign in (the operator
    /// to the outbox, the only page it acts on).
    fn require_actor(&self, headers: &HeaderMap) -> Result<(Session, Actor), EarlyResponse> {
        let to = |path| Err(Redirect::to(path).into_response().into());
        let Some(session) = self.session(headers) else {
            return to("/");
        };
        match &session.who {
            Some(Who::Actor(actor)) => {
                let actor = actor.clone();
                Ok((session, actor))
            }
            Some(Who::Operator) => to("/outbox"),
            None => to("/"),
        }
    }

    /// Where a subscription's page starts: the session, the actor, the path's id, and
    /// the subscription as the actor sees it; else a redirect or an error page.
    async fn open_subscription(
        &self,
        headers: &HeaderMap,
        path: Result<Path<String>, PathRejection>,
    ) -> Result<(Session, Actor, SubscriptionId, Subscription), EarlyResponse> {
        let (session, actor) = self.require_actor(headers)?;
        let id = path_id(&session, path)?;
        let s = self.read_subscription(&session, &actor, &id).await?;
        Ok((session, actor, id, s))
    }

    /// Subscription `id` as `actor` may read it, or the page saying why not.
    async fn read_subscription(
        &self,
        session: &Session,
        actor: &Actor,
        id: &SubscriptionId,
    ) -> Result<Subscription, EarlyResponse> {
        (self.service.subscription(actor, id).await).map_err(service_error(session))
    }

    /// `GET /`: the demo sign-in, "pick who you are". A visitor without a valid session
    /// gets a new one (so that the sign-in forms carry a CSRF token).
    pub async fn sign_in_page(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
    ) -> Response {
        let (session, notice) = match state.config.sessions.read(&headers) {
            SessionCookie::Valid(session) => {
                return state.sign_in_html(&session, SignInState::default(), StatusCode::OK);
            }
            SessionCookie::Missing => (Session::new(None), None),
            SessionCookie::Invalid => (
                Session::new(None),
                Some(
                    "Your session could not be read, so you are signed out. Pick who you are again."
                        .to_owned(),
                ),
            ),
        };
        let view = SignInState {
            notice,
            ..SignInState::default()
        };
        let mut response = state.sign_in_html(&session, view, StatusCode::OK);
        if let Ok(value) = state.config.sessions.set_cookie(&session).parse() {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        response
    }

    fn sign_in_html(&self, session: &Session, view: SignInState, status: StatusCode) -> Response {
        let actor = session.actor();
        let (current_customer, current_role) = match actor {
            Some(Actor::Customer { customer, role, .. }) => {
                (Some(customer.as_str()), Some(role_key(role)))
            }
            _ => (None, None),
        };
        let chosen_customer = view.customer.as_deref().or(current_customer);
        let chosen_role = view
            .role
            .as_deref()
            .or(current_role)
            .unwrap_or("global_administrator");
        let body = html! {
            @if let Some(notice) = &view.notice { div.notice id="notice" { (notice) } }
            @if let Some(who) = &session.who {
                div.success id="signed-in" {
                    "You are signed in as " strong { (describe(who)) } ". Continue to "
                    @match who {
                        Who::Actor(Actor::Customer { .. }) => a id="continue" href="/subscriptions" { "Billing › Subscriptions" },
                        Who::Actor(_) => a id="continue" href="/subscriptions" { "the subscriptions you are partner of record for" },
                        Who::Operator => a id="continue" href="/outbox" { "the outbox" },
                    }
                    ", or sign in as someone else below."
                }
            }
            p { "This is a demo: customers and partners have no password. Pick who you are; the choice is kept in a signed session cookie." }
            div.grid {
                section.card {
                    h2 { "A customer's user" }
                    form method="post" action="/sign-in" id="customer-sign-in" {
                        (csrf_field(session))
                        input type="hidden" name="kind" value="customer";
                        label for="customer" { "Customer (tenant)" }
                        select id="customer" name="customer" {
                            @for (i, c) in self.config.customers.iter().enumerate() {
                                @let selected = match chosen_customer {
                                    Some(chosen) => chosen == c.as_str(),
                                    None => i == 0,
                                };
                                option value=(c) selected[selected] { (c) }
                            }
                        }
                        (error_line("customer-error", view.customer_error.as_ref()))
                        label for="role" { "Role" }
                        select id="role" name="role" {
                            @for (value, label) in ROLES {
                                option value=(value) selected[value == chosen_role] { (label) }
                            }
                        }
                        label for="delegated-partner" { "Partner ID of the delegated administrator" }
                        input type="text" id="delegated-partner" name="delegated_partner"
                            value=(view.delegated_partner) placeholder="only for a delegated administrator" autocomplete="off";
                        (error_line("delegated-partner-error", view.delegated_error.as_ref()))
                        label for="user" { "Your user name (optional; recorded with your changes)" }
                        input type="text" id="user" name="user" value=(view.user)
                            placeholder="alice@contoso.example" autocomplete="off";
                        (error_line("user-error", view.user_error.as_ref()))
                        p { button.primary id="sign-in" { "Sign in" } }
                    }
                }
                section.card {
                    h2 { "A partner" }
                    form method="post" action="/sign-in" id="partner-sign-in" {
                        (csrf_field(session))
                        input type="hidden" name="kind" value="partner";
                        label for="partner-mpn-id" { "Microsoft Partner ID" }
                        input type="text" id="partner-mpn-id" name="mpn_id" value=(view.mpn_id)
                            inputmode="numeric" autocomplete="off";
                        (error_line("partner-mpn-id-error", view.mpn_error.as_ref()))
                        p { button id="sign-in-partner" { "Sign in as this partner" } }
                    }
                    p.muted { "Partners of the demo: 565380 Fabrikam Consulting, 3664167 Northwind Traders, 4412040 Adventure Works Cloud (Usage program only)." }
                    h2 { "The portal's operator" }
                    form method="post" action="/sign-in" id="operator-sign-in" {
                        (csrf_field(session))
                        input type="hidden" name="kind" value="operator";
                        label for="operator-token" { "Operator token" }
                        input type="password" id="operator-token" name="operator_token" autocomplete="off";
                        (error_line("operator-token-error", view.operator_error.as_ref()))
                        p { button id="sign-in-operator" { "Sign in as the operator" } }
                    }
                    p.muted { "The token is in PORTAL_OPERATOR_TOKEN, or printed when the portal starts." }
                }
            }
        };
        render(Some(session), status, "Who are you?", &[], body)
    }

    /// `POST /sign-in`: starts a new session for who was picked, and goes back to `/`.
    pub async fn sign_in(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        form: Result<Form<SignInForm>, FormRejection>,
    ) -> Response {
        // The guard let the form in: it carried this session's token.
        let current = state
            .session(&headers)
            .unwrap_or_else(|| Session::new(None));
        let Ok(Form(form)) = form else {
            return error_response(
                Some(&current),
                StatusCode::BAD_REQUEST,
                "the sign-in form could not be read",
            );
        };
        let mut view = SignInState {
            customer: Some(form.customer.clone()),
            role: Some(form.role.clone()),
            delegated_partner: form.delegated_partner.clone(),
            user: form.user.clone(),
            mpn_id: form.mpn_id.clone(),
            ..SignInState::default()
        };
        let who = match form.kind.as_str() {
            "customer" => match customer_actor(&form) {
                Ok(actor) => Who::Actor(actor),
                Err((field, message)) => {
                    *match field {
                        Field::Customer => &mut view.customer_error,
                        Field::Delegated => &mut view.delegated_error,
                        Field::User => &mut view.user_error,
                    } = Some(message);
                    return state.sign_in_html(&current, view, StatusCode::BAD_REQUEST);
                }
            },
            "partner" => match MpnId::parse(&form.mpn_id) {
                Ok(mpn_id) => Who::Actor(Actor::partner(mpn_id)),
                Err(e) => {
                    view.mpn_error = Some(e.to_string());
                    return state.sign_in_html(&current, view, StatusCode::BAD_REQUEST);
                }
            },
            "operator" => {
                if !state.config.is_operator_token(&form.operator_token) {
                    view.operator_error = Some("that is not the operator token".to_owned());
                    return state.sign_in_html(&current, view, StatusCode::FORBIDDEN);
                }
                Who::Operator
            }
            _ => {
                return error_response(
                    Some(&current),
                    StatusCode::BAD_REQUEST,
                    "the sign-in form could not be read",
                );
            }
        };
        // A new session, with a new token: nothing of the signed-out one carries over.
        let session = Session::new(Some(who));
        let cookie = state.config.sessions.set_cookie(&session);
        // A browser drops a cookie larger than 4 KB without a word: the visitor would
        // stay signed out, not knowing why.
        if cookie.len() > MAX_COOKIE_BYTES {
            let message = "this customer id and user name are too long to keep in a session: use shorter ones".to_owned();
            if form.user.trim().is_empty() {
                view.customer_error = Some(message);
            } else {
                view.user_error = Some(message);
            }
            return state.sign_in_html(&current, view, StatusCode::BAD_REQUEST);
        }
        redirect_with("/", cookie)
    }

    /// `POST /sign-out`: a new, signed-out session.
    pub async fn sign_out(State(state): State<Shared<R, D, C>>) -> Response {
        redirect_with("/", state.config.sessions.set_cookie(&Session::new(None)))
    }

    /// `GET /subscriptions`: Billing > Subscriptions (a partner sees where it is partner
    /// of record).
    pub async fn subscriptions_page(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
    ) -> Page {
        let (session, actor) = state.require_actor(&headers)?;
        let customer = matches!(actor, Actor::Customer { .. });
        let (title, list) = if customer {
            ("Subscriptions", state.service.subscriptions(&actor).await)
        } else {
            (PORTFOLIO, state.service.partner_portfolio(&actor).await)
        };
        let list = list.map_err(service_error(&session))?;
        let body = html! {
            table id="subscriptions" {
                thead { tr { th { "Subscription" } th { "Service" } th { "Status" } th { "Partner of record" } th { "ID" } } }
                tbody {
                    @for s in &list {
                        tr {
                            @let href = if customer {
                                subscription_url(s.id())
                            } else {
                                // A partner reads the history, not the subscription.
                                format!("{}/history", subscription_url(s.id()))
                            };
                            td { a data-subscription=(s.id()) href=(href) { (s.name()) } }
                            td { (s.service()) }
                            td { (status_cell(s)) }
                            td { (por_cell(s)) }
                            td.muted.nowrap { (s.id()) }
                        }
                    }
                    @if list.is_empty() { tr { td colspan="5" .muted { "No subscriptions." } } }
                }
            }
        };
        let crumbs = if customer {
            crumbs(None, None)
        } else {
            Vec::new()
        };
        page(&session, title, &crumbs, body)
    }

    /// `GET /subscriptions/{id}`: the subscription and its "More Actions" (the KB's
    /// words).
    pub async fn subscription_page(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        path: Result<Path<String>, PathRejection>,
    ) -> Page {
        let (session, actor, _, s) = state.open_subscription(&headers, path).await?;
        let url = subscription_url(s.id());
        let actions = s.actions_for(&actor);
        let body = html! {
            @if actions.is_empty() {
                p.muted id="no-actions" {
                    "No actions: only the customer's global administrator can change the partner of record, and only while the subscription is active."
                }
            } @else {
                details.menu id="more-actions" {
                    summary id="more-actions-toggle" { "More Actions" }
                    ul {
                        @for action in actions {
                            @let (anchor, label) = action_label(action);
                            @let target = match action {
                                Action::RemovePartnerOfRecord => "partner-of-record/remove",
                                _ => "partner-of-record",
                            };
                            li { a id=(anchor) href={ (url) "/" (target) } { (label) } }
                        }
                    }
                }
            }
            section.card id="subscription" {
                dl.facts {
                    dt { "Subscription ID" } dd id="subscription-id" { (s.id()) }
                    dt { "Service" } dd { (s.service()) }
                    dt { "Customer" } dd { (s.customer()) }
                    dt { "Status" } dd { (status_cell(&s)) }
                    dt { "Partner of record" } dd id="partner-of-record" { (por_cell(&s)) }
                }
            }
            p { a id="history" href={ (url) "/history" } { "History of the partner of record" } }
        };
        page(&session, s.name(), &crumbs(Some(&s), None), body)
    }

    /// `GET /subscriptions/{id}/partner-of-record`: the Partner information pane
    /// ("Add" or "Edit partner of record"); "Edit" shows the current MPN ID.
    pub async fn partner_pane(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        path: Result<Path<String>, PathRejection>,
    ) -> Page {
        let (session, actor, _, s) = state.open_subscription(&headers, path).await?;
        let typed = s
            .partner_of_record()
            .map(|p| p.mpn_id().to_string())
            .unwrap_or_default();
        Ok(Pane::new(&session, &s, &actor, &typed).render(StatusCode::OK))
    }

    /// `GET /link?subscription=...&mpn_id=...`: a partner's quick link
    /// ([`PartnerLink`]). It opens the subscription's Partner information pane with the
    /// partner checked ("Check ID" with the link's partner ID), ready for "Submit": the
    /// customer sees the partner's name and confirms, as after typing the ID. A link
    /// that does not read, or a check that fails, is said on the page; nothing changes
    /// until "Submit".
    pub async fn partner_link(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        uri: Uri,
    ) -> Page {
        let (session, actor) = state.require_actor(&headers)?;
        let link = PartnerLink::parse(uri.query().unwrap_or_default()).map_err(|e| {
            let message = match std::error::Error::source(&e) {
                Some(why) => format!("this partner link cannot be used: {e}: {why}"),
                None => format!("this partner link cannot be used: {e}"),
            };
            EarlyResponse::from(error_response(
                Some(&session),
                StatusCode::BAD_REQUEST,
                &message,
            ))
        })?;
        let s = state
            .read_subscription(&session, &actor, &link.subscription)
            .await?;
        let typed = link.mpn_id.to_string();
        let checked = state
            .service
            .check_partner(&actor, &link.subscription, &typed)
            .await;
        Ok(Pane::new(&session, &s, &actor, &typed).checked(checked))
    }

    /// `POST /subscriptions/{id}/partner-of-record/check`: "Check ID". With the field
    /// cleared, on a subscription that has a partner of record, it asks to confirm the
    /// removal (KB3185444: "deleting the MPN ID and clicking the check button"), or
    /// says why the actor cannot remove it (the service's own rules, asked without
    /// changing anything).
    pub async fn check_form(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        path: Result<Path<String>, PathRejection>,
        form: Result<Form<CheckForm>, FormRejection>,
    ) -> Page {
        let (session, actor, id, s) = state.open_subscription(&headers, path).await?;
        let pane = Pane::new(&session, &s, &actor, "");
        let typed = match form {
            Ok(Form(form)) => form.mpn_id,
            Err(e) => return Ok(pane.unreadable(&e)),
        };
        // The removal gesture, on a subscription that has a partner to remove (with
        // none, an empty field is the usual "enter the ID").
        if cleared(&typed) && s.partner_of_record().is_some() {
            return Ok(match removal_of(&actor, &s, state.service.clock()) {
                Ok(por) => Pane {
                    removing: Some(por),
                    ..pane
                }
                .render(StatusCode::OK),
                Err(e) => pane.refused(&e),
            });
        }
        let checked = state.service.check_partner(&actor, &id, &typed).await;
        Ok(Pane {
            typed: &typed,
            ..pane
        }
        .checked(checked))
    }

    /// `POST /subscriptions/{id}/partner-of-record`: "Submit", then the confirmation.
    pub async fn submit_form(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        path: Result<Path<String>, PathRejection>,
        form: Result<Form<SubmitForm>, FormRejection>,
    ) -> Page {
        let (session, actor, id, s) = state.open_subscription(&headers, path).await?;
        let pane = Pane::new(&session, &s, &actor, "");
        let raw = match form {
            Ok(Form(form)) => form.check,
            Err(e) => return Ok(pane.unreadable(&e)),
        };
        let Ok(check) = serde_json::from_str::<PartnerCheck>(&raw) else {
            return Ok(pane.failed(
                "the partner check could not be read; check the partner ID again".to_owned(),
                StatusCode::BAD_REQUEST,
            ));
        };
        let typed = check.partner().mpn_id().to_string();
        let pane = Pane {
            typed: &typed,
            ..pane
        };
        if check.subscription() != &id {
            return Ok(pane.failed(
                format!(
                    "this check is for subscription {}, not {id}; check the partner ID again",
                    check.subscription()
                ),
                StatusCode::BAD_REQUEST,
            ));
        }
        let receipt = match state.service.submit(&actor, &check).await {
            Ok(receipt) => receipt,
            Err(e) => return Ok(pane.refused(&e)),
        };
        let after = &receipt.subscription;
        let who = html! {
            @match after.partner_of_record() {
                Some(por) => { strong { (por.partner_name()) } " (" (por.mpn_id()) ")" }
                None => { "nobody" }
            }
        };
        let body = html! {
            div.success id="confirmation" {
                @if receipt.changed {
                    strong { "Your partner of record has been updated." } " " (who)
                    " is now the partner of record of " (after.name()) "."
                } @else {
                    strong { "Nothing changed:" } " " (who)
                    " already is the partner of record of " (after.name()) "."
                }
            }
            @if receipt.changed {
                p id="emails" {
                    "Emails to the partners: " (receipt.notifications_delivered) " sent, "
                    (receipt.notifications_pending) " waiting in the outbox."
                }
            }
            (after_change_links(after))
        };
        page(
            &session,
            "Partner of record",
            &crumbs(Some(after), Some("Partner of record")),
            body,
        )
    }

    /// `GET /subscriptions/{id}/partner-of-record/remove`: asks for confirmation.
    pub async fn remove_page(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        path: Result<Path<String>, PathRejection>,
    ) -> Page {
        let (session, actor, _, s) = state.open_subscription(&headers, path).await?;
        let asked = removal_of(&actor, &s, state.service.clock());
        let status = asked
            .as_ref()
            .map_or_else(|e| classify(e).0, |_| StatusCode::OK);
        let body = html! {
            @match asked {
                Ok(por) => { (removal(&session, &s, por)) }
                Err(e) => {
                    div.notice id="error" role="alert" { (e) }
                    p { a href=(subscription_url(s.id())) { "Back to " (s.name()) } }
                }
            }
        };
        Ok(render(
            Some(&session),
            status,
            "Remove partner of record",
            &crumbs(Some(&s), Some("Remove partner of record")),
            body,
        ))
    }

    /// `POST /subscriptions/{id}/partner-of-record/remove`: "Remove", for the partner
    /// the question showed: refused when the subscription changed since.
    pub async fn remove_form(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        path: Result<Path<String>, PathRejection>,
        form: Result<Form<RemoveForm>, FormRejection>,
    ) -> Page {
        let (session, actor) = state.require_actor(&headers)?;
        let id = path_id(&session, path)?;
        let Ok(Form(form)) = form else {
            return Ok(error_response(
                Some(&session),
                StatusCode::BAD_REQUEST,
                "this confirmation could not be read; clear the Partner ID and check again",
            ));
        };
        let receipt = (state
            .service
            .remove_partner_if_unchanged(&actor, &id, form.version)
            .await)
            .map_err(service_error(&session))?;
        if !receipt.changed {
            let s = &receipt.subscription;
            let body = html! {
                div.success id="confirmation" {
                    strong { "Nothing changed:" } " " (s.name()) " has no partner of record."
                }
                (after_change_links(s))
            };
            return page(
                &session,
                "Nothing changed",
                &crumbs(Some(s), Some("Remove partner of record")),
                body,
            );
        }
        let removed: Vec<String> = receipt
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                AssociationEventKind::PartnerRemoved { partner, .. } => Some(partner.to_string()),
                _ => None,
            })
            .collect();
        let s = &receipt.subscription;
        let body = html! {
            div.success id="confirmation" {
                strong { "The partner of record was removed." }
                " Partner " (removed.join(", ")) " is no longer the partner of record of "
                (s.name()) ", and is told by email."
            }
            p id="emails" {
                "Emails to the partner: " (receipt.notifications_delivered) " sent, "
                (receipt.notifications_pending) " waiting in the outbox."
            }
            (after_change_links(s))
        };
        page(
            &session,
            "Partner of record removed",
            &crumbs(Some(s), Some("Remove partner of record")),
            body,
        )
    }

    /// `GET /subscriptions/{id}/history`
    pub async fn history_page(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        path: Result<Path<String>, PathRejection>,
    ) -> Page {
        let (session, actor) = state.require_actor(&headers)?;
        // A partner may read the history of a subscription it is partner of record on,
        // not the subscription itself: its name comes from its own list.
        let id = path_id(&session, path)?;
        let s = match &actor {
            Actor::Partner { .. } => None,
            _ => Some(state.read_subscription(&session, &actor, &id).await?),
        };
        let history =
            (state.service.history(&actor, &id).await).map_err(service_error(&session))?;
        let s = match s {
            Some(s) => Some(s),
            None => state
                .service
                .partner_portfolio(&actor)
                .await
                .map_err(service_error(&session))?
                .into_iter()
                .find(|s| s.id() == &id),
        };
        let crumbs = match &s {
            Some(s) if !matches!(actor, Actor::Partner { .. }) => crumbs(Some(s), Some("History")),
            Some(s) => vec![
                (PORTFOLIO.to_owned(), Some("/subscriptions".to_owned())),
                (s.name().to_owned(), None),
                ("History".to_owned(), None),
            ],
            None => vec![("History".to_owned(), None)],
        };
        let body = html! {
            table id="history" {
                thead { tr { th { "#" } th { "When" } th { "What" } th { "By" } } }
                tbody {
                    @for event in &history {
                        tr {
                            td { (event.sequence) }
                            td.nowrap { (when(event.at)) }
                            td { (describe_event(&event.kind)) }
                            td { (describe_cause(&event.caused_by)) }
                        }
                    }
                    @if history.is_empty() { tr { td colspan="4" .muted { "No changes yet." } } }
                }
            }
        };
        page(&session, "History", &crumbs, body)
    }

    /// `GET /outbox`: the emails the partners got, and those still waiting, as far as
    /// the signed-in visitor may see them ([`app::may_see`]).
    pub async fn outbox_page(State(state): State<Shared<R, D, C>>, headers: HeaderMap) -> Page {
        let session = state.session(&headers);
        let Some((session, who)) = session.and_then(|s| s.who.clone().map(|who| (s, who))) else {
            return Err(Redirect::to("/").into_response().into());
        };
        let show_address = !matches!(who, Who::Actor(Actor::Customer { .. }));
        let head = html! {
            thead { tr { th { "When" } th { "To" } th { "Subject" } th { "ID" } } }
        };
        let (sent, pending) = state.outbox_for(&who).await.map_err(|e| {
            EarlyResponse::from(error_response(
                Some(&session),
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("the outbox could not be read: {e}"),
            ))
        })?;
        let body = html! {
            @if who != Who::Operator {
                p.muted id="outbox-scope" { "Only the emails about your own subscriptions are shown." }
            }
            h2 { "Sent" }
            table id="sent" {
                (head)
                tbody {
                    @for n in &sent { (notification_row(n, show_address)) }
                    @if sent.is_empty() { tr { td colspan="4" .muted { "No emails yet." } } }
                }
            }
            h2 style="margin-top:24px" { "Waiting to be sent" }
            @if pending.is_empty() {
                p.muted id="pending" { "No emails are waiting." }
            } @else {
                table id="pending" {
                    (head)
                    tbody { @for n in &pending { (notification_row(n, show_address)) } }
                }
            }
        };
        page(&session, "Outbox", &[], body)
    }

    /// Any other route: a JSON 404 under `/api`, a page elsewhere.
    pub async fn not_found(
        State(state): State<Shared<R, D, C>>,
        uri: Uri,
        headers: HeaderMap,
    ) -> Response {
        if guard::is_api(uri.path()) {
            return api::unknown_route();
        }
        let session = state.session(&headers);
        error_response(
            session.as_ref(),
            StatusCode::NOT_FOUND,
            "there is no such page",
        )
    }
}

/// Which sign-in field an error belongs next to.
enum Field {
    Customer,
    Delegated,
    User,
}

/// The customer's user the sign-in form describes, or the field that is wrong.
fn customer_actor(form: &SignInForm) -> Result<Actor, (Field, String)> {
    let customer = CustomerId::new(form.customer.trim())
        .map_err(|e| (Field::Customer, format!("invalid customer: {e}")))?;
    let role = match form.role.as_str() {
        "global_administrator" => CustomerRole::GlobalAdministrator,
        "billing_administrator" => CustomerRole::BillingAdministrator,
        "service_administrator" => CustomerRole::ServiceAdministrator,
        "delegated_administrator" => MpnId::parse(&form.delegated_partner)
            .map(|partner| CustomerRole::DelegatedAdministrator { partner })
            .map_err(|e| (Field::Delegated, e.to_string()))?,
        _ => return Err((Field::Customer, "choose one of the roles".to_owned())),
    };
    let actor = Actor::customer(customer, role);
    match form.user.trim() {
        "" => Ok(actor),
        user => UserRef::new(user)
            .map(|user| actor.with_user(user))
            .map_err(|e| (Field::User, format!("invalid user name: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session;

    #[test]
    fn only_an_empty_field_is_the_removal_gesture() {
        assert!(cleared("") && cleared("   ") && cleared("\t"));
        assert!(!cleared("565380") && !cleared(" 5 "));
    }

    #[test]
    fn the_session_module_names_the_token_field_the_forms_use() {
        let session = Session::new(None);
        let field = csrf_field(&session).into_string();
        assert!(field.contains(&format!("name=\"{}\"", session::CSRF_FIELD)));
        assert!(field.contains(&session.csrf));
    }
}
