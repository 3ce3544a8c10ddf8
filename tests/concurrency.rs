//! Concurrency: 8 tasks on a multi-thread runtime race 10,000 random submit/remove
//! operations over 50 subscriptions and 20 partners; then every invariant is checked
//! against the histories and the outbox.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use dpor::*;

const TASKS: u64 = 8;
const OPERATIONS: u64 = 10_000;
const SUBSCRIPTIONS: u64 = 50;
const PARTNERS: u64 = 20;

/// xorshift64*: deterministic per task, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn partner(i: u64) -> Partner {
    Partner::new(mpn(&format!("{:06}", 100_000 + i)), format!("Partner {i}"))
        .with_contact_email(format!("p{i}@example.com"))
        .enrolled_in(Program::OnlineServicesSell)
}

fn sub_name(i: u64) -> SubscriptionId {
    sub_id(&format!("race-{i:03}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn racing_changes_keep_one_partner_and_lose_no_notification() {
    let repo = InMemoryRepository::new();
    let directory = InMemoryDirectory::new();
    for p in 0..PARTNERS {
        directory.insert(partner(p));
    }
    for s in 0..SUBSCRIPTIONS {
        insert_sub(&repo, sub_name(s).as_str()).await;
    }
    let notifier = RecordingNotifier::new();
    let clock = ManualClock::new(T0);
    let service = std::sync::Arc::new(
        PorService::new(repo.clone(), directory, notifier.clone()).with_clock(clock.clone()),
    );

    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let service = service.clone();
        let notifier = notifier.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1));
            let mut committed = 0u64;
            for _ in 0..OPERATIONS / TASKS {
                let sub = sub_name(rng.below(SUBSCRIPTIONS));
                if rng.below(50) == 0 {
                    notifier.fail_next(1);
                }
                let result = if rng.below(4) == 0 {
                    service.remove_partner(&admin(), &sub).await
                } else {
                    let p = partner(rng.below(PARTNERS));
                    match service
                        .check_partner(&admin(), &sub, p.mpn_id().as_str())
                        .await
                    {
                        Ok(check) => {
                            tokio::task::yield_now().await;
                            service.submit(&admin(), &check).await
                        }
                        Err(e) => Err(e),
                    }
                };
                match result {
                    Ok(receipt) => committed += u64::from(receipt.changed),
                    Err(Error::Conflict { .. } | Error::NoPartnerOfRecord(_)) => {}
                    Err(other) => panic!("unexpected error: {other}"),
                }
            }
            committed
        }));
    }
    let mut committed = 0;
    for task in tasks {
        committed += task.await.unwrap();
    }
    assert!(
        committed > 1_000,
        "the race should commit plenty: {committed}"
    );

    // Drain the outbox: the failed emails are retried once their backoff is over.
    notifier.fail_next(0);
    for _ in 0..100 {
        clock.advance(time::Duration::hours(2));
        service.dispatch_pending(usize::MAX).await.unwrap();
        if repo.pending_notifications(1).await.unwrap().is_empty() {
            break;
        }
    }
    assert!(
        repo.pending_notifications(usize::MAX)
            .await
            .unwrap()
            .is_empty()
    );

    let mut expected = BTreeMap::new();
    let mut versions = 0;
    for s in 0..SUBSCRIPTIONS {
        let id = sub_name(s);
        let sub = repo.get(&id).await.unwrap().unwrap();
        let history = repo.history(&id).await.unwrap();
        // One partner at a time, and the history gives the current partner of record.
        let replayed = replay(&history).unwrap();
        assert_eq!(
            replayed,
            sub.partner_of_record().map(|p| (p.mpn_id(), p.program()))
        );
        let seq: Vec<u64> = history.iter().map(|e| e.sequence).collect();
        assert_eq!(
            seq,
            (1..=history.len() as u64).collect::<Vec<_>>(),
            "gap-free sequences"
        );
        assert_eq!(sub.last_event_sequence(), history.len() as u64);
        versions += sub.version();
        // list_by_partner agrees with the stored state.
        if let Some(por) = sub.partner_of_record() {
            let listed = repo.list_by_partner(&por.mpn_id()).await.unwrap();
            assert!(listed.iter().any(|l| l.id() == &id));
        }
        for event in &history {
            let (partner, kind) = event.kind.partner_to_notify().unwrap();
            expected.insert(
                NotificationId::for_event(&id, event.sequence),
                (partner, kind),
            );
        }
    }
    assert_eq!(
        versions, committed,
        "every committed change is one version step"
    );

    // Every event produced exactly its notification, delivered exactly once.
    let sent = notifier.sent();
    let ids: BTreeSet<NotificationId> = sent.iter().map(|n| n.id.clone()).collect();
    assert_eq!(ids.len(), sent.len(), "no notification delivered twice");
    let delivered: BTreeMap<_, _> = sent
        .iter()
        .map(|n| (n.id.clone(), (n.partner, n.kind)))
        .collect();
    assert_eq!(delivered, expected);
}

/// The in-memory store's change feed while 8 writers race: every event once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_feed_reader_sees_every_event_once_while_eight_writers_race() {
    let repo = InMemoryRepository::new();
    seed_race(&repo, 12).await;
    let instances = two_instances(repo.clone(), repo);
    assert!(race_against_a_feed_reader(&instances, 12, 200).await > 0);
}

/// A host's own commits race while each names its emails after any subscription's
/// events (its own or another's, written or not yet), and others mark, dead-letter and
/// redrive them: a notification id is stored once in the store, every accepted
/// commit's emails are there and no refused one's, and no call waits for good (the
/// in-memory store then locks the shards of other subscriptions too).
///
/// The race runs on a thread of its own: the store's locks block the runtime's
/// workers, so a wait in a circle would stop every timer of that runtime too. The
/// test's own thread then fails it instead of hanging.
#[test]
fn host_commits_naming_each_others_emails_keep_every_id_once() {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .build()
            .unwrap();
        runtime.block_on(host_commits_naming_each_others_emails());
        done.send(()).unwrap();
    });
    match finished.recv_timeout(std::time::Duration::from_secs(300)) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("the racing calls did not end: a wait in a circle?")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("the race failed (its panic is above)")
        }
    }
}

async fn host_commits_naming_each_others_emails() {
    const SUBS: u64 = 16;
    let repo = InMemoryRepository::new();
    for s in 0..SUBS {
        insert_sub(&repo, sub_name(s).as_str()).await;
    }
    let name = |rng: &mut Rng| {
        let id = format!("{}#{}", sub_name(rng.below(SUBS)), 1 + rng.below(8));
        NotificationId::new(id).unwrap()
    };
    let mut tasks = Vec::new();
    for t in 0..4 {
        let repo = repo.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ (t + 1));
            let (mut written, mut commits) = (Vec::new(), 0);
            for _ in 0..500 {
                let id = sub_name(rng.below(SUBS));
                let current = repo.get(&id).await.unwrap().unwrap();
                let p = partner(rng.below(PARTNERS));
                let Ok(Transition::Changed { next, events }) =
                    current.associate(&p, Program::OnlineServicesSell, T0)
                else {
                    continue;
                };
                let mut commit = commit_for(&current, next, events);
                for n in &mut commit.notifications {
                    if rng.below(2) == 0 {
                        n.id = name(&mut rng);
                    }
                }
                let ids: Vec<NotificationId> =
                    commit.notifications.iter().map(|n| n.id.clone()).collect();
                match repo.commit(commit).await {
                    Ok(()) => {
                        written.extend(ids);
                        commits += 1;
                    }
                    Err(StoreError::Conflict { .. } | StoreError::InvalidCommit { .. }) => {}
                    Err(other) => panic!("unexpected error: {other}"),
                }
                let some = [name(&mut rng)];
                match rng.below(4) {
                    0 => repo.mark_delivered(&some).await.unwrap(),
                    1 => {
                        let failure = Failure {
                            id: some[0].clone(),
                            attempts: 1,
                            at: T0,
                            error: "mailbox full".into(),
                            next: AfterFailure::DeadLetter,
                            claimed_until: None,
                        };
                        repo.record_failure(&failure).await.unwrap();
                    }
                    2 => drop(repo.redrive(&some[0], T0).await.unwrap()),
                    _ => drop(
                        repo.claim(Claim::Only(&some), T0, time::Duration::MINUTE, 1)
                            .await
                            .unwrap(),
                    ),
                }
            }
            (written, commits)
        }));
    }
    let (mut written, mut commits) = (Vec::new(), 0);
    for task in tasks {
        let (ids, n) = task.await.unwrap();
        written.extend(ids);
        commits += n;
    }
    assert!(commits > 200, "the race should commit plenty: {commits}");

    let outbox = repo.page_outbox(None, usize::MAX).await.unwrap();
    let mut stored: Vec<NotificationId> = outbox.into_iter().map(|e| e.notification.id).collect();
    stored.sort();
    written.sort();
    let distinct: BTreeSet<&NotificationId> = stored.iter().collect();
    assert_eq!(distinct.len(), stored.len(), "an id stored twice");
    assert_eq!(stored, written, "the outbox holds each accepted email");
    let mut versions = 0;
    for s in 0..SUBS {
        versions += repo.get(&sub_name(s)).await.unwrap().unwrap().version();
    }
    assert_eq!(
        versions, commits,
        "every accepted commit is one version step"
    );
}
