//! The subscription's lifecycle, for the billing side: suspend, reactivate, cancel and
//! migrate.

use time::OffsetDateTime;

use super::{PorService, Receipt};
use crate::actor::{Actor, LifecycleChange, Operation};
use crate::association::Transition;
use crate::error::Error;
use crate::id::SubscriptionId;
use crate::ports::{Clock, Notifier, Outbox, PartnerDirectory, Repository};
use crate::subscription::Subscription;
use crate::trace;

impl<R: Repository + Outbox, D: PartnerDirectory, N: Notifier, C: Clock> PorService<R, D, N, C> {
    /// Suspends the subscription: its partner of record stays, its attribution pauses,
    /// and no partner-of-record change is possible until
    /// [`reactivate`](Self::reactivate). Suspending a suspended one changes nothing.
    /// For the host's billing system ([`Actor::BillingSystem`]) only.
    ///
    /// # Errors
    ///
    /// In this order: [`Error::Forbidden`] for anyone but the billing system, before
    /// anything is read; [`Error::SubscriptionNotFound`]; [`Error::SubscriptionCancelled`];
    /// [`Error::Conflict`] when another change commits first; [`Error::Store`].
    pub async fn suspend(&self, actor: &Actor, id: &SubscriptionId) -> Result<Receipt, Error> {
        trace::operation("suspend", Some(id), Some(actor), async move {
            self.change_lifecycle(actor, id, LifecycleChange::Suspend, Subscription::suspend)
                .await
        })
        .await
    }

    /// Reactivates a suspended subscription: attribution resumes. For the billing
    /// system only.
    ///
    /// # Errors
    ///
    /// As [`suspend`](Self::suspend).
    pub async fn reactivate(&self, actor: &Actor, id: &SubscriptionId) -> Result<Receipt, Error> {
        trace::operation("reactivate", Some(id), Some(actor), async move {
            self.change_lifecycle(
                actor,
                id,
                LifecycleChange::Reactivate,
                Subscription::reactivate,
            )
            .await
        })
        .await
    }

    /// Cancels the subscription for good: the partner of record stays on the record,
    /// frozen; its attribution ends. Cancelling twice changes nothing. For the billing
    /// system, or the owning customer's global or billing administrator.
    ///
    /// # Errors
    ///
    /// In this order: [`Error::Forbidden`] for a partner, before anything is read;
    /// [`Error::SubscriptionNotFound`] when it does not exist or is another customer's;
    /// [`Error::Forbidden`] for another role; [`Error::Conflict`] when another change
    /// commits first; [`Error::Store`].
    pub async fn cancel(&self, actor: &Actor, id: &SubscriptionId) -> Result<Receipt, Error> {
        trace::operation("cancel", Some(id), Some(actor), async move {
            self.change_lifecycle(actor, id, LifecycleChange::Cancel, Subscription::cancel)
                .await
        })
        .await
    }

    /// Moves the subscription to another commerce platform as `new_id`. The new
    /// subscription starts with **no** partner of record, as when an Enterprise
    /// Agreement subscription moves to modern commerce; the old one removes its partner
    /// (who is notified) and ends. The receipt is the old subscription's. For the
    /// billing system only: a person is refused before anything is read, so that nobody
    /// learns through it whether an id exists.
    ///
    /// One commit: the old subscription's change and the new subscription are written
    /// together, or nothing is.
    ///
    /// # Errors
    ///
    /// As [`suspend`](Self::suspend); [`Error::SubscriptionAlreadyExists`] when `new_id`
    /// is taken; [`Error::Directory`] when the removed partner's contact cannot be
    /// looked up. On every error nothing is written.
    pub async fn migrate(
        &self,
        actor: &Actor,
        id: &SubscriptionId,
        new_id: SubscriptionId,
    ) -> Result<Receipt, Error> {
        trace::operation("migrate", Some(id), Some(actor), async move {
            let stored = self
                .read_for_lifecycle(actor, id, LifecycleChange::Migrate)
                .await?;
            let (transition, migrated) = stored.migrate(new_id, self.clock.now())?;
            self.commit_and_deliver(stored, transition, None, Some(migrated), actor.cause())
                .await
        })
        .await
    }

    /// A lifecycle change: authorized for the billing side, decided by `step`,
    /// committed like any other.
    async fn change_lifecycle(
        &self,
        actor: &Actor,
        id: &SubscriptionId,
        change: LifecycleChange,
        step: fn(&Subscription, OffsetDateTime) -> Result<Transition, Error>,
    ) -> Result<Receipt, Error> {
        let stored = self.read_for_lifecycle(actor, id, change).await?;
        let transition = step(&stored, self.clock.now())?;
        self.commit_and_deliver(stored, transition, None, None, actor.cause())
            .await
    }

    /// Reads a subscription that `actor` may make `change` to: refusals that need no
    /// subscription come before anything is read ([`Actor::may_attempt`]), the rest
    /// after ([`Actor::authorize_lifecycle`]).
    async fn read_for_lifecycle(
        &self,
        actor: &Actor,
        id: &SubscriptionId,
        change: LifecycleChange,
    ) -> Result<Subscription, Error> {
        actor.may_attempt(Operation::Lifecycle(change))?;
        let stored = self.read_subscription(id).await?;
        actor.authorize_lifecycle(&stored, change)?;
        Ok(stored)
    }
}
