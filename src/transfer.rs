//! Moving everything from one store to another: [`transfer`] copies every subscription,
//! its whole history and the whole outbox (delivery states included) from any
//! [`Store`] into an empty one, in pages, so that a host that started on the
//! embedded SQLite store moves to PostgreSQL when it outgrows one machine.
//!
//! Stop the services that write to the source first: what they write during the copy
//! may be missed.
//!
//! **Restartable.** Each page is written as one atomic batch. A transfer that failed
//! half-way (a lost connection, a full disk) is run again with the same stores: it
//! first checks that what the target holds is exactly a beginning of the source
//! (read-only), then carries on after it. Nothing is written twice. A target that
//! holds anything else is refused before anything is written.

use crate::error::TransferError;
use crate::id::SubscriptionId;
use crate::ports::{DeliveryStatus, OutboxEntry, Store};

/// How many subscriptions (with their histories), or outbox entries, one page holds.
pub const DEFAULT_PAGE_SIZE: usize = 500;

/// What a [`transfer`] copied, and what the target held already from an earlier,
/// interrupted run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferReport {
    /// Subscriptions written by this run.
    pub subscriptions: usize,
    /// History events written by this run.
    pub events: usize,
    /// Outbox entries written by this run.
    pub notifications: usize,
    /// Of those, the delivered ones.
    pub delivered: usize,
    /// Subscriptions the target held already (a resumed transfer).
    pub subscriptions_already_there: usize,
    /// Outbox entries the target held already (a resumed transfer).
    pub notifications_already_there: usize,
}

/// Copies everything from `from` into `to`, [`DEFAULT_PAGE_SIZE`] records at a time.
///
/// # Errors
///
/// [`TransferError::TargetNotEmpty`] when the target holds anything but a beginning of
/// the source (nothing is written then); [`TransferError::Source`] and
/// [`TransferError::Target`] when a store fails (run it again to carry on).
///
/// # Examples
///
/// ```
/// use dpor::*;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let (old, new) = (InMemoryRepository::new(), InMemoryRepository::new());
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, CloudService::Azure, "Azure plan");
/// old.insert(sub.clone()).await?;
///
/// let report = transfer(&old, &new).await?;
/// assert_eq!(report.subscriptions, 1);
/// assert_eq!(new.get(sub.id()).await?, Some(sub));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn transfer<F, T>(from: &F, to: &T) -> Result<TransferReport, TransferError>
where
    F: Store + ?Sized,
    T: Store + ?Sized,
{
    transfer_in_pages(from, to, DEFAULT_PAGE_SIZE).await
}

/// [`transfer`] with pages of `page_size` records (at least 1).
///
/// # Errors
///
/// As [`transfer`].
pub async fn transfer_in_pages<F, T>(
    from: &F,
    to: &T,
    page_size: usize,
) -> Result<TransferReport, TransferError>
where
    F: Store + ?Sized,
    T: Store + ?Sized,
{
    let page_size = page_size.max(1);
    let (subscriptions_already_there, last_copied) =
        copied_subscriptions(from, to, page_size).await?;
    let mut report = TransferReport {
        subscriptions_already_there,
        notifications_already_there: copied_outbox(from, to, page_size).await?,
        ..TransferReport::default()
    };
    copy_subscriptions(from, to, page_size, last_copied, &mut report).await?;
    copy_outbox(from, to, page_size, &mut report).await?;
    Ok(report)
}

/// Checks that the target's subscriptions are the source's first ones, equal; answers
/// how many there are and the last one's id. Reads only.
async fn copied_subscriptions<F, T>(
    from: &F,
    to: &T,
    page_size: usize,
) -> Result<(usize, Option<SubscriptionId>), TransferError>
where
    F: Store + ?Sized,
    T: Store + ?Sized,
{
    let mut after: Option<SubscriptionId> = None;
    let mut count = 0;
    loop {
        let theirs = to
            .page_subscriptions(after.as_ref(), page_size)
            .await
            .map_err(TransferError::Target)?;
        let Some(last) = theirs.last() else {
            return Ok((count, after));
        };
        let ours = from
            .page_subscriptions(after.as_ref(), page_size)
            .await
            .map_err(TransferError::Source)?;
        for (i, target) in theirs.iter().enumerate() {
            if ours.get(i) != Some(target) {
                return Err(TransferError::TargetNotEmpty(format!(
                    "it holds subscription {} that is not the source's",
                    target.id()
                )));
            }
        }
        count += theirs.len();
        after = Some(last.id().clone());
    }
}

/// Checks that the target's outbox is the source's first entries, in order, and
/// answers how many there are. Reads only.
async fn copied_outbox<F, T>(from: &F, to: &T, page_size: usize) -> Result<usize, TransferError>
where
    F: Store + ?Sized,
    T: Store + ?Sized,
{
    let (mut theirs_after, mut ours_after) = (None, None);
    let mut count = 0;
    loop {
        let theirs = to
            .page_outbox(theirs_after, page_size)
            .await
            .map_err(TransferError::Target)?;
        let Some(last) = theirs.last() else {
            return Ok(count);
        };
        let ours = from
            .page_outbox(ours_after, theirs.len())
            .await
            .map_err(TransferError::Source)?;
        for (i, target) in theirs.iter().enumerate() {
            let same = ours.get(i).is_some_and(|source| {
                source.notification == target.notification
                    && source.status == target.status
                    && source.attempts == target.attempts
            });
            if !same {
                return Err(TransferError::TargetNotEmpty(format!(
                    "its outbox holds notification {} that is not the source's next (or not \
                     in the same state)",
                    target.notification.id
                )));
            }
        }
        count += theirs.len();
        theirs_after = Some(last.position);
        ours_after = ours.last().map(|e| e.position);
    }
}

/// Copies the subscriptions after `after` (the last one the target holds), with their
/// histories, one atomic page at a time.
async fn copy_subscriptions<F, T>(
    from: &F,
    to: &T,
    page_size: usize,
    mut after: Option<SubscriptionId>,
    report: &mut TransferReport,
) -> Result<(), TransferError>
where
    F: Store + ?Sized,
    T: Store + ?Sized,
{
    loop {
        let page = from
            .page_subscriptions(after.as_ref(), page_size)
            .await
            .map_err(TransferError::Source)?;
        let Some(last) = page.last().map(|s| s.id().clone()) else {
            return Ok(());
        };
        let mut batch = Vec::with_capacity(page.len());
        for subscription in page {
            let history = from
                .history(subscription.id())
                .await
                .map_err(TransferError::Source)?;
            report.events += history.len();
            batch.push((subscription, history));
        }
        report.subscriptions += batch.len();
        to.import_subscriptions(batch)
            .await
            .map_err(TransferError::Target)?;
        after = Some(last);
    }
}

/// Copies the outbox entries after those the target holds already, in order, one
/// atomic page at a time.
async fn copy_outbox<F, T>(
    from: &F,
    to: &T,
    page_size: usize,
    report: &mut TransferReport,
) -> Result<(), TransferError>
where
    F: Store + ?Sized,
    T: Store + ?Sized,
{
    let mut skip = report.notifications_already_there;
    let mut after = None;
    loop {
        let page: Vec<OutboxEntry> = from
            .page_outbox(after, page_size)
            .await
            .map_err(TransferError::Source)?;
        let Some(last) = page.last().map(|e| e.position) else {
            return Ok(());
        };
        after = Some(last);
        let held = skip.min(page.len());
        skip -= held;
        let fresh: Vec<OutboxEntry> = page.into_iter().skip(held).collect();
        if fresh.is_empty() {
            continue;
        }
        report.notifications += fresh.len();
        report.delivered += fresh
            .iter()
            .filter(|e| e.status == DeliveryStatus::Delivered)
            .count();
        to.import_outbox(fresh)
            .await
            .map_err(TransferError::Target)?;
    }
}
