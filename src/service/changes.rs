//! The change feed, for the billing side: every subscription's events in commit order.

use super::PorService;
use crate::actor::{Actor, Operation};
use crate::error::Error;
use crate::feed::{Change, Cursor};
use crate::ports::{Clock, Notifier, Outbox, PartnerDirectory, Repository};
use crate::trace;

impl<R: Repository + Outbox, D: PartnerDirectory, N: Notifier, C: Clock> PorService<R, D, N, C> {
    /// The events of every subscription after `after` (from the first when `None`), in
    /// the feed's order (see [`feed`](crate::feed)), at most `limit` (and at most
    /// [`MAX_CHANGES`](crate::feed::MAX_CHANGES)): for systems downstream (incentives,
    /// a partner CRM, analytics). Partner changes and lifecycle events alike, each with
    /// who caused it. For the host's billing system ([`Actor::BillingSystem`]) only.
    ///
    /// Store the [`cursor`](Change::cursor) of the last change you processed and pass it
    /// as `after` to resume, after a restart too: you see every event exactly once,
    /// each subscription's in sequence order, even while others commit (see
    /// [`Repository::changes`]). An empty answer means nothing more is ready (on
    /// PostgreSQL, an older transaction still running holds the feed back); ask again
    /// later.
    ///
    /// The events are the customer's: [`Cause::Customer`](crate::Cause::Customer) names
    /// the customer's user. Before passing events on to partners (a partner's CRM),
    /// drop it with [`Cause::without_user`](crate::Cause::without_user), as
    /// [`history`](Self::history) does for them.
    ///
    /// ```
    /// use dpor::*;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// # let dpor::doc_fixture::Fixture { service, admin, sub, .. } = dpor::doc_fixture::fabrikam().await?;
    /// let check = service.check_partner(&admin, &sub, "565380").await?;
    /// service.submit(&admin, &check).await?;
    ///
    /// let billing = Actor::billing_system();
    /// let changes = service.changes(&billing, None, 100).await?;
    /// assert_eq!(changes.len(), 1);
    /// let saved = serde_json::to_string(&changes[0].cursor)?; // keep it somewhere durable
    ///
    /// // Later, maybe after a restart: only what came since.
    /// let cursor: feed::Cursor = serde_json::from_str(&saved)?;
    /// assert!(service.changes(&billing, Some(&cursor), 100).await?.is_empty());
    /// // Only the billing system reads every subscription's changes.
    /// assert!(matches!(service.changes(&admin, None, 100).await, Err(Error::Forbidden { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] for anyone but the billing system, before anything is read;
    /// [`Error::UnknownCursor`] for a cursor past the store's last change (one this
    /// store did not answer); [`Error::Store`].
    pub async fn changes(
        &self,
        actor: &Actor,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<Change>, Error> {
        trace::operation("changes", None, Some(actor), async move {
            actor.may_attempt(Operation::ReadChanges)?;
            Ok(self.repository.changes(after, limit).await?)
        })
        .await
    }
}
