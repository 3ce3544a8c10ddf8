//! The reads a partner may make too: a subscription's history and who was partner of
//! record when (for the customer, and for the subscription's current partner of
//! record), and the partner's own portfolio.

use time::OffsetDateTime;

use super::PorService;
use crate::actor::{Access, Actor, Operation};
use crate::attribution;
use crate::error::Error;
use crate::event::AssociationEvent;
use crate::id::{MpnId, SubscriptionId};
use crate::ports::{Clock, Notifier, Outbox, PartnerDirectory, Repository};
use crate::subscription::Subscription;
use crate::trace;

impl<R: Repository + Outbox, D: PartnerDirectory, N: Notifier, C: Clock> PorService<R, D, N, C> {
    /// Every event of the subscription (partner changes and lifecycle), ordered by
    /// sequence: for any role of the customer, and for the partner that is its current
    /// partner of record (a partner-side read). Each event says who caused it
    /// ([`AssociationEvent::caused_by`]); partners and delegated administrators see the
    /// role, not which of the customer's users it was ([`Actor::sees_users`]).
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
        trace::operation("history", Some(subscription), Some(actor), async move {
            actor.may_attempt(Operation::ViewHistory)?;
            let stored = self
                .read_authorized(actor, subscription, Access::View)
                .await?;
            let mut history = self.repository.history(stored.id()).await?;
            if !actor.sees_users() {
                for event in &mut history {
                    event.caused_by = std::mem::take(&mut event.caused_by).without_user();
                }
            }
            Ok(history)
        })
        .await
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
        trace::operation("partner_of_record_at", Some(id), Some(actor), async move {
            let history = self.history(actor, id).await?;
            Ok(attribution::partner_of_record_at(&history, at))
        })
        .await
    }

    /// The partner side: the subscriptions where the acting partner is partner of
    /// record now, ordered by id (cancelled ones included, with their status: the
    /// partner of record stays on a cancelled subscription's record).
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] for a customer or the billing system; [`Error::Store`].
    pub async fn partner_portfolio(&self, actor: &Actor) -> Result<Vec<Subscription>, Error> {
        trace::operation("partner_portfolio", None, Some(actor), async move {
            let partner = actor.acting_partner()?;
            Ok(self.repository.list_by_partner(&partner).await?)
        })
        .await
    }
}
