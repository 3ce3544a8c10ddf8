//! Faults: a notifier, a directory and a repository that fail. A change is committed
//! with its notifications or not at all, and no notification is lost.

mod common;

use std::sync::atomic::Ordering;

use async_trait::async_trait;
use common::*;
use dpor::*;
use time::Duration;

#[tokio::test]
async fn a_failing_notifier_leaves_the_email_pending_until_dispatched_once() {
    let w = world().await;
    w.notifier.fail_next(3);
    let receipt = w.designate("sub-001", &fabrikam()).await;
    assert!(receipt.changed, "the association is committed");
    assert_eq!(
        (
            receipt.notifications_delivered,
            receipt.notifications_pending
        ),
        (0, 1)
    );
    assert_eq!(
        w.service
            .partner_of_record(&admin(), &sub_id("sub-001"))
            .await
            .unwrap()
            .unwrap()
            .mpn_id(),
        mpn("565380")
    );
    assert_eq!(w.repo.pending_notifications(10).await.unwrap().len(), 1);

    // Two more failing attempts, then success.
    w.clock.advance(Duration::hours(2)); // past the retry's due time
    assert_eq!(
        w.service.dispatch_pending(10).await.unwrap(),
        DispatchReport {
            delivered: 0,
            failed: 1,
            dead_lettered: 0
        }
    );
    w.clock.advance(Duration::hours(2)); // past the retry's due time
    assert_eq!(
        w.service.dispatch_pending(10).await.unwrap(),
        DispatchReport {
            delivered: 0,
            failed: 1,
            dead_lettered: 0
        }
    );
    w.clock.advance(Duration::hours(2)); // past the retry's due time
    assert_eq!(
        w.service.dispatch_pending(10).await.unwrap(),
        DispatchReport {
            delivered: 1,
            failed: 0,
            dead_lettered: 0
        }
    );
    w.clock.advance(Duration::hours(2)); // past the retry's due time
    assert_eq!(
        w.service.dispatch_pending(10).await.unwrap(),
        DispatchReport {
            delivered: 0,
            failed: 0,
            dead_lettered: 0
        }
    );

    let sent = w.notifier.sent();
    assert_eq!(sent.len(), 1, "delivered exactly once");
    assert_eq!(sent[0].id.as_str(), "sub-001#1");
    assert!(w.repo.pending_notifications(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_partly_failed_replacement_delivers_the_rest() {
    let w = world().await;
    w.designate("sub-001", &fabrikam()).await;
    w.notifier.fail_next(1);
    let receipt = w.designate("sub-001", &northwind()).await;
    assert_eq!(
        (
            receipt.notifications_delivered,
            receipt.notifications_pending
        ),
        (1, 1)
    );
    let pending = w.repo.pending_notifications(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].partner, pending[0].kind),
        (mpn("565380"), NotificationKind::Removed)
    );
    w.clock.advance(Duration::hours(2)); // past the retry's due time
    w.service.dispatch_pending(10).await.unwrap();
    let ids: Vec<String> = w.notifier.sent().iter().map(|n| n.id.to_string()).collect();
    assert_eq!(ids, ["sub-001#1", "sub-001#3", "sub-001#2"]);
}

#[tokio::test]
async fn dispatch_respects_its_limit_oldest_first() {
    let w = world().await;
    w.notifier.fail_next(3);
    for sub in ["sub-001", "sub-002", "sub-003"] {
        w.designate(sub, &fabrikam()).await;
    }
    w.clock.advance(Duration::hours(2)); // past the retry's due time
    let report = w.service.dispatch_pending(2).await.unwrap();
    assert_eq!(
        report,
        DispatchReport {
            delivered: 2,
            failed: 0,
            dead_lettered: 0
        }
    );
    let subs: Vec<String> = w
        .notifier
        .sent()
        .iter()
        .map(|n| n.subscription.to_string())
        .collect();
    assert_eq!(subs, ["sub-001", "sub-002"]);
}

fn flaky(
    w: &World,
) -> (
    PorService<Faulty<InMemoryRepository>, InMemoryDirectory, RecordingNotifier, ManualClock>,
    Faulty<InMemoryRepository>,
) {
    let repo = Faulty::new(w.repo.clone());
    let service = PorService::new(repo.clone(), w.directory.clone(), w.notifier.clone())
        .with_clock(w.clock.clone());
    (service, repo)
}

#[tokio::test]
async fn a_failed_commit_changes_nothing_and_notifies_nobody() {
    let w = world().await;
    w.designate("sub-001", &fabrikam()).await;
    let (service, repo) = flaky(&w);
    repo.fail_commit.store(true, Ordering::SeqCst);
    let before = w.snapshot().await;

    let check = service
        .check_partner(&admin(), &sub_id("sub-001"), "3664167")
        .await
        .unwrap();
    let error = service.submit(&admin(), &check).await.unwrap_err();
    assert!(matches!(error, Error::Store(StoreError::Backend(_))));
    assert!(matches!(
        service.remove_partner(&admin(), &sub_id("sub-001")).await,
        Err(Error::Store(_))
    ));
    assert_eq!(w.snapshot().await, before);

    // Once the store is back, the same check goes through.
    repo.fail_commit.store(false, Ordering::SeqCst);
    assert!(service.submit(&admin(), &check).await.unwrap().changed);
}

/// A double click whose two submits both read the subscription before either commits:
/// the one that loses the compare-and-swap finds its partner on record and answers
/// "unchanged", as a second click after the first does, not a conflict.
#[tokio::test]
async fn a_double_click_whose_twin_commits_first_changes_nothing() {
    let w = world().await;
    let (service, repo) = flaky(&w);
    let check = service
        .check_partner(&admin(), &sub_id("sub-001"), "565380")
        .await
        .unwrap();
    let read_by_the_second_click = w.repo.get(&sub_id("sub-001")).await.unwrap();
    assert!(service.submit(&admin(), &check).await.unwrap().changed);
    let before = w.snapshot().await;

    *repo.stale_read.lock().unwrap() = read_by_the_second_click;
    let again = service.submit(&admin(), &check).await.unwrap();
    assert!(!again.changed && again.events.is_empty());
    assert_eq!(again.subscription.version(), 1);
    assert_eq!(
        w.snapshot().await,
        before,
        "no second email, no second event"
    );

    // A stale check for another partner still conflicts after the same race.
    let northwind = service
        .check_partner(&admin(), &sub_id("sub-001"), "3664167")
        .await
        .unwrap();
    let read_before = w.repo.get(&sub_id("sub-001")).await.unwrap();
    w.designate("sub-001", &fabrikam()).await; // unchanged: already on record
    w.service
        .remove_partner(&admin(), &sub_id("sub-001"))
        .await
        .unwrap();
    *repo.stale_read.lock().unwrap() = read_before;
    assert!(matches!(
        service.submit(&admin(), &northwind).await,
        Err(Error::Conflict {
            expected: 1,
            actual: 2,
            ..
        })
    ));
}

/// The same for a confirmed removal: the click that loses the race finds nothing to
/// remove and answers "unchanged".
#[tokio::test]
async fn a_raced_double_click_on_remove_changes_nothing() {
    let w = world().await;
    let (service, repo) = flaky(&w);
    w.designate("sub-001", &fabrikam()).await;
    let sub = sub_id("sub-001");
    let read_by_the_second_click = w.repo.get(&sub).await.unwrap();
    let removed = service.remove_partner_if_unchanged(&admin(), &sub, 1).await;
    assert!(removed.unwrap().changed);
    let before = w.snapshot().await;

    *repo.stale_read.lock().unwrap() = read_by_the_second_click;
    let again = service
        .remove_partner_if_unchanged(&admin(), &sub, 1)
        .await
        .unwrap();
    assert!(!again.changed && again.events.is_empty());
    assert_eq!(
        w.snapshot().await,
        before,
        "no second email, no second event"
    );
}

/// A commit that comes back after its emails' lease ran out (it waited on a lock, say)
/// leaves them to the dispatchers: another instance's dispatcher may have claimed and
/// sent them meanwhile, and the email goes out once.
#[tokio::test]
async fn a_commit_back_after_its_lease_sends_nothing_another_dispatcher_may_have_sent() {
    let w = world().await;
    let (service, repo) = flaky(&w);
    let lease = DeliveryPolicy::default().lease;
    let elsewhere = w.another_service();
    let clock = w.clock.clone();
    *repo.after_commit.lock().unwrap() = Some(Box::pin(async move {
        clock.advance(lease + Duration::SECOND);
        let report = elsewhere.dispatch_pending(10).await.unwrap();
        assert_eq!(report.delivered, 1, "the other instance sends it");
    }));
    let receipt = check_and_submit(&service, &admin(), &sub_id("sub-001"), "565380")
        .await
        .unwrap();
    assert_eq!(
        (
            receipt.notifications_delivered,
            receipt.notifications_pending
        ),
        (0, 1)
    );
    let sent: Vec<String> = w.notifier.sent().iter().map(|n| n.id.to_string()).collect();
    assert_eq!(sent, ["sub-001#1"], "sent once");
    assert!(w.repo.pending_notifications(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_mark_is_not_an_error_and_the_email_comes_again_with_the_same_id() {
    let w = world().await;
    let (service, repo) = flaky(&w);
    repo.fail_mark.store(true, Ordering::SeqCst);
    let check = service
        .check_partner(&admin(), &sub_id("sub-001"), "565380")
        .await
        .unwrap();
    let receipt = service.submit(&admin(), &check).await.unwrap();
    assert_eq!(receipt.notifications_delivered, 1);
    // Unmarked, it stays claimed for the lease; then it is sent again.
    assert_eq!(
        service.dispatch_pending(10).await.unwrap(),
        DispatchReport::default()
    );
    let lease = DeliveryPolicy::default().lease;
    w.clock.advance(lease);
    assert!(matches!(
        service.dispatch_pending(10).await,
        Err(Error::Store(_))
    ));

    repo.fail_mark.store(false, Ordering::SeqCst);
    w.clock.advance(lease);
    assert_eq!(service.dispatch_pending(10).await.unwrap().delivered, 1);
    let ids: Vec<String> = w.notifier.sent().iter().map(|n| n.id.to_string()).collect();
    assert_eq!(
        ids,
        ["sub-001#1", "sub-001#1", "sub-001#1"],
        "at least once, same id every time"
    );
    assert!(w.repo.pending_notifications(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_mark_still_records_the_batchs_failures_then_answers_the_error() {
    let w = world().await;
    let (service, repo) = flaky(&w);
    // Two emails pending after a failed first attempt each.
    w.notifier.fail_next(2);
    for sub in ["sub-001", "sub-002"] {
        let check = service
            .check_partner(&admin(), &sub_id(sub), "565380")
            .await
            .unwrap();
        service.submit(&admin(), &check).await.unwrap();
    }
    let attempts = async || -> Vec<u32> {
        let outbox = w.repo.page_outbox(None, 10).await.unwrap();
        outbox.iter().map(|e| e.attempts).collect()
    };
    assert_eq!(attempts().await, [1, 1]);

    // Due again: the first fails again, the second is delivered but cannot be marked.
    w.clock.advance(time::Duration::hours(1));
    w.notifier.fail_next(1);
    repo.fail_mark.store(true, Ordering::SeqCst);
    assert!(matches!(
        service.dispatch_pending(10).await,
        Err(Error::Store(_))
    ));
    assert_eq!(
        attempts().await,
        [2, 1],
        "the failure is recorded all the same"
    );
}

/// A directory that is down.
struct Down;

#[async_trait]
impl PartnerDirectory for Down {
    async fn lookup(&self, _: MpnId) -> Result<Option<Partner>, DirectoryError> {
        Err(DirectoryError::new("directory timed out"))
    }
}

#[tokio::test]
async fn a_directory_failure_aborts_before_anything_is_committed() {
    let w = world().await;
    w.designate("sub-001", &fabrikam()).await;
    let down =
        PorService::new(w.repo.clone(), Down, w.notifier.clone()).with_clock(w.clock.clone());
    let before = w.snapshot().await;
    assert!(matches!(
        down.check_partner(&admin(), &sub_id("sub-002"), "565380")
            .await,
        Err(Error::Directory(_))
    ));
    // Removal needs the removed partner's contact: it aborts too.
    assert!(matches!(
        down.remove_partner(&admin(), &sub_id("sub-001")).await,
        Err(Error::Directory(_))
    ));
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn a_failed_migration_writes_nothing_and_can_be_retried() {
    let w = world().await;
    w.designate("sub-001", &fabrikam()).await;
    let (service, repo) = flaky(&w);
    let new = sub_id("sub-001-new");
    let billing = Actor::billing_system();

    // The one commit fails: neither side is written, no email goes out.
    repo.fail_commit.store(true, Ordering::SeqCst);
    let before = w.snapshot().await;
    let sent = w.notifier.sent().len();
    assert!(matches!(
        service
            .migrate(&billing, &sub_id("sub-001"), new.clone())
            .await,
        Err(Error::Store(_))
    ));
    assert_eq!(w.snapshot().await, before);
    assert_eq!(w.repo.get(&new).await.unwrap(), None);
    assert_eq!(w.notifier.sent().len(), sent);
    repo.fail_commit.store(false, Ordering::SeqCst);

    // Calling again makes the move, once.
    let receipt = service
        .migrate(&billing, &sub_id("sub-001"), new.clone())
        .await
        .unwrap();
    assert!(receipt.changed);
    assert_eq!(receipt.subscription.status(), SubscriptionStatus::Cancelled);
    assert_eq!(
        w.repo.get(&new).await.unwrap().unwrap().partner_of_record(),
        None
    );
    let removals = w
        .notifier
        .sent()
        .iter()
        .filter(|n| n.kind == NotificationKind::Removed)
        .count();
    assert_eq!(removals, 1, "the old side was committed once: one email");
    assert!(matches!(
        service.migrate(&billing, &sub_id("sub-001"), new).await,
        Err(Error::SubscriptionCancelled(_))
    ));
}

#[tokio::test]
async fn racing_migrations_and_cancels_leave_no_orphan() {
    let w = world().await;
    w.designate("sub-001", &fabrikam()).await;
    let billing = Actor::billing_system();
    let sub = sub_id("sub-001");
    // Two migrations to different ids and a cancel, as the runtime interleaves them.
    let (first, second, cancel) = tokio::join!(
        w.service.migrate(&billing, &sub, sub_id("to-a")),
        w.service.migrate(&billing, &sub, sub_id("to-b")),
        w.service.cancel(&billing, &sub),
    );
    // Whatever the interleaving, one of them changes the subscription; the others are
    // refused or find it cancelled already (a cancel of a cancelled one changes nothing).
    let changed = |r: &Result<Receipt, Error>| r.as_ref().is_ok_and(|r| r.changed);
    let wins = [changed(&first), changed(&second), changed(&cancel)];
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
    for (won, id) in [(wins[0], "to-a"), (wins[1], "to-b")] {
        let created = w.repo.get(&sub_id(id)).await.unwrap();
        assert_eq!(
            created.is_some(),
            won,
            "{id} exists only if its migration won"
        );
    }

    // At the store, three changes decided on the same version: one commits, and a
    // migration that lost creates nothing.
    let stored = w.repo.get(&sub_id("sub-002")).await.unwrap().unwrap();
    let migration = |to: &str| {
        let (Transition::Changed { next, events }, created) =
            stored.migrate(sub_id(to), T0).unwrap()
        else {
            panic!("expected a change")
        };
        Commit {
            expected_version: stored.version(),
            next,
            events,
            notifications: vec![],
            create: Some(created),
        }
    };
    let Transition::Changed { next, events } = stored.cancel(T0).unwrap() else {
        panic!("expected a change")
    };
    let cancel = Commit {
        expected_version: stored.version(),
        next,
        events,
        notifications: vec![],
        create: None,
    };
    let results = [
        w.repo.commit(migration("to-c")).await,
        w.repo.commit(migration("to-d")).await,
        w.repo.commit(cancel).await,
    ];
    assert!(results[0].is_ok(), "{results:?}");
    assert!(
        results[1..]
            .iter()
            .all(|r| matches!(r, Err(StoreError::Conflict { .. }))),
        "{results:?}"
    );
    assert!(w.repo.get(&sub_id("to-c")).await.unwrap().is_some());
    assert!(
        w.repo.get(&sub_id("to-d")).await.unwrap().is_none(),
        "no orphan"
    );
}

#[tokio::test]
async fn a_commit_carrying_another_subscriptions_notification_is_refused() {
    let w = world().await;
    let stored = w.repo.get(&sub_id("sub-001")).await.unwrap().unwrap();
    let Transition::Changed { next, events } = stored
        .associate(&fabrikam(), Program::OnlineServicesSell, T0)
        .unwrap()
    else {
        panic!("expected a change")
    };
    let mut notification = Notification::for_event(&events[0], next.service(), None).unwrap();
    notification.subscription = sub_id("sub-002");
    let before = w.snapshot().await;
    let refused = w
        .repo
        .commit(Commit {
            expected_version: 0,
            next,
            events,
            notifications: vec![notification],
            create: None,
        })
        .await;
    assert!(
        matches!(refused, Err(StoreError::InvalidCommit { .. })),
        "{refused:?}"
    );
    assert_eq!(w.snapshot().await, before);
}
