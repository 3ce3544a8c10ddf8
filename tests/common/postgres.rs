//! PostgreSQL for the tests: the server `.ci/run` starts, and a new schema per test.
#![allow(dead_code)]

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use dpor::PostgresRepository;
use dpor::sqlx;
use dpor::sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The server's URL from `DPOR_TEST_POSTGRES_URL`. The tests that call this are
/// `#[ignore]`d, so a plain `cargo test` reports them as ignored; run with
/// `-- --include-ignored` and no server, they fail and say what is missing.
pub fn url() -> String {
    std::env::var("DPOR_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "DPOR_TEST_POSTGRES_URL is not set: `source .ci/postgres.sh` starts a throwaway \
             PostgreSQL and sets it (this test needs one)"
        )
    })
}

/// A repository in a new, empty schema of its own.
pub async fn fresh(url: &str) -> PostgresRepository {
    let repo = unmigrated(url).await;
    repo.migrate().await.unwrap();
    repo
}

/// A repository in a new, empty schema of its own, before `migrate()`.
pub async fn unmigrated(url: &str) -> PostgresRepository {
    let schema = empty_schema(url).await;
    PostgresRepository::from_pool(pool_in(url, &schema).await)
}

/// A new, empty schema.
pub async fn empty_schema(url: &str) -> String {
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
    schema
}

/// Connections to `url` that work in `schema`.
pub fn options_in(url: &str, schema: &str) -> PgConnectOptions {
    PgConnectOptions::from_str(url)
        .unwrap()
        .options([("search_path", schema)])
}

/// A pool whose connections work in `schema`.
pub async fn pool_in(url: &str, schema: &str) -> dpor::sqlx::PgPool {
    PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options_in(url, schema))
        .await
        .unwrap()
}
