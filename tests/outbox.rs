//! The partner's email, production-grade: per-partner order, no stall behind a broken
//! mailbox, retries with backoff, dead letters, claims shared by several dispatchers.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::*;
use dpor::*;
use proptest::prelude::*;
use time::Duration;

/// The partners' mailboxes: some broken, all down during an outage; records what
/// arrives, in order.
#[derive(Clone, Default)]
struct Mailboxes {
    state: Arc<Mutex<MailState>>,
}

#[derive(Default)]
struct MailState {
    broken: HashSet<MpnId>,
    outage: bool,
    received: Vec<Notification>,
}

impl Mailboxes {
    fn break_mailbox(&self, partner: MpnId) {
        self.state.lock().unwrap().broken.insert(partner);
    }
    fn repair_all(&self) {
        let mut state = self.state.lock().unwrap();
        state.broken.clear();
        state.outage = false;
    }
    fn outage(&self, down: bool) {
        self.state.lock().unwrap().outage = down;
    }
    fn received(&self) -> Vec<Notification> {
        self.state.lock().unwrap().received.clone()
    }
}

#[async_trait]
impl Notifier for Mailboxes {
    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        let mut state = self.state.lock().unwrap();
        if state.outage || state.broken.contains(&notification.partner) {
            return Err(NotifyError::new("550 mailbox unavailable"));
        }
        state.received.push(notification.clone());
        Ok(())
    }
}

type MailService = PorService<InMemoryRepository, InMemoryDirectory, Mailboxes, ManualClock>;

/// `n` subscriptions of contoso, named `s-00000`..., and partners `100000`... enrolled.
async fn mail_world(
    n: usize,
    partners: usize,
) -> (MailService, InMemoryRepository, Mailboxes, ManualClock) {
    let repo = InMemoryRepository::new();
    for i in 0..n {
        insert_sub(&repo, &format!("s-{i:05}")).await;
    }
    let directory = InMemoryDirectory::new();
    for p in 0..partners {
        directory.insert(
            Partner::new(mpn(&format!("{}", 100_000 + p)), format!("Partner {p}"))
                .enrolled_in(Program::OnlineServicesSell),
        );
    }
    let mail = Mailboxes::default();
    let clock = ManualClock::new(T0);
    let service = PorService::new(repo.clone(), directory, mail.clone()).with_clock(clock.clone());
    (service, repo, mail, clock)
}

fn partner_id(p: usize) -> String {
    format!("{}", 100_000 + p)
}

/// Submits partner `partner(i)` on each of the first `n` subscriptions (`s-00000`...)
/// while every mailbox is out: their emails wait, pending.
async fn submit_during_outage(
    service: &MailService,
    mail: &Mailboxes,
    n: usize,
    partner: impl Fn(usize) -> usize,
) {
    mail.outage(true);
    for i in 0..n {
        let sub = sub_id(&format!("s-{i:05}"));
        check_and_submit(service, &admin(), &sub, &partner_id(partner(i)))
            .await
            .unwrap();
    }
    mail.outage(false);
}

#[tokio::test]
async fn a_broken_mailbox_never_stalls_the_others() {
    for limit in [10, 100] {
        // 100 notifications to broken mailboxes, then 1,000 to working ones, all pending.
        let (service, _repo, mail, clock) = mail_world(1_100, 101).await;
        for p in 0..100 {
            mail.break_mailbox(mpn(&partner_id(p)));
        }
        submit_during_outage(&service, &mail, 1_100, |i| i.min(100)).await;
        let mut calls = 0;
        while mail.received().len() < 1_000 {
            calls += 1;
            assert!(calls <= 1_000, "stalled at {}", mail.received().len());
            clock.advance(Duration::minutes(1));
            service.dispatch_pending(limit).await.unwrap();
        }
        let most = 1_000_usize.div_ceil(limit) + 2;
        assert!(
            calls <= most,
            "limit {limit}: {calls} calls, at most {most}"
        );
        assert!(
            mail.received()
                .iter()
                .all(|n| n.partner == mpn(&partner_id(100)))
        );
    }
}

#[tokio::test]
async fn removed_never_overtakes_a_failed_added() {
    let (service, repo, mail, clock) = mail_world(1, 2).await;
    let sub = sub_id("s-00000");
    mail.break_mailbox(mpn(&partner_id(0)));
    check_and_submit(&service, &admin(), &sub, &partner_id(0))
        .await
        .unwrap();
    mail.repair_all();
    // Replacing the partner: its "removed" waits behind its failed "added".
    let receipt = check_and_submit(&service, &admin(), &sub, &partner_id(1))
        .await
        .unwrap();
    assert_eq!(
        (
            receipt.notifications_delivered,
            receipt.notifications_pending
        ),
        (1, 1)
    );
    assert_eq!(
        service.dispatch_pending(10).await.unwrap().delivered,
        0,
        "not due yet"
    );
    clock.advance(Duration::hours(1));
    assert_eq!(service.dispatch_pending(10).await.unwrap().delivered, 2);
    let to_first: Vec<NotificationKind> = mail
        .received()
        .iter()
        .filter(|n| n.partner == mpn(&partner_id(0)))
        .map(|n| n.kind)
        .collect();
    assert_eq!(
        to_first,
        [NotificationKind::Added, NotificationKind::Removed]
    );
    assert!(repo.pending_notifications(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn failures_back_off_and_end_as_dead_letters_that_can_be_redriven() {
    let (service, repo, mail, clock) = mail_world(2, 2).await;
    let service = service.with_delivery_policy(DeliveryPolicy {
        max_attempts: 3,
        ..DeliveryPolicy::default()
    });
    let broken = mpn(&partner_id(0));
    mail.break_mailbox(broken);
    check_and_submit(&service, &admin(), &sub_id("s-00000"), &partner_id(0))
        .await
        .unwrap();
    // Attempt 1 failed inline; attempts 2 and 3 once due.
    let mut reports = Vec::new();
    for _ in 0..3 {
        clock.advance(Duration::hours(2));
        reports.push(service.dispatch_pending(10).await.unwrap());
    }
    assert_eq!(reports[0].failed, 1);
    assert_eq!(reports[1].dead_lettered, 1, "{reports:?}");
    assert_eq!(reports[2], DispatchReport::default());
    let dead = service.dead_letters(None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    let letter = &dead[0];
    assert_eq!((letter.attempts, letter.status), (3, DeliveryStatus::Dead));
    assert!(
        letter
            .last_error
            .as_deref()
            .unwrap()
            .contains("550 mailbox unavailable")
    );
    assert!(repo.pending_notifications(10).await.unwrap().is_empty());

    // A dead letter no longer holds back the next email to the same partner.
    mail.repair_all();
    check_and_submit(&service, &admin(), &sub_id("s-00000"), &partner_id(1))
        .await
        .unwrap();
    let removed: Vec<_> = mail
        .received()
        .iter()
        .map(|n| (n.partner, n.kind))
        .collect();
    assert!(
        removed.contains(&(broken, NotificationKind::Removed)),
        "{removed:?}"
    );

    // Redriven once the mailbox works again.
    assert!(service.redrive(&letter.notification.id).await.unwrap());
    assert!(
        !service.redrive(&letter.notification.id).await.unwrap(),
        "only once"
    );
    assert_eq!(service.dispatch_pending(10).await.unwrap().delivered, 1);
    assert!(service.dead_letters(None, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_letter_too_old_is_dead_whatever_its_attempts() {
    let (service, _repo, mail, clock) = mail_world(1, 1).await;
    mail.break_mailbox(mpn(&partner_id(0)));
    check_and_submit(&service, &admin(), &sub_id("s-00000"), &partner_id(0))
        .await
        .unwrap();
    clock.advance(DeliveryPolicy::default().max_age);
    let report = service.dispatch_pending(10).await.unwrap();
    assert_eq!(report.dead_lettered, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dispatchers_running_at_once_send_each_email_once() {
    let (service, repo, mail, clock) = mail_world(400, 5).await;
    submit_during_outage(&service, &mail, 400, |i| i % 5).await;
    clock.advance(Duration::hours(1));
    let service = Arc::new(service);
    let dispatchers: Vec<_> = (0..4)
        .map(|_| {
            let service = service.clone();
            tokio::spawn(async move {
                let mut delivered = 0;
                // Bounded: a dispatcher that kept finding work would be sending again.
                for _ in 0..1_000 {
                    let report = service.dispatch_pending(7).await.unwrap();
                    delivered += report.delivered;
                    if report.delivered == 0 {
                        return delivered;
                    }
                    tokio::task::yield_now().await;
                }
                panic!("a dispatcher still found work after 1,000 rounds");
            })
        })
        .collect();
    let mut total = 0;
    for dispatcher in dispatchers {
        total += dispatcher.await.unwrap();
    }
    let ids: BTreeSet<_> = mail.received().iter().map(|n| n.id.clone()).collect();
    assert_eq!((total, mail.received().len(), ids.len()), (400, 400, 400));
    assert!(repo.pending_notifications(1).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_claims_of_a_dispatcher_that_died_are_taken_over_after_the_lease() {
    let (service, repo, mail, clock) = mail_world(3, 1).await;
    submit_during_outage(&service, &mail, 3, |_| 0).await;
    clock.advance(Duration::hours(1));
    // A dispatcher claims the batch, then dies before sending anything.
    let lease = DeliveryPolicy::default().lease;
    let claimed = repo
        .claim(Claim::Due, clock.now(), lease, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    assert_eq!(
        service.dispatch_pending(10).await.unwrap().delivered,
        0,
        "still claimed"
    );
    clock.advance(lease);
    assert_eq!(service.dispatch_pending(10).await.unwrap().delivered, 3);
}

#[tokio::test]
async fn the_dispatch_loop_runs_until_shut_down() {
    let (service, repo, mail, clock) = mail_world(5, 1).await;
    submit_during_outage(&service, &mail, 5, |_| 0).await;
    clock.advance(Duration::hours(1)); // the retries are due
    let service = Arc::new(service);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let dispatcher = tokio::spawn({
        let service = service.clone();
        async move {
            // A batch of 2: the loop keeps going until nothing is due.
            service
                .run_dispatcher(
                    2,
                    std::time::Duration::from_millis(1),
                    // No real sleep: the loop only needs to give way.
                    |_| tokio::task::yield_now(),
                    async {
                        stopped.await.ok();
                    },
                )
                .await
        }
    });
    // Bounded: the dispatcher yields between its naps, so it gets its turns.
    for turn in 0.. {
        if repo.pending_notifications(1).await.unwrap().is_empty() {
            break;
        }
        assert!(turn < 100_000, "the dispatch loop left emails pending");
        tokio::task::yield_now().await;
    }
    stop.send(()).unwrap();
    let report = dispatcher.await.unwrap();
    assert_eq!(report.delivered, 5);
    assert_eq!(mail.received().len(), 5);
}

/// One step of the random schedule.
#[derive(Clone, Debug)]
enum Step {
    Designate { sub: usize, partner: usize },
    Remove { sub: usize },
    Break { partner: usize },
    Repair,
    Outage(bool),
    Dispatch,
    Wait { minutes: i64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..4usize, 0..3usize).prop_map(|(sub, partner)| Step::Designate { sub, partner }),
        1 => (0..4usize).prop_map(|sub| Step::Remove { sub }),
        1 => (0..3usize).prop_map(|partner| Step::Break { partner }),
        1 => Just(Step::Repair),
        1 => prop::bool::ANY.prop_map(Step::Outage),
        2 => Just(Step::Dispatch),
        2 => (1..90i64).prop_map(|minutes| Step::Wait { minutes }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn per_partner_order_no_duplicates_nothing_missing(steps in prop::collection::vec(step(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let (service, repo, mail, clock) = mail_world(4, 3).await;
            // No dead letters here: every email must arrive once the mailboxes work.
            let service = service.with_delivery_policy(DeliveryPolicy {
                max_attempts: u32::MAX,
                max_age: Duration::days(10_000),
                ..DeliveryPolicy::default()
            });
            for step in steps {
                match step {
                    Step::Designate { sub, partner } => {
                        let sub = sub_id(&format!("s-{sub:05}"));
                        check_and_submit(&service, &admin(), &sub, &partner_id(partner))
                            .await
                            .unwrap();
                    }
                    Step::Remove { sub } => {
                        let removed =
                            service.remove_partner(&admin(), &sub_id(&format!("s-{sub:05}"))).await;
                        assert!(
                            matches!(removed, Ok(_) | Err(Error::NoPartnerOfRecord(_))),
                            "{removed:?}"
                        );
                    }
                    Step::Break { partner } => mail.break_mailbox(mpn(&partner_id(partner))),
                    Step::Repair => mail.repair_all(),
                    Step::Outage(down) => mail.outage(down),
                    Step::Dispatch => {
                        service.dispatch_pending(3).await.unwrap();
                    }
                    Step::Wait { minutes } => clock.advance(Duration::minutes(minutes)),
                }
            }
            // Recovery: the mailboxes work again, time passes, the dispatcher runs.
            mail.repair_all();
            for _ in 0..50 {
                clock.advance(Duration::hours(2));
                service.dispatch_pending(100).await.unwrap();
            }
            prop_assert!(repo.pending_notifications(1).await.unwrap().is_empty());
            let received = mail.received();
            let ids: BTreeSet<_> = received.iter().map(|n| n.id.clone()).collect();
            prop_assert_eq!(ids.len(), received.len(), "nothing delivered twice");
            let mut written = 0;
            let mut per_pair: BTreeMap<(SubscriptionId, MpnId), Vec<u64>> = BTreeMap::new();
            for n in &received {
                let sequence: u64 = n.id.as_str().rsplit_once('#').unwrap().1.parse().unwrap();
                per_pair.entry((n.subscription.clone(), n.partner)).or_default().push(sequence);
            }
            for i in 0..4 {
                let history = repo.history(&sub_id(&format!("s-{i:05}"))).await.unwrap();
                written += history.iter().filter(|e| e.kind.partner_to_notify().is_some()).count();
            }
            prop_assert_eq!(received.len(), written, "nothing missing");
            for (pair, sequences) in per_pair {
                let mut sorted = sequences.clone();
                sorted.sort_unstable();
                prop_assert_eq!(sequences, sorted, "event order for {:?}", pair);
            }
            Ok(())
        })?;
    }
}

/// A failure due again at once is tried once per call, and the emails behind it are
/// still sent in that call, even when it fills the claim's room.
#[tokio::test]
async fn a_policy_without_delay_tries_each_email_once_per_call() {
    let (service, _repo, mail, _clock) = mail_world(2, 2).await;
    let service = service.with_delivery_policy(DeliveryPolicy {
        first_retry: Duration::ZERO,
        ..DeliveryPolicy::default()
    });
    mail.break_mailbox(mpn(&partner_id(0)));
    submit_during_outage(&service, &mail, 2, |s| s).await;
    let report = service.dispatch_pending(1).await.unwrap();
    assert_eq!(
        report,
        DispatchReport {
            delivered: 1,
            failed: 1,
            dead_lettered: 0
        }
    );
    assert_eq!(mail.received().len(), 1);
}

/// A dispatcher's mailboxes that take `per_email` to accept each email, and another
/// dispatcher of the same store that runs while each send is under way.
struct SlowMail {
    mail: Mailboxes,
    clock: ManualClock,
    per_email: Duration,
    other: Arc<MailService>,
}

#[async_trait]
impl Notifier for SlowMail {
    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        self.clock.advance(self.per_email);
        self.mail.notify(notification).await?;
        self.other.dispatch_pending(usize::MAX).await.unwrap();
        Ok(())
    }
}

#[tokio::test]
async fn a_batch_slower_than_its_lease_leaves_the_rest_and_no_email_goes_out_twice() {
    // 8 emails to 8 partners, pending after an outage.
    let (other, repo, mail, clock) = mail_world(8, 8).await;
    submit_during_outage(&other, &mail, 8, |i| i).await;
    clock.advance(Duration::hours(1));

    // Each send takes a sixth of the lease; while it is under way, the other dispatcher
    // tries to claim. Without a stop, the batch would still be sending when its lease
    // ran out, and the other would send its emails again.
    let lease = DeliveryPolicy::default().lease;
    let slow = SlowMail {
        mail: mail.clone(),
        clock: clock.clone(),
        per_email: lease / 6,
        other: Arc::new(other),
    };
    let dispatcher =
        PorService::new(repo.clone(), InMemoryDirectory::new(), slow).with_clock(clock.clone());
    let report = dispatcher.dispatch_pending(usize::MAX).await.unwrap();
    // Sends start at 0, 1/6, ..., 4/6 of the lease; the sixth would start at 5/6.
    assert_eq!(report.delivered, 5);
    assert_eq!(
        mail.received().len(),
        5,
        "the other claimed nothing meanwhile"
    );
    assert_eq!(repo.pending_notifications(10).await.unwrap().len(), 3);

    // The rest goes out once their lease has run out, once each.
    clock.advance(lease);
    let rest = dispatcher.dispatch_pending(usize::MAX).await.unwrap();
    assert_eq!(rest.delivered, 3);
    let received: Vec<NotificationId> = mail.received().into_iter().map(|n| n.id).collect();
    let distinct: BTreeSet<&NotificationId> = received.iter().collect();
    assert_eq!((received.len(), distinct.len()), (8, 8), "{received:?}");
}

/// A send that hangs until its lease has run out and another dispatcher has claimed the
/// email, then fails.
struct StuckMail {
    repo: InMemoryRepository,
    clock: ManualClock,
    lease: Duration,
    taken_over: Arc<Mutex<Vec<OutboxEntry>>>,
}

#[async_trait]
impl Notifier for StuckMail {
    async fn notify(&self, _: &Notification) -> Result<(), NotifyError> {
        self.clock.advance(self.lease + Duration::SECOND);
        let now = self.clock.now();
        let claimed = self.repo.claim(Claim::Due, now, self.lease, 10).await;
        self.taken_over.lock().unwrap().extend(claimed.unwrap());
        Err(NotifyError::new("timed out"))
    }
}

#[tokio::test]
async fn a_send_that_outlives_its_lease_leaves_the_new_claim_alone() {
    let (other, repo, mail, clock) = mail_world(1, 1).await;
    submit_during_outage(&other, &mail, 1, |_| 0).await;
    clock.advance(Duration::hours(1));

    let lease = DeliveryPolicy::default().lease;
    let taken_over = Arc::new(Mutex::new(Vec::new()));
    let stuck = StuckMail {
        repo: repo.clone(),
        clock: clock.clone(),
        lease,
        taken_over: taken_over.clone(),
    };
    let dispatcher =
        PorService::new(repo.clone(), InMemoryDirectory::new(), stuck).with_clock(clock.clone());
    let report = dispatcher.dispatch_pending(10).await.unwrap();
    assert_eq!(report.failed, 1);
    assert_eq!(
        taken_over.lock().unwrap().len(),
        1,
        "the other dispatcher claimed the email"
    );

    // The late failure released nothing and recorded nothing: the other dispatcher still
    // holds the email, so a third finds nothing to send.
    let third = repo
        .claim(Claim::Due, clock.now(), lease, 10)
        .await
        .unwrap();
    assert!(third.is_empty(), "claimed a third time: {third:?}");
    let entry = &repo.page_outbox(None, 10).await.unwrap()[0];
    // One attempt: the outage's, not the late one.
    assert_eq!((entry.status, entry.attempts), (DeliveryStatus::Pending, 1));
}
