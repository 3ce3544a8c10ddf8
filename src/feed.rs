//! The change feed: every [`AssociationEvent`] of every subscription, each with a
//! [`Cursor`] that a reader stores to resume after it.
//!
//! **The order**: each subscription's events in sequence order, and across
//! subscriptions the order the store committed them in: exactly so in memory and on
//! SQLite; on PostgreSQL by writing transaction (the order transactions started
//! writing), which is commit order for the transactions that touch one subscription.
//!
//! Read it with [`PorService::changes`](crate::PorService::changes) (the billing system
//! only), or from a store with [`Repository::changes`](crate::Repository::changes).
//!
//! **No event is skipped, none is read twice.** A reader that passes the cursor of the
//! last change it processed gets every later change exactly once, even while writers
//! commit concurrently: a store answers a change only once every change before it in
//! the feed is committed (see each store's `changes`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::event::AssociationEvent;

/// A position in the change feed: where a reader resumes.
///
/// Opaque to readers, who store it (its JSON is a string, e.g. `"0.42"`) and hand it
/// back. A store orders changes by `(epoch, position)`, both its own: PostgreSQL uses
/// the writing transaction's id as `epoch` and the row's number as `position`; SQLite
/// and the in-memory store use 0 and the commit order. A cursor belongs to the store
/// that answered it: after [`transfer`](crate::transfer()), or a PostgreSQL restore,
/// readers start again. A store refuses a cursor past its last change
/// ([`StoreError::UnknownCursor`](crate::StoreError::UnknownCursor), which the service
/// answers as [`Error::UnknownCursor`](crate::Error::UnknownCursor)), so that a reader
/// that was not told is: read as "nothing yet", it would hide every change up to it. A
/// cursor that happens to fall inside the new store's feed cannot be told apart.
///
/// ```
/// use dpor::feed::Cursor;
///
/// let cursor = Cursor::new(7, 42);
/// let saved = serde_json::to_string(&cursor)?;
/// assert_eq!(saved, r#""7.42""#);
/// assert_eq!(serde_json::from_str::<Cursor>(&saved)?, cursor);
/// assert!(Cursor::new(7, 42) < Cursor::new(8, 1));
/// assert!("7.x".parse::<Cursor>().is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    epoch: u64,
    position: u64,
}

impl Cursor {
    /// The cursor at `(epoch, position)`: for stores implementing
    /// [`Repository::changes`](crate::Repository::changes).
    pub fn new(epoch: u64, position: u64) -> Cursor {
        Cursor { epoch, position }
    }

    /// The store's epoch (0 for stores that need none).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The store's position within the epoch.
    pub fn position(&self) -> u64 {
        self.position
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.epoch, self.position)
    }
}

/// A string that is not a [`Cursor`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a change feed cursor: {text:?}")]
pub struct CursorError {
    /// What was given (at most 64 characters of it).
    pub text: String,
}

impl FromStr for Cursor {
    type Err = CursorError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let number = |part: &str| {
            (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<u64>().ok())
                .flatten()
        };
        text.split_once('.')
            .and_then(|(epoch, position)| Some(Cursor::new(number(epoch)?, number(position)?)))
            .ok_or_else(|| CursorError {
                text: text.chars().take(64).collect(),
            })
    }
}

impl Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One change of the feed: an event, and the cursor to resume after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Where to resume after this change.
    pub cursor: Cursor,
    /// What happened.
    pub event: AssociationEvent,
}

/// The most changes one read answers; a larger `limit` is read as this.
pub const MAX_CHANGES: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_strictly() {
        assert_eq!("0.0".parse(), Ok(Cursor::new(0, 0)));
        assert_eq!(
            format!("{}.{}", u64::MAX, u64::MAX).parse(),
            Ok(Cursor::new(u64::MAX, u64::MAX))
        );
        for bad in [
            "",
            ".",
            "1.",
            ".1",
            "1",
            "1.2.3",
            "-1.2",
            "+1.2",
            " 1.2",
            "1.2 ",
            "18446744073709551616.0",
            "a.b",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<Cursor>("12").is_err());
    }
}
