//! Every error path of the service. A refused change (a submit, a removal) is checked
//! to change nothing; a refused "Check ID" only reads.

mod common;

use common::*;
use dpor::*;
use time::Duration;

async fn check(w: &World, sub: &str, input: &str) -> Result<PartnerCheck, Error> {
    w.service.check_partner(&admin(), &sub_id(sub), input).await
}

/// The error `attempt` answers, once it is checked to have changed nothing.
async fn refused<T: std::fmt::Debug>(
    w: &World,
    attempt: impl std::future::Future<Output = Result<T, Error>>,
) -> Error {
    let before = w.snapshot().await;
    let error = attempt.await.expect_err("the change is refused");
    assert_eq!(
        w.snapshot().await,
        before,
        "a refused change changed something"
    );
    error
}

#[tokio::test]
async fn bad_mpn_input_is_a_typed_error() {
    let w = world().await;
    let before = w.snapshot().await;
    for (input, expected) in [
        ("", MpnIdError::Empty),
        ("   ", MpnIdError::Empty),
        (
            "56a380",
            MpnIdError::InvalidCharacter {
                index: 2,
                character: 'a',
            },
        ),
        ("1234", MpnIdError::WrongLength { length: 4 }),
        ("12345678901", MpnIdError::WrongLength { length: 11 }),
    ] {
        match check(&w, "sub-001", input).await {
            Err(Error::InvalidMpnId(e)) => assert_eq!(e, expected, "{input:?}"),
            other => panic!("{input:?}: {other:?}"),
        }
    }
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn unknown_partner_is_not_found() {
    let w = world().await;
    assert!(
        matches!(check(&w, "sub-001", "99999").await, Err(Error::PartnerNotFound(id)) if id == mpn("99999"))
    );
}

#[tokio::test]
async fn partner_not_enrolled_is_refused() {
    let w = world().await;
    assert!(matches!(
        check(&w, "sub-001", "5139005").await,
        Err(Error::PartnerNotEnrolled { mpn_id, program: Program::OnlineServicesSell }) if mpn_id == mpn("5139005")
    ));
}

#[tokio::test]
async fn cancelled_subscription_is_not_active() {
    let w = world().await;
    assert!(matches!(
        check(&w, "sub-cancelled", "565380").await,
        Err(Error::SubscriptionNotActive {
            status: SubscriptionStatus::Cancelled,
            ..
        })
    ));
    assert!(matches!(
        w.service
            .remove_partner(&admin(), &sub_id("sub-cancelled"))
            .await,
        Err(Error::SubscriptionNotActive { .. })
    ));
}

#[tokio::test]
async fn status_is_checked_before_the_directory() {
    let w = world().await;
    // An unknown partner on a cancelled subscription: the status is reported.
    assert!(matches!(
        check(&w, "sub-cancelled", "99999").await,
        Err(Error::SubscriptionNotActive { .. })
    ));
    // A bad MPN ID on a cancelled subscription: the syntax is reported.
    assert!(matches!(
        check(&w, "sub-cancelled", "x").await,
        Err(Error::InvalidMpnId(_))
    ));
}

#[tokio::test]
async fn missing_subscription_is_not_found() {
    let w = world().await;
    assert!(
        matches!(check(&w, "nope", "565380").await, Err(Error::SubscriptionNotFound(id)) if id.as_str() == "nope")
    );
}

#[tokio::test]
async fn removal_with_no_partner_of_record_is_refused() {
    let w = world().await;
    let before = w.snapshot().await;
    assert!(matches!(
        w.service.remove_partner(&admin(), &sub_id("sub-001")).await,
        Err(Error::NoPartnerOfRecord(id)) if id.as_str() == "sub-001"
    ));
    assert_eq!(w.snapshot().await, before);
}

/// Round-trips a check through JSON with one edit: what a forger can do.
fn forge(check: &PartnerCheck, edit: impl FnOnce(&mut serde_json::Value)) -> PartnerCheck {
    let mut value = serde_json::to_value(check).unwrap();
    edit(&mut value);
    serde_json::from_value(value).unwrap()
}

#[tokio::test]
async fn a_forged_partner_is_looked_up_again() {
    let w = world().await;
    let genuine = check(&w, "sub-001", "565380").await.unwrap();
    let before = w.snapshot().await;

    // Swapped in an unknown partner.
    let unknown = forge(&genuine, |v| v["partner"]["mpn_id"] = "99999".into());
    assert!(matches!(
        w.service.submit(&admin(), &unknown).await,
        Err(Error::PartnerNotFound(_))
    ));

    // Swapped in a partner that is not enrolled, claiming enrolment and another program.
    let claimed = forge(&genuine, |v| {
        v["partner"]["mpn_id"] = "5139005".into();
        v["partner"]["programs"] = serde_json::json!(["online_services_sell"]);
        v["program"] = "online_services_usage".into();
    });
    assert!(matches!(
        w.service.submit(&admin(), &claimed).await,
        Err(Error::PartnerNotEnrolled {
            program: Program::OnlineServicesSell,
            ..
        })
    ));
    assert_eq!(w.snapshot().await, before);

    // An edited name or email is ignored: the directory's values are used.
    let renamed = forge(&genuine, |v| {
        v["partner"]["name"] = "Evil Corp".into();
        v["partner"]["contact_email"] = "evil@example.com".into();
    });
    let receipt = w.service.submit(&admin(), &renamed).await.unwrap();
    assert_eq!(
        receipt
            .subscription
            .partner_of_record()
            .unwrap()
            .partner_name(),
        "Fabrikam Consulting"
    );
    assert_eq!(
        w.notifier.sent()[0].contact_email.as_deref(),
        Some("por@fabrikam.example")
    );
}

#[tokio::test]
async fn a_forged_version_is_a_conflict() {
    let w = world().await;
    let genuine = check(&w, "sub-001", "565380").await.unwrap();
    let forged = forge(&genuine, |v| v["version"] = 7.into());
    let before = w.snapshot().await;
    assert!(matches!(
        w.service.submit(&admin(), &forged).await,
        Err(Error::Conflict {
            expected: 7,
            actual: 0,
            ..
        })
    ));
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn a_forged_subscription_is_authorized_again() {
    let w = world().await;
    let genuine = check(&w, "sub-001", "565380").await.unwrap();
    let forged = forge(&genuine, |v| v["subscription"] = "other-001".into());
    assert!(matches!(
        refused(&w, w.service.submit(&admin(), &forged)).await,
        Error::SubscriptionNotFound(_)
    ));
    let cancelled = forge(&genuine, |v| v["subscription"] = "sub-cancelled".into());
    assert!(matches!(
        refused(&w, w.service.submit(&admin(), &cancelled)).await,
        Error::SubscriptionNotActive { .. }
    ));
}

#[tokio::test]
async fn an_old_check_has_expired() {
    let w = world().await;
    let check = check(&w, "sub-001", "565380").await.unwrap();
    w.clock.advance(Duration::minutes(15));
    let before = w.snapshot().await;
    w.clock.advance(Duration::seconds(1));
    assert!(
        matches!(w.service.submit(&admin(), &check).await, Err(Error::CheckExpired { checked_at }) if checked_at == T0)
    );
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn a_check_exactly_at_the_ttl_is_accepted() {
    let w = world().await;
    let check = check(&w, "sub-001", "565380").await.unwrap();
    w.clock.advance(Duration::minutes(15));
    assert!(w.service.submit(&admin(), &check).await.unwrap().changed);
}

#[tokio::test]
async fn a_check_dated_in_the_future_has_expired() {
    let w = world().await;
    let check = check(&w, "sub-001", "565380").await.unwrap();
    let forged = forge(&check, |v| v["checked_at"] = "2026-01-05T10:05:00Z".into());
    assert!(matches!(
        refused(&w, w.service.submit(&admin(), &forged)).await,
        Error::CheckExpired { .. }
    ));
}

#[tokio::test]
async fn the_check_ttl_is_configurable() {
    let w = world().await;
    let service = w.another_service().with_check_ttl(Duration::minutes(1));
    let check = service
        .check_partner(&admin(), &sub_id("sub-001"), "565380")
        .await
        .unwrap();
    w.clock.advance(Duration::minutes(2));
    assert!(matches!(
        refused(&w, service.submit(&admin(), &check)).await,
        Error::CheckExpired { .. }
    ));
}

#[tokio::test]
async fn a_negative_check_ttl_is_taken_as_zero() {
    let w = world().await;
    let service = w.another_service().with_check_ttl(Duration::minutes(-5));
    let (admin, fabrikam) = (admin(), "565380");
    // At the instant of the check: zero old, not older than zero.
    let sub = sub_id("sub-001");
    let now = service.check_partner(&admin, &sub, fabrikam).await.unwrap();
    assert!(service.submit(&admin, &now).await.unwrap().changed);
    let sub = sub_id("sub-002");
    let later = service.check_partner(&admin, &sub, fabrikam).await.unwrap();
    w.clock.advance(Duration::seconds(1));
    assert!(matches!(
        service.submit(&admin, &later).await,
        Err(Error::CheckExpired { .. })
    ));
}

#[tokio::test]
async fn a_stale_check_after_a_concurrent_change_is_a_conflict() {
    let w = world().await;
    let mine = check(&w, "sub-001", "565380").await.unwrap();
    let theirs = check(&w, "sub-001", "3664167").await.unwrap();
    w.service.submit(&admin(), &theirs).await.unwrap();
    let before = w.snapshot().await;
    assert!(matches!(
        w.service.submit(&admin(), &mine).await,
        Err(Error::Conflict {
            expected: 0,
            actual: 1,
            ..
        })
    ));
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn version_is_checked_before_age() {
    let w = world().await;
    let mine = check(&w, "sub-001", "565380").await.unwrap();
    w.designate("sub-001", &northwind()).await;
    w.clock.advance(Duration::hours(1));
    assert!(matches!(
        refused(&w, w.service.submit(&admin(), &mine)).await,
        Error::Conflict { .. }
    ));
}

#[tokio::test]
async fn a_partner_delisted_after_the_check_is_not_found_at_submit() {
    let w = world().await;
    let check = check(&w, "sub-001", "565380").await.unwrap();
    w.directory.remove(mpn("565380"));
    assert!(matches!(
        refused(&w, w.service.submit(&admin(), &check)).await,
        Error::PartnerNotFound(_)
    ));
}

#[tokio::test]
async fn error_messages_are_readable() {
    let w = world().await;
    let e = check(&w, "sub-001", "5139005").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "partner 5139005 is not enrolled in the Online Services Sell program and cannot be partner of record"
    );
    let e = check(&w, "sub-cancelled", "565380").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "subscription sub-cancelled is cancelled: its partner of record cannot be changed"
    );
}

#[tokio::test]
async fn resubmitting_a_check_whose_partner_is_on_record_succeeds_and_changes_nothing() {
    let w = world().await;
    let check = check(&w, "sub-001", "565380").await.unwrap();
    assert!(w.service.submit(&admin(), &check).await.unwrap().changed);
    let before = w.snapshot().await;
    let sent = w.notifier.sent().len();
    // A double click, then a retry an hour later after a lost response.
    for later in [Duration::ZERO, Duration::hours(1)] {
        w.clock.advance(later);
        let again = w.service.submit(&admin(), &check).await.unwrap();
        assert!(!again.changed && again.events.is_empty());
        assert_eq!(again.subscription.version(), 1);
        assert_eq!(
            (again.notifications_delivered, again.notifications_pending),
            (0, 0)
        );
    }
    assert_eq!(w.snapshot().await, before);
    assert_eq!(w.notifier.sent().len(), sent, "no second email");
}

#[tokio::test]
async fn a_stale_check_never_undoes_a_later_change() {
    let w = world().await;
    let fabrikam_check = check(&w, "sub-001", "565380").await.unwrap();
    w.service.submit(&admin(), &fabrikam_check).await.unwrap();
    let northwind_check = check(&w, "sub-001", "3664167").await.unwrap();
    w.service.submit(&admin(), &northwind_check).await.unwrap();
    // The first check's partner is no longer on record: its version is stale.
    let before = w.snapshot().await;
    assert!(matches!(
        w.service.submit(&admin(), &fabrikam_check).await,
        Err(Error::Conflict {
            expected: 0,
            actual: 2,
            ..
        })
    ));
    assert_eq!(w.snapshot().await, before);
}

/// A partner the directory answers with text the records cannot keep is the
/// directory's fault when it is to be designated: `Error::Directory`, on every store
/// alike, and nothing changes (the SQL stores refused the write as a store failure;
/// the in-memory store kept it). A partner being removed is only told: its record
/// cannot stop the customer, and an address too long to be one is none.
#[tokio::test]
async fn a_directory_record_too_long_to_keep_is_a_directory_error() {
    let w = world().await;
    w.designate("sub-001", &fabrikam()).await;
    w.directory.insert(
        Partner::new(mpn("3664167"), "N".repeat(300)).enrolled_in(Program::OnlineServicesSell),
    );
    let before = w.snapshot().await;
    let Err(Error::Directory(e)) = check(&w, "sub-002", "3664167").await else {
        panic!("expected a directory error");
    };
    let source = std::error::Error::source(&e).unwrap().to_string();
    assert!(
        source.contains("3664167") && source.contains("name"),
        "{source}"
    );
    assert_eq!(w.snapshot().await, before);

    // Fabrikam's record breaks too: its name, and its address.
    w.directory.insert(
        Partner::new(mpn("565380"), "F".repeat(300))
            .with_contact_email(format!("{}@fabrikam.example", "x".repeat(250)))
            .enrolled_in(Program::OnlineServicesSell),
    );
    let removed = w
        .service
        .remove_partner(&admin(), &sub_id("sub-001"))
        .await
        .unwrap();
    assert!(removed.changed);
    let told = w.notifier.sent().pop().unwrap();
    assert_eq!(
        (told.partner, told.kind, told.contact_email),
        (mpn("565380"), NotificationKind::Removed, None)
    );
}

/// A removal confirmed on a page that showed an older state never removes a partner
/// the admin did not see; confirmed on the current state it removes, and confirmed
/// again it changes nothing.
#[tokio::test]
async fn a_removal_confirmed_on_a_stale_page_removes_nothing() {
    let w = world().await;
    let sub = sub_id("sub-001");
    w.designate("sub-001", &fabrikam()).await;
    let shown = w.service.subscription(&admin(), &sub).await.unwrap();
    // Someone else replaces Fabrikam while the confirmation page is open.
    w.designate("sub-001", &northwind()).await;
    let before = w.snapshot().await;
    let stale = w
        .service
        .remove_partner_if_unchanged(&admin(), &sub, shown.version())
        .await;
    assert!(
        matches!(
            stale,
            Err(Error::Conflict {
                expected: 1,
                actual: 2,
                ..
            })
        ),
        "{stale:?}"
    );
    assert_eq!(w.snapshot().await, before);

    let current = w.service.subscription(&admin(), &sub).await.unwrap();
    let removed = w
        .service
        .remove_partner_if_unchanged(&admin(), &sub, current.version())
        .await
        .unwrap();
    assert!(removed.changed && removed.subscription.partner_of_record().is_none());
    assert_eq!(w.notifier.sent().last().unwrap().partner, mpn("3664167"));
    let sent = w.notifier.sent().len();
    let again = w
        .service
        .remove_partner_if_unchanged(&admin(), &sub, current.version())
        .await
        .unwrap();
    assert!(!again.changed && again.events.is_empty());
    assert_eq!(w.notifier.sent().len(), sent, "no second email");
    // Only the global administrator may, as for every removal.
    let billing = Actor::customer(contoso(), CustomerRole::BillingAdministrator);
    assert!(matches!(
        w.service
            .remove_partner_if_unchanged(&billing, &sub, 0)
            .await,
        Err(Error::Forbidden { .. })
    ));
}
