//! Attribution over time, the subscription lifecycle, the partner side, incentive
//! eligibility, bulk designation and the partner quick link, through the service.

mod common;

use common::*;
use dpor::*;
use time::Duration;

/// The host's billing system: it alone suspends, reactivates and migrates.
fn billing() -> Actor {
    Actor::billing_system()
}

#[tokio::test]
async fn attribution_pauses_while_suspended_and_ends_on_cancel() {
    let w = world().await;
    let sub = sub_id("sub-001");
    w.designate("sub-001", &fabrikam()).await; // T0
    w.clock.advance(Duration::days(10));
    w.service.suspend(&billing(), &sub).await.unwrap(); // T0+10
    w.clock.advance(Duration::days(5));
    w.service.reactivate(&billing(), &sub).await.unwrap(); // T0+15
    w.clock.advance(Duration::days(5));
    w.service.cancel(&billing(), &sub).await.unwrap(); // T0+20

    let at = |days| T0 + Duration::days(days);
    let por_at = |days| {
        let service = &w.service;
        let sub = &sub;
        async move {
            service
                .partner_of_record_at(&admin(), sub, at(days))
                .await
                .unwrap()
        }
    };
    // On the record throughout: suspension and cancellation leave the partner there.
    for day in [5, 12, 17, 25] {
        assert_eq!(por_at(day).await, Some(mpn("565380")), "day {day}");
    }
    assert_eq!(por_at(-1).await, None, "before the association");

    let history = w.service.history(&admin(), &sub).await.unwrap();
    let periods = attribution::periods(&history);
    // What counted: paused while suspended, ended by the cancellation.
    let spans: Vec<_> = periods.iter().map(|p| (p.from, p.to)).collect();
    assert_eq!(spans, [(at(0), Some(at(10))), (at(15), Some(at(20)))]);

    // Cancelled: frozen, the partner of record stays on the record.
    let cancelled = w.service.subscription(&admin(), &sub).await.unwrap();
    assert_eq!(cancelled.status(), SubscriptionStatus::Cancelled);
    assert_eq!(
        cancelled.partner_of_record().map(|p| p.mpn_id()),
        Some(mpn("565380"))
    );
    assert!(matches!(
        w.service.suspend(&billing(), &sub).await,
        Err(Error::SubscriptionCancelled(_))
    ));
    assert!(
        !w.service.cancel(&billing(), &sub).await.unwrap().changed,
        "cancel is idempotent"
    );
}

#[tokio::test]
async fn a_suspended_subscription_keeps_its_partner_frozen() {
    let w = world().await;
    w.designate("sub-001", &fabrikam()).await;
    w.service
        .suspend(&billing(), &sub_id("sub-001"))
        .await
        .unwrap();
    assert!(matches!(
        w.service
            .check_partner(&admin(), &sub_id("sub-001"), "3664167")
            .await,
        Err(Error::SubscriptionNotActive {
            status: SubscriptionStatus::Suspended,
            ..
        })
    ));
    assert!(
        !w.service
            .suspend(&billing(), &sub_id("sub-001"))
            .await
            .unwrap()
            .changed
    );
    let sent = w.notifier.sent().len();
    assert_eq!(sent, 1, "lifecycle events send no email");
}

#[tokio::test]
async fn migration_starts_the_new_subscription_without_a_partner() {
    let w = world().await;
    w.designate("sub-002", &northwind()).await;
    w.clock.advance(Duration::days(3));
    let receipt = w
        .service
        .migrate(&billing(), &sub_id("sub-002"), sub_id("sub-002-mca"))
        .await
        .unwrap();
    assert!(receipt.changed);

    let old = w
        .service
        .subscription(&admin(), &sub_id("sub-002"))
        .await
        .unwrap();
    assert_eq!(
        (old.status(), old.partner_of_record()),
        (SubscriptionStatus::Cancelled, None)
    );
    let new = w
        .service
        .subscription(&admin(), &sub_id("sub-002-mca"))
        .await
        .unwrap();
    assert_eq!(
        (new.status(), new.partner_of_record(), new.version()),
        (SubscriptionStatus::Active, None, 0)
    );
    assert_eq!((new.service(), new.name()), (old.service(), old.name()));

    // The partner is told it was removed, with the reason in the history.
    let last = w.notifier.sent().pop().unwrap();
    assert_eq!(
        (last.partner, last.kind),
        (mpn("3664167"), NotificationKind::Removed)
    );
    let history = w
        .service
        .history(&admin(), &sub_id("sub-002"))
        .await
        .unwrap();
    assert!(matches!(
        history[history.len() - 2].kind,
        AssociationEventKind::PartnerRemoved {
            reason: RemovalReason::SubscriptionMigrated,
            ..
        }
    ));
    assert!(
        matches!(&history[history.len() - 1].kind, AssociationEventKind::SubscriptionMigrated { to } if to.as_str() == "sub-002-mca")
    );
    assert_eq!(
        w.service
            .partner_of_record_at(&admin(), &sub_id("sub-002"), T0 + Duration::days(4))
            .await
            .unwrap(),
        None
    );

    // The new one takes a partner of record like any other.
    w.designate("sub-002-mca", &fabrikam()).await;
}

#[tokio::test]
async fn migration_to_a_taken_id_changes_nothing() {
    let w = world().await;
    let before = w.snapshot().await;
    assert!(matches!(
        w.service.migrate(&billing(), &sub_id("sub-001"), sub_id("sub-003")).await,
        Err(Error::SubscriptionAlreadyExists(id)) if id.as_str() == "sub-003"
    ));
    assert!(matches!(
        w.service
            .migrate(&billing(), &sub_id("sub-001"), sub_id("sub-001"))
            .await,
        Err(Error::SubscriptionAlreadyExists(_))
    ));
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn the_lifecycle_belongs_to_the_billing_side() {
    let w = world().await;
    let sub = sub_id("sub-001");
    let before = w.snapshot().await;
    let service_admin = Actor::customer(contoso(), CustomerRole::ServiceAdministrator);
    assert!(matches!(
        w.service.suspend(&service_admin, &sub).await,
        Err(Error::Forbidden { .. })
    ));
    assert!(matches!(
        w.service.cancel(&Actor::partner(mpn("565380")), &sub).await,
        Err(Error::Forbidden { .. })
    ));
    let stranger = Actor::global_admin(CustomerId::new("litware").unwrap());
    assert!(matches!(
        w.service.cancel(&stranger, &sub).await,
        Err(Error::SubscriptionNotFound(_))
    ));
    assert!(matches!(
        w.service.migrate(&service_admin, &sub, sub_id("new")).await,
        Err(Error::Forbidden { .. })
    ));
    assert_eq!(w.snapshot().await, before);
    assert!(w.service.suspend(&billing(), &sub).await.unwrap().changed);
    assert!(
        w.service
            .reactivate(&billing(), &sub)
            .await
            .unwrap()
            .changed
    );
}

#[tokio::test]
async fn a_partner_lists_where_it_is_partner_of_record_now() {
    let w = world().await;
    w.designate("sub-001", &fabrikam()).await;
    w.designate("sub-003", &fabrikam()).await;
    w.designate("sub-002", &northwind()).await;
    let fabrikam_actor = Actor::partner(mpn("565380"));
    let ids = |subs: Vec<Subscription>| subs.iter().map(|s| s.id().to_string()).collect::<Vec<_>>();
    assert_eq!(
        ids(w.service.partner_portfolio(&fabrikam_actor).await.unwrap()),
        ["sub-001", "sub-003"]
    );

    // Replaced on sub-003: it follows.
    w.designate("sub-003", &northwind()).await;
    assert_eq!(
        ids(w.service.partner_portfolio(&fabrikam_actor).await.unwrap()),
        ["sub-001"]
    );
    assert_eq!(
        ids(w
            .service
            .partner_portfolio(&Actor::partner(mpn("3664167")))
            .await
            .unwrap()),
        ["sub-002", "sub-003"]
    );

    // It reads the history of its own subscriptions, nothing of the others.
    assert_eq!(
        w.service
            .history(&fabrikam_actor, &sub_id("sub-001"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(matches!(
        w.service.history(&fabrikam_actor, &sub_id("sub-003")).await,
        Err(Error::SubscriptionNotFound(_))
    ));
    assert!(matches!(
        w.service
            .subscription(&fabrikam_actor, &sub_id("sub-001"))
            .await,
        Err(Error::Forbidden { .. })
    ));
    assert!(matches!(
        w.service
            .remove_partner(&fabrikam_actor, &sub_id("sub-001"))
            .await,
        Err(Error::Forbidden { .. })
    ));
    // Customers list their subscriptions, not a partner portfolio.
    assert!(matches!(
        w.service.partner_portfolio(&admin()).await,
        Err(Error::Forbidden { .. })
    ));
}

#[tokio::test]
async fn incentive_eligibility_counts_and_explains() {
    let w = world().await;
    w.designate("sub-001", &fabrikam()).await; // Office 365
    w.designate("sub-002", &fabrikam()).await; // Dynamics 365
    w.designate("sub-003", &fabrikam()).await; // Azure: not counted by Sell
    let policy = IncentivePolicy::sell()
        .with_minimum_subscriptions(2)
        .with_minimum_tenure(Duration::days(30));
    let partner = Actor::partner(mpn("565380"));

    let portfolio = async || {
        let mut portfolio = Vec::new();
        for s in w.service.partner_portfolio(&partner).await.unwrap() {
            let history = w.service.history(&partner, s.id()).await.unwrap();
            portfolio.push((s, history));
        }
        portfolio
    };

    w.clock.advance(Duration::days(20));
    let early = policy.evaluate(&portfolio().await, w.clock.now());
    assert!(!early.eligible);
    assert_eq!(
        (early.qualifying.len(), early.required, early.missing),
        (0, 2, 2)
    );
    assert!(
        early
            .disqualified
            .iter()
            .any(|(s, r)| s.as_str() == "sub-003"
                && *r == Disqualification::ServiceNotCounted(CloudService::Azure))
    );
    assert!(
        early
            .disqualified
            .iter()
            .any(|(_, r)| matches!(r, Disqualification::TenureTooShort { .. }))
    );

    // A suspension pauses the tenure of sub-002.
    w.service
        .suspend(&billing(), &sub_id("sub-002"))
        .await
        .unwrap();
    w.clock.advance(Duration::days(15));
    w.service
        .reactivate(&billing(), &sub_id("sub-002"))
        .await
        .unwrap();
    let later = policy.evaluate(&portfolio().await, w.clock.now());
    assert_eq!(later.qualifying, [sub_id("sub-001")]);
    assert_eq!(later.missing, 1);

    w.clock.advance(Duration::days(15));
    let eligible = policy.evaluate(&portfolio().await, w.clock.now());
    assert!(eligible.eligible);
    assert_eq!(eligible.qualifying, [sub_id("sub-001"), sub_id("sub-002")]);
}

#[tokio::test]
async fn bulk_designation_is_atomic_per_subscription() {
    let w = world().await;
    w.designate("sub-002", &fabrikam()).await;
    let ids = [
        sub_id("sub-001"),
        sub_id("sub-002"),
        sub_id("sub-cancelled"),
        sub_id("other-001"),
        sub_id("sub-003"),
    ];

    let before = w.snapshot().await;
    let dry = w
        .service
        .submit_many(&admin(), "565380", &ids, BulkMode::DryRun)
        .await
        .unwrap();
    assert_eq!(w.snapshot().await, before, "a dry run changes nothing");
    let summary = |outcomes: &[BulkOutcome]| {
        outcomes
            .iter()
            .map(|o| match &o.result {
                Ok(changed) => format!("{}:{changed}", o.subscription),
                Err(Error::SubscriptionNotActive { .. }) => {
                    format!("{}:not_active", o.subscription)
                }
                Err(Error::SubscriptionNotFound(_)) => format!("{}:not_found", o.subscription),
                Err(other) => format!("{}:{other}", o.subscription),
            })
            .collect::<Vec<_>>()
    };
    let expected = [
        "sub-001:true",
        "sub-002:false",
        "sub-cancelled:not_active",
        "other-001:not_found",
        "sub-003:true",
    ];
    assert_eq!(summary(&dry), expected);

    let applied = w
        .service
        .submit_many(&admin(), "565380", &ids, BulkMode::Apply)
        .await
        .unwrap();
    assert_eq!(
        summary(&applied),
        expected,
        "failures in the middle do not block the rest"
    );
    for id in ["sub-001", "sub-002", "sub-003"] {
        let por = w
            .service
            .partner_of_record(&admin(), &sub_id(id))
            .await
            .unwrap();
        assert_eq!(por.map(|p| p.mpn_id()), Some(mpn("565380")), "{id}");
    }
    assert_eq!(
        w.notifier.sent().len(),
        3,
        "one email per changed subscription"
    );

    // Whole-call refusals come before anything is read.
    assert!(matches!(
        w.service
            .submit_many(&admin(), "56a", &ids, BulkMode::Apply)
            .await,
        Err(Error::InvalidMpnId(_))
    ));
    assert!(matches!(
        w.service
            .submit_many(
                &Actor::partner(mpn("565380")),
                "565380",
                &ids,
                BulkMode::Apply
            )
            .await,
        Err(Error::Forbidden { .. })
    ));
    let billing_admin = Actor::customer(contoso(), CustomerRole::BillingAdministrator);
    let billing_outcomes = w
        .service
        .submit_many(&billing_admin, "3664167", &ids[..1], BulkMode::Apply)
        .await
        .unwrap();
    assert!(matches!(
        billing_outcomes[0].result,
        Err(Error::Forbidden { .. })
    ));
}

#[tokio::test]
async fn a_partner_quick_link_prefills_the_check_for_the_customer() {
    let w = world().await;
    // The partner makes the link and sends it.
    let link = PartnerLink {
        subscription: sub_id("sub-001"),
        mpn_id: mpn("565380"),
    };
    let url = format!(
        "https://portal.example/partner-of-record?{}",
        link.to_query_string()
    );

    // The customer's portal parses it strictly and opens "Check ID" with it.
    let query = url.split_once('?').unwrap().1;
    let opened = PartnerLink::parse(query).unwrap();
    let check = w
        .service
        .check_partner(&admin(), &opened.subscription, opened.mpn_id.as_str())
        .await
        .unwrap();
    assert_eq!(check.partner().name(), "Fabrikam Consulting");

    // Only the customer's global admin can act on it; the partner cannot.
    assert!(matches!(
        w.service
            .submit(&Actor::partner(mpn("565380")), &check)
            .await,
        Err(Error::Forbidden { .. })
    ));
    assert!(matches!(
        w.service.submit(&billing(), &check).await,
        Err(Error::Forbidden { .. })
    ));
    assert!(w.service.submit(&admin(), &check).await.unwrap().changed);

    assert!(matches!(
        PartnerLink::parse("subscription=sub-001&mpn_id=565380&extra=1"),
        Err(PartnerLinkError::UnknownField(_))
    ));
}
