//! `PostgresRepository`: the conformance suite, scale-out (two service instances with
//! separate pools racing on the same subscriptions), and bad rows.
//!
//! Needs `DPOR_TEST_POSTGRES_URL` (`.ci/run` starts a throwaway cluster and sets it).
//! Without it the tests say they were skipped and pass, unless `CI` is set.

mod common;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::*;
use dpor::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use dpor::*;

fn url() -> Option<String> {
    match std::env::var("DPOR_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("DPOR_TEST_POSTGRES_URL must be set in CI (.ci/run starts PostgreSQL)")
        }
        Err(_) => {
            eprintln!("skipped: DPOR_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

/// A repository in a new, empty schema of its own.
async fn fresh(url: &str) -> PostgresRepository {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let schema = format!(
        "dpor_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; "))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    in_schema(url, &schema).await
}

async fn in_schema(url: &str, schema: &str) -> PostgresRepository {
    let options = PgConnectOptions::from_str(url)
        .unwrap()
        .options([("search_path", schema)]);
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .unwrap();
    let repo = PostgresRepository::from_pool(pool);
    repo.migrate().await.unwrap();
    repo
}

use dpor::sqlx;

#[tokio::test]
async fn postgres_repository_conforms() {
    let Some(url) = url() else { return };
    if let Err(failure) = testkit::check_repository(|| fresh(&url)).await {
        panic!("{failure}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_racing_lose_nothing_and_never_show_two_partners() {
    let Some(url) = url() else { return };
    let first = fresh(&url).await;
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(first.pool())
        .await
        .unwrap();
    let second = in_schema(&url, &schema).await; // a separate pool on the same tables
    const SUBS: u64 = 6;
    seed_race(&first, SUBS).await;
    let directory = InMemoryDirectory::new()
        .with_partner(fabrikam())
        .with_partner(northwind());
    let instances = [
        Arc::new(PorService::new(
            first.clone(),
            directory.clone(),
            RecordingNotifier::new(),
        )),
        Arc::new(PorService::new(second, directory, RecordingNotifier::new())),
    ];
    let changed = race(&instances, 8, 30, SUBS).await;
    assert!(changed > 0);
    let events = assert_race_consistent(&first, SUBS, changed).await;
    // One notification per event in the store, each id once.
    let outbox: Vec<(String, bool)> = sqlx::query_as("SELECT id, delivered FROM dpor_outbox")
        .fetch_all(first.pool())
        .await
        .unwrap();
    assert_eq!(outbox.len(), events);
    let ids: std::collections::BTreeSet<&String> = outbox.iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), events);
    assert!(outbox.iter().all(|(_, delivered)| *delivered));
}

#[tokio::test]
async fn rows_written_by_a_newer_release_read_and_update() {
    let Some(url) = url() else { return };
    let repo = fresh(&url).await;
    let pool = repo.pool().clone();
    rows_from_a_newer_release_still_read(repo, |statement| {
        let pool = pool.clone();
        async move {
            dpor::sqlx::query(statement).execute(&pool).await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn a_row_that_no_longer_decodes_is_a_typed_error() {
    let Some(url) = url() else { return };
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
