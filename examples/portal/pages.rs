//! The server-rendered pages: the customer's steps 1-9 as plain HTML forms.
//!
//! "Check ID" renders the `PartnerCheck` twice: as text for the customer (name,
//! location, the partner being replaced), and as JSON in a hidden form field that
//! "Submit" posts back. The service re-verifies everything at submit, so a forged field
//! changes nothing but the error shown.

use std::fmt::Write as _;

use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use dpor::{
    Action, Actor, AssociationEventKind, Clock, CustomerId, CustomerRole, Error, MpnId,
    Notification, NotificationKind, PartnerCheck, PartnerDirectory, RemovalReason, Store,
    Subscription, SubscriptionId,
};
use serde::Deserialize;

use super::api;
use super::app::{
    self, AppState, Identity, Shared, classify, describe_actor, role_key, sign_in_cookie,
    sign_out_cookie, when,
};
use super::html::{self, Esc, Header, PathSegment};

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

/// Renders a page for `actor` with `status`.
fn render(
    actor: Option<&Actor>,
    status: StatusCode,
    title: &str,
    crumbs: &[(String, Option<String>)],
    body: &str,
) -> Response {
    let header = Header {
        who: actor.map(describe_actor),
        customer_nav: matches!(actor, Some(Actor::Customer { .. })),
        crumbs,
    };
    (status, Html(html::page(title, &header, body))).into_response()
}

/// A page for the signed-in `actor` that went as it should (200).
fn page(actor: &Actor, title: &str, crumbs: &[(String, Option<String>)], body: &str) -> Page {
    Ok(render(Some(actor), StatusCode::OK, title, crumbs, body))
}

/// A page that only says what went wrong.
fn error_page(actor: Option<&Actor>, status: StatusCode, message: &str) -> Response {
    let body = format!(
        r#"<div class="notice" id="error" role="alert">{}</div><p><a href="/subscriptions">Back to the subscriptions</a></p>"#,
        Esc(message)
    );
    let title = status.canonical_reason().unwrap_or("Error");
    render(actor, status, title, &[], &body)
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

/// The error page for what the service refused, for `map_err`.
fn service_error(actor: &Actor) -> impl Fn(Error) -> EarlyResponse + '_ {
    move |error| error_page(Some(actor), classify(&error).0, &error.to_string()).into()
}

/// The signed-in actor, if any (a cookie that does not parse counts as signed out).
fn signed_in(headers: &HeaderMap) -> Option<Actor> {
    match Identity::from_headers(headers) {
        Identity::SignedIn(actor) => Some(actor),
        Identity::SignedOut | Identity::Invalid => None,
    }
}

/// The signed-in actor, or a redirect to the sign-in page.
fn require_actor(headers: &HeaderMap) -> Result<Actor, EarlyResponse> {
    signed_in(headers).ok_or_else(|| Redirect::to("/").into_response().into())
}

/// The subscription id of a page's path, or a 400 page.
fn path_id(
    actor: &Actor,
    path: Result<Path<String>, PathRejection>,
) -> Result<SubscriptionId, EarlyResponse> {
    app::path_id(path)
        .map_err(|message| error_page(Some(actor), StatusCode::BAD_REQUEST, &message).into())
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
fn after_change_links(subscription: &Subscription) -> String {
    format!(
        r#"<p><a id="back-to-subscription" href="{url}">Back to {name}</a> &middot; <a id="open-outbox" href="/outbox">Open the outbox</a></p>"#,
        url = subscription_url(subscription.id()),
        name = Esc(subscription.name()),
    )
}

fn action_label(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::AddPartnerOfRecord => ("action-add", "Add partner of record"),
        Action::EditPartnerOfRecord => ("action-edit", "Edit partner of record"),
        Action::RemovePartnerOfRecord => ("action-remove", "Remove partner of record"),
    }
}

fn por_cell(subscription: &Subscription) -> String {
    match subscription.partner_of_record() {
        Some(por) => format!(
            r#"{} <span class="muted">({})</span>"#,
            Esc(por.partner_name()),
            Esc(por.mpn_id())
        ),
        None => r#"<span class="muted">none</span>"#.to_owned(),
    }
}

fn status_cell(subscription: &Subscription) -> String {
    let status = subscription.status();
    format!(r#"<span class="status-{status}">{status}</span>"#)
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
                let _ = write!(text, ", replacing {replaced}");
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

fn notification_row(n: &Notification) -> String {
    let subject = match n.kind {
        NotificationKind::Added => "You are now the partner of record",
        NotificationKind::Removed => "You are no longer the partner of record",
        _ => "Your partner-of-record status changed",
    };
    format!(
        r#"<tr data-notification="{id}"><td class="nowrap">{at}</td><td>{to}<br><span class="muted">partner {partner}</span></td><td>{subject} for {customer}'s {service} subscription {sub}</td><td class="muted nowrap">{id}</td></tr>"#,
        id = Esc(&n.id),
        at = Esc(when(n.at)),
        to = Esc(n
            .contact_email
            .as_deref()
            .unwrap_or("(no contact email on file)")),
        partner = Esc(n.partner),
        customer = Esc(&n.customer),
        service = Esc(&n.service),
        sub = Esc(&n.subscription),
    )
}

/// The sign-in forms' fields (two forms post here, told apart by `kind`).
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
    mpn_id: String,
}

/// What the sign-in page shows next to its fields after a failed attempt.
#[derive(Default)]
struct SignInState {
    notice: Option<String>,
    customer: Option<String>,
    role: Option<String>,
    delegated_partner: String,
    delegated_error: Option<String>,
    customer_error: Option<String>,
    mpn_id: String,
    mpn_error: Option<String>,
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

/// What the Partner information pane shows.
struct Pane<'a> {
    subscription: &'a Subscription,
    actor: &'a Actor,
    typed: &'a str,
    error: Option<String>,
    check: Option<&'a PartnerCheck>,
}

impl<'a> Pane<'a> {
    /// The pane with `typed` in the field, no error and no check yet.
    fn new(subscription: &'a Subscription, actor: &'a Actor, typed: &'a str) -> Self {
        Pane {
            subscription,
            actor,
            typed,
            error: None,
            check: None,
        }
    }

    /// The pane answered with `status` and `message` next to the field.
    fn failed(self, message: String, status: StatusCode) -> Response {
        pane_page(
            Pane {
                error: Some(message),
                ..self
            },
            status,
        )
    }
}

fn error_html(id: &str, error: Option<&String>) -> String {
    match error {
        Some(message) => format!(
            r#"<p class="error" id="{id}" role="alert">{}</p>"#,
            Esc(message)
        ),
        None => String::new(),
    }
}

fn pane_page(pane: Pane<'_>, status: StatusCode) -> Response {
    let s = pane.subscription;
    let url = subscription_url(s.id());
    let actions = s.actions_for(pane.actor);
    let title = if s.partner_of_record().is_some() {
        "Edit partner of record"
    } else {
        "Add partner of record"
    };
    let mut body = String::new();
    let _ = write!(
        body,
        r#"<section class="pane" id="partner-pane"><h2>Partner information</h2>"#
    );
    match s.partner_of_record() {
        Some(por) => {
            let _ = write!(
                body,
                r#"<p id="current-partner">Current Microsoft Partner ID: <strong id="current-mpn-id">{}</strong> &middot; {} <span class="muted">since {}</span></p>"#,
                Esc(por.mpn_id()),
                Esc(por.partner_name()),
                Esc(when(por.since()))
            );
        }
        None => body.push_str(
            r#"<p class="muted" id="current-partner">This subscription has no partner of record.</p>"#,
        ),
    }
    let may_change = actions.contains(&Action::AddPartnerOfRecord)
        || actions.contains(&Action::EditPartnerOfRecord);
    if may_change || pane.error.is_some() {
        pane_form(&mut body, &pane, &url);
    } else {
        body.push_str(
            r#"<p class="notice" id="view-only">You can view the partner of record. Only the customer's global administrator can change it, and only while the subscription is active.</p>"#,
        );
    }
    body.push_str("</section>");
    render(
        Some(pane.actor),
        status,
        title,
        &crumbs(Some(s), Some(title)),
        &body,
    )
}

/// The pane's "Check ID" form and, after a check, what was found and "Submit".
fn pane_form(body: &mut String, pane: &Pane<'_>, url: &str) {
    let invalid = if pane.error.is_some() {
        r#" aria-invalid="true" aria-describedby="mpn-id-error""#
    } else {
        ""
    };
    let _ = write!(
        body,
        r#"<p class="muted">Type the Microsoft Partner ID (MPN ID) your partner gave you, then check it.</p>
<form method="post" action="{url}/partner-of-record/check">
<label for="mpn-id">Microsoft Partner ID</label>
<div class="row"><input type="text" id="mpn-id" name="mpn_id" value="{typed}" inputmode="numeric" autocomplete="off"{invalid}><button id="check-id">Check ID</button></div>
{error}
</form>"#,
        typed = Esc(pane.typed),
        error = error_html("mpn-id-error", pane.error.as_ref()),
    );
    if let Some(check) = pane.check {
        let partner = check.partner();
        let _ = write!(
            body,
            r#"<div class="found" id="partner-found"><dl class="facts">
<dt>Partner name</dt><dd id="partner-name">{name}</dd>
<dt>Location</dt><dd id="partner-location">{location}</dd>
<dt>Microsoft Partner ID</dt><dd id="partner-mpn-id">{mpn}</dd>
<dt>Program</dt><dd>{program}</dd>"#,
            name = Esc(partner.name()),
            location = Esc(partner.location().unwrap_or("not listed")),
            mpn = Esc(partner.mpn_id()),
            program = Esc(check.program()),
        );
        if let Some(current) = check.current().filter(|_| !check.is_current()) {
            let _ = write!(
                body,
                r#"<dt>Replaces</dt><dd id="partner-replaced">{} ({})</dd>"#,
                Esc(current.partner_name()),
                Esc(current.mpn_id())
            );
        }
        body.push_str("</dl></div>");
        if check.is_current() {
            body.push_str(
                r#"<p class="muted" id="already-current">This partner already is the partner of record: submitting changes nothing.</p>"#,
            );
        }
        match serde_json::to_string(check) {
            Ok(json) => {
                let _ = write!(
                    body,
                    r#"<form method="post" action="{url}/partner-of-record"><input type="hidden" name="check" value="{json}"><div class="row"><button class="primary" id="submit">Submit</button><a href="{url}">Cancel</a></div></form>"#,
                    json = Esc(json),
                );
            }
            Err(e) => {
                let _ = write!(
                    body,
                    r#"<p class="error">the check could not be prepared: {}</p>"#,
                    Esc(e)
                );
            }
        }
    }
}

impl<R, D, C> AppState<R, D, C>
where
    R: Store + 'static,
    D: PartnerDirectory + 'static,
    C: Clock + 'static,
{
    /// Where a subscription's page starts: the signed-in actor, the path's id, and the
    /// subscription as the actor sees it; else a redirect to sign in, or an error page.
    async fn open_subscription(
        &self,
        headers: &HeaderMap,
        path: Result<Path<String>, PathRejection>,
    ) -> Result<(Actor, SubscriptionId, Subscription), EarlyResponse> {
        let actor = require_actor(headers)?;
        let id = path_id(&actor, path)?;
        let s = (self.service.subscription(&actor, &id).await).map_err(service_error(&actor))?;
        Ok((actor, id, s))
    }

    /// `GET /`: the demo sign-in, "pick who you are".
    pub async fn sign_in_page(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
    ) -> Response {
        match Identity::from_headers(&headers) {
            Identity::SignedIn(actor) => {
                state.sign_in_html(Some(&actor), SignInState::default(), StatusCode::OK)
            }
            Identity::SignedOut => state.sign_in_html(None, SignInState::default(), StatusCode::OK),
            Identity::Invalid => {
                let view = SignInState {
                    notice: Some(
                        "Your sign-in cookie could not be read, so you are signed out. Pick who you are again."
                            .to_owned(),
                    ),
                    ..SignInState::default()
                };
                let mut response = state.sign_in_html(None, view, StatusCode::OK);
                if let Ok(value) = sign_out_cookie().parse() {
                    response.headers_mut().insert(header::SET_COOKIE, value);
                }
                response
            }
        }
    }

    fn sign_in_html(
        &self,
        actor: Option<&Actor>,
        view: SignInState,
        status: StatusCode,
    ) -> Response {
        let mut body = String::new();
        if let Some(notice) = &view.notice {
            let _ = write!(
                body,
                r#"<div class="notice" id="notice">{}</div>"#,
                Esc(notice)
            );
        }
        if let Some(actor) = actor {
            let next = match actor {
                Actor::Customer { .. } => "Billing &rsaquo; Subscriptions",
                _ => "the subscriptions you are partner of record for",
            };
            let _ = write!(
                body,
                r#"<div class="success" id="signed-in">You are signed in as <strong>{}</strong>. Continue to <a id="continue" href="/subscriptions">{next}</a>, or sign in as someone else below.</div>"#,
                Esc(describe_actor(actor))
            );
        }
        let (current_customer, current_role) = match actor {
            Some(Actor::Customer { customer, role }) => {
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
        let mut customers = String::new();
        for (i, c) in self.customers.iter().enumerate() {
            let selected = match chosen_customer {
                Some(chosen) => chosen == c.as_str(),
                None => i == 0,
            };
            let _ = write!(
                customers,
                r#"<option value="{v}"{sel}>{v}</option>"#,
                v = Esc(c),
                sel = if selected { " selected" } else { "" }
            );
        }
        let roles: String = ROLES
            .iter()
            .map(|(value, label)| {
                let sel = if *value == chosen_role {
                    " selected"
                } else {
                    ""
                };
                format!(r#"<option value="{value}"{sel}>{label}</option>"#)
            })
            .collect();
        let _ = write!(
            body,
            r#"<p>This is a demo: nobody has a password. Pick who you are; the choice is kept in a plain cookie.</p>
<div class="grid">
<section class="card"><h2>A customer's user</h2>
<form method="post" action="/sign-in" id="customer-sign-in"><input type="hidden" name="kind" value="customer">
<label for="customer">Customer (tenant)</label><select id="customer" name="customer">{customers}</select>
{customer_error}
<label for="role">Role</label><select id="role" name="role">{roles}</select>
<label for="delegated-partner">Partner ID of the delegated administrator</label>
<input type="text" id="delegated-partner" name="delegated_partner" value="{delegated}" placeholder="only for a delegated administrator" autocomplete="off">
{delegated_error}
<p><button class="primary" id="sign-in">Sign in</button></p>
</form></section>
<section class="card"><h2>A partner</h2>
<form method="post" action="/sign-in" id="partner-sign-in"><input type="hidden" name="kind" value="partner">
<label for="partner-mpn-id">Microsoft Partner ID</label>
<input type="text" id="partner-mpn-id" name="mpn_id" value="{mpn}" inputmode="numeric" autocomplete="off">
{mpn_error}
<p><button id="sign-in-partner">Sign in as this partner</button></p>
</form>
<p class="muted">Partners of the demo: 565380 Fabrikam Consulting, 3664167 Northwind Traders, 4412040 Adventure Works Cloud (Usage program only).</p></section>
</div>"#,
            customer_error = error_html("customer-error", view.customer_error.as_ref()),
            delegated = Esc(&view.delegated_partner),
            delegated_error = error_html("delegated-partner-error", view.delegated_error.as_ref()),
            mpn = Esc(&view.mpn_id),
            mpn_error = error_html("partner-mpn-id-error", view.mpn_error.as_ref()),
        );
        render(actor, status, "Who are you?", &[], &body)
    }

    /// `POST /sign-in`: sets the cookie and goes back to `/`.
    pub async fn sign_in(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        form: Result<Form<SignInForm>, FormRejection>,
    ) -> Response {
        let current = signed_in(&headers);
        let unreadable = || {
            error_page(
                current.as_ref(),
                StatusCode::BAD_REQUEST,
                "the sign-in form could not be read",
            )
        };
        // The form again, with what was typed and the error next to its field.
        let refuse =
            |view: SignInState| state.sign_in_html(current.as_ref(), view, StatusCode::BAD_REQUEST);
        let Ok(Form(form)) = form else {
            return unreadable();
        };
        let mut view = SignInState {
            customer: Some(form.customer.clone()),
            role: Some(form.role.clone()),
            delegated_partner: form.delegated_partner.clone(),
            mpn_id: form.mpn_id.clone(),
            ..SignInState::default()
        };
        let actor = match form.kind.as_str() {
            "customer" => {
                let customer = match CustomerId::new(form.customer.trim()) {
                    Ok(customer) => customer,
                    Err(e) => {
                        view.customer_error = Some(format!("invalid customer: {e}"));
                        return refuse(view);
                    }
                };
                let role = match form.role.as_str() {
                    "global_administrator" => CustomerRole::GlobalAdministrator,
                    "billing_administrator" => CustomerRole::BillingAdministrator,
                    "service_administrator" => CustomerRole::ServiceAdministrator,
                    "delegated_administrator" => match MpnId::parse(&form.delegated_partner) {
                        Ok(partner) => CustomerRole::DelegatedAdministrator { partner },
                        Err(e) => {
                            view.delegated_error = Some(e.to_string());
                            return refuse(view);
                        }
                    },
                    _ => {
                        view.customer_error = Some("choose one of the roles".to_owned());
                        return refuse(view);
                    }
                };
                Actor::customer(customer, role)
            }
            "partner" => match MpnId::parse(&form.mpn_id) {
                Ok(mpn_id) => Actor::partner(mpn_id),
                Err(e) => {
                    view.mpn_error = Some(e.to_string());
                    return refuse(view);
                }
            },
            _ => return unreadable(),
        };
        match sign_in_cookie(&actor) {
            Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response(),
            Err(e) => error_page(
                current.as_ref(),
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("could not sign in: {e}"),
            ),
        }
    }

    /// `GET /subscriptions`: Billing > Subscriptions (a partner sees where it is partner
    /// of record).
    pub async fn subscriptions_page(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
    ) -> Page {
        let actor = require_actor(&headers)?;
        let (title, list) = match &actor {
            Actor::Customer { .. } => ("Subscriptions", state.service.subscriptions(&actor).await),
            _ => (
                "Where you are partner of record",
                state.service.partner_portfolio(&actor).await,
            ),
        };
        let list = list.map_err(service_error(&actor))?;
        let mut rows = String::new();
        for s in &list {
            let _ = write!(
                rows,
                r#"<tr><td><a data-subscription="{id}" href="{url}">{name}</a></td><td>{service}</td><td>{status}</td><td>{por}</td><td class="muted nowrap">{id}</td></tr>"#,
                id = Esc(s.id()),
                url = subscription_url(s.id()),
                name = Esc(s.name()),
                service = Esc(s.service()),
                status = status_cell(s),
                por = por_cell(s),
            );
        }
        if list.is_empty() {
            rows.push_str(r#"<tr><td colspan="5" class="muted">No subscriptions.</td></tr>"#);
        }
        let body = format!(
            r#"<table id="subscriptions"><thead><tr><th>Subscription</th><th>Service</th><th>Status</th><th>Partner of record</th><th>ID</th></tr></thead><tbody>{rows}</tbody></table>"#
        );
        let crumbs = match actor {
            Actor::Customer { .. } => crumbs(None, None),
            _ => Vec::new(),
        };
        page(&actor, title, &crumbs, &body)
    }

    /// `GET /subscriptions/{id}`: the subscription and its "More actions".
    pub async fn subscription_page(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        path: Result<Path<String>, PathRejection>,
    ) -> Page {
        let (actor, _, s) = state.open_subscription(&headers, path).await?;
        let url = subscription_url(s.id());
        let actions = s.actions_for(&actor);
        let mut menu = String::new();
        if actions.is_empty() {
            menu.push_str(r#"<p class="muted" id="no-actions">No actions: only the customer's global administrator can change the partner of record, and only while the subscription is active.</p>"#);
        } else {
            menu.push_str(r#"<details class="menu" id="more-actions"><summary id="more-actions-toggle">More actions</summary><ul>"#);
            for action in actions {
                let (anchor, label) = action_label(action);
                let target = match action {
                    Action::RemovePartnerOfRecord => "partner-of-record/remove",
                    _ => "partner-of-record",
                };
                let _ = write!(
                    menu,
                    r#"<li><a id="{anchor}" href="{url}/{target}">{label}</a></li>"#
                );
            }
            menu.push_str("</ul></details>");
        }
        let body = format!(
            r#"{menu}
<section class="card" id="subscription"><dl class="facts">
<dt>Subscription ID</dt><dd id="subscription-id">{id}</dd>
<dt>Service</dt><dd>{service}</dd>
<dt>Customer</dt><dd>{customer}</dd>
<dt>Status</dt><dd>{status}</dd>
<dt>Partner of record</dt><dd id="partner-of-record">{por}</dd>
</dl></section>
<p><a id="history" href="{url}/history">History of the partner of record</a></p>"#,
            id = Esc(s.id()),
            service = Esc(s.service()),
            customer = Esc(s.customer()),
            status = status_cell(&s),
            por = por_cell(&s),
        );
        page(&actor, s.name(), &crumbs(Some(&s), None), &body)
    }

    /// `GET /subscriptions/{id}/partner-of-record`: the Partner information pane
    /// ("Add" or "Edit partner of record"); "Edit" shows the current MPN ID.
    pub async fn partner_pane(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        path: Result<Path<String>, PathRejection>,
    ) -> Page {
        let (actor, _, s) = state.open_subscription(&headers, path).await?;
        let typed = s
            .partner_of_record()
            .map(|p| p.mpn_id().to_string())
            .unwrap_or_default();
        Ok(pane_page(Pane::new(&s, &actor, &typed), StatusCode::OK))
    }

    /// `POST /subscriptions/{id}/partner-of-record/check`: "Check ID".
    pub async fn check_form(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        path: Result<Path<String>, PathRejection>,
        form: Result<Form<CheckForm>, FormRejection>,
    ) -> Page {
        let (actor, id, s) = state.open_subscription(&headers, path).await?;
        let typed = match form {
            Ok(Form(form)) => form.mpn_id,
            Err(e) => {
                return Ok(Pane::new(&s, &actor, "").failed(
                    format!("the form could not be read: {}", e.body_text()),
                    StatusCode::BAD_REQUEST,
                ));
            }
        };
        Ok(
            match state.service.check_partner(&actor, &id, &typed).await {
                Ok(check) => pane_page(
                    Pane {
                        check: Some(&check),
                        ..Pane::new(&s, &actor, check.partner().mpn_id().as_str())
                    },
                    StatusCode::OK,
                ),
                Err(e) => Pane::new(&s, &actor, &typed).failed(e.to_string(), classify(&e).0),
            },
        )
    }

    /// `POST /subscriptions/{id}/partner-of-record`: "Submit", then the confirmation.
    pub async fn submit_form(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        path: Result<Path<String>, PathRejection>,
        form: Result<Form<SubmitForm>, FormRejection>,
    ) -> Page {
        let (actor, id, s) = state.open_subscription(&headers, path).await?;
        let raw = match form {
            Ok(Form(form)) => form.check,
            Err(e) => {
                return Ok(Pane::new(&s, &actor, "").failed(
                    format!("the form could not be read: {}", e.body_text()),
                    StatusCode::BAD_REQUEST,
                ));
            }
        };
        let check: PartnerCheck = match serde_json::from_str(&raw) {
            Ok(check) => check,
            Err(_) => {
                return Ok(Pane::new(&s, &actor, "").failed(
                    "the partner check could not be read; check the partner ID again".to_owned(),
                    StatusCode::BAD_REQUEST,
                ));
            }
        };
        let typed = check.partner().mpn_id().to_string();
        if check.subscription() != &id {
            return Ok(Pane::new(&s, &actor, &typed).failed(
                format!(
                    "this check is for subscription {}, not {id}; check the partner ID again",
                    check.subscription()
                ),
                StatusCode::BAD_REQUEST,
            ));
        }
        let receipt = match state.service.submit(&actor, &check).await {
            Ok(receipt) => receipt,
            Err(e) => {
                return Ok(Pane::new(&s, &actor, &typed).failed(e.to_string(), classify(&e).0));
            }
        };
        let after = &receipt.subscription;
        let who = match after.partner_of_record() {
            Some(por) => format!(
                "<strong>{}</strong> ({})",
                Esc(por.partner_name()),
                Esc(por.mpn_id())
            ),
            None => "nobody".to_owned(),
        };
        let message = if receipt.changed {
            format!(
                r#"<strong>Your partner of record has been updated.</strong> {who} is now the partner of record of {}."#,
                Esc(after.name())
            )
        } else {
            format!(
                r#"<strong>Nothing changed:</strong> {who} already is the partner of record of {}."#,
                Esc(after.name())
            )
        };
        let emails = if receipt.changed {
            format!(
                r#"<p id="emails">Emails to the partners: {} sent, {} waiting in the outbox.</p>"#,
                receipt.notifications_delivered, receipt.notifications_pending
            )
        } else {
            String::new()
        };
        let body = format!(
            r#"<div class="success" id="confirmation">{message}</div>{emails}
{links}"#,
            links = after_change_links(after),
        );
        page(
            &actor,
            "Partner of record",
            &crumbs(Some(after), Some("Partner of record")),
            &body,
        )
    }

    /// `GET /subscriptions/{id}/partner-of-record/remove`: asks for confirmation.
    pub async fn remove_page(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        path: Result<Path<String>, PathRejection>,
    ) -> Page {
        let (actor, _, s) = state.open_subscription(&headers, path).await?;
        let url = subscription_url(s.id());
        let body = match s.partner_of_record() {
            Some(por) => format!(
                r#"<section class="pane" id="remove-pane"><h2>Remove partner of record</h2>
<p>Remove <strong>{name}</strong> ({mpn}) as the partner of record of {sub}? The partner is told by email. You can add a partner again at any time.</p>
<form method="post" action="{url}/partner-of-record/remove"><div class="row"><button class="danger" id="confirm-remove">Remove</button><a href="{url}">Cancel</a></div></form></section>"#,
                name = Esc(por.partner_name()),
                mpn = Esc(por.mpn_id()),
                sub = Esc(s.name()),
            ),
            None => format!(
                r#"<div class="notice" id="error">This subscription has no partner of record.</div><p><a href="{url}">Back to {}</a></p>"#,
                Esc(s.name())
            ),
        };
        page(
            &actor,
            "Remove partner of record",
            &crumbs(Some(&s), Some("Remove partner of record")),
            &body,
        )
    }

    /// `POST /subscriptions/{id}/partner-of-record/remove`
    pub async fn remove_form(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        path: Result<Path<String>, PathRejection>,
    ) -> Page {
        let actor = require_actor(&headers)?;
        let id = path_id(&actor, path)?;
        let receipt =
            (state.service.remove_partner(&actor, &id).await).map_err(service_error(&actor))?;
        let removed: Vec<String> = receipt
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                AssociationEventKind::PartnerRemoved { partner, .. } => Some(partner.to_string()),
                _ => None,
            })
            .collect();
        let s = &receipt.subscription;
        let body = format!(
            r#"<div class="success" id="confirmation"><strong>The partner of record was removed.</strong> Partner {removed} is no longer the partner of record of {name}, and is told by email.</div>
<p id="emails">Emails to the partner: {sent} sent, {pending} waiting in the outbox.</p>
{links}"#,
            removed = Esc(removed.join(", ")),
            name = Esc(s.name()),
            sent = receipt.notifications_delivered,
            pending = receipt.notifications_pending,
            links = after_change_links(s),
        );
        page(
            &actor,
            "Partner of record removed",
            &crumbs(Some(s), Some("Remove partner of record")),
            &body,
        )
    }

    /// `GET /subscriptions/{id}/history`
    pub async fn history_page(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        path: Result<Path<String>, PathRejection>,
    ) -> Page {
        let (actor, id, s) = state.open_subscription(&headers, path).await?;
        let history = (state.service.history(&actor, &id).await).map_err(service_error(&actor))?;
        let mut rows = String::new();
        for event in &history {
            let _ = write!(
                rows,
                r#"<tr><td>{}</td><td class="nowrap">{}</td><td>{}</td></tr>"#,
                event.sequence,
                Esc(when(event.at)),
                Esc(describe_event(&event.kind))
            );
        }
        if history.is_empty() {
            rows.push_str(r#"<tr><td colspan="3" class="muted">No changes yet.</td></tr>"#);
        }
        let body = format!(
            r#"<table id="history"><thead><tr><th>#</th><th>When</th><th>What</th></tr></thead><tbody>{rows}</tbody></table>"#
        );
        page(&actor, "History", &crumbs(Some(&s), Some("History")), &body)
    }

    /// `GET /outbox`: the emails the partners got, and those still waiting (a demo
    /// mail catcher: anyone may look).
    pub async fn outbox_page(State(state): State<Shared<R, D, C>>, headers: HeaderMap) -> Response {
        let actor = signed_in(&headers);
        let sent = state.outbox.sent();
        let head = "<thead><tr><th>When</th><th>To</th><th>Subject</th><th>ID</th></tr></thead>";
        let mut rows: String = sent.iter().rev().map(notification_row).collect();
        if sent.is_empty() {
            rows.push_str(r#"<tr><td colspan="4" class="muted">No emails yet.</td></tr>"#);
        }
        let pending = match state.service.repository().pending_notifications(100).await {
            Ok(pending) if pending.is_empty() => {
                r#"<p class="muted" id="pending">No emails are waiting.</p>"#.to_owned()
            }
            Ok(pending) => format!(
                r#"<table id="pending">{head}<tbody>{}</tbody></table>"#,
                pending.iter().map(notification_row).collect::<String>()
            ),
            Err(e) => format!(
                r#"<p class="error" id="pending">The outbox could not be read: {}</p>"#,
                Esc(e)
            ),
        };
        let body = format!(
            r#"<h2>Sent</h2><table id="sent">{head}<tbody>{rows}</tbody></table>
<h2 style="margin-top:24px">Waiting to be sent</h2>{pending}"#
        );
        render(actor.as_ref(), StatusCode::OK, "Outbox", &[], &body)
    }
}

/// `POST /sign-out`
pub async fn sign_out() -> Response {
    ([(header::SET_COOKIE, sign_out_cookie())], Redirect::to("/")).into_response()
}

/// Any other route: a JSON 404 under `/api`, a page elsewhere.
pub async fn not_found(uri: Uri, headers: HeaderMap) -> Response {
    if uri.path() == "/api" || uri.path().starts_with("/api/") {
        return api::unknown_route();
    }
    let actor = signed_in(&headers);
    error_page(
        actor.as_ref(),
        StatusCode::NOT_FOUND,
        "there is no such page",
    )
}
