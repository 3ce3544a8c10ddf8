//! [`SqliteRepository`]: the embedded store, a SQLite file (WAL) or an in-memory
//! database, through sqlx. Enabled by the `sqlite` feature.
//!
//! ```
//! use dpor::*;
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let repo = SqliteRepository::connect("sqlite::memory:").await?;
//! let migration = repo.migrate().await?;
//! assert_eq!((migration.from, migration.to), (0, dpor::schema::latest(dpor::schema::Backend::Sqlite)));
//! let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, CloudService::Azure, "Azure plan");
//! repo.insert(sub.clone()).await?;
//! assert_eq!(repo.get(sub.id()).await?, Some(sub));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use time::{Duration as TimeDuration, OffsetDateTime};

use crate::delivery::AfterFailure;
use crate::error::StoreError;
use crate::event::{AssociationEvent, Notification};
use crate::id::{CustomerId, MpnId, NotificationId, SubscriptionId};
use crate::ports::{Claim, Commit, Failure, Outbox, OutboxEntry, Repository};
use crate::schema::{self, Backend};
use crate::sql;
use crate::subscription::Subscription;

/// A [`Repository`] in SQLite: a file in WAL mode (concurrent readers, one writer at a
/// time, durable on commit), or `sqlite::memory:` for tests.
///
/// Each `commit` is one transaction: `UPDATE ... WHERE id = ? AND version = ?`, a
/// conflict when no row matched, then the events and the outbox rows. See the
/// README's "Persistence" section for the schema.
#[derive(Clone, Debug)]
pub struct SqliteRepository {
    pool: SqlitePool,
    writer: SqlitePool,
}

impl SqliteRepository {
    /// Opens (creating it if missing) the database at `url`: `sqlite://path/to/file.db`,
    /// `sqlite:file.db`, or `sqlite::memory:` (one connection, so that every query sees
    /// the same in-memory database). Files use WAL journaling, foreign keys are
    /// enforced, and a writer waits up to 5 seconds for another process's. The crate's
    /// own writes go through one connection, so they queue among themselves in order
    /// and never meet `SQLITE_BUSY`; reads use the other connections, concurrently.
    ///
    /// A database written by a newer release of the crate is refused here, before
    /// anything is read or written; an empty one is fine (run [`migrate`](Self::migrate)).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the URL is invalid or the database cannot be opened;
    /// [`StoreError::Schema`] with [`SchemaError::TooNew`](crate::SchemaError::TooNew)
    /// for a database from a newer release.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(sql::backend)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let (options, pool) = if in_memory {
            (
                options,
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None),
            )
        } else {
            (
                options.journal_mode(SqliteJournalMode::Wal),
                SqlitePoolOptions::new(),
            )
        };
        // No ping each time the pool hands a connection out (see
        // `PostgresRepository::pool_options`): here a trip to the worker thread.
        let pool = pool
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(sql::backend)?;
        Self::refuse_newer_schema(&pool).await?;
        // The writes go through one connection of their own: the crate's writers then
        // queue in order in the pool, with no sleep in SQLite's busy handler between
        // tries (eight writers queued there ran slower than one) and no `SQLITE_BUSY`
        // among themselves; the reads run beside them on the other connections (WAL).
        let writer = if in_memory {
            pool.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .connect_with(options)
                .await
                .map_err(sql::backend)?
        };
        Ok(SqliteRepository { pool, writer })
    }

    /// A repository over a pool the host configured itself, for its reads and its
    /// writes: with several connections, the crate's writers then wait on SQLite's
    /// busy handler (`busy_timeout`) rather than in the pool, and may meet
    /// `SQLITE_BUSY` after it. [`connect`](Self::connect) gives the writes a
    /// connection of their own.
    pub fn from_pool(pool: SqlitePool) -> Self {
        SqliteRepository {
            writer: pool.clone(),
            pool,
        }
    }

    /// The pool, for the host's own queries (the reads' pool: the crate's writes go
    /// through a one-connection pool of their own, see [`connect`](Self::connect), so
    /// a host's own writes here compete with them for SQLite's one write lock).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The pool the writes go through.
    fn writer(&self) -> &SqlitePool {
        &self.writer
    }
}

/// A transaction that holds SQLite's write lock from its start (`BEGIN IMMEDIATE`):
/// a writer waits for another (up to the busy timeout) before it reads anything, so
/// that two writers never both read and then fail to upgrade with `SQLITE_BUSY`.
async fn begin_write(
    pool: &SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
    pool.begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(sql::database)
}

/// A transaction holding SQLite's write lock, for one schema step.
async fn begin_schema_step(
    pool: &SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
    begin_write(pool).await
}

impl SqliteRepository {
    /// [`Repository::commit`], and with `claim` [`Repository::commit_and_claim`], in
    /// one transaction holding the write lock.
    async fn commit_claiming(
        &self,
        commit: Commit,
        claim: Option<(OffsetDateTime, TimeDuration)>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.transact(commit, claim).await
    }

    /// Marks many notifications delivered in one statement.
    async fn mark_all_delivered(&self, ids: &[NotificationId]) -> Result<(), StoreError> {
        let ids: Vec<&str> = ids.iter().map(NotificationId::as_str).collect();
        sqlx::query(sql::MARK_ALL_DELIVERED_SQLITE)
            .bind(sql::to_json(&ids)?)
            .execute(self.writer())
            .await
            .map_err(sql::database)?;
        Ok(())
    }
}

/// The version recorded in `dpor_schema` (if that table exists) and the version the
/// database is at ([`schema::version_of`]).
async fn recorded_and_found(
    connection: &mut sqlx::SqliteConnection,
) -> Result<(Option<u32>, u32), StoreError> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name IN ('dpor_schema', 'dpor_subscriptions')",
    )
    .fetch_all(&mut *connection)
    .await
    .map_err(sql::backend)?;
    let recorded = if tables.iter().any(|t| t == "dpor_schema") {
        let max: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM dpor_schema")
            .fetch_one(&mut *connection)
            .await
            .map_err(sql::backend)?;
        sql::schema_version(max)?
    } else {
        None
    };
    let has_tables = tables.iter().any(|t| t == "dpor_subscriptions");
    Ok((recorded, schema::version_of(recorded, has_tables)))
}

sql::sql_repository!(
    SqliteRepository,
    sqlx::Sqlite,
    Backend::Sqlite,
    sql::CLAIM_SQLITE,
    sql::INSERT_EVENTS_SQLITE,
    sql::INSERT_NOTIFICATIONS_SQLITE
);
