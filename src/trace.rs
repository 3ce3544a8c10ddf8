//! Diagnostics through `tracing`, behind the optional `tracing` feature: one span per
//! service operation and an event for every delivery failure, dead letter and failed
//! record of the outbox. Without the feature every function here is a no-op.
//!
//! What is recorded: the operation, the subscription id, the actor's kind (never a
//! customer's or user's id), the outcome (`ok` or the [`Error::code`]); for the outbox,
//! the notification id and the attempt. Email addresses and partner names are never
//! recorded; a notifier's own failure text is recorded at DEBUG only (it may hold an
//! address).

use std::future::Future;

use crate::actor::Actor;
use crate::error::Error;
use crate::id::{MpnId, NotificationId, SubscriptionId};

/// Runs `work`, the body of service operation `name`, in a span of its own.
#[cfg(feature = "tracing")]
pub(crate) async fn operation<T>(
    name: &'static str,
    subscription: Option<&SubscriptionId>,
    actor: Option<&Actor>,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    use tracing::Instrument as _;
    let span = tracing::info_span!(
        "dpor",
        operation = name,
        subscription = subscription.map(SubscriptionId::as_str),
        actor = actor.map(kind),
        outcome = tracing::field::Empty,
    );
    let result = work.instrument(span.clone()).await;
    span.record(
        "outcome",
        result.as_ref().map_or_else(Error::code, |_| "ok"),
    );
    result
}

/// Runs `work` (the `tracing` feature is off): `work` itself, not a future around it,
/// so that the operation's state is not copied into one more future on every call.
#[cfg(not(feature = "tracing"))]
pub(crate) fn operation<T, F: Future<Output = Result<T, Error>>>(
    _name: &'static str,
    _subscription: Option<&SubscriptionId>,
    _actor: Option<&Actor>,
    work: F,
) -> F {
    work
}

/// The kind of an actor, as the spans record it.
#[cfg(feature = "tracing")]
fn kind(actor: &Actor) -> &'static str {
    use crate::actor::CustomerRole;
    match actor {
        Actor::Customer { role, .. } => match role {
            CustomerRole::GlobalAdministrator => "customer.global_administrator",
            CustomerRole::BillingAdministrator => "customer.billing_administrator",
            CustomerRole::ServiceAdministrator => "customer.service_administrator",
            CustomerRole::DelegatedAdministrator { .. } => "customer.delegated_administrator",
        },
        Actor::Partner { .. } => "partner",
        Actor::BillingSystem => "billing_system",
    }
}

/// A delivery attempt failed and will be tried again.
pub(crate) fn delivery_failed(id: &NotificationId, attempt: u32, text: &str) {
    #[cfg(feature = "tracing")]
    {
        tracing::warn!(notification = id.as_str(), attempt, "delivery failed");
        tracing::debug!(
            notification = id.as_str(),
            attempt,
            error = text,
            "delivery failure"
        );
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (id, attempt, text);
}

/// A delivery attempt failed for the last time: a dead letter.
pub(crate) fn dead_letter(id: &NotificationId, attempts: u32, text: &str) {
    #[cfg(feature = "tracing")]
    {
        tracing::warn!(notification = id.as_str(), attempts, "dead letter");
        tracing::debug!(
            notification = id.as_str(),
            attempts,
            error = text,
            "dead letter"
        );
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (id, attempts, text);
}

/// The directory lists a contact for `partner` that no notification can keep: the
/// email is written without one.
pub(crate) fn unusable_contact(partner: MpnId, error: &crate::text::TextError) {
    #[cfg(feature = "tracing")]
    tracing::warn!(partner = partner.as_str(), error = %error, "the directory's contact email cannot be used: the notification has none");
    #[cfg(not(feature = "tracing"))]
    let _ = (partner, error);
}

/// A dispatch loop's round failed (the loop naps, then tries again). Only the error's
/// code: a store's message may quote a row.
pub(crate) fn dispatch_failed(error: &Error) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        code = error.code(),
        "dispatching pending notifications failed"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = error;
}

/// A claimed outbox row does not decode: it is left for a release that reads it.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn claimed_unreadable(error: &dyn std::error::Error) {
    #[cfg(feature = "tracing")]
    tracing::error!(error = %error, "a claimed notification does not decode: skipped");
    #[cfg(not(feature = "tracing"))]
    let _ = error;
}

/// Claiming a fresh commit's notifications failed: the dispatcher sends them later.
pub(crate) fn claim_failed(count: usize, error: &dyn std::error::Error) {
    #[cfg(feature = "tracing")]
    tracing::error!(count, error = %error, "claiming notifications to deliver failed");
    #[cfg(not(feature = "tracing"))]
    let _ = (count, error);
}

/// A claim came back from the store after its lease had run out: its `count`
/// notifications are left for a claim after it (another dispatcher may have them).
pub(crate) fn claimed_after_the_lease(count: usize) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        count,
        "the claim came back after its lease ran out: nothing sent, left for a later claim"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = count;
}

/// A batch stopped sending with a quarter of its lease left: `count` notifications wait
/// for the lease to run out and a claim after it.
pub(crate) fn lease_running_out(count: usize) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        count,
        "the claim's lease is running out: left for a later claim"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = count;
}

/// Recording what became of a delivery failed (the claim expires; it is sent again).
pub(crate) fn record_failed(what: &'static str, count: usize, error: &dyn std::error::Error) {
    #[cfg(feature = "tracing")]
    tracing::error!(what, count, error = %error, "recording a delivery outcome failed");
    #[cfg(not(feature = "tracing"))]
    let _ = (what, count, error);
}
