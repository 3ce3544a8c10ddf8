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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::error::{DirectoryError, NotifyError, StoreError};
use crate::event::{AssociationEvent, Notification};
use crate::id::{CustomerId, MpnId, NotificationId, SubscriptionId};
use crate::partner::Partner;
use crate::ports::{Clock, Commit, Notifier, PartnerDirectory, Repository};
use crate::subscription::Subscription;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How many independently locked shards hold the subscriptions.
const SHARDS: usize = 64;

/// A subscription and its history, as one shard keeps them.
#[derive(Debug)]
struct Entry {
    subscription: Subscription,
    history: Vec<AssociationEvent>,
}

/// The outbox: notifications in the order they were committed.
#[derive(Debug, Default)]
struct Outbox {
    next: u64,
    pending: BTreeMap<u64, Notification>,
    position: HashMap<NotificationId, u64>,
}

#[derive(Debug)]
struct State {
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<SubscriptionId, Entry>>>,
    by_customer: Mutex<HashMap<CustomerId, BTreeSet<SubscriptionId>>>,
    by_partner: Mutex<HashMap<MpnId, BTreeSet<SubscriptionId>>>,
    outbox: Mutex<Outbox>,
}

/// A [`Repository`] in memory: subscriptions in sharded maps (independent
/// subscriptions do not contend), histories beside them, and an outbox.
///
/// `commit` is a true compare-and-swap under the subscription's shard lock: the stored
/// subscription, its history and the outbox change together or not at all.
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
                hasher: RandomState::new(),
                shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
                by_customer: Mutex::default(),
                by_partner: Mutex::default(),
                outbox: Mutex::default(),
            }),
        }
    }
}

impl InMemoryRepository {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }

    fn shard(&self, id: &SubscriptionId) -> MutexGuard<'_, HashMap<SubscriptionId, Entry>> {
        let index = self.state.hasher.hash_one(id) as usize % SHARDS;
        lock(&self.state.shards[index])
    }

    fn get_all(&self, ids: impl IntoIterator<Item = SubscriptionId>) -> Vec<Subscription> {
        ids.into_iter()
            .filter_map(|id| self.shard(&id).get(&id).map(|e| e.subscription.clone()))
            .collect()
    }
}

fn current_partner(subscription: &Subscription) -> Option<MpnId> {
    subscription.partner_of_record().map(|p| p.mpn_id())
}

#[async_trait]
impl Repository for InMemoryRepository {
    async fn insert(&self, subscription: Subscription) -> Result<(), StoreError> {
        let id = subscription.id().clone();
        let mut shard = self.shard(&id);
        if shard.contains_key(&id) {
            return Err(StoreError::AlreadyExists(id));
        }
        lock(&self.state.by_customer)
            .entry(subscription.customer().clone())
            .or_default()
            .insert(id.clone());
        if let Some(partner) = current_partner(&subscription) {
            lock(&self.state.by_partner)
                .entry(partner)
                .or_default()
                .insert(id.clone());
        }
        shard.insert(
            id,
            Entry {
                subscription,
                history: Vec::new(),
            },
        );
        Ok(())
    }

    async fn get(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        Ok(self.shard(id).get(id).map(|e| e.subscription.clone()))
    }

    async fn list_by_customer(
        &self,
        customer: &CustomerId,
    ) -> Result<Vec<Subscription>, StoreError> {
        let ids = lock(&self.state.by_customer)
            .get(customer)
            .cloned()
            .unwrap_or_default();
        Ok(self.get_all(ids))
    }

    async fn list_by_partner(&self, partner: &MpnId) -> Result<Vec<Subscription>, StoreError> {
        let ids = lock(&self.state.by_partner)
            .get(partner)
            .cloned()
            .unwrap_or_default();
        // The index may run ahead of or behind a concurrent commit; the stored
        // subscription decides.
        let mut found = self.get_all(ids);
        found.retain(|s| current_partner(s) == Some(*partner));
        Ok(found)
    }

    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        let id = commit.next.id().clone();
        let mut shard = self.shard(&id);
        let Some(entry) = shard.get_mut(&id) else {
            return Err(StoreError::NotFound(id));
        };
        let actual = entry.subscription.version();
        if actual != commit.expected_version {
            return Err(StoreError::Conflict {
                subscription: id,
                expected: commit.expected_version,
                actual,
            });
        }
        let (before, after) = (
            current_partner(&entry.subscription),
            current_partner(&commit.next),
        );
        if before != after {
            let mut by_partner = lock(&self.state.by_partner);
            if let Some(ids) = before.and_then(|p| by_partner.get_mut(&p)) {
                ids.remove(&id);
            }
            if let Some(partner) = after {
                by_partner.entry(partner).or_default().insert(id.clone());
            }
        }
        {
            let mut outbox = lock(&self.state.outbox);
            for notification in commit.notifications {
                let position = outbox.next;
                outbox.next += 1;
                outbox.position.insert(notification.id.clone(), position);
                outbox.pending.insert(position, notification);
            }
        }
        entry.history.extend(commit.events);
        entry.subscription = commit.next;
        Ok(())
    }

    async fn history(&self, id: &SubscriptionId) -> Result<Vec<AssociationEvent>, StoreError> {
        Ok(self
            .shard(id)
            .get(id)
            .map(|e| e.history.clone())
            .unwrap_or_default())
    }

    async fn pending_notifications(&self, limit: usize) -> Result<Vec<Notification>, StoreError> {
        Ok(lock(&self.state.outbox)
            .pending
            .values()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn mark_delivered(&self, ids: &[NotificationId]) -> Result<(), StoreError> {
        let mut outbox = lock(&self.state.outbox);
        for id in ids {
            if let Some(position) = outbox.position.remove(id) {
                outbox.pending.remove(&position);
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
        lock(&self.state).sent.clone()
    }

    /// Makes the next `n` deliveries fail (replacing any earlier count).
    pub fn fail_next(&self, n: usize) {
        lock(&self.state).fail_next = n;
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        let mut state = lock(&self.state);
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
        *lock(&self.now) = at;
    }

    /// Moves the time by `by` (saturating at the limits of `OffsetDateTime`).
    pub fn advance(&self, by: Duration) {
        let mut now = lock(&self.now);
        *now = now.saturating_add(by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *lock(&self.now)
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
    fn a_stale_commit_is_a_conflict_and_changes_nothing() {
        block_on(async {
            let repo = InMemoryRepository::new();
            let sub = Subscription::new(
                SubscriptionId::new("s").unwrap(),
                CustomerId::new("c").unwrap(),
                CloudService::Azure,
                "n",
            );
            repo.insert(sub.clone()).await.unwrap();
            let partner = Partner::new(MpnId::parse("565380").unwrap(), "P")
                .enrolled_in(Program::OnlineServicesSell);
            let Ok(Transition::Changed { next, events }) = sub.associate(
                &partner,
                Program::OnlineServicesSell,
                datetime!(2026-01-01 0:00 UTC),
            ) else {
                panic!("expected a change")
            };
            let commit = Commit {
                expected_version: 0,
                next,
                events,
                notifications: Vec::new(),
            };
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
            assert_eq!(
                repo.list_by_partner(&partner.mpn_id()).await.unwrap().len(),
                1
            );
        });
    }
}
