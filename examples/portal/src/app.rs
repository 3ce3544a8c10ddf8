//! The portal's shared part: its settings, its state, the router, and how a
//! [`dpor::Error`] maps to HTTP.
//!
//! The seam for other stores is [`build_app`]: it takes any
//! `PorService<R, D, RecordingNotifier, C>`, so the same pages and API run over the
//! in-memory repository, a SQL one, or a test double.

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::StatusCode;
use axum::routing::{get, post};
use dpor::{
    Actor, Clock, CustomerId, CustomerRole, Error, Notification, PartnerDirectory, PorService,
    RecordingNotifier, Store, SubscriptionId,
};
use time::OffsetDateTime;

use crate::api;
use crate::guard::{self, Guard};
use crate::session::{Sessions, Who};

/// The service the portal runs on. The notifier is the in-memory recorder so that the
/// Outbox page can show what was "emailed".
pub type Service<R, D, C> = PorService<R, D, RecordingNotifier, C>;

/// How the portal is set up (`main.rs` reads it from the environment).
#[derive(Clone, Debug)]
pub struct Config {
    /// Signs the session cookies.
    pub sessions: Sessions,
    /// `scheme://host[:port]` as browsers reach the portal, when it sits behind a proxy;
    /// `None` takes the origin from each request's `Host`.
    pub origin: Option<String>,
    /// The secret the operator signs in with (page) or sends as a bearer token (API).
    pub operator_token: String,
    /// The customers offered on the demo sign-in page.
    pub customers: Vec<CustomerId>,
}

impl Config {
    /// Whether `token` (spaces around it ignored) is the operator's.
    pub fn is_operator_token(&self, token: &str) -> bool {
        crate::session::same_secret(&self.operator_token, token.trim())
    }
}

/// What every handler gets.
pub struct AppState<R, D, C> {
    /// The partner-of-record service.
    pub service: Service<R, D, C>,
    /// The same recorder the service delivers to (it shares its state between clones).
    pub outbox: RecordingNotifier,
    /// The settings.
    pub config: Config,
}

/// The state as handlers receive it.
pub type Shared<R, D, C> = Arc<AppState<R, D, C>>;

/// The whole portal: HTML pages and the JSON API over one service, behind the
/// [`guard`](mod@crate::guard) that refuses cross-site requests and forms without the
/// session's CSRF token.
///
/// `outbox` must be (a clone of) the notifier the service was built with.
pub fn build_app<R, D, C>(
    service: Service<R, D, C>,
    outbox: RecordingNotifier,
    config: Config,
) -> Router
where
    R: Store + 'static,
    D: PartnerDirectory + 'static,
    C: Clock + 'static,
{
    let guard = Guard {
        sessions: config.sessions.clone(),
        origin: config.origin.clone(),
    };
    let state: Shared<R, D, C> = Arc::new(AppState {
        service,
        outbox,
        config,
    });
    type S<R, D, C> = AppState<R, D, C>;
    Router::new()
        .route("/", get(S::sign_in_page))
        .route("/sign-in", post(S::sign_in))
        .route("/sign-out", post(S::sign_out))
        .route("/subscriptions", get(S::subscriptions_page))
        .route("/subscriptions/{id}", get(S::subscription_page))
        .route(
            "/subscriptions/{id}/partner-of-record",
            get(S::partner_pane).post(S::submit_form),
        )
        .route(
            "/subscriptions/{id}/partner-of-record/check",
            post(S::check_form),
        )
        .route(
            "/subscriptions/{id}/partner-of-record/remove",
            get(S::remove_page).post(S::remove_form),
        )
        .route("/subscriptions/{id}/history", get(S::history_page))
        .route("/link", get(S::partner_link))
        .route("/outbox", get(S::outbox_page))
        .merge(api::routes::<R, D, C>().router)
        .fallback(S::not_found)
        .layer(axum::middleware::from_fn_with_state(guard, guard::guard))
        .with_state(state)
}

/// How a [`dpor::Error`] answers over HTTP: its status, from its stable
/// [`code`](Error::code) alone, and the code itself for clients. The message is the
/// error's `Display` text (written to be shown to the customer).
pub fn classify(error: &Error) -> (StatusCode, &'static str) {
    let code = error.code();
    (status_for(code), code)
}

/// The HTTP status for an [`Error::code`]: the README's table, as code.
pub fn status_for(code: &str) -> StatusCode {
    match code {
        "invalid_mpn_id" | "unknown_cursor" => StatusCode::BAD_REQUEST,
        "forbidden" => StatusCode::FORBIDDEN,
        "subscription_not_found" | "partner_not_found" => StatusCode::NOT_FOUND,
        "conflict"
        | "no_partner_of_record"
        | "subscription_not_active"
        | "subscription_cancelled"
        | "subscription_already_exists" => StatusCode::CONFLICT,
        "check_expired" => StatusCode::GONE,
        "partner_not_enrolled" => StatusCode::UNPROCESSABLE_ENTITY,
        "directory_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        // store_failed, time_out_of_range, and any code added later.
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The subscription id of a `/subscriptions/{id}...` path, or why it is not one (the
/// pages show the message on a 400 page, the API in a 400 JSON error).
pub fn path_id(path: Result<Path<String>, PathRejection>) -> Result<SubscriptionId, String> {
    let Path(raw) = path.map_err(|e| e.body_text())?;
    SubscriptionId::new(raw).map_err(|e| format!("invalid subscription id: {e}"))
}

/// Which outbox entries `who` may see: the operator all of them, a customer's user
/// those about its own subscriptions, a partner those addressed to it (also when it
/// acts as the customer's delegated administrator); nobody else any.
pub fn may_see(who: &Who, notification: &Notification) -> bool {
    match who {
        Who::Operator => true,
        Who::Actor(Actor::Customer {
            role: CustomerRole::DelegatedAdministrator { partner },
            ..
        }) => &notification.partner == partner,
        Who::Actor(Actor::Customer { customer, .. }) => &notification.customer == customer,
        Who::Actor(Actor::Partner { mpn_id }) => &notification.partner == mpn_id,
        Who::Actor(_) => false,
    }
}

impl<R, D, C> AppState<R, D, C>
where
    R: Store + 'static,
    D: PartnerDirectory + 'static,
    C: Clock + 'static,
{
    /// The emails `who` may see ([`may_see`]): sent (newest first) and waiting.
    pub async fn outbox_for(
        &self,
        who: &Who,
    ) -> Result<(Vec<dpor::Notification>, Vec<dpor::Notification>), dpor::StoreError> {
        let mut sent = self.outbox.sent();
        sent.retain(|n| may_see(who, n));
        sent.reverse();
        // The oldest 1,000 waiting, then the reader's first 100 of them: a customer's own
        // are not crowded out by other tenants' first hundred.
        let mut pending = self
            .service
            .repository()
            .pending_notifications(1000)
            .await?;
        pending.retain(|n| may_see(who, n));
        pending.truncate(100);
        Ok((sent, pending))
    }
}

/// "contoso — global administrator", "partner 565380", "the operator".
pub fn describe(who: &Who) -> String {
    match who {
        Who::Actor(Actor::Customer { customer, role, .. }) => format!("{customer} — {role}"),
        Who::Actor(Actor::Partner { mpn_id }) => format!("partner {mpn_id}"),
        Who::Actor(_) => "the billing system".to_owned(),
        Who::Operator => "the portal's operator".to_owned(),
    }
}

/// The role's form value on the sign-in page.
pub fn role_key(role: &CustomerRole) -> &'static str {
    match role {
        CustomerRole::GlobalAdministrator => "global_administrator",
        CustomerRole::BillingAdministrator => "billing_administrator",
        CustomerRole::ServiceAdministrator => "service_administrator",
        CustomerRole::DelegatedAdministrator { .. } => "delegated_administrator",
        _ => "other",
    }
}

/// A timestamp as the pages show it: `2026-01-05 10:00:00 UTC`.
pub fn when(at: OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| at.to_string())
}
