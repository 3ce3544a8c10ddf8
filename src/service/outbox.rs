//! The outbox: the notifications a change causes, their delivery right after the
//! commit, and [`PorService::dispatch_pending`] for what is still pending.

use serde::{Deserialize, Serialize};

use super::PorService;
use crate::error::Error;
use crate::event::{AssociationEvent, Notification};
use crate::id::NotificationId;
use crate::partner::Partner;
use crate::ports::{Clock, Notifier, PartnerDirectory, Repository};
use crate::subscription::Subscription;

/// What one [`PorService::dispatch_pending`] run did.
///
/// # Examples
///
/// ```
/// use dpor::*;
/// # use time::macros::datetime;
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// # let dpor::doc_fixture::Fixture { service, notifier, admin, sub } = dpor::doc_fixture::fabrikam().await?;
/// // `service` runs over the in-memory ports, its clock at 2026-01-05 10:00 UTC; `admin`
/// // is the global administrator of the customer that owns subscription `sub`; the
/// // directory lists partner 565380 (Fabrikam, Seattle); `notifier` records the emails.
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
pub struct DispatchReport {
    /// Notifications delivered (and marked delivered, unless marking failed).
    pub delivered: usize,
    /// Notifications whose delivery failed; they stay pending.
    pub failed: usize,
}

impl<R: Repository, D: PartnerDirectory, N: Notifier, C: Clock> PorService<R, D, N, C> {
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

    /// The notifications of `events` (one per event that has a partner to tell), each
    /// with the partner's contact as the directory lists it now; `known` is a partner
    /// already looked up.
    ///
    /// # Errors
    ///
    /// [`Error::Directory`]: the change is then not committed.
    pub(super) async fn notifications_for(
        &self,
        next: &Subscription,
        events: &[AssociationEvent],
        known: Option<&Partner>,
    ) -> Result<Vec<Notification>, Error> {
        let mut notifications = Vec::with_capacity(events.len());
        for event in events {
            let Some((partner, _)) = event.kind.partner_to_notify() else {
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
        Ok(notifications)
    }

    /// Delivers a fresh commit's notifications and marks those delivered; answers how
    /// many were. The change is committed: failing to mark them only means that
    /// [`dispatch_pending`](Self::dispatch_pending) delivers them again (at least
    /// once), so it is not an error.
    pub(super) async fn deliver_committed(&self, notifications: &[Notification]) -> usize {
        let delivered = self.deliver(notifications).await;
        let _ = self.repository.mark_delivered(&delivered).await;
        delivered.len()
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
