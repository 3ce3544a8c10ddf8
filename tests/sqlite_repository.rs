//! `SqliteRepository`: the conformance suite, durability across a reopen, bad rows,
//! and the service racing on a file.

mod common;

use std::sync::Arc;

use std::error::Error as _;

use common::*;
use dpor::*;

async fn memory() -> SqliteRepository {
    let repo = SqliteRepository::connect("sqlite::memory:").await.unwrap();
    repo.migrate().await.unwrap();
    repo
}

#[tokio::test]
async fn sqlite_repository_conforms() {
    if let Err(failure) = testkit::check_repository(memory).await {
        panic!("{failure}");
    }
}

#[tokio::test]
async fn migrate_is_idempotent() {
    let repo = memory().await;
    repo.migrate().await.unwrap();
    let again = repo.migrate().await.unwrap();
    let latest = dpor::schema::latest(dpor::schema::Backend::Sqlite);
    assert_eq!(
        (again.from, again.to, again.applied()),
        (latest, latest, false)
    );
}

#[tokio::test]
async fn everything_survives_a_reopen_and_pending_emails_are_delivered() {
    let db = TempDb::new();
    {
        let repo = SqliteRepository::connect(&db.url()).await.unwrap();
        repo.migrate().await.unwrap();
        insert_sub(&repo, "sub-001").await;
        let notifier = RecordingNotifier::new();
        notifier.fail_next(10);
        let directory = InMemoryDirectory::new()
            .with_partner(fabrikam())
            .with_partner(northwind());
        let service = PorService::new(repo, directory, notifier).with_clock(ManualClock::new(T0));
        for mpn in ["565380", "3664167"] {
            let check = service
                .check_partner(&admin(), &sub_id("sub-001"), mpn)
                .await
                .unwrap();
            let receipt = service.submit(&admin(), &check).await.unwrap();
            assert_eq!(receipt.notifications_delivered, 0);
        }
        // Everything is dropped here: pool, service, notifier.
    }
    let repo = SqliteRepository::connect(&db.url()).await.unwrap();
    let sub = repo.get(&sub_id("sub-001")).await.unwrap().unwrap();
    assert_eq!(
        (sub.version(), sub.partner_of_record().map(|p| p.mpn_id())),
        (2, Some(mpn("3664167")))
    );
    assert_eq!(repo.history(&sub_id("sub-001")).await.unwrap().len(), 3);
    assert_eq!(repo.pending_notifications(10).await.unwrap().len(), 3);

    let notifier = RecordingNotifier::new();
    let service = PorService::new(repo.clone(), InMemoryDirectory::new(), notifier.clone())
        .with_clock(ManualClock::new(LATER));
    assert_eq!(
        service.dispatch_pending(10).await.unwrap(),
        DispatchReport {
            delivered: 3,
            failed: 0,
            dead_lettered: 0
        }
    );
    // Per partner in event order: Fabrikam's "added" (#1) before its "removed" (#2).
    let ids: Vec<String> = notifier.sent().iter().map(|n| n.id.to_string()).collect();
    assert_eq!(ids, ["sub-001#1", "sub-001#3", "sub-001#2"]);
    assert!(repo.pending_notifications(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn rows_written_by_a_newer_release_read_and_update() {
    let repo = memory().await;
    let pool = repo.pool().clone();
    rows_from_a_newer_release_still_read(repo, run_on(pool)).await;
}

#[tokio::test]
async fn an_unreadable_email_does_not_stall_the_dispatcher() {
    let repo = memory().await;
    let pool = repo.pool().clone();
    an_unreadable_email_holds_back_no_other(repo, run_on(pool)).await;
}

#[tokio::test]
async fn an_overlong_name_is_refused_before_anything_is_written() {
    let repo = memory().await;
    let long = Subscription::new(
        sub_id("sub-long"),
        contoso(),
        CloudService::Azure,
        "n".repeat(300),
    );
    match repo.insert(long).await {
        Err(StoreError::Backend(source)) => {
            assert!(
                source.to_string().contains("the name has 300 characters"),
                "{source}"
            );
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
    assert_eq!(repo.get(&sub_id("sub-long")).await.unwrap(), None);
}

#[tokio::test]
async fn a_row_that_no_longer_decodes_is_a_typed_error() {
    let repo = memory().await;
    insert_sub(&repo, "sub-001").await;
    let directory = InMemoryDirectory::new().with_partner(fabrikam());
    let service = PorService::new(repo.clone(), directory, RecordingNotifier::new());
    let check = service
        .check_partner(&admin(), &sub_id("sub-001"), "565380")
        .await
        .unwrap();
    service.submit(&admin(), &check).await.unwrap();

    // Another tool writes an invalid MPN ID into the record and the history.
    sqlx::query("UPDATE dpor_subscriptions SET record = replace(record, '565380', '56538X')")
        .execute(repo.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE dpor_events SET event = '{\"not\":\"an event\"}'")
        .execute(repo.pool())
        .await
        .unwrap();
    assert!(matches!(
        repo.get(&sub_id("sub-001")).await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        repo.list_by_customer(&contoso()).await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        repo.history(&sub_id("sub-001")).await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        service.subscriptions(&admin()).await,
        Err(Error::Store(StoreError::Backend(_)))
    ));

    // A version column edited behind the record's back is caught too.
    sqlx::query(
        "UPDATE dpor_subscriptions SET record = replace(record, '56538X', '565380'), version = 7",
    )
    .execute(repo.pool())
    .await
    .unwrap();
    let error = repo.get(&sub_id("sub-001")).await.unwrap_err();
    assert!(error.to_string().contains("backend"), "{error}");
    assert!(
        std::error::Error::source(&error)
            .unwrap()
            .to_string()
            .contains("inconsistent")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_services_on_one_file_keep_one_partner() {
    let db = TempDb::new();
    let repo = SqliteRepository::connect(&db.url()).await.unwrap();
    repo.migrate().await.unwrap();
    seed_race(&repo, 5).await;
    let directory = InMemoryDirectory::new()
        .with_partner(fabrikam())
        .with_partner(northwind());
    let service = Arc::new(PorService::new(
        repo.clone(),
        directory,
        RecordingNotifier::new(),
    ));
    let changed = race(&[service], 4, 40, 5).await;
    assert!(changed > 0);
    assert_race_consistent(&repo, 5, changed).await;
}

/// Issue 15: eight tasks writing to one file at once, with a dispatcher beside them,
/// never see `SQLITE_BUSY` ("database is locked"): every writer takes the write lock
/// when it begins (`BEGIN IMMEDIATE`) and waits its turn. `race` fails on any error but
/// a conflict or a refused removal.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_on_one_file_never_see_busy() {
    let db = TempDb::new();
    let repo = SqliteRepository::connect(&db.url()).await.unwrap();
    repo.migrate().await.unwrap();
    seed_race(&repo, 16).await;
    let directory = InMemoryDirectory::new()
        .with_partner(fabrikam())
        .with_partner(northwind());
    let notifier = RecordingNotifier::new();
    notifier.fail_next(20); // leaves work for the dispatcher
    let service = Arc::new(PorService::new(repo.clone(), directory, notifier));
    let dispatcher = tokio::spawn({
        let service = service.clone();
        async move {
            for _ in 0..20 {
                service.dispatch_pending(10).await.unwrap();
                tokio::task::yield_now().await;
            }
        }
    });
    let changed = race(&[service], 8, 40, 16).await;
    dispatcher.await.unwrap();
    assert!(changed > 0);
    assert_race_consistent(&repo, 16, changed).await;
}

/// Two instances on one file, 8 writers, one reader tailing the change feed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_feed_reader_sees_every_event_once_while_eight_writers_race() {
    let db = TempDb::new();
    let first = SqliteRepository::connect(&db.url()).await.unwrap();
    first.migrate().await.unwrap();
    let second = SqliteRepository::connect(&db.url()).await.unwrap();
    seed_race(&first, 12).await;
    let instances = two_instances(first, second);
    assert!(race_against_a_feed_reader(&instances, 12, 40).await > 0);
}

// ---- the schema: versions, upgrades, refusals ----

/// A database at schema step 2 takes step 3 ("feed") and those after it: nothing lost,
/// every event in the feed in the order it was written.
#[tokio::test]
async fn a_schema_2_database_upgrades_to_the_feed_with_nothing_lost() {
    let db = fixture("schema-2");
    let repo = SqliteRepository::connect(&db.url()).await.unwrap();
    let migration = repo.migrate().await.unwrap();
    assert_eq!((migration.from, migration.to), (2, 4));
    the_schema_2_data_is_intact_and_in_the_feed(repo, true).await;
}

/// A database at schema step 3 takes step 4 ("outbox_indexes"): nothing lost, and the
/// outbox delivers.
#[tokio::test]
async fn a_schema_3_database_upgrades_to_the_outbox_indexes_with_nothing_lost() {
    let db = fixture("schema-3");
    let repo = SqliteRepository::connect(&db.url()).await.unwrap();
    let migration = repo.migrate().await.unwrap();
    assert_eq!((migration.from, migration.to), (3, 4));
    the_schema_3_outbox_is_intact_and_delivers(repo).await;
}

/// A copy of fixture `name` (`tests/fixtures/<name>/dpor.sqlite3`) in a temporary file.
fn fixture(name: &str) -> TempDb {
    let db = TempDb::new();
    std::fs::copy(format!("tests/fixtures/{name}/dpor.sqlite3"), &db.0).unwrap();
    db
}

#[tokio::test]
async fn a_0_1_0_database_upgrades_with_nothing_lost() {
    let db = fixture("v0.1.0");
    let repo = SqliteRepository::connect(&db.url()).await.unwrap();
    a_0_1_0_database_before_migrate_says_so(&repo).await;
    let migration = repo.migrate().await.unwrap();
    let latest = dpor::schema::latest(dpor::schema::Backend::Sqlite);
    assert_eq!((migration.from, migration.to), (1, latest));
    the_0_1_0_data_is_intact_and_usable(repo.clone()).await;
    // It is now recorded: migrating again finds nothing to do.
    let again = repo.migrate().await.unwrap();
    assert_eq!(
        (again.from, again.to, again.applied()),
        (latest, latest, false)
    );
}

#[tokio::test]
async fn a_new_database_is_created_at_the_latest_version() {
    let db = TempDb::new();
    let repo = SqliteRepository::connect(&db.url()).await.unwrap();
    let migration = repo.migrate().await.unwrap();
    let latest = dpor::schema::latest(dpor::schema::Backend::Sqlite);
    assert_eq!((migration.from, migration.to), (0, latest));
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM dpor_schema ORDER BY version")
        .fetch_all(repo.pool())
        .await
        .unwrap();
    assert_eq!(versions, (1..=i64::from(latest)).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_migrating_at_once_apply_each_step_once() {
    let db = TempDb::new();
    let repos = [
        SqliteRepository::connect(&db.url()).await.unwrap(),
        SqliteRepository::connect(&db.url()).await.unwrap(),
        SqliteRepository::connect(&db.url()).await.unwrap(),
    ];
    let tasks: Vec<_> = repos
        .iter()
        .cloned()
        .map(|repo| tokio::spawn(async move { repo.migrate().await }))
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let latest = dpor::schema::latest(dpor::schema::Backend::Sqlite);
    let migrations: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert!(migrations.iter().all(|m| m.to == latest), "{migrations:?}");
    assert_eq!(
        migrations.iter().filter(|m| m.from == 0).count(),
        1,
        "{migrations:?}"
    );
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM dpor_schema ORDER BY version")
        .fetch_all(repos[0].pool())
        .await
        .unwrap();
    assert_eq!(versions, (1..=i64::from(latest)).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_database_from_a_newer_release_is_refused_and_left_alone() {
    let db = TempDb::new();
    let repo = SqliteRepository::connect(&db.url()).await.unwrap();
    repo.migrate().await.unwrap();
    insert_sub(&repo, "sub-001").await;
    sqlx::query("INSERT INTO dpor_schema (version, name) VALUES (99, 'from the future')")
        .execute(repo.pool())
        .await
        .unwrap();
    let latest = dpor::schema::latest(dpor::schema::Backend::Sqlite);
    let too_new = StoreError::Schema(SchemaError::TooNew {
        found: 99,
        supported: latest,
    });
    let refused = repo.migrate().await.unwrap_err();
    assert_eq!(refused.to_string(), too_new.to_string());
    assert!(matches!(
        refused,
        StoreError::Schema(SchemaError::TooNew { found: 99, .. })
    ));
    let refused = SqliteRepository::connect(&db.url()).await.unwrap_err();
    assert!(matches!(
        refused,
        StoreError::Schema(SchemaError::TooNew { found: 99, supported }) if supported == latest
    ));
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM dpor_schema ORDER BY version")
        .fetch_all(repo.pool())
        .await
        .unwrap();
    let mut expected: Vec<i64> = (1..=i64::from(latest)).collect();
    expected.push(99);
    assert_eq!(versions, expected, "nothing changed");
    assert!(repo.get(&sub_id("sub-001")).await.unwrap().is_some());
}

#[tokio::test]
async fn a_store_used_before_migrate_says_so() {
    let db = TempDb::new();
    let repo = SqliteRepository::connect(&db.url()).await.unwrap();
    assert!(matches!(
        repo.get(&sub_id("sub-001")).await,
        Err(StoreError::Schema(SchemaError::NotInstalled))
    ));
    let service = PorService::new(repo, InMemoryDirectory::new(), RecordingNotifier::new());
    let error = service.subscriptions(&admin()).await.unwrap_err();
    assert!(matches!(
        error,
        Error::Store(StoreError::Schema(SchemaError::NotInstalled))
    ));
    assert!(
        error
            .source()
            .unwrap()
            .to_string()
            .contains("run migrate()"),
        "{error}"
    );
}

#[tokio::test]
async fn sqlite_commit_claims_its_email() {
    commit_claims_its_email(&memory().await).await;
}

/// A runner of one statement on `pool`, for the shared tests that edit rows by hand.
fn run_on(
    pool: sqlx::SqlitePool,
) -> impl Fn(&'static str) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
    move |statement| {
        let pool = pool.clone();
        Box::pin(async move {
            sqlx::query(statement).execute(&pool).await.unwrap();
        })
    }
}
