//! The SQL stores' schema as numbered steps, one list per database, and the rules of
//! moving a database from one version to the next.
//!
//! A database records the steps applied to it in a `dpor_schema` table (each step's
//! SQL ends by recording itself there). `migrate()` on `SqliteRepository` (feature
//! `sqlite`) or `PostgresRepository` (feature `postgres`) applies the missing steps in
//! order, each in its own transaction, under a lock, so that several instances starting
//! at once apply each step once. A host that runs its own migration tool (sqlx migrate,
//! refinery, Flyway) takes the steps from [`steps`] instead and never calls
//! `migrate()`; the crate does not use `sqlx::migrate!`, whose `_sqlx_migrations` table
//! belongs to the host.
//!
//! A database written by 0.1.0 has the tables but no `dpor_schema`: it is at step 1.
//! A database at a version newer than this release knows is refused
//! ([`SchemaError::TooNew`]), by `migrate()` and by `connect()` (`from_pool` takes the
//! host's pool as it is and checks nothing), and nothing is changed.
//!
//! ```
//! use dpor::schema::{self, Backend};
//!
//! for step in schema::steps(Backend::Postgres) {
//!     // e.g. write V{version}__{name}.sql for Flyway
//!     assert!(step.sql.contains("dpor_schema"));
//! }
//! assert_eq!(schema::latest(Backend::Sqlite), 4);
//! ```

use crate::error::SchemaError;

/// A database the SQL stores run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// SQLite 3 (`SqliteRepository`, feature `sqlite`).
    Sqlite,
    /// PostgreSQL 13 or later (`PostgresRepository`, feature `postgres`; the change
    /// feed needs `pg_current_xact_id`).
    Postgres,
}

/// One numbered step of the schema: run its SQL (several statements) in one
/// transaction, after every step with a lower version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// The version the database is at once the step is applied (1, 2, ...).
    pub version: u32,
    /// A short name (`initial`, ...), as file names of migration tools want it.
    pub name: &'static str,
    /// The statements, ending with the step's own row in `dpor_schema`.
    pub sql: &'static str,
}

const SQLITE: &[Step] = &[
    Step {
        version: 1,
        name: "initial",
        sql: include_str!("schema/sqlite/0001_initial.sql"),
    },
    Step {
        version: 2,
        name: "delivery",
        sql: include_str!("schema/sqlite/0002_delivery.sql"),
    },
    Step {
        version: 3,
        name: "feed",
        sql: include_str!("schema/sqlite/0003_feed.sql"),
    },
    Step {
        version: 4,
        name: "outbox_indexes",
        sql: include_str!("schema/sqlite/0004_outbox_indexes.sql"),
    },
];

const POSTGRES: &[Step] = &[
    Step {
        version: 1,
        name: "initial",
        sql: include_str!("schema/postgres/0001_initial.sql"),
    },
    Step {
        version: 2,
        name: "delivery",
        sql: include_str!("schema/postgres/0002_delivery.sql"),
    },
    Step {
        version: 3,
        name: "feed",
        sql: include_str!("schema/postgres/0003_feed.sql"),
    },
    Step {
        version: 4,
        name: "outbox_indexes",
        sql: include_str!("schema/postgres/0004_outbox_indexes.sql"),
    },
];

/// The steps of `backend`, in order.
pub fn steps(backend: Backend) -> &'static [Step] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

/// The version this release writes and reads: the last step's.
pub fn latest(backend: Backend) -> u32 {
    steps(backend).last().map_or(0, |step| step.version)
}

/// What one `migrate()` did: the database was at `from` (0: empty) and is now at `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Migration {
    /// The version found.
    pub from: u32,
    /// The version now.
    pub to: u32,
}

impl Migration {
    /// Whether the version moved (a 0.1.0 database that was only recorded as being at
    /// step 1 did not).
    pub fn applied(&self) -> bool {
        self.from != self.to
    }
}

/// The steps that take a database at `found` (0: empty) to this release's version.
///
/// # Errors
///
/// [`SchemaError::TooNew`] when the database was written by a newer release.
pub fn pending(backend: Backend, found: u32) -> Result<&'static [Step], SchemaError> {
    let supported = latest(backend);
    if found > supported {
        return Err(SchemaError::TooNew { found, supported });
    }
    let all = steps(backend);
    let start = all.partition_point(|step| step.version <= found);
    Ok(&all[start..])
}

/// The version of a database from what it holds: the highest step in `dpor_schema`, or
/// 1 for a 0.1.0 database (its tables but no `dpor_schema`), or 0 when empty.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn version_of(recorded: Option<u32>, has_tables: bool) -> u32 {
    match recorded {
        Some(version) => version,
        None if has_tables => 1,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_numbered_from_one_without_gaps_and_record_themselves() {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            for (i, step) in steps(backend).iter().enumerate() {
                assert_eq!(step.version as usize, i + 1);
                let record = format!(
                    "INSERT INTO dpor_schema (version, name) VALUES ({}, '{}');",
                    step.version, step.name
                );
                assert!(
                    step.sql.contains(&record),
                    "{backend:?} step {}",
                    step.version
                );
            }
        }
    }

    #[test]
    fn pending_steps_follow_the_version_found() {
        let latest = latest(Backend::Sqlite);
        assert_eq!(pending(Backend::Sqlite, 0).unwrap().len(), latest as usize);
        assert!(pending(Backend::Sqlite, latest).unwrap().is_empty());
        assert_eq!(
            pending(Backend::Sqlite, latest + 1),
            Err(SchemaError::TooNew {
                found: latest + 1,
                supported: latest
            })
        );
    }

    #[test]
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn a_database_without_versions_but_with_tables_is_at_step_one() {
        assert_eq!(version_of(None, true), 1);
        assert_eq!(version_of(None, false), 0);
        assert_eq!(version_of(Some(3), true), 3);
    }
}
