//! What a host writes: a `Repository` over its own "database" and a `Notifier` that
//! sends the emails. Here the database is a few `BTreeMap` tables behind one `Mutex`,
//! with a version column that `commit` compares and swaps, exactly as an
//! `UPDATE ... WHERE id = ? AND version = ?` would; the "email" sender logs.
//!
//! Run with `cargo run --example custom_store`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use dpor::async_trait;
use dpor::*;
use time::{Duration, OffsetDateTime};

/// One row of the `subscriptions` table: indexed columns plus the record as JSON.
struct Row {
    customer: String,
    partner: Option<String>,
    version: u64,
    record: String,
}

#[derive(Default)]
struct Tables {
    subscriptions: BTreeMap<String, Row>,
    events: BTreeMap<(String, u64), String>,
    // The change feed: each event's key in commit order. A real database numbers the
    // events so that none becomes visible before an earlier one can still commit (see
    // `Repository::changes`); under this one lock, appending does that.
    feed: Vec<(String, u64)>,
    outbox: BTreeMap<u64, OutboxRow>, // by position
}

impl Tables {
    /// Whether the outbox holds notification `id` (a real table: `UNIQUE (id)`).
    fn holds_notification(&self, id: &NotificationId) -> bool {
        self.outbox
            .values()
            .any(|row| &row.entry.notification.id == id)
    }
}

/// One row of the `outbox` table: a notification with its delivery state, and the
/// claim of the dispatcher sending it (a real table has a column for each).
struct OutboxRow {
    entry: OutboxEntry,
    claimed_until: Option<OffsetDateTime>,
}

/// The host's store. A real one would hold a connection pool.
#[derive(Default)]
struct MyDatabase {
    tables: Mutex<Tables>,
}

fn backend(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(error))
}

impl MyDatabase {
    fn tables(&self) -> Result<std::sync::MutexGuard<'_, Tables>, StoreError> {
        self.tables
            .lock()
            .map_err(|_| StoreError::Backend("database lock poisoned".into()))
    }

    /// The outbox entries after `after` that `keep` keeps, at most `limit`.
    fn entries(
        &self,
        after: Option<u64>,
        limit: usize,
        keep: impl Fn(&OutboxEntry) -> bool,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let t = self.tables()?;
        let from = after.map_or(0, |a| a.saturating_add(1));
        Ok(t.outbox
            .range(from..)
            .map(|(_, row)| &row.entry)
            .filter(|e| keep(e))
            .take(limit)
            .cloned()
            .collect())
    }

    fn decode(row: &Row) -> Result<Subscription, StoreError> {
        serde_json::from_str(&row.record).map_err(backend)
    }

    fn encode(subscription: &Subscription) -> Result<Row, StoreError> {
        Ok(Row {
            customer: subscription.customer().to_string(),
            partner: subscription
                .partner_of_record()
                .map(|p| p.mpn_id().to_string()),
            version: subscription.version(),
            record: serde_json::to_string(subscription).map_err(backend)?,
        })
    }
}

#[async_trait]
impl Repository for MyDatabase {
    async fn insert(&self, subscription: Subscription) -> Result<(), StoreError> {
        dpor::ports::check_new(&subscription)?;
        let mut t = self.tables()?;
        let id = subscription.id().to_string();
        if t.subscriptions.contains_key(&id) {
            return Err(StoreError::AlreadyExists(subscription.id().clone()));
        }
        t.subscriptions.insert(id, Self::encode(&subscription)?);
        Ok(())
    }

    async fn get(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        self.tables()?
            .subscriptions
            .get(id.as_str())
            .map(Self::decode)
            .transpose()
    }

    async fn list_by_customer(
        &self,
        customer: &CustomerId,
    ) -> Result<Vec<Subscription>, StoreError> {
        let t = self.tables()?;
        t.subscriptions
            .values()
            .filter(|r| r.customer == customer.as_str())
            .map(Self::decode)
            .collect()
    }

    async fn list_by_partner(&self, partner: &MpnId) -> Result<Vec<Subscription>, StoreError> {
        let t = self.tables()?;
        t.subscriptions
            .values()
            .filter(|r| r.partner.as_deref() == Some(partner.as_str()))
            .map(Self::decode)
            .collect()
    }

    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        commit.check()?; // refuse a commit that does not hang together
        let mut t = self.tables()?;
        let id = commit.next.id();
        // Encode everything first: a failure here must leave the tables untouched.
        let record = serde_json::to_string(&commit.next).map_err(backend)?;
        let events = commit
            .events
            .iter()
            .map(|e| {
                Ok((
                    (id.to_string(), e.sequence),
                    serde_json::to_string(e).map_err(backend)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let outbox = commit.notifications.clone();
        // A migration also creates a subscription, in the same transaction.
        let create = commit.create.as_ref().map(Self::encode).transpose()?;
        // UPDATE subscriptions SET ... WHERE id = ? AND version = ?
        let not_found = || StoreError::NotFound(id.clone());
        let actual = t
            .subscriptions
            .get(id.as_str())
            .ok_or_else(not_found)?
            .version;
        if actual != commit.expected_version {
            return Err(StoreError::Conflict {
                subscription: id.clone(),
                expected: commit.expected_version,
                actual,
            });
        }
        // The events must follow the last one stored (`Commit::check` has made sure they
        // run up to `next`'s last sequence): no repeat, no gap. Over SQL, one more
        // condition in the UPDATE: `(SELECT MAX(sequence) FROM events WHERE ...) = ?`.
        let invalid = |reason: String| StoreError::InvalidCommit {
            subscription: id.clone(),
            reason,
        };
        let key = |sequence| (id.to_string(), sequence);
        let last = t.events.range(key(0)..=key(u64::MAX)).next_back();
        let last = last.map_or(0, |((_, sequence), _)| *sequence);
        if commit.next.last_event_sequence() - commit.events.len() as u64 != last {
            return Err(invalid(format!("its events do not follow event {last}")));
        }
        // INSERT INTO subscriptions ..., refused by its key when the id is taken.
        if let Some(created) = &commit.create
            && t.subscriptions.contains_key(created.id().as_str())
        {
            return Err(StoreError::AlreadyExists(created.id().clone()));
        }
        // UNIQUE (id) over the whole outbox: a notification written twice.
        if let Some(n) = outbox.iter().find(|n| t.holds_notification(&n.id)) {
            return Err(invalid(format!("notification {} is stored already", n.id)));
        }
        let row = t.subscriptions.get_mut(id.as_str()).ok_or_else(not_found)?;
        row.version = commit.next.version();
        row.partner = commit
            .next
            .partner_of_record()
            .map(|p| p.mpn_id().to_string());
        row.record = record;
        if let (Some(created), Some(row)) = (&commit.create, create) {
            t.subscriptions.insert(created.id().to_string(), row);
        }
        t.feed.extend(events.iter().map(|(key, _)| key.clone()));
        t.events.extend(events);
        for notification in outbox {
            let position = t.outbox.len() as u64;
            let entry = OutboxEntry::new(position, notification);
            t.outbox.insert(
                position,
                OutboxRow {
                    entry,
                    claimed_until: None,
                },
            );
        }
        Ok(())
    }

    async fn history(&self, id: &SubscriptionId) -> Result<Vec<AssociationEvent>, StoreError> {
        let t = self.tables()?;
        t.events
            .range((id.to_string(), 0)..=(id.to_string(), u64::MAX))
            .map(|(_, json)| serde_json::from_str(json).map_err(backend))
            .collect()
    }

    async fn changes(
        &self,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let t = self.tables()?;
        // Positions are 1-based indexes into the feed; the epoch is always 0 here. A
        // cursor past the last change is not one this store answered.
        let start = match after {
            None => 0,
            Some(cursor) => {
                let last = Cursor::new(0, t.feed.len() as u64);
                dpor::ports::check_cursor(cursor, Some(last))?;
                cursor.position() as usize
            }
        };
        t.feed
            .iter()
            .enumerate()
            .skip(start)
            .take(limit.min(dpor::feed::MAX_CHANGES))
            .map(|(index, key)| {
                let json = t
                    .events
                    .get(key)
                    .ok_or_else(|| StoreError::Backend("a feed row without its event".into()))?;
                Ok(Change {
                    cursor: Cursor::new(0, index as u64 + 1),
                    event: serde_json::from_str(json).map_err(backend)?,
                })
            })
            .collect()
    }

    // What `dpor::transfer` uses to copy a store: every record, in pages, and a way to
    // write records as they are.

    async fn page_subscriptions(
        &self,
        after: Option<&SubscriptionId>,
        limit: usize,
    ) -> Result<Vec<Subscription>, StoreError> {
        use std::ops::Bound::{Excluded, Unbounded};
        let t = self.tables()?;
        let from = after.map_or(Unbounded, |a| Excluded(a.to_string()));
        t.subscriptions
            .range((from, Unbounded))
            .take(limit)
            .map(|(_, row)| Self::decode(row))
            .collect()
    }

    async fn import_subscriptions(
        &self,
        batch: Vec<(Subscription, Vec<AssociationEvent>)>,
    ) -> Result<(), StoreError> {
        let mut t = self.tables()?;
        // Check and encode everything first: all or nothing.
        // Every history first, then the first id taken or repeated (as the trait says).
        for (subscription, history) in &batch {
            dpor::ports::check_history(subscription, history)?;
        }
        let mut rows = Vec::with_capacity(batch.len());
        let mut ids = std::collections::HashSet::new();
        for (subscription, history) in &batch {
            if !ids.insert(subscription.id())
                || t.subscriptions.contains_key(subscription.id().as_str())
            {
                return Err(StoreError::AlreadyExists(subscription.id().clone()));
            }
            let events = history
                .iter()
                .map(|e| {
                    Ok((
                        (e.subscription.to_string(), e.sequence),
                        serde_json::to_string(e).map_err(backend)?,
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            rows.push((
                subscription.id().to_string(),
                Self::encode(subscription)?,
                events,
            ));
        }
        for (id, row, events) in rows {
            t.subscriptions.insert(id, row);
            t.feed.extend(events.iter().map(|(key, _)| key.clone()));
            t.events.extend(events);
        }
        Ok(())
    }
}

/// The outbox side of the store: `commit` writes the rows, the service claims, sends
/// and records them. Over SQL, `claim` is one `UPDATE ... WHERE position IN (SELECT
/// ... FOR UPDATE SKIP LOCKED) RETURNING ...`; here one lock does it.
#[async_trait]
impl Outbox for MyDatabase {
    async fn claim(
        &self,
        which: Claim<'_>,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut t = self.tables()?;
        let mut first_of_pair = std::collections::HashSet::new();
        let mut claimable = Vec::new();
        for (position, row) in &t.outbox {
            let n = &row.entry.notification;
            // Only the first pending notification of each (subscription, partner) pair.
            if row.entry.status != DeliveryStatus::Pending
                || !first_of_pair.insert((n.subscription.clone(), n.partner))
            {
                continue;
            }
            let free = row.claimed_until.is_none_or(|until| until <= now);
            if which.asks_for(&n.id) && free && row.entry.next_attempt_at <= now {
                claimable.push(*position);
            }
        }
        claimable.truncate(limit);
        let mut claimed = Vec::new();
        for position in claimable {
            if let Some(row) = t.outbox.get_mut(&position) {
                row.claimed_until = Some(now.saturating_add(lease));
                claimed.push(row.entry.clone());
            }
        }
        Ok(claimed)
    }

    async fn mark_delivered(&self, ids: &[NotificationId]) -> Result<(), StoreError> {
        let mut t = self.tables()?;
        for row in t.outbox.values_mut() {
            // A dead letter too: a dispatcher whose send outlived its lease delivered it.
            if row.entry.status != DeliveryStatus::Delivered
                && ids.contains(&row.entry.notification.id)
            {
                row.entry.status = DeliveryStatus::Delivered;
                row.claimed_until = None;
            }
        }
        Ok(())
    }

    async fn record_failure(&self, failure: &Failure) -> Result<(), StoreError> {
        let mut t = self.tables()?;
        for row in t.outbox.values_mut() {
            let entry = &mut row.entry;
            if entry.status == DeliveryStatus::Pending
                && entry.notification.id == failure.id
                && failure.under(row.claimed_until)
            {
                entry.attempts = failure.attempts;
                entry.last_error = Some(failure.error.clone());
                entry.last_attempt_at = Some(failure.at);
                match failure.next {
                    AfterFailure::RetryAt(at) => entry.next_attempt_at = at,
                    AfterFailure::DeadLetter => entry.status = DeliveryStatus::Dead,
                }
                row.claimed_until = None;
            }
        }
        Ok(())
    }

    async fn pending_notifications(&self, limit: usize) -> Result<Vec<Notification>, StoreError> {
        Ok(self
            .entries(None, limit, |e| e.status == DeliveryStatus::Pending)?
            .into_iter()
            .map(|e| e.notification)
            .collect())
    }

    async fn dead_letters(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.entries(after, limit, |e| e.status == DeliveryStatus::Dead)
    }

    async fn redrive(&self, id: &NotificationId, now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut t = self.tables()?;
        for row in t.outbox.values_mut() {
            let entry = &mut row.entry;
            if entry.status == DeliveryStatus::Dead && &entry.notification.id == id {
                entry.status = DeliveryStatus::Pending;
                entry.attempts = 0;
                entry.next_attempt_at = now;
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn page_outbox(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.entries(after, limit, |_| true)
    }

    async fn import_outbox(&self, entries: Vec<OutboxEntry>) -> Result<(), StoreError> {
        let mut t = self.tables()?;
        let mut ids = std::collections::HashSet::new();
        for entry in &entries {
            let id = &entry.notification.id;
            if !ids.insert(id) || t.holds_notification(id) {
                return Err(StoreError::InvalidCommit {
                    subscription: entry.notification.subscription.clone(),
                    reason: format!("notification {id} is stored already"),
                });
            }
        }
        for mut entry in entries {
            let position = t.outbox.len() as u64;
            entry.position = position;
            t.outbox.insert(
                position,
                OutboxRow {
                    entry,
                    claimed_until: None,
                },
            );
        }
        Ok(())
    }
}

/// The host's email sender; this one logs instead of talking SMTP.
struct LoggingMailer;

#[async_trait]
impl Notifier for LoggingMailer {
    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        let Some(to) = &n.contact_email else {
            // Never deliverable: hand it to a person to follow up, and say Ok, so that
            // it does not block the outbox (NotifyError means "try again later", and
            // ends as a dead letter). The outbox then marks it delivered.
            println!(
                "  [for follow-up] id={} partner {} has no contact email",
                n.id, n.partner
            );
            return Ok(());
        };
        let subject = match n.kind {
            NotificationKind::Added => "You are now partner of record",
            _ => "You are no longer partner of record",
        };
        println!(
            "  [mail] id={} to={to} subject=\"{subject}\" subscription={} ({})",
            n.id, n.subscription, n.service
        );
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = MyDatabase::default();
    let contoso = CustomerId::new("contoso")?;
    let sub = SubscriptionId::new("sub-001")?;
    db.insert(Subscription::new(
        sub.clone(),
        contoso.clone(),
        CloudService::Office365,
        "Office 365 E3",
    ))
    .await?;
    let directory = InMemoryDirectory::new()
        .with_partner(
            Partner::new(MpnId::parse("565380")?, "Fabrikam Consulting")
                .with_contact_email("por@fabrikam.example")
                .enrolled_in(Program::OnlineServicesSell),
        )
        .with_partner(
            Partner::new(MpnId::parse("3664167")?, "Northwind Traders")
                .enrolled_in(Program::OnlineServicesSell),
        );

    // The service borrows the host's store: `&T` implements the trait too.
    let service = PorService::new(&db, directory, LoggingMailer);
    let admin = Actor::global_admin(contoso);

    println!("Designate Fabrikam:");
    let check = service.check_partner(&admin, &sub, "565380").await?;
    service.submit(&admin, &check).await?;

    println!("Replace by Northwind (which lists no contact email):");
    let stale = check;
    let check = service.check_partner(&admin, &sub, "3664167").await?;
    let receipt = service.submit(&admin, &check).await?;
    println!(
        "  committed; {} email(s) delivered (or handed for follow-up), {} pending in the outbox",
        receipt.notifications_delivered, receipt.notifications_pending
    );

    println!("A second tab submits the old check: the version column refuses it:");
    match service.submit(&admin, &stale).await {
        Err(e @ Error::Conflict { .. }) => println!("  {e}"),
        other => return Err(format!("expected a conflict, got {other:?}").into()),
    }

    println!("History read back from the events table:");
    for event in service.history(&admin, &sub).await? {
        println!(
            "  #{} {}",
            event.sequence,
            serde_json::to_string(&event.kind)?
        );
    }
    println!(
        "A dispatch run, for what was pending: {:?}",
        service.dispatch_pending(10).await?
    );
    Ok(())
}

/// The store above passes the suite every store must (`dpor::testkit`), run by
/// `cargo test --all-features`.
#[cfg(all(test, feature = "testkit"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn my_database_conforms() {
        let conforms = dpor::testkit::check_repository(|| async { MyDatabase::default() }).await;
        if let Err(failure) = conforms {
            panic!("{failure}");
        }
    }
}
