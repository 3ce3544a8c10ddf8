//! Errors: [`Error`] for the service and the transitions, and the port errors
//! [`StoreError`] (with [`SchemaError`]), [`DirectoryError`] and [`NotifyError`] that
//! host implementations return.
//!
//! The messages are written so that a portal can show them to the customer as they
//! are. Each variant's docs say how a caller should react.

use std::error::Error as StdError;
use std::fmt;

use time::OffsetDateTime;

use crate::feed::Cursor;
use crate::id::{MpnId, MpnIdError, SubscriptionId};
use crate::partner::Program;
use crate::subscription::SubscriptionStatus;

/// A boxed error from a host's backend (database driver, HTTP client, SMTP client).
///
/// # Examples
///
/// ```
/// use dpor::{BoxError, StoreError};
///
/// fn from_driver(error: std::io::Error) -> StoreError {
///     StoreError::Backend(BoxError::from(error))
/// }
///
/// let error = from_driver(std::io::Error::other("disk full"));
/// assert_eq!(error.to_string(), "the storage backend failed");
/// ```
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Everything that can go wrong in the partner-of-record flow.
///
/// # Examples
///
/// A portal's mapping to HTTP statuses, from the stable [`code`](Error::code) and each
/// variant's "Handling" notes:
///
/// ```
/// use dpor::*;
///
/// fn http_status(error: &Error) -> u16 {
///     match error.code() {
///         "invalid_mpn_id" | "unknown_cursor" => 400,
///         "forbidden" => 403,
///         "subscription_not_found" | "partner_not_found" => 404,
///         "conflict" | "no_partner_of_record" | "subscription_not_active"
///         | "subscription_cancelled" | "subscription_already_exists" => 409,
///         "check_expired" => 410,
///         "partner_not_enrolled" => 422,
///         "directory_unavailable" => 503,
///         _ => 500, // store_failed, time_out_of_range, and codes added later
///     }
/// }
///
/// let typo = Error::from(MpnIdError::WrongLength { length: 4 });
/// assert_eq!(http_status(&typo), 400);
/// assert_eq!(typo.to_string(), "a Partner ID (MPN ID) has 5 to 10 digits, this one has 4");
///
/// // A lost compare-and-swap in the store surfaces as a domain conflict.
/// let race = Error::from(StoreError::Conflict { subscription: SubscriptionId::new("sub-1")?, expected: 1, actual: 2 });
/// assert_eq!((race.code(), http_status(&race)), ("conflict", 409));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// What was typed in the "Microsoft Partner ID" field is not an MPN ID. The message
    /// is the [`MpnIdError`]'s own (the error is transparent).
    ///
    /// ### Handling
    /// Show the message next to the field (HTTP 400). Nothing was looked up.
    #[error(transparent)]
    InvalidMpnId(#[from] MpnIdError),

    /// No such subscription, or one this actor may not see (the two are answered the
    /// same, so that nobody learns which subscriptions exist).
    ///
    /// ### Handling
    /// HTTP 404.
    #[error("subscription {0} was not found")]
    SubscriptionNotFound(SubscriptionId),

    /// The actor may see the subscription but not do this (only the customer's global
    /// administrator designates the partner of record).
    ///
    /// ### Handling
    /// HTTP 403; ask the customer's global administrator.
    #[error("not allowed: {reason}")]
    Forbidden {
        /// Why, in words for the person who tried.
        reason: String,
    },

    /// The directory has no partner with this MPN ID.
    ///
    /// ### Handling
    /// Show next to the field: the customer should check the ID with the partner
    /// (HTTP 404 or 422).
    #[error("no partner with Partner ID (MPN ID) {0} was found; check the ID with your partner")]
    PartnerNotFound(MpnId),

    /// The partner exists but is not enrolled in the program the service is for.
    ///
    /// ### Handling
    /// Show next to the field (HTTP 422); the partner must enrol first.
    #[error(
        "partner {mpn_id} is not enrolled in the {program} program and cannot be partner of record"
    )]
    PartnerNotEnrolled {
        /// The partner.
        mpn_id: MpnId,
        /// The program it would need.
        program: Program,
    },

    /// The subscription is suspended or cancelled: its partner of record is frozen.
    ///
    /// ### Handling
    /// HTTP 409; offer no partner-of-record actions.
    #[error("subscription {subscription} is {status}: its partner of record cannot be changed")]
    SubscriptionNotActive {
        /// The subscription.
        subscription: SubscriptionId,
        /// Its status.
        status: SubscriptionStatus,
    },

    /// The subscription is cancelled (or was migrated): it can no longer change.
    ///
    /// ### Handling
    /// HTTP 409; offer no actions on it.
    #[error("subscription {0} is cancelled and can no longer change")]
    SubscriptionCancelled(SubscriptionId),

    /// A subscription with this id already exists (the target of a migration).
    ///
    /// ### Handling
    /// HTTP 409; choose another id.
    #[error("a subscription with id {0} already exists")]
    SubscriptionAlreadyExists(SubscriptionId),

    /// A removal was asked for but no partner of record is set.
    ///
    /// ### Handling
    /// HTTP 409; refresh the view.
    #[error("subscription {0} has no partner of record to remove")]
    NoPartnerOfRecord(SubscriptionId),

    /// The subscription changed since it was read (someone else changed its partner of
    /// record in the meantime).
    ///
    /// ### Handling
    /// HTTP 409: show the current state and let the customer check and submit again.
    #[error(
        "subscription {subscription} was changed by someone else in the meantime \
         (expected version {expected}, found {actual}); check the partner again"
    )]
    Conflict {
        /// The subscription.
        subscription: SubscriptionId,
        /// The version the caller had read.
        expected: u64,
        /// The version stored now.
        actual: u64,
    },

    /// The partner check is too old (or dated in the future) to be submitted.
    ///
    /// ### Handling
    /// HTTP 410: run "Check ID" again.
    #[error("the partner check from {checked_at} has expired; check the partner ID again")]
    CheckExpired {
        /// When the check was made.
        checked_at: OffsetDateTime,
    },

    /// The time the host's [`Clock`](crate::Clock) gave cannot be recorded: its UTC date
    /// lies outside the years 0000 to 9999 that the wire format writes. Nothing changed.
    /// Any operation that would record a change can answer it, before it commits; the
    /// operations' own error lists leave it out.
    ///
    /// ### Handling
    /// HTTP 500: the host's clock is wrong.
    #[error(
        "the time {at} cannot be recorded: recorded times lie in the years 0000 to 9999 in UTC"
    )]
    TimeOutOfRange {
        /// The time given.
        at: OffsetDateTime,
    },

    /// A change feed cursor that lies past the store's last change: answered by another
    /// store (before a [`transfer`](crate::transfer()) or a restore), or by one since
    /// emptied (an in-memory store, restarted). Read as if the feed were empty, it would
    /// have hidden every change up to it.
    ///
    /// ### Handling
    /// HTTP 400: read the feed again from the start (`after: None`), and replace the
    /// stored cursor.
    #[error(
        "the change feed cursor {0} lies past the last change of this store: it was \
         answered by another store; read the feed again from the start"
    )]
    UnknownCursor(Cursor),

    /// The repository failed.
    ///
    /// ### Handling
    /// HTTP 500 or 503; retrying the whole operation is safe (a failed commit changes
    /// nothing).
    #[error("the subscription store failed")]
    Store(#[source] StoreError),

    /// The partner directory failed, or answered a partner whose text the records
    /// cannot keep ([`Partner::check_text`](crate::Partner::check_text): a name longer
    /// than 256 characters, say); the source says which.
    ///
    /// ### Handling
    /// HTTP 502 or 503. Nothing was changed. A failed directory: retry later. A record
    /// it cannot keep: refused until the host corrects it in the directory.
    #[error("the partner directory is unavailable; try again later")]
    Directory(#[from] DirectoryError),
}

impl Error {
    /// A stable, snake_case code for the error, for clients and logs: an HTTP API
    /// answers it next to the message, a portal maps it to a status. A code never
    /// changes; a new variant comes with a new code. The crate docs' "Errors map to
    /// HTTP" table lists every code with its status (a test keeps the two in step).
    ///
    /// ```
    /// use dpor::*;
    ///
    /// let typo = Error::from(MpnIdError::WrongLength { length: 4 });
    /// assert_eq!(typo.code(), "invalid_mpn_id");
    /// ```
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidMpnId(_) => "invalid_mpn_id",
            Error::Forbidden { .. } => "forbidden",
            Error::SubscriptionNotFound(_) => "subscription_not_found",
            Error::PartnerNotFound(_) => "partner_not_found",
            Error::PartnerNotEnrolled { .. } => "partner_not_enrolled",
            Error::SubscriptionNotActive { .. } => "subscription_not_active",
            Error::SubscriptionCancelled(_) => "subscription_cancelled",
            Error::SubscriptionAlreadyExists(_) => "subscription_already_exists",
            Error::NoPartnerOfRecord(_) => "no_partner_of_record",
            Error::Conflict { .. } => "conflict",
            Error::CheckExpired { .. } => "check_expired",
            Error::TimeOutOfRange { .. } => "time_out_of_range",
            Error::UnknownCursor(_) => "unknown_cursor",
            Error::Store(_) => "store_failed",
            Error::Directory(_) => "directory_unavailable",
        }
    }
}

impl From<StoreError> for Error {
    /// A store conflict is a domain conflict ([`Error::Conflict`]), a missing row a
    /// missing subscription, a duplicate id [`Error::SubscriptionAlreadyExists`], a
    /// cursor from elsewhere [`Error::UnknownCursor`]; everything else stays a store
    /// error.
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict {
                subscription,
                expected,
                actual,
            } => Error::Conflict {
                subscription,
                expected,
                actual,
            },
            StoreError::NotFound(subscription) => Error::SubscriptionNotFound(subscription),
            StoreError::AlreadyExists(subscription) => {
                Error::SubscriptionAlreadyExists(subscription)
            }
            StoreError::UnknownCursor(cursor) => Error::UnknownCursor(cursor),
            other => Error::Store(other),
        }
    }
}

/// What a [`Repository`](crate::Repository) reports.
///
/// # Examples
///
/// ```
/// use dpor::*;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let repo = InMemoryRepository::new();
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, CloudService::Azure, "Azure plan");
/// repo.insert(sub.clone()).await?;
///
/// // A commit decided on a version that is no longer stored is refused.
/// let suspend = |sub: &Subscription| match sub.suspend(time::OffsetDateTime::UNIX_EPOCH) {
///     Ok(Transition::Changed { next, events }) => Ok(Commit { expected_version: sub.version(), next, events, notifications: vec![], create: None }),
///     other => Err(format!("expected a change, got {other:?}")),
/// };
/// repo.commit(suspend(&sub)?).await?;
/// let refused = repo.commit(suspend(&sub)?).await; // decided on version 0 again
/// assert!(matches!(refused, Err(StoreError::Conflict { expected: 0, actual: 1, .. })));
///
/// // A host's repository wraps its driver's failures.
/// let down = StoreError::Backend("connection refused".into());
/// assert_eq!(down.to_string(), "the storage backend failed");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The compare-and-swap of a commit failed: the stored version is not the expected
    /// one. Nothing was written.
    #[error("subscription {subscription} is at version {actual}, not {expected}")]
    Conflict {
        /// The subscription.
        subscription: SubscriptionId,
        /// The version the commit expected.
        expected: u64,
        /// The version stored.
        actual: u64,
    },
    /// An insert (or a commit's [`create`](crate::Commit::create)) found a subscription
    /// with the same id. Nothing was written.
    #[error("subscription {0} already exists")]
    AlreadyExists(SubscriptionId),
    /// A commit named a subscription that is not stored.
    #[error("subscription {0} is not stored")]
    NotFound(SubscriptionId),
    /// A commit that does not hang together (see [`Commit::check`](crate::Commit::check)),
    /// or that would write an event or notification twice; an insert of a subscription
    /// that is not new ([`check_new`](crate::ports::check_new)); an import that does
    /// not hang together. Nothing was written.
    #[error("invalid commit for subscription {subscription}: {reason}")]
    InvalidCommit {
        /// The subscription.
        subscription: SubscriptionId,
        /// What is wrong.
        reason: String,
    },
    /// A change feed cursor past the store's last change
    /// ([`Repository::changes`](crate::Repository::changes)): not one this store
    /// answered. Nothing was read.
    #[error("the change feed cursor {0} lies past the last change of this store")]
    UnknownCursor(Cursor),
    /// The backend failed (connection, I/O, a row that does not decode).
    #[error("the storage backend failed")]
    Backend(#[source] BoxError),
    /// The database's schema is not one this release can use: not installed yet, or
    /// written by a newer release. Nothing was written.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// Why a SQL store cannot use its database's schema (see [`crate::schema`]).
///
/// ### Handling
/// [`NotInstalled`](Self::NotInstalled): run `migrate()` (or the host's migration tool
/// with [`schema::steps`](crate::schema::steps)) before serving.
/// [`NotMigrated`](Self::NotMigrated): the same, unless a newer release has migrated the
/// database since this instance connected: then stop this instance.
/// [`TooNew`](Self::TooNew): this instance is older than the database; deploy the newer
/// release instead.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The dpor tables are missing: the store is used before `migrate()` was run.
    #[error("the dpor tables are missing: run migrate() (or apply dpor::schema::steps) first")]
    NotInstalled,
    /// The dpor tables lack a column this release uses: they are at another schema
    /// version than this release's. Most often an older one, the store used before
    /// `migrate()` brought them up to date; or a newer release migrated them (a step
    /// that drops a column) after this instance connected. Nothing was written.
    #[error(
        "the dpor tables are not at the schema version this release uses: run migrate() \
         if they are older; if a newer release has migrated them, stop this instance"
    )]
    NotMigrated,
    /// The database is at a schema version newer than this release knows.
    #[error(
        "the database is at dpor schema version {found}, newer than the {supported} this \
         release knows: it was written by a newer release of dpor"
    )]
    TooNew {
        /// The version found in the database.
        found: u32,
        /// The newest version this release knows.
        supported: u32,
    },
}

/// Why a [`transfer`](crate::transfer()) between two stores stopped.
///
/// ### Handling
/// [`TargetNotEmpty`](Self::TargetNotEmpty): nothing was written; transfer into an empty
/// store. [`Source`](Self::Source) and [`Target`](Self::Target): what was copied is
/// whole pages; run the transfer again with the same stores to carry on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// The target holds data that is not a beginning of the source's.
    #[error("the target store is not empty and not a partial copy of the source: {0}")]
    TargetNotEmpty(String),
    /// Reading the source failed.
    #[error("reading the source store failed")]
    Source(#[source] StoreError),
    /// Writing (or reading) the target failed.
    #[error("the target store failed")]
    Target(#[source] StoreError),
}

/// An opaque error from a [`PartnerDirectory`](crate::PartnerDirectory): the lookup
/// failed (as opposed to finding no partner, which is `Ok(None)`).
///
/// Its `Display` names the failing part only; the underlying error is its
/// [`source`](std::error::Error::source), as error reporters expect.
///
/// ```
/// use std::error::Error as _;
/// use dpor::DirectoryError;
///
/// let error = DirectoryError::new("directory timed out");
/// assert_eq!(error.to_string(), "the partner directory failed");
/// assert_eq!(error.source().map(|s| s.to_string()).as_deref(), Some("directory timed out"));
/// ```
#[derive(Debug)]
pub struct DirectoryError(BoxError);

/// An opaque error from a [`Notifier`](crate::Notifier): the notification was not
/// delivered and stays in the outbox.
///
/// ```
/// use std::error::Error as _;
/// use dpor::NotifyError;
///
/// let error = NotifyError::new("smtp: 421 try again later");
/// assert_eq!(error.to_string(), "the notifier failed");
/// assert!(error.source().is_some());
/// ```
#[derive(Debug)]
pub struct NotifyError(BoxError);

macro_rules! opaque_error {
    ($name:ident, $what:literal) => {
        impl $name {
            /// Wraps the underlying error (anything that converts into a boxed error,
            /// including a `&str` or `String` message).
            pub fn new(source: impl Into<BoxError>) -> Self {
                $name(source.into())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!("the ", $what, " failed"))
            }
        }

        impl StdError for $name {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(self.0.as_ref())
            }
        }
    };
}

opaque_error!(DirectoryError, "partner directory");
opaque_error!(NotifyError, "notifier");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscription::SubscriptionStatus;

    #[test]
    fn store_conflict_becomes_domain_conflict() {
        let subscription = SubscriptionId::new("s").unwrap();
        let error = Error::from(StoreError::Conflict {
            subscription,
            expected: 1,
            actual: 2,
        });
        assert!(matches!(
            error,
            Error::Conflict {
                expected: 1,
                actual: 2,
                ..
            }
        ));
    }

    /// One error of every variant; the match makes a new variant a compile error here
    /// until it is added.
    fn every_variant() -> Vec<Error> {
        let sub = SubscriptionId::new("sub-1").unwrap();
        let mpn = MpnId::parse("565380").unwrap();
        let all = vec![
            Error::InvalidMpnId(MpnIdError::WrongLength { length: 4 }),
            Error::Forbidden {
                reason: "no".into(),
            },
            Error::SubscriptionNotFound(sub.clone()),
            Error::PartnerNotFound(mpn),
            Error::PartnerNotEnrolled {
                mpn_id: mpn,
                program: Program::OnlineServicesSell,
            },
            Error::SubscriptionNotActive {
                subscription: sub.clone(),
                status: SubscriptionStatus::Suspended,
            },
            Error::SubscriptionCancelled(sub.clone()),
            Error::SubscriptionAlreadyExists(sub.clone()),
            Error::NoPartnerOfRecord(sub.clone()),
            Error::Conflict {
                subscription: sub,
                expected: 1,
                actual: 2,
            },
            Error::CheckExpired {
                checked_at: OffsetDateTime::UNIX_EPOCH,
            },
            Error::TimeOutOfRange {
                at: OffsetDateTime::UNIX_EPOCH,
            },
            Error::UnknownCursor(Cursor::new(3, 7)),
            Error::Store(StoreError::Backend("disk full".into())),
            Error::Directory(DirectoryError::new("timed out")),
        ];
        for error in &all {
            match error {
                Error::InvalidMpnId(_)
                | Error::Forbidden { .. }
                | Error::SubscriptionNotFound(_)
                | Error::PartnerNotFound(_)
                | Error::PartnerNotEnrolled { .. }
                | Error::SubscriptionNotActive { .. }
                | Error::SubscriptionCancelled(_)
                | Error::SubscriptionAlreadyExists(_)
                | Error::NoPartnerOfRecord(_)
                | Error::Conflict { .. }
                | Error::CheckExpired { .. }
                | Error::TimeOutOfRange { .. }
                | Error::UnknownCursor(_)
                | Error::Store(_)
                | Error::Directory(_) => {}
            }
        }
        all
    }

    fn variant_name(error: &Error) -> String {
        let debug = format!("{error:?}");
        debug
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn every_variant_has_its_own_code_and_the_readme_table_says_it() {
        let readme = include_str!("../README.md");
        let table: std::collections::BTreeMap<String, String> = readme
            .lines()
            .skip_while(|l| !l.starts_with("| `dpor::Error` | status |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .flat_map(|row| {
                let cells: Vec<&str> = row.split('|').map(str::trim).collect();
                let names: Vec<String> = cells[1]
                    .split(" / ")
                    .map(|n| n.trim_matches('`').to_owned())
                    .collect();
                let codes: Vec<String> = cells[3]
                    .split(" / ")
                    .map(|c| c.trim_matches('`').to_owned())
                    .collect();
                assert_eq!(names.len(), codes.len(), "{row}");
                names.into_iter().zip(codes).collect::<Vec<_>>()
            })
            .collect();
        let all = every_variant();
        let mut codes: Vec<&str> = all.iter().map(Error::code).collect();
        for error in &all {
            let name = variant_name(error);
            assert_eq!(
                table.get(&name).map(String::as_str),
                Some(error.code()),
                "{name}"
            );
        }
        assert_eq!(
            table.len(),
            all.len(),
            "the README table has rows for no variant"
        );
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len(), "two variants share a code");
    }

    #[test]
    fn walking_the_sources_never_repeats_a_message() {
        for error in every_variant() {
            let mut seen = vec![error.to_string()];
            let mut source = StdError::source(&error);
            while let Some(next) = source {
                let message = next.to_string();
                assert!(!seen.contains(&message), "{error:?} repeats {message:?}");
                seen.push(message);
                source = next.source();
            }
        }
    }

    #[test]
    fn errors_are_send_sync() {
        fn check<T: Send + Sync + StdError + 'static>() {}
        check::<Error>();
        check::<StoreError>();
        check::<DirectoryError>();
        check::<NotifyError>();
        check::<MpnIdError>();
        check::<crate::id::IdError>();
    }
}
