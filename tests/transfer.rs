//! `dpor::transfer`: everything moves, record by record; an interrupted transfer carries
//! on without writing anything twice; a target that holds anything else is refused.
//! The last test moves a 10,000-subscription SQLite file to PostgreSQL.

mod common;
#[path = "common/postgres.rs"]
mod postgres;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::*;
use dpor::*;
use time::Duration;

/// Everything a store holds, in its own order: every subscription with its history,
/// and the whole outbox with its delivery states (positions set to 0: they are each
/// store's own).
async fn contents<R: Store + ?Sized>(
    repo: &R,
) -> (Vec<(Subscription, Vec<AssociationEvent>)>, Vec<OutboxEntry>) {
    let all = page_all(
        |after: Option<SubscriptionId>| async move {
            repo.page_subscriptions(after.as_ref(), 333).await
        },
        |s: &Subscription| s.id().clone(),
    )
    .await;
    let mut subscriptions = Vec::new();
    for subscription in all {
        let history = repo.history(subscription.id()).await.unwrap();
        subscriptions.push((subscription, history));
    }
    let outbox = page_all(
        |after| async move { repo.page_outbox(after, 333).await },
        |e: &OutboxEntry| e.position,
    )
    .await
    .into_iter()
    .map(|e| OutboxEntry { position: 0, ..e })
    .collect();
    (subscriptions, outbox)
}

/// A world with `n` subscriptions of two customers and a history behind them:
/// designations, replacements, removals, a suspension, a cancellation, a migration,
/// delivered and pending emails.
async fn busy_world(n: usize) -> World {
    let w = world().await;
    for i in 0..n {
        let customer = if i % 3 == 0 { "litware" } else { "contoso" };
        w.repo
            .insert(Subscription::new(
                sub_id(&format!("bulk-{i:05}")),
                CustomerId::new(customer).unwrap(),
                CloudService::Office365,
                format!("Subscription {i}"),
            ))
            .await
            .unwrap();
    }
    let billing = Actor::billing_system();
    for i in 0..n {
        let id = sub_id(&format!("bulk-{i:05}"));
        let admin = Actor::global_admin(
            CustomerId::new(if i % 3 == 0 { "litware" } else { "contoso" }).unwrap(),
        );
        if i % 7 == 0 {
            w.notifier.fail_next(1); // an email left pending
        }
        check_and_submit(&w.service, &admin, &id, "565380")
            .await
            .unwrap();
        w.clock.advance(Duration::seconds(1));
        match i % 5 {
            0 => {
                check_and_submit(&w.service, &admin, &id, "3664167")
                    .await
                    .unwrap();
            }
            1 => {
                w.service.remove_partner(&admin, &id).await.unwrap();
            }
            2 => {
                w.service.suspend(&billing, &id).await.unwrap();
            }
            3 if i % 2 == 1 => {
                w.service.cancel(&billing, &id).await.unwrap();
            }
            3 => {
                w.service
                    .migrate(&billing, &id, sub_id(&format!("moved-{i:05}")))
                    .await
                    .unwrap();
            }
            _ => {}
        }
    }
    w
}

#[tokio::test]
async fn everything_moves_record_by_record() {
    let w = busy_world(120).await;
    let target = InMemoryRepository::new();
    let report = transfer::transfer_in_pages(&w.repo, &target, 7)
        .await
        .unwrap();
    let (source, copy) = (contents(&w.repo).await, contents(&target).await);
    assert_eq!(copy, source);
    let events: usize = source.0.iter().map(|(_, h)| h.len()).sum();
    let delivered = source
        .1
        .iter()
        .filter(|e| e.status == DeliveryStatus::Delivered)
        .count();
    assert_eq!(
        report,
        TransferReport {
            subscriptions: source.0.len(),
            events,
            notifications: source.1.len(),
            delivered,
            subscriptions_already_there: 0,
            notifications_already_there: 0,
        }
    );
    assert!(
        delivered > 0 && delivered < source.1.len(),
        "pending and delivered both moved"
    );
    // The copy is a working store: the service goes on there.
    let service = PorService::new(&target, w.directory.clone(), RecordingNotifier::new())
        .with_clock(ManualClock::new(LATER));
    let pending = service.dispatch_pending(usize::MAX).await.unwrap();
    assert_eq!(pending.delivered, source.1.len() - delivered);
    check_and_submit(&service, &admin(), &sub_id("sub-001"), "565380")
        .await
        .unwrap();
}

#[tokio::test]
async fn an_interrupted_transfer_carries_on_without_writing_anything_twice() {
    let w = busy_world(60).await;
    let source = contents(&w.repo).await;
    let target = InMemoryRepository::new();
    // Runs that lose the connection after 0, 3, 9 and 12 pages, then one that finishes.
    let mut copied = (0, 0);
    for allowed in [0, 3, 9, 12, usize::MAX] {
        let flaky = Faulty::new(target.clone());
        flaky.imports_allowed.store(allowed, Ordering::SeqCst);
        match transfer::transfer_in_pages(&w.repo, &flaky, 5).await {
            Ok(report) => {
                copied.0 += report.subscriptions;
                copied.1 += report.notifications;
                assert_eq!(
                    report.subscriptions_already_there + report.subscriptions,
                    source.0.len()
                );
                assert_eq!(
                    report.notifications_already_there + report.notifications,
                    source.1.len()
                );
            }
            Err(TransferError::Target(StoreError::Backend(_))) => {}
            Err(other) => panic!("after {allowed} pages: {other}"),
        }
    }
    assert_eq!(contents(&target).await, source, "everything, once");
    assert!(
        copied.0 < source.0.len(),
        "the last run carried on, it did not start over"
    );
    // Once complete, another run finds nothing to do.
    let again = transfer::transfer(&w.repo, &target).await.unwrap();
    assert_eq!((again.subscriptions, again.notifications), (0, 0));
}

#[tokio::test]
async fn a_target_holding_anything_else_is_refused_and_left_alone() {
    let w = busy_world(10).await;
    let target = InMemoryRepository::new();
    insert_sub(&target, "unrelated").await;
    let before = contents(&target).await;
    assert!(matches!(
        transfer::transfer(&w.repo, &target).await,
        Err(TransferError::TargetNotEmpty(_))
    ));
    assert_eq!(contents(&target).await, before);

    // A target whose outbox holds something else is refused too.
    let target = InMemoryRepository::new();
    let stranger = Subscription::new(sub_id("zzz"), contoso(), CloudService::Azure, "n");
    let Transition::Changed { next, events } = stranger
        .associate(&fabrikam(), Program::OnlineServicesSell, T0)
        .unwrap()
    else {
        panic!("expected a change")
    };
    let notification = Notification::for_event(&events[0], next.service(), None).unwrap();
    target
        .import_outbox(vec![OutboxEntry::new(0, notification)])
        .await
        .unwrap();
    let before = contents(&target).await;
    assert!(matches!(
        transfer::transfer(&w.repo, &target).await,
        Err(TransferError::TargetNotEmpty(_))
    ));
    assert_eq!(contents(&target).await, before);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn a_ten_thousand_subscription_sqlite_file_moves_to_postgresql() {
    let url = postgres::url();
    let w = busy_world(10_000).await;
    let file = TempDb::new(); // removed when the test ends, passed or not
    let sqlite = SqliteRepository::connect(&file.url()).await.unwrap();
    sqlite.migrate().await.unwrap();
    transfer::transfer(&w.repo, &sqlite).await.unwrap();
    // The host outgrew one machine: SQLite to PostgreSQL.
    let schema = postgres::empty_schema(&url).await;
    let pg = PostgresRepository::from_pool(postgres::pool_in(&url, &schema).await);
    pg.migrate().await.unwrap();
    let report = transfer::transfer(&sqlite, &pg).await.unwrap();
    let (from, to) = (contents(&sqlite).await, contents(&pg).await);
    assert!(from.0.len() > 10_000, "{} subscriptions", from.0.len());
    assert_eq!(to, from, "record by record");
    assert_eq!(report.subscriptions, from.0.len());
    sqlite.pool().close().await;
}

#[tokio::test]
async fn stores_behind_trait_objects_transfer_too() {
    let w = busy_world(5).await;
    let from: Arc<dyn Store> = Arc::new(w.repo.clone());
    let to: Arc<dyn Store> = Arc::new(InMemoryRepository::new());
    transfer::transfer(&*from, &*to).await.unwrap();
    assert_eq!(contents(&*to).await, contents(&*from).await);
}
