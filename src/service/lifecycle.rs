//! The subscription's lifecycle, for the billing side: suspend, reactivate, cancel and
//! migrate.

use time::OffsetDateTime;

use super::{PorService, Receipt};
use crate::actor::Actor;
use crate::association::Transition;
use crate::error::{Error, StoreError};
use crate::id::SubscriptionId;
use crate::ports::{Clock, Notifier, PartnerDirectory, Repository};
use crate::subscription::Subscription;

impl<R: Repository, D: PartnerDirectory, N: Notifier, C: Clock> PorService<R, D, N, C> {
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
        let stored = self.read_for_lifecycle(actor, id).await?;
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
        self.commit_and_deliver(stored, transition, None).await
    }

    /// A lifecycle change: authorized for the billing side, decided by `step`,
    /// committed like any other.
    async fn change_lifecycle(
        &self,
        actor: &Actor,
        id: &SubscriptionId,
        step: fn(&Subscription, OffsetDateTime) -> Result<Transition, Error>,
    ) -> Result<Receipt, Error> {
        let stored = self.read_for_lifecycle(actor, id).await?;
        let transition = step(&stored, self.clock.now())?;
        self.commit_and_deliver(stored, transition, None).await
    }

    /// Reads a subscription that `actor` may manage the lifecycle of
    /// ([`Actor::authorize_lifecycle`]); a partner is refused before anything is read.
    async fn read_for_lifecycle(
        &self,
        actor: &Actor,
        id: &SubscriptionId,
    ) -> Result<Subscription, Error> {
        actor.acting_customer()?;
        let stored = self.read_subscription(id).await?;
        actor.authorize_lifecycle(&stored)?;
        Ok(stored)
    }
}
