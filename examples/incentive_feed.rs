//! A system downstream of dpor (incentive calculation) tailing the change feed: it keeps
//! a running count, per partner, of the subscriptions it is partner of record of, and
//! saves its state with the feed's cursor so that it resumes after a restart without
//! missing or double-counting a change.
//!
//! Run with `cargo run --example incentive_feed`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use dpor::feed::{Change, Cursor};
use dpor::*;
use serde::{Deserialize, Serialize};
use time::macros::datetime;

type Service = PorService<InMemoryRepository, InMemoryDirectory, RecordingNotifier, ManualClock>;

/// What the incentive system keeps, durably: the counts and where it is in the feed.
#[derive(Default, Serialize, Deserialize)]
struct Tally {
    /// Where to resume: the cursor of the last change counted.
    cursor: Option<Cursor>,
    /// Partner -> the subscriptions it is partner of record of.
    on_record: BTreeMap<String, BTreeSet<String>>,
}

impl Tally {
    /// Counts one change. A cancelled subscription no longer counts for its partner; a
    /// suspended one still does (its attribution only pauses).
    fn apply(&mut self, change: &Change) {
        let subscription = change.event.subscription.to_string();
        match &change.event.kind {
            AssociationEventKind::PartnerAssociated { partner, .. } => {
                self.on_record
                    .entry(partner.to_string())
                    .or_default()
                    .insert(subscription);
            }
            AssociationEventKind::PartnerRemoved { partner, .. }
            | AssociationEventKind::SubscriptionCancelled {
                partner: Some(partner),
            } => {
                if let Some(subscriptions) = self.on_record.get_mut(partner.as_str()) {
                    subscriptions.remove(&subscription);
                }
            }
            _ => {}
        }
        self.cursor = Some(change.cursor);
    }

    /// Reads and counts everything new, a page at a time; answers how many changes.
    async fn catch_up(&mut self, service: &Service) -> Result<usize, Error> {
        let billing = Actor::billing_system();
        let mut counted = 0;
        loop {
            let page = service.changes(&billing, self.cursor.as_ref(), 2).await?;
            if page.is_empty() {
                return Ok(counted);
            }
            for change in &page {
                self.apply(change);
            }
            counted += page.len();
        }
    }

    fn print(&self, when: &str) {
        println!("{when}:");
        for (partner, subscriptions) in &self.on_record {
            println!(
                "    partner {partner}: {} subscription(s) {:?}",
                subscriptions.len(),
                subscriptions
            );
        }
        let cursor = self
            .cursor
            .map_or("the start".to_owned(), |c| c.to_string());
        println!("    (resumes after {cursor})");
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let service = seeded()?;
    let contoso = CustomerId::new("contoso")?;
    let alice =
        Actor::global_admin(contoso.clone()).with_user(UserRef::new("alice@contoso.example")?);
    for id in ["sub-001", "sub-002", "sub-003"] {
        let subscription = Subscription::new(
            SubscriptionId::new(id)?,
            contoso.clone(),
            CloudService::Office365,
            id,
        );
        service.repository().insert(subscription).await?;
    }
    let designate = |sub: &'static str, mpn: &'static str| {
        let (service, alice) = (&service, &alice);
        async move {
            let check = service
                .check_partner(alice, &SubscriptionId::new(sub)?, mpn)
                .await?;
            service.submit(alice, &check).await?;
            Ok::<(), Box<dyn std::error::Error>>(())
        }
    };

    // The customer designates partners; the incentive system counts, then stops.
    designate("sub-001", "565380").await?;
    designate("sub-002", "565380").await?;
    designate("sub-003", "3664167").await?;
    let mut tally = Tally::default();
    println!("counted {} change(s)", tally.catch_up(&service).await?);
    tally.print("before the restart");
    let saved = state_file();
    std::fs::write(&saved, serde_json::to_string_pretty(&tally)?)?;

    // While it is down: a replacement, a removal and a cancellation.
    designate("sub-002", "3664167").await?;
    service
        .remove_partner(&alice, &SubscriptionId::new("sub-003")?)
        .await?;
    service
        .cancel(&Actor::billing_system(), &SubscriptionId::new("sub-001")?)
        .await?;

    // It restarts from its saved state and reads only what is new.
    let mut tally: Tally = serde_json::from_str(&std::fs::read_to_string(&saved)?)?;
    std::fs::remove_file(&saved)?;
    println!("counted {} new change(s)", tally.catch_up(&service).await?);
    tally.print("after the restart");

    // The same counts as reading the whole feed from the start.
    let mut from_scratch = Tally::default();
    from_scratch.catch_up(&service).await?;
    assert_eq!(from_scratch.on_record, tally.on_record);
    assert_eq!(tally.on_record["3664167"].len(), 1); // sub-002
    assert!(tally.on_record["565380"].is_empty());
    println!("the resumed counts equal a full replay of the feed");
    Ok(())
}

/// The service on the in-memory defaults, with two partners.
fn seeded() -> Result<Service, Box<dyn std::error::Error>> {
    let directory = InMemoryDirectory::new()
        .with_partner(
            Partner::new(MpnId::parse("565380")?, "Fabrikam Consulting")
                .enrolled_in(Program::OnlineServicesSell),
        )
        .with_partner(
            Partner::new(MpnId::parse("3664167")?, "Northwind Traders")
                .enrolled_in(Program::OnlineServicesSell),
        );
    let clock = ManualClock::new(datetime!(2026-01-05 10:00 UTC));
    Ok(PorService::new(
        InMemoryRepository::new(),
        directory,
        RecordingNotifier::new(),
    )
    .with_clock(clock))
}

/// Where the example keeps its state between the two runs (removed at the end).
fn state_file() -> PathBuf {
    std::env::temp_dir().join(format!("dpor-incentive-feed-{}.json", std::process::id()))
}
