//! A conformance suite for [`Repository`](crate::Repository) and
//! [`Outbox`](crate::Outbox) implementations. Enabled by the `testkit` feature.
//!
//! Run it from a test of your own store, with a factory that returns a new, **empty**
//! repository on every call:
//!
//! ```
//! use dpor::InMemoryRepository;
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! dpor::testkit::check_repository(|| async { InMemoryRepository::new() }).await?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What it checks: a duplicate insert fails and changes nothing; a stale
//! compare-and-swap is a conflict with the stored version and changes nothing (state,
//! history and outbox); an unknown subscription is not found; a commit stores the
//! state, the events and the notifications together; lists are ordered by id (byte
//! order), history by sequence, the outbox oldest first; `list_by_partner` follows
//! replacements and removals; `mark_delivered` is idempotent and ignores unknown ids;
//! a commit that does not hang together ([`Commit::check`](crate::Commit::check)),
//! whose events do not follow the last one stored (a repeat, a gap, a counter set
//! back), or that would write a notification twice, is refused as `InvalidCommit` and
//! changes nothing; a commit's and an import's errors come in the order their docs
//! give; a notification id is unique in the repository, not only among one
//! subscription's; a page after the greatest position is empty.

use std::fmt;
use std::future::Future;

use time::OffsetDateTime;
use time::macros::datetime;

use crate::association::Transition;
use crate::delivery::AfterFailure;
use crate::error::StoreError;
use crate::event::{AssociationEvent, Cause, Notification};
use crate::feed::{Change, Cursor};
use crate::id::{CustomerId, MpnId, NotificationId, SubscriptionId, UserRef};
use crate::partner::{Partner, Program};
use crate::ports::{Claim, Commit, DeliveryStatus, Failure, OutboxEntry, Store};
use crate::role::CustomerRole;
use crate::subscription::{CloudService, Subscription};

/// A check of the suite that a repository failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConformanceFailure {
    /// The check's name.
    pub check: &'static str,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for ConformanceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "repository conformance check `{}` failed: {}",
            self.check, self.message
        )
    }
}

impl std::error::Error for ConformanceFailure {}

/// Runs every check, each on a fresh repository from `make`; stops at the first
/// failure.
///
/// # Errors
///
/// The first [`ConformanceFailure`].
pub async fn check_repository<R, F, Fut>(make: F) -> Result<(), ConformanceFailure>
where
    R: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = R>,
{
    duplicate_insert_fails(&make().await).await?;
    insert_takes_only_a_new_subscription(&make().await).await?;
    stale_commit_conflicts_and_changes_nothing(&make().await).await?;
    unknown_subscription_is_not_found(&make().await).await?;
    commit_stores_everything_together(&make().await).await?;
    lists_are_ordered(&make().await).await?;
    list_by_partner_follows_changes(&make().await).await?;
    outbox_is_oldest_first_and_marking_is_idempotent(&make().await).await?;
    malformed_commits_are_refused(&make().await).await?;
    a_commit_creates_its_new_subscription_atomically(&make().await).await?;
    everything_reads_in_pages(&make().await).await?;
    imports_write_records_as_they_are_or_nothing(&make().await).await?;
    the_outbox_keeps_order_due_times_claims_and_dead_letters(&make().await).await?;
    a_commit_claims_what_a_claim_would(&make().await).await?;
    the_change_feed_has_every_event_once_in_commit_order(&make().await).await?;
    a_notification_id_is_unique_across_subscriptions(&make().await).await?;
    Ok(())
}

/// Returns a failure of `check` unless `condition` holds.
macro_rules! ensure {
    ($check:expr, $condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(ConformanceFailure { check: $check, message: format!($($message)+) });
        }
    };
}

/// Unwraps a repository result, turning an error into a failure of `check`.
fn ok<T>(check: &'static str, result: Result<T, StoreError>) -> Result<T, ConformanceFailure> {
    result.map_err(|e| ConformanceFailure {
        check,
        message: format!("unexpected error: {e} ({e:?})"),
    })
}

const AT: OffsetDateTime = datetime!(2026-01-05 10:00 UTC);

/// A failure to build the suite's own records: a mistake of the suite, not the store.
fn fixture(error: impl fmt::Display) -> ConformanceFailure {
    ConformanceFailure {
        check: "fixture",
        message: error.to_string(),
    }
}

fn id(s: &str) -> Result<SubscriptionId, ConformanceFailure> {
    SubscriptionId::new(s).map_err(fixture)
}

fn notification_id(s: &str) -> Result<NotificationId, ConformanceFailure> {
    NotificationId::new(s).map_err(fixture)
}

fn customer(s: &str) -> Result<CustomerId, ConformanceFailure> {
    CustomerId::new(s).map_err(fixture)
}

fn partner(mpn: &str) -> Result<Partner, ConformanceFailure> {
    let mpn_id = MpnId::parse(mpn).map_err(fixture)?;
    Ok(Partner::new(mpn_id, format!("Partner {mpn}"))
        .with_contact_email(format!("p{mpn}@example.com"))
        .enrolled_in(Program::OnlineServicesSell))
}

fn subscription(sub: &str, owner: &str) -> Result<Subscription, ConformanceFailure> {
    Ok(Subscription::new(
        id(sub)?,
        customer(owner)?,
        CloudService::Office365,
        "E3",
    ))
}

/// The commit that designates `partner` on `current` (replacing any other), with one
/// notification per event, as the service would build it.
fn designate(current: &Subscription, partner: &Partner) -> Result<Commit, ConformanceFailure> {
    commit_of(
        current,
        current.associate(partner, Program::OnlineServicesSell, AT),
    )
}

fn commit_of(
    current: &Subscription,
    transition: Result<Transition, crate::error::Error>,
) -> Result<Commit, ConformanceFailure> {
    match transition {
        Ok(Transition::Changed { next, events }) => Ok(Commit::of_change(current, next, events)),
        other => Err(fixture(format!("expected a change, got {other:?}"))),
    }
}

/// Everything observable about one subscription.
async fn observe<R: Store>(
    check: &'static str,
    repo: &R,
    sub: &SubscriptionId,
) -> Result<
    (
        Option<Subscription>,
        Vec<AssociationEvent>,
        Vec<Notification>,
    ),
    ConformanceFailure,
> {
    Ok((
        ok(check, repo.get(sub).await)?,
        ok(check, repo.history(sub).await)?,
        ok(check, repo.pending_notifications(usize::MAX).await)?,
    ))
}

async fn duplicate_insert_fails<R: Store>(repo: &R) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "duplicate_insert_fails";
    let original = subscription("s-1", "c-1")?;
    ok(CHECK, repo.insert(original.clone()).await)?;
    let impostor = Subscription::new(id("s-1")?, customer("c-2")?, CloudService::Azure, "other");
    let result = repo.insert(impostor).await;
    ensure!(
        CHECK,
        matches!(&result, Err(StoreError::AlreadyExists(s)) if s.as_str() == "s-1"),
        "a second insert of s-1 gave {result:?}, expected AlreadyExists"
    );
    let stored = ok(CHECK, repo.get(original.id()).await)?;
    ensure!(
        CHECK,
        stored.as_ref() == Some(&original),
        "the original changed: {stored:?}"
    );
    Ok(())
}

/// [`Repository::insert`] refuses a subscription with a past (a version, events, a
/// partner of record) as [`StoreError::InvalidCommit`] and stores nothing, before it
/// looks for the id: such a subscription moves with its history
/// ([`check_new`](crate::ports::check_new)).
async fn insert_takes_only_a_new_subscription<R: Store>(
    repo: &R,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "insert_takes_only_a_new_subscription";
    let new = subscription("s-1", "c-1")?;
    let changed = designate(&new, &partner("565380")?)?.next;
    let stored = subscription("s-2", "c-1")?;
    ok(CHECK, repo.insert(stored.clone()).await)?;
    let stored_changed = designate(&stored, &partner("565380")?)?.next;
    for (sub, what) in [(changed, "a new id"), (stored_changed, "a stored id")] {
        let before = observe(CHECK, repo, sub.id()).await?;
        let result = repo.insert(sub.clone()).await;
        ensure!(
            CHECK,
            matches!(&result, Err(StoreError::InvalidCommit { subscription, .. }) if subscription == sub.id()),
            "an insert of {} at version {} under {what} gave {result:?}, expected InvalidCommit",
            sub.id(),
            sub.version()
        );
        let after = observe(CHECK, repo, sub.id()).await?;
        ensure!(
            CHECK,
            before == after,
            "a refused insert changed {before:?} into {after:?}"
        );
    }
    let listed = ok(
        CHECK,
        repo.list_by_partner(&MpnId::parse("565380").map_err(fixture)?)
            .await,
    )?;
    ensure!(
        CHECK,
        listed.is_empty(),
        "a refused insert is listed: {listed:?}"
    );
    Ok(())
}

async fn stale_commit_conflicts_and_changes_nothing<R: Store>(
    repo: &R,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "stale_commit_conflicts_and_changes_nothing";
    let sub = subscription("s-1", "c-1")?;
    ok(CHECK, repo.insert(sub.clone()).await)?;
    let first = designate(&sub, &partner("565380")?)?;
    let stale = designate(&sub, &partner("3664167")?)?;
    let after_first = first.next.clone();
    ok(CHECK, repo.commit(first).await)?;
    let before = observe(CHECK, repo, sub.id()).await?;
    let result = repo.commit(stale).await;
    ensure!(
        CHECK,
        matches!(&result, Err(StoreError::Conflict { expected: 0, actual: 1, subscription }) if subscription == sub.id()),
        "a commit expecting version 0 on version 1 gave {result:?}, expected Conflict {{ expected: 0, actual: 1 }}"
    );
    let after = observe(CHECK, repo, sub.id()).await?;
    ensure!(
        CHECK,
        after == before,
        "a refused commit changed something: {before:?} became {after:?}"
    );
    ensure!(
        CHECK,
        after.0.as_ref() == Some(&after_first),
        "the stored state is not the first commit's"
    );
    Ok(())
}

async fn unknown_subscription_is_not_found<R: Store>(repo: &R) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "unknown_subscription_is_not_found";
    let ghost = subscription("ghost", "c-1")?;
    let result = repo.commit(designate(&ghost, &partner("565380")?)?).await;
    ensure!(
        CHECK,
        matches!(&result, Err(StoreError::NotFound(s)) if s == ghost.id()),
        "a commit on an unknown subscription gave {result:?}, expected NotFound"
    );
    let (state, history, outbox) = observe(CHECK, repo, ghost.id()).await?;
    ensure!(
        CHECK,
        state.is_none() && history.is_empty() && outbox.is_empty(),
        "it left traces"
    );
    Ok(())
}

async fn commit_stores_everything_together<R: Store>(repo: &R) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "commit_stores_everything_together";
    let sub = subscription("s-1", "c-1")?;
    ok(CHECK, repo.insert(sub.clone()).await)?;
    let first = designate(&sub, &partner("565380")?)?;
    let one = first.next.clone();
    ok(CHECK, repo.commit(first).await)?;
    let mut replace = designate(&one, &partner("3664167")?)?;
    // Who caused the change is stored with the events, the user included.
    let alice = UserRef::new("alice@c-1.example").map_err(|e| ConformanceFailure {
        check: CHECK,
        message: e.to_string(),
    })?;
    for event in &mut replace.events {
        event.caused_by = Cause::Customer {
            role: CustomerRole::GlobalAdministrator,
            user: Some(alice.clone()),
        };
    }
    let (two, events, notifications) = (
        replace.next.clone(),
        replace.events.clone(),
        replace.notifications.clone(),
    );
    ok(CHECK, repo.commit(replace).await)?;
    let (state, history, outbox) = observe(CHECK, repo, sub.id()).await?;
    ensure!(
        CHECK,
        state.as_ref() == Some(&two),
        "state {state:?}, expected {two:?}"
    );
    let sequences: Vec<u64> = history.iter().map(|e| e.sequence).collect();
    ensure!(
        CHECK,
        sequences == [1, 2, 3],
        "history sequences {sequences:?}, expected [1, 2, 3]"
    );
    ensure!(
        CHECK,
        history[1..] == events[..],
        "the history does not end with the commit's events (who caused them included): {history:?}"
    );
    ensure!(
        CHECK,
        outbox.len() == 3 && outbox[1..] == notifications[..],
        "the outbox lacks the commit's notifications: {outbox:?}"
    );
    Ok(())
}

async fn lists_are_ordered<R: Store>(repo: &R) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "lists_are_ordered";
    // Byte order: upper case before lower case, '-' before digits; inserted shuffled.
    for name in ["b-2", "B-1", "a-10", "a-9", "a-1"] {
        ok(CHECK, repo.insert(subscription(name, "c-1")?).await)?;
    }
    ok(CHECK, repo.insert(subscription("z-other", "c-2")?).await)?;
    let listed: Vec<String> = ok(CHECK, repo.list_by_customer(&customer("c-1")?).await)?
        .iter()
        .map(|s| s.id().to_string())
        .collect();
    ensure!(
        CHECK,
        listed == ["B-1", "a-1", "a-10", "a-9", "b-2"],
        "list_by_customer gave {listed:?}, expected the customer's ids in byte order"
    );
    let none = ok(CHECK, repo.list_by_customer(&customer("c-3")?).await)?;
    ensure!(CHECK, none.is_empty(), "an unknown customer lists {none:?}");
    let history = ok(CHECK, repo.history(&id("nobody")?).await)?;
    ensure!(
        CHECK,
        history.is_empty(),
        "an unknown subscription has history {history:?}"
    );
    Ok(())
}

async fn list_by_partner_follows_changes<R: Store>(repo: &R) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "list_by_partner_follows_changes";
    let (a, b) = (partner("565380")?, partner("3664167")?);
    let mut current = Vec::new();
    for name in ["s-2", "s-1", "s-3"] {
        let sub = subscription(name, "c-1")?;
        ok(CHECK, repo.insert(sub.clone()).await)?;
        let commit = designate(&sub, &a)?;
        current.push(commit.next.clone());
        ok(CHECK, repo.commit(commit).await)?;
    }
    let ids = |subs: Vec<Subscription>| subs.iter().map(|s| s.id().to_string()).collect::<Vec<_>>();
    let listed = ids(ok(CHECK, repo.list_by_partner(&a.mpn_id()).await)?);
    ensure!(
        CHECK,
        listed == ["s-1", "s-2", "s-3"],
        "partner A lists {listed:?}"
    );
    // Replace A by B on s-1; remove A from s-3.
    ok(CHECK, repo.commit(designate(&current[1], &b)?).await)?;
    ok(
        CHECK,
        repo.commit(commit_of(&current[2], current[2].remove_partner(AT))?)
            .await,
    )?;
    let listed = ids(ok(CHECK, repo.list_by_partner(&a.mpn_id()).await)?);
    ensure!(
        CHECK,
        listed == ["s-2"],
        "after the changes partner A lists {listed:?}, expected [s-2]"
    );
    let listed = ids(ok(CHECK, repo.list_by_partner(&b.mpn_id()).await)?);
    ensure!(
        CHECK,
        listed == ["s-1"],
        "partner B lists {listed:?}, expected [s-1]"
    );
    Ok(())
}

async fn outbox_is_oldest_first_and_marking_is_idempotent<R: Store>(
    repo: &R,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "outbox_is_oldest_first_and_marking_is_idempotent";
    let mut expected = Vec::new();
    for name in ["s-3", "s-1", "s-2"] {
        let sub = subscription(name, "c-1")?;
        ok(CHECK, repo.insert(sub.clone()).await)?;
        let commit = designate(&sub, &partner("565380")?)?;
        expected.extend(commit.notifications.iter().map(|n| n.id.clone()));
        ok(CHECK, repo.commit(commit).await)?;
    }
    let pending =
        |n: Vec<Notification>| n.into_iter().map(|n| n.id).collect::<Vec<NotificationId>>();
    let all = pending(ok(CHECK, repo.pending_notifications(10).await)?);
    ensure!(
        CHECK,
        all == expected,
        "pending {all:?}, expected commit order {expected:?}"
    );
    let two = pending(ok(CHECK, repo.pending_notifications(2).await)?);
    ensure!(CHECK, two == expected[..2], "pending(2) gave {two:?}");

    let unknown = notification_id("nobody#1")?;
    ok(
        CHECK,
        repo.mark_delivered(&[expected[0].clone(), unknown.clone()])
            .await,
    )?;
    ok(
        CHECK,
        repo.mark_delivered(&[expected[0].clone(), unknown]).await,
    )?;
    let rest = pending(ok(CHECK, repo.pending_notifications(10).await)?);
    ensure!(
        CHECK,
        rest == expected[1..],
        "after marking the first, pending is {rest:?}"
    );
    ok(CHECK, repo.mark_delivered(&expected).await)?;
    let none = ok(CHECK, repo.pending_notifications(10).await)?;
    ensure!(
        CHECK,
        none.is_empty(),
        "after marking all, pending is {none:?}"
    );
    Ok(())
}

async fn malformed_commits_are_refused<R: Store>(repo: &R) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "malformed_commits_are_refused";
    let sub = subscription("s-1", "c-1")?;
    ok(CHECK, repo.insert(sub.clone()).await)?;
    let first = designate(&sub, &partner("565380")?)?;
    let one = first.next.clone();
    ok(CHECK, repo.commit(first.clone()).await)?;
    let before = observe(CHECK, repo, sub.id()).await?;

    // `next` two versions on: refused by `Commit::check`.
    let mut skipping = designate(&one, &partner("3664167")?)?;
    skipping.expected_version = 0;
    let result = repo.commit(skipping).await;
    ensure!(
        CHECK,
        matches!(
            result,
            Err(StoreError::InvalidCommit { .. }) | Err(StoreError::Conflict { .. })
        ),
        "a commit skipping a version gave {result:?}"
    );

    // Each hangs together and passes the version check, but its events do not follow
    // the one event stored (a `next` not made from the stored subscription): event 1
    // and its notification again; the counter moved with no event (a gap); an event
    // after a gap; the counter set back.
    let on = |last: u64, events: Vec<AssociationEvent>, notifications| {
        let mut next = serde_json::to_value(&one).map_err(fixture)?;
        next["version"] = 2.into();
        next["last_event_sequence"] = last.into();
        let next = serde_json::from_value(next).map_err(fixture)?;
        let commit = Commit {
            expected_version: 1,
            next,
            events,
            notifications,
            create: None,
        };
        ensure!(
            "fixture",
            commit.check().is_ok(),
            "the commit should hang together: {commit:?}"
        );
        Ok(commit)
    };
    let mut third = first.events.clone();
    third[0].sequence = 3;
    let malformed = [
        (
            "a commit writing event 1 twice",
            on(1, first.events, first.notifications)?,
        ),
        (
            "a commit moving the last event on with no event",
            on(2, Vec::new(), Vec::new())?,
        ),
        (
            "a commit writing event 3 after event 1",
            on(3, third, Vec::new())?,
        ),
        (
            "a commit setting the last event back",
            on(0, Vec::new(), Vec::new())?,
        ),
    ];
    for (what, commit) in malformed {
        refused_unchanged(CHECK, repo, sub.id(), repo.commit(commit), what).await?;
    }

    // Each breaks a rule of `Commit::check`, which the store asks first.
    let valid = || designate(&one, &partner("3664167")?);
    let other = id("s-other")?;
    let mut foreign_event = valid()?;
    foreign_event.events[0].subscription = other.clone();
    let mut foreign_email = valid()?;
    foreign_email.notifications[0].subscription = other;
    let mut email_twice = valid()?;
    let again = email_twice.notifications[0].clone();
    email_twice.notifications.push(again);
    let mut creating_itself = valid()?;
    creating_itself.create = Some(subscription("s-1", "c-1")?);
    let elsewhere = subscription("s-elsewhere", "c-1")?;
    let mut creating_an_old_one = valid()?;
    creating_an_old_one.create = Some(designate(&elsewhere, &partner("565380")?)?.next);
    let broken = [
        (
            "a commit with an event of another subscription",
            foreign_event,
        ),
        (
            "a commit with an email of another subscription",
            foreign_email,
        ),
        ("a commit naming one email twice", email_twice),
        (
            "a commit creating the subscription it changes",
            creating_itself,
        ),
        (
            "a commit creating a subscription that is not new",
            creating_an_old_one,
        ),
    ];
    for (what, commit) in broken {
        ensure!(
            "fixture",
            commit.check().is_err(),
            "{what} should break a rule of Commit::check"
        );
        refused_unchanged(CHECK, repo, sub.id(), repo.commit(commit), what).await?;
    }
    let after = observe(CHECK, repo, sub.id()).await?;
    ensure!(
        CHECK,
        after == before,
        "a commit skipping a version, refused, changed something: {before:?} became {after:?}"
    );
    Ok(())
}

/// A notification id is unique in the repository (DESIGN: "unique within a
/// repository"), whatever subscription it is stored with: a commit or an import naming
/// one stored with another subscription is refused and changes nothing, and one named
/// after another subscription is marked where it is stored.
async fn a_notification_id_is_unique_across_subscriptions<R: Store>(
    repo: &R,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "a_notification_id_is_unique_across_subscriptions";
    let (one, two) = (subscription("s-1", "c-1")?, subscription("s-2", "c-1")?);
    ok(CHECK, repo.insert(one.clone()).await)?;
    ok(CHECK, repo.insert(two.clone()).await)?;
    let first = designate(&one, &partner("565380")?)?;
    let one_next = first.next.clone();
    ok(CHECK, repo.commit(first).await)?;

    // s-2's commit names its notification as s-1's event 1 is named: stored already.
    let mut taken = designate(&two, &partner("565380")?)?;
    taken.notifications[0].id = notification_id("s-1#1")?;
    let what = "a commit on s-2 naming s-1#1, stored with s-1,";
    refused_unchanged(CHECK, repo, two.id(), repo.commit(taken), what).await?;

    // Named after an event s-1 has not written yet: s-2 may take the name first, and
    // s-1's commit of that event is refused.
    let mut ahead = designate(&two, &partner("565380")?)?;
    ahead.notifications[0].id = notification_id("s-1#3")?;
    let mut copy = OutboxEntry::new(0, ahead.notifications[0].clone());
    ok(CHECK, repo.commit(ahead).await)?;
    let replace = designate(&one_next, &partner("3664167")?)?;
    ensure!(
        CHECK,
        replace
            .notifications
            .iter()
            .any(|n| n.id.as_str() == "s-1#3"),
        "fixture: the replacement should write s-1#3: {replace:?}"
    );
    let what = "s-1's commit of s-1#3, stored with s-2,";
    refused_unchanged(CHECK, repo, one.id(), repo.commit(replace), what).await?;

    // Marked where it is stored.
    ok(
        CHECK,
        repo.mark_delivered(&[notification_id("s-1#3")?]).await,
    )?;
    let pending = ok(CHECK, repo.pending_notifications(10).await)?;
    let pending: Vec<&str> = pending.iter().map(|n| n.id.as_str()).collect();
    ensure!(
        CHECK,
        pending == ["s-1#1"],
        "after marking s-1#3 (stored with s-2) delivered, pending is {pending:?}"
    );

    // Imported under s-2, an id stored with s-1 is refused too.
    copy.notification.id = notification_id("s-1#1")?;
    let import = repo.import_outbox(vec![copy]);
    let what = "importing s-1#1 under s-2, s-1 holding it,";
    refused_unchanged(CHECK, repo, two.id(), import, what).await
}

/// Runs `attempt`, `what` a store should refuse as [`StoreError::InvalidCommit`] with
/// nothing changed: subscription `on`, its history, and the whole outbox.
async fn refused_unchanged<R: Store>(
    check: &'static str,
    repo: &R,
    on: &SubscriptionId,
    attempt: impl Future<Output = Result<(), StoreError>>,
    what: &str,
) -> Result<(), ConformanceFailure> {
    let everything = async || {
        let outbox = ok(check, repo.page_outbox(None, usize::MAX).await)?;
        Ok::<_, ConformanceFailure>((observe(check, repo, on).await?, outbox))
    };
    let before = everything().await?;
    let result = attempt.await;
    ensure!(
        check,
        matches!(result, Err(StoreError::InvalidCommit { .. })),
        "{what} gave {result:?}, expected InvalidCommit"
    );
    let after = everything().await?;
    ensure!(
        check,
        after == before,
        "{what} refused, changed something: {before:?} became {after:?}"
    );
    Ok(())
}

/// A migration's commit: the old subscription's change and the new subscription are
/// written together; a taken id or a stale version writes neither.
async fn a_commit_creates_its_new_subscription_atomically<R: Store>(
    repo: &R,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "a_commit_creates_its_new_subscription_atomically";
    let sub = subscription("s-1", "c-1")?;
    let taken = subscription("taken", "c-2")?;
    ok(CHECK, repo.insert(sub.clone()).await)?;
    ok(CHECK, repo.insert(taken.clone()).await)?;
    let migrate = |from: &Subscription, to: &str| -> Result<Commit, ConformanceFailure> {
        let (transition, created) = from.migrate(id(to)?, AT).map_err(fixture)?;
        let mut commit = commit_of(from, Ok(transition))?;
        commit.create = Some(created);
        Ok(commit)
    };

    let before = observe(CHECK, repo, sub.id()).await?;
    let result = repo.commit(migrate(&sub, "taken")?).await;
    ensure!(
        CHECK,
        matches!(&result, Err(StoreError::AlreadyExists(s)) if s.as_str() == "taken"),
        "a commit creating a taken id gave {result:?}, expected AlreadyExists"
    );
    let after = observe(CHECK, repo, sub.id()).await?;
    ensure!(
        CHECK,
        after == before,
        "the refused commit changed s-1: {after:?}"
    );
    let still = ok(CHECK, repo.get(taken.id()).await)?;
    ensure!(
        CHECK,
        still.as_ref() == Some(&taken),
        "the taken subscription changed: {still:?}"
    );

    // A move to a taken id that names an email stored already: the first error in
    // `Repository::commit`'s order, the taken id; stale as well, the conflict.
    let p = subscription("p-1", "c-3")?;
    ok(CHECK, repo.insert(p.clone()).await)?;
    let designated = designate(&p, &partner("565380")?)?;
    ok(CHECK, repo.commit(designated.clone()).await)?;
    for (from, expected) in [(&designated.next, "AlreadyExists"), (&p, "Conflict")] {
        let mut commit = migrate(from, "taken")?;
        commit.notifications = designated.notifications.clone();
        let result = repo.commit(commit).await;
        let first = match &result {
            Err(StoreError::AlreadyExists(s)) if s.as_str() == "taken" => "AlreadyExists",
            Err(StoreError::Conflict { .. }) => "Conflict",
            _ => "something else",
        };
        ensure!(
            CHECK,
            first == expected,
            "a move of p-1 at version {} to a taken id naming a stored email gave \
             {result:?}, expected {expected}",
            from.version()
        );
    }

    let commit = migrate(&sub, "s-2")?;
    let (moved, created) = (commit.next.clone(), commit.create.clone());
    ok(CHECK, repo.commit(commit).await)?;
    let stored = ok(CHECK, repo.get(moved.id()).await)?;
    ensure!(
        CHECK,
        stored.as_ref() == Some(&moved),
        "s-1 is {stored:?} after the move"
    );
    let new = ok(CHECK, repo.get(&id("s-2")?).await)?;
    ensure!(
        CHECK,
        new == created,
        "s-2 is {new:?}, expected {created:?}"
    );
    let listed = ok(CHECK, repo.list_by_customer(&customer("c-1")?).await)?;
    let ids: Vec<&str> = listed.iter().map(|s| s.id().as_str()).collect();
    ensure!(
        CHECK,
        ids == ["s-1", "s-2"],
        "c-1 lists {ids:?}, expected [s-1, s-2]"
    );

    // The same move again is stale (s-1 moved on): nothing is created.
    let stale = migrate(&sub, "s-3")?;
    let result = repo.commit(stale).await;
    ensure!(
        CHECK,
        matches!(&result, Err(StoreError::Conflict { .. })),
        "a stale migration gave {result:?}, expected Conflict"
    );
    let orphan = ok(CHECK, repo.get(&id("s-3")?).await)?;
    ensure!(
        CHECK,
        orphan.is_none(),
        "a refused commit created s-3: {orphan:?}"
    );
    Ok(())
}

/// `page_subscriptions` walks every subscription in id order; `page_outbox` the whole
/// outbox in order, delivered notifications included and marked.
async fn everything_reads_in_pages<R: Store>(repo: &R) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "everything_reads_in_pages";
    // Byte order: upper case before `_` before lower case, whatever a locale says.
    let ids = ["s-3", "s-1", "s-5", "s-2", "s-4", "S-9", "s_0", "s-a"];
    for (i, sub) in ids.iter().enumerate() {
        let subscription = subscription(sub, if i % 2 == 0 { "c-1" } else { "c-2" })?;
        ok(CHECK, repo.insert(subscription.clone()).await)?;
        ok(
            CHECK,
            repo.commit(designate(&subscription, &partner("565380")?)?)
                .await,
        )?;
    }
    let mut seen = Vec::new();
    let mut after: Option<SubscriptionId> = None;
    loop {
        let page = ok(CHECK, repo.page_subscriptions(after.as_ref(), 2).await)?;
        ensure!(CHECK, page.len() <= 2, "a page of 2 holds {}", page.len());
        let Some(last) = page.last() else { break };
        after = Some(last.id().clone());
        seen.extend(page.iter().map(|s| s.id().to_string()));
    }
    ensure!(
        CHECK,
        seen == ["S-9", "s-1", "s-2", "s-3", "s-4", "s-5", "s-a", "s_0"],
        "the pages walked {seen:?}, expected byte order: S-9, s-1 ... s-5, s-a, s_0"
    );
    let one = ok(CHECK, repo.get(&id("S-9")?).await)?;
    let paged = ok(CHECK, repo.page_subscriptions(None, 1).await)?;
    ensure!(
        CHECK,
        paged.first() == one.as_ref(),
        "a page holds {paged:?}, the store {one:?}"
    );

    let pending = ok(CHECK, repo.pending_notifications(usize::MAX).await)?;
    let first = pending.first().map(|n| n.id.clone());
    ok(
        CHECK,
        repo.mark_delivered(&first.iter().cloned().collect::<Vec<_>>())
            .await,
    )?;
    let mut entries = Vec::new();
    let mut after = None;
    loop {
        let page = ok(CHECK, repo.page_outbox(after, 2).await)?;
        let Some(last) = page.last() else { break };
        after = Some(last.position);
        entries.extend(page);
    }
    let notifications: Vec<&Notification> = entries.iter().map(|e| &e.notification).collect();
    ensure!(
        CHECK,
        notifications == pending.iter().collect::<Vec<_>>(),
        "the outbox pages hold {notifications:?}, expected {pending:?}"
    );
    let marked: Vec<bool> = entries
        .iter()
        .map(|e| e.status == DeliveryStatus::Delivered)
        .collect();
    ensure!(
        CHECK,
        marked.first() == Some(&true) && marked[1..].iter().all(|d| !d),
        "delivered markers {marked:?}, expected the first only"
    );
    ensure!(
        CHECK,
        entries.windows(2).all(|w| w[0].position < w[1].position),
        "positions do not grow"
    );
    // No position comes after the greatest: an empty page, not an error.
    let past_all = (
        ok(CHECK, repo.page_outbox(Some(u64::MAX), 2).await)?,
        ok(CHECK, repo.dead_letters(Some(u64::MAX), 2).await)?,
    );
    ensure!(
        CHECK,
        past_all.0.is_empty() && past_all.1.is_empty(),
        "pages after position u64::MAX hold {past_all:?}"
    );
    Ok(())
}

/// `import_subscriptions` stores records as they are, with their histories, all or
/// nothing; `import_outbox` appends entries in order with their markers.
async fn imports_write_records_as_they_are_or_nothing<R: Store>(
    repo: &R,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "imports_write_records_as_they_are_or_nothing";
    let fresh = subscription("s-1", "c-1")?;
    let commit = designate(&fresh, &partner("565380")?)?;
    let replace = designate(&commit.next, &partner("3664167")?)?;
    let history: Vec<AssociationEvent> = commit
        .events
        .iter()
        .chain(&replace.events)
        .cloned()
        .collect();
    let record = replace.next.clone();
    let other = subscription("s-2", "c-1")?;

    // A history that is not the subscription's whole history is refused.
    let result = repo
        .import_subscriptions(vec![(record.clone(), history[1..].to_vec())])
        .await;
    ensure!(
        CHECK,
        matches!(result, Err(StoreError::InvalidCommit { .. })),
        "a partial history gave {result:?}, expected InvalidCommit"
    );
    ok(
        CHECK,
        repo.import_subscriptions(vec![
            (record.clone(), history.clone()),
            (other.clone(), vec![]),
        ])
        .await,
    )?;
    let (state, stored_history, _) = observe(CHECK, repo, record.id()).await?;
    ensure!(
        CHECK,
        state.as_ref() == Some(&record),
        "s-1 reads {state:?}"
    );
    ensure!(
        CHECK,
        stored_history == history,
        "s-1's history reads {stored_history:?}"
    );
    let listed = ok(
        CHECK,
        repo.list_by_partner(&MpnId::parse("3664167").map_err(|e| ConformanceFailure {
            check: CHECK,
            message: e.to_string(),
        })?)
        .await,
    )?;
    ensure!(
        CHECK,
        listed == [record.clone()],
        "the imported partner of record lists {listed:?}"
    );

    // A batch with a taken id writes nothing.
    let third = subscription("s-3", "c-1")?;
    let result = repo
        .import_subscriptions(vec![(third.clone(), vec![]), (other.clone(), vec![])])
        .await;
    ensure!(
        CHECK,
        matches!(&result, Err(StoreError::AlreadyExists(s)) if s == other.id()),
        "a batch with a taken id gave {result:?}, expected AlreadyExists"
    );
    let ghost = ok(CHECK, repo.get(third.id()).await)?;
    ensure!(CHECK, ghost.is_none(), "the refused batch wrote s-3");
    // An id given twice is refused as taken; a history that is not its subscription's
    // is refused first, wherever it is in the batch. Neither writes anything.
    let twice = repo
        .import_subscriptions(vec![(third.clone(), vec![]), (third.clone(), vec![])])
        .await;
    ensure!(
        CHECK,
        matches!(&twice, Err(StoreError::AlreadyExists(s)) if s == third.id()),
        "a batch naming s-3 twice gave {twice:?}, expected AlreadyExists"
    );
    let fourth = subscription("s-4", "c-1")?;
    let both = repo
        .import_subscriptions(vec![
            (third.clone(), vec![]),
            (third.clone(), vec![]),
            (fourth.clone(), history.clone()),
        ])
        .await;
    ensure!(
        CHECK,
        matches!(&both, Err(StoreError::InvalidCommit { .. })),
        "a batch naming s-3 twice, then s-4 with another subscription's history, gave \
         {both:?}, expected InvalidCommit (histories are checked first)"
    );
    for ghost in [&third, &fourth] {
        let read = ok(CHECK, repo.get(ghost.id()).await)?;
        ensure!(
            CHECK,
            read.is_none(),
            "a refused batch wrote {}",
            ghost.id()
        );
    }

    // The imported subscription takes commits on from its version.
    let next = designate(&record, &partner("565380")?)?;
    ok(CHECK, repo.commit(next).await)?;

    // The outbox: appended in order, markers kept; an id twice writes nothing.
    let before = ok(CHECK, repo.page_outbox(None, usize::MAX).await)?;
    let imported: Vec<OutboxEntry> = commit
        .notifications
        .iter()
        .chain(&replace.notifications)
        .enumerate()
        .map(|(i, n)| {
            let mut entry = OutboxEntry::new(0, n.clone());
            if i == 0 {
                entry.status = DeliveryStatus::Delivered;
            } else {
                entry.attempts = 2;
                entry.last_error = Some("421 try again later".to_owned());
                entry.last_attempt_at = Some(AT);
            }
            entry
        })
        .collect();
    ok(CHECK, repo.import_outbox(imported.clone()).await)?;
    let after = ok(CHECK, repo.page_outbox(None, usize::MAX).await)?;
    // Everything but the position (the store's own) is kept.
    let without_position = |e: &OutboxEntry| OutboxEntry {
        position: 0,
        ..e.clone()
    };
    let tail: Vec<OutboxEntry> = after
        .get(before.len()..)
        .unwrap_or_default()
        .iter()
        .map(without_position)
        .collect();
    let expected: Vec<OutboxEntry> = imported.iter().map(without_position).collect();
    ensure!(
        CHECK,
        tail == expected,
        "the outbox ends with {tail:?}, expected {expected:?}"
    );
    let pending = ok(CHECK, repo.pending_notifications(usize::MAX).await)?;
    ensure!(
        CHECK,
        !pending.iter().any(|n| n.id == imported[0].notification.id),
        "an entry imported as delivered is pending"
    );
    // A stored id imported again, and a new id given twice in one batch: refused, and
    // nothing written.
    let mut fresh = imported[1].clone();
    fresh.notification.id = notification_id("s-1#99")?;
    let refused = [
        (
            "importing a stored notification again",
            imported[..1].to_vec(),
        ),
        (
            "importing one new notification twice in a batch",
            vec![fresh.clone(), fresh],
        ),
    ];
    for (what, batch) in refused {
        let result = repo.import_outbox(batch).await;
        ensure!(
            CHECK,
            matches!(result, Err(StoreError::InvalidCommit { .. })),
            "{what} gave {result:?}, expected InvalidCommit"
        );
        let still = ok(CHECK, repo.page_outbox(None, usize::MAX).await)?;
        ensure!(
            CHECK,
            still.len() == after.len(),
            "{what}: the refused import wrote something"
        );
    }
    Ok(())
}

/// The outbox's rules: per (subscription, partner) order, claims with a lease, due
/// times, dead letters that no longer block, redrive.
async fn the_outbox_keeps_order_due_times_claims_and_dead_letters<R: Store>(
    repo: &R,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "the_outbox_keeps_order_due_times_claims_and_dead_letters";
    let lease = time::Duration::minutes(1);
    let (s1, s2) = (subscription("s-1", "c-1")?, subscription("s-2", "c-1")?);
    ok(CHECK, repo.insert(s1.clone()).await)?;
    ok(CHECK, repo.insert(s2.clone()).await)?;
    let first = designate(&s1, &partner("565380")?)?; // n1: s-1 565380 added
    let replace = designate(&first.next, &partner("3664167")?)?; // n2: 565380 removed, n3: 3664167 added
    let other = designate(&s2, &partner("565380")?)?; // n4: s-2 565380 added
    let other_next = other.next.clone();
    let ids: Vec<NotificationId> = [&first, &replace, &other]
        .iter()
        .flat_map(|c| c.notifications.iter().map(|n| n.id.clone()))
        .collect();
    ok(CHECK, repo.commit(first).await)?;
    ok(CHECK, repo.commit(replace).await)?;
    ok(CHECK, repo.commit(other).await)?;
    let [n1, n2, n3, n4] = ids.as_slice() else {
        return Err(ConformanceFailure {
            check: CHECK,
            message: format!("fixture: expected 4 notifications, got {ids:?}"),
        });
    };
    let claimed_ids = |entries: Vec<OutboxEntry>| -> Vec<NotificationId> {
        entries.into_iter().map(|e| e.notification.id).collect()
    };

    let now = AT;
    // Room for one of two given ids: the older (with no lease, it stays claimable).
    let zero = time::Duration::ZERO;
    let one = claim_ids(CHECK, repo, &[n4.clone(), n1.clone()], now, zero, 1).await?;
    ensure!(
        CHECK,
        one == [n1.clone()],
        "a claim of {n4} and {n1} limited to one took {one:?}, expected the older, {n1}"
    );
    let claimed = claimed_ids(ok(CHECK, repo.claim(Claim::Due, now, lease, 10).await)?);
    ensure!(
        CHECK,
        claimed == [n1.clone(), n3.clone(), n4.clone()],
        "a claim took {claimed:?}: expected {n1}, {n3}, {n4} ({n2} waits behind {n1}, same partner)"
    );
    let again = ok(CHECK, repo.claim(Claim::Due, now, lease, 10).await)?;
    ensure!(
        CHECK,
        again.is_empty(),
        "claimed ones were claimed again: {again:?}"
    );
    // A time with nanoseconds: a store that keeps its claims' lease ends less
    // precisely must still know the lease a failure names (see `Failure::claimed_until`).
    let later = now + lease + time::Duration::nanoseconds(123_456_789);
    let expired = claimed_ids(ok(CHECK, repo.claim(Claim::Due, later, lease, 10).await)?);
    ensure!(
        CHECK,
        expired == claimed,
        "after the lease, {expired:?} was claimed, expected {claimed:?}"
    );
    // Asked for by id, an email still waits behind the older one of its pair.
    let behind = claim_ids(CHECK, repo, std::slice::from_ref(n2), later, lease, 10).await?;
    ensure!(
        CHECK,
        behind.is_empty(),
        "a claim of {n2} alone took {behind:?}, while {n1} (same partner) is pending"
    );
    // An id asked for twice is claimed once, even with no lease to hold it meanwhile.
    let twice = [n1.clone(), n1.clone()];
    let once = claim_ids(CHECK, repo, &twice, later + lease, zero, 10).await?;
    ensure!(
        CHECK,
        once == [n1.clone()],
        "a claim of {n1} asked twice took {once:?}"
    );

    ok(CHECK, repo.mark_delivered(&[n1.clone(), n3.clone()]).await)?;
    let retry_at = later + time::Duration::hours(1);
    // Each failure names the lease it was tried under: the claim at `later`.
    let failure = |id: &NotificationId, next| Failure {
        id: id.clone(),
        attempts: 1,
        at: later,
        error: "421 try again later".to_owned(),
        next,
        claimed_until: Some(later + lease),
    };
    // A dispatcher whose lease (the first claim's) ran out, and whose email was
    // claimed again since, records nothing: not even a dead letter.
    let stale = Failure {
        claimed_until: Some(now + lease),
        ..failure(n4, AfterFailure::DeadLetter)
    };
    ok(CHECK, repo.record_failure(&stale).await)?;
    let n4_entry = entry_of(CHECK, repo, n4).await?;
    ensure!(
        CHECK,
        n4_entry.as_ref().is_some_and(untried),
        "a failure under a lease that ran out, {n4} claimed again since, left {n4_entry:?}"
    );
    let still = claim_ids(CHECK, repo, std::slice::from_ref(n4), later, lease, 10).await?;
    ensure!(
        CHECK,
        still.is_empty(),
        "a failure under a lease that ran out released the new claim: {still:?} claimed"
    );
    ok(
        CHECK,
        repo.record_failure(&failure(n4, AfterFailure::RetryAt(retry_at)))
            .await,
    )?;
    // n5: s-2's partner removed, told after n4 (same subscription, same partner), which
    // waits for its retry: n5 waits behind it, asked for or not.
    let removal = commit_of(&other_next, other_next.remove_partner(AT))?;
    let n5 = removal
        .notifications
        .first()
        .map(|n| n.id.clone())
        .ok_or_else(|| fixture("the removal tells nobody"))?;
    ok(CHECK, repo.commit(removal).await)?;
    let next = claimed_ids(ok(CHECK, repo.claim(Claim::Due, later, lease, 10).await)?);
    ensure!(
        CHECK,
        next == [n2.clone()],
        "after {n1} was delivered and {n4} failed, a claim took {next:?}, expected {n2} \
         only ({n5} waits behind {n4}'s retry)"
    );
    let behind_retry = claim_ids(CHECK, repo, std::slice::from_ref(&n5), later, lease, 10).await?;
    ensure!(
        CHECK,
        behind_retry.is_empty(),
        "a claim of {n5} alone took {behind_retry:?}, while {n4} (same partner) waits for its retry"
    );
    ok(
        CHECK,
        repo.record_failure(&failure(n2, AfterFailure::DeadLetter))
            .await,
    )?;
    let dead = ok(CHECK, repo.dead_letters(None, 10).await)?;
    ensure!(
        CHECK,
        dead.len() == 1
            && dead[0].notification.id == *n2
            && dead[0].status == DeliveryStatus::Dead
            && dead[0].attempts == 1
            && dead[0].last_error.as_deref() == Some("421 try again later"),
        "dead letters {dead:?}, expected {n2} with its attempt"
    );
    // Dead letters page by position: after the letter's own, none; after the one
    // before, the letter; none in a page of none.
    let at = dead[0].position;
    let pages = [(Some(at), 10, 0), (at.checked_sub(1), 10, 1), (None, 0, 0)];
    for (after, limit, expected) in pages {
        let page = ok(CHECK, repo.dead_letters(after, limit).await)?;
        ensure!(
            CHECK,
            page.len() == expected,
            "dead letters after {after:?}, at most {limit}: {page:?}, expected {expected}"
        );
    }
    let pending = ok(CHECK, repo.pending_notifications(10).await)?;
    ensure!(
        CHECK,
        pending.iter().map(|n| &n.id).collect::<Vec<_>>() == [n4, &n5],
        "pending {pending:?}, expected {n4} and {n5}"
    );
    let early = ok(
        CHECK,
        repo.claim(Claim::Due, retry_at - time::Duration::SECOND, lease, 10)
            .await,
    )?;
    ensure!(
        CHECK,
        early.is_empty(),
        "a notification was claimed before its retry time: {early:?}"
    );
    let due = claimed_ids(ok(
        CHECK,
        repo.claim(Claim::Due, retry_at, lease, 10).await,
    )?);
    ensure!(
        CHECK,
        due == [n4.clone()],
        "at its retry time, a claim took {due:?}, expected {n4} ({n5} behind it)"
    );
    ok(CHECK, repo.mark_delivered(std::slice::from_ref(n4)).await)?;
    let after = claim_ids(CHECK, repo, std::slice::from_ref(&n5), retry_at, lease, 10).await?;
    ensure!(
        CHECK,
        after == [n5.clone()],
        "once {n4} was delivered, a claim of {n5} took {after:?}"
    );

    let unknown = NotificationId::for_event(&id("nowhere")?, 1);
    ensure!(
        CHECK,
        !ok(CHECK, repo.redrive(&unknown, retry_at).await)?,
        "an unknown id was redriven"
    );
    ensure!(
        CHECK,
        ok(CHECK, repo.redrive(n2, retry_at).await)?,
        "the dead letter was not redriven"
    );
    let only = claim_ids(CHECK, repo, std::slice::from_ref(n2), retry_at, lease, 10).await?;
    ensure!(
        CHECK,
        only == [n2.clone()],
        "the redriven letter was not claimable: {only:?}"
    );
    let redriven = entry_of(CHECK, repo, n2).await?;
    ensure!(
        CHECK,
        redriven.as_ref().is_some_and(untried),
        "the redriven letter reads {redriven:?}, expected pending with no attempt"
    );
    ensure!(
        CHECK,
        !ok(CHECK, repo.redrive(&n5, retry_at).await)?,
        "a pending notification, {n5}, was redriven"
    );

    // A dead letter that a dispatcher whose send outlived its lease did deliver: marked
    // delivered, it is no dead letter any more, and a redrive cannot send it again.
    let given_up = Failure {
        at: retry_at,
        claimed_until: Some(retry_at + lease),
        ..failure(n2, AfterFailure::DeadLetter)
    };
    ok(CHECK, repo.record_failure(&given_up).await)?;
    ok(CHECK, repo.mark_delivered(std::slice::from_ref(n2)).await)?;
    let delivered = entry_of(CHECK, repo, n2).await?;
    ensure!(
        CHECK,
        delivered
            .as_ref()
            .is_some_and(|e| e.status == DeliveryStatus::Delivered),
        "a dead letter marked delivered reads {delivered:?}, expected delivered"
    );
    let dead = ok(CHECK, repo.dead_letters(None, 10).await)?;
    ensure!(
        CHECK,
        dead.is_empty(),
        "a dead letter marked delivered is still listed: {dead:?}"
    );
    ensure!(
        CHECK,
        !ok(CHECK, repo.redrive(n2, retry_at).await)?,
        "a delivered notification, {n2}, was redriven"
    );
    // A failure of a delivered notification is ignored, whatever the claim.
    let late = Failure {
        claimed_until: None,
        ..failure(n1, AfterFailure::DeadLetter)
    };
    ok(CHECK, repo.record_failure(&late).await)?;
    let still_delivered = entry_of(CHECK, repo, n1).await?;
    ensure!(
        CHECK,
        still_delivered
            .as_ref()
            .is_some_and(|e| e.status == DeliveryStatus::Delivered && e.attempts == 0),
        "a failure recorded for delivered {n1} left {still_delivered:?}"
    );
    Ok(())
}

/// Notification `id` with its delivery state, from the first page of the outbox.
async fn entry_of<R: Store>(
    check: &'static str,
    repo: &R,
    id: &NotificationId,
) -> Result<Option<OutboxEntry>, ConformanceFailure> {
    let entries = ok(check, repo.page_outbox(None, 10).await)?;
    Ok(entries.into_iter().find(|e| e.notification.id == *id))
}

/// Whether `entry` is pending with no failed attempt.
fn untried(entry: &OutboxEntry) -> bool {
    entry.status == DeliveryStatus::Pending && entry.attempts == 0
}

/// Claims notifications `ids`, at most `limit`, at `at` for `lease` (with no lease
/// they stay claimable); answers the ids claimed.
async fn claim_ids<R: Store>(
    check: &'static str,
    repo: &R,
    ids: &[NotificationId],
    at: OffsetDateTime,
    lease: time::Duration,
    limit: usize,
) -> Result<Vec<NotificationId>, ConformanceFailure> {
    let claimed = ok(check, repo.claim(Claim::Only(ids), at, lease, limit).await)?;
    Ok(claimed.into_iter().map(|e| e.notification.id).collect())
}

/// [`Repository::commit_and_claim`] claims what [`Outbox::claim`] with [`Claim::Only`]
/// would claim right after the commit (or nothing, the provided default), and leases
/// it; on a conflict it writes and claims nothing.
async fn a_commit_claims_what_a_claim_would<R: Store>(repo: &R) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "a_commit_claims_what_a_claim_would";
    let lease = time::Duration::minutes(1);
    let (s1, s2) = (subscription("s-1", "c-1")?, subscription("s-2", "c-1")?);
    ok(CHECK, repo.insert(s1.clone()).await)?;
    ok(CHECK, repo.insert(s2.clone()).await)?;
    let fabrikam = partner("565380")?;
    let usage = fabrikam.clone().enrolled_in(Program::OnlineServicesUsage);
    let first = designate(&s1, &fabrikam)?; // n1: 565380 added
    let replace = designate(&first.next, &partner("3664167")?)?; // n2: 565380 removed, n3: 3664167 added
    let on_s2 = designate(&s2, &fabrikam)?;
    // The same partner under another program: two notifications to one partner.
    let twice = commit_of(
        &on_s2.next,
        on_s2
            .next
            .associate(&usage, Program::OnlineServicesUsage, AT),
    )?;
    let ids = |c: &Commit| -> Vec<NotificationId> {
        c.notifications.iter().map(|n| n.id.clone()).collect()
    };
    let (n1, n2_n3, n4, n5_n6) = (ids(&first), ids(&replace), ids(&on_s2), ids(&twice));
    let stale = replace.clone();
    // Each commit claims what is claimable of its own notifications; `expected` is what
    // a claim would take.
    let steps = [
        (first, n1.clone(), "a first designation"),
        (
            replace,
            vec![n2_n3[1].clone()],
            "a replacement while the first email is claimed",
        ),
        (on_s2, n4.clone(), "a designation on another subscription"),
    ];
    for (commit, expected, what) in steps {
        let claimed: Vec<NotificationId> =
            ok(CHECK, repo.commit_and_claim(commit, AT, lease).await)?
                .into_iter()
                .map(|e| e.notification.id)
                .collect();
        ensure!(
            CHECK,
            claimed.is_empty() || claimed == expected,
            "{what} claimed {claimed:?}, expected {expected:?} (or nothing)"
        );
        let again = ok(
            CHECK,
            repo.claim(Claim::Only(&claimed), AT, lease, 10).await,
        )?;
        ensure!(
            CHECK,
            again.is_empty(),
            "{what}: what it claimed was claimable again: {again:?}"
        );
    }
    ok(CHECK, repo.mark_delivered(&n4).await)?;
    let claimed: Vec<NotificationId> = ok(CHECK, repo.commit_and_claim(twice, AT, lease).await)?
        .into_iter()
        .map(|e| e.notification.id)
        .collect();
    ensure!(
        CHECK,
        claimed.is_empty() || claimed == n5_n6[..1],
        "two emails to one partner: claimed {claimed:?}, expected the first of {n5_n6:?} only"
    );

    // An email whose time is still to come is not due: not claimed.
    let s3 = subscription("s-3", "c-1")?;
    ok(CHECK, repo.insert(s3.clone()).await)?;
    let early = AT - time::Duration::SECOND;
    let future = ok(
        CHECK,
        repo.commit_and_claim(designate(&s3, &fabrikam)?, early, lease)
            .await,
    )?;
    ensure!(
        CHECK,
        future.is_empty(),
        "an email not yet due was claimed: {future:?}"
    );

    let before = observe(CHECK, repo, s1.id()).await?;
    let refused = repo.commit_and_claim(stale, AT, lease).await;
    ensure!(
        CHECK,
        matches!(refused, Err(StoreError::Conflict { .. })),
        "a stale commit answered {refused:?}, expected a conflict"
    );
    let after = observe(CHECK, repo, s1.id()).await?;
    ensure!(
        CHECK,
        before == after,
        "a refused commit changed {before:?} into {after:?}"
    );
    let entries = ok(CHECK, repo.page_outbox(None, 10).await)?;
    ensure!(
        CHECK,
        entries.len() == 7,
        "the outbox holds {} notifications, expected 7",
        entries.len()
    );
    Ok(())
}

/// Checks that `repo` answers `cursor`, past its last change, with
/// [`StoreError::UnknownCursor`].
async fn past_the_end<R: Store>(
    check: &'static str,
    repo: &R,
    cursor: Cursor,
) -> Result<(), ConformanceFailure> {
    let answer = repo.changes(Some(&cursor), 10).await;
    ensure!(
        check,
        matches!(answer, Err(StoreError::UnknownCursor(c)) if c == cursor),
        "a cursor past the last change ({cursor}) answered {answer:?}, expected UnknownCursor"
    );
    Ok(())
}

/// How many reads [`the_change_feed_has_every_event_once_in_commit_order`] makes at
/// most: a store may withhold committed changes for a while (PostgreSQL, while an older
/// transaction anywhere in the database is running), never skip them.
const FEED_READS: usize = 10_000;

async fn the_change_feed_has_every_event_once_in_commit_order<R: Store>(
    repo: &R,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "the_change_feed_has_every_event_once_in_commit_order";
    let first = ok(CHECK, repo.changes(None, 10).await)?;
    ensure!(
        CHECK,
        first.is_empty(),
        "an empty store's feed holds {first:?}"
    );
    let start = ok(CHECK, repo.changes(Some(&Cursor::new(0, 0)), 10).await)?;
    ensure!(
        CHECK,
        start.is_empty(),
        "an empty store's feed after 0.0 holds {start:?}"
    );
    past_the_end(CHECK, repo, Cursor::new(0, 1)).await?;
    let (a, b) = (subscription("f-a", "c-1")?, subscription("f-b", "c-2")?);
    ok(CHECK, repo.insert(a.clone()).await)?;
    ok(CHECK, repo.insert(b.clone()).await)?;
    // Interleaved commits of two subscriptions, a lifecycle change among them.
    let mut expected = Vec::new();
    let mut current = (a.clone(), b.clone());
    for (which, commit) in [
        (0, designate(&a, &partner("565380")?)?),
        (1, designate(&b, &partner("565380")?)?),
    ] {
        expected.extend(commit.events.clone());
        if which == 0 {
            current.0 = commit.next.clone()
        } else {
            current.1 = commit.next.clone()
        }
        ok(CHECK, repo.commit(commit).await)?;
    }
    let replace = designate(&current.0, &partner("3664167")?)?;
    expected.extend(replace.events.clone());
    ok(CHECK, repo.commit(replace).await)?;
    let suspend = commit_of(&current.1, current.1.suspend(AT))?;
    expected.extend(suspend.events.clone());
    ok(CHECK, repo.commit(suspend).await)?;

    // Read two at a time, resuming each time from the cursor as a reader saves it.
    let mut seen: Vec<Change> = Vec::new();
    let mut cursor: Option<Cursor> = None;
    for _ in 0..FEED_READS {
        if seen.len() >= expected.len() {
            break;
        }
        let page = ok(CHECK, repo.changes(cursor.as_ref(), 2).await)?;
        ensure!(
            CHECK,
            page.len() <= 2,
            "asked for 2 changes, got {}",
            page.len()
        );
        let Some(last) = page.last() else { continue };
        let saved = serde_json::to_string(&last.cursor).map_err(|e| ConformanceFailure {
            check: CHECK,
            message: e.to_string(),
        })?;
        cursor = serde_json::from_str(&saved).map_err(|e| ConformanceFailure {
            check: CHECK,
            message: e.to_string(),
        })?;
        seen.extend(page);
    }
    let events: Vec<&AssociationEvent> = seen.iter().map(|c| &c.event).collect();
    ensure!(
        CHECK,
        events == expected.iter().collect::<Vec<_>>(),
        "the feed answered {events:#?}, expected every event once in commit order: {expected:#?}"
    );
    ensure!(
        CHECK,
        seen.windows(2).all(|w| w[0].cursor < w[1].cursor),
        "the cursors do not increase: {:?}",
        seen.iter().map(|c| c.cursor).collect::<Vec<_>>()
    );
    let after_last = ok(CHECK, repo.changes(cursor.as_ref(), 10).await)?;
    ensure!(
        CHECK,
        after_last.is_empty(),
        "after the last change: {after_last:?}"
    );
    // A cursor past the last change is one another store answered.
    if let Some(last) = cursor {
        let (epoch, position) = (last.epoch(), last.position());
        for foreign in [
            Cursor::new(epoch, position.saturating_add(1)),
            Cursor::new(epoch.saturating_add(1), 0),
            Cursor::new(u64::MAX, u64::MAX),
        ] {
            past_the_end(CHECK, repo, foreign).await?;
        }
    }
    let none = ok(CHECK, repo.changes(None, 0).await)?;
    ensure!(CHECK, none.is_empty(), "a limit of 0 answered {none:?}");
    // From a cursor in the middle: the rest.
    let rest = ok(CHECK, repo.changes(Some(&seen[1].cursor), 10).await)?;
    ensure!(
        CHECK,
        rest == seen[2..],
        "after the second change: {rest:?}, expected {:?}",
        &seen[2..]
    );
    Ok(())
}
