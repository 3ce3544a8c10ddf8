//! Attribution over time: who was partner of record *when* ([`periods`],
//! [`partner_of_record_at`]). Pure functions over a subscription's history; the
//! incentive rules built on them live in [`incentive`](crate::incentive).
//!
//! A **period** is a stretch of time during which one partner was partner of record
//! *and* the subscription counted: it starts when the partner is associated (or the
//! subscription is reactivated), and ends when the partner is removed or replaced, or
//! the subscription is suspended (a pause: a new period starts on reactivation),
//! cancelled or migrated. Periods are half-open, `[from, to)`, so a replacement at
//! instant `t` attributes `t` to the new partner; empty periods are left out.
//!
//! [`partner_of_record_at`] answers the other question: who was on the record at an
//! instant (suspension and cancellation leave the partner there).
//!
//! Events are read in sequence order. Should a clock have gone backwards between two
//! events, the later event is taken to happen no earlier than the one before it, so
//! that periods never overlap.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::event::{AssociationEvent, AssociationEventKind};
use crate::id::MpnId;
use crate::partner::Program;

/// One stretch of time during which `partner` was partner of record, for `program`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PorPeriod {
    /// The partner of record.
    pub partner: MpnId,
    /// The program the association counted for.
    pub program: Program,
    /// Start, included.
    #[serde(with = "crate::timestamp")]
    pub from: OffsetDateTime,
    /// End, excluded; `None` while it lasts.
    #[serde(with = "crate::timestamp::option")]
    pub to: Option<OffsetDateTime>,
}

impl PorPeriod {
    /// Whether `at` falls in this period.
    pub fn contains(&self, at: OffsetDateTime) -> bool {
        self.from <= at && self.to.is_none_or(|to| at < to)
    }

    /// How long the period lasted up to `now` (zero if it starts later).
    pub fn length_until(&self, now: OffsetDateTime) -> Duration {
        let end = self.to.map_or(now, |to| to.min(now));
        (end - self.from).max(Duration::ZERO)
    }
}

/// The attribution periods of one subscription's history, in order. They never
/// overlap.
///
/// ```
/// use dpor::*;
/// use dpor::attribution::periods;
/// use time::macros::datetime;
///
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, CloudService::Office365, "E3");
/// let a = Partner::new(MpnId::parse("565380")?, "A").enrolled_in(Program::OnlineServicesSell);
/// let mut history = Vec::new();
/// let Transition::Changed { next, events } = sub.associate(&a, Program::OnlineServicesSell, datetime!(2026-01-01 0:00 UTC))? else { unreachable!() };
/// history.extend(events);
/// let Transition::Changed { events, .. } = next.suspend(datetime!(2026-02-01 0:00 UTC))? else { unreachable!() };
/// history.extend(events);
///
/// let p = periods(&history);
/// assert_eq!(p.len(), 1);
/// assert_eq!((p[0].from, p[0].to), (datetime!(2026-01-01 0:00 UTC), Some(datetime!(2026-02-01 0:00 UTC))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn periods(history: &[AssociationEvent]) -> Vec<PorPeriod> {
    let mut result: Vec<PorPeriod> = Vec::new();
    let mut designated: Option<(MpnId, Program)> = None;
    let mut open: Option<PorPeriod> = None;
    let mut close = |open: &mut Option<PorPeriod>, at: OffsetDateTime| {
        if let Some(mut period) = open.take()
            && period.from < at
        {
            period.to = Some(at);
            result.push(period);
        }
    };
    for (at, kind) in timeline(history) {
        match kind {
            AssociationEventKind::PartnerAssociated {
                partner, program, ..
            } => {
                close(&mut open, at);
                designated = Some((*partner, *program));
                open = Some(PorPeriod {
                    partner: *partner,
                    program: *program,
                    from: at,
                    to: None,
                });
            }
            AssociationEventKind::PartnerRemoved { .. } => {
                close(&mut open, at);
                designated = None;
            }
            AssociationEventKind::SubscriptionSuspended { .. } => close(&mut open, at),
            AssociationEventKind::SubscriptionReactivated { .. } => {
                if open.is_none()
                    && let Some((partner, program)) = designated
                {
                    open = Some(PorPeriod {
                        partner,
                        program,
                        from: at,
                        to: None,
                    });
                }
            }
            AssociationEventKind::SubscriptionCancelled { .. }
            | AssociationEventKind::SubscriptionMigrated { .. } => {
                close(&mut open, at);
                designated = None;
            }
        }
    }
    result.extend(open);
    result
}

/// The partner of record at `at`: what the subscription's record showed then, the
/// history replayed up to that instant (events at `at` included). `None` before the
/// first association, between a removal and the next association, and after a
/// migration. Suspension and cancellation leave the partner on the record, so they do
/// not change the answer; whether that time *counted* for the partner is what
/// [`periods`] tells.
///
/// ```
/// use dpor::attribution::partner_of_record_at;
/// use time::macros::datetime;
///
/// assert_eq!(partner_of_record_at(&[], datetime!(2026-01-01 0:00 UTC)), None);
/// ```
pub fn partner_of_record_at(history: &[AssociationEvent], at: OffsetDateTime) -> Option<MpnId> {
    let mut current = None;
    for (when, kind) in timeline(history) {
        if when > at {
            break;
        }
        match kind {
            AssociationEventKind::PartnerAssociated { partner, .. } => current = Some(*partner),
            AssociationEventKind::PartnerRemoved { .. } => current = None,
            AssociationEventKind::SubscriptionSuspended { .. }
            | AssociationEventKind::SubscriptionReactivated { .. }
            | AssociationEventKind::SubscriptionCancelled { .. }
            | AssociationEventKind::SubscriptionMigrated { .. } => {}
        }
    }
    current
}

/// The events in sequence order with the instant each takes effect: its own, or the
/// one before it should a clock have gone backwards.
fn timeline(
    history: &[AssociationEvent],
) -> impl Iterator<Item = (OffsetDateTime, &AssociationEventKind)> {
    history
        .iter()
        .scan(None, |last: &mut Option<OffsetDateTime>, event| {
            let at = last.map_or(event.at, |last| event.at.max(last));
            *last = Some(at);
            Some((at, &event.kind))
        })
}
