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
use tokio::sync::oneshot;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use time::{Duration as TimeDuration, OffsetDateTime};

use crate::delivery::AfterFailure;
use crate::error::StoreError;
use crate::event::{AssociationEvent, Notification};
use crate::id::{CustomerId, MpnId, NotificationId, SubscriptionId};
use crate::ports::{Claim, Commit, Failure, Outbox, OutboxEntry, Repository};
use crate::schema::{self, Backend};
use crate::spare::Lent;
use crate::sql;
use crate::subscription::Subscription;

/// A [`Repository`] in SQLite: a file in WAL mode (concurrent readers, one writer at a
/// time, durable on commit), or `sqlite::memory:` for tests.
///
/// Each `commit` is `UPDATE ... WHERE id = ? AND version = ?`, a conflict when no row
/// matched, then the events and the outbox rows, all or nothing. Commits that arrive
/// while another is being written are written together, each in a savepoint of one
/// transaction: group commit, one sync of the file for the group (see
/// [`connect`](Self::connect)), by a writer task on the runtime of the commit that
/// started it: the callers of one repository must share one tokio runtime that keeps
/// running (as sqlx's pool needs anyway). See the README's "Persistence" section for
/// the schema.
#[derive(Clone, Debug)]
pub struct SqliteRepository {
    pool: SqlitePool,
    writer: SqlitePool,
    /// The commits waiting to be written, and whether a writer task is writing them.
    queue: Arc<Mutex<Queue>>,
}

/// The commits waiting to be written, each with where its answer goes, and whether a
/// writer task runs. Callers add to it and await their answer; the one writer task
/// takes everything queued, writes it as a group, answers each commit, and takes the
/// next group, until the queue is empty (a caller then starts a new task).
#[derive(Debug, Default)]
struct Queue {
    commits: Vec<Queued>,
    writing: bool,
}

/// A commit waiting to be written, and where its answer goes.
type Queued = (
    sql::Prepared,
    ClaimAt,
    oneshot::Sender<Result<Vec<OutboxEntry>, StoreError>>,
);

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
            queue: Arc::default(),
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
            queue: Arc::default(),
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

    /// A connection for a statement, of the reads' or the writes' pool; SQLite's
    /// stores keep no spares (see `crate::spare`).
    async fn lend(&self, side: sql::Side) -> Result<Lent<'_, sqlx::Sqlite>, StoreError> {
        Lent::from_pool(match side {
            sql::Side::Reads => &self.pool,
            sql::Side::Writes => &self.writer,
        })
        .await
    }
}

/// How every write transaction begins: holding SQLite's write lock from its start, so
/// that a writer waits for another (up to the busy timeout) before it reads anything,
/// and two writers never both read and then fail to upgrade with `SQLITE_BUSY`.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// A write transaction ([`BEGIN_WRITE`]).
async fn begin_write(
    pool: &SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
    pool.begin_with(BEGIN_WRITE).await.map_err(sql::database)
}

/// The answer of a commit whose writer ended without answering.
fn unknown_outcome() -> StoreError {
    sql::backend("the writer ended before it answered: the commit's outcome is unknown")
}

/// The writer task's hold on the queue: when the task ends without emptying it (its
/// runtime shut down), the next commit starts a new writer, and the commits left are
/// answered "not written" rather than left waiting (those of the group being written
/// hear "outcome unknown": their answers are dropped).
struct Writing {
    queue: Arc<Mutex<Queue>>,
    done: bool,
}

impl Drop for Writing {
    fn drop(&mut self) {
        if !self.done {
            let mut queue = lock(&self.queue);
            queue.writing = false;
            // Never taken into a group: certainly not written.
            for (_, _, answer) in queue.commits.drain(..) {
                let _ = answer.send(Err(sql::backend(
                    "the commit was not written: the writer task ended",
                )));
            }
        }
    }
}

/// The most commits one group writes: enough to share a sync among many writers, few
/// enough that one transaction does not hold SQLite's write lock for long.
const MAX_GROUP: usize = 256;

/// The writer task: writes the queued commits group after group, until none is left.
async fn write_queue(writer: SqlitePool, mut writing: Writing) {
    loop {
        let group = {
            let mut queue = lock(&writing.queue);
            if queue.commits.is_empty() {
                // Under the lock: a commit queued after this starts a new writer.
                queue.writing = false;
                drop(queue);
                writing.done = true;
                return;
            }
            let take = queue.commits.len().min(MAX_GROUP);
            queue.commits.drain(..take).collect::<Vec<_>>()
        };
        // What callers gave up on is not written (looked at again once connected).
        let group: Vec<_> = group
            .into_iter()
            .filter(|(_, _, a)| !a.is_closed())
            .collect();
        if group.is_empty() {
            continue;
        }
        let mut connection = match writer.acquire().await {
            Ok(connection) => connection,
            Err(error) => {
                for (_, _, answer) in group {
                    let _ = answer.send(Err(sql::backend(format!(
                        "the commit was not written: {error}"
                    ))));
                }
                continue;
            }
        };
        let (commits, answers): (Vec<_>, Vec<_>) = group
            .into_iter()
            .filter(|(_, _, answer)| !answer.is_closed())
            .map(|(prepared, claim, answer)| ((prepared, claim), answer))
            .unzip();
        if commits.is_empty() {
            continue;
        }
        let written = write_group(&mut connection, commits).await;
        if written.broken {
            connection.close_on_drop();
        }
        drop(connection);
        for (answer, outcome) in answers.into_iter().zip(written.outcomes) {
            let _ = answer.send(outcome);
        }
    }
}

/// What writing a group came to: each commit's outcome, in order, and whether the
/// connection may be left in a transaction it cannot end (then it is closed, not
/// reused: SQLite may roll a transaction back by itself, on a full disk or an I/O
/// error, and sqlx would then take every later `BEGIN` for a nested one).
struct Written {
    outcomes: Vec<Result<Vec<OutboxEntry>, StoreError>>,
    broken: bool,
}

/// Writes `commits` in one transaction, each in a savepoint when there are several, so
/// that one that fails is rolled back alone.
async fn write_group(
    connection: &mut sqlx::SqliteConnection,
    commits: Vec<(sql::Prepared, ClaimAt)>,
) -> Written {
    use sqlx::Connection as _;
    let count = commits.len();
    let alone = count == 1;
    // Every commit failed the same way; `what` says whether anything may be written.
    let all = |what: &str, error: &dyn std::fmt::Display| Written {
        outcomes: (0..count)
            .map(|_| Err(sql::backend(format!("{what}: {error}"))))
            .collect(),
        broken: true,
    };
    const NOT_WRITTEN: &str = "the commit was not written";
    let mut tx = match connection.begin_with(BEGIN_WRITE).await {
        Ok(tx) => tx,
        Err(error) => return all(NOT_WRITTEN, &error),
    };
    let mut outcomes = Vec::with_capacity(count);
    for (prepared, claim) in commits {
        if alone {
            outcomes.push(apply(&mut tx, prepared, claim).await);
            continue;
        }
        if let Err(error) = sqlx::query("SAVEPOINT dpor_commit").execute(&mut *tx).await {
            return all(NOT_WRITTEN, &error);
        }
        let outcome = apply(&mut tx, prepared, claim).await;
        let closing: &[&str] = match outcome {
            Ok(_) => &["RELEASE dpor_commit"],
            Err(_) => &["ROLLBACK TO dpor_commit", "RELEASE dpor_commit"],
        };
        for statement in closing {
            if let Err(error) = sqlx::query(statement).execute(&mut *tx).await {
                return all(NOT_WRITTEN, &error);
            }
        }
        outcomes.push(outcome);
    }
    if outcomes.iter().all(Result::is_err) {
        // Nothing to keep.
        let broken = tx.rollback().await.is_err();
        return Written { outcomes, broken };
    }
    match tx.commit().await {
        Ok(()) => Written {
            outcomes,
            broken: false,
        },
        // What failed on its own stays so; the rest may or may not be written.
        Err(error) => Written {
            outcomes: outcomes
                .into_iter()
                .map(|outcome| {
                    outcome.and_then(|_| {
                        Err(sql::backend(format!(
                            "the commit's outcome is unknown: {error}"
                        )))
                    })
                })
                .collect(),
            broken: true,
        },
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
    /// the commits that wait to be written beside it, in one transaction holding the
    /// write lock (group commit).
    ///
    /// Each commit of a group runs in a savepoint, so one that fails (a conflict, a
    /// duplicate) is rolled back alone; the group's transaction then commits once, and
    /// every commit's outcome is its own (but for a failure of the transaction itself,
    /// which every commit of the group answers). A commit that comes alone is written
    /// as one transaction with no savepoint.
    ///
    /// Runtime: the writer task runs on the runtime of the commit that started it, so
    /// the callers of one repository must share one runtime that keeps running (as
    /// sqlx's pool needs anyway): a commit from another runtime waits while the
    /// writer's runtime is not driven.
    ///
    /// Cancellation: groups are written by one task of their own (`tokio::spawn`, the
    /// runtime sqlx runs on), one after the other, so a caller that gives up costs the
    /// others nothing: it only stops awaiting its answer. Its commit is not written if
    /// it gave up before its group got the writer connection; after that, it is written
    /// all the same, as a statement already sent would be (a caller that gives up must
    /// take the outcome as unknown).
    async fn commit_claiming(
        &self,
        commit: Commit,
        claim: ClaimAt,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let prepared = sql::prepare(commit)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(sql::backend)?;
        let (answer, answered) = oneshot::channel();
        let start_writer = {
            let mut queue = lock(&self.queue);
            queue.commits.push((prepared, claim, answer));
            !std::mem::replace(&mut queue.writing, true)
        };
        if start_writer {
            let writing = Writing {
                queue: Arc::clone(&self.queue),
                done: false,
            };
            runtime.spawn(write_queue(self.writer.clone(), writing));
        }
        // A writer that ended without answering (its runtime shut down) dropped `answer`.
        answered.await.unwrap_or_else(|_| Err(unknown_outcome()))
    }

    /// Which of notifications `ids` are stored, oldest first.
    async fn oldest_first(&self, ids: &[&str]) -> Result<Vec<String>, StoreError> {
        let query = sqlx::query(sql::OLDEST_FIRST_SQLITE).bind(sql::to_json(&ids)?);
        let rows = self.fetch_all(sql::Side::Reads, query).await?;
        rows.iter()
            .map(|row| sqlx::Row::try_get(row, 0).map_err(sql::database))
            .collect()
    }

    /// The rows of `read`, prepared and bound.
    async fn in_order(
        &self,
        read: sql::InOrder,
    ) -> Result<Vec<sqlx::sqlite::SqliteRow>, StoreError> {
        let query = match read {
            sql::InOrder::ClaimDue { until, now, limit } => sqlx::query(sql::CLAIM_DUE_SQLITE)
                .bind(until)
                .bind(now)
                .bind(limit),
            sql::InOrder::Pending { limit } => sqlx::query(sql::PENDING_SQLITE).bind(limit),
            sql::InOrder::DeadLetters { after, limit } => sqlx::query(sql::DEAD_LETTERS_SQLITE)
                .bind(after)
                .bind(limit),
        };
        self.fetch_all(read.side(), query).await
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

/// After the steps, in `migrate()`'s transaction: nothing to settle on SQLite, whose
/// feed positions are its own row ids (see the PostgreSQL store's).
async fn settle_feed(_: &mut sqlx::SqliteConnection) -> Result<(), StoreError> {
    Ok(())
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
    sql::CLAIM_ONLY_SQLITE,
    sql::INSERT_EVENTS_SQLITE,
    sql::INSERT_NOTIFICATIONS_SQLITE,
    sql::CHANGES_SQLITE
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
        Commit::of_change(current, next, events)
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
        let outcomes = write_group(&mut connection, commits).await.outcomes;
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

    /// A task per subscription, all at once, each committing the designation of
    /// 565380 built from `subs` as given.
    fn designate_all_at_once(
        repo: &SqliteRepository,
        subs: &[Subscription],
    ) -> Vec<tokio::task::JoinHandle<Result<(), StoreError>>> {
        subs.iter()
            .map(|sub| {
                let (repo, commit) = (repo.clone(), designation(sub, "565380"));
                tokio::spawn(async move { repo.commit(commit).await })
            })
            .collect()
    }

    /// Subscriptions `s-0` .. `s-{n-1}` in `repo`.
    async fn seeded(repo: &SqliteRepository, n: usize) -> Vec<Subscription> {
        let mut subs = Vec::with_capacity(n);
        for i in 0..n {
            let sub = Subscription::new(
                SubscriptionId::new(format!("s-{i}")).unwrap(),
                CustomerId::new("c").unwrap(),
                CloudService::Azure,
                "Azure plan",
            );
            repo.insert(sub.clone()).await.unwrap();
            subs.push(sub);
        }
        subs
    }

    /// A database file of its own, removed when dropped.
    struct File(std::path::PathBuf);

    impl File {
        fn new(name: &str) -> Self {
            File(std::env::temp_dir().join(format!("dpor-{name}-{}.db", std::process::id())))
        }
        fn url(&self) -> String {
            format!("sqlite://{}", self.0.display())
        }
    }

    impl Drop for File {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
            }
        }
    }

    /// Whether `sub`'s change was written.
    async fn written(repo: &SqliteRepository, sub: &Subscription) -> bool {
        repo.get(sub.id()).await.unwrap().unwrap().version() > sub.version()
    }

    /// On a pool of several connections (`from_pool`), one group is written at a time
    /// still: every commit answers its own outcome, and what answered Ok is written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_commits_on_a_shared_pool_each_answer_their_own() {
        let file = File::new("shared-pool");
        let options = SqliteConnectOptions::from_str(&file.url())
            .unwrap()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .unwrap();
        let repo = SqliteRepository::from_pool(pool);
        repo.migrate().await.unwrap();
        let subs = seeded(&repo, 100).await;
        let tasks = designate_all_at_once(&repo, &subs);
        for (task, sub) in tasks.into_iter().zip(&subs) {
            task.await.unwrap().unwrap();
            assert!(written(&repo, sub).await);
        }
    }

    /// In a group, each caller gets its own commit's answer: the stale half of 100
    /// concurrent commits conflict, the others are written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn each_caller_in_a_group_gets_its_own_answer() {
        let file = File::new("own-answer");
        let repo = SqliteRepository::connect(&file.url()).await.unwrap();
        repo.migrate().await.unwrap();
        let subs = seeded(&repo, 100).await;
        for sub in subs.iter().step_by(2) {
            repo.commit(designation(sub, "3664167")).await.unwrap();
        }
        let tasks = designate_all_at_once(&repo, &subs);
        for (i, task) in tasks.into_iter().enumerate() {
            let answer = task.await.unwrap();
            if i % 2 == 0 {
                assert!(
                    matches!(answer, Err(StoreError::Conflict { .. })),
                    "{i}: {answer:?}"
                );
            } else {
                assert!(answer.is_ok(), "{i}: {answer:?}");
            }
        }
    }

    /// A commit whose caller gives up while it waits for the writer is never written,
    /// and the writer goes on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_given_up_while_waiting_is_never_written() {
        let file = File::new("given-up");
        let repo = SqliteRepository::connect(&file.url()).await.unwrap();
        repo.migrate().await.unwrap();
        let subs = seeded(&repo, 2).await;
        let held = repo.writer().acquire().await.unwrap();
        let commit = repo.commit(designation(&subs[0], "565380"));
        let gave_up = tokio::time::timeout(Duration::from_millis(50), commit).await;
        assert!(gave_up.is_err());
        drop(held);
        repo.commit(designation(&subs[1], "565380")).await.unwrap();
        assert!(!written(&repo, &subs[0]).await);
        assert!(written(&repo, &subs[1]).await);
    }

    /// Callers giving up at random moments cost the others nothing: no other caller
    /// fails, and what answered Ok is written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn callers_giving_up_cost_the_others_nothing() {
        let file = File::new("giving-up");
        let repo = SqliteRepository::connect(&file.url()).await.unwrap();
        repo.migrate().await.unwrap();
        let subs = seeded(&repo, 160).await;
        let clients: Vec<_> = subs
            .chunks(20)
            .enumerate()
            .map(|(client, chunk)| {
                let (repo, chunk) = (repo.clone(), chunk.to_vec());
                tokio::spawn(async move {
                    let mut answered = Vec::new();
                    for sub in &chunk {
                        let commit = repo.commit(designation(sub, "565380"));
                        if client == 0 {
                            // This client gives up on every commit after a moment.
                            let _ = tokio::time::timeout(Duration::from_micros(200), commit).await;
                        } else {
                            commit.await.unwrap();
                            answered.push(sub.clone());
                        }
                    }
                    answered
                })
            })
            .collect();
        for client in clients {
            for sub in client.await.unwrap() {
                assert!(written(&repo, &sub).await);
            }
        }
    }

    /// The outbox's statements on SQLite use the index of their key (step 2's partial
    /// indexes, whose predicates the statements meet), and none scans the outbox:
    /// every step of a plan that reads a table searches an index, but the claim of
    /// what is due and the list of pending notifications, which read
    /// `dpor_outbox_due` in order.
    #[tokio::test]
    async fn the_outbox_statements_find_their_rows_by_their_keys() {
        let repo = SqliteRepository::connect("sqlite::memory:").await.unwrap();
        repo.migrate().await.unwrap();
        let id = "sqlite_autoindex_dpor_outbox_1 (id=?)";
        let pair = "dpor_outbox_by_pair (subscription=? AND recipient=?";
        let due = "USING INDEX dpor_outbox_due";
        let statements = [
            (sql::MARK_ALL_DELIVERED_SQLITE, vec![id]),
            (sql::RECORD_RETRY, vec![id]),
            (sql::RECORD_DEAD, vec![id]),
            (sql::REDRIVE, vec![id]),
            (sql::OLDEST_FIRST_SQLITE, vec![id]),
            (sql::CLAIM_ONLY_SQLITE, vec![id, pair]),
            (sql::CLAIM_DUE_SQLITE, vec![due, pair]),
            (sql::PENDING_SQLITE, vec![due]),
            (sql::INSERT_NOTIFICATIONS_SQLITE, vec![pair]),
        ];
        for (statement, uses) in statements {
            let plan: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(&format!("EXPLAIN QUERY PLAN {statement}"))
                    .fetch_all(repo.pool())
                    .await
                    .unwrap();
            let plan: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
            let scans_a_table = |step: &&str| {
                step.starts_with("SCAN ")
                    && !step.contains("json_each")
                    && !step.contains(" USING INDEX dpor_outbox_due")
            };
            assert!(
                uses.iter()
                    .all(|u| plan.iter().any(|step| step.contains(u)))
                    && !plan.iter().any(scans_a_table),
                "{statement}:\n{plan:#?}"
            );
        }
    }
}
