//! The customer's portal flow: steps 1 to 9 of KB3185444, removal, and bulk.

use serde::{Deserialize, Serialize};

use super::{PorService, Receipt};
use crate::actor::{Access, Actor, Operation};
use crate::association::Transition;
use crate::check::{self, PartnerCheck, Verified};
use crate::error::Error;
use crate::id::{MpnId, SubscriptionId};
use crate::ports::{Clock, Notifier, Outbox, PartnerDirectory, Repository};
use crate::subscription::{PartnerOfRecord, Subscription};
use crate::trace;

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

impl<R: Repository + Outbox, D: PartnerDirectory, N: Notifier, C: Clock> PorService<R, D, N, C> {
    /// Steps 1-3: the actor's subscriptions with their partner of record, ordered by id.
    ///
    /// Every role of a customer sees the customer's subscriptions.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] for a partner or the billing system (which reads
    /// subscriptions by id); [`Error::Store`] when the repository fails.
    pub async fn subscriptions(&self, actor: &Actor) -> Result<Vec<Subscription>, Error> {
        trace::operation("subscriptions", None, Some(actor), async move {
            let customer = actor.acting_customer()?;
            Ok(self.repository.list_by_customer(customer).await?)
        })
        .await
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
        trace::operation("subscription", Some(id), Some(actor), async move {
            actor.may_attempt(Operation::View)?;
            self.read_authorized(actor, id, Access::View).await
        })
        .await
    }

    /// Steps 5-6, "Check ID": parses what the customer typed, looks the partner up and
    /// checks that it can be designated on this subscription.
    ///
    /// # Errors
    ///
    /// In this order: [`Error::Forbidden`] for a partner or the billing system;
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
        trace::operation(
            "check_partner",
            Some(subscription),
            Some(actor),
            async move {
                actor.may_attempt(Operation::ChangePartner)?;
                let stored = self.read_subscription(subscription).await?;
                let mpn_id = check::partner_to_look_up(actor, &stored, mpn_id)?;
                let found = self.look_up(mpn_id).await?;
                PartnerCheck::issue(&stored, mpn_id, found, self.program, self.clock.now())
            },
        )
        .await
    }

    /// Step 7, "Submit": designates the checked partner, replacing any other, and sends
    /// the emails. Submitting a check whose partner is already partner of record
    /// changes nothing and succeeds, whatever changed since the check (a double click,
    /// a retry after a lost response): `Receipt { changed: false, .. }`. That holds when
    /// the two clicks race, too: the one whose commit loses reads the subscription
    /// again, finds its partner on record, and answers so rather than
    /// [`Error::Conflict`].
    ///
    /// Nothing in `check` is trusted: the partner is looked up again and must be
    /// enrolled in the **service's** program.
    ///
    /// # Errors
    ///
    /// In this order: the authorization errors of [`check_partner`](Self::check_partner);
    /// then, unless the partner is already on record: [`Error::Conflict`] when the
    /// subscription changed since the check;
    /// [`Error::CheckExpired`] when the check is older than the check lifetime or dated
    /// in the future; [`Error::SubscriptionNotActive`]; [`Error::PartnerNotFound`] (or
    /// [`Error::Directory`]); [`Error::PartnerNotEnrolled`]; [`Error::Conflict`] when
    /// another change commits first; [`Error::Store`]. A failed delivery is not an
    /// error: see [`Receipt::notifications_pending`].
    pub async fn submit(&self, actor: &Actor, check: &PartnerCheck) -> Result<Receipt, Error> {
        trace::operation(
            "submit",
            Some(check.subscription()),
            Some(actor),
            async move {
                actor.may_attempt(Operation::ChangePartner)?;
                let stored = self.read_subscription(check.subscription()).await?;
                let now = self.clock.now();
                let mpn_id =
                    match check.verify(actor, &stored, self.program, now, self.check_ttl)? {
                        Verified::AlreadyOnRecord => return Ok(Receipt::unchanged(stored)),
                        Verified::LookUp(mpn_id) => mpn_id,
                    };
                let found = self.look_up(mpn_id).await?;
                let transition =
                    check::designate(&stored, mpn_id, found.as_ref(), self.program, now)?;
                let committed = self
                    .commit_and_deliver(stored, transition, found.as_ref(), None, actor.cause())
                    .await;
                // A double click whose twin committed first: the partner this check
                // asked for is on record.
                self.unless_done(committed, check.subscription(), |now_stored| {
                    let verified =
                        check.verify(actor, now_stored, self.program, now, self.check_ttl);
                    matches!(verified, Ok(Verified::AlreadyOnRecord))
                })
                .await
            },
        )
        .await
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
        trace::operation(
            "partner_of_record",
            Some(subscription),
            Some(actor),
            async move {
                let stored = self.subscription(actor, subscription).await?;
                Ok(stored.partner_of_record().cloned())
            },
        )
        .await
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
        trace::operation(
            "remove_partner",
            Some(subscription),
            Some(actor),
            self.remove(actor, subscription, Subscription::remove_partner),
        )
        .await
    }

    /// Removes the partner of record the actor saw at `version` (what a confirmation
    /// page showed: [`Subscription::version`]), as [`remove_partner`](Self::remove_partner),
    /// but only if the subscription has not changed since: a stale confirmation never
    /// removes a partner the actor did not see (someone replaced it meanwhile). With no
    /// partner of record it changes nothing and succeeds (a double click, even one
    /// whose clicks race): `Receipt { changed: false, .. }`. The rule is
    /// [`Subscription::remove_partner_seen`].
    ///
    /// # Errors
    ///
    /// The authorization errors of [`check_partner`](Self::check_partner); then, unless
    /// there is no partner of record: [`Error::Conflict`] when the subscription changed
    /// since `version`; [`Error::SubscriptionNotActive`]; [`Error::Directory`] when the
    /// removed partner's contact cannot be looked up; [`Error::Conflict`] when another
    /// change commits first; [`Error::Store`].
    pub async fn remove_partner_if_unchanged(
        &self,
        actor: &Actor,
        subscription: &SubscriptionId,
        version: u64,
    ) -> Result<Receipt, Error> {
        let decide = move |stored: &Subscription, now| stored.remove_partner_seen(version, now);
        trace::operation(
            "remove_partner_if_unchanged",
            Some(subscription),
            Some(actor),
            async move {
                let removed = self.remove(actor, subscription, decide).await;
                // A double click whose twin committed first: no partner is left.
                self.unless_done(removed, subscription, |now_stored| {
                    let decided = decide(now_stored, self.clock.now());
                    matches!(decided, Ok(Transition::Unchanged))
                })
                .await
            },
        )
        .await
    }

    /// A removal decided by `decide` on the subscription as read now.
    async fn remove(
        &self,
        actor: &Actor,
        subscription: &SubscriptionId,
        decide: impl Fn(&Subscription, time::OffsetDateTime) -> Result<Transition, Error>,
    ) -> Result<Receipt, Error> {
        actor.may_attempt(Operation::ChangePartner)?;
        let stored = self
            .read_authorized(actor, subscription, Access::Change)
            .await?;
        let now = self.clock.now();
        let transition = decide(&stored, now)?;
        self.commit_and_deliver(stored, transition, None, None, actor.cause())
            .await
    }

    /// `committed`, unless it is a conflict after which the subscription, read again,
    /// needs nothing more (`done`): a twin request (a double click) committed first,
    /// and this one answers "unchanged" as it would have after it. A re-read that fails
    /// or finds nothing answers the conflict.
    async fn unless_done(
        &self,
        committed: Result<Receipt, Error>,
        subscription: &SubscriptionId,
        done: impl Fn(&Subscription) -> bool,
    ) -> Result<Receipt, Error> {
        match committed {
            Err(conflict @ Error::Conflict { .. }) => match self.repository.get(subscription).await
            {
                Ok(Some(now_stored)) if done(&now_stored) => Ok(Receipt::unchanged(now_stored)),
                _ => Err(conflict),
            },
            other => other,
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
    /// partner or the billing system, [`Error::InvalidMpnId`]. Everything else is per subscription, in
    /// its outcome, exactly as [`check_partner`](Self::check_partner) and
    /// [`submit`](Self::submit) report it.
    pub async fn submit_many(
        &self,
        actor: &Actor,
        mpn_id: &str,
        ids: &[SubscriptionId],
        mode: BulkMode,
    ) -> Result<Vec<BulkOutcome>, Error> {
        trace::operation("submit_many", None, Some(actor), async move {
            actor.may_attempt(Operation::ChangePartner)?;
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
        })
        .await
    }
}
