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
use std::sync::{Arc, Mutex};
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
/// Each `commit` is `UPDATE ... WHERE id = ? AND version = ?`, a conflict when no row
/// matched, then the events and the outbox rows, all or nothing. Commits that arrive
/// while another is being written are written together, each in a savepoint of one
/// transaction: group commit, one sync of the file for the group (see
/// [`connect`](Self::connect)). See the README's "Persistence" section for the schema.
#[derive(Clone, Debug)]
pub struct SqliteRepository {
    pool: SqlitePool,
    writer: SqlitePool,
    /// Commits waiting for the writer connection.
    waiting: Arc<Mutex<Vec<Arc<Waiting>>>>,
}

/// A commit waiting for the writer connection, and then its outcome. Whoever gets the
/// connection writes every commit waiting then (its own among them) in one transaction
/// and leaves each its outcome; the others find theirs when they get the connection.
#[derive(Debug)]
struct Waiting {
    commit: Mutex<Option<(sql::Prepared, ClaimAt)>>,
    outcome: Mutex<Option<Result<Vec<OutboxEntry>, StoreError>>>,
}

/// When a commit claims its emails: now and the lease.
type ClaimAt = Option<(OffsetDateTime, TimeDuration)>;

/// Locks `mutex`, taking over a poisoned lock as it is: nothing here panics while it
/// holds one.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        // among themselves, and the commits that queue are written together (group
        // commit, `commit_claiming`); the reads run beside them on the other
        // connections (WAL).
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
        Ok(SqliteRepository {
            pool,
            writer,
            waiting: Arc::default(),
        })
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
            waiting: Arc::default(),
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

/// The answer of a commit whose group was interrupted.
fn unknown_outcome() -> StoreError {
    sql::backend(
        "the commit was being written with others when that was interrupted: its outcome is unknown",
    )
}

/// Writes `commits` in one transaction, each in a savepoint when there are several;
/// answers each one's outcome, in order.
async fn write_group(
    connection: &mut sqlx::SqliteConnection,
    commits: Vec<(sql::Prepared, ClaimAt)>,
) -> Vec<Result<Vec<OutboxEntry>, StoreError>> {
    use sqlx::Connection as _;
    let alone = commits.len() == 1;
    let count = commits.len();
    let all_failed = |error: &dyn std::fmt::Display| -> Vec<Result<Vec<OutboxEntry>, StoreError>> {
        (0..count)
            .map(|_| Err(sql::backend(format!("the commit was not written: {error}"))))
            .collect()
    };
    let mut tx = match connection.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(error) => return all_failed(&error),
    };
    let mut outcomes = Vec::with_capacity(count);
    for (prepared, claim) in commits {
        if alone {
            outcomes.push(apply(&mut tx, prepared, claim).await);
            continue;
        }
        if let Err(error) = sqlx::query("SAVEPOINT dpor_commit").execute(&mut *tx).await {
            return all_failed(&error);
        }
        let outcome = apply(&mut tx, prepared, claim).await;
        let close = if outcome.is_ok() {
            "RELEASE dpor_commit"
        } else {
            "ROLLBACK TO dpor_commit"
        };
        if let Err(error) = sqlx::query(close).execute(&mut *tx).await {
            return all_failed(&error);
        }
        if outcome.is_err()
            && let Err(error) = sqlx::query("RELEASE dpor_commit").execute(&mut *tx).await
        {
            return all_failed(&error);
        }
        outcomes.push(outcome);
    }
    if alone && outcomes.iter().all(Result::is_err) {
        // Nothing to keep: dropping `tx` rolls back.
        return outcomes;
    }
    match tx.commit().await {
        Ok(()) => outcomes,
        Err(error) => all_failed(&sql::database(error)),
    }
}

/// A transaction holding SQLite's write lock, for one schema step.
async fn begin_schema_step(
    pool: &SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
    begin_write(pool).await
}

impl SqliteRepository {
    /// [`Repository::commit`], and with `claim` [`Repository::commit_and_claim`]: with
    /// the commits that wait for the writer connection beside it, in one transaction
    /// holding the write lock (group commit).
    ///
    /// Each commit of a group runs in a savepoint, so one that fails (a conflict, a
    /// duplicate) is rolled back alone; the group's transaction then commits once, and
    /// every commit's outcome is its own. A commit that comes alone is written as one
    /// transaction with no savepoint. If the future of the caller that writes a group
    /// is dropped mid-way, the others of its group answer a `StoreError::Backend`
    /// saying that their outcome is unknown (as a dropped connection would); a commit
    /// whose caller's future is dropped while it waits may still be written by the
    /// next group, as a statement already sent would be.
    async fn commit_claiming(
        &self,
        commit: Commit,
        claim: ClaimAt,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let prepared = sql::prepare(commit)?;
        let mine = Arc::new(Waiting {
            commit: Mutex::new(Some((prepared, claim))),
            outcome: Mutex::new(None),
        });
        lock(&self.waiting).push(Arc::clone(&mine));
        let connection = self.writer().acquire().await;
        // Written by the group of whoever had the connection before?
        if let Some(outcome) = lock(&mine.outcome).take() {
            return outcome;
        }
        let mut connection = match connection {
            Ok(connection) => connection,
            Err(error) => {
                // Not written, unless a group took it meanwhile.
                let mut waiting = lock(&self.waiting);
                let before = waiting.len();
                waiting.retain(|w| !Arc::ptr_eq(w, &mine));
                return Err(if waiting.len() < before {
                    sql::database(error)
                } else {
                    unknown_outcome()
                });
            }
        };
        let group = std::mem::take(&mut *lock(&self.waiting));
        let commits: Vec<_> = group
            .iter()
            .filter_map(|w| lock(&w.commit).take())
            .collect();
        if !group.iter().any(|w| Arc::ptr_eq(w, &mine)) {
            // A group took this commit and was dropped before it answered.
            return Err(unknown_outcome());
        }
        let mut outcomes = write_group(&mut connection, commits).await.into_iter();
        let mut own = Err(unknown_outcome());
        for waiting in &group {
            let outcome = outcomes.next().unwrap_or_else(|| Err(unknown_outcome()));
            if Arc::ptr_eq(waiting, &mine) {
                own = outcome;
            } else {
                *lock(&waiting.outcome) = Some(outcome);
            }
        }
        own
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::association::Transition;
    use crate::id::{CustomerId, MpnId};
    use crate::partner::{Partner, Program};
    use crate::subscription::CloudService;

    fn designation(current: &Subscription, mpn: &str) -> Commit {
        let partner =
            Partner::new(MpnId::parse(mpn).unwrap(), "P").enrolled_in(Program::OnlineServicesSell);
        let at = time::macros::datetime!(2026-01-05 10:00 UTC);
        let Ok(Transition::Changed { next, events }) =
            current.associate(&partner, Program::OnlineServicesSell, at)
        else {
            panic!("a designation changes the subscription");
        };
        let notifications = events
            .iter()
            .filter_map(|e| Notification::for_event(e, next.service(), None))
            .collect();
        Commit {
            expected_version: current.version(),
            next,
            events,
            notifications,
            create: None,
        }
    }

    /// A group's commits succeed or fail each on its own: a conflict in the middle is
    /// rolled back alone, and the others are written, in one transaction.
    #[tokio::test]
    async fn a_failing_commit_in_a_group_is_rolled_back_alone() {
        let repo = SqliteRepository::connect("sqlite::memory:").await.unwrap();
        repo.migrate().await.unwrap();
        let subs: Vec<Subscription> = ["s-1", "s-2", "s-3"]
            .iter()
            .map(|id| {
                Subscription::new(
                    SubscriptionId::new(*id).unwrap(),
                    CustomerId::new("c").unwrap(),
                    CloudService::Azure,
                    "Azure plan",
                )
            })
            .collect();
        for sub in &subs {
            repo.insert(sub.clone()).await.unwrap();
        }
        let stale = designation(&subs[1], "565380");
        repo.commit(designation(&subs[1], "3664167")).await.unwrap();
        let commits = [
            designation(&subs[0], "565380"),
            stale,
            designation(&subs[2], "565380"),
        ]
        .into_iter()
        .map(|c| (sql::prepare(c).unwrap(), None))
        .collect();
        let mut connection = repo.writer().acquire().await.unwrap();
        let outcomes = write_group(&mut connection, commits).await;
        drop(connection);
        assert!(outcomes[0].is_ok() && outcomes[2].is_ok(), "{outcomes:?}");
        assert!(
            matches!(outcomes[1], Err(StoreError::Conflict { .. })),
            "{outcomes:?}"
        );
        for (sub, expected) in subs.iter().zip(["565380", "3664167", "565380"]) {
            let stored = repo.get(sub.id()).await.unwrap().unwrap();
            let on_record = stored.partner_of_record().map(|p| p.mpn_id().to_string());
            assert_eq!(on_record.as_deref(), Some(expected));
            assert_eq!(repo.history(sub.id()).await.unwrap().len(), 1);
        }
        assert_eq!(repo.pending_notifications(10).await.unwrap().len(), 3);
    }
}
