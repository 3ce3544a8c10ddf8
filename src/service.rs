//! [`PorService`]: the customer's portal flow — list, check, submit, verify, remove —
//! over the ports, with a transactional outbox for the partner emails.
//!
//! The service is a thin async shell: it reads through the [`Repository`] and the
//! [`PartnerDirectory`], asks the pure rules ([`Actor::authorize`],
//! [`Subscription::associate`], [`Subscription::remove_partner`]) what to do, commits the
//! outcome with one compare-and-swap, then hands the commit's notifications to the
//! [`Notifier`].
//!
//! # Delivery guarantee
//!
//! Notifications are written to the outbox **in the same commit** as the change, so a
//! change is never without its emails and a failed commit sends none. Right after the
//! commit the service tries to deliver them; what fails stays pending, and
//! [`PorService::dispatch_pending`] retries it. A notification is marked delivered only
//! after [`Notifier::notify`] returned `Ok`, so delivery is *at least once*: a crash
//! between the two, or two dispatchers running at once, may deliver one twice, with the
//! same [`Notification::id`](crate::Notification::id).

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::actor::{Access, Actor};
use crate::association::{self, Transition};
use crate::attribution;
use crate::error::Error;
use crate::error::StoreError;
use crate::event::{AssociationEvent, Notification};
use crate::id::{MpnId, NotificationId, SubscriptionId};
use crate::partner::{Partner, Program};
use crate::ports::{Clock, Commit, Notifier, PartnerDirectory, Repository, SystemClock};
use crate::subscription::{PartnerOfRecord, Subscription};

/// How long a [`PartnerCheck`] may be submitted after it was made, by default.
pub const DEFAULT_CHECK_TTL: Duration = Duration::minutes(15);

/// The partner-of-record service: one method per portal step.
///
/// Build it over the host's ports (or the [`memory`](crate::memory) defaults), then
/// configure it with the `with_*` methods. See the [crate docs](crate) for the whole
/// flow.
///
/// # Examples
///
/// ```
/// use dpor::*;
/// use time::{Duration, macros::datetime};
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let repository = InMemoryRepository::new();
/// let contoso = CustomerId::new("contoso")?;
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, contoso.clone(), CloudService::Azure, "Azure plan");
/// repository.insert(sub).await?;
///
/// let service = PorService::new(repository, InMemoryDirectory::new(), RecordingNotifier::new())
///     .with_clock(ManualClock::new(datetime!(2026-01-05 10:00 UTC)))
///     .with_program(Program::OnlineServicesUsage)
///     .with_check_ttl(Duration::minutes(5));
///
/// assert_eq!(service.subscriptions(&Actor::global_admin(contoso)).await?.len(), 1);
/// // A partner never acts on a customer's subscriptions.
/// let partner = Actor::partner(MpnId::parse("565380")?);
/// assert!(matches!(service.subscriptions(&partner).await, Err(Error::Forbidden { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PorService<R, D, N, C = SystemClock> {
    repository: R,
    directory: D,
    notifier: N,
    clock: C,
    program: Program,
    check_ttl: Duration,
}

impl<R, D, N, C> fmt::Debug for PorService<R, D, N, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PorService")
            .field("program", &self.program)
            .field("check_ttl", &self.check_ttl)
            .finish_non_exhaustive()
    }
}

/// What "Check ID" found: the partner to confirm, and the state of the subscription it
/// was checked against. Pass it back to [`PorService::submit`].
///
/// A check is serializable so that a portal can round-trip it through a form, which
/// also makes it forgeable: `submit` re-verifies everything and trusts nothing in it
/// but the subscription id, the partner's MPN ID, the version and the time.
///
/// # Examples
///
/// ```
/// use dpor::*;
/// # use time::macros::datetime;
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// # let (contoso, sub) = (CustomerId::new("contoso")?, SubscriptionId::new("sub-1")?);
/// # let repository = InMemoryRepository::new();
/// # repository.insert(Subscription::new(sub.clone(), contoso.clone(), CloudService::Office365, "E3")).await?;
/// # let directory = InMemoryDirectory::new().with_partner(
/// #     Partner::new(MpnId::parse("565380")?, "Fabrikam").with_location("Seattle, US").enrolled_in(Program::OnlineServicesSell),
/// # );
/// # let notifier = RecordingNotifier::new();
/// # let service = PorService::new(repository, directory, notifier.clone())
/// #     .with_clock(ManualClock::new(datetime!(2026-01-05 10:00 UTC)));
/// # let admin = Actor::global_admin(contoso);
/// // `service` runs over the in-memory ports; `admin` is the global administrator of the
/// // customer that owns subscription `sub`; the directory lists partner 565380.
/// let check = service.check_partner(&admin, &sub, "565380").await?;
/// // What the portal shows before "Submit":
/// assert_eq!((check.partner().name(), check.partner().location()), ("Fabrikam", Some("Seattle, US")));
/// assert!(check.current().is_none()); // nobody to replace
/// assert_eq!((check.version(), check.checked_at()), (0, datetime!(2026-01-05 10:00 UTC)));
///
/// // A portal may round-trip the check through a form; `submit` re-verifies it.
/// let from_form: PartnerCheck = serde_json::from_str(&serde_json::to_string(&check)?)?;
/// assert!(service.submit(&admin, &from_form).await?.changed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerCheck {
    subscription: SubscriptionId,
    partner: Partner,
    program: Program,
    current: Option<PartnerOfRecord>,
    version: u64,
    #[serde(with = "crate::timestamp")]
    checked_at: OffsetDateTime,
}

impl PartnerCheck {
    /// The subscription checked against.
    pub fn subscription(&self) -> &SubscriptionId {
        &self.subscription
    }

    /// The partner found: its name and location are what the portal shows.
    pub fn partner(&self) -> &Partner {
        &self.partner
    }

    /// The program the partner would be designated for.
    pub fn program(&self) -> Program {
        self.program
    }

    /// The partner of record at the time of the check, if any (the one to be replaced).
    pub fn current(&self) -> Option<&PartnerOfRecord> {
        self.current.as_ref()
    }

    /// The subscription's version at the time of the check.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When the check was made.
    pub fn checked_at(&self) -> OffsetDateTime {
        self.checked_at
    }

    /// Whether submitting this check would change nothing (the partner is already
    /// partner of record for this program).
    pub fn is_current(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|c| c.is(self.partner.mpn_id(), self.program))
    }
}

/// What a change did: the subscription after it, its events, and what became of its
/// notifications.
///
/// # Examples
///
/// ```
/// use dpor::*;
/// # use time::macros::datetime;
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// # let (contoso, sub) = (CustomerId::new("contoso")?, SubscriptionId::new("sub-1")?);
/// # let repository = InMemoryRepository::new();
/// # repository.insert(Subscription::new(sub.clone(), contoso.clone(), CloudService::Office365, "E3")).await?;
/// # let directory = InMemoryDirectory::new().with_partner(
/// #     Partner::new(MpnId::parse("565380")?, "Fabrikam").with_location("Seattle, US").enrolled_in(Program::OnlineServicesSell),
/// # );
/// # let notifier = RecordingNotifier::new();
/// # let service = PorService::new(repository, directory, notifier.clone())
/// #     .with_clock(ManualClock::new(datetime!(2026-01-05 10:00 UTC)));
/// # let admin = Actor::global_admin(contoso);
/// // `service` runs over the in-memory ports; `admin` is the global administrator of the
/// // customer that owns subscription `sub`; the directory lists partner 565380.
/// let check = service.check_partner(&admin, &sub, "565380").await?;
/// let receipt = service.submit(&admin, &check).await?;
/// assert!(receipt.changed);
/// assert_eq!((receipt.subscription.version(), receipt.events.len()), (1, 1));
/// assert_eq!((receipt.notifications_delivered, receipt.notifications_pending), (1, 0));
///
/// // Submitting the current partner of record again changes nothing.
/// let again = service.check_partner(&admin, &sub, "565380").await?;
/// let receipt = service.submit(&admin, &again).await?;
/// assert!(!receipt.changed && receipt.events.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The subscription after the operation (unchanged when `changed` is false).
    pub subscription: Subscription,
    /// The events the operation committed (empty when `changed` is false).
    pub events: Vec<AssociationEvent>,
    /// Whether anything was committed.
    pub changed: bool,
    /// How many of this commit's notifications were delivered right away.
    pub notifications_delivered: usize,
    /// How many stay in the outbox for [`PorService::dispatch_pending`].
    pub notifications_pending: usize,
}

/// Whether [`PorService::submit_many`] changes anything.
///
/// ```
/// use dpor::*;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let repo = InMemoryRepository::new();
/// let contoso = CustomerId::new("contoso")?;
/// let ids = [SubscriptionId::new("sub-1")?, SubscriptionId::new("sub-2")?];
/// for id in &ids {
///     repo.insert(Subscription::new(id.clone(), contoso.clone(), CloudService::Office365, "E3")).await?;
/// }
/// let directory = InMemoryDirectory::new()
///     .with_partner(Partner::new(MpnId::parse("565380")?, "Fabrikam").enrolled_in(Program::OnlineServicesSell));
/// let service = PorService::new(repo, directory, RecordingNotifier::new());
/// let admin = Actor::global_admin(contoso);
///
/// // What would change: both. Nothing is written.
/// let preview = service.submit_many(&admin, "565380", &ids, BulkMode::DryRun).await?;
/// assert!(preview.iter().all(|o| matches!(o.result, Ok(true))));
/// assert!(service.partner_of_record(&admin, &ids[0]).await?.is_none());
///
/// // Apply: one outcome per subscription, each committed on its own.
/// let outcomes: Vec<BulkOutcome> = service.submit_many(&admin, "565380", &ids, BulkMode::Apply).await?;
/// assert_eq!(outcomes.len(), 2);
/// assert!(service.partner_of_record(&admin, &ids[1]).await?.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkMode {
    /// Check and submit each subscription.
    Apply,
    /// Check each subscription and report what would change; change nothing.
    DryRun,
}

/// What [`PorService::submit_many`] did (or would do) on one subscription.
///
/// Unlike the records, it is neither `Clone`, `PartialEq` nor serializable: it holds an
/// [`Error`], which carries the sources of backend failures. Match on `result`.
#[derive(Debug)]
pub struct BulkOutcome {
    /// The subscription.
    pub subscription: SubscriptionId,
    /// `Ok(true)` changed (or would change), `Ok(false)` already so, or why not.
    pub result: Result<bool, Error>,
}

/// What one [`PorService::dispatch_pending`] run did.
///
/// # Examples
///
/// ```
/// use dpor::*;
/// # use time::macros::datetime;
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// # let (contoso, sub) = (CustomerId::new("contoso")?, SubscriptionId::new("sub-1")?);
/// # let repository = InMemoryRepository::new();
/// # repository.insert(Subscription::new(sub.clone(), contoso.clone(), CloudService::Office365, "E3")).await?;
/// # let directory = InMemoryDirectory::new().with_partner(
/// #     Partner::new(MpnId::parse("565380")?, "Fabrikam").with_location("Seattle, US").enrolled_in(Program::OnlineServicesSell),
/// # );
/// # let notifier = RecordingNotifier::new();
/// # let service = PorService::new(repository, directory, notifier.clone())
/// #     .with_clock(ManualClock::new(datetime!(2026-01-05 10:00 UTC)));
/// # let admin = Actor::global_admin(contoso);
/// // `service` runs over the in-memory ports; `admin` is the global administrator of the
/// // customer that owns subscription `sub`; the directory lists partner 565380.
/// notifier.fail_next(1); // the mail server is down for the next delivery
/// let check = service.check_partner(&admin, &sub, "565380").await?;
/// let receipt = service.submit(&admin, &check).await?;
/// assert_eq!(receipt.notifications_pending, 1); // the change is made; the email waits
///
/// // Later, a periodic job retries the outbox.
/// let report = service.dispatch_pending(100).await?;
/// assert_eq!(report, DispatchReport { delivered: 1, failed: 0 });
/// assert_eq!(notifier.sent().len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchReport {
    /// Notifications delivered (and marked delivered, unless marking failed).
    pub delivered: usize,
    /// Notifications whose delivery failed; they stay pending.
    pub failed: usize,
}

impl<R: Repository, D: PartnerDirectory, N: Notifier> PorService<R, D, N> {
    /// A service over these ports, with the system clock, the Online Services Sell
    /// program and a 15-minute check lifetime.
    pub fn new(repository: R, directory: D, notifier: N) -> Self {
        PorService {
            repository,
            directory,
            notifier,
            clock: SystemClock,
            program: Program::OnlineServicesSell,
            check_ttl: DEFAULT_CHECK_TTL,
        }
    }
}

impl<R: Repository, D: PartnerDirectory, N: Notifier, C: Clock> PorService<R, D, N, C> {
    /// The same service reading the time from `clock` (a
    /// [`ManualClock`](crate::ManualClock) in tests).
    pub fn with_clock<C2: Clock>(self, clock: C2) -> PorService<R, D, N, C2> {
        PorService {
            repository: self.repository,
            directory: self.directory,
            notifier: self.notifier,
            clock,
            program: self.program,
            check_ttl: self.check_ttl,
        }
    }

    /// The same service designating partners for `program` (default
    /// [`Program::OnlineServicesSell`]). Partners must be enrolled in it.
    pub fn with_program(self, program: Program) -> Self {
        PorService { program, ..self }
    }

    /// The same service accepting checks up to `ttl` old at submit (default 15 minutes).
    pub fn with_check_ttl(self, ttl: Duration) -> Self {
        PorService {
            check_ttl: ttl,
            ..self
        }
    }

    /// The repository, for the host's own reads (and for tests).
    pub fn repository(&self) -> &R {
        &self.repository
    }

    /// Steps 1-3: the actor's subscriptions with their partner of record, ordered by id.
    ///
    /// Every role of a customer sees the customer's subscriptions.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] for a partner actor; [`Error::Store`] when the repository fails.
    pub async fn subscriptions(&self, actor: &Actor) -> Result<Vec<Subscription>, Error> {
        let customer = actor.require_customer()?;
        Ok(self.repository.list_by_customer(customer).await?)
    }

    /// One subscription, for any role of its customer.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] for a partner actor; [`Error::SubscriptionNotFound`] when it
    /// does not exist or belongs to another customer; [`Error::Store`].
    pub async fn subscription(
        &self,
        actor: &Actor,
        id: &SubscriptionId,
    ) -> Result<Subscription, Error> {
        self.load(actor, id, Access::View).await
    }

    /// Steps 5-6, "Check ID": parses what the customer typed, looks the partner up and
    /// checks that it can be designated on this subscription.
    ///
    /// # Errors
    ///
    /// In this order: [`Error::Forbidden`] for a partner actor;
    /// [`Error::SubscriptionNotFound`]; [`Error::Forbidden`] unless the actor is the
    /// customer's global administrator; [`Error::InvalidMpnId`];
    /// [`Error::SubscriptionNotActive`]; [`Error::PartnerNotFound`] (or
    /// [`Error::Directory`]); [`Error::PartnerNotEnrolled`]. [`Error::Store`] when the
    /// repository fails.
    pub async fn check_partner(
        &self,
        actor: &Actor,
        subscription: &SubscriptionId,
        mpn_id: &str,
    ) -> Result<PartnerCheck, Error> {
        let stored = self.load(actor, subscription, Access::Change).await?;
        let mpn_id = MpnId::parse(mpn_id)?;
        stored.require_active()?;
        let partner = self.find_partner(mpn_id).await?;
        association::require_enrolled(&partner, self.program)?;
        let now = self.clock.now();
        Ok(PartnerCheck {
            subscription: stored.id().clone(),
            partner,
            program: self.program,
            current: stored.partner_of_record().cloned(),
            version: stored.version(),
            checked_at: now,
        })
    }

    /// Step 7, "Submit": designates the checked partner, replacing any other, and sends
    /// the emails. Submitting the current partner of record again changes nothing.
    ///
    /// Nothing in `check` is trusted: the partner is looked up again and must be
    /// enrolled in the **service's** program.
    ///
    /// # Errors
    ///
    /// In this order: the authorization errors of [`check_partner`](Self::check_partner);
    /// [`Error::Conflict`] when the subscription changed since the check;
    /// [`Error::CheckExpired`] when the check is older than the check lifetime or dated
    /// in the future; [`Error::SubscriptionNotActive`]; [`Error::PartnerNotFound`] (or
    /// [`Error::Directory`]); [`Error::PartnerNotEnrolled`]; [`Error::Conflict`] when
    /// another change commits first; [`Error::Store`]. A failed delivery is not an
    /// error: see [`Receipt::notifications_pending`].
    pub async fn submit(&self, actor: &Actor, check: &PartnerCheck) -> Result<Receipt, Error> {
        let stored = self
            .load(actor, &check.subscription, Access::Change)
            .await?;
        if stored.version() != check.version {
            return Err(Error::Conflict {
                subscription: stored.id().clone(),
                expected: check.version,
                actual: stored.version(),
            });
        }
        let now = self.clock.now();
        if check.checked_at > now || now - check.checked_at > self.check_ttl {
            return Err(Error::CheckExpired {
                checked_at: check.checked_at,
            });
        }
        stored.require_active()?;
        let partner = self.find_partner(check.partner.mpn_id()).await?;
        let transition = stored.associate(&partner, self.program, now)?;
        self.apply(stored, transition, Some(&partner)).await
    }

    /// Step 8, "Edit partner of record": the current partner of record, for any role of
    /// the customer.
    ///
    /// # Errors
    ///
    /// As [`subscription`](Self::subscription).
    pub async fn partner_of_record(
        &self,
        actor: &Actor,
        subscription: &SubscriptionId,
    ) -> Result<Option<PartnerOfRecord>, Error> {
        let stored = self.load(actor, subscription, Access::View).await?;
        Ok(stored.partner_of_record().cloned())
    }

    /// Removes the partner of record (the customer deletes the MPN ID); the partner is
    /// told.
    ///
    /// # Errors
    ///
    /// The authorization errors of [`check_partner`](Self::check_partner); then
    /// [`Error::SubscriptionNotActive`]; [`Error::NoPartnerOfRecord`]; [`Error::Directory`]
    /// when the removed partner's contact cannot be looked up; [`Error::Conflict`] when
    /// another change commits first; [`Error::Store`].
    pub async fn remove_partner(
        &self,
        actor: &Actor,
        subscription: &SubscriptionId,
    ) -> Result<Receipt, Error> {
        let stored = self.load(actor, subscription, Access::Change).await?;
        let transition = stored.remove_partner(self.clock.now())?;
        self.apply(stored, transition, None).await
    }

    /// Every event of the subscription (partner changes and lifecycle), ordered by
    /// sequence: for any role of the customer, and for the partner that is its current
    /// partner of record (a partner-side read).
    ///
    /// # Errors
    ///
    /// [`Error::SubscriptionNotFound`] when it does not exist or is hidden from the
    /// actor (another customer's, or a partner that is not its partner of record);
    /// [`Error::Store`].
    pub async fn history(
        &self,
        actor: &Actor,
        subscription: &SubscriptionId,
    ) -> Result<Vec<AssociationEvent>, Error> {
        let stored = self.load_shared(actor, subscription, Access::View).await?;
        Ok(self.repository.history(stored.id()).await?)
    }

    /// Who was partner of record of the subscription at `at`: its history replayed up
    /// to that instant (see [`attribution::partner_of_record_at`], and
    /// [`attribution::periods`] for the time that counted); for the same actors as
    /// [`history`](Self::history).
    ///
    /// # Errors
    ///
    /// As [`history`](Self::history).
    pub async fn partner_of_record_at(
        &self,
        actor: &Actor,
        id: &SubscriptionId,
        at: OffsetDateTime,
    ) -> Result<Option<MpnId>, Error> {
        let history = self.history(actor, id).await?;
        Ok(attribution::partner_of_record_at(&history, at))
    }

    /// The partner side: the subscriptions where the acting partner is partner of
    /// record now, ordered by id (cancelled ones included, with their status: the
    /// partner of record stays on a cancelled subscription's record).
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] for a customer actor; [`Error::Store`].
    pub async fn partner_portfolio(&self, actor: &Actor) -> Result<Vec<Subscription>, Error> {
        match actor {
            Actor::Partner { mpn_id } => Ok(self.repository.list_by_partner(mpn_id).await?),
            Actor::Customer { .. } => Err(Error::Forbidden {
                reason: "the partner portfolio is for partners; customers list their \
                         subscriptions"
                    .to_owned(),
            }),
        }
    }

    /// Designates one partner on many subscriptions of the customer in one call: one
    /// [`BulkOutcome`] per id, in order. Each subscription is checked and submitted on
    /// its own, atomically; a failure on one neither undoes nor blocks the others.
    /// [`BulkMode::DryRun`] only checks, and reports what would change.
    ///
    /// # Errors
    ///
    /// For the whole call, before anything is read: [`Error::Forbidden`] for a
    /// partner actor, [`Error::InvalidMpnId`]. Everything else is per subscription, in
    /// its outcome, exactly as [`check_partner`](Self::check_partner) and
    /// [`submit`](Self::submit) report it.
    pub async fn submit_many(
        &self,
        actor: &Actor,
        mpn_id: &str,
        ids: &[SubscriptionId],
        mode: BulkMode,
    ) -> Result<Vec<BulkOutcome>, Error> {
        actor.require_customer()?;
        let mpn_id = MpnId::parse(mpn_id)?;
        let mut outcomes = Vec::with_capacity(ids.len());
        for id in ids {
            let result = match self.check_partner(actor, id, mpn_id.as_str()).await {
                Ok(check) if mode == BulkMode::DryRun => Ok(!check.is_current()),
                Ok(check) => self.submit(actor, &check).await.map(|r| r.changed),
                Err(error) => Err(error),
            };
            outcomes.push(BulkOutcome {
                subscription: id.clone(),
                result,
            });
        }
        Ok(outcomes)
    }

    /// Suspends the subscription (billing side): its partner of record stays, its
    /// attribution pauses, and no partner-of-record change is possible until
    /// [`reactivate`](Self::reactivate). Suspending a suspended one changes nothing.
    ///
    /// # Errors
    ///
    /// In this order: [`Error::Forbidden`] for a partner actor;
    /// [`Error::SubscriptionNotFound`] when it does not exist or is another customer's;
    /// [`Error::Forbidden`] unless the actor is the owning customer's global or billing
    /// administrator; [`Error::SubscriptionCancelled`]; [`Error::Conflict`] when another
    /// change commits first; [`Error::Store`].
    pub async fn suspend(&self, actor: &Actor, id: &SubscriptionId) -> Result<Receipt, Error> {
        self.change_lifecycle(actor, id, Subscription::suspend)
            .await
    }

    /// Reactivates a suspended subscription (billing side): attribution resumes.
    ///
    /// # Errors
    ///
    /// As [`suspend`](Self::suspend).
    pub async fn reactivate(&self, actor: &Actor, id: &SubscriptionId) -> Result<Receipt, Error> {
        self.change_lifecycle(actor, id, Subscription::reactivate)
            .await
    }

    /// Cancels the subscription for good (billing side): the partner of record stays on
    /// the record, frozen; its attribution ends. Cancelling twice changes nothing.
    ///
    /// # Errors
    ///
    /// As [`suspend`](Self::suspend), but never [`Error::SubscriptionCancelled`].
    pub async fn cancel(&self, actor: &Actor, id: &SubscriptionId) -> Result<Receipt, Error> {
        self.change_lifecycle(actor, id, Subscription::cancel).await
    }

    /// Moves the subscription to another commerce platform as `new_id` (billing side).
    /// The new subscription starts with **no** partner of record, as when an Enterprise
    /// Agreement subscription moves to modern commerce; the old one removes its partner
    /// (who is notified) and ends. The receipt is the old subscription's.
    ///
    /// The new subscription is inserted first, then the old one's change committed. If
    /// the commit fails, the new subscription stays as inserted (untouched: version 0,
    /// no partner of record), and calling `migrate` again with the same ids takes it
    /// over and completes the move. An existing `new_id` that is anything but exactly
    /// that subscription is refused; ids of new subscriptions come from the host's
    /// billing system, which knows them.
    ///
    /// # Errors
    ///
    /// As [`suspend`](Self::suspend); [`Error::SubscriptionAlreadyExists`] when `new_id`
    /// is taken (nothing changed); [`Error::Directory`] when the removed partner's
    /// contact cannot be looked up.
    pub async fn migrate(
        &self,
        actor: &Actor,
        id: &SubscriptionId,
        new_id: SubscriptionId,
    ) -> Result<Receipt, Error> {
        let stored = self.load_lifecycle(actor, id).await?;
        let (transition, migrated) = stored.migrate(new_id, self.clock.now())?;
        match self.repository.insert(migrated.clone()).await {
            Err(StoreError::AlreadyExists(new_id)) => {
                let existing = self.repository.get(&new_id).await?;
                if existing.as_ref() != Some(&migrated) {
                    return Err(Error::SubscriptionAlreadyExists(new_id));
                }
            }
            other => other?,
        }
        self.apply(stored, transition, None).await
    }

    /// Delivers up to `limit` pending notifications, oldest first, and marks the
    /// delivered ones. Run it from a periodic job; it needs no actor.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the outbox cannot be read or the deliveries cannot be
    /// marked (they will then be delivered again: at least once).
    pub async fn dispatch_pending(&self, limit: usize) -> Result<DispatchReport, Error> {
        let pending = self.repository.pending_notifications(limit).await?;
        let delivered = self.deliver(&pending).await;
        self.repository.mark_delivered(&delivered).await?;
        Ok(DispatchReport {
            delivered: delivered.len(),
            failed: pending.len() - delivered.len(),
        })
    }

    /// Reads a subscription for a customer-side operation: a partner is refused before
    /// anything is read; then `actor` needs `needed` on it.
    async fn load(
        &self,
        actor: &Actor,
        id: &SubscriptionId,
        needed: Access,
    ) -> Result<Subscription, Error> {
        actor.require_customer()?;
        self.load_shared(actor, id, needed).await
    }

    /// Reads a subscription for an operation partners may use too (the partner-side
    /// reads): `actor` needs `needed` on it.
    async fn load_shared(
        &self,
        actor: &Actor,
        id: &SubscriptionId,
        needed: Access,
    ) -> Result<Subscription, Error> {
        let stored = self.read(id).await?;
        actor.authorize(&stored, needed)?;
        Ok(stored)
    }

    /// A lifecycle change: authorized for the billing side, decided by `step`,
    /// committed like any other.
    async fn change_lifecycle(
        &self,
        actor: &Actor,
        id: &SubscriptionId,
        step: fn(&Subscription, OffsetDateTime) -> Result<Transition, Error>,
    ) -> Result<Receipt, Error> {
        let stored = self.load_lifecycle(actor, id).await?;
        let transition = step(&stored, self.clock.now())?;
        self.apply(stored, transition, None).await
    }

    /// Reads a subscription for a lifecycle operation (the billing side).
    async fn load_lifecycle(
        &self,
        actor: &Actor,
        id: &SubscriptionId,
    ) -> Result<Subscription, Error> {
        actor.require_customer()?;
        let stored = self.read(id).await?;
        actor.authorize_lifecycle(&stored)?;
        Ok(stored)
    }

    async fn read(&self, id: &SubscriptionId) -> Result<Subscription, Error> {
        self.repository
            .get(id)
            .await?
            .ok_or_else(|| Error::SubscriptionNotFound(id.clone()))
    }

    async fn find_partner(&self, mpn_id: MpnId) -> Result<Partner, Error> {
        self.directory
            .lookup(mpn_id)
            .await?
            .ok_or(Error::PartnerNotFound(mpn_id))
    }

    /// Commits `transition` of `stored` with its notifications, then delivers them.
    /// `known` is a partner already looked up, whose contact need not be fetched again.
    async fn apply(
        &self,
        stored: Subscription,
        transition: Transition,
        known: Option<&Partner>,
    ) -> Result<Receipt, Error> {
        let (next, events) = match transition {
            Transition::Unchanged => {
                return Ok(Receipt {
                    subscription: stored,
                    events: Vec::new(),
                    changed: false,
                    notifications_delivered: 0,
                    notifications_pending: 0,
                });
            }
            Transition::Changed { next, events } => (next, events),
        };
        let mut notifications = Vec::with_capacity(events.len());
        for event in &events {
            let Some((partner, _)) = event.kind.notice() else {
                continue;
            };
            let contact = match known.filter(|p| p.mpn_id() == partner) {
                Some(p) => p.contact_email().map(str::to_owned),
                None => self
                    .directory
                    .lookup(partner)
                    .await?
                    .and_then(|p| p.contact_email().map(str::to_owned)),
            };
            notifications.extend(Notification::for_event(event, next.service(), contact));
        }
        self.repository
            .commit(Commit {
                expected_version: stored.version(),
                next: next.clone(),
                events: events.clone(),
                notifications: notifications.clone(),
            })
            .await?;
        let delivered = self.deliver(&notifications).await;
        // The change is committed: failing to mark the deliveries only means they are
        // delivered again by dispatch_pending (at least once), so it is not an error.
        let _ = self.repository.mark_delivered(&delivered).await;
        Ok(Receipt {
            subscription: next,
            events,
            changed: true,
            notifications_delivered: delivered.len(),
            notifications_pending: notifications.len() - delivered.len(),
        })
    }

    /// Tries each notification once; returns the ids of those delivered.
    async fn deliver(&self, notifications: &[Notification]) -> Vec<NotificationId> {
        let mut delivered = Vec::with_capacity(notifications.len());
        for notification in notifications {
            if self.notifier.notify(notification).await.is_ok() {
                delivered.push(notification.id.clone());
            }
        }
        delivered
    }
}
