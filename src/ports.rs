//! The ports: the traits a host implements over its own infrastructure —
//! [`Repository`] (storage) and [`Outbox`] (its notifications; [`Store`] names the
//! pair), [`PartnerDirectory`] ("Check ID"), [`Notifier`] (email) and [`Clock`] — and
//! the [`Commit`] a repository applies.
//!
//! Every trait is object safe (the async ones through `#[async_trait]`, so
//! `Arc<dyn Store>` works; [`Clock::now`] is synchronous), `Send + Sync`, and
//! implemented for `Arc<T>`, `Box<T>` and `&T`. Each trait's docs
//! state its contract. `examples/custom_store.rs` is the worked example: a complete
//! `Repository` over a plain `Mutex<BTreeMap>` "table" with a version column, and a
//! logging `Notifier`. The [`memory`](crate::memory) implementations keep the same
//! contracts but are tuned for speed (sharded, one lock per commit of the service's),
//! so they are no model to read first. `dpor::testkit` (feature `testkit`) checks any
//! implementation; the example's store passes it.
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
//! INSERT INTO outbox ...;  -- status = 'pending', due at once
//! COMMIT;
//! ```
//!
//! A `Subscription` is `Serialize + Deserialize`: a store may keep it as one JSON
//! column next to the indexed ones.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::delivery::AfterFailure;

pub use crate::error::{DirectoryError, NotifyError, StoreError};
use crate::event::{AssociationEvent, Notification};
use crate::feed::{Change, Cursor};
use crate::id::{CustomerId, MpnId, NotificationId, SubscriptionId};
use crate::partner::Partner;
use crate::subscription::{PartnerOfRecord, Subscription};

/// One atomic change for [`Repository::commit`]: the compare-and-swap of a
/// subscription, its new events, and the notifications they cause.
///
/// # Examples
///
/// Committing a transition by hand (what [`PorService`](crate::PorService) does):
///
/// ```
/// use dpor::*;
/// use time::macros::datetime;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let repo = InMemoryRepository::new();
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, CloudService::Office365, "E3");
/// repo.insert(sub.clone()).await?;
///
/// let fabrikam = Partner::new(MpnId::parse("565380")?, "Fabrikam").enrolled_in(Program::OnlineServicesSell);
/// let Transition::Changed { next, events } =
///     sub.associate(&fabrikam, Program::OnlineServicesSell, datetime!(2026-01-05 10:00 UTC))?
/// else { unreachable!() };
/// let notifications = events.iter().filter_map(|e| Notification::for_event(e, sub.service(), None)).collect();
/// repo.commit(Commit { expected_version: sub.version(), next, events, notifications, create: None }).await?;
///
/// assert_eq!(repo.history(sub.id()).await?.len(), 1);
/// assert_eq!(repo.pending_notifications(10).await?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// The version the change was decided on; the commit fails unless it is stored.
    pub expected_version: u64,
    /// The subscription after the change (version `expected_version + 1`).
    pub next: Subscription,
    /// The events to append to its history, in sequence order.
    pub events: Vec<AssociationEvent>,
    /// The notifications to append to the outbox, in order.
    pub notifications: Vec<Notification>,
    /// A new subscription to insert in the same transaction (what a migration moves
    /// to): the commit fails with [`StoreError::AlreadyExists`], and writes nothing,
    /// when its id is taken. `None` for every other change.
    #[serde(default)]
    pub create: Option<Subscription>,
}

impl Commit {
    /// The commit of `current`'s change into `next` by `events`, with a notification per
    /// event as the service builds them (no contact email): what the crate's own tests
    /// and the testkit commit.
    #[cfg(any(test, feature = "testkit"))]
    pub(crate) fn of_change(
        current: &Subscription,
        next: Subscription,
        events: Vec<AssociationEvent>,
    ) -> Commit {
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

    /// Checks that the commit hangs together, as every [`Repository`] should before it
    /// writes: `next` is one version on, the events are `next`'s, numbered
    /// consecutively up to its last event sequence, no notification id repeats, and a
    /// subscription to create is new ([`check_new`]) under another id.
    /// The service only builds commits that pass; a store calls this to refuse
    /// anything else rather than store it.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidCommit`] saying what is wrong.
    pub fn check(&self) -> Result<(), StoreError> {
        let invalid = |reason: String| StoreError::InvalidCommit {
            subscription: self.next.id().clone(),
            reason,
        };
        if self.expected_version.checked_add(1) != Some(self.next.version()) {
            return Err(invalid(format!(
                "version {} does not follow {}",
                self.next.version(),
                self.expected_version
            )));
        }
        let last = self.next.last_event_sequence();
        let first = (last + 1).checked_sub(self.events.len() as u64);
        for (i, event) in self.events.iter().enumerate() {
            if &event.subscription != self.next.id() || &event.customer != self.next.customer() {
                return Err(invalid(format!(
                    "event {} belongs to another subscription",
                    event.sequence
                )));
            }
            if first.map(|f| f + i as u64) != Some(event.sequence) || event.sequence == 0 {
                return Err(invalid(format!(
                    "event sequence {} is out of order (the last is {last})",
                    event.sequence
                )));
            }
        }
        if let Some(created) = &self.create {
            if created.id() == self.next.id() {
                return Err(invalid(
                    "it would create the subscription it changes".to_owned(),
                ));
            }
            if let Some(reason) = not_new(created) {
                return Err(invalid(reason));
            }
        }
        for (i, notification) in self.notifications.iter().enumerate() {
            if &notification.subscription != self.next.id() {
                return Err(invalid(format!(
                    "notification {} belongs to another subscription",
                    notification.id
                )));
            }
            if self.notifications[..i]
                .iter()
                .any(|n| n.id == notification.id)
            {
                return Err(invalid(format!(
                    "notification {} is given twice",
                    notification.id
                )));
            }
        }
        Ok(())
    }
}

/// Where subscriptions, their histories and the notification outbox are kept.
///
/// See the [module docs](self) for how to implement it, and `examples/custom_store.rs`
/// for a complete implementation.
///
/// # Examples
///
/// Host code can take any repository, including a shared `Arc<dyn Repository>`:
///
/// ```
/// use std::sync::Arc;
/// use dpor::*;
///
/// /// Which subscriptions a partner currently holds.
/// async fn held_by(repo: &impl Repository, partner: &MpnId) -> Result<Vec<SubscriptionId>, StoreError> {
///     Ok(repo.list_by_partner(partner).await?.iter().map(|s| s.id().clone()).collect())
/// }
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let repo: Arc<dyn Repository> = Arc::new(InMemoryRepository::new());
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, CloudService::Azure, "Azure plan");
/// repo.insert(sub.clone()).await?;
///
/// assert_eq!(repo.get(sub.id()).await?, Some(sub));
/// assert!(held_by(&repo, &MpnId::parse("565380")?).await?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[async_trait]
pub trait Repository: Send + Sync {
    /// Stores a new subscription (with an empty history).
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidCommit`] when the subscription is not new ([`check_new`]:
    /// it has a version, events or a partner of record), checked first;
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
    /// The first that applies, in this order:
    /// 1. [`StoreError::InvalidCommit`] when [`Commit::check`] fails;
    /// 2. [`StoreError::NotFound`] when the subscription is not stored;
    /// 3. [`StoreError::Conflict`] (with the stored version) when the version differs;
    /// 4. [`StoreError::InvalidCommit`] when the commit's events do not follow the last
    ///    event stored for the subscription (a repeat, a gap, or a `next` whose last
    ///    event sequence was set back: a `next` not made from the stored subscription);
    /// 5. [`StoreError::AlreadyExists`] when the subscription to
    ///    [`create`](Commit::create) is taken;
    /// 6. [`StoreError::InvalidCommit`] when a notification would be written twice (a
    ///    notification id is unique in the repository, whichever subscription holds it).
    ///
    /// [`StoreError::Backend`] when the backend fails. On every error nothing changes.
    async fn commit(&self, commit: Commit) -> Result<(), StoreError>;

    /// [`commit`](Self::commit), then claims for sending right away those of the
    /// commit's notifications that are claimable (the first pending one of its
    /// subscription and recipient partner), until `now + lease`, as
    /// [`Outbox::claim`] with [`Claim::Only`] would; answers them oldest first.
    ///
    /// The service commits every change through this, so that a database store can do
    /// the change and the claim in one round trip (the built-in SQL stores do). The
    /// default commits and claims **nothing**; the service then claims through
    /// [`Outbox::claim`] itself, one round trip more. So a store needs to implement
    /// it only to save that round trip, and what it answers must be claimed exactly as
    /// [`Outbox::claim`] would have claimed it. A store that wraps another (to add
    /// metrics, faults, ...) should forward it, or it falls back to this default.
    ///
    /// # Errors
    ///
    /// As [`commit`](Self::commit): on every error nothing changes and nothing is
    /// claimed.
    async fn commit_and_claim(
        &self,
        commit: Commit,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let _ = (now, lease);
        self.commit(commit).await.map(|()| Vec::new())
    }

    /// The subscription's events ordered by sequence (empty for an unknown id).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the backend fails.
    async fn history(&self, id: &SubscriptionId) -> Result<Vec<AssociationEvent>, StoreError>;

    /// The change feed: the events of every subscription that come after `after` (from
    /// the first when `None`), in the feed's order ([`crate::feed`]), at most `limit` (and at most
    /// [`MAX_CHANGES`](crate::feed::MAX_CHANGES)), each with the [`Cursor`] to resume
    /// after it.
    ///
    /// The one rule: **never answer a change while a change before it may still
    /// commit.** Then a reader that resumes after the last cursor it was given sees
    /// every event exactly once, each subscription's in sequence order. A store that
    /// numbers events from a sequence must not simply answer what is committed: a
    /// transaction that took position 10 may commit after one that took 11, and a reader
    /// that read 11 would never see 10. The in-memory store numbers events under the
    /// lock it commits under, SQLite under its write lock; PostgreSQL withholds the
    /// events of transactions newer than the oldest one still running.
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownCursor`] when `after` lies past the last change stored
    /// ([`check_cursor`]); [`StoreError::Backend`] when the backend fails.
    async fn changes(
        &self,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError>;

    /// Every subscription, one page at a time: those whose id sorts after `after` (all
    /// when `None`), ordered by id **in byte order** (as `SubscriptionId` compares, a
    /// SQL collation `"C"`), at most `limit`. For copying a store
    /// ([`transfer`](crate::transfer())), which needs a store nobody writes to.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the backend fails.
    async fn page_subscriptions(
        &self,
        after: Option<&SubscriptionId>,
        limit: usize,
    ) -> Result<Vec<Subscription>, StoreError>;

    /// Stores subscriptions exactly as they are, each with its whole history, as one
    /// atomic batch: what [`transfer`](crate::transfer()) writes into a new store.
    /// Unlike [`commit`](Self::commit) this checks no version: the records come from
    /// another store, where they were committed.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidCommit`] when a history is not its subscription's (events of
    /// another subscription, or not numbered 1 to its last event sequence), for the
    /// first such in the batch; else [`StoreError::AlreadyExists`] for the first id in
    /// the batch that is taken, or given twice. Nothing is written then.
    /// [`StoreError::Backend`] when the backend fails.
    async fn import_subscriptions(
        &self,
        batch: Vec<(Subscription, Vec<AssociationEvent>)>,
    ) -> Result<(), StoreError>;
}

/// The outbox: the notifications that commits wrote, their delivery state, and the
/// claims of the dispatchers that send them. A store implements it beside
/// [`Repository`] (the built-in stores do): [`Repository::commit`] writes a commit's
/// notifications into it in the same transaction as the change.
///
/// The rules it keeps are stated once, in [`delivery`](crate::delivery): per
/// (subscription, recipient partner) order, claims with a lease, retries at their due
/// time, dead letters that no longer block. The times come from the service's
/// [`Clock`], passed in as `now`.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Claims notifications to send now, marking them claimed until
    /// `now.saturating_add(lease)`, and answers them oldest first. A notification is
    /// claimable when it is pending, due (`next_attempt_at <= now`), not claimed by a
    /// lease that runs past `now`, and no earlier notification for the same subscription
    /// and recipient partner is still pending (claimed, or waiting for a retry,
    /// included). With [`Claim::Due`], the oldest `limit` of them; with
    /// [`Claim::Only`], those of the given ids that are claimable, the oldest `limit`
    /// when there are more.
    ///
    /// Two dispatchers claiming at once never get the same notification. A stored
    /// notification that does not decode (a hand edit, or a kind only a newer release
    /// knows) is not answered, so that it holds back none of the others: the SQL stores
    /// trace it and leave it claimed until the lease runs out, for a release that reads
    /// it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the backend fails (nothing is claimed then).
    async fn claim(
        &self,
        which: Claim<'_>,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Marks notifications delivered (and releases their claims). Idempotent: unknown
    /// and already delivered ids are ignored. A delivered notification stays in the
    /// outbox, marked.
    ///
    /// A dead letter is marked delivered too: only a dispatcher that sent it calls
    /// this, one whose send outlived its lease while another's last attempt gave up
    /// on the email. Left a dead letter, it would be sent again when redriven.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the backend fails.
    async fn mark_delivered(&self, ids: &[NotificationId]) -> Result<(), StoreError>;

    /// Records a failed attempt to deliver `failure.id` and releases its claim: its
    /// attempt count, time and error text, and either its next attempt time or, for
    /// [`AfterFailure::DeadLetter`], its end as a dead letter. Ignored for a
    /// notification that is not pending (delivered meanwhile by another dispatcher),
    /// and for one no longer claimed under the failure's lease
    /// ([`Failure::claimed_until`], [`Failure::under`]: claimed since by another).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the backend fails.
    async fn record_failure(&self, failure: &Failure) -> Result<(), StoreError>;

    /// Up to `limit` pending notifications (not delivered, not dead letters), oldest
    /// first, whether due or not.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the backend fails.
    async fn pending_notifications(&self, limit: usize) -> Result<Vec<Notification>, StoreError>;

    /// The dead letters after position `after` (all when `None`), oldest first, at most
    /// `limit`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the backend fails.
    async fn dead_letters(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Makes dead letter `id` pending again, due at `now`, with its attempts counted
    /// from zero; answers whether there was such a dead letter.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the backend fails.
    async fn redrive(&self, id: &NotificationId, now: OffsetDateTime) -> Result<bool, StoreError>;

    /// The whole outbox, delivered notifications and dead letters included, one page at
    /// a time: the entries after position `after` (all when `None`), in outbox order,
    /// at most `limit`. For copying a store ([`transfer`](crate::transfer())) that
    /// nobody writes to: on a live store, a position handed out before a commit may
    /// become visible after a page has passed it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the backend fails.
    async fn page_outbox(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Appends entries to the outbox, after every entry there, in the order given and
    /// with their delivery state (not their claims), as one atomic batch; their
    /// positions are this store's own.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidCommit`] when a notification id is stored already (nothing
    /// is written then); [`StoreError::Backend`] when the backend fails.
    async fn import_outbox(&self, entries: Vec<OutboxEntry>) -> Result<(), StoreError>;
}

/// A whole store: a [`Repository`] and its [`Outbox`], as one trait so that a store can
/// be used as `dyn Store` (implemented for every type that implements both).
pub trait Store: Repository + Outbox {}

impl<T: Repository + Outbox + ?Sized> Store for T {}

/// Which notifications [`Outbox::claim`] takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim<'a> {
    /// The oldest claimable ones (what a dispatcher sends).
    Due,
    /// Those of these that are claimable (what the service sends right after a commit).
    Only(&'a [NotificationId]),
}

impl Claim<'_> {
    /// Whether this claim asks for notification `id` (claimable or not): any for
    /// [`Claim::Due`], the listed ones for [`Claim::Only`].
    ///
    /// ```
    /// use dpor::{Claim, NotificationId};
    ///
    /// let id = NotificationId::new("sub-1#1:565380")?;
    /// assert!(Claim::Due.asks_for(&id));
    /// assert!(!Claim::Only(&[]).asks_for(&id));
    /// # Ok::<(), dpor::IdError>(())
    /// ```
    pub fn asks_for(&self, id: &NotificationId) -> bool {
        match self {
            Claim::Due => true,
            Claim::Only(ids) => ids.contains(id),
        }
    }
}

/// Where a notification of the outbox stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeliveryStatus {
    /// Not delivered yet: due at its next attempt time.
    Pending,
    /// Delivered.
    Delivered,
    /// Given up after too many attempts or too long: a dead letter.
    Dead,
}

/// One notification of an outbox with its delivery state, as [`Outbox::page_outbox`],
/// [`Outbox::claim`] and [`Outbox::dead_letters`] read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Its place in this store's outbox (commit order); the next page starts after it.
    pub position: u64,
    /// The notification.
    pub notification: Notification,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// How many attempts failed.
    pub attempts: u32,
    /// The last failure, short (see [`delivery::failure_text`](crate::delivery::failure_text)).
    pub last_error: Option<String>,
    /// When the last attempt failed.
    pub last_attempt_at: Option<OffsetDateTime>,
    /// When it is due (for a pending notification): its event's time at first, then the
    /// retry time of each failure.
    pub next_attempt_at: OffsetDateTime,
}

impl OutboxEntry {
    /// A notification as a commit writes it: pending, due at once, no attempt yet.
    pub fn new(position: u64, notification: Notification) -> Self {
        let next_attempt_at = notification.at;
        OutboxEntry {
            position,
            notification,
            status: DeliveryStatus::Pending,
            attempts: 0,
            last_error: None,
            last_attempt_at: None,
            next_attempt_at,
        }
    }
}

/// A failed attempt, for [`Outbox::record_failure`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The notification.
    pub id: NotificationId,
    /// Its failed attempts, this one included.
    pub attempts: u32,
    /// When this attempt failed.
    pub at: OffsetDateTime,
    /// Why, short.
    pub error: String,
    /// What follows ([`DeliveryPolicy::after_failure`](crate::delivery::DeliveryPolicy::after_failure)).
    pub next: AfterFailure,
    /// The end of the lease the attempt was made under (its claim's
    /// `now.saturating_add(lease)`), as the service sets it: the failure is then
    /// recorded only while the notification is still claimed until exactly then
    /// ([`Failure::under`]). A dispatcher whose lease ran out during a slow send, and
    /// whose notification another dispatcher has claimed since, changes nothing: it
    /// neither releases the other's claim (which would let a third send it) nor
    /// overwrites its attempts, nor makes a dead letter of what the other is sending.
    /// `None` records it whatever the claim. A store that keeps times less precisely
    /// than this compares both at its own precision (the SQL stores: microseconds,
    /// truncated), so that the lease it stored is still the one named.
    pub claimed_until: Option<OffsetDateTime>,
}

impl Failure {
    /// Whether a store records this failure for a notification claimed until
    /// `claimed_until` (`None`: not claimed): always when the failure names no lease,
    /// otherwise only under that very lease.
    ///
    /// ```
    /// use dpor::{AfterFailure, Failure, NotificationId};
    /// use time::macros::datetime;
    ///
    /// let lease_end = datetime!(2026-01-05 10:01 UTC);
    /// let failure = Failure {
    ///     id: NotificationId::new("sub-1#1")?,
    ///     attempts: 1,
    ///     at: datetime!(2026-01-05 10:00:30 UTC),
    ///     error: "421 try again later".into(),
    ///     next: AfterFailure::RetryAt(datetime!(2026-01-05 10:05 UTC)),
    ///     claimed_until: Some(lease_end),
    /// };
    /// assert!(failure.under(Some(lease_end)));
    /// // Claimed again by another dispatcher once the lease ran out, or released.
    /// assert!(!failure.under(Some(datetime!(2026-01-05 10:02 UTC))));
    /// assert!(!failure.under(None));
    /// # Ok::<(), dpor::IdError>(())
    /// ```
    pub fn under(&self, claimed_until: Option<OffsetDateTime>) -> bool {
        self.claimed_until
            .is_none_or(|lease| claimed_until == Some(lease))
    }
}

/// Checks that `after`, a reader's change feed cursor, lies no further than `last`,
/// the cursor of the store's last change (none when it holds none): what
/// [`Repository::changes`] answers [`StoreError::UnknownCursor`] to. A cursor past the
/// end was answered by another store, or by one since emptied, and read as if the feed
/// were empty it would hide every change up to it. `Cursor::new(0, 0)`, before any
/// change, is never past the end.
///
/// ```
/// use dpor::feed::Cursor;
/// use dpor::ports::check_cursor;
///
/// assert!(check_cursor(&Cursor::new(0, 7), Some(Cursor::new(0, 9))).is_ok());
/// assert!(check_cursor(&Cursor::new(0, 0), None).is_ok());
/// assert!(check_cursor(&Cursor::new(0, 10), Some(Cursor::new(0, 9))).is_err());
/// assert!(check_cursor(&Cursor::new(5, 1), Some(Cursor::new(0, 9))).is_err());
/// ```
///
/// # Errors
///
/// [`StoreError::UnknownCursor`] with `after`.
pub fn check_cursor(after: &Cursor, last: Option<Cursor>) -> Result<(), StoreError> {
    if *after > last.unwrap_or(Cursor::new(0, 0)) {
        return Err(StoreError::UnknownCursor(*after));
    }
    Ok(())
}

/// Checks that `subscription` is new, as [`Repository::insert`] and a commit's
/// [`create`](Commit::create) take it: at version 0, with no event and no partner of
/// record, as [`Subscription::new`] makes it. A subscription with a past moves with its
/// history ([`Repository::import_subscriptions`]).
///
/// ```
/// use dpor::ports::check_new;
/// use dpor::*;
///
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, CloudService::Azure, "Azure plan");
/// assert!(check_new(&sub).is_ok());
///
/// let fabrikam = Partner::new(MpnId::parse("565380")?, "Fabrikam").enrolled_in(Program::OnlineServicesSell);
/// let at = time::macros::datetime!(2026-01-05 10:00 UTC);
/// let Transition::Changed { next, .. } = sub.associate(&fabrikam, Program::OnlineServicesSell, at)? else {
///     unreachable!()
/// };
/// assert!(matches!(check_new(&next), Err(StoreError::InvalidCommit { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`StoreError::InvalidCommit`] saying what is wrong.
pub fn check_new(subscription: &Subscription) -> Result<(), StoreError> {
    match not_new(subscription) {
        Some(reason) => Err(StoreError::InvalidCommit {
            subscription: subscription.id().clone(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Why `subscription` is not new ([`check_new`]), if it is not.
fn not_new(subscription: &Subscription) -> Option<String> {
    let (version, last) = (subscription.version(), subscription.last_event_sequence());
    let partner = subscription
        .partner_of_record()
        .map(PartnerOfRecord::mpn_id);
    if version == 0 && last == 0 && partner.is_none() {
        return None;
    }
    let mut reason = format!(
        "subscription {} is not new: version {version}, last event {last}",
        subscription.id()
    );
    if let Some(partner) = partner {
        reason.push_str(&format!(", partner of record {partner}"));
    }
    reason.push_str(" (a subscription with a past is imported with its history)");
    Some(reason)
}

/// Checks that `history` is the whole history of `subscription`: its events, numbered
/// 1 to its last event sequence. What a store checks in
/// [`Repository::import_subscriptions`].
///
/// # Errors
///
/// [`StoreError::InvalidCommit`] saying what is wrong.
pub fn check_history(
    subscription: &Subscription,
    history: &[AssociationEvent],
) -> Result<(), StoreError> {
    let invalid = |reason: String| StoreError::InvalidCommit {
        subscription: subscription.id().clone(),
        reason,
    };
    if history.len() as u64 != subscription.last_event_sequence() {
        return Err(invalid(format!(
            "{} events given, the subscription's last is {}",
            history.len(),
            subscription.last_event_sequence()
        )));
    }
    for (expected, event) in (1..).zip(history) {
        if &event.subscription != subscription.id() || &event.customer != subscription.customer() {
            return Err(invalid(format!(
                "event {} belongs to another subscription",
                event.sequence
            )));
        }
        if event.sequence != expected {
            return Err(invalid(format!("event {} is out of order", event.sequence)));
        }
    }
    Ok(())
}

/// The partner directory behind "Check ID": who a partner is, and what it is enrolled in.
///
/// # Examples
///
/// Implementing it (with the [`async_trait`](https://docs.rs/async-trait) attribute):
///
/// ```
/// use dpor::async_trait;
/// use dpor::*;
///
/// /// A directory that lists exactly one partner.
/// struct OnePartner(Partner);
///
/// #[async_trait]
/// impl PartnerDirectory for OnePartner {
///     async fn lookup(&self, mpn_id: MpnId) -> Result<Option<Partner>, DirectoryError> {
///         // A real directory maps its client's failures: `.map_err(DirectoryError::new)?`.
///         Ok((self.0.mpn_id() == mpn_id).then(|| self.0.clone()))
///     }
/// }
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let fabrikam = Partner::new(MpnId::parse("565380")?, "Fabrikam").enrolled_in(Program::OnlineServicesSell);
/// let directory = OnePartner(fabrikam.clone());
/// assert_eq!(directory.lookup(fabrikam.mpn_id()).await?, Some(fabrikam));
/// assert_eq!(directory.lookup(MpnId::parse("99999")?).await?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// Return [`NotifyError`] when the email did not go out: it is tried again after a
/// backoff, and after the [`DeliveryPolicy`](crate::DeliveryPolicy)'s last attempt it
/// becomes a dead letter ([`PorService::dead_letters`](crate::PorService::dead_letters)).
/// Meanwhile it holds back only the later emails to the same partner for the same
/// subscription. Its message is recorded with the attempt: put no secrets in it.
///
/// # Examples
///
/// A notifier that writes a log line instead of sending email:
///
/// ```
/// use std::sync::Mutex;
/// use dpor::async_trait;
/// use dpor::*;
/// use time::macros::datetime;
///
/// #[derive(Default)]
/// struct LogNotifier(Mutex<Vec<String>>);
///
/// #[async_trait]
/// impl Notifier for LogNotifier {
///     async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
///         let line = format!("{} {:?} partner {} ({})", n.id, n.kind, n.partner, n.service);
///         self.0.lock().map_err(|_| NotifyError::new("log lock poisoned"))?.push(line);
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, CloudService::Office365, "E3");
/// let fabrikam = Partner::new(MpnId::parse("565380")?, "Fabrikam").enrolled_in(Program::OnlineServicesSell);
/// let Transition::Changed { events, .. } =
///     sub.associate(&fabrikam, Program::OnlineServicesSell, datetime!(2026-01-05 10:00 UTC))?
/// else { unreachable!() };
/// let notification = Notification::for_event(&events[0], sub.service(), None).ok_or("nobody to tell")?;
///
/// let log = LogNotifier::default();
/// log.notify(&notification).await?;
/// let lines = log.0.into_inner()?;
/// lines.iter().for_each(|line| println!("{line}"));
/// assert_eq!(lines, ["sub-1#1 Added partner 565380 (Office 365)"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// # Examples
///
/// A clock pinned to one instant, for example to replay a batch as of its cut-off:
///
/// ```
/// use dpor::*;
/// use time::{OffsetDateTime, macros::datetime};
///
/// struct AsOf(OffsetDateTime);
///
/// impl Clock for AsOf {
///     fn now(&self) -> OffsetDateTime {
///         self.0
///     }
/// }
///
/// let clock = AsOf(datetime!(2026-01-31 23:59 UTC));
/// assert_eq!(clock.now(), datetime!(2026-01-31 23:59 UTC));
/// let service = PorService::new(InMemoryRepository::new(), InMemoryDirectory::new(), RecordingNotifier::new())
///     .with_clock(clock);
/// # drop(service);
/// ```
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> OffsetDateTime;
}

/// The real clock (UTC).
///
/// # Examples
///
/// ```
/// use dpor::*;
///
/// // `PorService::new` reads the time from the system clock unless told otherwise.
/// let service: PorService<_, _, _, SystemClock> =
///     PorService::new(InMemoryRepository::new(), InMemoryDirectory::new(), RecordingNotifier::new());
///
/// let clock: &dyn Clock = &SystemClock;
/// println!("it is now {}", clock.now());
/// # drop(service);
/// ```
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
    fn commit_and_claim(&self, commit: Commit, now: OffsetDateTime, lease: Duration) -> Result<Vec<OutboxEntry>, StoreError>;
    fn history(&self, id: &SubscriptionId) -> Result<Vec<AssociationEvent>, StoreError>;
    fn changes(&self, after: Option<&Cursor>, limit: usize) -> Result<Vec<Change>, StoreError>;
    fn page_subscriptions(&self, after: Option<&SubscriptionId>, limit: usize) -> Result<Vec<Subscription>, StoreError>;
    fn import_subscriptions(&self, batch: Vec<(Subscription, Vec<AssociationEvent>)>) -> Result<(), StoreError>;
});

forward!(async Outbox {
    fn claim(&self, which: Claim<'_>, now: OffsetDateTime, lease: Duration, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;
    fn mark_delivered(&self, ids: &[NotificationId]) -> Result<(), StoreError>;
    fn record_failure(&self, failure: &Failure) -> Result<(), StoreError>;
    fn pending_notifications(&self, limit: usize) -> Result<Vec<Notification>, StoreError>;
    fn dead_letters(&self, after: Option<u64>, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;
    fn redrive(&self, id: &NotificationId, now: OffsetDateTime) -> Result<bool, StoreError>;
    fn page_outbox(&self, after: Option<u64>, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;
    fn import_outbox(&self, entries: Vec<OutboxEntry>) -> Result<(), StoreError>;
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
