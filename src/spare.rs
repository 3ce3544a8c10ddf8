//! The connections a SQL store keeps between its statements.
//!
//! sqlx's pool checks every connection that comes back to it with a `Sync` message, a
//! round trip to the server, before anyone else may take it (sqlx 0.8 always does, and
//! cannot be told not to). A statement run on `&PgPool` therefore costs two round
//! trips, and a check + submit eight rather than four: on a pool with no other free
//! connection, the next statement waits for that `Sync`; on a busy server, each one
//! wakes a backend and a task of the client for nothing.
//!
//! So [`PostgresRepository`](crate::PostgresRepository) keeps the connections its
//! statements finished with, as *spares*, and runs its next statement on one of them
//! (its rustdoc says what a host sees). A spare goes back to the pool (with sqlx's
//! check) when
//!
//! - it has not been used for [`Keep::idle`] (a sweep task that runs while there are
//!   spares), so that a quiet repository holds no connection the host's own queries
//!   could use;
//! - it has been out of the pool for [`Keep::tenure`], at its next return, so that
//!   whoever waits in the pool (the host's own queries, a transaction of the crate)
//!   gets a connection within about that long even when the repository keeps them all
//!   busy;
//! - a statement or transaction of the repository waits in the pool for a connection
//!   (a transaction also sends a spare back first: it begins in the pool);
//! - the pool was closed, or there is no tokio runtime to sweep on.
//!
//! A statement that fails or is cancelled gives its connection back to the pool as
//! sqlx does (the check then also finds a connection left mid-answer), never as a
//! spare. SQLite's stores lend their pools' connections the same way but keep no
//! spares: their check is a trip to a worker thread, not to a server.

// With one of the two SQL stores, the other's half is unused: PostgreSQL keeps spares,
// SQLite lends from its pools.
#![cfg_attr(not(all(feature = "sqlite", feature = "postgres")), allow(dead_code))]

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool};

use crate::error::StoreError;
use crate::sql;

/// How long connections are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Keep {
    /// How long a spare may go unused before it goes back to the pool (zero: no
    /// spares).
    pub idle: Duration,
    /// How long a connection may stay out of the pool, lent or spare, before it goes
    /// back at its next return.
    pub tenure: Duration,
}

impl Default for Keep {
    fn default() -> Self {
        Keep {
            idle: Duration::from_millis(50),
            tenure: Duration::from_millis(500),
        }
    }
}

impl Keep {
    /// Whether a connection out of the pool since `out_since` is kept as a spare when
    /// its statement finishes at `now`, with `waiting` statements of the repository
    /// waiting in the pool.
    fn keeps(self, out_since: Instant, now: Instant, waiting: usize) -> bool {
        waiting == 0
            && !self.idle.is_zero()
            && now.saturating_duration_since(out_since) < self.tenure
    }

    /// Whether a spare goes back to the pool at `now`.
    fn stale(self, out_since: Instant, idle_since: Instant, now: Instant) -> bool {
        now.saturating_duration_since(idle_since) >= self.idle
            || now.saturating_duration_since(out_since) >= self.tenure
    }

    /// When a spare becomes [stale](Self::stale) (in an hour at the latest: the sweep
    /// then looks again).
    fn due(self, out_since: Instant, idle_since: Instant) -> Instant {
        let hour = Duration::from_secs(3600);
        let at = |since: Instant, after: Duration| since.checked_add(after.min(hour));
        [at(idle_since, self.idle), at(out_since, self.tenure)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(idle_since)
    }
}

/// The spares of one repository (shared by its clones), over its pool.
pub(crate) struct Spares<DB: Database> {
    pool: Pool<DB>,
    shared: Arc<Shared<DB>>,
}

struct Shared<DB: Database> {
    keep: Keep,
    state: Mutex<State<DB>>,
}

struct State<DB: Database> {
    /// Last returned last.
    spares: Vec<Spare<DB>>,
    /// Whether a sweep task is running.
    sweeping: bool,
    /// The repository's statements and transactions waiting in the pool.
    waiting: usize,
}

struct Spare<DB: Database> {
    connection: PoolConnection<DB>,
    /// When the pool handed it out.
    out_since: Instant,
    /// When its last statement finished.
    idle_since: Instant,
}

fn lock<DB: Database>(shared: &Shared<DB>) -> MutexGuard<'_, State<DB>> {
    // Every critical section leaves the list, the flag and the count whole.
    shared.state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Gives `spares` back to the pool. sqlx does that on a task of the runtime, so with
/// none (a repository dropped after its runtime) each is only let go of: the pool may
/// open another in its place.
fn release<DB: Database>(spares: impl IntoIterator<Item = Spare<DB>>) {
    if tokio::runtime::Handle::try_current().is_ok() {
        spares.into_iter().for_each(drop);
    } else {
        for spare in spares {
            drop(spare.connection.detach());
        }
    }
}

impl<DB: Database> Drop for State<DB> {
    fn drop(&mut self) {
        release(std::mem::take(&mut self.spares));
    }
}

impl<DB: Database> Spares<DB> {
    /// No spares yet, over `pool`, kept as `keep` says.
    pub(crate) fn new(pool: Pool<DB>, keep: Keep) -> Self {
        Spares {
            pool,
            shared: Arc::new(Shared {
                keep,
                state: Mutex::new(State {
                    spares: Vec::new(),
                    sweeping: false,
                    waiting: 0,
                }),
            }),
        }
    }

    /// The pool.
    pub(crate) fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// A connection for a statement: the spare returned last, or one from the pool.
    pub(crate) async fn lend(&self) -> Result<Lent<'_, DB>, StoreError> {
        let (spare, closed) = {
            let mut state = lock(&self.shared);
            // A closed pool waits for every connection: the spares go back at once.
            let closed = if self.pool.is_closed() {
                std::mem::take(&mut state.spares)
            } else {
                Vec::new()
            };
            let spare = state.spares.pop();
            if spare.is_none() {
                state.waiting += 1;
            }
            (spare, closed)
        };
        release(closed);
        if let Some(spare) = spare {
            return Ok(Lent {
                connection: spare.connection,
                out_since: spare.out_since,
                spares: Some(self),
            });
        }
        let waiting = Waiting(&self.shared);
        let connection = self.pool.acquire().await.map_err(sql::database)?;
        drop(waiting);
        Ok(Lent {
            connection,
            out_since: Instant::now(),
            spares: Some(self),
        })
    }

    /// A transaction from the pool. It waits there like a statement (the next
    /// connection a statement finishes with goes back to the pool), and a spare goes
    /// back first, so that a quiet repository's spare is not what it waits for.
    pub(crate) async fn begin(&self) -> Result<sqlx::Transaction<'static, DB>, sqlx::Error> {
        let spare = {
            let mut state = lock(&self.shared);
            state.waiting += 1;
            state.spares.pop()
        };
        let waiting = Waiting(&self.shared);
        release(spare);
        let transaction = self.pool.begin().await;
        drop(waiting);
        transaction
    }

    /// Keeps `connection` as a spare, or gives it back to the pool (module docs).
    fn give_back(&self, connection: PoolConnection<DB>, out_since: Instant) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            drop(connection.detach());
            return;
        };
        let now = Instant::now();
        let mut state = lock(&self.shared);
        if self.pool.is_closed() || !self.shared.keep.keeps(out_since, now, state.waiting) {
            drop(state);
            return; // `connection` dropped: back to the pool
        }
        state.spares.push(Spare {
            connection,
            out_since,
            idle_since: now,
        });
        let start_sweep = !std::mem::replace(&mut state.sweeping, true);
        drop(state);
        if start_sweep {
            runtime.spawn(sweep(Sweeping {
                shared: Arc::clone(&self.shared),
                pool: self.pool.clone(),
                done: false,
            }));
        }
    }
}

impl<DB: Database> Clone for Spares<DB> {
    fn clone(&self) -> Self {
        Spares {
            pool: self.pool.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<DB: Database> std::fmt::Debug for Spares<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spares")
            .field("pool", &self.pool)
            .field("keep", &self.shared.keep)
            .field("spares", &lock(&self.shared).spares.len())
            .finish()
    }
}

/// Counts a statement or transaction waiting in the pool (counted by its caller under
/// the lock) until dropped, also when its caller gives up.
struct Waiting<'a, DB: Database>(&'a Shared<DB>);

impl<DB: Database> Drop for Waiting<'_, DB> {
    fn drop(&mut self) {
        lock(self.0).waiting -= 1;
    }
}

/// The sweep task's hold on the spares: when the task ends before the spares are gone
/// (its runtime shut down), the next return starts a new sweep.
struct Sweeping<DB: Database> {
    shared: Arc<Shared<DB>>,
    pool: Pool<DB>,
    done: bool,
}

impl<DB: Database> Drop for Sweeping<DB> {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.shared).sweeping = false;
        }
    }
}

/// Gives each spare back to the pool once stale (all of them once the pool is closed);
/// ends when none is left.
async fn sweep<DB: Database>(mut sweeping: Sweeping<DB>) {
    let keep = sweeping.shared.keep;
    let start = Instant::now();
    let mut next = keep.due(start, start);
    loop {
        tokio::time::sleep_until(next.into()).await;
        let now = Instant::now();
        let closed = sweeping.pool.is_closed();
        let stale_ones: Vec<Spare<DB>> = {
            let mut state = lock(&sweeping.shared);
            let (stale_ones, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut state.spares)
                .into_iter()
                .partition(|s| closed || keep.stale(s.out_since, s.idle_since, now));
            state.spares = kept;
            match state
                .spares
                .iter()
                .map(|s| keep.due(s.out_since, s.idle_since))
                .min()
            {
                Some(due) => next = due,
                None => {
                    state.sweeping = false;
                    sweeping.done = true;
                }
            }
            stale_ones
        };
        release(stale_ones);
        if sweeping.done {
            return;
        }
    }
}

/// A connection lent for one statement. [`settle`](Self::settle) returns it when the
/// statement succeeded; dropped unsettled or after an error (a cancelled call), it goes
/// back to the pool, whose check reads whatever answer was left.
pub(crate) struct Lent<'a, DB: Database> {
    connection: PoolConnection<DB>,
    out_since: Instant,
    /// None: a store that keeps no spares.
    spares: Option<&'a Spares<DB>>,
}

impl<DB: Database> Lent<'_, DB> {
    /// A connection `pool` hands out, returned to it when the statement ends.
    pub(crate) async fn from_pool(pool: &Pool<DB>) -> Result<Self, StoreError> {
        Ok(Lent {
            connection: pool.acquire().await.map_err(sql::database)?,
            out_since: Instant::now(),
            spares: None,
        })
    }

    /// The connection.
    pub(crate) fn connection(&mut self) -> &mut DB::Connection {
        &mut self.connection
    }

    /// The statement's `result`; the connection is free for the next one if it
    /// succeeded.
    pub(crate) fn settle<T>(self, result: Result<T, sqlx::Error>) -> Result<T, StoreError> {
        let value = result.map_err(sql::database)?;
        if let Some(spares) = self.spares {
            spares.give_back(self.connection, self.out_since);
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_connection_is_kept_while_nobody_of_the_repository_waits_and_its_tenure_runs() {
        let keep = Keep::default();
        let out = Instant::now();
        assert!(keep.keeps(out, out, 0));
        assert!(keep.keeps(out, out + keep.tenure - MS, 0));
        assert!(!keep.keeps(out, out + keep.tenure, 0));
        assert!(!keep.keeps(out, out, 1));
        // A clock that went back keeps it.
        assert!(keep.keeps(out + Duration::from_secs(1), out, 0));
        // No idle time: no spares.
        let none = Keep {
            idle: Duration::ZERO,
            ..keep
        };
        assert!(!none.keeps(out, out, 0));
    }

    #[test]
    fn a_spare_goes_back_once_idle_or_out_too_long() {
        let keep = Keep::default();
        let out = Instant::now();
        let idle = out + 2 * MS;
        assert!(!keep.stale(out, idle, idle));
        assert!(!keep.stale(out, idle, idle + keep.idle - MS));
        assert!(keep.stale(out, idle, idle + keep.idle));
        // Used a moment ago, but out for its whole tenure.
        assert!(keep.stale(out, out + keep.tenure, out + keep.tenure));
    }

    #[test]
    fn a_spare_is_due_when_it_first_becomes_stale() {
        let keep = Keep::default();
        let out = Instant::now();
        assert_eq!(keep.due(out, out), out + keep.idle);
        let late = out + keep.tenure - MS;
        assert_eq!(keep.due(out, late), out + keep.tenure);
        assert!(keep.stale(out, late, keep.due(out, late)));
        // Durations past any clock: looked at again within the hour.
        let forever = Keep {
            idle: Duration::MAX,
            tenure: Duration::MAX,
        };
        assert_eq!(forever.due(out, out), out + Duration::from_secs(3600));
    }
}
