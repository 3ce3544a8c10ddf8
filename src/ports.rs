//! The ports: the traits a host implements over its own infrastructure —
//! [`Repository`] (storage), [`PartnerDirectory`] ("Check ID"), [`Notifier`] (email)
//! and [`Clock`] — and the [`Commit`] a repository applies.
//!
//! Every trait is object safe (`#[async_trait]`, so `Arc<dyn Repository>` works),
//! `Send + Sync`, and implemented for `Arc<T>`, `Box<T>` and `&T`. The
//! [`memory`](crate::memory) module holds the in-memory implementations; they are the
//! worked example of what each contract asks.
//!
//! # Implementing `Repository`
//!
//! The one hard part is [`Repository::commit`]: a **compare-and-swap**. It must succeed
//! only if the stored version equals [`Commit::expected_version`], and then, in one
//! atomic step, store [`Commit::next`], append [`Commit::events`] to the history and
//! [`Commit::notifications`] to the outbox. Otherwise it returns
//! [`StoreError::Conflict`] with the version it found, and changes nothing. Over SQL:
//!
//! ```sql
//! BEGIN;
//! UPDATE subscriptions SET ..., version = :expected + 1 WHERE id = :id AND version = :expected;
//! -- no row updated: ROLLBACK and report Conflict with the stored version
//! INSERT INTO events ...;   -- primary key (subscription, sequence)
//! INSERT INTO outbox ...;  -- delivered = false
//! COMMIT;
//! ```
//!
//! A `Subscription` is `Serialize + Deserialize`: a store may keep it as one JSON
//! column next to the indexed ones.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

pub use crate::error::{DirectoryError, NotifyError, StoreError};
use crate::event::{AssociationEvent, Notification};
use crate::id::{CustomerId, MpnId, NotificationId, SubscriptionId};
use crate::partner::Partner;
use crate::subscription::Subscription;

/// One atomic change for [`Repository::commit`]: the compare-and-swap of a
/// subscription, its new events, and the notifications they cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    /// The version the change was decided on; the commit fails unless it is stored.
    pub expected_version: u64,
    /// The subscription after the change (version `expected_version + 1`).
    pub next: Subscription,
    /// The events to append to its history, in sequence order.
    pub events: Vec<AssociationEvent>,
    /// The notifications to append to the outbox, in order.
    pub notifications: Vec<Notification>,
}

/// Where subscriptions, their histories and the notification outbox are kept.
///
/// See the [module docs](self) for how to implement it; [`InMemoryRepository`](crate::InMemoryRepository)
/// is the reference implementation.
#[async_trait]
pub trait Repository: Send + Sync {
    /// Stores a new subscription (with an empty history).
    ///
    /// # Errors
    ///
    /// [`StoreError::AlreadyExists`] when a subscription with the same id is stored;
    /// [`StoreError::Backend`] when the backend fails.
    async fn insert(&self, subscription: Subscription) -> Result<(), StoreError>;

    /// The subscription with this id, if stored.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the backend fails.
    async fn get(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError>;

    /// The customer's subscriptions, ordered by id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the backend fails.
    async fn list_by_customer(
        &self,
        customer: &CustomerId,
    ) -> Result<Vec<Subscription>, StoreError>;

    /// The subscriptions whose **current** partner of record is `partner`, ordered by id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the backend fails.
    async fn list_by_partner(&self, partner: &MpnId) -> Result<Vec<Subscription>, StoreError>;

    /// Applies `commit` atomically if the stored version is `commit.expected_version`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] (with the stored version) when the version differs,
    /// [`StoreError::NotFound`] when the subscription is not stored,
    /// [`StoreError::Backend`] when the backend fails. On every error nothing changes.
    async fn commit(&self, commit: Commit) -> Result<(), StoreError>;

    /// The subscription's events ordered by sequence (empty for an unknown id).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the backend fails.
    async fn history(&self, id: &SubscriptionId) -> Result<Vec<AssociationEvent>, StoreError>;

    /// Up to `limit` undelivered notifications, oldest first.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the backend fails.
    async fn pending_notifications(&self, limit: usize) -> Result<Vec<Notification>, StoreError>;

    /// Marks notifications delivered, so that they are no longer pending. Idempotent:
    /// unknown and already delivered ids are ignored.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the backend fails.
    async fn mark_delivered(&self, ids: &[NotificationId]) -> Result<(), StoreError>;
}

/// The partner directory behind "Check ID": who a partner is, and what it is enrolled in.
#[async_trait]
pub trait PartnerDirectory: Send + Sync {
    /// The partner with this MPN ID, or `None` when the directory has none.
    ///
    /// # Errors
    ///
    /// [`DirectoryError`] when the lookup itself fails (not when nothing is found).
    async fn lookup(&self, mpn_id: MpnId) -> Result<Option<Partner>, DirectoryError>;
}

/// Delivers notifications (in the real world: the "added" and "removed" emails).
///
/// Delivery is at least once: a notification whose delivery failed, or whose success
/// could not be recorded, is delivered again later with the same
/// [`Notification::id`], so an implementation may drop ids it has seen.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers one notification.
    ///
    /// # Errors
    ///
    /// [`NotifyError`] when it was not delivered; it stays in the outbox.
    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError>;
}

/// Where the service gets the time: the only source of "now" in the crate.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> OffsetDateTime;
}

/// The real clock (UTC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Implements a port for `Arc<T>`, `Box<T>` and `&T` by forwarding every method.
macro_rules! forward {
    (async $trait:ident { $(fn $method:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)* }) => {
        forward!(@each async $trait [Arc<T>] { $(fn $method(&self $(, $arg: $ty)*) -> $ret;)* });
        forward!(@each async $trait [Box<T>] { $(fn $method(&self $(, $arg: $ty)*) -> $ret;)* });
        forward!(@each async $trait [&T] { $(fn $method(&self $(, $arg: $ty)*) -> $ret;)* });
    };
    (@each async $trait:ident [$($ptr:tt)*] { $(fn $method:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)* }) => {
        #[async_trait]
        impl<T: ?Sized + $trait> $trait for $($ptr)* {
            $(async fn $method(&self $(, $arg: $ty)*) -> $ret {
                (**self).$method($($arg),*).await
            })*
        }
    };
}

forward!(async Repository {
    fn insert(&self, subscription: Subscription) -> Result<(), StoreError>;
    fn get(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError>;
    fn list_by_customer(&self, customer: &CustomerId) -> Result<Vec<Subscription>, StoreError>;
    fn list_by_partner(&self, partner: &MpnId) -> Result<Vec<Subscription>, StoreError>;
    fn commit(&self, commit: Commit) -> Result<(), StoreError>;
    fn history(&self, id: &SubscriptionId) -> Result<Vec<AssociationEvent>, StoreError>;
    fn pending_notifications(&self, limit: usize) -> Result<Vec<Notification>, StoreError>;
    fn mark_delivered(&self, ids: &[NotificationId]) -> Result<(), StoreError>;
});

forward!(async PartnerDirectory {
    fn lookup(&self, mpn_id: MpnId) -> Result<Option<Partner>, DirectoryError>;
});

forward!(async Notifier {
    fn notify(&self, notification: &Notification) -> Result<(), NotifyError>;
});

impl<T: ?Sized + Clock> Clock for Arc<T> {
    fn now(&self) -> OffsetDateTime {
        (**self).now()
    }
}

impl<T: ?Sized + Clock> Clock for Box<T> {
    fn now(&self) -> OffsetDateTime {
        (**self).now()
    }
}

impl<T: ?Sized + Clock> Clock for &T {
    fn now(&self) -> OffsetDateTime {
        (**self).now()
    }
}
