//! The whole KB3185444 flow through the public API: list, check, submit, verify, the
//! partner's email; replace; remove; history.

mod common;

use common::*;
use dpor::*;
use time::Duration;

#[tokio::test]
async fn the_customer_designates_a_partner_and_the_partner_is_told() {
    let w = world().await;

    // Steps 1-3: the subscription list with the current partner of record.
    let subs = w.service.subscriptions(&admin()).await.unwrap();
    let ids: Vec<&str> = subs.iter().map(|s| s.id().as_str()).collect();
    assert_eq!(ids, ["sub-001", "sub-002", "sub-003", "sub-cancelled"]);
    assert!(subs.iter().all(|s| s.partner_of_record().is_none()));

    // Step 4: "Add partner of record" is offered.
    let sub = w
        .service
        .subscription(&admin(), &sub_id("sub-001"))
        .await
        .unwrap();
    assert_eq!(sub.actions_for(&admin()), [Action::AddPartnerOfRecord]);

    // Steps 5-6: type the MPN ID, "Check ID".
    let check = w
        .service
        .check_partner(&admin(), &sub_id("sub-001"), " 565380 ")
        .await
        .unwrap();
    assert_eq!(check.partner().name(), "Fabrikam Consulting");
    assert_eq!(check.partner().location(), Some("Seattle, US"));
    assert_eq!(check.current(), None);
    assert_eq!(check.version(), 0);
    assert_eq!(check.program(), Program::OnlineServicesSell);
    assert_eq!(check.checked_at(), T0);

    // Step 7: "Submit".
    w.clock.advance(Duration::minutes(2));
    let receipt = w.service.submit(&admin(), &check).await.unwrap();
    assert!(receipt.changed);
    assert_eq!(receipt.subscription.version(), 1);
    assert_eq!(receipt.events.len(), 1);
    assert_eq!(
        (
            receipt.notifications_delivered,
            receipt.notifications_pending
        ),
        (1, 0)
    );

    // Step 8: "Edit partner of record" shows the most recent MPN ID.
    let por = w
        .service
        .partner_of_record(&admin(), &sub_id("sub-001"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(por.mpn_id(), mpn("565380"));
    assert_eq!(por.partner_name(), "Fabrikam Consulting");
    assert_eq!(por.since(), T0 + Duration::minutes(2));
    let sub = w
        .service
        .subscription(&admin(), &sub_id("sub-001"))
        .await
        .unwrap();
    assert_eq!(
        sub.actions_for(&admin()),
        [Action::EditPartnerOfRecord, Action::RemovePartnerOfRecord]
    );

    // Step 9: the partner's confirmation email.
    let sent = w.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].kind, NotificationKind::Added);
    assert_eq!(sent[0].partner, mpn("565380"));
    assert_eq!(
        sent[0].contact_email.as_deref(),
        Some("por@fabrikam.example")
    );
    assert_eq!(sent[0].service, CloudService::Office365);
    assert!(w.repo.pending_notifications(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn replacing_a_partner_notifies_both() {
    let w = world().await;
    w.designate("sub-001", &fabrikam()).await;
    let check = w
        .service
        .check_partner(&admin(), &sub_id("sub-001"), "3664167")
        .await
        .unwrap();
    assert_eq!(check.current().map(|c| c.mpn_id()), Some(mpn("565380")));
    let receipt = w.service.submit(&admin(), &check).await.unwrap();
    assert_eq!(receipt.subscription.version(), 2);
    assert_eq!(receipt.notifications_delivered, 2);

    let sent = w.notifier.sent();
    let tail: Vec<_> = sent[1..]
        .iter()
        .map(|n| (n.partner, n.kind, n.contact_email.clone()))
        .collect();
    assert_eq!(
        tail,
        [
            (
                mpn("565380"),
                NotificationKind::Removed,
                Some("por@fabrikam.example".into())
            ),
            (
                mpn("3664167"),
                NotificationKind::Added,
                Some("partners@northwind.example".into())
            ),
        ]
    );
    let por = w
        .service
        .partner_of_record(&admin(), &sub_id("sub-001"))
        .await
        .unwrap();
    assert_eq!(por.map(|p| p.mpn_id()), Some(mpn("3664167")));
}

#[tokio::test]
async fn a_removed_partner_no_longer_listed_is_notified_without_email() {
    let w = world().await;
    w.designate("sub-001", &fabrikam()).await;
    w.directory.remove(mpn("565380"));
    w.service
        .remove_partner(&admin(), &sub_id("sub-001"))
        .await
        .unwrap();
    let last = w.notifier.sent().pop().unwrap();
    assert_eq!(
        (last.partner, last.kind, last.contact_email),
        (mpn("565380"), NotificationKind::Removed, None)
    );
}

#[tokio::test]
async fn removing_the_partner_notifies_it() {
    let w = world().await;
    w.designate("sub-001", &fabrikam()).await;
    let receipt = w
        .service
        .remove_partner(&admin(), &sub_id("sub-001"))
        .await
        .unwrap();
    assert!(receipt.changed);
    assert!(receipt.subscription.partner_of_record().is_none());
    let last = w.notifier.sent().pop().unwrap();
    assert_eq!(
        (last.partner, last.kind),
        (mpn("565380"), NotificationKind::Removed)
    );
    assert_eq!(
        w.service
            .partner_of_record(&admin(), &sub_id("sub-001"))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn resubmitting_the_current_partner_changes_nothing() {
    let w = world().await;
    w.designate("sub-001", &fabrikam()).await;
    let check = w
        .service
        .check_partner(&admin(), &sub_id("sub-001"), "565380")
        .await
        .unwrap();
    assert!(check.is_current());
    let before = w.snapshot().await;
    let receipt = w.service.submit(&admin(), &check).await.unwrap();
    assert!(!receipt.changed);
    assert!(receipt.events.is_empty());
    assert_eq!(receipt.subscription.version(), 1);
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn history_tells_every_change_in_order() {
    let w = world().await;
    w.designate("sub-001", &fabrikam()).await;
    w.clock.advance(Duration::days(1));
    w.designate("sub-001", &northwind()).await;
    w.clock.advance(Duration::days(1));
    w.service
        .remove_partner(&admin(), &sub_id("sub-001"))
        .await
        .unwrap();

    let history = w
        .service
        .history(&admin(), &sub_id("sub-001"))
        .await
        .unwrap();
    let seq: Vec<u64> = history.iter().map(|e| e.sequence).collect();
    assert_eq!(seq, [1, 2, 3, 4]);
    assert!(matches!(
        history[0].kind,
        AssociationEventKind::PartnerAssociated { replaced: None, .. }
    ));
    assert!(
        matches!(&history[1].kind, AssociationEventKind::PartnerRemoved { reason: RemovalReason::ReplacedBy(b), .. } if *b == mpn("3664167"))
    );
    assert!(matches!(
        history[2].kind,
        AssociationEventKind::PartnerAssociated {
            replaced: Some(_),
            ..
        }
    ));
    assert!(matches!(
        history[3].kind,
        AssociationEventKind::PartnerRemoved {
            reason: RemovalReason::RemovedByCustomer,
            ..
        }
    ));
    assert_eq!(history[3].at, T0 + Duration::days(2));
    // Notification ids are derived from the events: stable and unique.
    let ids: Vec<String> = w.notifier.sent().iter().map(|n| n.id.to_string()).collect();
    assert_eq!(ids, ["sub-001#1", "sub-001#2", "sub-001#3", "sub-001#4"]);
}

#[tokio::test]
async fn the_usage_program_is_configurable() {
    let w = world().await;
    let service = w
        .another_service()
        .with_program(Program::OnlineServicesUsage);
    let check = service
        .check_partner(&admin(), &sub_id("sub-002"), "5139005")
        .await
        .unwrap();
    assert_eq!(check.program(), Program::OnlineServicesUsage);
    let receipt = service.submit(&admin(), &check).await.unwrap();
    assert_eq!(
        receipt.subscription.partner_of_record().unwrap().program(),
        Program::OnlineServicesUsage
    );
    assert!(matches!(
        service
            .check_partner(&admin(), &sub_id("sub-001"), "565380")
            .await,
        Err(Error::PartnerNotEnrolled {
            program: Program::OnlineServicesUsage,
            ..
        })
    ));
}

#[tokio::test]
async fn the_service_works_through_trait_objects() {
    use std::sync::Arc;
    let w = world().await;
    let repo: Arc<dyn Store> = Arc::new(w.repo.clone());
    let directory: Box<dyn PartnerDirectory> = Box::new(w.directory.clone());
    let notifier = w.notifier.clone();
    let service = PorService::new(repo, directory, &notifier)
        .with_clock(Arc::new(w.clock.clone()) as Arc<dyn Clock>);
    let check = service
        .check_partner(&admin(), &sub_id("sub-003"), "565380")
        .await
        .unwrap();
    assert!(service.submit(&admin(), &check).await.unwrap().changed);
}

#[test]
fn service_futures_are_send() {
    fn assert_send<T: Send>(_: T) {}
    let service = PorService::new(
        InMemoryRepository::new(),
        InMemoryDirectory::new(),
        RecordingNotifier::new(),
    );
    let actor = admin();
    let id = sub_id("sub-001");
    assert_send(service.subscriptions(&actor));
    assert_send(service.check_partner(&actor, &id, "565380"));
    assert_send(service.remove_partner(&actor, &id));
    assert_send(service.dispatch_pending(10));
    assert_send(service.subscription(&actor, &id));
    assert_send(service.submit(&actor, &check_for_send()));
    assert_send(service.partner_of_record(&actor, &id));
    assert_send(service.history(&actor, &id));
    assert_send(service.partner_of_record_at(&actor, &id, T0));
    assert_send(service.partner_portfolio(&actor));
    assert_send(service.submit_many(&actor, "565380", &[], BulkMode::Apply));
    assert_send(service.suspend(&actor, &id));
    assert_send(service.reactivate(&actor, &id));
    assert_send(service.cancel(&actor, &id));
    assert_send(service.migrate(&actor, &id, sub_id("new")));
}

/// Any check, only to name `submit`'s future (never awaited).
fn check_for_send() -> PartnerCheck {
    serde_json::from_str(r#"{"subscription":"sub-001","partner":{"mpn_id":"565380","name":"F","location":null,"contact_email":null,"programs":[]},"program":"online_services_sell","current":null,"version":0,"checked_at":"2026-01-05T10:00:00Z"}"#).unwrap()
}
