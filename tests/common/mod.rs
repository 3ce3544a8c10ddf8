//! A seeded world for the service tests: one customer with three subscriptions, a
//! second customer, and partners with and without enrolment. Everything in memory,
//! time from a `ManualClock`.
#![allow(dead_code)]

use dpor::*;
use time::{OffsetDateTime, macros::datetime};

pub const T0: OffsetDateTime = datetime!(2026-01-05 10:00 UTC);
/// A time after everything the fixtures and the tests' clocks record: what a test that
/// reads a fixture's retries dispatches at, instead of the machine's clock.
pub const LATER: OffsetDateTime = datetime!(2030-01-01 00:00 UTC);

/// The most pages a test reads before it says the store keeps answering the same one.
pub const MAX_PAGES: usize = 10_000;

/// Every item a paged read answers: `read(after)` gives the page after `after` (the
/// first with `None`), `key` an item's place; at most [`MAX_PAGES`] pages, so that a
/// store answering the same page again fails the test instead of hanging it.
pub async fn page_all<T, K: Clone, Fut>(
    mut read: impl FnMut(Option<K>) -> Fut,
    key: impl Fn(&T) -> K,
) -> Vec<T>
where
    Fut: std::future::Future<Output = Result<Vec<T>, StoreError>>,
{
    let mut all = Vec::new();
    let mut after = None;
    for _ in 0..MAX_PAGES {
        let page = read(after.clone()).await.unwrap();
        let Some(last) = page.last() else {
            return all;
        };
        after = Some(key(last));
        all.extend(page);
    }
    panic!("the store answered {MAX_PAGES} pages and more");
}

pub type Service =
    PorService<InMemoryRepository, InMemoryDirectory, RecordingNotifier, ManualClock>;

pub struct World {
    pub service: Service,
    pub repo: InMemoryRepository,
    pub directory: InMemoryDirectory,
    pub notifier: RecordingNotifier,
    pub clock: ManualClock,
}

pub fn mpn(s: &str) -> MpnId {
    MpnId::parse(s).unwrap()
}

pub fn sub_id(s: &str) -> SubscriptionId {
    SubscriptionId::new(s).unwrap()
}

pub fn contoso() -> CustomerId {
    CustomerId::new("contoso").unwrap()
}

pub fn admin() -> Actor {
    Actor::global_admin(contoso())
}

/// Enrolled in Sell, with a contact email.
pub fn fabrikam() -> Partner {
    Partner::new(mpn("565380"), "Fabrikam Consulting")
        .with_location("Seattle, US")
        .with_contact_email("por@fabrikam.example")
        .enrolled_in(Program::OnlineServicesSell)
}

/// Enrolled in Sell, with a contact email.
pub fn northwind() -> Partner {
    Partner::new(mpn("3664167"), "Northwind Traders")
        .with_contact_email("partners@northwind.example")
        .enrolled_in(Program::OnlineServicesSell)
}

/// Listed, but enrolled in the Usage program only.
pub fn usage_only() -> Partner {
    Partner::new(mpn("5139005"), "Usage Only Ltd").enrolled_in(Program::OnlineServicesUsage)
}

pub async fn world() -> World {
    let repo = InMemoryRepository::new();
    let directory = InMemoryDirectory::new()
        .with_partner(fabrikam())
        .with_partner(northwind())
        .with_partner(usage_only());
    let notifier = RecordingNotifier::new();
    let clock = ManualClock::new(T0);
    for (id, service, name) in [
        ("sub-001", CloudService::Office365, "Office 365 E3"),
        ("sub-002", CloudService::Dynamics365, "Dynamics 365 Sales"),
        ("sub-003", CloudService::Azure, "Azure plan"),
    ] {
        repo.insert(Subscription::new(sub_id(id), contoso(), service, name))
            .await
            .unwrap();
    }
    repo.insert(
        Subscription::new(
            sub_id("sub-cancelled"),
            contoso(),
            CloudService::Intune,
            "Intune",
        )
        .with_status(SubscriptionStatus::Cancelled),
    )
    .await
    .unwrap();
    repo.insert(Subscription::new(
        sub_id("other-001"),
        CustomerId::new("litware").unwrap(),
        CloudService::Office365,
        "Litware E5",
    ))
    .await
    .unwrap();
    let service = PorService::new(repo.clone(), directory.clone(), notifier.clone())
        .with_clock(clock.clone());
    World {
        service,
        repo,
        directory,
        notifier,
        clock,
    }
}

impl World {
    /// Checks and submits `partner` on `sub` as the global admin.
    pub async fn designate(&self, sub: &str, partner: &Partner) -> Receipt {
        check_and_submit(
            &self.service,
            &admin(),
            &sub_id(sub),
            partner.mpn_id().as_str(),
        )
        .await
        .unwrap()
    }

    /// Another service over the world's store, directory, notifier and clock: another
    /// instance, or the same one configured otherwise.
    pub fn another_service(&self) -> Service {
        PorService::new(
            self.repo.clone(),
            self.directory.clone(),
            self.notifier.clone(),
        )
        .with_clock(self.clock.clone())
    }

    /// Everything a test can observe, for "nothing changed" assertions.
    pub async fn snapshot(
        &self,
    ) -> (
        Vec<Subscription>,
        Vec<Vec<AssociationEvent>>,
        Vec<Notification>,
        usize,
    ) {
        let mut subs = self.repo.list_by_customer(&contoso()).await.unwrap();
        subs.extend(
            self.repo
                .list_by_customer(&CustomerId::new("litware").unwrap())
                .await
                .unwrap(),
        );
        let mut histories = Vec::new();
        for s in &subs {
            histories.push(self.repo.history(s.id()).await.unwrap());
        }
        let pending = self.repo.pending_notifications(usize::MAX).await.unwrap();
        (subs, histories, pending, self.notifier.sent().len())
    }
}

/// Replays a history, checking that it never shows two partners at once, and returns
/// the partner of record (id and program) it ends with.
pub fn replay(history: &[AssociationEvent]) -> Result<Option<(MpnId, Program)>, String> {
    let mut current = None;
    for event in history {
        match &event.kind {
            AssociationEventKind::PartnerAssociated {
                partner,
                program,
                replaced,
                ..
            } => {
                if current.is_some() {
                    return Err(format!(
                        "event {} associates a second partner",
                        event.sequence
                    ));
                }
                if let Some(replaced) = replaced {
                    let previous = history.iter().rev().find(|e| e.sequence < event.sequence);
                    let ok = matches!(previous.map(|e| &e.kind),
                        Some(AssociationEventKind::PartnerRemoved { partner: p, reason: RemovalReason::ReplacedBy(b) })
                            if p == replaced && b == partner);
                    if !ok {
                        return Err(format!(
                            "event {} replaces without a removal just before",
                            event.sequence
                        ));
                    }
                }
                current = Some((*partner, *program));
            }
            AssociationEventKind::PartnerRemoved { partner, .. } => match current {
                Some((p, _)) if p == *partner => current = None,
                _ => {
                    return Err(format!(
                        "event {} removes a partner that is not set",
                        event.sequence
                    ));
                }
            },
            other => return Err(format!("unexpected event {other:?}")),
        }
    }
    Ok(current)
}

/// Inserts an active Office 365 subscription of contoso with this id.
pub async fn insert_sub<R: Store>(repo: &R, id: &str) {
    repo.insert(Subscription::new(
        sub_id(id),
        contoso(),
        CloudService::Office365,
        "E3",
    ))
    .await
    .unwrap();
}

/// "Check ID" then "Submit" as `actor`; the first refusal is the answer.
pub async fn check_and_submit<R, D, N, C>(
    service: &PorService<R, D, N, C>,
    actor: &Actor,
    sub: &SubscriptionId,
    mpn: &str,
) -> Result<Receipt, Error>
where
    R: Store,
    D: PartnerDirectory,
    N: Notifier,
    C: Clock,
{
    let check = service.check_partner(actor, sub, mpn).await?;
    service.submit(actor, &check).await
}

/// The subscriptions a race runs on: `s-0` .. `s-{n-1}` of contoso.
pub async fn seed_race<R: Store>(repo: &R, n: u64) {
    for s in 0..n {
        insert_sub(repo, &format!("s-{s}")).await;
    }
}

/// Races `tasks` tasks, spread over `instances`, each doing `ops` designations and
/// removals over the `n` subscriptions of [`seed_race`]; returns how many committed.
pub async fn race<R: Store + 'static>(
    instances: &[std::sync::Arc<PorService<R, InMemoryDirectory, RecordingNotifier>>],
    tasks: u64,
    ops: u64,
    n: u64,
) -> u64 {
    let mut handles = Vec::new();
    for t in 0..tasks {
        let service = instances[(t as usize) % instances.len()].clone();
        handles.push(tokio::spawn(async move {
            let mut changed = 0u64;
            for k in 0..ops {
                let sub = sub_id(&format!("s-{}", (k * 5 + t) % n));
                let result = if (k + t) % 5 == 0 {
                    service.remove_partner(&admin(), &sub).await
                } else {
                    let mpn = if (k + t) % 2 == 0 {
                        "565380"
                    } else {
                        "3664167"
                    };
                    check_and_submit(&service, &admin(), &sub, mpn).await
                };
                match result {
                    Ok(r) => changed += u64::from(r.changed),
                    Err(Error::Conflict { .. } | Error::NoPartnerOfRecord(_)) => {}
                    Err(other) => panic!("{other}"),
                }
            }
            changed
        }));
    }
    let mut changed = 0;
    for handle in handles {
        changed += handle.await.unwrap();
    }
    changed
}

/// Commits `next` and its `events` over `expected_version`, with no notification.
pub async fn commit_events<R: Repository>(
    repo: &R,
    expected_version: u64,
    next: Subscription,
    events: Vec<AssociationEvent>,
) {
    let commit = Commit {
        expected_version,
        next,
        events,
        notifications: Vec::new(),
        create: None,
    };
    repo.commit(commit).await.unwrap();
}

/// A service over `repo` with Fabrikam and Northwind listed, recording its emails.
pub fn listed_service<R: Store>(repo: R) -> PorService<R, InMemoryDirectory, RecordingNotifier> {
    listed_service_with(repo, RecordingNotifier::new())
}

/// Dispatches until a call delivers nothing, at most 1,000 calls (a store that keeps
/// offering what was delivered would otherwise loop for ever).
pub async fn dispatch_until_done<R: Store, D: PartnerDirectory, N: Notifier, C: Clock>(
    service: &PorService<R, D, N, C>,
) {
    for _ in 0..1_000 {
        if service.dispatch_pending(100).await.unwrap().delivered == 0 {
            return;
        }
    }
    panic!("dispatching still delivered after 1,000 calls");
}

/// [`listed_service`] recording its emails in `notifier` (a clone the test keeps).
pub fn listed_service_with<R: Store>(
    repo: R,
    notifier: RecordingNotifier,
) -> PorService<R, InMemoryDirectory, RecordingNotifier> {
    let directory = InMemoryDirectory::new()
        .with_partner(fabrikam())
        .with_partner(northwind());
    PorService::new(repo, directory, notifier)
}

/// Two service instances over `first` and `second` (two pools or two handles on one
/// database, or clones of one in-memory store), with Fabrikam and Northwind listed.
pub fn two_instances<R: Store>(
    first: R,
    second: R,
) -> [std::sync::Arc<PorService<R, InMemoryDirectory, RecordingNotifier>>; 2] {
    [first, second].map(|repo| std::sync::Arc::new(listed_service(repo)))
}

/// The change feed under concurrency: a reader tails it through the first instance
/// while 8 writers [`race`] over `instances` and the `n` subscriptions of
/// [`seed_race`]. Once the writers are done, the reader reads on until it has as many
/// events as the store holds (a store may withhold committed events for a while, never
/// skip them). Then the reader must have seen every stored event exactly once, each
/// subscription's in sequence order. Returns how many events it saw.
pub async fn race_against_a_feed_reader<R: Store + 'static>(
    instances: &[std::sync::Arc<PorService<R, InMemoryDirectory, RecordingNotifier>>],
    n: u64,
    ops: u64,
) -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    /// Reads without news once the writers are done, at most: far more than catching
    /// up takes.
    const IDLE_READS: u64 = 20_000;
    let expected = std::sync::Arc::new(AtomicUsize::new(usize::MAX));
    let reader = tokio::spawn({
        let (service, expected) = (instances[0].clone(), expected.clone());
        async move {
            let billing = Actor::billing_system();
            let (mut seen, mut cursor, mut idle) = (Vec::new(), None, 0u64);
            loop {
                let page = service.changes(&billing, cursor.as_ref(), 7).await.unwrap();
                match page.last() {
                    Some(last) => cursor = Some(last.cursor),
                    None if seen.len() >= expected.load(SeqCst) => break,
                    None => {
                        idle += u64::from(expected.load(SeqCst) != usize::MAX);
                        assert!(
                            idle < IDLE_READS,
                            "the feed stopped at {} events",
                            seen.len()
                        );
                        tokio::task::yield_now().await;
                    }
                }
                seen.extend(
                    page.into_iter()
                        .map(|c| (c.event.subscription, c.event.sequence)),
                );
            }
            seen
        }
    });
    let changed = race(instances, 8, ops, n).await;
    assert!(changed > 0);
    let repo = instances[0].repository();
    let mut stored = Vec::new();
    for s in 0..n {
        let history = repo.history(&sub_id(&format!("s-{s}"))).await.unwrap();
        stored.extend(history.into_iter().map(|e| (e.subscription, e.sequence)));
    }
    expected.store(stored.len(), SeqCst);
    let seen = reader.await.unwrap();
    let mut once = seen.clone();
    once.sort();
    stored.sort();
    assert_eq!(
        once, stored,
        "the reader saw every stored event exactly once"
    );
    for s in 0..n {
        let id = sub_id(&format!("s-{s}"));
        let order: Vec<u64> = seen
            .iter()
            .filter(|(i, _)| *i == id)
            .map(|(_, q)| *q)
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{id}: {order:?}");
    }
    seen.len()
}

/// After a race: every history replays to its subscription's one partner of record,
/// sequences are gap-free, and the versions add up to the committed changes. Returns
/// the number of events.
pub async fn assert_race_consistent<R: Store>(repo: &R, n: u64, changed: u64) -> usize {
    let (mut versions, mut events) = (0, 0);
    for s in 0..n {
        let id = sub_id(&format!("s-{s}"));
        let sub = repo.get(&id).await.unwrap().unwrap();
        let history = repo.history(&id).await.unwrap();
        let current = sub.partner_of_record().map(|p| (p.mpn_id(), p.program()));
        assert_eq!(replay(&history).unwrap(), current);
        let seq: Vec<u64> = history.iter().map(|e| e.sequence).collect();
        assert_eq!(
            seq,
            (1..=history.len() as u64).collect::<Vec<_>>(),
            "no event lost or duplicated"
        );
        versions += sub.version();
        events += history.len();
    }
    assert_eq!(
        versions, changed,
        "every committed change is one version step"
    );
    events
}

/// One pending email whose stored JSON no longer decodes (`sql` runs a statement on the
/// store) holds back none of the others: a dispatch delivers the rest, and the
/// unreadable one stays pending, for a release that reads it.
pub async fn an_unreadable_email_holds_back_no_other<R, F, Fut>(repo: R, sql: F)
where
    R: Store + Clone,
    F: Fn(&'static str) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let directory = InMemoryDirectory::new().with_partner(fabrikam());
    let notifier = RecordingNotifier::new();
    let clock = ManualClock::new(T0);
    let service =
        PorService::new(repo.clone(), directory, notifier.clone()).with_clock(clock.clone());
    notifier.fail_next(2); // both emails stay pending
    for sub in ["sub-001", "sub-002"] {
        insert_sub(&repo, sub).await;
        check_and_submit(&service, &admin(), &sub_id(sub), "565380")
            .await
            .unwrap();
    }
    // A kind of email this release does not know.
    sql(r#"UPDATE dpor_outbox SET notification = replace(notification, '"added"', '"teleported"') WHERE id = 'sub-001#1'"#).await;
    clock.advance(time::Duration::hours(1)); // the retries are due
    let report = service.dispatch_pending(10).await.unwrap();
    assert_eq!(report.delivered, 1);
    let sent: Vec<String> = notifier.sent().iter().map(|n| n.id.to_string()).collect();
    assert_eq!(sent, ["sub-002#1"]);
    // A release that reads it (here: the row as it was) finds it pending still.
    sql(r#"UPDATE dpor_outbox SET notification = replace(notification, '"teleported"', '"added"') WHERE id = 'sub-001#1'"#).await;
    let pending = repo.pending_notifications(10).await.unwrap();
    let pending: Vec<&str> = pending.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(pending, ["sub-001#1"]);
}

/// Rows as a newer release would write them, read by this one over a SQL store: every
/// record gains fields this release does not know, and everything still reads and
/// updates. Then a time beyond the recordable years: a typed error, never a panic.
/// `sql` runs one statement on the store's database.
pub async fn rows_from_a_newer_release_still_read<R, F, Fut>(repo: R, sql: F)
where
    R: Store + Clone,
    F: Fn(&'static str) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    insert_sub(&repo, "sub-001").await;
    let directory = InMemoryDirectory::new()
        .with_partner(fabrikam())
        .with_partner(northwind());
    let notifier = RecordingNotifier::new();
    notifier.fail_next(1); // leaves the "added" email pending
    let clock = ManualClock::new(T0);
    let service =
        PorService::new(repo.clone(), directory, notifier.clone()).with_clock(clock.clone());
    let sub = sub_id("sub-001");
    check_and_submit(&service, &admin(), &sub, "565380")
        .await
        .unwrap();
    let before = (
        repo.get(&sub).await.unwrap(),
        repo.history(&sub).await.unwrap(),
        repo.pending_notifications(10).await.unwrap(),
    );

    sql(r#"UPDATE dpor_subscriptions SET record = replace(replace(record, '{"id"', '{"added_later":{"x":[1]},"id"'), '"since"', '"added_later":1,"since"')"#).await;
    sql(r#"UPDATE dpor_events SET event = replace(replace(event, '{"subscription"', '{"actor":{"type":"someone"},"subscription"'), '"replaced"', '"added_later":1,"replaced"')"#).await;
    sql(r#"UPDATE dpor_outbox SET notification = replace(notification, '{"id"', '{"attempts":3,"id"')"#).await;
    let after = (
        repo.get(&sub).await.unwrap(),
        repo.history(&sub).await.unwrap(),
        repo.pending_notifications(10).await.unwrap(),
    );
    assert_eq!(
        after, before,
        "the extra fields are ignored, the rest intact"
    );
    clock.advance(time::Duration::hours(1)); // the retry is due
    assert_eq!(service.dispatch_pending(10).await.unwrap().delivered, 1);
    let replaced = check_and_submit(&service, &admin(), &sub, "3664167")
        .await
        .unwrap();
    assert!(replaced.changed, "a row from a newer release updates");

    sql(r#"UPDATE dpor_subscriptions SET record = replace(record, '"since":"2026', '"since":"9999-12-31T23:59:59-00:01","was":"2026')"#).await;
    assert!(matches!(repo.get(&sub).await, Err(StoreError::Backend(_))));
    assert!(matches!(
        service.subscription(&admin(), &sub).await,
        Err(Error::Store(StoreError::Backend(_)))
    ));
}

/// What the schema-2 fixtures (`tests/fixtures/schema-2/`) hold, as that code read it.
pub const FIXTURE_SCHEMA_2: &str = include_str!("../fixtures/schema-2/expected.json");

/// The order the schema-2 fixture's events were written in.
pub const SCHEMA_2_WRITE_ORDER: [(&str, u64); 7] = [
    ("sub-101", 1),
    ("sub-102", 1),
    ("sub-101", 2),
    ("sub-101", 3),
    ("sub-102", 2),
    ("sub-103", 1),
    ("sub-101", 4),
];

/// Checks a store opened on the schema-2 fixture and migrated: every subscription,
/// event (with who caused it) and pending notification as that code wrote them; every
/// event in the change feed once, each subscription's in sequence order, in the order
/// they were written when `written_order`; and a new change comes after them.
pub async fn the_schema_2_data_is_intact_and_in_the_feed<R: Store>(repo: R, written_order: bool) {
    let expected: serde_json::Value = serde_json::from_str(FIXTURE_SCHEMA_2).unwrap();
    let (subscriptions, mut stored) = contoso_as_written(&repo, &expected).await;

    let feed: Vec<(String, u64)> = repo
        .changes(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.event.subscription.to_string(), c.event.sequence))
        .collect();
    let mut once = feed.clone();
    once.sort();
    stored.sort();
    assert_eq!(once, stored, "every stored event is in the feed once");
    if written_order {
        let written: Vec<(String, u64)> = SCHEMA_2_WRITE_ORDER
            .iter()
            .map(|(s, q)| (s.to_string(), *q))
            .collect();
        assert_eq!(feed, written);
    }
    for subscription in &subscriptions {
        let order: Vec<u64> = feed
            .iter()
            .filter(|(s, _)| s == subscription.id().as_str())
            .map(|(_, q)| *q)
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    }

    // A new change commits, and the feed has it after the old ones.
    let sub = sub_id("sub-103");
    let current = repo.get(&sub).await.unwrap().unwrap();
    let Transition::Changed { next, events } = current
        .associate(&northwind(), Program::OnlineServicesSell, T0)
        .unwrap()
    else {
        unreachable!()
    };
    commit_events(&repo, current.version(), next, events).await;
    let mut after = None;
    let mut all = Vec::new();
    for _ in 0..10_000 {
        let page = repo.changes(after.as_ref(), 100).await.unwrap();
        if let Some(last) = page.last() {
            after = Some(last.cursor);
        }
        all.extend(page);
        if all.len() == feed.len() + 2 {
            break;
        }
    }
    let tail: Vec<(String, u64)> = all[feed.len()..]
        .iter()
        .map(|c| (c.event.subscription.to_string(), c.event.sequence))
        .collect();
    assert_eq!(tail, [("sub-103".to_owned(), 2), ("sub-103".to_owned(), 3)]);
}

/// Checks that contoso's subscriptions, each one's history and the pending
/// notifications are as a fixture's `expected.json` holds them; answers the
/// subscriptions and each stored event's (subscription, sequence).
async fn contoso_as_written<R: Store>(
    repo: &R,
    expected: &serde_json::Value,
) -> (Vec<Subscription>, Vec<(String, u64)>) {
    let subscriptions = repo.list_by_customer(&contoso()).await.unwrap();
    assert_eq!(
        serde_json::to_value(&subscriptions).unwrap(),
        expected["subscriptions"]
    );
    let mut stored = Vec::new();
    for subscription in &subscriptions {
        let history = repo.history(subscription.id()).await.unwrap();
        assert_eq!(
            serde_json::to_value(&history).unwrap(),
            expected["histories"][subscription.id().as_str()]
        );
        stored.extend(
            history
                .iter()
                .map(|e| (e.subscription.to_string(), e.sequence)),
        );
    }
    let pending = repo.pending_notifications(100).await.unwrap();
    assert_eq!(serde_json::to_value(&pending).unwrap(), expected["pending"]);
    (subscriptions, stored)
}

/// What the schema-3 fixtures (`tests/fixtures/schema-3/`) hold, as that code read it
/// back (and the emails it delivered).
pub const FIXTURE_SCHEMA_3: &str = include_str!("../fixtures/schema-3/expected.json");

/// Checks a store opened on the schema-3 fixture and migrated: every subscription,
/// event, pending notification and dead letter as that code wrote them; then the
/// outbox works on the new indexes: the pending emails go out, each partner's in event
/// order, the dead letter is redriven and goes out, and a new change claims and
/// delivers its emails at once.
pub async fn the_schema_3_outbox_is_intact_and_delivers<R: Store>(repo: R) {
    let expected: serde_json::Value = serde_json::from_str(FIXTURE_SCHEMA_3).unwrap();
    contoso_as_written(&repo, &expected).await;
    let dead: Vec<serde_json::Value> = repo
        .dead_letters(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            serde_json::json!({
                "notification": e.notification,
                "attempts": e.attempts,
                "last_error": e.last_error,
            })
        })
        .collect();
    assert_eq!(serde_json::Value::from(dead), expected["dead_letters"]);

    // Due now: each partner's first pending email, not Northwind's removal behind its
    // designation (claimed with no lease, so the dispatch below takes them again).
    let claimed = repo
        .claim(Claim::Due, LATER, time::Duration::ZERO, 10)
        .await
        .unwrap();
    let claimed: Vec<String> = claimed
        .iter()
        .map(|e| e.notification.id.to_string())
        .collect();
    assert_eq!(claimed, ["sub-301#2", "sub-301#3"]);

    let notifier = RecordingNotifier::new();
    let service = listed_service_with(repo, notifier.clone()).with_clock(ManualClock::new(LATER));
    let sent = || -> Vec<String> { notifier.sent().iter().map(|n| n.id.to_string()).collect() };
    dispatch_until_done(&service).await;
    assert_eq!(sent(), ["sub-301#2", "sub-301#3", "sub-301#4"]);
    let dead = service.dead_letters(None, 100).await.unwrap();
    assert!(service.redrive(&dead[0].notification.id).await.unwrap());
    service.dispatch_pending(100).await.unwrap();
    assert_eq!(sent()[3..], ["sub-302#1"]);

    let receipt = check_and_submit(&service, &admin(), &sub_id("sub-303"), "3664167").await;
    assert_eq!(receipt.unwrap().notifications_delivered, 2);
    assert_eq!(sent()[4..], ["sub-303#2", "sub-303#3"]);
    let repo = service.repository();
    assert!(repo.pending_notifications(100).await.unwrap().is_empty());
    assert!(repo.dead_letters(None, 100).await.unwrap().is_empty());
}

/// What the 0.1.0 fixtures (`tests/fixtures/v0.1.0/`) hold, as 0.1.0 read it back.
pub const FIXTURE_0_1_0: &str = include_str!("../fixtures/v0.1.0/expected.json");

/// A 0.1.0 database used before `migrate()`: what needs a later step's columns
/// answers `SchemaError::NotMigrated` and writes nothing (the caller then migrates and
/// finds everything as 0.1.0 wrote it).
pub async fn a_0_1_0_database_before_migrate_says_so<R: Store>(repo: &R) {
    let outdated = |result: Result<(), StoreError>| {
        assert!(
            matches!(result, Err(StoreError::Schema(SchemaError::NotMigrated))),
            "{result:?}"
        );
    };
    outdated(repo.pending_notifications(10).await.map(drop));
    // The fixture's sub-001 has no partner of record (any more).
    let sub = repo.get(&sub_id("sub-001")).await.unwrap().unwrap();
    let Ok(Transition::Changed { next, events }) =
        sub.associate(&fabrikam(), Program::OnlineServicesSell, T0)
    else {
        panic!("sub-001 takes a partner");
    };
    outdated(repo.commit(commit_for(&sub, next, events)).await);
}

/// Checks that a store opened on a 0.1.0 fixture and migrated holds every
/// subscription, every history event and every pending notification exactly as 0.1.0
/// wrote them; that a new change commits on it; and that `dispatch_pending` delivers
/// the emails 0.1.0 left pending.
pub async fn the_0_1_0_data_is_intact_and_usable<R: Store + Clone>(repo: R) {
    let expected: serde_json::Value = serde_json::from_str(FIXTURE_0_1_0).unwrap();
    let mut subscriptions = Vec::new();
    for customer in ["contoso", "litware"] {
        let customer = CustomerId::new(customer).unwrap();
        subscriptions.extend(repo.list_by_customer(&customer).await.unwrap());
    }
    assert_eq!(
        serde_json::to_value(&subscriptions).unwrap(),
        expected["subscriptions"],
        "every subscription as 0.1.0 wrote it"
    );
    for subscription in &subscriptions {
        let history = repo.history(subscription.id()).await.unwrap();
        // 0.1.0 did not record who caused an event: each reads as unknown, and the
        // rest is as 0.1.0 wrote it.
        assert!(history.iter().all(|e| e.caused_by == Cause::Unknown));
        let mut history = serde_json::to_value(&history).unwrap();
        for event in history.as_array_mut().unwrap() {
            event.as_object_mut().unwrap().remove("caused_by");
        }
        assert_eq!(
            history,
            expected["histories"][subscription.id().as_str()],
            "the history of {}",
            subscription.id()
        );
    }
    // The events 0.1.0 wrote are in the change feed, each once, each subscription's in
    // sequence order.
    let reader = &repo;
    let feed: Vec<(SubscriptionId, u64)> = page_all(
        |after: Option<Cursor>| async move { reader.changes(after.as_ref(), 100).await },
        |change: &Change| change.cursor,
    )
    .await
    .into_iter()
    .map(|c| (c.event.subscription, c.event.sequence))
    .collect();
    let mut all = Vec::new();
    for subscription in &subscriptions {
        let history = repo.history(subscription.id()).await.unwrap();
        all.extend(history.into_iter().map(|e| (e.subscription, e.sequence)));
    }
    let mut sorted = feed.clone();
    sorted.sort();
    all.sort();
    assert_eq!(sorted, all, "the feed holds every stored event once");
    for subscription in &subscriptions {
        let sequences: Vec<u64> = feed
            .iter()
            .filter(|(id, _)| id == subscription.id())
            .map(|(_, sequence)| *sequence)
            .collect();
        assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    }
    let pending = repo.pending_notifications(usize::MAX).await.unwrap();
    assert_eq!(
        serde_json::to_value(&pending).unwrap(),
        expected["pending_notifications"],
        "the emails still pending"
    );
    assert_eq!(pending.len(), 4);
    // The whole outbox: the delivered ones are there, marked.
    let outbox = repo.page_outbox(None, usize::MAX).await.unwrap();
    let delivered: Vec<&Notification> = outbox
        .iter()
        .filter(|e| e.status == DeliveryStatus::Delivered)
        .map(|e| &e.notification)
        .collect();
    assert_eq!(
        serde_json::to_value(&delivered).unwrap(),
        expected["delivered_notifications"],
        "the emails delivered, in outbox order"
    );
    assert_eq!(outbox.len(), 12);

    // The service runs on it: a new designation commits, the old emails go out.
    let directory = InMemoryDirectory::new()
        .with_partner(fabrikam())
        .with_partner(northwind());
    let notifier = RecordingNotifier::new();
    let service = PorService::new(repo.clone(), directory, notifier.clone())
        .with_clock(ManualClock::new(LATER));
    let report = service.dispatch_pending(100).await.unwrap();
    assert_eq!((report.delivered, report.failed), (4, 0));
    // Per partner in event order: Fabrikam's "added" (#1) before its "removed" (#2).
    let sent: Vec<_> = notifier.sent().iter().map(|n| n.id.to_string()).collect();
    assert_eq!(sent, ["sub-005#1", "sub-005#3", "lit-001#1", "sub-005#2"]);
    let receipt = check_and_submit(&service, &admin(), &sub_id("sub-001"), "565380")
        .await
        .unwrap();
    assert!(receipt.changed);
    assert_eq!(receipt.subscription.version(), 4);
    assert_eq!(
        receipt.events[0].sequence, 5,
        "sequences go on from 0.1.0's"
    );
    assert_eq!(receipt.notifications_delivered, 1);
}

/// A store that fails on request, forwarding everything else to `inner`: the switches
/// fail inserts, commits, claims or delivery marks, `imports_allowed` counts down the
/// imports that may still succeed (for an interrupted transfer), `stale_read` is
/// what the next `get` answers instead of the stored record (a read made before
/// another request's commit), and `after_commit` runs once after the next
/// `commit_and_claim` (what happened elsewhere while the commit was on its way back).
/// Without it, `commit_and_claim` is the trait's default (commit, claim nothing; the
/// service then claims itself), the path a host's own store takes; with it, the inner
/// store's claim in the commit.
#[derive(Clone)]
pub struct Faulty<R> {
    pub inner: R,
    pub fail_insert: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub fail_commit: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub fail_mark: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub fail_claim: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub imports_allowed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pub stale_read: std::sync::Arc<std::sync::Mutex<Option<Subscription>>>,
    pub after_commit: std::sync::Arc<std::sync::Mutex<Option<AfterCommit>>>,
}

/// What [`Faulty::after_commit`] runs.
pub type AfterCommit = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

impl<R> Faulty<R> {
    pub fn new(inner: R) -> Self {
        Faulty {
            inner,
            fail_insert: Default::default(),
            fail_commit: Default::default(),
            fail_mark: Default::default(),
            fail_claim: Default::default(),
            imports_allowed: std::sync::Arc::new(usize::MAX.into()),
            stale_read: Default::default(),
            after_commit: Default::default(),
        }
    }

    fn fails(switch: &std::sync::atomic::AtomicBool) -> Result<(), StoreError> {
        if switch.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Backend("connection reset".into()));
        }
        Ok(())
    }

    fn take_import(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.imports_allowed
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .map(|_| ())
            .map_err(|_| StoreError::Backend("connection lost".into()))
    }
}

#[dpor::async_trait]
impl<R: Repository> Repository for Faulty<R> {
    async fn insert(&self, s: Subscription) -> Result<(), StoreError> {
        Self::fails(&self.fail_insert)?;
        self.inner.insert(s).await
    }
    async fn get(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        let stale = self.stale_read.lock().unwrap().take();
        match stale {
            Some(stale) => Ok(Some(stale)),
            None => self.inner.get(id).await,
        }
    }
    async fn list_by_customer(&self, c: &CustomerId) -> Result<Vec<Subscription>, StoreError> {
        self.inner.list_by_customer(c).await
    }
    async fn list_by_partner(&self, p: &MpnId) -> Result<Vec<Subscription>, StoreError> {
        self.inner.list_by_partner(p).await
    }
    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        Self::fails(&self.fail_commit)?;
        self.inner.commit(commit).await
    }
    async fn commit_and_claim(
        &self,
        commit: Commit,
        now: OffsetDateTime,
        lease: time::Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        Self::fails(&self.fail_commit)?;
        let after = self.after_commit.lock().unwrap().take();
        let Some(after) = after else {
            self.inner.commit(commit).await?;
            return Ok(Vec::new());
        };
        let claimed = self.inner.commit_and_claim(commit, now, lease).await?;
        after.await;
        Ok(claimed)
    }
    async fn history(&self, id: &SubscriptionId) -> Result<Vec<AssociationEvent>, StoreError> {
        self.inner.history(id).await
    }
    async fn changes(
        &self,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        self.inner.changes(after, limit).await
    }
    async fn page_subscriptions(
        &self,
        after: Option<&SubscriptionId>,
        limit: usize,
    ) -> Result<Vec<Subscription>, StoreError> {
        self.inner.page_subscriptions(after, limit).await
    }
    async fn import_subscriptions(
        &self,
        batch: Vec<(Subscription, Vec<AssociationEvent>)>,
    ) -> Result<(), StoreError> {
        self.take_import()?;
        self.inner.import_subscriptions(batch).await
    }
}

#[dpor::async_trait]
impl<R: Outbox> Outbox for Faulty<R> {
    async fn claim(
        &self,
        which: Claim<'_>,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        Self::fails(&self.fail_claim)?;
        self.inner.claim(which, now, lease, limit).await
    }
    async fn mark_delivered(&self, ids: &[NotificationId]) -> Result<(), StoreError> {
        Self::fails(&self.fail_mark)?;
        self.inner.mark_delivered(ids).await
    }
    async fn record_failure(&self, failure: &Failure) -> Result<(), StoreError> {
        self.inner.record_failure(failure).await
    }
    async fn pending_notifications(&self, limit: usize) -> Result<Vec<Notification>, StoreError> {
        self.inner.pending_notifications(limit).await
    }
    async fn dead_letters(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.inner.dead_letters(after, limit).await
    }
    async fn redrive(&self, id: &NotificationId, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.inner.redrive(id, now).await
    }
    async fn page_outbox(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.inner.page_outbox(after, limit).await
    }
    async fn import_outbox(&self, entries: Vec<OutboxEntry>) -> Result<(), StoreError> {
        self.take_import()?;
        self.inner.import_outbox(entries).await
    }
}

/// The commit of `current`'s change to `next` by `events`, with a notification per
/// event as the service builds them.
pub fn commit_for(
    current: &Subscription,
    next: Subscription,
    events: Vec<AssociationEvent>,
) -> Commit {
    let notifications = events
        .iter()
        .filter_map(|e| Notification::for_event(e, next.service(), None))
        .collect();
    Commit {
        expected_version: current.version(),
        next,
        events,
        notifications,
        create: None,
    }
}

/// The built-in stores claim a commit's first email in the commit itself
/// (`Repository::commit_and_claim`), which the testkit allows a host's store not to.
pub async fn commit_claims_its_email<R: Store>(repo: &R) {
    insert_sub(repo, "sub-claim").await;
    let sub = repo.get(&sub_id("sub-claim")).await.unwrap().unwrap();
    let Ok(Transition::Changed { next, events }) =
        sub.associate(&fabrikam(), Program::OnlineServicesSell, T0)
    else {
        panic!("a first designation changes the subscription");
    };
    let commit = commit_for(&sub, next, events);
    let ids: Vec<NotificationId> = commit.notifications.iter().map(|n| n.id.clone()).collect();
    let claimed = repo
        .commit_and_claim(commit, T0, time::Duration::minutes(1))
        .await
        .unwrap();
    let claimed: Vec<NotificationId> = claimed.into_iter().map(|e| e.notification.id).collect();
    assert_eq!(claimed, ids);
}

/// A database file that is removed when dropped.
pub struct TempDb(pub std::path::PathBuf);

impl TempDb {
    pub fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        TempDb(std::env::temp_dir().join(format!("dpor-test-{}-{n}.db", std::process::id())))
    }

    pub fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}
