//! [`PorService`]: the thin async shell that runs the pure rules over the ports.
//!
//! Every method reads what it needs through the [`Repository`] and the
//! [`PartnerDirectory`], hands the values to one pure decision (the rules live in
//! [`actor`](crate::actor), [`check`](crate::check) and
//! [`association`](crate::association)), commits the outcome with one compare-and-swap,
//! and delivers the commit's notifications through the [`Notifier`]. The methods are
//! grouped by whom they serve:
//!
//! - `customer.rs`: the customer's portal flow (list, check, submit, verify, remove,
//!   bulk);
//! - `partner_side.rs`: history and attribution, which the partner of record may read
//!   too, and the partner's portfolio;
//! - `lifecycle.rs`: suspend, reactivate, cancel and migrate, for the billing side;
//! - `outbox.rs`: the notifications of a commit, their delivery, and
//!   [`PorService::dispatch_pending`].
//!
//! The delivery guarantee is stated once, in the crate docs ("Guarantees").

use std::fmt;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use time::Duration;

use crate::actor::{Access, Actor};
use crate::association::Transition;
use crate::check::DEFAULT_CHECK_TTL;
use crate::delivery::DeliveryPolicy;
use crate::error::{DirectoryError, Error};
use crate::event::{AssociationEvent, Cause};
use crate::id::{MpnId, NotificationId, SubscriptionId};
use crate::partner::{Partner, Program};
use crate::ports::{Clock, Commit, Notifier, Outbox, PartnerDirectory, Repository, SystemClock};
use crate::subscription::Subscription;

mod changes;
mod customer;
mod lifecycle;
mod outbox;
mod partner_side;

pub use crate::check::PartnerCheck;
pub use customer::{BulkMode, BulkOutcome};
pub use outbox::DispatchReport;

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
    delivery: DeliveryPolicy,
}

impl<R, D, N, C> fmt::Debug for PorService<R, D, N, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PorService")
            .field("program", &self.program)
            .field("check_ttl", &self.check_ttl)
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
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
/// # let dpor::doc_fixture::Fixture { service, notifier, admin, sub, .. } = dpor::doc_fixture::fabrikam().await?;
/// // `service` runs over the in-memory ports, its clock at 2026-01-05 10:00 UTC; `admin`
/// // is the global administrator of the customer that owns subscription `sub`; the
/// // directory lists partner 565380 (Fabrikam, Seattle); `notifier` records the emails.
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

impl<R: Repository + Outbox, D: PartnerDirectory, N: Notifier> PorService<R, D, N> {
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
            delivery: DeliveryPolicy::default(),
        }
    }
}

impl<R: Repository + Outbox, D: PartnerDirectory, N: Notifier, C: Clock> PorService<R, D, N, C> {
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
            delivery: self.delivery,
        }
    }

    /// The same service designating partners for `program` (default
    /// [`Program::OnlineServicesSell`]). Partners must be enrolled in it.
    pub fn with_program(self, program: Program) -> Self {
        PorService { program, ..self }
    }

    /// The same service accepting checks up to `ttl` old at submit (default 15 minutes).
    /// A negative `ttl` is taken as zero: a check can then be submitted only at the
    /// instant it was made (with a [`ManualClock`](crate::ManualClock) that has not
    /// moved), and otherwise answers [`Error::CheckExpired`].
    pub fn with_check_ttl(self, ttl: Duration) -> Self {
        PorService {
            check_ttl: ttl.max(Duration::ZERO),
            ..self
        }
    }

    /// The same service delivering by `policy` (retries, dead letters, claims; default
    /// [`DeliveryPolicy::default`]). A negative lease is taken as zero.
    pub fn with_delivery_policy(self, policy: DeliveryPolicy) -> Self {
        PorService {
            delivery: DeliveryPolicy {
                lease: policy.lease.max(Duration::ZERO),
                ..policy
            },
            ..self
        }
    }

    /// The repository, for the host's own reads (and for tests).
    pub fn repository(&self) -> &R {
        &self.repository
    }

    /// The clock the service reads, for a host that decides with the pure rules what
    /// the service would (a portal that asks before it offers a button).
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Reads a subscription, or [`Error::SubscriptionNotFound`].
    async fn read_subscription(&self, id: &SubscriptionId) -> Result<Subscription, Error> {
        self.repository
            .get(id)
            .await?
            .ok_or_else(|| Error::SubscriptionNotFound(id.clone()))
    }

    /// Looks up `mpn_id`, the partner to check or designate. A partner whose text the
    /// records could not keep ([`Partner::check_text`]) is the directory's fault,
    /// answered as [`Error::Directory`] before anything is decided: a store would refuse
    /// the record that holds it (the SQL stores as a failed write, the in-memory store
    /// not at all). A partner being told of a removal is looked up for its address only
    /// (see `usable_contact`).
    async fn look_up(&self, mpn_id: MpnId) -> Result<Option<Partner>, Error> {
        let found = self.directory.lookup(mpn_id).await?;
        if let Some(partner) = &found {
            partner.check_text().map_err(|e| {
                DirectoryError::new(format!(
                    "the directory's record of partner {mpn_id} cannot be kept: {e}"
                ))
            })?;
        }
        Ok(found)
    }

    /// Reads a subscription and checks that `actor` has `needed` on it
    /// ([`Actor::authorize`]).
    async fn read_authorized(
        &self,
        actor: &Actor,
        id: &SubscriptionId,
        needed: Access,
    ) -> Result<Subscription, Error> {
        let stored = self.read_subscription(id).await?;
        actor.authorize(&stored, needed)?;
        Ok(stored)
    }

    /// Commits `transition` of `stored` with its notifications (and `create`, a
    /// subscription to insert in the same transaction), its events recording `cause`,
    /// then delivers them. `known` is
    /// a partner already looked up, whose contact need not be fetched again.
    ///
    /// Its future is boxed: it is most of a changing operation's state (the records
    /// before and after, the notifications, the deliveries: about 2 KB), and a host
    /// moves an operation's future several times (into its runtime, into a task).
    /// Boxed, `submit`'s future is 360 bytes instead of 2.4 KB, for one allocation
    /// (issue 15's profile: the moves were a tenth of an in-memory check + submit).
    fn commit_and_deliver<'a>(
        &'a self,
        stored: Subscription,
        transition: Transition,
        known: Option<&'a Partner>,
        create: Option<Subscription>,
        cause: Cause,
    ) -> Pin<Box<impl Future<Output = Result<Receipt, Error>> + 'a>> {
        Box::pin(async move {
            let (next, mut events) = match transition {
                Transition::Unchanged => return Ok(Receipt::unchanged(stored)),
                Transition::Changed { next, events } => (next, events),
            };
            // The decision is the pure core's; who asked for it is known only here.
            for event in &mut events {
                event.caused_by = cause.clone();
            }
            let expected_version = stored.version();
            drop(stored);
            self.commit_changed(expected_version, next, events, known, create)
                .await
        })
    }

    /// [`commit_and_deliver`](Self::commit_and_deliver) of a change.
    async fn commit_changed(
        &self,
        expected_version: u64,
        next: Subscription,
        events: Vec<AssociationEvent>,
        known: Option<&Partner>,
        create: Option<Subscription>,
    ) -> Result<Receipt, Error> {
        let notifications = self.notifications_for(&next, &events, known).await?;
        // Delivery needs only the ids: the notifications themselves move into the commit,
        // and the claimed ones come back from it.
        let ids: Vec<NotificationId> = notifications.iter().map(|n| n.id.clone()).collect();
        let commit = Commit {
            expected_version,
            next: next.clone(),
            events: events.clone(),
            notifications,
            create,
        };
        // The lease runs from now, not from the decision: the lookups since then must not
        // eat into it. A wait for the store does; a claim that comes back after its
        // lease sends nothing (`DeliveryPolicy::may_start_send`).
        let now = self.clock.now();
        let claimed = self
            .repository
            .commit_and_claim(commit, now, self.delivery.lease)
            .await?;
        let written = ids.len();
        let delivered = self.deliver_committed(claimed, now, ids).await;
        Ok(Receipt {
            subscription: next,
            events,
            changed: true,
            notifications_delivered: delivered,
            notifications_pending: written.saturating_sub(delivered),
        })
    }
}

impl Receipt {
    /// The receipt of an operation that changed nothing.
    fn unchanged(subscription: Subscription) -> Self {
        Receipt {
            subscription,
            events: Vec::new(),
            changed: false,
            notifications_delivered: 0,
            notifications_pending: 0,
        }
    }
}
