//! The reference portal (`examples/portal/`) through its router, without a network:
//! every status code of the JSON API, the happy path, and the pages' handling of bad
//! input (cookies, forms, escaping).

#[allow(dead_code)]
#[path = "../examples/portal/api.rs"]
mod api;
#[allow(dead_code)]
#[path = "../examples/portal/app.rs"]
mod app;
#[allow(dead_code)]
#[path = "../examples/portal/html.rs"]
mod html;
#[allow(dead_code)]
#[path = "../examples/portal/pages.rs"]
mod pages;
#[allow(dead_code)]
#[path = "../examples/portal/seed.rs"]
mod seed;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use dpor::*;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use time::{Duration, macros::datetime};
use tower::ServiceExt;

struct Portal {
    router: Router,
    clock: ManualClock,
    outbox: RecordingNotifier,
}

/// The demo world on a manual clock.
async fn portal() -> Portal {
    let outbox = RecordingNotifier::new();
    let clock = ManualClock::new(datetime!(2026-01-05 10:00 UTC));
    let service = PorService::new(
        InMemoryRepository::new(),
        seed::directory().unwrap(),
        outbox.clone(),
    )
    .with_clock(clock.clone());
    seed::seed(&service).await.unwrap();
    let router = app::build_app(service, outbox.clone(), seed::customers().unwrap());
    Portal {
        router,
        clock,
        outbox,
    }
}

fn admin() -> Actor {
    Actor::global_admin(CustomerId::new("contoso").unwrap())
}

fn role(role: CustomerRole) -> Actor {
    Actor::customer(CustomerId::new("contoso").unwrap(), role)
}

fn partner(mpn: &str) -> Actor {
    Actor::partner(MpnId::parse(mpn).unwrap())
}

async fn send(router: &Router, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, bytes.to_vec())
}

/// Sends `request` and reads the answer as JSON (`Null` when empty).
async fn send_json(router: &Router, request: Request<Body>) -> (StatusCode, Value) {
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
async fn send_page(router: &Router, request: Request<Body>) -> (StatusCode, String) {
    let (status, bytes) = send(router, request).await;
    (status, String::from_utf8(bytes).unwrap())
}

/// An API call as `actor` (no `X-Actor` header when `None`).
async fn call(
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
async fn get(router: &Router, actor: &Actor, uri: &str) -> (StatusCode, Value) {
    call(router, Method::GET, uri, Some(actor), None).await
}

/// Asserts an error answer: the status, the code, the exact body shape, and the
/// message for the customer.
fn assert_error(answer: &(StatusCode, Value), status: StatusCode, code: &str) -> String {
    assert_eq!(answer.0, status, "{}", answer.1);
    let object = answer.1.as_object().expect("an error body is an object");
    assert_eq!(object.len(), 2, "{}", answer.1);
    assert_eq!(object["error"], code, "{}", answer.1);
    let message = object["message"].as_str().expect("a message").to_owned();
    assert!(!message.is_empty());
    message
}

async fn check(router: &Router, actor: &Actor, sub: &str, mpn: &str) -> (StatusCode, Value) {
    call(
        router,
        Method::POST,
        &format!("/api/subscriptions/{sub}/partner-of-record/check"),
        Some(actor),
        Some(json!({ "mpn_id": mpn }).to_string()),
    )
    .await
}

async fn put(router: &Router, actor: &Actor, sub: &str, check: &Value) -> (StatusCode, Value) {
    call(
        router,
        Method::PUT,
        &format!("/api/subscriptions/{sub}/partner-of-record"),
        Some(actor),
        Some(check.to_string()),
    )
    .await
}

async fn delete(router: &Router, actor: &Actor, sub: &str) -> (StatusCode, Value) {
    call(
        router,
        Method::DELETE,
        &format!("/api/subscriptions/{sub}/partner-of-record"),
        Some(actor),
        None,
    )
    .await
}

#[tokio::test]
async fn happy_path_check_put_get_history_delete() {
    let Portal { router, outbox, .. } = portal().await;
    let admin = admin();

    let (status, list) = get(&router, &admin, "/api/subscriptions").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sub-001", "sub-002", "sub-003", "sub-004"]);
    assert_eq!(list[0]["partner_of_record"], Value::Null);
    assert_eq!(list[1]["partner_of_record"]["mpn_id"], "3664167");

    // "Check ID": the partner's name and location, nobody to replace.
    let (status, found) = check(&router, &admin, "sub-001", " 565380 ").await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["subscription"], "sub-001");
    assert_eq!(found["partner"]["name"], "Fabrikam Consulting");
    assert_eq!(found["partner"]["location"], "Seattle, WA, United States");
    assert_eq!(found["current"], Value::Null);
    assert_eq!(found["version"], 0);
    assert_eq!(found["checked_at"], "2026-01-05T10:00:00Z");

    // "Submit": the check round-trips as the body.
    let (status, receipt) = put(&router, &admin, "sub-001", &found).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["changed"], true);
    assert_eq!(receipt["notifications_delivered"], 1);
    assert_eq!(receipt["notifications_pending"], 0);
    assert_eq!(receipt["events"].as_array().unwrap().len(), 1);

    // "Edit partner of record" shows the MPN ID.
    let (status, sub) = get(&router, &admin, "/api/subscriptions/sub-001").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sub["partner_of_record"]["mpn_id"], "565380");
    assert_eq!(
        sub["partner_of_record"]["partner_name"],
        "Fabrikam Consulting"
    );
    assert_eq!(sub["version"], 1);

    // Submitting the same check again: idempotent, no email.
    let (_, again) = check(&router, &admin, "sub-001", "565380").await;
    let (status, receipt) = put(&router, &admin, "sub-001", &again).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(receipt["changed"], false);

    let (status, history) = get(&router, &admin, "/api/subscriptions/sub-001/history").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history.as_array().unwrap().len(), 1);
    assert_eq!(history[0]["kind"]["type"], "partner_associated");
    assert_eq!(history[0]["kind"]["partner"], "565380");

    let (status, receipt) = delete(&router, &admin, "sub-001").await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["changed"], true);
    assert_eq!(receipt["subscription"]["partner_of_record"], Value::Null);
    let (_, history) = get(&router, &admin, "/api/subscriptions/sub-001/history").await;
    assert_eq!(history.as_array().unwrap().len(), 2);
    assert_eq!(history[1]["kind"]["type"], "partner_removed");

    // The emails: Northwind (seeded on sub-002), then Fabrikam added and removed.
    let emails: Vec<(String, String, NotificationKind)> = outbox
        .sent()
        .into_iter()
        .map(|n| (n.partner.to_string(), n.subscription.to_string(), n.kind))
        .collect();
    assert_eq!(
        emails,
        [
            ("3664167".into(), "sub-002".into(), NotificationKind::Added),
            ("565380".into(), "sub-001".into(), NotificationKind::Added),
            ("565380".into(), "sub-001".into(), NotificationKind::Removed),
        ]
    );
}

#[tokio::test]
async fn check_shows_the_partner_being_replaced_and_put_replaces_it() {
    let Portal { router, .. } = portal().await;
    let (status, found) = check(&router, &admin(), "sub-002", "565380").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["current"]["mpn_id"], "3664167");
    assert_eq!(found["current"]["partner_name"], "Northwind Traders");
    let (status, receipt) = put(&router, &admin(), "sub-002", &found).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(receipt["events"].as_array().unwrap().len(), 2);
    assert_eq!(
        receipt["subscription"]["partner_of_record"]["mpn_id"],
        "565380"
    );
}

#[tokio::test]
async fn unauthenticated_is_401() {
    let Portal { router, .. } = portal().await;
    let missing = call(&router, Method::GET, "/api/subscriptions", None, None).await;
    assert_error(&missing, StatusCode::UNAUTHORIZED, "unauthenticated");

    for bad in [
        "not json",
        r#"{"type":"customer","customer":"contoso"}"#,
        r#"{"type":"customer","customer":"contoso","role":{"type":"global_administrator"},"extra":1}"#,
        r#"{"type":"partner","mpn_id":"12"}"#,
        r#"{"type":"customer","customer":"","role":{"type":"global_administrator"}}"#,
    ] {
        let request = Request::get("/api/subscriptions/sub-001")
            .header("x-actor", bad)
            .body(Body::empty())
            .unwrap();
        let answer = send_json(&router, request).await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthenticated");
    }

    // A header that is not even text.
    let request = Request::get("/api/subscriptions")
        .header("x-actor", &b"\xff\xfe"[..])
        .body(Body::empty())
        .unwrap();
    let answer = send_json(&router, request).await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthenticated");

    // Authentication comes first, even on a route with a bad body.
    let answer = call(
        &router,
        Method::PUT,
        "/api/subscriptions/sub-001/partner-of-record",
        None,
        Some("{".into()),
    )
    .await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn bad_mpn_id_body_and_id_are_400() {
    let Portal { router, .. } = portal().await;
    let admin = admin();

    let answer = check(&router, &admin, "sub-001", "56538O").await;
    let message = assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_mpn_id");
    assert_eq!(
        message,
        Error::from(MpnId::parse("56538O").unwrap_err()).to_string()
    );
    let answer = check(&router, &admin, "sub-001", "").await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_mpn_id");

    let uri = "/api/subscriptions/sub-001/partner-of-record/check";
    for body in [
        "",
        "{",
        r#"{"mpn":"565380"}"#,
        r#"{"mpn_id":565380}"#,
        r#"{"mpn_id":"565380","x":1}"#,
    ] {
        let answer = call(&router, Method::POST, uri, Some(&admin), Some(body.into())).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_body");
    }

    // PUT with something that is not a check (a forged field of the wrong type, an
    // unknown field, an invalid id inside).
    let (_, found) = check(&router, &admin, "sub-001", "565380").await;
    let mut wrong_type = found.clone();
    wrong_type["version"] = json!("zero");
    let mut unknown = found.clone();
    unknown["trusted"] = json!(true);
    let mut bad_mpn = found.clone();
    bad_mpn["partner"]["mpn_id"] = json!("12");
    for body in [wrong_type, unknown, bad_mpn, json!([])] {
        let answer = put(&router, &admin, "sub-001", &body).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_body");
    }

    // The path's id must be the check's subscription.
    let answer = put(&router, &admin, "sub-003", &found).await;
    let message = assert_error(&answer, StatusCode::BAD_REQUEST, "subscription_mismatch");
    assert!(
        message.contains("sub-001") && message.contains("sub-003"),
        "{message}"
    );

    // Ids that are not ids.
    for uri in [
        "/api/subscriptions/sub%20001",
        "/api/subscriptions/%FF",
        "/api/subscriptions/a%09b/history",
    ] {
        let answer = get(&router, &admin, uri).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_subscription_id");
    }
    let long = format!("/api/subscriptions/{}", "x".repeat(129));
    let answer = get(&router, &admin, &long).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_subscription_id");

    // Nothing changed.
    let (_, sub) = get(&router, &admin, "/api/subscriptions/sub-001").await;
    assert_eq!(sub["partner_of_record"], Value::Null);
}

#[tokio::test]
async fn only_the_global_admin_changes_403() {
    let Portal { router, .. } = portal().await;
    let (_, found) = check(&router, &admin(), "sub-001", "565380").await;
    let roles = [
        role(CustomerRole::BillingAdministrator),
        role(CustomerRole::ServiceAdministrator),
        role(CustomerRole::DelegatedAdministrator {
            partner: MpnId::parse("565380").unwrap(),
        }),
    ];
    for viewer in &roles {
        // Viewing is allowed...
        let (status, _) = get(&router, viewer, "/api/subscriptions/sub-002").await;
        assert_eq!(status, StatusCode::OK);
        // ...changing is not.
        assert_error(
            &check(&router, viewer, "sub-001", "565380").await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        assert_error(
            &put(&router, viewer, "sub-001", &found).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        assert_error(
            &delete(&router, viewer, "sub-002").await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    // A partner never designates itself, and does not list a customer's subscriptions.
    let fabrikam = partner("565380");
    assert_error(
        &check(&router, &fabrikam, "sub-001", "565380").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &put(&router, &fabrikam, "sub-001", &found).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let answer = get(&router, &fabrikam, "/api/subscriptions").await;
    assert_error(&answer, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn not_found_is_404() {
    let Portal { router, .. } = portal().await;
    let admin = admin();
    let answer = get(&router, &admin, "/api/subscriptions/sub-999").await;
    assert_error(&answer, StatusCode::NOT_FOUND, "subscription_not_found");
    // Another customer's subscription reads as missing.
    for uri in [
        "/api/subscriptions/fc-001",
        "/api/subscriptions/fc-001/history",
    ] {
        let answer = get(&router, &admin, uri).await;
        assert_error(&answer, StatusCode::NOT_FOUND, "subscription_not_found");
    }
    assert_error(
        &check(&router, &admin, "fc-001", "565380").await,
        StatusCode::NOT_FOUND,
        "subscription_not_found",
    );
    assert_error(
        &delete(&router, &admin, "sub-999").await,
        StatusCode::NOT_FOUND,
        "subscription_not_found",
    );

    let answer = check(&router, &admin, "sub-001", "99999").await;
    let message = assert_error(&answer, StatusCode::NOT_FOUND, "partner_not_found");
    assert!(message.contains("99999"), "{message}");

    let answer = get(&router, &admin, "/api/nothing-here").await;
    assert_error(&answer, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn conflicts_are_409() {
    let Portal { router, outbox, .. } = portal().await;
    let admin = admin();

    // Two checks of the same version: the second submit lost the race.
    let (_, fabrikam) = check(&router, &admin, "sub-001", "565380").await;
    let (_, northwind) = check(&router, &admin, "sub-001", "3664167").await;
    assert_eq!(
        put(&router, &admin, "sub-001", &fabrikam).await.0,
        StatusCode::OK
    );
    let sent = outbox.sent().len();
    let answer = put(&router, &admin, "sub-001", &northwind).await;
    assert_error(&answer, StatusCode::CONFLICT, "conflict");
    assert_eq!(outbox.sent().len(), sent, "a refused change sends no email");
    let (_, sub) = get(&router, &admin, "/api/subscriptions/sub-001").await;
    assert_eq!(sub["partner_of_record"]["mpn_id"], "565380");

    // Nothing to remove.
    let answer = delete(&router, &admin, "sub-003").await;
    assert_error(&answer, StatusCode::CONFLICT, "no_partner_of_record");

    // A cancelled subscription's partner of record is frozen.
    let answer = check(&router, &admin, "sub-004", "565380").await;
    assert_error(&answer, StatusCode::CONFLICT, "subscription_not_active");
    let answer = delete(&router, &admin, "sub-004").await;
    assert_error(&answer, StatusCode::CONFLICT, "subscription_not_active");
}

#[tokio::test]
async fn an_old_check_is_410() {
    let Portal { router, clock, .. } = portal().await;
    let (_, found) = check(&router, &admin(), "sub-001", "565380").await;
    clock.advance(Duration::minutes(16));
    let answer = put(&router, &admin(), "sub-001", &found).await;
    let message = assert_error(&answer, StatusCode::GONE, "check_expired");
    assert!(message.contains("check the partner ID again"), "{message}");

    // A check dated in the future (forged) is refused the same way.
    let (_, mut forged) = check(&router, &admin(), "sub-001", "565380").await;
    forged["checked_at"] = json!("2030-01-01T00:00:00Z");
    let answer = put(&router, &admin(), "sub-001", &forged).await;
    assert_error(&answer, StatusCode::GONE, "check_expired");
}

#[tokio::test]
async fn a_partner_not_enrolled_is_422_even_in_a_forged_check() {
    let Portal { router, .. } = portal().await;
    let admin = admin();
    let answer = check(&router, &admin, "sub-001", "4412040").await;
    let message = assert_error(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "partner_not_enrolled",
    );
    assert!(message.contains("4412040"), "{message}");

    // Forge a check for the Usage-only partner: submit looks it up again.
    let (_, mut forged) = check(&router, &admin, "sub-001", "565380").await;
    forged["partner"]["mpn_id"] = json!("4412040");
    forged["partner"]["programs"] = json!(["online_services_sell"]);
    let answer = put(&router, &admin, "sub-001", &forged).await;
    assert_error(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "partner_not_enrolled",
    );
}

#[tokio::test]
async fn a_forged_name_in_the_check_is_harmless() {
    let Portal { router, outbox, .. } = portal().await;
    let (_, mut forged) = check(&router, &admin(), "sub-003", "565380").await;
    forged["partner"]["name"] = json!("<script>alert(1)</script> Evil Corp");
    forged["partner"]["contact_email"] = json!("attacker@evil.example");
    let (status, receipt) = put(&router, &admin(), "sub-003", &forged).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        receipt["subscription"]["partner_of_record"]["partner_name"],
        "Fabrikam Consulting"
    );
    let last = outbox.sent().pop().unwrap();
    assert_eq!(last.contact_email.as_deref(), Some("por@fabrikam.example"));
}

/// A store that is down.
struct DownRepository;

#[async_trait]
impl Repository for DownRepository {
    async fn insert(&self, _: Subscription) -> Result<(), StoreError> {
        Err(StoreError::Backend("down".into()))
    }
    async fn get(&self, _: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        Err(StoreError::Backend("down".into()))
    }
    async fn list_by_customer(&self, _: &CustomerId) -> Result<Vec<Subscription>, StoreError> {
        Err(StoreError::Backend("down".into()))
    }
    async fn list_by_partner(&self, _: &MpnId) -> Result<Vec<Subscription>, StoreError> {
        Err(StoreError::Backend("down".into()))
    }
    async fn commit(&self, _: Commit) -> Result<(), StoreError> {
        Err(StoreError::Backend("down".into()))
    }
    async fn history(&self, _: &SubscriptionId) -> Result<Vec<AssociationEvent>, StoreError> {
        Err(StoreError::Backend("down".into()))
    }
    async fn page_subscriptions(
        &self,
        _: Option<&SubscriptionId>,
        _: usize,
    ) -> Result<Vec<Subscription>, StoreError> {
        Err(StoreError::Backend("down".into()))
    }
    async fn import_subscriptions(
        &self,
        _: Vec<(Subscription, Vec<AssociationEvent>)>,
    ) -> Result<(), StoreError> {
        Err(StoreError::Backend("down".into()))
    }
}

#[async_trait]
impl Outbox for DownRepository {
    async fn claim(
        &self,
        _: Claim<'_>,
        _: time::OffsetDateTime,
        _: Duration,
        _: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        Err(StoreError::Backend("down".into()))
    }
    async fn mark_delivered(&self, _: &[NotificationId]) -> Result<(), StoreError> {
        Err(StoreError::Backend("down".into()))
    }
    async fn record_failure(&self, _: &Failure) -> Result<(), StoreError> {
        Err(StoreError::Backend("down".into()))
    }
    async fn pending_notifications(&self, _: usize) -> Result<Vec<Notification>, StoreError> {
        Err(StoreError::Backend("down".into()))
    }
    async fn dead_letters(&self, _: Option<u64>, _: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        Err(StoreError::Backend("down".into()))
    }
    async fn redrive(
        &self,
        _: &NotificationId,
        _: time::OffsetDateTime,
    ) -> Result<bool, StoreError> {
        Err(StoreError::Backend("down".into()))
    }
    async fn page_outbox(&self, _: Option<u64>, _: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        Err(StoreError::Backend("down".into()))
    }
    async fn import_outbox(&self, _: Vec<OutboxEntry>) -> Result<(), StoreError> {
        Err(StoreError::Backend("down".into()))
    }
}

/// A partner directory that is down.
struct DownDirectory;

#[async_trait]
impl PartnerDirectory for DownDirectory {
    async fn lookup(&self, _: MpnId) -> Result<Option<Partner>, DirectoryError> {
        Err(DirectoryError::new("timeout"))
    }
}

#[tokio::test]
async fn backend_failures_are_5xx() {
    let router = portal_over(DownRepository, seed::directory().unwrap());
    let answer = get(&router, &admin(), "/api/subscriptions").await;
    assert_error(&answer, StatusCode::INTERNAL_SERVER_ERROR, "store_failed");
    let answer = check(&router, &admin(), "sub-001", "565380").await;
    assert_error(&answer, StatusCode::INTERNAL_SERVER_ERROR, "store_failed");
    // The outbox page says the store failed, and does not fail itself.
    let (status, page) = get_page(&router, "/outbox", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("The outbox could not be read"), "{page}");

    let repository = InMemoryRepository::new();
    seed_subscription(&repository).await;
    let router = portal_over(repository, DownDirectory);
    let answer = check(&router, &admin(), "sub-001", "565380").await;
    assert_error(
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        "directory_unavailable",
    );
}

/// The portal over `repository` and `directory` (for the failing ones), on the system
/// clock.
fn portal_over<R, D>(repository: R, directory: D) -> Router
where
    R: Store + 'static,
    D: PartnerDirectory + 'static,
{
    let outbox = RecordingNotifier::new();
    let service = PorService::new(repository, directory, outbox.clone());
    app::build_app(service, outbox, seed::customers().unwrap())
}

async fn seed_subscription(repository: &InMemoryRepository) {
    repository
        .insert(Subscription::new(
            SubscriptionId::new("sub-001").unwrap(),
            CustomerId::new("contoso").unwrap(),
            CloudService::Office365,
            "Office 365 E3",
        ))
        .await
        .unwrap();
}

#[test]
fn every_error_variant_has_a_status_and_a_snake_case_code() {
    let sub = SubscriptionId::new("sub-001").unwrap();
    let mpn = MpnId::parse("565380").unwrap();
    let cases = [
        (Error::from(MpnIdError::Empty), 400, "invalid_mpn_id"),
        (
            Error::Forbidden {
                reason: "no".into(),
            },
            403,
            "forbidden",
        ),
        (
            Error::SubscriptionNotFound(sub.clone()),
            404,
            "subscription_not_found",
        ),
        (Error::PartnerNotFound(mpn), 404, "partner_not_found"),
        (
            Error::Conflict {
                subscription: sub.clone(),
                expected: 0,
                actual: 1,
            },
            409,
            "conflict",
        ),
        (
            Error::NoPartnerOfRecord(sub.clone()),
            409,
            "no_partner_of_record",
        ),
        (
            Error::SubscriptionNotActive {
                subscription: sub.clone(),
                status: SubscriptionStatus::Suspended,
            },
            409,
            "subscription_not_active",
        ),
        (
            Error::SubscriptionCancelled(sub.clone()),
            409,
            "subscription_cancelled",
        ),
        (
            Error::SubscriptionAlreadyExists(sub.clone()),
            409,
            "subscription_already_exists",
        ),
        (
            Error::CheckExpired {
                checked_at: datetime!(2026-01-05 10:00 UTC),
            },
            410,
            "check_expired",
        ),
        (
            Error::PartnerNotEnrolled {
                mpn_id: mpn,
                program: Program::OnlineServicesSell,
            },
            422,
            "partner_not_enrolled",
        ),
        (
            Error::Directory(DirectoryError::new("x")),
            503,
            "directory_unavailable",
        ),
        (
            Error::Store(StoreError::Backend("x".into())),
            500,
            "store_failed",
        ),
    ];
    for (error, status, code) in cases {
        assert_eq!(
            app::classify(&error),
            (StatusCode::from_u16(status).unwrap(), code),
            "{error:?}"
        );
    }
}

// ---- the pages: bad input never panics, everything is escaped ----

async fn get_page(router: &Router, uri: &str, cookie: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::get(uri);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    send_page(router, request.body(Body::empty()).unwrap()).await
}

/// A form POST, signed in with `cookie` when there is one.
fn form_request(uri: &str, cookie: Option<&str>, form: &str) -> Request<Body> {
    let mut request = Request::post(uri);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .unwrap()
}

async fn post_form(router: &Router, uri: &str, cookie: &str, form: &str) -> (StatusCode, String) {
    send_page(router, form_request(uri, Some(cookie), form)).await
}

fn cookie_for(actor: &Actor) -> String {
    let set_cookie = app::sign_in_cookie(actor).unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn sign_in_sets_a_cookie_that_the_pages_read() {
    let Portal { router, .. } = portal().await;
    let request = form_request(
        "/sign-in",
        None,
        "kind=customer&customer=contoso&role=billing_administrator&delegated_partner=",
    );
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let set_cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
    let cookie = set_cookie.split(';').next().unwrap();
    assert_eq!(
        cookie,
        cookie_for(&role(CustomerRole::BillingAdministrator))
    );

    let (status, page) = get_page(&router, "/subscriptions", Some(cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("contoso — billing administrator"), "{page}");
    assert!(page.contains("Northwind Traders"));
    // A billing administrator is offered no actions.
    let (_, page) = get_page(&router, "/subscriptions/sub-002", Some(cookie)).await;
    assert!(
        page.contains(r#"id="no-actions""#) && !page.contains("action-edit"),
        "{page}"
    );

    // A bad MPN ID on the partner sign-in is shown next to the field.
    let request = form_request("/sign-in", None, "kind=partner&mpn_id=%3Cb%3E");
    let (status, page) = send_page(&router, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains(r#"id="partner-mpn-id-error""#), "{page}");
    assert!(
        page.contains("value=\"&lt;b&gt;\"") && !page.contains("<b>"),
        "{page}"
    );
}

#[tokio::test]
async fn bad_cookies_read_as_signed_out() {
    let Portal { router, .. } = portal().await;
    let good = cookie_for(&admin());
    for bad in [
        "dpor_actor=%7B".to_owned(),
        "dpor_actor=%ZZ".to_owned(),
        "dpor_actor={\"type\":\"partner\"}".to_owned(),
        "dpor_actor=%7B%22type%22%3A%22partner%22%2C%22mpn_id%22%3A%2212%22%7D".to_owned(),
        format!("{good}; {good}"),
        "dpor_actor=%C3%28".to_owned(),
    ] {
        let (status, _) = get_page(&router, "/subscriptions", Some(&bad)).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{bad}");
        let (status, page) = get_page(&router, "/", Some(&bad)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(r#"id="notice""#), "{bad}: {page}");
    }
    let (status, page) = get_page(
        &router,
        "/subscriptions",
        Some(&format!("theme=dark; {good}")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Office 365 E3"));
}

#[tokio::test]
async fn check_id_pane_escapes_and_round_trips_the_check() {
    let Portal { router, .. } = portal().await;
    let cookie = cookie_for(&admin());

    // An error is shown next to the field, with what was typed, escaped.
    let (status, page) = post_form(
        &router,
        "/subscriptions/sub-001/partner-of-record/check",
        &cookie,
        "mpn_id=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains(r#"id="mpn-id-error""#), "{page}");
    assert!(!page.contains("<script>"), "{page}");
    assert!(
        page.contains("value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""),
        "{page}"
    );

    // "Check ID" shows name, location and the partner being replaced, and carries the
    // check as escaped JSON in a hidden field.
    let (status, page) = post_form(
        &router,
        "/subscriptions/sub-002/partner-of-record/check",
        &cookie,
        "mpn_id=565380",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Fabrikam Consulting") && page.contains("Seattle, WA, United States"));
    assert!(
        page.contains(r#"id="partner-replaced">Northwind Traders (3664167)"#),
        "{page}"
    );
    let start = page.find(r#"name="check" value=""#).unwrap() + r#"name="check" value=""#.len();
    let end = start + page[start..].find('"').unwrap();
    let escaped = &page[start..end];
    assert!(escaped.contains("&quot;subscription&quot;"));
    let json = escaped
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let check: PartnerCheck = serde_json::from_str(&json).unwrap();
    assert_eq!(check.partner().name(), "Fabrikam Consulting");

    // Submitting the form: the confirmation.
    let form = format!("check={}", dpor::link::percent_encode(&json));
    let (status, page) = post_form(
        &router,
        "/subscriptions/sub-002/partner-of-record",
        &cookie,
        &form,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("Your partner of record has been updated"),
        "{page}"
    );

    // A garbled or foreign check is a readable error, not a panic.
    let (status, page) = post_form(
        &router,
        "/subscriptions/sub-002/partner-of-record",
        &cookie,
        "check=%7Bnope",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("the partner check could not be read"),
        "{page}"
    );
    let (status, page) = post_form(
        &router,
        "/subscriptions/sub-001/partner-of-record",
        &cookie,
        &form,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("this check is for subscription sub-002"),
        "{page}"
    );
    let (status, page) = post_form(
        &router,
        "/subscriptions/sub-002/partner-of-record",
        &cookie,
        "%%%",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains(r#"id="mpn-id-error""#), "{page}");
    let (status, page) = get_page(&router, "/subscriptions/%FF", Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("Invalid URL"), "{page}");

    // The outbox shows Fabrikam's email.
    let (_, page) = get_page(&router, "/outbox", None).await;
    assert!(page.contains("por@fabrikam.example"), "{page}");
}

#[test]
fn percent_decoding_is_strict() {
    assert_eq!(dpor::link::percent_decode("a%20b").as_deref(), Some("a b"));
    for bad in ["%", "%2", "%G0", "a b", "%C3%28", "{"] {
        assert_eq!(dpor::link::percent_decode(bad), None, "{bad}");
    }
    let text = "{\"é\": [1, 2]; x=y}";
    assert_eq!(
        dpor::link::percent_decode(&dpor::link::percent_encode(text)).as_deref(),
        Some(text)
    );
}

// ---- the portal's doors, fuzzed: the sign-in cookie and the X-Actor header ----

/// Requests carrying `value` as the X-Actor header and as the sign-in cookie: each
/// answers without a server error (a bad actor reads as signed out, or as 401).
fn doors_with(router: &Router, value: &[u8]) -> Result<(), String> {
    let Ok(header_value) = axum::http::HeaderValue::from_bytes(value) else {
        return Ok(()); // not a header value at all: the HTTP layer never hands it on
    };
    let mut cookie = format!("{}=", app::COOKIE).into_bytes();
    cookie.extend_from_slice(value);
    let cookie = axum::http::HeaderValue::from_bytes(&cookie).map_err(|e| e.to_string())?;
    let requests = [
        Request::get("/api/subscriptions")
            .header("x-actor", header_value.clone())
            .body(Body::empty()),
        Request::get("/api/subscriptions/sub-001/history")
            .header("x-actor", header_value)
            .body(Body::empty()),
        Request::get("/subscriptions")
            .header(header::COOKIE, cookie.clone())
            .body(Body::empty()),
        Request::get("/subscriptions/sub-001")
            .header(header::COOKIE, cookie)
            .body(Body::empty()),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    for request in requests {
        let request = request.map_err(|e| e.to_string())?;
        let uri = request.uri().to_string();
        let status =
            runtime.block_on(async { router.clone().oneshot(request).await.unwrap().status() });
        if status.is_server_error() {
            return Err(format!("{uri} with {value:?}: {status}"));
        }
    }
    Ok(())
}

fn fuzz_router() -> Router {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(portal()).router
}

/// Valid actors, as the header and the cookie carry them, to mutate.
fn actor_seeds() -> Vec<String> {
    [
        admin(),
        role(CustomerRole::DelegatedAdministrator {
            partner: MpnId::parse("565380").unwrap(),
        }),
        partner("3664167"),
        Actor::billing_system(),
    ]
    .iter()
    .map(|actor| serde_json::to_string(actor).unwrap())
    .collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_actor_headers_and_cookies_never_fail_the_server(
        value in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..96),
    ) {
        let router = fuzz_router();
        doors_with(&router, &value).map_err(proptest::test_runner::TestCaseError::fail)?;
    }

    #[test]
    fn mutated_actors_never_fail_the_server(
        seed in proptest::sample::select(actor_seeds()),
        at in proptest::prelude::any::<usize>(),
        cut in 0usize..8,
        insert in proptest::sample::select(vec!["", "\"", "{", "}", "[", "]", ",\"x\":1", "%", "%2", "%22", "\u{200b}", "null"]),
    ) {
        let mut text = seed;
        let mut start = at % (text.len() + 1);
        while !text.is_char_boundary(start) { start -= 1; }
        let mut end = (start + cut).min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        text.replace_range(start..end.max(start), insert);
        let router = fuzz_router();
        doors_with(&router, text.as_bytes()).map_err(proptest::test_runner::TestCaseError::fail)?;
        let encoded = dpor::link::percent_encode(&text);
        doors_with(&router, encoded.as_bytes()).map_err(proptest::test_runner::TestCaseError::fail)?;
    }
}
