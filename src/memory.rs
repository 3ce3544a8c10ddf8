//! The embedded defaults: [`InMemoryRepository`], [`InMemoryDirectory`],
//! [`RecordingNotifier`] and [`ManualClock`].
//!
//! They make examples, doc tests and a host's own tests work with no set-up, and they
//! keep the same contracts as a real backend: the in-memory repository raises the same
//! [`StoreError::Conflict`] a database would. Each type is `Clone`, and clones share
//! their state.
//!
//! No lock is ever held across an `.await`. A poisoned lock (a panic in another
//! thread while it held one) is taken over as it is: no method leaves the state half
//! changed before a point where it could panic.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::collections::hash_map::Entry as Pair;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::delivery::AfterFailure;
use crate::error::{DirectoryError, NotifyError, StoreError};
use crate::event::{AssociationEvent, AssociationEventKind, Cause, Notification};
use crate::feed::{Change, Cursor, MAX_CHANGES};
use crate::id::{CustomerId, MpnId, NotificationId, SubscriptionId};
use crate::partner::Partner;
use crate::ports::{
    Claim, Clock, Commit, DeliveryStatus, Failure, Notifier, Outbox, OutboxEntry, PartnerDirectory,
    Repository, check_cursor, check_history, check_new,
};
use crate::subscription::Subscription;

/// Locks `mutex`, taking over a poisoned lock as it is (see the module docs).
fn lock_even_if_poisoned<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How many independently locked shards hold the subscriptions.
const SHARDS: usize = 64;

/// A subscription and its history, as one shard keeps them.
///
/// A shard holds `Box<Entry>` in a `HashSet` found by the subscription id (through
/// `Borrow`), so that a slot of the table, spare capacity included, costs one pointer:
/// the id is not stored twice and a whole entry is never left unused.
#[derive(Debug)]
struct Entry {
    subscription: Subscription,
    history: Vec<StoredEvent>,
    /// Its number in the change feed's [`Feed::ids`].
    number: u64,
}

/// The event sequence that notification `id` names on `subscription`: `Some(n)` when
/// `id` is exactly `NotificationId::for_event(subscription, n)`
/// ([`NotificationId::event`]).
fn sequence_on(subscription: &SubscriptionId, id: &NotificationId) -> Option<u64> {
    let (home, sequence) = id.event()?;
    (home == subscription.as_str()).then_some(sequence)
}

/// The change feed in memory: each event as (its subscription's number, its sequence),
/// in commit order (a change's position is its index + 1), and the subscription each
/// number names. 16 bytes an event and 24 a subscription, in chunks that never double
/// or move (the memory targets of the README's Performance table).
#[derive(Debug, Default)]
struct Feed {
    ids: Chunked<SubscriptionId>,
    log: Chunked<(u64, u64)>,
}

impl Feed {
    /// Appends the events numbered `sequences` of subscription `number`.
    fn append(&mut self, number: u64, sequences: impl Iterator<Item = u64>) {
        for sequence in sequences {
            self.log.push((number, sequence));
        }
    }
}

/// Values in fixed-size chunks: growing allocates one more chunk, never copies, and
/// leaves at most one chunk partly empty.
#[derive(Debug)]
struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

/// Values in one [`Chunked`] chunk.
const CHUNK: usize = 256;

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    /// Appends `value`; answers its index.
    fn push(&mut self, value: T) -> usize {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK => chunk.push(value),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(value);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
        self.len - 1
    }

    fn get(&self, index: usize) -> Option<&T> {
        self.chunks.get(index / CHUNK)?.get(index % CHUNK)
    }
}

impl Entry {
    /// A stored event as the ports answer it, its cause from its shard's `causes`.
    fn event_of(&self, e: &StoredEvent, causes: &Causes) -> AssociationEvent {
        AssociationEvent {
            subscription: self.subscription.id().clone(),
            customer: self.subscription.customer().clone(),
            sequence: e.sequence,
            at: e.at,
            kind: e.kind.clone(),
            caused_by: causes.get(e.caused_by),
        }
    }

    /// The event numbered `sequence`.
    fn event(&self, sequence: u64, causes: &Causes) -> Option<AssociationEvent> {
        let index = self.event_index(sequence)?;
        Some(self.event_of(&self.history[index], causes))
    }

    /// Where event `sequence` is in the history (ordered by sequence). The newest are
    /// looked at first: a commit's notifications name the events it just appended.
    fn event_index(&self, sequence: u64) -> Option<usize> {
        if self.history.last().is_none_or(|e| e.sequence < sequence) {
            return None;
        }
        let newest = self.history.len().saturating_sub(4);
        let index = match self.history[newest..]
            .iter()
            .position(|e| e.sequence == sequence)
        {
            Some(i) => newest + i,
            None => self.history.partition_point(|e| e.sequence < sequence),
        };
        self.history
            .get(index)
            .filter(|e| e.sequence == sequence)
            .map(|_| index)
    }

    /// Whether the outbox holds the notification of its event `sequence`.
    fn notified(&self, sequence: u64) -> bool {
        self.event_index(sequence)
            .is_some_and(|index| self.history[index].notified)
    }
}

impl Hash for Entry {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.subscription.id().hash(state);
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.subscription.id() == other.subscription.id()
    }
}

impl Eq for Entry {}

impl Borrow<SubscriptionId> for Box<Entry> {
    fn borrow(&self) -> &SubscriptionId {
        self.subscription.id()
    }
}

/// A subscription id hashes and compares as its text.
impl Borrow<str> for Box<Entry> {
    fn borrow(&self) -> &str {
        self.subscription.id().as_str()
    }
}

/// An event without the subscription and customer ids, which its entry already holds.
#[derive(Debug)]
struct StoredEvent {
    sequence: u64,
    at: OffsetDateTime,
    kind: AssociationEventKind,
    /// Its cause's number in its shard's [`Causes`].
    caused_by: u32,
    /// Whether the notification named after it is stored, with its subscription (see
    /// [`Shard::holds`]). In room the struct's alignment left unused: it costs no
    /// memory.
    notified: bool,
}

/// One independently locked part of the store: its subscriptions, and the outbox of
/// the notifications their commits wrote, so that a commit of the service's takes one
/// lock only. A migration's new subscription, and a notification a host named after a
/// subscription in another shard, may take one more each.
#[derive(Debug, Default)]
struct Shard {
    entries: HashSet<Box<Entry>>,
    /// Pending notifications by their global position (commit order).
    ///
    /// Items are boxed: an [`Item`] is 240 bytes, and a B-tree moves its values when it
    /// inserts, splits and settles (pending to settled). Unboxed, those moves were the
    /// largest single cost of a change in the host workload (issue 15's third profile).
    pending: BTreeMap<u64, Box<Item>>,
    /// Delivered notifications and dead letters, kept (as a database keeps its marked
    /// rows) so that the whole outbox can be copied.
    settled: BTreeMap<u64, Box<Item>>,
    /// The position of each notification a later call may change: the pending ones and
    /// the dead letters (a redrive makes them pending again). A delivered one leaves
    /// it. Not every notification ever written: a commit's insert into a table that only
    /// grows, at a random place, was a sixth of a change in the host workload (issue
    /// 15's sixth round).
    live: HashMap<NotificationId, u64>,
    /// The [`Shard::pending`] notifications of each (subscription, partner) pair: how
    /// many, and the oldest; a pair that has none is not listed. Whether a notification
    /// is the oldest pending one of its pair, which a claim must know, is then answered
    /// without reading the others: a commit's claim and a claim of given ids cost what
    /// they claim, not what is pending. Before issue 15's eighth round each read every
    /// pending notification of its shard, so that with 10,000 emails waiting for a
    /// refusing mailbox a check + submit took 3.5–4x as long (`cargo bench --bench
    /// service -- backlog`). A pair's notifications are all stored in its
    /// subscription's shard ([`Commit::check`]).
    pairs: HashMap<(SubscriptionId, MpnId), PairPending>,
    /// The notifications whose home is this shard (see [`InMemoryRepository::home`])
    /// and that no [`StoredEvent::notified`] stands for, each with the index of the
    /// shard that stores it (see [`Shard::holds`]).
    others: HashMap<NotificationId, usize>,
    /// Who caused this shard's stored events.
    causes: Causes,
}

impl Shard {
    /// Adds `item` to the pending notifications (its position is not pending: positions
    /// are never reused, and a redriven one was settled); answers it, and whether it is
    /// the oldest pending one of its pair.
    fn add_pending(&mut self, item: Box<Item>) -> (&mut Item, bool) {
        let (n, position) = (&item.entry.notification, item.entry.position);
        let pair = self
            .pairs
            .entry((n.subscription.clone(), n.partner))
            .or_insert(PairPending {
                count: 0,
                oldest: position,
            });
        pair.count += 1;
        pair.oldest = pair.oldest.min(position);
        let oldest = pair.oldest == position;
        (self.pending.entry(position).or_insert(item), oldest)
    }

    /// Takes the pending notification at `position` out of the pending ones. When it was
    /// its pair's oldest and others wait, the next one is found by reading on from it:
    /// once per email that leaves a pair with a backlog.
    fn take_pending(&mut self, position: u64) -> Option<Box<Item>> {
        let item = self.pending.remove(&position)?;
        let n = &item.entry.notification;
        let key = (n.subscription.clone(), n.partner);
        let Pair::Occupied(pair) = self.pairs.entry(key) else {
            return Some(item);
        };
        if pair.get().count == 1 {
            pair.remove();
            return Some(item);
        }
        let pair = pair.into_mut();
        pair.count -= 1;
        if pair.oldest == position {
            let next = self.pending.range(position..).find(|(_, other)| {
                let o = &other.entry.notification;
                o.partner == n.partner && o.subscription == n.subscription
            });
            pair.oldest = next.map_or(u64::MAX, |(&next, _)| next);
        }
        Some(item)
    }

    /// Whether pending `item` is the oldest pending notification of its pair.
    fn oldest_of_pair(&self, item: &Item) -> bool {
        let n = &item.entry.notification;
        let pair = self.pairs.get(&(n.subscription.clone(), n.partner));
        pair.is_some_and(|pair| pair.oldest == item.entry.position)
    }

    /// Whether the store holds notification `id`, in any status: what makes an id
    /// taken for good. Asked of the id's home shard ([`InMemoryRepository::home`]),
    /// which answers for it wherever it is stored: so that a notification id is unique
    /// in the store, as a database's key makes it, not only in its shard.
    ///
    /// An id named after an event of the subscription it is stored with (see
    /// [`sequence_on`]; every id the service writes, once its event is stored) is held
    /// by that event's [`StoredEvent::notified`]; any other (imports and a host's own
    /// commits may name them as they like, or name an event not stored yet) by
    /// [`Shard::others`]. `entry` is a subscription the caller holds already (taken out
    /// of this shard to be changed), so that the shard need not be searched for it.
    fn holds(&self, entry: Option<&Entry>, id: &NotificationId) -> bool {
        let notified = |entry: &Entry| {
            sequence_on(entry.subscription.id(), id).map(|sequence| entry.notified(sequence))
        };
        // Mostly named after `entry` itself: the shard need not be searched.
        let notified = entry
            .and_then(notified)
            .or_else(|| notified(self.entries.get(home_of(id)?)?));
        notified == Some(true) || self.others.contains_key(id)
    }

    /// Registers notification `id` with this shard, its home, as stored with `entry`
    /// (taken out of shard `stored_in` to be changed; `None` when it is not at hand):
    /// what [`Shard::holds`] answers from.
    fn register(&mut self, entry: Option<&mut Entry>, id: &NotificationId, stored_in: usize) {
        // An id named after `entry` has its home in `entry`'s shard: this one.
        let event = entry.and_then(|entry| {
            let index = entry.event_index(sequence_on(entry.subscription.id(), id)?)?;
            Some(&mut entry.history[index])
        });
        match event {
            Some(event) => event.notified = true,
            None => {
                self.others.insert(id.clone(), stored_in);
            }
        }
    }
}

/// Who caused a shard's stored events, each distinct cause once (shared by the list and
/// the index), numbered: an event holds its cause's number instead of a copy (about 40
/// bytes). The number takes no more room in an event than a pointer did.
///
/// A number, not a shared pointer, and a table per shard, not one for the store: a
/// commit numbers its cause under the shard lock it holds already, and writes nothing
/// another thread's commits write too. With one table behind an `RwLock` and an `Arc`
/// per event, every commit wrote the lock's word and the cause's reference count: two
/// threads acting for one customer shared both (issue 15's two-thread target). The
/// price: a cause is held once per shard that has its events, up to 64 times.
#[derive(Debug, Default)]
struct Causes {
    /// Cause `n` is `known[n - 1]`; 0 is [`Cause::Unknown`].
    known: Vec<Arc<Cause>>,
    numbers: HashMap<Arc<Cause>, u32>,
}

impl Causes {
    /// The number of `cause`, numbering it if it is new; `None` when the table is full
    /// (`u32::MAX` distinct causes in one shard).
    fn number(&mut self, cause: Cause) -> Option<u32> {
        if cause == Cause::Unknown {
            return Some(0);
        }
        if let Some(&number) = self.numbers.get(&cause) {
            return Some(number);
        }
        let number = u32::try_from(self.known.len() + 1).ok()?;
        let cause = Arc::new(cause);
        self.known.push(cause.clone());
        self.numbers.insert(cause, number);
        Some(number)
    }

    /// The cause numbered `number`.
    fn get(&self, number: u32) -> Cause {
        let index = (number as usize).checked_sub(1);
        index
            .and_then(|i| self.known.get(i))
            .map(|cause| Cause::clone(cause))
            .unwrap_or_default()
    }
}

/// The pending notifications of one (subscription, partner) pair in a shard
/// ([`Shard::pairs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PairPending {
    /// How many.
    count: u32,
    /// The position of the oldest.
    oldest: u64,
}

/// One notification of the outbox with its delivery state and claim.
#[derive(Debug)]
struct Item {
    entry: OutboxEntry,
    claimed_until: Option<OffsetDateTime>,
}

impl Item {
    fn new(entry: OutboxEntry) -> Box<Self> {
        Box::new(Item {
            entry,
            claimed_until: None,
        })
    }

    /// Claims it until `until`; answers it as claimed.
    fn claim(&mut self, until: OffsetDateTime) -> OutboxEntry {
        self.claimed_until = Some(until);
        self.entry.clone()
    }

    /// Whether it may be claimed at `now` as far as it alone goes: due, and not claimed
    /// by a lease that runs past `now`.
    fn due(&self, now: OffsetDateTime) -> bool {
        let free = self.claimed_until.is_none_or(|until| until <= now);
        free && self.entry.next_attempt_at <= now
    }
}

/// Shards locked for one call, each with its index, in index order (see
/// [`InMemoryRepository::lock`]). Every shard asked for is held, until the call takes
/// it out ([`Held::take`]) or drops them all.
enum Held<'a> {
    /// One shard, the common case (a commit of the service's own): no allocation.
    One([Slot<'a>; 1]),
    /// Any number, in index order.
    Many(Vec<Slot<'a>>),
}

/// A shard's index and, unless taken out, its lock.
type Slot<'a> = (usize, Option<MutexGuard<'a, Shard>>);

impl<'a> Held<'a> {
    fn slots(&self) -> &[Slot<'a>] {
        match self {
            Held::One(one) => one,
            Held::Many(many) => many,
        }
    }

    fn slots_mut(&mut self) -> &mut [Slot<'a>] {
        match self {
            Held::One(one) => one,
            Held::Many(many) => many,
        }
    }

    fn slot(&mut self, index: usize) -> Option<&mut Option<MutexGuard<'a, Shard>>> {
        let slots = self.slots_mut();
        let at = slots.binary_search_by_key(&index, |(i, _)| *i).ok()?;
        slots.get_mut(at).map(|(_, guard)| guard)
    }

    fn get(&self, index: usize) -> Option<&Shard> {
        let slots = self.slots();
        let at = slots.binary_search_by_key(&index, |(i, _)| *i).ok()?;
        slots.get(at)?.1.as_deref()
    }

    fn get_mut(&mut self, index: usize) -> Option<&mut Shard> {
        self.slot(index)?.as_deref_mut()
    }

    /// Takes shard `index` out, still locked.
    fn take(&mut self, index: usize) -> Option<MutexGuard<'a, Shard>> {
        self.slot(index)?.take()
    }

    /// Whether every shard of `indices` is held (not taken out).
    fn holds_all(&self, mut indices: impl Iterator<Item = usize>) -> bool {
        indices.all(|index| self.get(index).is_some())
    }

    /// The shards held, each with its index.
    fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut Shard)> {
        self.slots_mut()
            .iter_mut()
            .filter_map(|(index, guard)| Some((*index, guard.as_deref_mut()?)))
    }
}

/// The refusal of a call that found a shard it needs not locked: a mistake of this
/// module, answered before anything changed.
fn not_locked() -> StoreError {
    StoreError::Backend("a shard of the in-memory store was not locked".into())
}

/// The hash of every table in this module: foldhash, seeded per process.
///
/// Hashing ids was about a fifth of an in-memory check + submit with std's SipHash
/// (issue 15's profile). foldhash's `quality` variant is several times faster on short
/// keys, is still seeded randomly, and mixes its output well enough that the low bits
/// pick a shard evenly. The ids are validated and bounded (`ID_MAX_CHARS`), and this
/// store is the embedded default, not a server facing the internet on its own.
type RandomState = foldhash::quality::RandomState;
type HashMap<K, V> = std::collections::HashMap<K, V, RandomState>;
type HashSet<T> = std::collections::HashSet<T, RandomState>;

#[derive(Debug)]
struct State {
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
    /// Written on insert only (a subscription never changes customer).
    by_customer: Mutex<HashMap<CustomerId, Vec<SubscriptionId>>>,
    /// The next outbox position: orders notifications across shards, oldest first.
    next_position: AtomicU64,
    /// The change feed. Appended under the committing shard's lock, so a reader that
    /// finds an event here finds it in its shard.
    feed: Mutex<Feed>,
}

/// A [`Repository`] in memory: subscriptions in 64 independently locked shards (so
/// that changes to independent subscriptions do not contend), each shard with the
/// histories and the outbox of its subscriptions.
///
/// `commit` is a true compare-and-swap under the subscription's shard lock (and the new
/// subscription's, for a migration): the stored subscription, its history and its
/// outbox entries change together or not at all. A notification id is unique in the
/// store, as a database's key makes it: its home shard, the shard of the subscription
/// it is named after (the text before its last `#`, as in the service's
/// `"{subscription}#{sequence}"`; the whole id without one), answers for it wherever
/// it is stored. So a commit that names an email after another subscription, or
/// without a `#`, also locks that home shard when it is another one (all in index
/// order: two calls never wait on each other in a circle).
///
/// Costs: `get`, `insert` and `commit` are O(1); `list_by_customer` is O(k log k) in
/// the customer's subscriptions; `list_by_partner` scans every subscription (O(n)):
/// it is a rare, partner-side read, and keeping an index of it would put a shared lock
/// on every commit. Use a database-backed repository for large partner portfolios.
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
/// assert!(matches!(repo.insert(sub).await, Err(StoreError::AlreadyExists(_))));
/// assert_eq!(repo.list_by_customer(&CustomerId::new("contoso")?).await?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct InMemoryRepository {
    state: Arc<State>,
}

impl Default for InMemoryRepository {
    fn default() -> Self {
        InMemoryRepository {
            state: Arc::new(State {
                hasher: RandomState::default(),
                shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
                by_customer: Mutex::default(),
                next_position: AtomicU64::new(1),
                feed: Mutex::default(),
            }),
        }
    }
}

impl InMemoryRepository {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }

    fn shard(&self, id: &SubscriptionId) -> MutexGuard<'_, Shard> {
        lock_even_if_poisoned(&self.state.shards[self.shard_index(id)])
    }

    fn shard_index(&self, id: &SubscriptionId) -> usize {
        self.shard_index_of(id.as_str())
    }

    /// The shard of a subscription id given as text: a `SubscriptionId` hashes as its
    /// text, so this needs no validated id (what a notification id holds).
    fn shard_index_of(&self, id: &str) -> usize {
        self.state.hasher.hash_one(id) as usize % SHARDS
    }

    /// The shard that answers for notification `id` ([`Shard::holds`]): its home
    /// subscription's, named by the text before its last `#` (the whole id without
    /// one). The service stores each notification there, with its subscription; an
    /// import or a host's own commit may store one elsewhere, and its home shard then
    /// knows where ([`Shard::others`]).
    fn home(&self, id: &NotificationId) -> usize {
        self.shard_index_of(home_of(id).unwrap_or(id.as_str()))
    }

    /// The home shard of notification `id` stored with `subscription`, which lives in
    /// shard `stored_in`: that one, with no hash to compute, when `id` is named after
    /// it (every id the service writes).
    fn home_near(
        &self,
        id: &NotificationId,
        subscription: &SubscriptionId,
        stored_in: usize,
    ) -> usize {
        if home_of(id) == Some(subscription.as_str()) {
            stored_in
        } else {
            self.home(id)
        }
    }

    /// The shards at `indices` (in any order, repeats allowed), locked in index order
    /// so that two callers never wait on each other in a circle.
    fn lock(&self, indices: impl IntoIterator<Item = usize>) -> Held<'_> {
        let lock = |index: usize| lock_even_if_poisoned(&self.state.shards[index]);
        let mut indices = indices.into_iter();
        let Some(first) = indices.next() else {
            return Held::Many(Vec::new());
        };
        let mut others = indices.filter(|&i| i != first).peekable();
        if others.peek().is_none() {
            return Held::One([(first, Some(lock(first)))]);
        }
        let mut held: Vec<(usize, Option<MutexGuard<'_, Shard>>)> = [first]
            .into_iter()
            .chain(others)
            .map(|i| (i, None))
            .collect();
        held.sort_unstable_by_key(|(i, _)| *i);
        held.dedup_by_key(|(i, _)| *i);
        for (index, guard) in &mut held {
            *guard = Some(lock(*index));
        }
        Held::Many(held)
    }

    /// Runs `f` on the shard that stores notification `id` and the notification's
    /// position there, if a later call may still change it (pending, or a dead letter);
    /// `None` otherwise: not stored, or delivered.
    fn in_storing_shard<T>(
        &self,
        id: &NotificationId,
        f: impl FnOnce(&mut Shard, u64) -> T,
    ) -> Option<T> {
        let home = self.home(id);
        let mut shard = lock_even_if_poisoned(&self.state.shards[home]);
        if let Some(&position) = shard.live.get(id) {
            return Some(f(&mut shard, position));
        }
        // Stored elsewhere: where it is stays so for good, so the home shard's lock
        // need not be held while that one is taken (which could wait in a circle).
        let stored_in = shard.others.get(id).copied().filter(|&i| i != home)?;
        drop(shard);
        let mut shard = lock_even_if_poisoned(&self.state.shards[stored_in]);
        let position = *shard.live.get(id)?;
        Some(f(&mut shard, position))
    }

    /// The shard that stores notification `id`, or would store it were it stored with
    /// a subscription named like it.
    fn stored_in(&self, id: &NotificationId) -> usize {
        let home = self.home(id);
        let shard = lock_even_if_poisoned(&self.state.shards[home]);
        shard.others.get(id).copied().unwrap_or(home)
    }

    /// Settles notification `id` as delivered, wherever it is: a pending one, or a dead
    /// letter (see [`Outbox::mark_delivered`]).
    fn deliver_anywhere(&self, id: &NotificationId) {
        self.in_storing_shard(id, |shard, position| {
            settle(shard, id, position, DeliveryStatus::Delivered, |_| {});
        });
    }

    /// The entries `pick` takes from each shard (at most `limit` each), merged oldest
    /// first.
    fn oldest(&self, limit: usize, pick: impl Fn(&Shard) -> Vec<OutboxEntry>) -> Vec<OutboxEntry> {
        let mut all = Vec::new();
        for shard in &self.state.shards {
            all.extend(pick(&lock_even_if_poisoned(shard)));
        }
        all.sort_unstable_by_key(|e| e.position);
        all.truncate(limit);
        all
    }

    /// The stored subscriptions with these ids, in the order given.
    fn subscriptions_of(&self, ids: &[SubscriptionId]) -> Vec<Subscription> {
        ids.iter()
            .filter_map(|id| {
                self.shard(id)
                    .entries
                    .get(id)
                    .map(|e| e.subscription.clone())
            })
            .collect()
    }

    /// Applies `commit` under its shard lock (and its new subscription's, and the home
    /// shard of each notification named after another subscription) and, with `claim`,
    /// claims those of its notifications that are claimable then.
    fn apply(
        &self,
        commit: Commit,
        claim: Option<(OffsetDateTime, Duration)>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        commit.check()?;
        let id = commit.next.id().clone();
        let own = self.shard_index(&id);
        let created = commit.create.as_ref().map(Subscription::id);
        let new_home = created.map(|c| self.shard_index(c)).filter(|&i| i != own);
        let home = |n: &Notification| self.home_near(&n.id, &id, own);
        let foreign = commit.notifications.iter().map(home).filter(|&i| i != own);
        let mut held = self.lock([own].into_iter().chain(new_home).chain(foreign));
        let Some(mut guard) = held.take(own) else {
            return Err(not_locked());
        };
        let shard = &mut *guard;
        // Every other shard the commit needs is held (`lock` above): checked once, before
        // anything changes, so that no lookup below can miss.
        let foreign = commit.notifications.iter().map(home).filter(|&i| i != own);
        if !held.holds_all(new_home.into_iter().chain(foreign)) {
            return Err(not_locked());
        }
        let taken_in =
            |index: usize, taken: &dyn Fn(&Shard) -> bool| held.get(index).is_some_and(taken);
        // A set has no `get_mut`: take the entry out and put it back (same id, same
        // slot hash), moving the box, not the entry.
        let Some(mut entry) = shard.entries.take(&id) else {
            return Err(StoreError::NotFound(id));
        };
        let actual = entry.subscription.version();
        // In the SQL stores' order: the swap (the version, then events that follow the
        // last one stored), the subscription to create, the notifications.
        let invalid = |reason: String| StoreError::InvalidCommit {
            subscription: id.clone(),
            reason,
        };
        let refusal = if actual != commit.expected_version {
            Some(StoreError::Conflict {
                subscription: id.clone(),
                expected: commit.expected_version,
                actual,
            })
        } else {
            // What a database's keys would refuse, an event or notification twice, and
            // what the SQL stores' swap does (`follows_stored!`): events that do not
            // follow the last one stored (`Commit::check`: they run up to `next`'s last
            // sequence), a gap, or a counter set back.
            let last = entry.history.last().map_or(0, |e| e.sequence);
            let follows = commit.next.last_event_sequence() - commit.events.len() as u64;
            // A subscription to create must be new, in its own shard or in this one.
            let taken = |created: &SubscriptionId| match new_home {
                Some(index) => taken_in(index, &|shard| shard.entries.contains(created)),
                None => shard.entries.contains(created),
            };
            if follows != last {
                Some(invalid(format!(
                    "its events follow event {follows}, and the last event stored is {last}"
                )))
            } else if let Some(created) = created.filter(|created| taken(created)) {
                Some(StoreError::AlreadyExists(created.clone()))
            } else {
                let repeated = commit.notifications.iter().find(|n| match home(n) {
                    home if home == own => shard.holds(Some(&entry), &n.id),
                    home => taken_in(home, &|shard| shard.holds(None, &n.id)),
                });
                repeated.map(|n| invalid(format!("notification {} is stored already", n.id)))
            }
        };
        let stored_before = entry.history.len();
        let refusal = refusal.map_or_else(
            || push_stored(&mut entry.history, &mut shard.causes, commit.events),
            Err,
        );
        if let Err(error) = refusal {
            shard.entries.insert(entry);
            return Err(error);
        }
        // Under the shard's lock: a reader that finds these in the feed waits for it.
        lock_even_if_poisoned(&self.state.feed).append(
            entry.number,
            entry.history[stored_before..].iter().map(|e| e.sequence),
        );
        entry.subscription = commit.next;
        // Under this shard's lock, the positions this commit takes are the shard's
        // newest: one is the oldest pending of its pair only when no other of the pair is
        // pending, and is claimable now if due.
        let mut claimed = Vec::new();
        for notification in commit.notifications {
            let position = self.state.next_position.fetch_add(1, Ordering::Relaxed);
            let id = &notification.id;
            match home(&notification) {
                home if home == own => shard.register(Some(&mut entry), id, own),
                home => {
                    if let Some(home) = held.get_mut(home) {
                        home.register(None, id, own);
                    }
                }
            }
            shard.live.insert(notification.id.clone(), position);
            let (item, oldest) =
                shard.add_pending(Item::new(OutboxEntry::new(position, notification)));
            if let Some((now, lease)) = claim
                && oldest
                && item.due(now)
            {
                claimed.push(item.claim(now.saturating_add(lease)));
            }
        }
        shard.entries.insert(entry);
        if let Some(created) = commit.create {
            let home = match new_home {
                Some(index) => held.get_mut(index),
                None => Some(&mut *shard),
            };
            if let Some(home) = home {
                self.add_entry(home, created, Vec::new());
            }
        }
        Ok(claimed)
    }

    /// Adds a new entry to `shard`, indexes it by customer, numbers it for the feed, and
    /// puts its history (an import's) in the feed.
    fn add_entry(&self, shard: &mut Shard, subscription: Subscription, history: Vec<StoredEvent>) {
        lock_even_if_poisoned(&self.state.by_customer)
            .entry(subscription.customer().clone())
            .or_default()
            .push(subscription.id().clone());
        let mut feed = lock_even_if_poisoned(&self.state.feed);
        let number = feed.ids.push(subscription.id().clone()) as u64;
        feed.append(number, history.iter().map(|e| e.sequence));
        drop(feed);
        let entry = Entry {
            subscription,
            history,
            number,
        };
        shard.entries.insert(Box::new(entry));
    }
}

/// Appends `events` to `history` as this store keeps them, their causes numbered in
/// `causes`; refused, with `history` as it was, when a cause cannot be numbered any
/// more. In place, so that a commit allocates no list of its own for its events.
fn push_stored(
    history: &mut Vec<StoredEvent>,
    causes: &mut Causes,
    events: Vec<AssociationEvent>,
) -> Result<(), StoreError> {
    let before = history.len();
    // A first change takes room for its own events only: most subscriptions are given
    // one partner of record and keep it, and the 4 events a vector takes room for at
    // first were most of such a subscription's memory.
    if history.capacity() == 0 {
        history.reserve_exact(events.len());
    }
    for e in events {
        let Some(caused_by) = causes.number(e.caused_by) else {
            history.truncate(before);
            return Err(too_many_causes());
        };
        history.push(StoredEvent {
            sequence: e.sequence,
            at: e.at,
            kind: e.kind,
            caused_by,
            notified: false,
        });
    }
    Ok(())
}

/// The refusal of an event whose cause cannot be numbered: `u32::MAX` distinct causes in
/// one shard, far more than fit in memory beside their events.
fn too_many_causes() -> StoreError {
    StoreError::Backend("a shard of the in-memory store holds 4,294,967,295 distinct causes".into())
}

/// The subscription a notification id is named after, the text before its last `#`:
/// the service names a notification "{subscription}#{sequence}" (see
/// [`InMemoryRepository::home`]).
fn home_of(id: &NotificationId) -> Option<&str> {
    id.as_str()
        .rsplit_once('#')
        .map(|(subscription, _)| subscription)
}

/// Settles notification `id`, at `position` of `shard`, as `status` after `change`: a
/// pending one, and a dead letter as delivered (a late dispatcher's send went through:
/// see [`Outbox::mark_delivered`]); nothing else.
fn settle(
    shard: &mut Shard,
    id: &NotificationId,
    position: u64,
    status: DeliveryStatus,
    change: impl FnOnce(&mut OutboxEntry),
) {
    if let Some(mut item) = shard.take_pending(position) {
        change(&mut item.entry);
        item.entry.status = status;
        item.claimed_until = None;
        shard.settled.insert(position, item);
    } else {
        let delivering_dead = |item: &&mut Box<Item>| {
            status == DeliveryStatus::Delivered && item.entry.status == DeliveryStatus::Dead
        };
        let Some(item) = shard.settled.get_mut(&position).filter(delivering_dead) else {
            return;
        };
        change(&mut item.entry);
        item.entry.status = status;
    }
    if status == DeliveryStatus::Delivered {
        shard.live.remove(id);
    }
}

/// The positions of `shard`'s claimable notifications, oldest first: the oldest pending
/// one of each (subscription, partner) pair, if it is [due](Item::due).
fn claimable_in(shard: &Shard, now: OffsetDateTime) -> Vec<u64> {
    let mut pairs_seen = HashSet::default();
    let mut claimable = Vec::new();
    for (position, item) in &shard.pending {
        let n = &item.entry.notification;
        if pairs_seen.insert((&n.subscription, n.partner)) && item.due(now) {
            claimable.push(*position);
        }
    }
    claimable
}

/// The positions of those of notifications `ids` that `shard` stores and that are
/// claimable, oldest first, each once: pending, [due](Item::due), and the oldest pending
/// one of its pair ([`Shard::oldest_of_pair`]).
fn claimable_of(shard: &Shard, ids: &[NotificationId], now: OffsetDateTime) -> Vec<u64> {
    let mut claimable: Vec<u64> = ids
        .iter()
        .filter_map(|id| {
            let position = *shard.live.get(id)?;
            let item = shard.pending.get(&position)?;
            (item.due(now) && shard.oldest_of_pair(item)).then_some(position)
        })
        .collect();
    claimable.sort_unstable();
    claimable.dedup();
    claimable
}

/// Claims the notifications at `positions` of `shard` until `until`; answers them.
fn claim_in(shard: &mut Shard, positions: &[u64], until: OffsetDateTime) -> Vec<OutboxEntry> {
    let mut claimed = Vec::with_capacity(positions.len());
    for position in positions {
        if let Some(item) = shard.pending.get_mut(position) {
            claimed.push(item.claim(until));
        }
    }
    claimed
}

#[async_trait]
impl Repository for InMemoryRepository {
    async fn insert(&self, subscription: Subscription) -> Result<(), StoreError> {
        check_new(&subscription)?;
        let mut shard = self.shard(subscription.id());
        if shard.entries.contains(subscription.id()) {
            return Err(StoreError::AlreadyExists(subscription.id().clone()));
        }
        self.add_entry(&mut shard, subscription, Vec::new());
        Ok(())
    }

    async fn get(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        Ok(self
            .shard(id)
            .entries
            .get(id)
            .map(|e| e.subscription.clone()))
    }

    async fn list_by_customer(
        &self,
        customer: &CustomerId,
    ) -> Result<Vec<Subscription>, StoreError> {
        let mut ids = lock_even_if_poisoned(&self.state.by_customer)
            .get(customer)
            .cloned()
            .unwrap_or_default();
        ids.sort_unstable();
        Ok(self.subscriptions_of(&ids))
    }

    async fn list_by_partner(&self, partner: &MpnId) -> Result<Vec<Subscription>, StoreError> {
        let mut found = Vec::new();
        for shard in &self.state.shards {
            found.extend(
                lock_even_if_poisoned(shard)
                    .entries
                    .iter()
                    .filter(|e| {
                        e.subscription.partner_of_record().map(|p| p.mpn_id()) == Some(*partner)
                    })
                    .map(|e| e.subscription.clone()),
            );
        }
        found.sort_unstable_by(|a, b| a.id().cmp(b.id()));
        Ok(found)
    }

    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        self.apply(commit, None).map(drop)
    }

    /// The commit and the claim under the same shard lock.
    async fn commit_and_claim(
        &self,
        commit: Commit,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.apply(commit, Some((now, lease)))
    }

    async fn history(&self, id: &SubscriptionId) -> Result<Vec<AssociationEvent>, StoreError> {
        let shard = self.shard(id);
        Ok(shard
            .entries
            .get(id)
            .map(|entry| {
                let causes = &shard.causes;
                entry
                    .history
                    .iter()
                    .map(|e| entry.event_of(e, causes))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// O(n) per page: the subscriptions are kept by hash, not in id order.
    async fn page_subscriptions(
        &self,
        after: Option<&SubscriptionId>,
        limit: usize,
    ) -> Result<Vec<Subscription>, StoreError> {
        let mut ids: Vec<SubscriptionId> = Vec::new();
        for shard in &self.state.shards {
            let shard = lock_even_if_poisoned(shard);
            ids.extend(
                shard
                    .entries
                    .iter()
                    .map(|e| e.subscription.id())
                    .filter(|id| after.is_none_or(|after| *id > after))
                    .cloned(),
            );
        }
        if ids.len() > limit {
            ids.select_nth_unstable(limit);
            ids.truncate(limit);
        }
        ids.sort_unstable();
        Ok(self.subscriptions_of(&ids))
    }

    async fn import_subscriptions(
        &self,
        batch: Vec<(Subscription, Vec<AssociationEvent>)>,
    ) -> Result<(), StoreError> {
        // In the SQL stores' order: every history, then the first id in the batch that is
        // taken or repeated.
        for (subscription, history) in &batch {
            check_history(subscription, history)?;
        }
        let mut shards = self.lock(batch.iter().map(|(s, _)| self.shard_index(s.id())));
        let mut ids = HashSet::default();
        if let Some((taken, _)) = batch.iter().find(|(s, _)| {
            !ids.insert(s.id())
                || shards
                    .get(self.shard_index(s.id()))
                    .is_some_and(|shard| shard.entries.contains(s.id()))
        }) {
            return Err(StoreError::AlreadyExists(taken.id().clone()));
        }
        // Every history is numbered before anything is added: all or nothing (a refusal
        // may leave a cause numbered that no event uses, which no reader can see).
        let mut prepared = Vec::with_capacity(batch.len());
        for (subscription, history) in batch {
            let index = self.shard_index(subscription.id());
            let shard = shards.get_mut(index).ok_or_else(not_locked)?;
            let mut stored = Vec::with_capacity(history.len());
            push_stored(&mut stored, &mut shard.causes, history)?;
            prepared.push((index, subscription, stored));
        }
        for (index, subscription, history) in prepared {
            if let Some(shard) = shards.get_mut(index) {
                self.add_entry(shard, subscription, history);
            }
        }
        Ok(())
    }

    /// The feed's changes after `after`: the positions come from one look at the feed,
    /// each event from its shard (whose lock its commit still held when it appended).
    async fn changes(
        &self,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let refs: Vec<(u64, SubscriptionId, u64)> = {
            let feed = lock_even_if_poisoned(&self.state.feed);
            let start = match after {
                None => 0,
                Some(cursor) => {
                    let last = Cursor::new(0, feed.log.len as u64);
                    check_cursor(cursor, Some(last))?;
                    usize::try_from(cursor.position()).unwrap_or(usize::MAX)
                }
            };
            let mut refs = Vec::new();
            for index in (start..feed.log.len).take(limit.min(MAX_CHANGES)) {
                let id = feed
                    .log
                    .get(index)
                    .and_then(|(number, sequence)| {
                        let id = feed.ids.get(usize::try_from(*number).ok()?)?;
                        Some((id.clone(), *sequence))
                    })
                    .ok_or_else(|| StoreError::Backend("the feed lost an entry".into()))?;
                refs.push((index as u64 + 1, id.0, id.1));
            }
            refs
        };
        let mut changes = Vec::with_capacity(refs.len());
        for (position, id, sequence) in refs {
            let shard = self.shard(&id);
            let event = shard
                .entries
                .get(&id)
                .and_then(|entry| entry.event(sequence, &shard.causes))
                .ok_or_else(|| {
                    StoreError::Backend(
                        format!("the feed names {id}#{sequence}, not stored").into(),
                    )
                })?;
            changes.push(Change {
                cursor: Cursor::new(0, position),
                event,
            });
        }
        Ok(changes)
    }
}

/// Claims lock the shards they look at: every shard for [`Claim::Due`] (a dispatcher's
/// batch), only the shards that store the notifications for [`Claim::Only`] (the
/// delivery right after a commit; found first in each id's home shard, one lock at a
/// time).
#[async_trait]
impl Outbox for InMemoryRepository {
    async fn claim(
        &self,
        which: Claim<'_>,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let indices: Vec<usize> = match which {
            Claim::Only(ids) => ids.iter().map(|id| self.stored_in(id)).collect(),
            Claim::Due => (0..SHARDS).collect(),
        };
        let claimable_here = |shard: &Shard| match which {
            Claim::Only(ids) => claimable_of(shard, ids, now),
            _ => claimable_in(shard, now),
        };
        // The delivery right after a commit: its notifications share one shard.
        if let [index, rest @ ..] = indices.as_slice()
            && rest.iter().all(|i| i == index)
        {
            let mut shard = lock_even_if_poisoned(&self.state.shards[*index]);
            let mut claimable = claimable_here(&shard);
            claimable.truncate(limit);
            return Ok(claim_in(&mut shard, &claimable, now.saturating_add(lease)));
        }
        let mut shards = self.lock(indices);
        let mut claimable: Vec<(u64, usize)> = Vec::new();
        for (index, shard) in shards.iter_mut() {
            claimable.extend(
                claimable_here(shard)
                    .into_iter()
                    .map(|position| (position, index)),
            );
        }
        claimable.sort_unstable();
        claimable.truncate(limit);
        let mut claimed = Vec::with_capacity(claimable.len());
        for (position, index) in claimable {
            if let Some(shard) = shards.get_mut(index) {
                claimed.extend(claim_in(shard, &[position], now.saturating_add(lease)));
            }
        }
        Ok(claimed)
    }

    async fn mark_delivered(&self, ids: &[NotificationId]) -> Result<(), StoreError> {
        for id in ids {
            self.deliver_anywhere(id);
        }
        Ok(())
    }

    async fn record_failure(&self, failure: &Failure) -> Result<(), StoreError> {
        let record = |entry: &mut OutboxEntry| {
            entry.attempts = failure.attempts;
            entry.last_error = Some(failure.error.clone());
            entry.last_attempt_at = Some(failure.at);
        };
        self.in_storing_shard(&failure.id, |shard, position| {
            let Some(item) = shard.pending.get_mut(&position) else {
                return;
            };
            if !failure.under(item.claimed_until) {
                return;
            }
            match failure.next {
                AfterFailure::DeadLetter => {
                    settle(shard, &failure.id, position, DeliveryStatus::Dead, record);
                }
                AfterFailure::RetryAt(at) => {
                    record(&mut item.entry);
                    item.entry.next_attempt_at = at;
                    item.claimed_until = None;
                }
            }
        });
        Ok(())
    }

    async fn pending_notifications(&self, limit: usize) -> Result<Vec<Notification>, StoreError> {
        let oldest = self.oldest(limit, |shard| {
            shard
                .pending
                .values()
                .take(limit)
                .map(|item| item.entry.clone())
                .collect()
        });
        Ok(oldest.into_iter().map(|e| e.notification).collect())
    }

    async fn dead_letters(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let from = after.map_or(0, |after| after.saturating_add(1));
        Ok(self.oldest(limit, |shard| {
            shard
                .settled
                .range(from..)
                .filter(|(_, item)| item.entry.status == DeliveryStatus::Dead)
                .take(limit)
                .map(|(_, item)| item.entry.clone())
                .collect()
        }))
    }

    async fn redrive(&self, id: &NotificationId, now: OffsetDateTime) -> Result<bool, StoreError> {
        let redrive_in = |shard: &mut Shard, position| {
            let dead = shard
                .settled
                .get(&position)
                .is_some_and(|item| item.entry.status == DeliveryStatus::Dead);
            if dead && let Some(mut item) = shard.settled.remove(&position) {
                item.entry.status = DeliveryStatus::Pending;
                item.entry.attempts = 0;
                item.entry.next_attempt_at = now;
                shard.add_pending(item);
            }
            dead
        };
        Ok(self.in_storing_shard(id, redrive_in).unwrap_or(false))
    }

    async fn page_outbox(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let from = after.map_or(0, |after| after.saturating_add(1));
        Ok(self.oldest(limit, |shard| {
            let pending = shard.pending.range(from..).take(limit);
            let settled = shard.settled.range(from..).take(limit);
            pending
                .chain(settled)
                .map(|(_, item)| item.entry.clone())
                .collect()
        }))
    }

    async fn import_outbox(&self, entries: Vec<OutboxEntry>) -> Result<(), StoreError> {
        // Each notification is stored with its subscription, and registered in its
        // id's home shard (the same one, unless it is named after another).
        let places: Vec<(usize, usize)> = entries
            .iter()
            .map(|e| {
                let n = &e.notification;
                let stored_in = self.shard_index(&n.subscription);
                (stored_in, self.home_near(&n.id, &n.subscription, stored_in))
            })
            .collect();
        let mut shards = self.lock(places.iter().flat_map(|&(s, h)| [s, h]));
        // Checked once, before anything changes, so that no lookup below can miss.
        if !shards.holds_all(places.iter().flat_map(|&(s, h)| [s, h])) {
            return Err(not_locked());
        }
        let mut ids = HashSet::default();
        for (entry, &(_, home)) in entries.iter().zip(&places) {
            let id = &entry.notification.id;
            let stored = shards.get(home).is_some_and(|shard| shard.holds(None, id));
            if !ids.insert(id) || stored {
                return Err(StoreError::InvalidCommit {
                    subscription: entry.notification.subscription.clone(),
                    reason: format!("notification {id} is stored already"),
                });
            }
        }
        for (mut entry, (stored_in, home)) in entries.into_iter().zip(places) {
            let id = &entry.notification.id;
            if home != stored_in
                && let Some(home) = shards.get_mut(home)
            {
                home.register(None, id, stored_in);
            }
            let Some(shard) = shards.get_mut(stored_in) else {
                continue;
            };
            if home == stored_in {
                let mut stored_with = shard.entries.take(&entry.notification.subscription);
                shard.register(stored_with.as_deref_mut(), id, stored_in);
                shard.entries.extend(stored_with);
            }
            let position = self.state.next_position.fetch_add(1, Ordering::Relaxed);
            entry.position = position;
            if entry.status != DeliveryStatus::Delivered {
                shard.live.insert(id.clone(), position);
            }
            if entry.status == DeliveryStatus::Pending {
                shard.add_pending(Item::new(entry));
            } else {
                shard.settled.insert(position, Item::new(entry));
            }
        }
        Ok(())
    }
}

/// A [`PartnerDirectory`] in memory.
///
/// ```
/// use dpor::*;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let fabrikam = Partner::new(MpnId::parse("565380")?, "Fabrikam").enrolled_in(Program::OnlineServicesSell);
/// let directory = InMemoryDirectory::new().with_partner(fabrikam.clone());
/// assert_eq!(directory.lookup(fabrikam.mpn_id()).await?, Some(fabrikam));
/// assert_eq!(directory.lookup(MpnId::parse("99999")?).await?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct InMemoryDirectory {
    partners: Arc<RwLock<HashMap<MpnId, Partner>>>,
}

impl InMemoryDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// The directory with `partner` added (builder style, for set-up).
    pub fn with_partner(self, partner: Partner) -> Self {
        self.insert(partner);
        self
    }

    /// Adds `partner`, replacing any partner with the same MPN ID.
    pub fn insert(&self, partner: Partner) {
        self.partners
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(partner.mpn_id(), partner);
    }

    /// Removes the partner with this MPN ID (it is no longer listed); returns it.
    pub fn remove(&self, mpn_id: MpnId) -> Option<Partner> {
        self.partners
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&mpn_id)
    }
}

#[async_trait]
impl PartnerDirectory for InMemoryDirectory {
    async fn lookup(&self, mpn_id: MpnId) -> Result<Option<Partner>, DirectoryError> {
        Ok(self
            .partners
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&mpn_id)
            .cloned())
    }
}

#[derive(Debug, Default)]
struct Recording {
    sent: Vec<Notification>,
    fail_next: usize,
}

/// A [`Notifier`] that records what it delivers instead of sending email, and can be
/// told to fail, for fault tests.
///
/// ```
/// use dpor::RecordingNotifier;
///
/// let notifier = RecordingNotifier::new();
/// notifier.fail_next(2); // the next two deliveries fail
/// assert!(notifier.sent().is_empty());
/// ```
#[derive(Clone, Debug, Default)]
pub struct RecordingNotifier {
    state: Arc<Mutex<Recording>>,
}

impl RecordingNotifier {
    /// A notifier that delivers everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// The notifications delivered successfully so far, in delivery order.
    pub fn sent(&self) -> Vec<Notification> {
        lock_even_if_poisoned(&self.state).sent.clone()
    }

    /// Makes the next `n` deliveries fail (replacing any earlier count).
    pub fn fail_next(&self, n: usize) {
        lock_even_if_poisoned(&self.state).fail_next = n;
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        let mut state = lock_even_if_poisoned(&self.state);
        if state.fail_next > 0 {
            state.fail_next -= 1;
            return Err(NotifyError::new("simulated delivery failure"));
        }
        state.sent.push(notification.clone());
        Ok(())
    }
}

/// A [`Clock`] that stands still until told otherwise: deterministic tests.
///
/// ```
/// use dpor::{Clock, ManualClock};
/// use time::{Duration, macros::datetime};
///
/// let clock = ManualClock::new(datetime!(2026-01-05 10:00 UTC));
/// clock.advance(Duration::minutes(16));
/// assert_eq!(clock.now(), datetime!(2026-01-05 10:16 UTC));
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<Mutex<OffsetDateTime>>,
}

impl ManualClock {
    /// A clock showing `at`.
    pub fn new(at: OffsetDateTime) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(at)),
        }
    }

    /// Sets the time to `at` (it may go backwards).
    pub fn set(&self, at: OffsetDateTime) {
        *lock_even_if_poisoned(&self.now) = at;
    }

    /// Moves the time by `by` (saturating at the limits of `OffsetDateTime`).
    pub fn advance(&self, by: Duration) {
        let mut now = lock_even_if_poisoned(&self.now);
        *now = now.saturating_add(by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *lock_even_if_poisoned(&self.now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::association::Transition;
    use crate::partner::Program;
    use crate::subscription::CloudService;
    use time::macros::datetime;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn a_shard_numbers_each_distinct_cause_once_and_reads_it_back() {
        use crate::id::UserRef;
        use crate::role::CustomerRole;
        let admin = |user: Option<&str>| Cause::Customer {
            role: CustomerRole::GlobalAdministrator,
            user: user.map(|u| UserRef::new(u).unwrap()),
        };
        let mut causes = Causes::default();
        assert_eq!(causes.number(Cause::Unknown), Some(0));
        let anna = causes.number(admin(Some("anna"))).unwrap();
        let anonymous = causes.number(admin(None)).unwrap();
        let billing = causes.number(Cause::BillingSystem).unwrap();
        assert_eq!((anna, anonymous, billing), (1, 2, 3));
        assert_eq!(causes.number(admin(Some("anna"))), Some(anna));
        assert_eq!(causes.known.len(), 3);
        assert_eq!(causes.get(anna), admin(Some("anna")));
        assert_eq!(causes.get(billing), Cause::BillingSystem);
        assert_eq!(causes.get(0), Cause::Unknown);
        // A number the table never gave reads as unknown, not as a panic.
        assert_eq!(causes.get(99), Cause::Unknown);
    }

    /// A store holding one new subscription, and the subscription.
    async fn one_subscription() -> (InMemoryRepository, Subscription) {
        let repo = InMemoryRepository::new();
        let sub = Subscription::new(
            SubscriptionId::new("s").unwrap(),
            CustomerId::new("c").unwrap(),
            CloudService::Azure,
            "n",
        );
        repo.insert(sub.clone()).await.unwrap();
        (repo, sub)
    }

    #[test]
    fn a_stale_commit_is_a_conflict_and_changes_nothing() {
        block_on(async {
            let (repo, sub) = one_subscription().await;
            let commit = change(&sub, "565380", &[]);
            repo.commit(commit.clone()).await.unwrap();
            let again = repo.commit(commit).await.unwrap_err();
            assert!(matches!(
                again,
                StoreError::Conflict {
                    expected: 0,
                    actual: 1,
                    ..
                }
            ));
            assert_eq!(repo.history(sub.id()).await.unwrap().len(), 1);
            let partner = MpnId::parse("565380").unwrap();
            assert_eq!(repo.list_by_partner(&partner).await.unwrap().len(), 1);
        });
    }

    /// Asserts that every shard's [`Shard::pairs`] counts exactly its pending
    /// notifications of each pair, and knows the oldest.
    fn assert_pairs_counted(repo: &InMemoryRepository, when: &str) {
        for (index, shard) in repo.state.shards.iter().enumerate() {
            let shard = lock_even_if_poisoned(shard);
            let mut counted: HashMap<(SubscriptionId, MpnId), PairPending> = HashMap::default();
            for (&position, item) in &shard.pending {
                let n = &item.entry.notification;
                let pair = (n.subscription.clone(), n.partner);
                let first = PairPending {
                    count: 0,
                    oldest: position,
                };
                counted.entry(pair).or_insert(first).count += 1;
            }
            assert_eq!(shard.pairs, counted, "shard {index}, {when}");
        }
    }

    /// Changes, deliveries that fail and are retried, dead letters, redrives and an
    /// import, in a pseudo-random order: after each, the pairs' counts are the pending
    /// notifications', which the claims rely on.
    #[test]
    fn each_pairs_count_of_pending_notifications_follows_every_change_of_the_outbox() {
        use crate::actor::Actor;
        use crate::delivery::DeliveryPolicy;
        use crate::service::PorService;
        block_on(async {
            let repo = InMemoryRepository::new();
            let customer = CustomerId::new("c").unwrap();
            let ids: Vec<SubscriptionId> = (0..12)
                .map(|i| SubscriptionId::new(format!("s-{i}")).unwrap())
                .collect();
            for id in &ids {
                let sub = Subscription::new(id.clone(), customer.clone(), CloudService::Azure, "n");
                repo.insert(sub).await.unwrap();
            }
            let directory = InMemoryDirectory::new();
            for mpn in ["565380", "3664167"] {
                directory.insert(
                    Partner::new(MpnId::parse(mpn).unwrap(), "P")
                        .enrolled_in(Program::OnlineServicesSell),
                );
            }
            let notifier = RecordingNotifier::new();
            let clock = ManualClock::new(datetime!(2026-01-01 0:00 UTC));
            let policy = DeliveryPolicy {
                max_attempts: 2,
                ..DeliveryPolicy::default()
            };
            let service = PorService::new(repo.clone(), directory, notifier.clone())
                .with_clock(clock.clone())
                .with_delivery_policy(policy);
            let admin = Actor::global_admin(customer);
            let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
            let (mut most, mut redriven) = (0, 0);
            for step in 0..400 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let id = &ids[(seed >> 8) as usize % ids.len()];
                notifier.fail_next(usize::from(seed.is_multiple_of(3)));
                let what = match (seed >> 4) % 6 {
                    0..=2 => {
                        let mpn = ["565380", "3664167"][(seed >> 20) as usize % 2];
                        if let Ok(check) = service.check_partner(&admin, id, mpn).await {
                            let _ = service.submit(&admin, &check).await;
                        }
                        "a change"
                    }
                    3 => {
                        let _ = service.remove_partner(&admin, id).await;
                        "a removal"
                    }
                    4 => {
                        clock.advance(Duration::minutes(2));
                        service.dispatch_pending(5).await.unwrap();
                        "a dispatch"
                    }
                    _ => {
                        let dead = service.dead_letters(None, 3).await.unwrap();
                        for letter in dead {
                            redriven += 1;
                            service.redrive(&letter.notification.id).await.unwrap();
                        }
                        "redrives"
                    }
                };
                assert_pairs_counted(&repo, &format!("after {what}, step {step}"));
                for shard in &repo.state.shards {
                    let shard = lock_even_if_poisoned(shard);
                    most = shard.pairs.values().map(|p| p.count).fold(most, u32::max);
                }
            }
            assert!(
                most >= 2 && redriven > 0,
                "{most} at most in a pair, {redriven} redriven"
            );
            // What is pending when the store is copied is counted in the copy.
            notifier.fail_next(usize::MAX);
            for id in &ids {
                let _ = service.remove_partner(&admin, id).await;
            }
            let copy = InMemoryRepository::new();
            crate::transfer::transfer(&repo, &copy).await.unwrap();
            assert!(!copy.pending_notifications(1).await.unwrap().is_empty());
            assert_pairs_counted(&copy, "after a transfer");
        });
    }

    #[test]
    fn a_notification_names_an_event_only_in_the_form_the_service_writes() {
        let sub = SubscriptionId::new("sub#1").unwrap();
        let named = |id: &str| sequence_on(&sub, &NotificationId::new(id).unwrap());
        assert_eq!(named("sub#1#7"), Some(7));
        assert_eq!(named("sub#1#0"), Some(0));
        assert_eq!(
            named(NotificationId::for_event(&sub, u64::MAX).as_str()),
            Some(u64::MAX)
        );
        // Anything for_event would not write is another id, kept by the shard.
        for other in [
            "sub#1#07",
            "sub#1#+7",
            "sub#1#",
            "sub#1#7x",
            "sub#7",
            "sub#1#18446744073709551616",
        ] {
            assert_eq!(named(other), None, "{other}");
        }
    }

    /// A replacement of `sub`'s partner by `partner`, its notifications as the service
    /// names them, then `extra` ids of the host's own.
    fn change(sub: &Subscription, partner: &str, extra: &[&str]) -> Commit {
        let partner = Partner::new(MpnId::parse(partner).unwrap(), "P")
            .enrolled_in(Program::OnlineServicesSell);
        let at = datetime!(2026-01-01 0:00 UTC);
        let Ok(Transition::Changed { next, events }) =
            sub.associate(&partner, Program::OnlineServicesSell, at)
        else {
            panic!("expected a change")
        };
        let mut commit = Commit::of_change(sub, next, events);
        for id in extra {
            let mut own = commit.notifications[0].clone();
            own.id = NotificationId::new(*id).unwrap();
            commit.notifications.push(own);
        }
        commit
    }

    /// Asserts that `commit` is refused for naming notification `id`, stored already.
    async fn refused_for(repo: &InMemoryRepository, commit: Commit, id: &str) {
        let refused = repo.commit(commit).await;
        assert!(
            matches!(&refused, Err(StoreError::InvalidCommit { reason, .. }) if reason.contains(id)),
            "{id}: {refused:?}"
        );
    }

    #[test]
    fn a_notification_id_is_taken_for_good_in_any_status_under_any_name() {
        block_on(async {
            let (repo, sub) = one_subscription().await;
            // Before the subscription's own commits: an import naming its event 3.
            let mut imported =
                OutboxEntry::new(0, change(&sub, "565380", &[]).notifications[0].clone());
            imported.notification.id = NotificationId::new("s#3").unwrap();
            imported.status = DeliveryStatus::Delivered;
            repo.import_outbox(vec![imported]).await.unwrap();

            // Event 1's notification, one naming an event never stored, one of the host's.
            let first = change(&sub, "565380", &["s#99", "own-1"]);
            let written: Vec<NotificationId> =
                first.notifications.iter().map(|n| n.id.clone()).collect();
            repo.commit(first.clone()).await.unwrap();
            repo.mark_delivered(&written).await.unwrap();
            let live = repo.shard(sub.id()).live.len();
            assert_eq!(live, 0, "delivered: nothing left to change");

            // Delivered, each id stays taken: the commit that reuses one writes nothing,
            // whether it commits on the same subscription or on one beside it.
            let sub = first.next;
            let neighbour = (0..)
                .map(|i| SubscriptionId::new(format!("t{i}")).unwrap())
                .find(|t| repo.shard_index(t) == repo.shard_index(sub.id()))
                .map(|t| {
                    Subscription::new(t, CustomerId::new("c").unwrap(), CloudService::Azure, "n")
                })
                .unwrap();
            repo.insert(neighbour.clone()).await.unwrap();
            for on in [&sub, &neighbour] {
                for reused in ["s#1", "s#99", "own-1"] {
                    let mut reusing = change(on, "3664167", &[reused]);
                    let own = reusing.notifications.len() - 1;
                    reusing.notifications.drain(..own); // the replacement's own
                    refused_for(&repo, reusing, reused).await;
                }
            }
            // Event 3's notification was imported before the event was written.
            let replace = change(&sub, "3664167", &[]);
            assert_eq!(replace.notifications[1].id.as_str(), "s#3");
            refused_for(&repo, replace, "s#3").await;
            let again = OutboxEntry::new(0, first.notifications[0].clone());
            assert!(
                repo.import_outbox(vec![again]).await.is_err(),
                "s#1 imported again"
            );
            assert_eq!(repo.get(sub.id()).await.unwrap(), Some(sub.clone()));
            assert_eq!(repo.page_outbox(None, 10).await.unwrap().len(), 4);
            // Marking a delivered one again changes nothing.
            repo.mark_delivered(&written).await.unwrap();
            assert!(repo.pending_notifications(10).await.unwrap().is_empty());
        });
    }

    #[test]
    fn a_notification_stored_away_from_its_home_shard_is_still_the_stores_one_id() {
        block_on(async {
            let (repo, sub) = one_subscription().await;
            let away = (0..)
                .map(|i| SubscriptionId::new(format!("t{i}")).unwrap())
                .find(|t| {
                    let homes = [sub.id().as_str(), "plain"].map(|h| repo.shard_index_of(h));
                    !homes.contains(&repo.shard_index(t))
                })
                .map(|t| {
                    Subscription::new(t, CustomerId::new("c").unwrap(), CloudService::Azure, "n")
                })
                .unwrap();
            repo.insert(away.clone()).await.unwrap();
            // `away` names its emails after `s`'s event 1, not written yet, and with no
            // `#` at all: neither is stored in its home shard.
            let mut commit = change(&away, "565380", &["s#1", "plain"]);
            commit.notifications.drain(..1);
            repo.commit(commit).await.unwrap();
            let ids = |names: &[&str]| -> Vec<NotificationId> {
                names
                    .iter()
                    .map(|n| NotificationId::new(*n).unwrap())
                    .collect()
            };
            let pending = async || -> Vec<NotificationId> {
                let pending = repo.pending_notifications(10).await.unwrap();
                pending.into_iter().map(|n| n.id).collect()
            };
            let at = datetime!(2026-01-01 0:00 UTC);
            let lease = Duration::minutes(1);
            // One partner: the second waits for the first.
            let only = ids(&["s#1", "plain"]);
            let claimed = repo.claim(Claim::Only(&only), at, lease, 10).await.unwrap();
            let claimed: Vec<_> = claimed.into_iter().map(|e| e.notification.id).collect();
            assert_eq!(claimed, ids(&["s#1"]));

            // Taken in the store, not only in `away`'s shard.
            refused_for(&repo, change(&sub, "565380", &[]), "s#1").await;
            let mut plain = change(&sub, "565380", &["plain"]);
            plain.notifications.drain(..1);
            refused_for(&repo, plain, "plain").await;
            let mut again =
                OutboxEntry::new(0, change(&sub, "565380", &[]).notifications[0].clone());
            again.notification.id = NotificationId::new("plain").unwrap();
            assert!(repo.import_outbox(vec![again]).await.is_err());

            // Found where it is stored, for every call that changes it.
            let failure = |next| Failure {
                id: NotificationId::new("s#1").unwrap(),
                attempts: 1,
                at,
                error: "mailbox full".into(),
                next,
                claimed_until: None,
            };
            repo.record_failure(&failure(AfterFailure::RetryAt(at + lease)))
                .await
                .unwrap();
            let outbox = repo.page_outbox(None, 10).await.unwrap();
            assert_eq!(
                (outbox[0].attempts, outbox[0].next_attempt_at),
                (1, at + lease)
            );
            repo.record_failure(&failure(AfterFailure::DeadLetter))
                .await
                .unwrap();
            let dead = repo.dead_letters(None, 10).await.unwrap();
            assert_eq!(dead.len(), 1);
            assert_eq!(pending().await, ids(&["plain"]));
            assert!(repo.redrive(&only[0], at).await.unwrap());
            assert_eq!(pending().await, only);
            repo.mark_delivered(&only).await.unwrap();
            assert_eq!(pending().await, ids(&[]));
            assert!(!repo.redrive(&only[0], at).await.unwrap());
            assert_eq!(repo.page_outbox(None, 10).await.unwrap().len(), 2);
        });
    }
}
