//! The JSON API through the router, without a network: every status code, the happy
//! path, the operator's outbox, and the OpenAPI document against the router.

mod common;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::*;
use dpor::*;
use dpor_portal::{app, seed};
use serde_json::{Value, json};
use time::{Duration, macros::datetime};

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
    async fn changes(
        &self,
        _: Option<&dpor::feed::Cursor>,
        _: usize,
    ) -> Result<Vec<dpor::feed::Change>, StoreError> {
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
    let (status, page) = get_page(&router, "/outbox", Some(&signed_in(&admin()).cookie)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(page.contains("the outbox could not be read"), "{page}");

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

/// One error of each variant, with its status and code.
fn error_cases() -> Vec<(Error, u16, &'static str)> {
    let sub = SubscriptionId::new("sub-001").unwrap();
    let mpn = MpnId::parse("565380").unwrap();
    vec![
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
            Error::TimeOutOfRange {
                at: time::OffsetDateTime::UNIX_EPOCH,
            },
            500,
            "time_out_of_range",
        ),
        (
            Error::Store(StoreError::Backend("x".into())),
            500,
            "store_failed",
        ),
        (
            Error::UnknownCursor(dpor::feed::Cursor::new(0, 7)),
            400,
            "unknown_cursor",
        ),
    ]
}

#[test]
fn every_error_variant_has_a_status_and_a_snake_case_code() {
    let cases = error_cases();
    for (error, status, code) in cases {
        assert_eq!(
            app::classify(&error),
            (StatusCode::from_u16(status).unwrap(), code),
            "{error:?}"
        );
    }
}

// ---- the operator's outbox ----

async fn outbox_with(router: &Router, authorization: Option<&str>) -> (StatusCode, Value) {
    let mut request = Request::get("/api/outbox");
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    send_json(router, request.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn the_outbox_api_is_the_operators_alone() {
    let Portal { router, .. } = portal().await;
    assert_error(
        &outbox_with(&router, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    for wrong in [
        "Bearer guess",
        "Bearer ",
        "Basic b3BlcmF0b3I6",
        OPERATOR_TOKEN,
    ] {
        let answer = outbox_with(&router, Some(wrong)).await;
        assert!(
            answer.0 == StatusCode::FORBIDDEN || answer.0 == StatusCode::UNAUTHORIZED,
            "{wrong}: {answer:?}"
        );
    }
    // An actor, even the billing system, is not the operator.
    let answer = call(
        &router,
        Method::GET,
        "/api/outbox",
        Some(&Actor::billing_system()),
        None,
    )
    .await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthenticated");

    let (status, body) = outbox_with(&router, Some(&format!("Bearer {OPERATOR_TOKEN}"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sent = body["sent"].as_array().unwrap();
    assert_eq!(sent.len(), 1, "{body}");
    assert_eq!(sent[0]["partner"], "3664167");
    assert_eq!(sent[0]["contact_email"], "partners@northwind.example");
    assert_eq!(body["pending"], json!([]));
}

// ---- the OpenAPI document, held against the router ----

/// Every `Error::code()` value, one error of each variant.
fn service_codes() -> std::collections::BTreeSet<&'static str> {
    error_cases()
        .iter()
        .map(|(error, _, _)| error.code())
        .collect()
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_of_the_router() {
    let Portal { router, .. } = portal().await;
    let (status, doc) = send_json(
        &router,
        Request::get("/api/openapi.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();

    // The router's API routes are exactly the documented paths...
    let routes = dpor_portal::api::routes::<InMemoryRepository, InMemoryDirectory, SystemClock>();
    let mut routed: Vec<&str> = routes.paths.clone();
    routed.sort_unstable();
    let mut documented: Vec<&str> = paths.keys().map(String::as_str).collect();
    documented.sort_unstable();
    assert_eq!(routed, documented);
    // ...and on each, the methods the router answers are exactly the documented ones.
    for (path, item) in paths {
        let concrete = path.replace("{id}", "sub-001");
        for method in ["get", "post", "put", "delete", "patch"] {
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .body(Body::empty())
                .unwrap();
            let (status, _) = send(&router, request).await;
            let answered = status != StatusCode::METHOD_NOT_ALLOWED;
            assert_eq!(
                answered,
                item.get(method).is_some(),
                "{method} {path}: {status}"
            );
        }
    }

    // The service's codes it documents are exactly those `Error::code()` returns; the
    // portal's own request codes are none of them.
    let schemas = &doc["components"]["schemas"];
    let codes = |name: &str| -> std::collections::BTreeSet<String> {
        schemas[name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: {}", schemas[name]))
            .iter()
            .map(|code| code.as_str().unwrap().to_owned())
            .collect()
    };
    let service: std::collections::BTreeSet<String> =
        service_codes().into_iter().map(str::to_owned).collect();
    assert_eq!(codes("ServiceErrorCode"), service);
    assert!(codes("RequestErrorCode").is_disjoint(&service));
}

/// `DELETE ?version=N` removes only the partner of record the caller saw: a change
/// since is 409 and removes nothing; the same call again changes nothing.
#[tokio::test]
async fn a_delete_given_the_version_seen_removes_only_what_was_seen() {
    let Portal { router, outbox, .. } = portal().await;
    let admin = admin();
    let uri =
        |version: &str| format!("/api/subscriptions/sub-002/partner-of-record?version={version}");
    let delete_at = |version: &'static str| {
        let router = router.clone();
        let admin = admin.clone();
        async move { call(&router, Method::DELETE, &uri(version), Some(&admin), None).await }
    };
    let (_, seen) = get(&router, &admin, "/api/subscriptions/sub-002").await;
    assert_eq!(seen["version"], 1);
    let (_, fabrikam) = check(&router, &admin, "sub-002", "565380").await;
    assert_eq!(
        put(&router, &admin, "sub-002", &fabrikam).await.0,
        StatusCode::OK
    );
    let sent = outbox.sent().len();

    assert_error(&delete_at("1").await, StatusCode::CONFLICT, "conflict");
    assert_eq!(outbox.sent().len(), sent, "nobody told");
    let (status, removed) = delete_at("2").await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["changed"], true);
    let (status, again) = delete_at("2").await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["changed"], false);
    assert_error(
        &delete_at("two").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
}
