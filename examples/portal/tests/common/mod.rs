//! What the portal's tests share: the demo world on a manual clock, requests through
//! the router (no network), and signed-in sessions.
#![allow(dead_code)] // each test crate uses some of these

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use dpor::*;
use dpor_portal::session::{Session, Sessions, Who};
use dpor_portal::{Config, build_app, seed};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use time::macros::datetime;
use tower::ServiceExt;

/// The operator token of the tests' portal.
pub const OPERATOR_TOKEN: &str = "operator-secret-of-the-tests";

/// The key the tests' portal signs sessions with.
pub fn sessions() -> Sessions {
    Sessions::new(&[42; 64], false).unwrap()
}

/// The tests' settings: a fixed key, no proxy, the demo customers.
pub fn config() -> Config {
    Config {
        sessions: sessions(),
        origin: None,
        operator_token: OPERATOR_TOKEN.to_owned(),
        customers: seed::customers().unwrap(),
    }
}

pub struct Portal {
    pub router: Router,
    pub clock: ManualClock,
    pub outbox: RecordingNotifier,
}

/// The demo world on a manual clock.
pub async fn portal() -> Portal {
    let outbox = RecordingNotifier::new();
    let clock = ManualClock::new(datetime!(2026-01-05 10:00 UTC));
    let service = PorService::new(
        InMemoryRepository::new(),
        seed::directory().unwrap(),
        outbox.clone(),
    )
    .with_clock(clock.clone());
    seed::seed(&service).await.unwrap();
    let router = build_app(service, outbox.clone(), config());
    Portal {
        router,
        clock,
        outbox,
    }
}

pub fn admin() -> Actor {
    Actor::global_admin(CustomerId::new("contoso").unwrap())
}

pub fn role(role: CustomerRole) -> Actor {
    Actor::customer(CustomerId::new("contoso").unwrap(), role)
}

pub fn partner(mpn: &str) -> Actor {
    Actor::partner(MpnId::parse(mpn).unwrap())
}

pub async fn send(router: &Router, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, bytes.to_vec())
}

/// Sends `request` and reads the answer as JSON (`Null` when empty).
pub async fn send_json(router: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let uri = request.uri().to_string();
    let (status, bytes) = send(router, request).await;
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!("{uri}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes))
        })
    };
    (status, value)
}

/// Sends `request` and reads the answer as an HTML page.
pub async fn send_page(router: &Router, request: Request<Body>) -> (StatusCode, String) {
    let (status, bytes) = send(router, request).await;
    (status, String::from_utf8(bytes).unwrap())
}

/// An API call as `actor` (no `X-Actor` header when `None`).
pub async fn call(
    router: &Router,
    method: Method,
    uri: &str,
    actor: Option<&Actor>,
    body: Option<String>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(actor) = actor {
        request = request.header("x-actor", serde_json::to_string(actor).unwrap());
    }
    let body = match body {
        Some(body) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(body)
        }
        None => Body::empty(),
    };
    send_json(router, request.body(body).unwrap()).await
}

/// A GET of the API as `actor`.
pub async fn get(router: &Router, actor: &Actor, uri: &str) -> (StatusCode, Value) {
    call(router, Method::GET, uri, Some(actor), None).await
}

/// Asserts an error answer: the status, the code, the exact body shape, and the
/// message for the customer.
pub fn assert_error(answer: &(StatusCode, Value), status: StatusCode, code: &str) -> String {
    assert_eq!(answer.0, status, "{}", answer.1);
    let object = answer.1.as_object().expect("an error body is an object");
    assert_eq!(object.len(), 2, "{}", answer.1);
    assert_eq!(object["error"], code, "{}", answer.1);
    let message = object["message"].as_str().expect("a message").to_owned();
    assert!(!message.is_empty());
    message
}

pub async fn check(router: &Router, actor: &Actor, sub: &str, mpn: &str) -> (StatusCode, Value) {
    call(
        router,
        Method::POST,
        &format!("/api/subscriptions/{sub}/partner-of-record/check"),
        Some(actor),
        Some(json!({ "mpn_id": mpn }).to_string()),
    )
    .await
}

pub async fn put(router: &Router, actor: &Actor, sub: &str, check: &Value) -> (StatusCode, Value) {
    call(
        router,
        Method::PUT,
        &format!("/api/subscriptions/{sub}/partner-of-record"),
        Some(actor),
        Some(check.to_string()),
    )
    .await
}

pub async fn delete(router: &Router, actor: &Actor, sub: &str) -> (StatusCode, Value) {
    call(
        router,
        Method::DELETE,
        &format!("/api/subscriptions/{sub}/partner-of-record"),
        Some(actor),
        None,
    )
    .await
}

/// The portal over `repository` and `directory` (for the failing ones), on the system
/// clock.
pub fn portal_over<R, D>(repository: R, directory: D) -> Router
where
    R: Store + 'static,
    D: PartnerDirectory + 'static,
{
    let outbox = RecordingNotifier::new();
    let service = PorService::new(repository, directory, outbox.clone());
    build_app(service, outbox, config())
}

/// A browser that signed in: its session cookie, and the token its forms carry.
pub struct Browser {
    /// The `Cookie` header value.
    pub cookie: String,
    /// The session's CSRF token.
    pub csrf: String,
}

/// A browser signed in as `who` (the session signed with the tests' key).
pub fn browser(who: Who) -> Browser {
    let session = Session::new(Some(who));
    Browser {
        cookie: sessions().cookie_header(&session),
        csrf: session.csrf,
    }
}

/// A browser signed in as `actor`.
pub fn signed_in(actor: &Actor) -> Browser {
    browser(Who::Actor(actor.clone()))
}

pub async fn get_page(router: &Router, uri: &str, cookie: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::get(uri);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    send_page(router, request.body(Body::empty()).unwrap()).await
}

/// A form POST with `cookie` when there is one, and `form` exactly as given.
pub fn form_request(uri: &str, cookie: Option<&str>, form: &str) -> Request<Body> {
    let mut request = Request::post(uri);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .unwrap()
}

/// A form POST from `browser`, carrying its CSRF token as the page's forms do.
pub async fn post_form(
    router: &Router,
    uri: &str,
    browser: &Browser,
    form: &str,
) -> (StatusCode, String) {
    let form = format!("{form}&csrf={}", browser.csrf);
    send_page(router, form_request(uri, Some(&browser.cookie), &form)).await
}

/// The value of the first `name="{name}" value="..."` input on `page`, unescaped.
pub fn input_value(page: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    let end = start + page[start..].find('"').unwrap();
    page[start..end]
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
