//! The pages through the router, without a network: sessions, CSRF tokens and the
//! refusal of cross-site requests, the KB's removal gesture, the outbox's readers, and
//! bad input (cookies, forms, escaping).

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use dpor::link::PartnerLink;
use dpor::*;
use tower::ServiceExt;

fn sub(id: &str) -> SubscriptionId {
    SubscriptionId::new(id).unwrap()
}

/// "Submit" of the check on `page` (a Partner information pane after "Check ID"), on
/// subscription `id`, from `browser`.
async fn submit_found(
    router: &Router,
    browser: &Browser,
    id: &str,
    page: &str,
) -> (StatusCode, String) {
    let check = input_value(page, "check");
    let form = format!("check={}", dpor::link::percent_encode(&check));
    let uri = format!("/subscriptions/{id}/partner-of-record");
    post_form(router, &uri, browser, &form).await
}

/// "Remove" on the removal question `question` of subscription `id`, from `browser`,
/// with the version the question showed.
async fn confirm_removal(
    router: &Router,
    browser: &Browser,
    id: &str,
    question: &str,
) -> (StatusCode, String) {
    let form = format!("version={}", input_value(question, "version"));
    let uri = format!("/subscriptions/{id}/partner-of-record/remove");
    post_form(router, &uri, browser, &form).await
}

/// The partner of record of `id`, as the service sees it.
async fn partner_of(router: &Router, id: &str) -> Option<String> {
    let (_, value) = get(router, &admin(), &format!("/api/subscriptions/{id}")).await;
    value["partner_of_record"]["mpn_id"]
        .as_str()
        .map(str::to_owned)
}

// ---- sessions ----

/// A customer id and user name whose session would not fit in a cookie are refused
/// with a word, not signed in with a cookie the browser silently drops.
#[tokio::test]
async fn a_session_too_large_for_a_cookie_is_refused_with_a_word() {
    let Portal { router, .. } = portal().await;
    let visitor = browser_signed_out(&router).await;
    let form = format!(
        "kind=customer&customer={}&role=global_administrator&user={}",
        dpor::link::percent_encode(&"\u{1F600}".repeat(128)),
        dpor::link::percent_encode(&"\u{1F600}".repeat(256)),
    );
    let (status, page) = post_form(&router, "/sign-in", &visitor, &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(
        page.contains(r#"id="user-error""#) && page.contains("too long to keep in a session"),
        "{page}"
    );
}

/// Every answer forbids framing and caching, pages, API and refusals alike.
#[tokio::test]
async fn every_answer_forbids_framing_and_caching() {
    let Portal { router, .. } = portal().await;
    let admin_browser = signed_in(&admin());
    let requests = [
        Request::get("/subscriptions/sub-002/partner-of-record/remove")
            .header(header::COOKIE, &admin_browser.cookie)
            .body(Body::empty())
            .unwrap(),
        Request::get("/api/subscriptions")
            .header("x-actor", serde_json::to_string(&admin()).unwrap())
            .body(Body::empty())
            .unwrap(),
        form_request("/sign-out", None, ""),
    ];
    for request in requests {
        let uri = request.uri().clone();
        let response = router.clone().oneshot(request).await.unwrap();
        let headers = response.headers();
        for (name, value) in [
            ("x-frame-options", "DENY"),
            ("content-security-policy", "frame-ancestors 'none'"),
            ("cache-control", "no-store"),
            ("x-content-type-options", "nosniff"),
        ] {
            assert_eq!(
                headers.get(name).map(|v| v.to_str().unwrap()),
                Some(value),
                "{uri}: {name}"
            );
        }
    }
}

#[tokio::test]
async fn signing_in_takes_the_token_of_the_page_and_starts_a_new_session() {
    let Portal { router, .. } = portal().await;
    // A first visit gets a signed-out session, whose token the sign-in forms carry.
    let response = router
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let set_cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let (_, page) = get_page(&router, "/", Some(&cookie)).await;
    let visitor = Browser {
        csrf: input_value(&page, "csrf"),
        cookie,
    };

    let form = "kind=customer&customer=contoso&role=billing_administrator&delegated_partner=";
    let cookie = sign_in(&router, &visitor, form).await.cookie;
    assert_ne!(cookie, visitor.cookie);

    let (status, page) = get_page(&router, "/subscriptions", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("contoso — billing administrator"), "{page}");
    assert!(page.contains("Northwind Traders"));
    // The new session's token is not the old one: the signed-out form is spent.
    assert_ne!(input_value(&page, "csrf"), visitor.csrf);
    // A billing administrator is offered no actions.
    let (_, page) = get_page(&router, "/subscriptions/sub-002", Some(&cookie)).await;
    assert!(
        page.contains(r#"id="no-actions""#) && !page.contains("action-edit"),
        "{page}"
    );

    // A named user is recorded with the changes, and the history page says who.
    let form =
        "kind=customer&customer=contoso&role=global_administrator&user=alice%40contoso.example";
    let alice = sign_in(&router, &visitor, form).await;
    let remove = "/subscriptions/sub-002/partner-of-record/remove";
    let (status, _) = post_form(&router, remove, &alice, "version=1").await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = get_page(
        &router,
        "/subscriptions/sub-002/history",
        Some(&alice.cookie),
    )
    .await;
    assert!(
        page.contains("alice@contoso.example (global administrator)"),
        "{page}"
    );
    let form = "kind=customer&customer=contoso&role=global_administrator&user=a%20b";
    let (status, page) = post_form(&router, "/sign-in", &visitor, form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains(r#"id="user-error""#), "{page}");

    // A bad MPN ID on the partner sign-in is shown next to the field, escaped.
    let (status, page) =
        post_form(&router, "/sign-in", &visitor, "kind=partner&mpn_id=%3Cb%3E").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains(r#"id="partner-mpn-id-error""#), "{page}");
    assert!(
        page.contains("value=\"&lt;b&gt;\"") && !page.contains("<b>"),
        "{page}"
    );
}

#[tokio::test]
async fn a_cookie_this_portal_did_not_sign_reads_as_signed_out() {
    let Portal { router, .. } = portal().await;
    let good = signed_in(&admin()).cookie;
    let other_key = dpor_portal::session::Sessions::new(&[7; 64], false)
        .unwrap()
        .cookie_header(&dpor_portal::session::Session::new(Some(
            dpor_portal::session::Who::Actor(admin()),
        )));
    let unsigned = format!(
        "{}={}",
        dpor_portal::session::COOKIE,
        dpor::link::percent_encode(&format!(
            r#"{{"who":{{"actor":{}}},"csrf":"x"}}"#,
            serde_json::to_string(&admin()).unwrap()
        ))
    );
    for bad in [
        other_key,
        unsigned,
        good.replace("contoso", "fourthcoffee"),
        format!("{good}; {good}"),
        "dpor_session=%C3%28".to_owned(),
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

// ---- CSRF and cross-site requests: 403, nothing changed ----

#[tokio::test]
async fn a_form_without_the_sessions_token_is_refused_and_changes_nothing() {
    let Portal { router, outbox, .. } = portal().await;
    let admin_browser = signed_in(&admin());
    let sent = outbox.sent().len();
    let remove = "/subscriptions/sub-002/partner-of-record/remove";
    let other_session = signed_in(&admin());
    for (cookie, form) in [
        (Some(admin_browser.cookie.as_str()), String::new()),
        (Some(admin_browser.cookie.as_str()), "csrf=".to_owned()),
        (
            Some(admin_browser.cookie.as_str()),
            format!("csrf={}", other_session.csrf),
        ),
        (None, format!("csrf={}", admin_browser.csrf)),
    ] {
        let (status, page) = send_page(&router, form_request(remove, cookie, &form)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{form}");
        assert!(page.contains("nothing changed"), "{page}");
    }
    // Signing in and out need the token too.
    let (status, _) = send_page(
        &router,
        form_request(
            "/sign-in",
            Some(&admin_browser.cookie),
            "kind=partner&mpn_id=565380",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send_page(
        &router,
        form_request("/sign-out", Some(&admin_browser.cookie), ""),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    assert_eq!(
        partner_of(&router, "sub-002").await.as_deref(),
        Some("3664167")
    );
    assert_eq!(outbox.sent().len(), sent);
    // With the token, the same form removes the partner.
    let (status, page) = post_form(&router, remove, &admin_browser, "version=1").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(partner_of(&router, "sub-002").await, None);
}

#[tokio::test]
async fn a_cross_site_request_is_refused_and_changes_nothing() {
    let Portal { router, outbox, .. } = portal().await;
    let admin_browser = signed_in(&admin());
    let sent = outbox.sent().len();
    let remove = "/subscriptions/sub-002/partner-of-record/remove";
    for (name, value) in [
        ("origin", "http://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        // A page's form, with a valid session and token.
        let mut request = form_request(
            remove,
            Some(&admin_browser.cookie),
            &format!("csrf={}", admin_browser.csrf),
        );
        request
            .headers_mut()
            .insert("host", "localhost:8080".parse().unwrap());
        request.headers_mut().insert(name, value.parse().unwrap());
        let (status, page) = send_page(&router, request).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {value}");
        assert!(page.contains("came from another site"), "{page}");
        // The JSON API's removal.
        let request = Request::delete("/api/subscriptions/sub-002/partner-of-record")
            .header("x-actor", serde_json::to_string(&admin()).unwrap())
            .header("host", "localhost:8080")
            .header(name, value)
            .body(Body::empty())
            .unwrap();
        let answer = send_json(&router, request).await;
        assert_error(&answer, StatusCode::FORBIDDEN, "forbidden");
    }
    assert_eq!(
        partner_of(&router, "sub-002").await.as_deref(),
        Some("3664167")
    );
    assert_eq!(outbox.sent().len(), sent);

    // The portal's own origin passes.
    let mut request = form_request(
        remove,
        Some(&admin_browser.cookie),
        &format!("version=1&csrf={}", admin_browser.csrf),
    );
    for (name, value) in [
        ("host", "localhost:8080"),
        ("origin", "http://localhost:8080"),
        ("sec-fetch-site", "same-origin"),
    ] {
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    let (status, page) = send_page(&router, request).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(partner_of(&router, "sub-002").await, None);
}

// ---- KB3185444: "deleting the MPN ID and clicking the check button" ----

#[tokio::test]
async fn clearing_the_partner_id_and_checking_asks_to_remove_then_removes() {
    let Portal { router, outbox, .. } = portal().await;
    let admin_browser = signed_in(&admin());
    let check = "/subscriptions/sub-002/partner-of-record/check";
    for cleared in ["mpn_id=", "mpn_id=%20%20"] {
        let (status, page) = post_form(&router, check, &admin_browser, cleared).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains(r#"id="current-mpn-id">3664167"#), "{page}");
        assert!(
            page.contains(r#"id="remove-partner-name">Northwind Traders"#),
            "{page}"
        );
        assert!(page.contains(r#"id="confirm-remove""#), "{page}");
        assert_eq!(
            input_value(&page, "version"),
            "1",
            "the version the question shows"
        );
        // Only asked: nothing changed yet.
        assert_eq!(
            partner_of(&router, "sub-002").await.as_deref(),
            Some("3664167")
        );
    }
    let remove = "/subscriptions/sub-002/partner-of-record/remove";
    let (status, page) = post_form(&router, remove, &admin_browser, "version=1").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("The partner of record was removed"), "{page}");
    assert_eq!(partner_of(&router, "sub-002").await, None);
    let last = outbox.sent().pop().unwrap();
    assert_eq!(
        (last.partner.as_str(), last.kind),
        ("3664167", NotificationKind::Removed)
    );
    assert_eq!(last.subscription, sub("sub-002"));
    // "Remove" again (a double click): nothing left to do, no second email.
    let sent = outbox.sent().len();
    let (status, page) = post_form(&router, remove, &admin_browser, "version=1").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Nothing changed"), "{page}");
    assert_eq!(outbox.sent().len(), sent);
    // A confirmation that does not say what it confirms is not taken.
    let (status, page) = post_form(&router, remove, &admin_browser, "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");

    // With no partner of record, an empty field is the usual error.
    let (status, page) = post_form(&router, check, &admin_browser, "mpn_id=").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(
        page.contains(r#"id="mpn-id-error""#) && !page.contains("confirm-remove"),
        "{page}"
    );
    // Someone who may not remove is not asked to.
    let Portal { router, .. } = portal().await;
    let billing = signed_in(&role(CustomerRole::BillingAdministrator));
    let (status, page) = post_form(&router, check, &billing, "mpn_id=").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(!page.contains("confirm-remove"), "{page}");
    assert!(
        !page.contains(r#"id="check-id""#),
        "no field to check with: {page}"
    );
    // Nor from "More actions" by its address.
    let (status, page) = get_page(&router, remove, Some(&billing.cookie)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(!page.contains("confirm-remove"), "{page}");
}

/// KB3185444: changing the partner tells both (the old one removed, the new one
/// added), and a partner can be added again after a removal, "as many times as the
/// customer wishes".
#[tokio::test]
async fn a_replacement_tells_both_partners_and_a_removed_partner_can_come_back() {
    let Portal { router, outbox, .. } = portal().await;
    let admin_browser = signed_in(&admin());
    let check = "/subscriptions/sub-002/partner-of-record/check";
    let sent = outbox.sent().len();
    let (_, found) = post_form(&router, check, &admin_browser, "mpn_id=565380").await;
    assert!(
        found.contains(r#"id="partner-replaced">Northwind Traders (3664167)"#),
        "{found}"
    );
    let (status, page) = submit_found(&router, &admin_browser, "sub-002", &found).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let told: Vec<(String, NotificationKind)> = outbox.sent()[sent..]
        .iter()
        .map(|n| (n.partner.to_string(), n.kind))
        .collect();
    assert_eq!(
        told,
        [
            ("3664167".to_owned(), NotificationKind::Removed),
            ("565380".to_owned(), NotificationKind::Added)
        ]
    );

    let (_, question) = post_form(&router, check, &admin_browser, "mpn_id=").await;
    let (status, _) = confirm_removal(&router, &admin_browser, "sub-002", &question).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(partner_of(&router, "sub-002").await, None);
    let (_, found) = post_form(&router, check, &admin_browser, "mpn_id=565380").await;
    let (status, page) = submit_found(&router, &admin_browser, "sub-002", &found).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        partner_of(&router, "sub-002").await.as_deref(),
        Some("565380")
    );
    let last = outbox.sent().pop().unwrap();
    assert_eq!(
        (last.partner.as_str(), last.kind),
        ("565380", NotificationKind::Added)
    );
}

/// Checking the partner already on record says so, and submitting it changes nothing
/// and sends nothing.
#[tokio::test]
async fn checking_the_current_partner_says_so_and_submitting_it_changes_nothing() {
    let Portal { router, outbox, .. } = portal().await;
    let admin_browser = signed_in(&admin());
    let check = "/subscriptions/sub-002/partner-of-record/check";
    let (status, found) = post_form(&router, check, &admin_browser, "mpn_id=3664167").await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert!(found.contains(r#"id="already-current""#), "{found}");
    let sent = outbox.sent().len();
    let (status, page) = submit_found(&router, &admin_browser, "sub-002", &found).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Nothing changed"), "{page}");
    assert_eq!(outbox.sent().len(), sent);
}

/// "Remove" on a question asked before someone else changed the partner of record
/// removes nothing: the admin never saw the partner it would remove.
#[tokio::test]
async fn remove_on_a_stale_question_removes_nothing() {
    let Portal { router, outbox, .. } = portal().await;
    let admin_browser = signed_in(&admin());
    let check = "/subscriptions/sub-002/partner-of-record/check";
    let (_, question) = post_form(&router, check, &admin_browser, "mpn_id=").await;
    assert!(question.contains(r#"id="remove-partner-name">Northwind Traders"#));
    // Meanwhile, in another tab: Fabrikam replaces Northwind.
    let (_, found) = post_form(&router, check, &admin_browser, "mpn_id=565380").await;
    let (status, _) = submit_found(&router, &admin_browser, "sub-002", &found).await;
    assert_eq!(status, StatusCode::OK);
    let sent = outbox.sent().len();

    let (status, page) = confirm_removal(&router, &admin_browser, "sub-002", &question).await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert_eq!(
        partner_of(&router, "sub-002").await.as_deref(),
        Some("565380")
    );
    assert_eq!(outbox.sent().len(), sent, "nobody told");
}

/// The removal gesture on a subscription that is not active says so, as the service
/// would, instead of asking.
#[tokio::test]
async fn clearing_the_partner_id_of_a_suspended_subscription_says_it_is_not_active() {
    let repository = InMemoryRepository::new();
    let directory = dpor_portal::seed::directory().unwrap();
    let service = PorService::new(
        repository.clone(),
        directory.clone(),
        RecordingNotifier::new(),
    );
    dpor_portal::seed::seed(&service).await.unwrap();
    service
        .suspend(&Actor::billing_system(), &sub("sub-002"))
        .await
        .unwrap();
    let router = portal_over(repository, directory);
    let admin_browser = signed_in(&admin());
    let check = "/subscriptions/sub-002/partner-of-record/check";
    let (status, page) = post_form(&router, check, &admin_browser, "mpn_id=").await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("is suspended"), "{page}");
    assert!(!page.contains("confirm-remove"), "{page}");
}

// ---- a partner's own pages ----

/// A signed-in partner's list opens each subscription's history, which it may read
/// (not the subscription page, which it may not).
#[tokio::test]
async fn a_partner_opens_the_history_of_each_subscription_on_its_list() {
    let Portal { router, .. } = portal().await;
    let northwind = signed_in(&partner("3664167"));
    let (status, list) = get_page(&router, "/subscriptions", Some(&northwind.cookie)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let link = r#"href="/subscriptions/sub-002/history""#;
    assert!(list.contains(link), "{list}");
    let (status, page) = get_page(
        &router,
        "/subscriptions/sub-002/history",
        Some(&northwind.cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("Dynamics 365 Sales") && page.contains(r#"id="history""#),
        "{page}"
    );
    // Another partner's subscription: refused, as the service refuses it.
    let fabrikam = signed_in(&partner("565380"));
    let (status, page) = get_page(
        &router,
        "/subscriptions/sub-002/history",
        Some(&fabrikam.cookie),
    )
    .await;
    assert!(status.is_client_error(), "{status}: {page}");
    assert!(!page.contains("Dynamics 365 Sales"), "{page}");
}

// ---- the partner's quick link ----

/// The partner's quick link opens "Check ID" done: the partner's name, and "Submit".
#[tokio::test]
async fn a_partners_quick_link_opens_the_check_ready_to_submit() {
    let Portal { router, .. } = portal().await;
    let admin_browser = signed_in(&admin());
    let link = PartnerLink {
        subscription: sub("sub-001"),
        mpn_id: MpnId::parse("565380").unwrap(),
    };
    let uri = format!("/link?{}", link.to_query_string());
    let (status, page) = get_page(&router, &uri, Some(&admin_browser.cookie)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(r#"id="partner-name">Fabrikam"#), "{page}");
    assert!(page.contains(r#"id="submit""#), "{page}");
    assert_eq!(
        partner_of(&router, "sub-001").await,
        None,
        "nothing changes yet"
    );
    let (status, page) = submit_found(&router, &admin_browser, "sub-001", &page).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        partner_of(&router, "sub-001").await.as_deref(),
        Some("565380")
    );

    // A link that does not read, or for a partner that cannot be designated, says so.
    for (uri, expected) in [
        ("/link?subscription=sub-001", StatusCode::BAD_REQUEST),
        (
            "/link?subscription=sub-001&mpn_id=12ab5",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/link?subscription=sub-001&mpn_id=99999",
            StatusCode::NOT_FOUND,
        ),
        (
            "/link?subscription=nope&mpn_id=565380",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (status, page) = get_page(&router, uri, Some(&admin_browser.cookie)).await;
        assert_eq!(status, expected, "{uri}: {page}");
        assert!(!page.contains(r#"id="submit""#), "{uri}: {page}");
    }
    // Signed out: to the sign-in page.
    let (status, _) = get_page(&router, &uri, None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

// ---- DNS rebinding ----

/// With no public origin, a request naming another host is refused, reads included:
/// a page whose name was pointed at 127.0.0.1 can neither read nor change anything.
#[tokio::test]
async fn a_request_for_another_host_is_refused() {
    let Portal { router, .. } = portal().await;
    let admin_browser = signed_in(&admin());
    for uri in ["/subscriptions", "/api/subscriptions"] {
        let request = Request::get(uri)
            .header(header::HOST, "evil.example:8080")
            .header(header::COOKIE, &admin_browser.cookie)
            .header("x-actor", serde_json::to_string(&admin()).unwrap())
            .body(Body::empty())
            .unwrap();
        let (status, page) = send_page(&router, request).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}: {page}");
        assert!(!page.contains("sub-002"), "{uri}: {page}");
    }
    let request = Request::delete("/api/subscriptions/sub-002/partner-of-record")
        .header(header::HOST, "evil.example:8080")
        .header("x-actor", serde_json::to_string(&admin()).unwrap())
        .body(Body::empty())
        .unwrap();
    assert_eq!(send_page(&router, request).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        partner_of(&router, "sub-002").await.as_deref(),
        Some("3664167")
    );
    let request = Request::get("/subscriptions")
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::COOKIE, &admin_browser.cookie)
        .body(Body::empty())
        .unwrap();
    assert_eq!(send_page(&router, request).await.0, StatusCode::OK);
}

// ---- who reads the outbox ----

#[tokio::test]
async fn the_outbox_shows_each_reader_only_its_own_emails() {
    let Portal { router, .. } = portal().await;
    // sub-002 (contoso) got Northwind at seeding.
    let (status, _) = get_page(&router, "/outbox", None).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "signed out: to the sign-in page"
    );
    let fourthcoffee = Actor::global_admin(CustomerId::new("fourthcoffee").unwrap());
    let (status, page) = get_page(&router, "/outbox", Some(&signed_in(&fourthcoffee).cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !page.contains("sub-002") && page.contains("No emails yet"),
        "{page}"
    );
    let (_, page) = get_page(&router, "/outbox", Some(&signed_in(&admin()).cookie)).await;
    assert!(page.contains("sub-002"), "{page}");
    assert!(
        !page.contains("partners@northwind.example"),
        "no partner addresses for customers: {page}"
    );
    let (_, page) = get_page(
        &router,
        "/outbox",
        Some(&signed_in(&partner("565380")).cookie),
    )
    .await;
    assert!(!page.contains("sub-002"), "{page}");
    // A partner acting as the customer's delegated administrator is still that partner.
    let delegated = role(CustomerRole::DelegatedAdministrator {
        partner: MpnId::parse("565380").unwrap(),
    });
    let (_, page) = get_page(&router, "/outbox", Some(&signed_in(&delegated).cookie)).await;
    assert!(!page.contains("sub-002"), "{page}");
    let (_, page) = get_page(
        &router,
        "/outbox",
        Some(&signed_in(&partner("3664167")).cookie),
    )
    .await;
    assert!(page.contains("partners@northwind.example"), "{page}");
    let operator = browser(dpor_portal::session::Who::Operator);
    let (_, page) = get_page(&router, "/outbox", Some(&operator.cookie)).await;
    assert!(
        page.contains("partners@northwind.example") && page.contains("sub-002"),
        "{page}"
    );
    // The operator acts on no subscription.
    let (status, _) = get_page(&router, "/subscriptions", Some(&operator.cookie)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // Signing in as the operator takes the operator token.
    let visitor = browser_signed_out(&router).await;
    let (status, page) = post_form(
        &router,
        "/sign-in",
        &visitor,
        "kind=operator&operator_token=guess",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains(r#"id="operator-token-error""#), "{page}");
    let (status, _) = post_form(
        &router,
        "/sign-in",
        &visitor,
        &format!("kind=operator&operator_token={OPERATOR_TOKEN}"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

/// A first visit: the signed-out session and its token.
async fn browser_signed_out(router: &Router) -> Browser {
    let response = router
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    browser_of(router, &response).await
}

/// The browser `visitor` becomes by signing in with `form` (it must be let in): the
/// session the sign-in set, and the token its pages carry.
async fn sign_in(router: &Router, visitor: &Browser, form: &str) -> Browser {
    let request = form_request(
        "/sign-in",
        Some(&visitor.cookie),
        &format!("{form}&csrf={}", visitor.csrf),
    );
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    browser_of(router, &response).await
}

/// A browser holding the session `response` set, and the token of its pages.
async fn browser_of(router: &Router, response: &axum::response::Response) -> Browser {
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let (_, page) = get_page(router, "/", Some(&cookie)).await;
    Browser {
        csrf: input_value(&page, "csrf"),
        cookie,
    }
}

// ---- bad input never panics, everything is escaped ----

#[tokio::test]
async fn check_id_pane_escapes_and_round_trips_the_check() {
    let Portal { router, .. } = portal().await;
    let admin_browser = signed_in(&admin());

    // An error is shown next to the field, with what was typed, escaped.
    let (status, page) = post_form(
        &router,
        "/subscriptions/sub-001/partner-of-record/check",
        &admin_browser,
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
        &admin_browser,
        "mpn_id=565380",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Fabrikam Consulting") && page.contains("Seattle, WA, United States"));
    assert!(
        page.contains(r#"id="partner-replaced">Northwind Traders (3664167)"#),
        "{page}"
    );
    assert!(page.contains("&quot;subscription&quot;"));
    let json = input_value(&page, "check");
    let check: PartnerCheck = serde_json::from_str(&json).unwrap();
    assert_eq!(check.partner().name(), "Fabrikam Consulting");

    // Submitting the form: the confirmation.
    let form = format!("check={}", dpor::link::percent_encode(&json));
    let (status, page) = post_form(
        &router,
        "/subscriptions/sub-002/partner-of-record",
        &admin_browser,
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
        &admin_browser,
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
        &admin_browser,
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
        &admin_browser,
        "%%%",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains(r#"id="mpn-id-error""#), "{page}");
    let (status, page) = get_page(&router, "/subscriptions/%FF", Some(&admin_browser.cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("Invalid URL"), "{page}");

    // The customer's outbox shows the email to Fabrikam.
    let (_, page) = get_page(&router, "/outbox", Some(&admin_browser.cookie)).await;
    assert!(page.contains("partner 565380"), "{page}");
}

// ---- the portal's doors, fuzzed: the sign-in cookie and the X-Actor header ----

/// Requests carrying `value` as the X-Actor header and as the sign-in cookie: each
/// answers without a server error (a bad actor reads as signed out, or as 401).
fn doors_with(router: &Router, value: &[u8]) -> Result<(), String> {
    let Ok(header_value) = axum::http::HeaderValue::from_bytes(value) else {
        return Ok(()); // not a header value at all: the HTTP layer never hands it on
    };
    let mut cookie = format!("{}=", dpor_portal::session::COOKIE).into_bytes();
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

    /// Bytes a header value may hold (visible ASCII, space, tab, and the obs-text
    /// 0x80-0xff), so that every case reaches the portal: arbitrary bytes mostly fail
    /// `HeaderValue::from_bytes` and would test nothing.
    #[test]
    fn arbitrary_actor_headers_and_cookies_never_fail_the_server(
        value in proptest::collection::vec(
            proptest::prop_oneof![proptest::strategy::Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff],
            0..96,
        ),
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
