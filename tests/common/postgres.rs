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

/// A new, empty schema, `dpor_test_<pid>_<n>`. The first call of a test process also
/// drops the schemas of test processes that have ended (on Linux, where it can tell:
/// their pid is not in `/proc`), so that runs on a developer's own server do not pile
/// them up; a process still running keeps its schemas.
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
    sweep_ended_runs(&admin).await;
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

/// Drops, once per test process, the test schemas of processes that have ended.
async fn sweep_ended_runs(admin: &sqlx::PgPool) {
    static SWEPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if SWEPT.swap(true, Ordering::SeqCst) || !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let schemas: Vec<String> = sqlx::query_scalar(
        r"SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'dpor\_test\_%'",
    )
    .fetch_all(admin)
    .await
    .unwrap();
    for schema in schemas {
        let pid = schema
            .strip_prefix("dpor_test_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let ended = pid.is_some_and(|pid| {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        });
        if ended {
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(admin)
                .await
                .unwrap();
        }
    }
}
