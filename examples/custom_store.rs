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
    outbox: BTreeMap<u64, (String, String, bool)>, // position -> (id, json, delivered)
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
        let outbox = commit
            .notifications
            .iter()
            .map(|n| Ok((n.id.to_string(), serde_json::to_string(n).map_err(backend)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        // A migration also creates a subscription, in the same transaction.
        let create = commit.create.as_ref().map(Self::encode).transpose()?;
        if let Some(created) = &commit.create
            && t.subscriptions.contains_key(created.id().as_str())
        {
            return Err(StoreError::AlreadyExists(created.id().clone()));
        }
        // UPDATE subscriptions SET ... WHERE id = ? AND version = ?
        let row = t
            .subscriptions
            .get_mut(id.as_str())
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        if row.version != commit.expected_version {
            return Err(StoreError::Conflict {
                subscription: id.clone(),
                expected: commit.expected_version,
                actual: row.version,
            });
        }
        row.version = commit.next.version();
        row.partner = commit
            .next
            .partner_of_record()
            .map(|p| p.mpn_id().to_string());
        row.record = record;
        if let (Some(created), Some(row)) = (&commit.create, create) {
            t.subscriptions.insert(created.id().to_string(), row);
        }
        t.events.extend(events);
        for (nid, json) in outbox {
            let position = t.outbox.len() as u64;
            t.outbox.insert(position, (nid, json, false));
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

    async fn pending_notifications(&self, limit: usize) -> Result<Vec<Notification>, StoreError> {
        let t = self.tables()?;
        t.outbox
            .values()
            .filter(|(_, _, delivered)| !delivered)
            .take(limit)
            .map(|(_, json, _)| serde_json::from_str(json).map_err(backend))
            .collect()
    }

    async fn mark_delivered(&self, ids: &[NotificationId]) -> Result<(), StoreError> {
        let mut t = self.tables()?;
        for (id, _, delivered) in t.outbox.values_mut() {
            if ids.iter().any(|d| d.as_str() == id) {
                *delivered = true;
            }
        }
        Ok(())
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

    async fn page_outbox(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let t = self.tables()?;
        let from = after.map_or(0, |a| a + 1);
        t.outbox
            .range(from..)
            .take(limit)
            .map(|(position, (_, json, delivered))| {
                Ok(OutboxEntry {
                    position: *position,
                    notification: serde_json::from_str(json).map_err(backend)?,
                    delivered: *delivered,
                })
            })
            .collect()
    }

    async fn import_subscriptions(
        &self,
        batch: Vec<(Subscription, Vec<AssociationEvent>)>,
    ) -> Result<(), StoreError> {
        let mut t = self.tables()?;
        // Check and encode everything first: all or nothing.
        let mut rows = Vec::with_capacity(batch.len());
        for (subscription, history) in &batch {
            dpor::ports::check_history(subscription, history)?;
            if t.subscriptions.contains_key(subscription.id().as_str()) {
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
            t.events.extend(events);
        }
        Ok(())
    }

    async fn import_outbox(&self, entries: Vec<OutboxEntry>) -> Result<(), StoreError> {
        let mut t = self.tables()?;
        let mut rows = Vec::with_capacity(entries.len());
        for entry in &entries {
            let id = entry.notification.id.to_string();
            if t.outbox.values().any(|(stored, _, _)| *stored == id) {
                return Err(StoreError::InvalidCommit {
                    subscription: entry.notification.subscription.clone(),
                    reason: format!("notification {id} is stored already"),
                });
            }
            let json = serde_json::to_string(&entry.notification).map_err(backend)?;
            rows.push((id, json, entry.delivered));
        }
        for row in rows {
            let position = t.outbox.len() as u64;
            t.outbox.insert(position, row);
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
            // Never deliverable: record it for a person to follow up, and say Ok, so
            // that it does not block the outbox (NotifyError means "try again later").
            println!(
                "  [dead letter] id={} partner {} has no contact email",
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
        "  committed; {} email(s) delivered or dead-lettered, {} pending in the outbox",
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
        "Pending after a dispatch run: {:?}",
        service.dispatch_pending(10).await?
    );
    Ok(())
}
