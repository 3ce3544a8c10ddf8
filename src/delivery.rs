//! The delivery rules of the outbox, as pure functions of values: when a notification
//! may be tried, when a failed one is tried again, and when it becomes a dead letter.
//! The stores keep the state ([`Outbox`](crate::Outbox)); the service applies these
//! rules with the time of its [`Clock`](crate::Clock).
//!
//! - **Order.** For one subscription and one recipient partner, notifications go out in
//!   event order: one is not tried while an earlier one for the same pair is still
//!   pending. Other pairs never wait on each other.
//! - **Backoff.** A failed attempt is tried again after an exponential delay
//!   ([`DeliveryPolicy::first_retry`] doubling up to [`DeliveryPolicy::max_retry`]),
//!   with jitter, so that a broken mailbox is tried less and less often and many
//!   failures do not retry in step.
//! - **Dead letters.** After [`DeliveryPolicy::max_attempts`] attempts, or once the
//!   notification is older than [`DeliveryPolicy::max_age`], it becomes a dead letter:
//!   no longer tried, no longer blocking the ones after it, listed by
//!   [`PorService::dead_letters`](crate::PorService::dead_letters) and tried again on
//!   request ([`PorService::redrive`](crate::PorService::redrive)).
//! - **Claims.** A dispatcher claims what it sends for [`DeliveryPolicy::lease`]; other
//!   dispatchers skip it meanwhile, so several dispatchers over one store send each
//!   notification once when nothing crashes, and the claims of one that crashed
//!   expire and are taken over (delivery stays at least once).

use time::{Duration, OffsetDateTime};

use crate::id::NotificationId;

/// How the outbox retries, gives up and claims.
///
/// ```
/// use dpor::delivery::{AfterFailure, DeliveryPolicy};
/// use dpor::*;
/// use time::{Duration, macros::datetime};
///
/// let policy = DeliveryPolicy::default();
/// let id = NotificationId::for_event(&SubscriptionId::new("sub-1")?, 1);
/// let (created, now) = (datetime!(2026-01-05 10:00 UTC), datetime!(2026-01-05 10:01 UTC));
/// match policy.after_failure(&id, 1, created, now) {
///     AfterFailure::RetryAt(at) => assert!(at > now && at <= now + policy.first_retry),
///     AfterFailure::DeadLetter => unreachable!("one failure is not the end"),
/// }
/// assert_eq!(policy.after_failure(&id, policy.max_attempts, created, now), AfterFailure::DeadLetter);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// The most attempts before a notification becomes a dead letter (default 10).
    pub max_attempts: u32,
    /// The age (from the event it tells of) after which a failed notification becomes a
    /// dead letter (default 3 days).
    pub max_age: Duration,
    /// The delay before the second attempt (default 30 seconds); it doubles with each
    /// failure.
    pub first_retry: Duration,
    /// The longest delay between two attempts (default 1 hour).
    pub max_retry: Duration,
    /// How long a dispatcher holds what it claimed (default 1 minute). A batch starts no
    /// send in the last quarter of its lease (the first excepted, unless the lease has
    /// run out before it: a claim that waited that long on the store), and leaves the
    /// rest to a claim after it, so that another dispatcher never takes over what it is
    /// still sending; make it longer than one send takes, several times over, and than a
    /// claim's or a commit's wait on the store (a claim that came back after its lease
    /// sends nothing, and is claimed again after: a lease shorter than that wait sends
    /// nothing at all). A negative lease is taken as zero. A send
    /// that outlives it anyway records its failure only if nobody claimed the
    /// notification since ([`Failure::claimed_until`](crate::Failure::claimed_until));
    /// with a lease of zero, two claims at one instant name the same lease end, and
    /// that protection is gone.
    pub lease: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            max_attempts: 10,
            max_age: Duration::days(3),
            first_retry: Duration::seconds(30),
            max_retry: Duration::hours(1),
            lease: Duration::minutes(1),
        }
    }
}

/// What becomes of a notification whose delivery failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try again at this instant (or later).
    RetryAt(OffsetDateTime),
    /// Give up: a dead letter.
    DeadLetter,
}

impl DeliveryPolicy {
    /// The last moment a dispatcher that claimed a batch at `claimed_at` starts a send
    /// of it (the first excepted): three quarters into the lease. What is left then
    /// waits for the lease to run out and a claim after it, so that what was sent is
    /// recorded before another dispatcher may claim it (unless one send takes more than
    /// the last quarter: at least once, not exactly once).
    pub(crate) fn last_send_start(&self, claimed_at: OffsetDateTime) -> OffsetDateTime {
        claimed_at.saturating_add(self.lease - self.lease / 4)
    }

    /// Whether a dispatcher that claimed a batch at `claimed_at` may start, at `now`,
    /// the send of its `first` notification or of a later one. A later one: until
    /// [`last_send_start`](Self::last_send_start). The first, however slow the sends:
    /// until the lease runs out, but not after. A claim that waited on the store longer
    /// than its lease (a commit's claim behind a lock, a claim in a queue) may have been
    /// claimed again by another dispatcher meanwhile, which sends it; left alone, it is
    /// claimed again after. With no lease (zero; the service takes a negative one as
    /// zero) there is no claim to keep: it sends.
    pub(crate) fn may_start_send(
        &self,
        claimed_at: OffsetDateTime,
        now: OffsetDateTime,
        first: bool,
    ) -> bool {
        if first {
            self.lease == Duration::ZERO || now < self.lease_end(claimed_at)
        } else {
            now < self.last_send_start(claimed_at)
        }
    }

    /// When a claim made at `claimed_at` runs out: what a failure names
    /// ([`Failure::claimed_until`](crate::Failure::claimed_until)), and what the stores
    /// record.
    pub(crate) fn lease_end(&self, claimed_at: OffsetDateTime) -> OffsetDateTime {
        claimed_at.saturating_add(self.lease)
    }

    /// What follows the `attempts`-th failed attempt (counting this one, so at least 1)
    /// to deliver notification `id`, made at `now`, for an event of `created`.
    ///
    /// The delay before the next attempt is `first_retry * 2^(attempts - 1)`, at most
    /// `max_retry`, less a jitter of up to half of it. The jitter is drawn from `id` and
    /// `attempts`, so that it spreads notifications apart and yet is the same every
    /// time it is computed (tests and replays see the same schedule).
    pub fn after_failure(
        &self,
        id: &NotificationId,
        attempts: u32,
        created: OffsetDateTime,
        now: OffsetDateTime,
    ) -> AfterFailure {
        if attempts >= self.max_attempts || now - created >= self.max_age {
            return AfterFailure::DeadLetter;
        }
        let doublings = attempts.saturating_sub(1).min(30);
        let full = self
            .first_retry
            .checked_mul(1_i32 << doublings)
            .unwrap_or(self.max_retry)
            .min(self.max_retry)
            .max(Duration::ZERO);
        let jitter = full * (jitter_fraction(id, attempts) / 2.0);
        AfterFailure::RetryAt(now.saturating_add(full - jitter))
    }
}

/// A fraction in [0, 1) drawn from the notification id and the attempt (FNV-1a).
fn jitter_fraction(id: &NotificationId, attempts: u32) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.as_str().bytes().chain(attempts.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash >> 11) as f64 / (1_u64 << 53) as f64
}

/// The text of a failure, as the outbox records it: short (at most 200 characters) and
/// on one line. It is the notifier's own message (its error's source): a notifier
/// should not put secrets in it.
pub fn failure_text(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(next) = source {
        text.push_str(": ");
        text.push_str(&next.to_string());
        source = next.source();
    }
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_FAILURE_CHARS)
        .collect();
    one_line
}

/// The most characters of a recorded failure.
pub const MAX_FAILURE_CHARS: usize = 200;

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::id::SubscriptionId;

    fn id(n: u64) -> NotificationId {
        NotificationId::for_event(&SubscriptionId::new("sub-1").unwrap(), n)
    }

    const CREATED: OffsetDateTime = datetime!(2026-01-05 10:00 UTC);

    #[test]
    fn a_batch_starts_sends_for_three_quarters_of_its_lease() {
        let policy = DeliveryPolicy::default();
        assert_eq!(
            policy.last_send_start(CREATED),
            CREATED + Duration::seconds(45)
        );
        let none = DeliveryPolicy {
            lease: Duration::ZERO,
            ..policy
        };
        assert_eq!(none.last_send_start(CREATED), CREATED);
    }

    #[test]
    fn the_first_send_starts_until_the_lease_runs_out_the_others_until_three_quarters() {
        let policy = DeliveryPolicy::default();
        let at = |seconds| CREATED + Duration::seconds(seconds);
        for (now, first, later) in [
            (0, true, true),
            (44, true, true),
            (45, true, false),
            (59, true, false),
            (60, false, false),
        ] {
            assert_eq!(
                policy.may_start_send(CREATED, at(now), true),
                first,
                "first at {now} s"
            );
            assert_eq!(
                policy.may_start_send(CREATED, at(now), false),
                later,
                "later at {now} s"
            );
        }
        // No lease, no claim to keep: the first goes whenever.
        let none = DeliveryPolicy {
            lease: Duration::ZERO,
            ..policy
        };
        assert!(none.may_start_send(CREATED, at(3600), true));
        assert!(!none.may_start_send(CREATED, at(0), false));
    }

    #[test]
    fn delays_double_up_to_the_cap_with_at_most_half_taken_off() {
        let policy = DeliveryPolicy::default();
        let now = CREATED + Duration::minutes(1);
        for attempts in 1..policy.max_attempts {
            let full = (policy.first_retry * 2_i32.pow(attempts - 1)).min(policy.max_retry);
            let AfterFailure::RetryAt(at) = policy.after_failure(&id(1), attempts, CREATED, now)
            else {
                panic!("attempt {attempts} gave up")
            };
            assert!(
                at - now <= full && at - now >= full / 2,
                "attempt {attempts}: {}",
                at - now
            );
        }
    }

    #[test]
    fn jitter_spreads_notifications_and_is_repeatable() {
        let policy = DeliveryPolicy::default();
        let now = CREATED;
        let at = |n| policy.after_failure(&id(n), 3, CREATED, now);
        assert_eq!(at(1), at(1));
        let distinct: std::collections::BTreeSet<_> =
            (1..50).map(|n| format!("{:?}", at(n))).collect();
        assert!(distinct.len() > 40, "{distinct:?}");
    }

    #[test]
    fn too_many_attempts_or_too_old_is_a_dead_letter() {
        let policy = DeliveryPolicy::default();
        let now = CREATED + Duration::hours(1);
        assert_eq!(
            policy.after_failure(&id(1), policy.max_attempts, CREATED, now),
            AfterFailure::DeadLetter
        );
        let old = CREATED + policy.max_age;
        assert_eq!(
            policy.after_failure(&id(1), 1, CREATED, old),
            AfterFailure::DeadLetter
        );
    }

    #[test]
    fn the_failure_text_is_short_and_on_one_line() {
        let error =
            crate::error::NotifyError::new(format!("550 mailbox\nunavailable {}", "x".repeat(500)));
        let text = failure_text(&error);
        assert!(
            text.starts_with("the notifier failed: 550 mailbox unavailable"),
            "{text}"
        );
        assert_eq!(text.chars().count(), MAX_FAILURE_CHARS);
    }
}
