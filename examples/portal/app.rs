//! The portal's shared part: its state, the router, who is signed in, and how a
//! [`dpor::Error`] maps to HTTP.
//!
//! The seam for other stores is [`build_app`]: it takes any
//! `PorService<R, D, RecordingNotifier, C>`, so the same pages and API run over the
//! in-memory repository, a SQL one, or a test double.

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use dpor::{
    Actor, Clock, CustomerId, CustomerRole, Error, PartnerDirectory, PorService, RecordingNotifier,
    Store, SubscriptionId,
};
use time::OffsetDateTime;

use dpor::link::{percent_decode, percent_encode};

use super::pages;

/// The service the portal runs on. The notifier is the in-memory recorder so that the
/// Outbox page can show what was "emailed".
pub type Service<R, D, C> = PorService<R, D, RecordingNotifier, C>;

/// What every handler gets.
pub struct AppState<R, D, C> {
    /// The partner-of-record service.
    pub service: Service<R, D, C>,
    /// The same recorder the service delivers to (it shares its state between clones).
    pub outbox: RecordingNotifier,
    /// The customers offered on the demo sign-in page.
    pub customers: Vec<CustomerId>,
}

/// The state as handlers receive it.
pub type Shared<R, D, C> = Arc<AppState<R, D, C>>;

/// The whole portal: HTML pages and the JSON API over one service.
///
/// `outbox` must be (a clone of) the notifier the service was built with.
pub fn build_app<R, D, C>(
    service: Service<R, D, C>,
    outbox: RecordingNotifier,
    customers: Vec<CustomerId>,
) -> Router
where
    R: Store + 'static,
    D: PartnerDirectory + 'static,
    C: Clock + 'static,
{
    let state: Shared<R, D, C> = Arc::new(AppState {
        service,
        outbox,
        customers,
    });
    type S<R, D, C> = AppState<R, D, C>;
    Router::new()
        // Pages.
        .route("/", get(S::sign_in_page))
        .route("/sign-in", post(S::sign_in))
        .route("/sign-out", post(pages::sign_out))
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
        .route("/outbox", get(S::outbox_page))
        // JSON API.
        .route("/api/subscriptions", get(S::api_list))
        .route("/api/subscriptions/{id}", get(S::api_get))
        .route(
            "/api/subscriptions/{id}/partner-of-record/check",
            post(S::api_check),
        )
        .route(
            "/api/subscriptions/{id}/partner-of-record",
            axum::routing::put(S::api_submit).delete(S::api_remove),
        )
        .route("/api/subscriptions/{id}/history", get(S::api_history))
        .fallback(pages::not_found)
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
        "invalid_mpn_id" => StatusCode::BAD_REQUEST,
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

/// The name of the demo sign-in cookie.
pub const COOKIE: &str = "dpor_actor";

/// Who the browser says it is.
pub enum Identity {
    /// No sign-in cookie.
    SignedOut,
    /// A sign-in cookie that does not parse: treated as signed out (and cleared).
    Invalid,
    /// A well-formed actor.
    SignedIn(Actor),
}

impl Identity {
    /// Reads the demo sign-in cookie: the actor's JSON, percent-encoded. It is plain and
    /// unsigned (this is a demo: anyone may be anyone), but parsed strictly: exactly one
    /// cookie of that name, strict percent-decoding, and the strict `Actor` JSON.
    pub fn from_headers(headers: &HeaderMap) -> Identity {
        let mut found: Option<&str> = None;
        for value in headers.get_all(header::COOKIE) {
            let Ok(value) = value.to_str() else {
                return Identity::Invalid;
            };
            for pair in value.split(';') {
                if let Some(v) = pair
                    .trim()
                    .strip_prefix(COOKIE)
                    .and_then(|v| v.strip_prefix('='))
                {
                    if found.is_some() {
                        return Identity::Invalid;
                    }
                    found = Some(v);
                }
            }
        }
        match found {
            None | Some("") => Identity::SignedOut,
            Some(raw) => match percent_decode(raw)
                .and_then(|json| serde_json::from_str::<Actor>(&json).ok())
            {
                Some(actor) => Identity::SignedIn(actor),
                None => Identity::Invalid,
            },
        }
    }
}

/// The `Set-Cookie` value that signs `actor` in.
pub fn sign_in_cookie(actor: &Actor) -> Result<String, serde_json::Error> {
    let json = serde_json::to_string(actor)?;
    Ok(format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Lax",
        percent_encode(&json)
    ))
}

/// The `Set-Cookie` value that signs out.
pub fn sign_out_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// "contoso — global administrator", "partner 565380".
pub fn describe_actor(actor: &Actor) -> String {
    match actor {
        Actor::Customer { customer, role } => format!("{customer} — {role}"),
        Actor::Partner { mpn_id } => format!("partner {mpn_id}"),
        _ => "the billing system".to_owned(),
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
