//! [`PostgresRepository`]: the shared store for several service instances, over a
//! sqlx `PgPool`. Enabled by the `postgres` feature.
//!
//! ```no_run
//! use dpor::*;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let repo = PostgresRepository::connect("postgres://dpor@127.0.0.1:5432/dpor").await?;
//! repo.migrate().await?;
//! let service = PorService::new(repo, InMemoryDirectory::new(), RecordingNotifier::new());
//! # Ok(()) }
//! ```

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::error::StoreError;
use crate::event::{AssociationEvent, Notification};
use crate::id::{CustomerId, MpnId, NotificationId, SubscriptionId};
use crate::ports::{Commit, Repository};
use crate::sql;
use crate::subscription::Subscription;

const SCHEMA: &str = include_str!("../migrations/postgres.sql");

/// A [`Repository`] in PostgreSQL. Any number of service instances may share one
/// database: `commit` is a compare-and-swap on the row's version inside a transaction
/// (`UPDATE ... WHERE id = $ AND version = $`), so two instances racing on one
/// subscription yield one commit and one [`StoreError::Conflict`], never two partners.
///
/// Outbox positions come from an identity column: "oldest first" is the order in which
/// commits inserted their notifications, which can differ slightly from the order in
/// which concurrent transactions committed.
#[derive(Clone, Debug)]
pub struct PostgresRepository {
    pool: PgPool,
}

impl PostgresRepository {
    /// Connects a pool to `url` (`postgres://user:password@host:port/database`).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the URL is invalid or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .connect(url)
            .await
            .map_err(sql::backend)?;
        Ok(PostgresRepository { pool })
    }

    /// A repository over a pool the host configured itself.
    pub fn from_pool(pool: PgPool) -> Self {
        PostgresRepository { pool }
    }

    /// The pool, for the host's own queries.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates the schema if it is not there yet (idempotent; concurrent callers are
    /// serialized by an advisory lock).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(sql::backend)?;
        // An arbitrary, fixed key: "dpor" in ASCII.
        sqlx::query("SELECT pg_advisory_xact_lock(1685090162)")
            .execute(&mut *tx)
            .await
            .map_err(sql::backend)?;
        sqlx::raw_sql(SCHEMA)
            .execute(&mut *tx)
            .await
            .map_err(sql::backend)?;
        tx.commit().await.map_err(sql::backend)
    }
}

sql::sql_repository!(PostgresRepository, sqlx::Postgres);
