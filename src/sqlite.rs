//! [`SqliteRepository`]: the embedded store, a SQLite file (WAL) or an in-memory
//! database, through sqlx. Enabled by the `sqlite` feature.
//!
//! ```
//! use dpor::*;
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let repo = SqliteRepository::connect("sqlite::memory:").await?;
//! repo.migrate().await?;
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

use crate::error::StoreError;
use crate::event::{AssociationEvent, Notification};
use crate::id::{CustomerId, MpnId, NotificationId, SubscriptionId};
use crate::ports::{Commit, Repository};
use crate::sql;
use crate::subscription::Subscription;

const SCHEMA: &str = include_str!("../migrations/sqlite.sql");

/// A [`Repository`] in SQLite: a file in WAL mode (concurrent readers, one writer at a
/// time, durable on commit), or `sqlite::memory:` for tests.
///
/// Each `commit` is one transaction: `UPDATE ... WHERE id = ? AND version = ?`, a
/// conflict when no row matched, then the events and the outbox rows. See the
/// README's "Persistence" section for the schema.
#[derive(Clone, Debug)]
pub struct SqliteRepository {
    pool: SqlitePool,
}

impl SqliteRepository {
    /// Opens (creating it if missing) the database at `url`: `sqlite://path/to/file.db`,
    /// `sqlite:file.db`, or `sqlite::memory:` (one connection, so that every query sees
    /// the same in-memory database). Files use WAL journaling, foreign keys are
    /// enforced, and a writer waits up to 5 seconds for another.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the URL is invalid or the database cannot be opened.
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
        let pool = pool.connect_with(options).await.map_err(sql::backend)?;
        Ok(SqliteRepository { pool })
    }

    /// A repository over a pool the host configured itself.
    pub fn from_pool(pool: SqlitePool) -> Self {
        SqliteRepository { pool }
    }

    /// The pool, for the host's own queries.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Creates the schema if it is not there yet (idempotent).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(sql::backend)?;
        sqlx::raw_sql(SCHEMA)
            .execute(&mut *tx)
            .await
            .map_err(sql::backend)?;
        tx.commit().await.map_err(sql::backend)
    }
}

sql::sql_repository!(SqliteRepository, sqlx::Sqlite);
