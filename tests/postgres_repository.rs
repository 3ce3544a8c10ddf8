//! `PostgresRepository`: the conformance suite, scale-out (two service instances with
//! separate pools racing on the same subscriptions), and bad rows.
//!
//! Needs `DPOR_TEST_POSTGRES_URL` (`source .ci/postgres.sh` starts a throwaway cluster
//! and sets it), so these tests are `#[ignore]`d: `cargo test` reports them as ignored,
//! `cargo test -- --include-ignored` runs them (and fails without the server).

mod common;
#[path = "common/postgres.rs"]
mod postgres;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use dpor::*;
use postgres::{empty_schema, fresh, options_in, pool_in, unmigrated, url};

use dpor::sqlx;

#[tokio::test]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn postgres_repository_conforms() {
    let url = url();
    if let Err(failure) = testkit::check_repository(|| fresh(&url)).await {
        panic!("{failure}");
    }
}

/// The trap itself, made to happen: a transaction takes its feed position and stays
/// open while a later one commits. The feed answers nothing of the later one until the
/// earlier one ends, then both, the earlier first.
#[tokio::test]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn a_change_waits_while_an_earlier_transaction_may_still_commit() {
    let url = url();
    let repo = fresh(&url).await;
    let (early, late) = (sub_id("s-early"), sub_id("s-late"));
    insert_sub(&repo, early.as_str()).await;
    insert_sub(&repo, late.as_str()).await;
    let designation = |sub: &Subscription| match sub
        .associate(&fabrikam(), Program::OnlineServicesSell, T0)
        .unwrap()
    {
        Transition::Changed { next, events } => (next, events),
        Transition::Unchanged => unreachable!(),
    };
    let (_, early_events) = designation(&repo.get(&early).await.unwrap().unwrap());
    // The early writer: its event row is written (its position taken), not committed.
    let mut open = repo.pool().begin().await.unwrap();
    sqlx::query("INSERT INTO dpor_events (subscription, sequence, event) VALUES ($1, 1, $2)")
        .bind(early.as_str())
        .bind(serde_json::to_string(&early_events[0]).unwrap())
        .execute(&mut *open)
        .await
        .unwrap();
    // The late writer commits through the store.
    let (next, events) = designation(&repo.get(&late).await.unwrap().unwrap());
    commit_events(&repo, 0, next, events).await;
    let withheld = repo.changes(None, 10).await.unwrap();
    assert!(
        withheld.is_empty(),
        "answered before an earlier one ended: {withheld:?}"
    );
    open.commit().await.unwrap();
    // Other tests' transactions on this server may hold both back a little longer.
    let mut both = Vec::new();
    for _ in 0..10_000 {
        both = repo.changes(None, 10).await.unwrap();
        if both.len() == 2 {
            break;
        }
    }
    let both: Vec<SubscriptionId> = both.into_iter().map(|c| c.event.subscription).collect();
    assert_eq!(both, [early, late]);
}

/// A database restored from a server further along (`pg_dump` keeps the events'
/// transaction ids): the feed withholds its events until `migrate()` settles them;
/// then it answers every event once, each subscription's in order, and new ones after.
#[tokio::test]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn a_restored_database_gets_its_feed_back_from_migrate() {
    let url = url();
    let repo = fresh(&url).await;
    seed_race(&repo, 3).await;
    let [service, _] = two_instances(repo.clone(), repo.clone());
    for (sub, mpn) in [("s-0", "565380"), ("s-1", "565380"), ("s-0", "3664167")] {
        check_and_submit(&service, &admin(), &sub_id(sub), mpn)
            .await
            .unwrap();
    }
    // As if written by a server a billion transactions ahead.
    sqlx::query("UPDATE dpor_events SET tx = tx + 1000000000")
        .execute(repo.pool())
        .await
        .unwrap();
    assert!(repo.changes(None, 10).await.unwrap().is_empty());
    repo.migrate().await.unwrap();
    check_and_submit(&service, &admin(), &sub_id("s-2"), "565380")
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..10_000 {
        seen = repo.changes(None, 10).await.unwrap();
        if seen.len() == 5 {
            break;
        }
    }
    let order: Vec<(String, u64)> = seen
        .iter()
        .map(|c| (c.event.subscription.to_string(), c.event.sequence))
        .collect();
    let expected = [("s-0", 1), ("s-1", 1), ("s-0", 2), ("s-0", 3), ("s-2", 1)];
    let expected: Vec<(String, u64)> = expected.iter().map(|(s, q)| (s.to_string(), *q)).collect();
    assert_eq!(order, expected);
}

/// Two repositories with separate pools on the same new tables: two instances.
async fn two_pools() -> (PostgresRepository, PostgresRepository) {
    let url = url();
    let first = fresh(&url).await;
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(first.pool())
        .await
        .unwrap();
    let second = PostgresRepository::from_pool(pool_in(&url, &schema).await);
    (first, second)
}

/// The classic trap of a feed numbered by a sequence: positions taken before commit
/// become visible out of order. Two instances (two pools), 8 writers, one reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn a_feed_reader_sees_every_event_once_while_two_instances_race() {
    let (first, second) = two_pools().await;
    seed_race(&first, 12).await;
    let instances = two_instances(first, second);
    assert!(race_against_a_feed_reader(&instances, 12, 200).await > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn two_instances_racing_lose_nothing_and_never_show_two_partners() {
    let (first, second) = two_pools().await;
    const SUBS: u64 = 6;
    seed_race(&first, SUBS).await;
    let instances = two_instances(first.clone(), second);
    let changed = race(&instances, 8, 30, SUBS).await;
    assert!(changed > 0);
    let events = assert_race_consistent(&first, SUBS, changed).await;
    // What waited behind an earlier email of its partner goes out now.
    dispatch_until_done(&instances[0]).await;
    // One notification per event in the store, each id once, all delivered.
    let outbox: Vec<(String, String)> = sqlx::query_as("SELECT id, status FROM dpor_outbox")
        .fetch_all(first.pool())
        .await
        .unwrap();
    assert_eq!(outbox.len(), events);
    let ids: std::collections::BTreeSet<&String> = outbox.iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), events);
    assert!(
        outbox.iter().all(|(_, status)| status == "delivered"),
        "{outbox:?}"
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn rows_written_by_a_newer_release_read_and_update() {
    let url = url();
    let repo = fresh(&url).await;
    let pool = repo.pool().clone();
    rows_from_a_newer_release_still_read(repo, run_on(pool)).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn an_unreadable_email_does_not_stall_the_dispatcher() {
    let url = url();
    let repo = fresh(&url).await;
    let pool = repo.pool().clone();
    an_unreadable_email_holds_back_no_other(repo, run_on(pool)).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn a_row_that_no_longer_decodes_is_a_typed_error() {
    let url = url();
    let repo = fresh(&url).await;
    insert_sub(&repo, "sub-001").await;
    sqlx::query(
        "UPDATE dpor_subscriptions SET record = replace(record, '\"sub-001\"', '\"sub 001\"')",
    )
    .execute(repo.pool())
    .await
    .unwrap();
    assert!(matches!(
        repo.get(&sub_id("sub-001")).await,
        Err(StoreError::Backend(_))
    ));
}

// ---- the schema: versions, upgrades, refusals ----

/// A database at schema step 2 takes step 3 ("feed") and those after it: nothing lost,
/// every event in the feed, each subscription's in order.
#[tokio::test]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn a_schema_2_database_upgrades_to_the_feed_with_nothing_lost() {
    let repo = fixture(&url(), "schema-2").await;
    let migration = repo.migrate().await.unwrap();
    assert_eq!((migration.from, migration.to), (2, 4));
    the_schema_2_data_is_intact_and_in_the_feed(repo, false).await;
}

/// A database at schema step 3 takes step 4 ("outbox_indexes"): nothing lost, and the
/// outbox delivers on the new indexes.
#[tokio::test]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn a_schema_3_database_upgrades_to_the_outbox_indexes_with_nothing_lost() {
    let repo = fixture(&url(), "schema-3").await;
    let migration = repo.migrate().await.unwrap();
    assert_eq!((migration.from, migration.to), (3, 4));
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() \
         AND indexname IN ('dpor_outbox_by_pair', 'dpor_outbox_due') ORDER BY indexname",
    )
    .fetch_all(repo.pool())
    .await
    .unwrap();
    assert!(indexes[0].contains("(recipient > ''::text)"), "{indexes:?}");
    assert!(indexes[1].contains("(\"position\" > 0)"), "{indexes:?}");
    the_schema_3_outbox_is_intact_and_delivers(repo).await;
}

/// The script of fixture `name` (`tests/fixtures/<name>/postgres.sql`), loaded into a
/// new schema.
async fn fixture(url: &str, name: &str) -> PostgresRepository {
    let schema = empty_schema(url).await;
    let pool = pool_in(url, &schema).await;
    let script = std::fs::read_to_string(format!("tests/fixtures/{name}/postgres.sql")).unwrap();
    sqlx::raw_sql(&script).execute(&pool).await.unwrap();
    PostgresRepository::from_pool(pool)
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn a_0_1_0_database_upgrades_with_nothing_lost() {
    let url = url();
    let repo = fixture(&url, "v0.1.0").await;
    a_0_1_0_database_before_migrate_says_so(&repo).await;
    let migration = repo.migrate().await.unwrap();
    let latest = dpor::schema::latest(dpor::schema::Backend::Postgres);
    assert_eq!((migration.from, migration.to), (1, latest));
    the_0_1_0_data_is_intact_and_usable(repo.clone()).await;
    let again = repo.migrate().await.unwrap();
    assert_eq!(
        (again.from, again.to, again.applied()),
        (latest, latest, false)
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn instances_migrating_at_once_apply_each_step_once() {
    let url = url();
    let schema = empty_schema(&url).await;
    let mut tasks = Vec::new();
    for _ in 0..3 {
        // Separate pools: separate service instances.
        let repo = PostgresRepository::from_pool(pool_in(&url, &schema).await);
        tasks.push(tokio::spawn(async move { repo.migrate().await }));
    }
    let mut migrations = Vec::new();
    for task in tasks {
        migrations.push(task.await.unwrap().unwrap());
    }
    let latest = dpor::schema::latest(dpor::schema::Backend::Postgres);
    assert!(migrations.iter().all(|m| m.to == latest), "{migrations:?}");
    assert_eq!(
        migrations.iter().filter(|m| m.from == 0).count(),
        1,
        "{migrations:?}"
    );
    let pool = pool_in(&url, &schema).await;
    let versions: Vec<i32> = sqlx::query_scalar("SELECT version FROM dpor_schema ORDER BY version")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(versions, (1..=latest as i32).collect::<Vec<_>>());
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn a_database_from_a_newer_release_is_refused_and_left_alone() {
    let url = url();
    let schema = empty_schema(&url).await;
    let repo = PostgresRepository::from_pool(pool_in(&url, &schema).await);
    repo.migrate().await.unwrap();
    insert_sub(&repo, "sub-001").await;
    sqlx::query("INSERT INTO dpor_schema (version, name) VALUES (99, 'from the future')")
        .execute(repo.pool())
        .await
        .unwrap();
    assert!(matches!(
        repo.migrate().await,
        Err(StoreError::Schema(SchemaError::TooNew { found: 99, .. }))
    ));
    let in_schema = format!("{url}?options=-c%20search_path%3D{schema}");
    assert!(matches!(
        PostgresRepository::connect(&in_schema).await,
        Err(StoreError::Schema(SchemaError::TooNew { found: 99, .. }))
    ));
    let versions: Vec<i32> = sqlx::query_scalar("SELECT version FROM dpor_schema ORDER BY version")
        .fetch_all(repo.pool())
        .await
        .unwrap();
    let mut expected: Vec<i32> =
        (1..=dpor::schema::latest(dpor::schema::Backend::Postgres) as i32).collect();
    expected.push(99);
    assert_eq!(versions, expected, "nothing changed");
    assert!(repo.get(&sub_id("sub-001")).await.unwrap().is_some());
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn a_store_used_before_migrate_says_so() {
    let url = url();
    let repo = unmigrated(&url).await;
    assert!(matches!(
        repo.get(&sub_id("sub-001")).await,
        Err(StoreError::Schema(SchemaError::NotInstalled))
    ));
    // A commit that hangs together reaches the database, which says what is missing.
    let stored = Subscription::new(sub_id("sub-001"), contoso(), CloudService::Azure, "n");
    let Transition::Changed { next, events } = stored.suspend(T0).unwrap() else {
        panic!("expected a change")
    };
    let commit = Commit {
        expected_version: 0,
        next,
        events,
        notifications: vec![],
        create: None,
    };
    assert!(commit.check().is_ok());
    assert!(matches!(
        repo.commit(commit).await,
        Err(StoreError::Schema(SchemaError::NotInstalled))
    ));
}

// ---- the outbox: two instances dispatching at once ----

/// 5,000 pending notifications: 1,000 subscriptions, five emails each to one partner
/// (a chain that must go out in order).
fn pending_mail() -> Vec<OutboxEntry> {
    let mut entries = Vec::new();
    for s in 0..1_000 {
        let subscription = sub_id(&format!("mail-{s:04}"));
        for sequence in 1..=5u64 {
            let notification = Notification {
                id: NotificationId::for_event(&subscription, sequence),
                partner: mpn("565380"),
                contact_email: None,
                kind: if sequence % 2 == 1 {
                    NotificationKind::Added
                } else {
                    NotificationKind::Removed
                },
                subscription: subscription.clone(),
                customer: contoso(),
                service: CloudService::Office365,
                at: T0,
            };
            entries.push(OutboxEntry::new(0, notification));
        }
    }
    entries
}

/// Two service instances with pools of their own, sharing one clock and one mail
/// server, over one database holding `pending_mail()`.
async fn two_dispatching_instances(
    url: &str,
) -> (
    [Arc<PorService<PostgresRepository, InMemoryDirectory, RecordingNotifier, ManualClock>>; 2],
    PostgresRepository,
    RecordingNotifier,
    ManualClock,
) {
    let schema = empty_schema(url).await;
    let first = PostgresRepository::from_pool(pool_in(url, &schema).await);
    first.migrate().await.unwrap();
    first.import_outbox(pending_mail()).await.unwrap();
    let second = PostgresRepository::from_pool(pool_in(url, &schema).await);
    let mail = RecordingNotifier::new();
    let clock = ManualClock::new(T0);
    let instance = |repo: PostgresRepository| {
        Arc::new(
            PorService::new(repo, InMemoryDirectory::new(), mail.clone()).with_clock(clock.clone()),
        )
    };
    (
        [instance(first.clone()), instance(second)],
        first,
        mail,
        clock,
    )
}

/// Runs the dispatch loop of both instances until the outbox is empty; once only
/// `stuck` notifications are left pending, advances the clock by the lease (so that the
/// claims of a dispatcher that died expire). Answers what each instance delivered.
async fn dispatch_until_empty(
    instances: &[Arc<PorService<PostgresRepository, InMemoryDirectory, RecordingNotifier, ManualClock>>;
         2],
    repo: &PostgresRepository,
    clock: &ManualClock,
    stuck: usize,
) -> Vec<usize> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let loops: Vec<_> = instances
        .iter()
        .map(|service| {
            let service = service.clone();
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                let sleep = |d| tokio::time::sleep(d);
                service
                    .run_dispatcher(100, std::time::Duration::from_millis(5), sleep, shutdown)
                    .await
            })
        })
        .collect();
    let mut advanced = false;
    for _ in 0..3_000 {
        let pending = repo.pending_notifications(usize::MAX).await.unwrap().len();
        if pending == 0 {
            break;
        }
        if pending == stuck && !advanced {
            clock.advance(DeliveryPolicy::default().lease);
            advanced = true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    let mut delivered = Vec::new();
    for handle in loops {
        delivered.push(handle.await.unwrap().delivered);
    }
    delivered
}

/// Each email once, none missing, each subscription's chain in order.
fn assert_each_once_in_order(mail: &RecordingNotifier) {
    let sent = mail.sent();
    let ids: std::collections::BTreeSet<_> = sent.iter().map(|n| n.id.clone()).collect();
    assert_eq!(
        (sent.len(), ids.len()),
        (5_000, 5_000),
        "no duplicate, nothing lost"
    );
    let mut last: std::collections::BTreeMap<SubscriptionId, u64> = Default::default();
    for n in &sent {
        let sequence: u64 = n.id.as_str().rsplit_once('#').unwrap().1.parse().unwrap();
        let previous = last.insert(n.subscription.clone(), sequence).unwrap_or(0);
        assert_eq!(sequence, previous + 1, "{} out of order", n.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn two_instances_dispatching_send_each_email_once_in_order() {
    let url = url();
    let (instances, repo, mail, clock) = two_dispatching_instances(&url).await;
    let delivered = dispatch_until_empty(&instances, &repo, &clock, usize::MAX).await;
    assert_each_once_in_order(&mail);
    assert_eq!(delivered.iter().sum::<usize>(), 5_000);
    assert!(
        delivered.iter().all(|d| *d > 0),
        "both instances worked: {delivered:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn a_dispatcher_that_died_after_claiming_delays_its_batch_by_the_lease_only() {
    let url = url();
    let (instances, repo, mail, clock) = two_dispatching_instances(&url).await;
    // A third instance claims a batch, then dies before sending.
    let lease = DeliveryPolicy::default().lease;
    let claimed = repo
        .claim(Claim::Due, clock.now(), lease, 300)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 300);
    // The others deliver the rest, then the dead one's claims after its lease.
    // Its claims hold back their chains too: 300 chains of five wait for the lease.
    let delivered = dispatch_until_empty(&instances, &repo, &clock, claimed.len() * 5).await;
    assert_each_once_in_order(&mail);
    assert_eq!(delivered.iter().sum::<usize>(), 5_000);
}

/// A TCP proxy in front of the server that counts round trips: each time the client
/// sends after the server last spoke (or first), one more. That includes the lone
/// `Sync` sqlx's pool sends whenever a connection comes back to it (sqlx 0.8 always
/// does): the repository keeps its connections between statements so as not to pay it.
struct RoundTrips {
    port: u16,
    count: Arc<std::sync::atomic::AtomicUsize>,
}

impl RoundTrips {
    async fn proxy(upstream: std::net::SocketAddr) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let count = Arc::new(AtomicUsize::new(0));
        let client_spoke_last = Arc::new(AtomicBool::new(false));
        let counter = count.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                let (mut client_in, mut client_out) = client.into_split();
                let (mut server_in, mut server_out) = server.into_split();
                let (count, flag) = (counter.clone(), client_spoke_last.clone());
                tokio::spawn(async move {
                    let mut buffer = vec![0; 64 * 1024];
                    while let Ok(n @ 1..) = client_in.read(&mut buffer).await {
                        if !flag.swap(true, Ordering::SeqCst) {
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        if server_out.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                let flag = client_spoke_last.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0; 64 * 1024];
                    while let Ok(n @ 1..) = server_in.read(&mut buffer).await {
                        flag.store(false, Ordering::SeqCst);
                        if client_out.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        RoundTrips { port, count }
    }

    fn count(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A migrated repository in a new schema behind a [`RoundTrips`] proxy, on one
/// connection (so that one warm-up prepares every statement) with the crate's pool
/// settings; and the schema's name, for a pool that is not counted.
async fn counted() -> (PostgresRepository, RoundTrips, String) {
    use std::str::FromStr;
    let url = url();
    let schema = empty_schema(&url).await;
    let options = sqlx::postgres::PgConnectOptions::from_str(&url).unwrap();
    let upstream = tokio::net::lookup_host((options.get_host().to_owned(), options.get_port()))
        .await
        .unwrap()
        .next()
        .unwrap();
    let wire = RoundTrips::proxy(upstream).await;
    // The crate's pool settings: no ping (a lone Sync, a round trip on the request's
    // path) before each statement.
    assert!(!PostgresRepository::pool_options().get_test_before_acquire());
    // One connection, so that one warm-up prepares every statement.
    let pool = PostgresRepository::pool_options()
        .max_connections(1)
        .connect_with(
            options
                .host("127.0.0.1")
                .port(wire.port)
                .options([("search_path", schema.as_str())]),
        )
        .await
        .unwrap();
    // Connections kept for a minute: with the defaults, a run slow enough (a loaded
    // machine) would see a kept connection go back to the pool mid-operation, and
    // sqlx's check of it counted here.
    let repo = PostgresRepository::from_pool(pool)
        .keep_connections(Duration::from_secs(60), Duration::from_secs(60));
    repo.migrate().await.unwrap();
    (repo, wire, schema)
}

/// Issue 15: a check + submit that replaces a partner (two events, two emails) is at
/// most 4 round trips on a pool with the crate's settings: the two reads, the commit
/// with its claim in one statement, and the delivered mark. Counted on the wire, so
/// that nothing (a ping before each statement, a BEGIN) hides.
#[tokio::test]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn a_check_and_submit_takes_at_most_four_round_trips() {
    let (repo, wire, _) = counted().await;
    let service = listed_service(repo.clone());
    for s in ["sub-warm", "sub-1"] {
        insert_sub(&repo, s).await;
    }
    // Warm the connection's statement cache: a statement's first use prepares it.
    for partner in [fabrikam(), northwind()] {
        let mpn = partner.mpn_id();
        check_and_submit(&service, &admin(), &sub_id("sub-warm"), mpn.as_str())
            .await
            .unwrap();
    }
    check_and_submit(&service, &admin(), &sub_id("sub-1"), "565380")
        .await
        .unwrap();

    let before = wire.count();
    let check = service
        .check_partner(&admin(), &sub_id("sub-1"), "3664167")
        .await
        .unwrap();
    let receipt = service.submit(&admin(), &check).await.unwrap();
    let trips = wire.count() - before;
    assert_eq!(
        (receipt.events.len(), receipt.notifications_delivered),
        (2, 2)
    );
    assert!(trips <= 4, "{trips} round trips");
}

/// A reader polling the end of the change feed learns in one round trip that nothing
/// is new, and that a cursor past the end is not one this store answered.
#[tokio::test]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn polling_the_end_of_the_feed_takes_one_round_trip() {
    let (repo, wire, schema) = counted().await;
    let aside = pool_in(&url(), &schema).await;
    let service = listed_service(repo.clone());
    insert_sub(&repo, "sub-1").await;
    check_and_submit(&service, &admin(), &sub_id("sub-1"), "565380")
        .await
        .unwrap();
    // The last change, from the table: the feed may withhold it for a while (other
    // tests' transactions on this server), and the check below does not.
    let (tx, position): (i64, i64) = sqlx::query_as(
        "SELECT tx, position FROM dpor_events ORDER BY tx DESC, position DESC LIMIT 1",
    )
    .fetch_one(&aside)
    .await
    .unwrap();
    let last = Cursor::new(tx.try_into().unwrap(), position.try_into().unwrap());
    // Warm the statement cache.
    assert!(repo.changes(Some(&last), 10).await.unwrap().is_empty());

    let before = wire.count();
    assert!(repo.changes(Some(&last), 10).await.unwrap().is_empty());
    assert_eq!(wire.count() - before, 1);

    let past = Cursor::new(last.epoch(), last.position() + 1);
    let before = wire.count();
    let refused = repo.changes(Some(&past), 10).await;
    assert!(
        matches!(refused, Err(StoreError::UnknownCursor(c)) if c == past),
        "{refused:?}"
    );
    assert_eq!(wire.count() - before, 1);
}

/// A migrated repository in a new schema on a pool of `connections`, with the crate's
/// pool settings, whose waiters give up after 20 s.
async fn on_a_small_pool(connections: u32) -> PostgresRepository {
    let url = url();
    let schema = empty_schema(&url).await;
    let pool = PostgresRepository::pool_options()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(20))
        .connect_with(options_in(&url, &schema))
        .await
        .unwrap();
    let repo = PostgresRepository::from_pool(pool);
    repo.migrate().await.unwrap();
    repo
}

/// The repository keeps the connections its statements finished with (so that sqlx's
/// pool does not check each with a round trip), but the host's own queries on the same
/// pool are not shut out: once the repository is quiet, and while it keeps the only
/// connection busy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn the_hosts_queries_get_a_connection_the_repository_keeps() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let repo = on_a_small_pool(1).await;
    let service = Arc::new(listed_service(repo.clone()));
    insert_sub(&repo, "sub-1").await;
    check_and_submit(&service, &admin(), &sub_id("sub-1"), "565380")
        .await
        .unwrap();
    // Quiet: the kept connection goes back once idle.
    let mut own = repo.pool().acquire().await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut *own)
        .await
        .unwrap();
    assert_eq!(one, 1);
    drop(own);

    // Busy: a client changes the partner back and forth until the host got its turn;
    // the host asks once the client holds the connection.
    let host_served = Arc::new(AtomicBool::new(false));
    let (started, client_started) = tokio::sync::oneshot::channel();
    let client = {
        let (service, host_served) = (service.clone(), host_served.clone());
        tokio::spawn(async move {
            let mut started = Some(started);
            let mut changes = 0u32;
            for mpn in ["3664167", "565380"].iter().cycle() {
                if host_served.load(Ordering::SeqCst) {
                    break;
                }
                check_and_submit(&service, &admin(), &sub_id("sub-1"), mpn)
                    .await
                    .unwrap();
                changes += 1;
                if let Some(started) = started.take() {
                    started.send(()).unwrap();
                }
            }
            changes
        })
    };
    client_started.await.unwrap();
    let acquired = repo.pool().acquire().await;
    host_served.store(true, Ordering::SeqCst);
    assert!(acquired.is_ok(), "{acquired:?}");
    drop(acquired);
    let changes = client.await.unwrap();
    assert!(changes > 0);
    let stored = repo.get(&sub_id("sub-1")).await.unwrap().unwrap();
    assert_eq!(stored.version(), u64::from(changes) + 1);
}

/// Calls that give up halfway (their future dropped after one step) leave no
/// connection behind for the next statement to trip on: it goes back to sqlx's pool,
/// which checks it, never to the repository's kept ones.
#[tokio::test]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn a_call_given_up_halfway_leaves_the_next_one_a_sound_connection() {
    use std::future::Future;
    use std::task::Poll;
    let repo = on_a_small_pool(1).await;
    let service = listed_service(repo.clone());
    insert_sub(&repo, "sub-1").await;
    check_and_submit(&service, &admin(), &sub_id("sub-1"), "565380")
        .await
        .unwrap();
    let (sub, actor) = (sub_id("sub-1"), admin());
    for round in 0..3 {
        // A read and a check + submit, each polled once (its statement sent, not its
        // answer read) and dropped.
        let mut read = Box::pin(repo.get(&sub));
        std::future::poll_fn(|cx| {
            let _ = read.as_mut().poll(cx);
            Poll::Ready(())
        })
        .await;
        drop(read);
        let mpn = ["3664167", "565380"][round % 2];
        let mut submit = Box::pin(check_and_submit(&service, &actor, &sub, mpn));
        std::future::poll_fn(|cx| {
            let _ = submit.as_mut().poll(cx);
            Poll::Ready(())
        })
        .await;
        drop(submit);
        // The next calls answer as if nothing had happened.
        let stored = repo.get(&sub_id("sub-1")).await.unwrap().unwrap();
        let now = stored.partner_of_record().unwrap().mpn_id().to_string();
        let other = if now == "565380" { "3664167" } else { "565380" };
        let receipt = check_and_submit(&service, &admin(), &sub_id("sub-1"), other)
            .await
            .unwrap();
        assert!(receipt.changed);
        let history = repo.history(&sub_id("sub-1")).await.unwrap();
        let stored = repo.get(&sub_id("sub-1")).await.unwrap().unwrap();
        assert_eq!(history.len() as u64, stored.last_event_sequence());
    }
}

/// Many tasks on a pool smaller than they are, racing on a few subscriptions and
/// dispatching beside, and importing (a transaction): the repository's statements and
/// transactions that wait in the pool get the connections its others finish with, so
/// none times out (the pool gives up after 20 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn statements_waiting_in_a_small_pool_are_not_passed_over() {
    // Kept for a minute: only the hand-over to a waiting statement can serve it.
    let repo = on_a_small_pool(2)
        .await
        .keep_connections(Duration::from_secs(60), Duration::from_secs(60));
    let service = Arc::new(listed_service(repo.clone()));
    for s in 0..4 {
        insert_sub(&repo, &format!("sub-{s}")).await;
    }
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let (service, repo) = (service.clone(), repo.clone());
            tokio::spawn(async move {
                for k in 0..40usize {
                    if k % 10 == 5 {
                        let id = sub_id(&format!("imported-{t}-{k}"));
                        let sub = Subscription::new(id, contoso(), CloudService::Office365, "E3");
                        repo.import_subscriptions(vec![(sub, Vec::new())])
                            .await
                            .unwrap();
                    }
                    let sub = sub_id(&format!("sub-{}", (t + k) % 4));
                    let mpn = ["565380", "3664167"][(t + k / 4) % 2];
                    match check_and_submit(&service, &admin(), &sub, mpn).await {
                        Ok(_) | Err(Error::Conflict { .. }) => {}
                        Err(other) => panic!("task {t}: {other}"),
                    }
                    if k % 8 == 0 {
                        service.dispatch_pending(10).await.unwrap();
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for s in 0..4 {
        let sub = sub_id(&format!("sub-{s}"));
        let history = repo.history(&sub).await.unwrap();
        let stored = repo.get(&sub).await.unwrap().unwrap();
        assert_eq!(history.len() as u64, stored.last_event_sequence());
    }
}

/// A migration (a commit that creates a subscription) claims and delivers its email on
/// PostgreSQL too: it takes the transaction path, not the one-statement one.
#[tokio::test]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn a_migration_delivers_the_removed_partners_email() {
    let url = url();
    let repo = fresh(&url).await;
    let notifier = RecordingNotifier::new();
    let service = PorService::new(
        repo.clone(),
        InMemoryDirectory::new().with_partner(fabrikam()),
        notifier.clone(),
    );
    insert_sub(&repo, "sub-1").await;
    check_and_submit(&service, &admin(), &sub_id("sub-1"), "565380")
        .await
        .unwrap();
    let receipt = service
        .migrate(&Actor::billing_system(), &sub_id("sub-1"), sub_id("sub-2"))
        .await
        .unwrap();
    assert!(receipt.changed);
    // One email: Fabrikam is told it was removed.
    assert_eq!(
        (
            receipt.notifications_delivered,
            receipt.notifications_pending
        ),
        (1, 0)
    );
    assert!(repo.get(&sub_id("sub-2")).await.unwrap().is_some());
    assert_eq!(notifier.sent().len(), 2);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DPOR_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts one)"]
async fn postgres_commit_claims_its_email() {
    let url = url();
    commit_claims_its_email(&fresh(&url).await).await;
}

/// A runner of one statement on `pool`, for the shared tests that edit rows by hand.
fn run_on(
    pool: dpor::sqlx::PgPool,
) -> impl Fn(&'static str) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
    move |statement| {
        let pool = pool.clone();
        Box::pin(async move {
            dpor::sqlx::query(statement).execute(&pool).await.unwrap();
        })
    }
}
