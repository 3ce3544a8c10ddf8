//! The outbox: the notifications a change causes, their delivery right after the
//! commit, [`PorService::dispatch_pending`] for what is still pending, and the dead
//! letters. The rules are [`delivery`](crate::delivery)'s; the state is the
//! [`Outbox`]'s.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::PorService;
use crate::delivery::{self, AfterFailure};
use crate::error::{Error, StoreError};
use crate::event::{AssociationEvent, Notification};
use crate::id::NotificationId;
use crate::partner::Partner;
use crate::ports::{
    Claim, Clock, Failure, Notifier, Outbox, OutboxEntry, PartnerDirectory, Repository,
};
use crate::subscription::Subscription;
use crate::trace;

/// What one [`PorService::dispatch_pending`] run did.
///
/// # Examples
///
/// ```
/// use dpor::*;
/// # use time::macros::datetime;
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// # let dpor::doc_fixture::Fixture { service, notifier, admin, sub, clock } = dpor::doc_fixture::fabrikam().await?;
/// // `service` runs over the in-memory ports, its clock at 2026-01-05 10:00 UTC; `admin`
/// // is the global administrator of the customer that owns subscription `sub`; the
/// // directory lists partner 565380 (Fabrikam, Seattle); `notifier` records the emails.
/// notifier.fail_next(1); // the mail server is down for the next delivery
/// let check = service.check_partner(&admin, &sub, "565380").await?;
/// let receipt = service.submit(&admin, &check).await?;
/// assert_eq!(receipt.notifications_pending, 1); // the change is made; the email waits
///
/// // Later, a periodic job retries the outbox, once the retry is due.
/// assert_eq!(service.dispatch_pending(100).await?, DispatchReport::default());
/// clock.advance(time::Duration::minutes(1));
/// let report = service.dispatch_pending(100).await?;
/// assert_eq!(report, DispatchReport { delivered: 1, failed: 0, dead_lettered: 0 });
/// assert_eq!(notifier.sent().len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchReport {
    /// Notifications delivered and marked delivered.
    pub delivered: usize,
    /// Notifications whose delivery failed and that will be tried again.
    pub failed: usize,
    /// Notifications whose delivery failed for the last time: dead letters now.
    pub dead_lettered: usize,
}

impl std::ops::AddAssign for DispatchReport {
    /// Adds the counts, saturating (a count is never wrapped).
    fn add_assign(&mut self, other: DispatchReport) {
        self.delivered = self.delivered.saturating_add(other.delivered);
        self.failed = self.failed.saturating_add(other.failed);
        self.dead_lettered = self.dead_lettered.saturating_add(other.dead_lettered);
    }
}

/// The most claim rounds one [`PorService::dispatch_pending`] call makes: enough to get
/// past a few batches of failing mailboxes, few enough to bound the call.
const MAX_ROUNDS: usize = 16;

/// The address to tell `partner` at, as the directory lists it, if a notification can
/// keep it. Only the address of a partner being told is kept (not its name), and an
/// address longer than an address can be is none at all: the email is written as if
/// the directory listed no contact (traced), so that a broken directory record never
/// stops a customer removing or replacing its partner.
fn usable_contact(partner: &Partner) -> Option<String> {
    let email = partner.contact_email()?;
    match crate::text::email::check(email) {
        Ok(()) => Some(email.to_owned()),
        Err(error) => {
            trace::unusable_contact(partner.mpn_id(), &error);
            None
        }
    }
}

/// What sending a batch of claimed notifications came to.
#[derive(Debug, Default)]
struct Sent {
    delivered: Vec<NotificationId>,
    failures: Vec<Failure>,
    /// How many were not tried: their lease was running out (see [`PorService::send`]).
    left: usize,
}

impl<R: Repository + Outbox, D: PartnerDirectory, N: Notifier, C: Clock> PorService<R, D, N, C> {
    /// Delivers up to `limit` notifications that are due, oldest first, and records what
    /// became of each. Failed attempts do not count against `limit`, so that broken
    /// mailboxes at the front do not stop the emails behind them; a call makes at most
    /// 16 claim rounds, and tries each notification at most once. Run it from a periodic job (or several, in several instances);
    /// it needs no actor.
    ///
    /// It claims its batch with a lease first ([`Outbox::claim`]), so dispatchers
    /// running at once never send the same notification; for one subscription and one
    /// partner, notifications go out in event order, and a failing one delays only those
    /// after it. A failed delivery is tried again after a backoff, and after the
    /// policy's last attempt becomes a dead letter ([`dead_letters`](Self::dead_letters)).
    /// See [`delivery`] for the rules.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the outbox cannot be read or the outcomes cannot be
    /// recorded (the first such error, once all that could be is recorded; each is
    /// traced; the claims then expire after the lease, and the notifications are sent
    /// again: at least once).
    pub async fn dispatch_pending(&self, limit: usize) -> Result<DispatchReport, Error> {
        trace::operation("dispatch_pending", None, None, async move {
            let mut report = DispatchReport::default();
            let mut tried = std::collections::HashSet::new();
            // Each round claims the first pending notification of each (subscription,
            // partner) pair; once one is delivered, the next round may take the one after.
            // Failures do not count against `limit`, so that a batch of broken mailboxes
            // at the front of the outbox does not stop the ones behind it; the rounds are
            // bounded, and each claims at its own time (a long call does not claim with a
            // lease that has run out).
            for _ in 0..MAX_ROUNDS {
                if report.delivered >= limit {
                    break;
                }
                let now = self.clock.now();
                let mut claimed = self
                    .repository
                    .claim(
                        Claim::Due,
                        now,
                        self.delivery.lease,
                        limit - report.delivered,
                    )
                    .await?;
                if claimed.is_empty() {
                    break;
                }
                // A policy without delay makes a failure due again at once: try each
                // notification once per call. What was claimed again runs out its lease,
                // so the next round claims what waits behind it.
                claimed.retain(|e| !tried.contains(&e.notification.id));
                if claimed.is_empty() {
                    continue;
                }
                let sent = self.send(claimed, now).await;
                tried.extend(sent.delivered.iter().cloned());
                tried.extend(sent.failures.iter().map(|f| f.id.clone()));
                // Everything is recorded that can be, each failure traced; then the
                // first failure is the call's error.
                self.record(&sent).await?;
                let dead = sent
                    .failures
                    .iter()
                    .filter(|f| f.next == AfterFailure::DeadLetter)
                    .count();
                report.delivered += sent.delivered.len();
                report.failed += sent.failures.len() - dead;
                report.dead_lettered += dead;
            }
            Ok(report)
        })
        .await
    }

    /// The dispatch loop: runs [`dispatch_pending`](Self::dispatch_pending) in batches
    /// of `batch` until the outbox has nothing due, sleeps `every`, and again, until
    /// `shutdown` completes; then answers what it did in all. Shutdown is graceful: it
    /// is looked at between batches, never in the middle of one.
    ///
    /// It is runtime-agnostic: pass your runtime's sleep (`tokio::time::sleep`,
    /// `async_std::task::sleep`, ...). A failing store does not stop it: the next tick
    /// tries again (the claims of the failed batch expire after their lease). Run one in
    /// every instance if you like: claims keep them from sending anything twice.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// # let dpor::doc_fixture::Fixture { service, .. } = dpor::doc_fixture::fabrikam().await?;
    /// use std::time::Duration;
    ///
    /// let service = std::sync::Arc::new(service);
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let dispatcher = tokio::spawn({
    ///     let service = service.clone();
    ///     async move {
    ///         service.run_dispatcher(100, Duration::from_secs(5), tokio::time::sleep, async { stopped.await.ok(); }).await
    ///     }
    /// });
    /// // ... the host serves requests ...
    /// let _ = stop.send(()); // on shutdown
    /// let report = dispatcher.await?;
    /// assert_eq!(report.failed, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn run_dispatcher<S, F>(
        &self,
        batch: usize,
        every: std::time::Duration,
        sleep: impl Fn(std::time::Duration) -> S,
        shutdown: F,
    ) -> DispatchReport
    where
        S: std::future::Future<Output = ()>,
        F: std::future::Future<Output = ()>,
    {
        use std::task::Poll;
        let mut shutdown = std::pin::pin!(shutdown);
        let mut total = DispatchReport::default();
        let batch = batch.max(1);
        loop {
            loop {
                // Shutdown is looked at between batches, never in the middle of one.
                let stop_now =
                    std::future::poll_fn(|cx| Poll::Ready(shutdown.as_mut().poll(cx).is_ready()))
                        .await;
                if stop_now {
                    return total;
                }
                match self.dispatch_pending(batch).await {
                    Ok(report) => {
                        total += report;
                        if report.delivered < batch {
                            break;
                        }
                    }
                    Err(error) => {
                        trace::dispatch_failed(&error);
                        break;
                    }
                }
            }
            let mut nap = std::pin::pin!(sleep(every));
            let stop = std::future::poll_fn(|cx| {
                if shutdown.as_mut().poll(cx).is_ready() {
                    Poll::Ready(true)
                } else if nap.as_mut().poll(cx).is_ready() {
                    Poll::Ready(false)
                } else {
                    Poll::Pending
                }
            })
            .await;
            if stop {
                return total;
            }
        }
    }

    /// The dead letters, oldest first: notifications that failed for the last time.
    /// Each carries its attempts and last error. For the host's operators, never for
    /// customers or partners (it holds partners' email addresses).
    ///
    /// What to do with one: fix what failed (a partner's contact address in the
    /// directory, the mail server), then [`redrive`](Self::redrive) it; or tell the
    /// partner another way. A dead letter no longer holds back the notifications after
    /// it: those that were delivered meanwhile arrived before it.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the outbox cannot be read.
    pub async fn dead_letters(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, Error> {
        trace::operation("dead_letters", None, None, async move {
            Ok(self.repository.dead_letters(after, limit).await?)
        })
        .await
    }

    /// Makes dead letter `id` pending again, due now, with a fresh count of attempts;
    /// answers whether there was such a dead letter. It takes its old place: it goes out
    /// before the emails of its partner (for that subscription) that are still pending.
    /// Not before one a dispatcher is sending at that moment (claimed, not yet marked):
    /// that one may arrive first, as those delivered while it was dead did. Its age
    /// still counts from its event, so a letter that died of age that fails again is a
    /// dead letter again at once.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the outbox cannot be written.
    pub async fn redrive(&self, id: &NotificationId) -> Result<bool, Error> {
        trace::operation("redrive", None, None, async move {
            Ok(self.repository.redrive(id, self.clock.now()).await?)
        })
        .await
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
                    .and_then(|p| usable_contact(&p)),
            };
            notifications.extend(Notification::for_event(event, next.service(), contact));
        }
        Ok(notifications)
    }

    /// Delivers a fresh commit's notifications, `waiting`, and records what became of
    /// them; answers how many were delivered. `claimed` are those the commit claimed
    /// already ([`Repository::commit_and_claim`]); the others are claimed here, once
    /// no earlier one for the same partner holds them back. The change is committed: a
    /// failure to record only means that [`dispatch_pending`](Self::dispatch_pending)
    /// sends them again (at least once), so it is not an error.
    /// `claimed_at` is when the commit claimed them.
    pub(super) async fn deliver_committed(
        &self,
        claimed: Vec<OutboxEntry>,
        claimed_at: OffsetDateTime,
        mut waiting: Vec<NotificationId>,
    ) -> usize {
        let mut delivered = 0;
        let mut claimed = Some((claimed, claimed_at)).filter(|(c, _)| !c.is_empty());
        // A commit may hold two notifications for one partner (a partner replaced by
        // itself under another program): the second is claimable once the first is out.
        while !waiting.is_empty() {
            let (mut batch, claimed_at) = match claimed.take() {
                Some(claimed) => claimed,
                None => {
                    let now = self.clock.now();
                    let lease = self.delivery.lease;
                    let only = Claim::Only(&waiting);
                    match self.repository.claim(only, now, lease, waiting.len()).await {
                        Ok(batch) => (batch, now),
                        Err(error) => {
                            trace::claim_failed(waiting.len(), &error);
                            return delivered;
                        }
                    }
                }
            };
            // Only what was asked for (a host's outbox might answer more).
            batch.retain(|e| waiting.contains(&e.notification.id));
            if batch.is_empty() {
                return delivered;
            }
            waiting.retain(|id| !batch.iter().any(|e| &e.notification.id == id));
            let sent = self.send(batch, claimed_at).await;
            delivered += sent.delivered.len();
            // What is not recorded is traced, and sent again once its lease is over.
            let _ = self.record(&sent).await;
            if !sent.failures.is_empty() || sent.left > 0 {
                // What follows a failure waits for its retry.
                return delivered;
            }
        }
        delivered
    }

    /// Tries each notification claimed at `claimed_at` once, in order, while
    /// [`DeliveryPolicy::may_start_send`](delivery::DeliveryPolicy::may_start_send)
    /// (the first until the lease runs out, the others until three quarters into it):
    /// the rest is left to a claim after the lease.
    async fn send(&self, claimed: Vec<OutboxEntry>, claimed_at: OffsetDateTime) -> Sent {
        let mut sent = Sent::default();
        let count = claimed.len();
        for (i, entry) in claimed.into_iter().enumerate() {
            if !self
                .delivery
                .may_start_send(claimed_at, self.clock.now(), i == 0)
            {
                sent.left = count - i;
                if i == 0 {
                    trace::claimed_after_the_lease(sent.left);
                } else {
                    trace::lease_running_out(sent.left);
                }
                break;
            }
            let notification = &entry.notification;
            match self.notifier.notify(notification).await {
                Ok(()) => sent.delivered.push(notification.id.clone()),
                Err(error) => {
                    let (attempts, at) = (entry.attempts.saturating_add(1), self.clock.now());
                    let next = self.delivery.after_failure(
                        &notification.id,
                        attempts,
                        notification.at,
                        at,
                    );
                    let text = delivery::failure_text(&error);
                    match next {
                        AfterFailure::RetryAt(_) => {
                            trace::delivery_failed(&notification.id, attempts, &text);
                        }
                        AfterFailure::DeadLetter => {
                            trace::dead_letter(&notification.id, attempts, &text);
                        }
                    }
                    sent.failures.push(Failure {
                        id: notification.id.clone(),
                        attempts,
                        at,
                        error: text,
                        next,
                        claimed_until: Some(self.delivery.lease_end(claimed_at)),
                    });
                }
            }
        }
        sent
    }

    /// Records what sending came to: the delivered ones, then each failure. A store
    /// error does not stop the others from being recorded; each is traced, and the first
    /// is answered. What is not recorded keeps its claim until the lease runs out, and is
    /// then sent again (at least once).
    async fn record(&self, sent: &Sent) -> Result<(), StoreError> {
        let mut first = None;
        if let Err(error) = self.repository.mark_delivered(&sent.delivered).await {
            trace::record_failed("delivered", sent.delivered.len(), &error);
            first.get_or_insert(error);
        }
        for failure in &sent.failures {
            if let Err(error) = self.repository.record_failure(failure).await {
                trace::record_failed("failure", 1, &error);
                first.get_or_insert(error);
            }
        }
        first.map_or(Ok(()), Err)
    }
}
