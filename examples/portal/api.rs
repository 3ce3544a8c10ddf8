//! The JSON API: the same service as the pages, the actor in an `X-Actor` header.
//!
//! | route | does |
//! |---|---|
//! | `GET /api/subscriptions` | the actor's subscriptions |
//! | `GET /api/subscriptions/{id}` | one subscription |
//! | `POST /api/subscriptions/{id}/partner-of-record/check` | "Check ID": body `{"mpn_id":"565380"}`, answers the `PartnerCheck` |
//! | `PUT /api/subscriptions/{id}/partner-of-record` | "Submit": body the `PartnerCheck` |
//! | `DELETE /api/subscriptions/{id}/partner-of-record` | remove the partner of record |
//! | `GET /api/subscriptions/{id}/history` | the subscription's events |
//!
//! Errors answer `{"error": code, "message": text}` with the status of
//! [`classify`]; a missing or unreadable `X-Actor` is 401, an unreadable id or body 400.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use dpor::{
    Actor, AssociationEvent, Clock, Error, PartnerCheck, PartnerDirectory, Receipt, Store,
    Subscription, SubscriptionId,
};
use serde::{Deserialize, Serialize};

use super::app::{self, AppState, Shared, classify};

/// The header that carries the actor's JSON, e.g.
/// `{"type":"customer","customer":"contoso","role":{"type":"global_administrator"}}`.
pub const ACTOR_HEADER: &str = "x-actor";

/// An API error: its status and the JSON body `{"error": code, "message": text}`.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let (status, code) = classify(&error);
        ApiError::new(status, code, error.to_string())
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            message: &self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

/// The body of "Check ID".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckRequest {
    mpn_id: String,
}

/// What a change did, as JSON.
#[derive(Serialize)]
struct ReceiptBody<'a> {
    changed: bool,
    subscription: &'a Subscription,
    events: &'a [AssociationEvent],
    notifications_delivered: usize,
    notifications_pending: usize,
}

/// What a handler answers.
type Answer = Result<Response, ApiError>;

/// A 200 with `value` as the JSON body.
fn json(value: impl Serialize) -> Answer {
    Ok(Json(value).into_response())
}

fn receipt(receipt: &Receipt) -> Answer {
    json(ReceiptBody {
        changed: receipt.changed,
        subscription: &receipt.subscription,
        events: &receipt.events,
        notifications_delivered: receipt.notifications_delivered,
        notifications_pending: receipt.notifications_pending,
    })
}

/// The actor from `X-Actor`: 401 when missing or not a valid `Actor` JSON.
fn actor(headers: &HeaderMap) -> Result<Actor, ApiError> {
    let unauthorized =
        |message: String| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message);
    let value = headers
        .get(ACTOR_HEADER)
        .ok_or_else(|| unauthorized("the X-Actor header is missing".to_owned()))?;
    let text = value
        .to_str()
        .map_err(|_| unauthorized("the X-Actor header is not text".to_owned()))?;
    serde_json::from_str(text)
        .map_err(|e| unauthorized(format!("the X-Actor header is not a valid actor: {e}")))
}

/// The actor (see [`actor`]), then the subscription id in the path: 400 when it does
/// not decode or is not an id. The actor comes first: unauthenticated is 401 whatever
/// the path.
fn actor_and_id(
    headers: &HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<(Actor, SubscriptionId), ApiError> {
    let actor = actor(headers)?;
    let id = app::path_id(path).map_err(|message| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_subscription_id", message)
    })?;
    Ok((actor, id))
}

fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("the request body is not valid: {e}"),
        )
    })
}

impl<R, D, C> AppState<R, D, C>
where
    R: Store + 'static,
    D: PartnerDirectory + 'static,
    C: Clock + 'static,
{
    /// `GET /api/subscriptions`
    pub async fn api_list(State(state): State<Shared<R, D, C>>, headers: HeaderMap) -> Answer {
        let actor = actor(&headers)?;
        json(state.service.subscriptions(&actor).await?)
    }

    /// `GET /api/subscriptions/{id}`
    pub async fn api_get(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        path: Result<Path<String>, PathRejection>,
    ) -> Answer {
        let (actor, id) = actor_and_id(&headers, path)?;
        json(state.service.subscription(&actor, &id).await?)
    }

    /// `POST /api/subscriptions/{id}/partner-of-record/check`
    pub async fn api_check(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        path: Result<Path<String>, PathRejection>,
        bytes: Bytes,
    ) -> Answer {
        let (actor, id) = actor_and_id(&headers, path)?;
        let request: CheckRequest = body(&bytes)?;
        let check = state
            .service
            .check_partner(&actor, &id, &request.mpn_id)
            .await?;
        json(check)
    }

    /// `PUT /api/subscriptions/{id}/partner-of-record`
    pub async fn api_submit(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        path: Result<Path<String>, PathRejection>,
        bytes: Bytes,
    ) -> Answer {
        let (actor, id) = actor_and_id(&headers, path)?;
        let check: PartnerCheck = body(&bytes)?;
        if check.subscription() != &id {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "subscription_mismatch",
                format!(
                    "the check is for subscription {}, not {id}",
                    check.subscription()
                ),
            ));
        }
        receipt(&state.service.submit(&actor, &check).await?)
    }

    /// `DELETE /api/subscriptions/{id}/partner-of-record`
    pub async fn api_remove(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        path: Result<Path<String>, PathRejection>,
    ) -> Answer {
        let (actor, id) = actor_and_id(&headers, path)?;
        receipt(&state.service.remove_partner(&actor, &id).await?)
    }

    /// `GET /api/subscriptions/{id}/history`
    pub async fn api_history(
        State(state): State<Shared<R, D, C>>,
        headers: HeaderMap,
        path: Result<Path<String>, PathRejection>,
    ) -> Answer {
        let (actor, id) = actor_and_id(&headers, path)?;
        json(state.service.history(&actor, &id).await?)
    }
}

/// The JSON 404 for an unknown `/api/...` route.
pub fn unknown_route() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "there is no such API route",
    )
    .into_response()
}
