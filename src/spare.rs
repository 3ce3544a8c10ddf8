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
//! statements finished with, as *spares*, and runs its next statement on one of them:
//! a statement is then one round trip, as on a connection of its own. A spare goes back
//! to the pool (with sqlx's check) when
//!
//! - it has not been used for [`Keep::idle`] (a sweep task that runs while there are
//!   spares), so that a quiet repository holds no connection the host's own queries
//!   could use;
//! - it has been out of the pool for [`Keep::tenure`], at its next return, so that
//!   whoever waits in the pool (the host's own queries, a transaction of the crate)
//!   gets a connection within about that long even when the repository keeps them all
//!   busy;
//! - a statement of the repository waits in the pool for a connection;
//! - the pool was closed, or there is no tokio runtime to sweep on.
//!
//! A statement that fails or is cancelled gives its connection back to the pool as
//! sqlx does (the check then also finds a connection left mid-answer), never as a
//! spare. SQLite's stores lend their pools' connections the same way but keep no
//! spares: their check is a trip to a worker thread, not to a server.

// With one of the two SQL stores, the other's half is unused: PostgreSQL keeps spares,
// SQLite lends from its pools.
#![cfg_attr(not(all(feature = "sqlite", feature = "postgres")), allow(dead_code))]

use std::sync::atomic::{AtomicUsize, Ordering};
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
}

/// The spares of one repository (shared by its clones), over its pool.
pub(crate) struct Spares<DB: Database> {
    pool: Pool<DB>,
    shared: Arc<Shared<DB>>,
}

struct Shared<DB: Database> {
    keep: Keep,
    state: Mutex<State<DB>>,
    /// The repository's statements waiting in the pool for a connection.
    waiting: AtomicUsize,
}

struct State<DB: Database> {
    /// Last returned last.
    spares: Vec<Spare<DB>>,
    /// Whether a sweep task is running.
    sweeping: bool,
}

struct Spare<DB: Database> {
    connection: PoolConnection<DB>,
    /// When the pool handed it out.
    out_since: Instant,
    /// When its last statement finished.
    idle_since: Instant,
}

fn lock<DB: Database>(shared: &Shared<DB>) -> MutexGuard<'_, State<DB>> {
    // The state is a list and a flag, each left whole by every critical section.
    shared.state.lock().unwrap_or_else(PoisonError::into_inner)
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
                }),
                waiting: AtomicUsize::new(0),
            }),
        }
    }

    /// The pool.
    pub(crate) fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// A connection for a statement: the spare returned last, or one from the pool.
    pub(crate) async fn lend(&self) -> Result<Lent<'_, DB>, StoreError> {
        let spare = lock(&self.shared).spares.pop();
        if let Some(spare) = spare {
            return Ok(Lent {
                connection: spare.connection,
                out_since: spare.out_since,
                spares: Some(self),
            });
        }
        let waiting = Waiting::new(&self.shared.waiting);
        let connection = self.pool.acquire().await.map_err(sql::database)?;
        drop(waiting);
        Ok(Lent {
            connection,
            out_since: Instant::now(),
            spares: Some(self),
        })
    }

    /// Keeps `connection` as a spare, or gives it back to the pool (module docs).
    fn give_back(&self, connection: PoolConnection<DB>, out_since: Instant) {
        let now = Instant::now();
        let waiting = self.shared.waiting.load(Ordering::SeqCst);
        if self.pool.is_closed() || !self.shared.keep.keeps(out_since, now, waiting) {
            return; // dropped: back to the pool
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let start_sweep = {
            let mut state = lock(&self.shared);
            state.spares.push(Spare {
                connection,
                out_since,
                idle_since: now,
            });
            !std::mem::replace(&mut state.sweeping, true)
        };
        if start_sweep {
            runtime.spawn(sweep(Sweeping {
                shared: Arc::clone(&self.shared),
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

/// Counts a statement waiting in the pool, until dropped (also when its caller gives
/// up).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The sweep task's hold on the spares: when the task ends before the spares are gone
/// (its runtime shut down), the next return starts a new sweep.
struct Sweeping<DB: Database> {
    shared: Arc<Shared<DB>>,
    done: bool,
}

impl<DB: Database> Drop for Sweeping<DB> {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.shared).sweeping = false;
        }
    }
}

/// Every [`Keep::idle`], gives the stale spares back to the pool; ends when none is
/// left.
async fn sweep<DB: Database>(mut sweeping: Sweeping<DB>) {
    let keep = sweeping.shared.keep;
    loop {
        tokio::time::sleep(keep.idle).await;
        let now = Instant::now();
        let stale_ones: Vec<Spare<DB>> = {
            let mut state = lock(&sweeping.shared);
            let (stale_ones, kept) = std::mem::take(&mut state.spares)
                .into_iter()
                .partition(|s| keep.stale(s.out_since, s.idle_since, now));
            state.spares = kept;
            if state.spares.is_empty() {
                state.sweeping = false;
                sweeping.done = true;
            }
            stale_ones
        };
        // Dropped outside the lock: each goes back to the pool.
        drop(stale_ones);
        if sweeping.done {
            return;
        }
    }
}

/// A connection lent for one statement (or a few). [`finish`](Self::finish) returns it
/// when the statement succeeded; dropped unfinished (an error, a cancelled call), it
/// goes back to the pool.
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

    /// The statement succeeded: the connection is free for the next one.
    pub(crate) fn finish(self) {
        if let Some(spares) = self.spares {
            spares.give_back(self.connection, self.out_since);
        }
    }

    /// The connection.
    pub(crate) fn connection(&mut self) -> &mut DB::Connection {
        &mut self.connection
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
}
