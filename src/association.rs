//! The association state machine: pure transitions from one [`Subscription`] value to
//! the next, with the [`AssociationEvent`]s that lead there.
//!
//! Nothing here does I/O or reads a clock: the instant is passed in. The rules:
//!
//! - Only an active subscription changes ([`Error::SubscriptionNotActive`]), and only to
//!   a partner enrolled in the program ([`Error::PartnerNotEnrolled`]); checked in that
//!   order, before the state.
//! - The partner of record is the pair (partner, program). The same pair again is
//!   [`Transition::Unchanged`].
//! - Designating B where none is set: one event, `PartnerAssociated { B, replaced: None }`.
//! - Replacing A by B (or A under another program): one version step with two events,
//!   `PartnerRemoved { A, ReplacedBy(B) }` then `PartnerAssociated { B, replaced: Some(A) }`.
//! - Removing A: `PartnerRemoved { A, RemovedByCustomer }`; with none set,
//!   [`Error::NoPartnerOfRecord`].
//! - Every change is exactly one version step; events are numbered on from
//!   [`Subscription::last_event_sequence`], so sequences are 1-based and gap-free.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::Error;
use crate::event::{AssociationEvent, AssociationEventKind, Cause, RemovalReason};
use crate::id::SubscriptionId;
use crate::partner::{Partner, Program};
use crate::subscription::{PartnerOfRecord, Subscription, SubscriptionStatus};
use crate::timestamp;

/// The outcome of a transition: nothing to do, or the next value and its events.
///
/// # Examples
///
/// ```
/// use dpor::*;
/// use time::macros::datetime;
///
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, CloudService::Office365, "E3");
/// let fabrikam = Partner::new(MpnId::parse("565380")?, "Fabrikam").enrolled_in(Program::OnlineServicesSell);
///
/// match sub.associate(&fabrikam, Program::OnlineServicesSell, datetime!(2026-01-05 10:00 UTC))? {
///     Transition::Unchanged => println!("already the partner of record: nothing to store"),
///     Transition::Changed { next, events } => {
///         // Store `next` and `events` together: see `Repository::commit`.
///         assert_eq!(next.version(), sub.version() + 1);
///         assert_eq!(events.len(), 1);
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Serialized as an object tagged by `"type"`: `{"type":"unchanged"}`,
/// `{"type":"changed","next":{...},"events":[...]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Transition {
    /// The subscription is already in the asked-for state: no version step, no event.
    Unchanged,
    /// The subscription changes.
    Changed {
        /// The subscription after the change (one version on).
        next: Subscription,
        /// The events of the change, in order.
        events: Vec<AssociationEvent>,
    },
}

impl Subscription {
    /// Designates `partner` as partner of record for `program`, at `at`.
    ///
    /// # Errors
    ///
    /// In this order: [`Error::SubscriptionNotActive`] when the subscription is
    /// suspended or cancelled; [`Error::PartnerNotEnrolled`] when `partner` is not
    /// enrolled in `program`; [`Error::TimeOutOfRange`] when a change is due and
    /// `at` cannot be recorded.
    ///
    /// # Examples
    ///
    /// ```
    /// use dpor::*;
    /// use time::macros::datetime;
    ///
    /// let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, CloudService::Office365, "E3");
    /// let fabrikam = Partner::new(MpnId::parse("565380")?, "Fabrikam").enrolled_in(Program::OnlineServicesSell);
    ///
    /// let Transition::Changed { next, events } =
    ///     sub.associate(&fabrikam, Program::OnlineServicesSell, datetime!(2026-01-05 10:00 UTC))?
    /// else { unreachable!() };
    /// assert_eq!(next.version(), 1);
    /// assert_eq!(next.partner_of_record().map(|p| p.mpn_id()), Some(fabrikam.mpn_id()));
    /// assert_eq!(events.len(), 1);
    ///
    /// // The same partner again changes nothing.
    /// assert_eq!(next.associate(&fabrikam, Program::OnlineServicesSell, datetime!(2026-01-06 10:00 UTC))?, Transition::Unchanged);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn associate(
        &self,
        partner: &Partner,
        program: Program,
        at: OffsetDateTime,
    ) -> Result<Transition, Error> {
        ensure_active(self)?;
        ensure_enrolled(partner, program)?;
        let current = self.partner_of_record();
        if current.is_some_and(|por| por.is(partner.mpn_id(), program)) {
            return Ok(Transition::Unchanged);
        }
        let at = recordable(at)?;
        let mut kinds = Vec::with_capacity(2);
        if let Some(previous) = current {
            kinds.push(AssociationEventKind::PartnerRemoved {
                partner: previous.mpn_id(),
                reason: RemovalReason::ReplacedBy(partner.mpn_id()),
            });
        }
        kinds.push(AssociationEventKind::PartnerAssociated {
            partner: partner.mpn_id(),
            partner_name: partner.name().to_owned(),
            program,
            replaced: current.map(PartnerOfRecord::mpn_id),
        });
        let por = PartnerOfRecord::new(partner.mpn_id(), partner.name(), program, at);
        Ok(self.version_step(Some(por), self.status(), at, kinds))
    }

    /// Removes the partner of record, at `at`.
    ///
    /// # Errors
    ///
    /// In this order: [`Error::SubscriptionNotActive`] when the subscription is
    /// suspended or cancelled; [`Error::NoPartnerOfRecord`] when none is set; [`Error::TimeOutOfRange`] when a change is due and
    /// `at` cannot be recorded.
    ///
    /// # Examples
    ///
    /// ```
    /// use dpor::*;
    /// use time::macros::datetime;
    ///
    /// let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, CloudService::Azure, "Pay-as-you-go");
    /// assert!(matches!(sub.remove_partner(datetime!(2026-01-05 10:00 UTC)), Err(Error::NoPartnerOfRecord(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove_partner(&self, at: OffsetDateTime) -> Result<Transition, Error> {
        ensure_active(self)?;
        let Some(current) = self.partner_of_record() else {
            return Err(Error::NoPartnerOfRecord(self.id().clone()));
        };
        let kind = AssociationEventKind::PartnerRemoved {
            partner: current.mpn_id(),
            reason: RemovalReason::RemovedByCustomer,
        };
        Ok(self.version_step(None, self.status(), recordable(at)?, vec![kind]))
    }

    /// Removes the partner of record a caller saw at version `seen` (on a confirmation
    /// page, say), at `at`: as [`remove_partner`](Self::remove_partner), but a
    /// subscription changed since is a conflict, so that a stale confirmation never
    /// removes a partner the caller did not see. With no partner of record there is
    /// nothing left to do, whatever the version (a double click, or someone else
    /// removed it): [`Transition::Unchanged`].
    ///
    /// # Errors
    ///
    /// In this order, unless there is no partner of record: [`Error::Conflict`] when
    /// the version is not `seen`; then as [`remove_partner`](Self::remove_partner).
    ///
    /// ```
    /// use dpor::*;
    /// use time::macros::datetime;
    ///
    /// let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, CloudService::Azure, "Azure plan");
    /// let at = datetime!(2026-01-05 10:00 UTC);
    /// let fabrikam = Partner::new(MpnId::parse("565380")?, "Fabrikam").enrolled_in(Program::OnlineServicesSell);
    /// let Transition::Changed { next: one, .. } = sub.associate(&fabrikam, Program::OnlineServicesSell, at)? else { unreachable!() };
    ///
    /// // The page showed Fabrikam at version 1: removed.
    /// let Transition::Changed { next: two, .. } = one.remove_partner_seen(1, at)? else { unreachable!() };
    /// // The same confirmation again: nothing left to do.
    /// assert_eq!(two.remove_partner_seen(1, at)?, Transition::Unchanged);
    /// // A page older than the partner of record: refused.
    /// assert!(matches!(one.remove_partner_seen(0, at), Err(Error::Conflict { expected: 0, actual: 1, .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove_partner_seen(&self, seen: u64, at: OffsetDateTime) -> Result<Transition, Error> {
        if self.partner_of_record().is_none() {
            return Ok(Transition::Unchanged);
        }
        ensure_version(self, seen)?;
        self.remove_partner(at)
    }

    /// Suspends an active subscription, at `at`.
    ///
    /// # Errors
    ///
    /// [`Error::SubscriptionCancelled`] when it is cancelled; [`Error::TimeOutOfRange`] when a change is due and
    /// `at` cannot be recorded.
    ///
    /// ```
    /// use dpor::*;
    /// use time::macros::datetime;
    ///
    /// let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, CloudService::Azure, "Azure plan");
    /// let Transition::Changed { next, .. } = sub.suspend(datetime!(2026-03-01 00:00 UTC))? else { unreachable!() };
    /// assert_eq!(next.status(), SubscriptionStatus::Suspended);
    /// assert_eq!(next.suspend(datetime!(2026-03-02 00:00 UTC))?, Transition::Unchanged);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn suspend(&self, at: OffsetDateTime) -> Result<Transition, Error> {
        self.move_to_status(SubscriptionStatus::Suspended, at)
    }

    /// Reactivates a suspended subscription, at `at`.
    ///
    /// # Errors
    ///
    /// [`Error::SubscriptionCancelled`] when it is cancelled; [`Error::TimeOutOfRange`] when a change is due and
    /// `at` cannot be recorded.
    pub fn reactivate(&self, at: OffsetDateTime) -> Result<Transition, Error> {
        self.move_to_status(SubscriptionStatus::Active, at)
    }

    /// Cancels the subscription, at `at`. Cancelling a cancelled one is
    /// [`Transition::Unchanged`].
    ///
    /// # Errors
    ///
    /// [`Error::TimeOutOfRange`] when a change is due and `at` cannot be recorded.
    pub fn cancel(&self, at: OffsetDateTime) -> Result<Transition, Error> {
        self.move_to_status(SubscriptionStatus::Cancelled, at)
    }

    /// Moves the subscription to `new_id`, at `at`: returns this subscription's
    /// transition (its partner removed with [`RemovalReason::SubscriptionMigrated`],
    /// then [`AssociationEventKind::SubscriptionMigrated`], status cancelled) and the new
    /// subscription (active, version 0, **no** partner of record).
    ///
    /// # Errors
    ///
    /// [`Error::SubscriptionCancelled`] when it is cancelled (or already migrated);
    /// [`Error::SubscriptionAlreadyExists`] when `new_id` is its own id;
    /// [`Error::TimeOutOfRange`] when `at` cannot be recorded.
    ///
    /// ```
    /// use dpor::*;
    /// use time::macros::datetime;
    ///
    /// let sub = Subscription::new(SubscriptionId::new("ea-1")?, CustomerId::new("contoso")?, CloudService::Azure, "Azure EA");
    /// let (old, new) = sub.migrate(SubscriptionId::new("mca-1")?, datetime!(2026-04-01 00:00 UTC))?;
    /// assert!(matches!(old, Transition::Changed { ref next, .. } if next.status() == SubscriptionStatus::Cancelled));
    /// assert_eq!((new.id().as_str(), new.partner_of_record()), ("mca-1", None));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn migrate(
        &self,
        new_id: SubscriptionId,
        at: OffsetDateTime,
    ) -> Result<(Transition, Subscription), Error> {
        if self.status() == SubscriptionStatus::Cancelled {
            return Err(Error::SubscriptionCancelled(self.id().clone()));
        }
        if &new_id == self.id() {
            return Err(Error::SubscriptionAlreadyExists(new_id));
        }
        let mut kinds = Vec::with_capacity(2);
        if let Some(current) = self.partner_of_record() {
            kinds.push(AssociationEventKind::PartnerRemoved {
                partner: current.mpn_id(),
                reason: RemovalReason::SubscriptionMigrated,
            });
        }
        kinds.push(AssociationEventKind::SubscriptionMigrated { to: new_id.clone() });
        let migrated = Subscription::new(
            new_id,
            self.customer().clone(),
            self.service().clone(),
            self.name(),
        );
        let transition =
            self.version_step(None, SubscriptionStatus::Cancelled, recordable(at)?, kinds);
        Ok((transition, migrated))
    }

    /// Moves the status to `target`, recording the matching lifecycle event.
    fn move_to_status(
        &self,
        target: SubscriptionStatus,
        at: OffsetDateTime,
    ) -> Result<Transition, Error> {
        let from = self.status();
        if from == target {
            return Ok(Transition::Unchanged);
        }
        if from == SubscriptionStatus::Cancelled {
            return Err(Error::SubscriptionCancelled(self.id().clone()));
        }
        let partner = self.partner_of_record().map(PartnerOfRecord::mpn_id);
        let kind = match target {
            SubscriptionStatus::Active => AssociationEventKind::SubscriptionReactivated { partner },
            SubscriptionStatus::Suspended => {
                AssociationEventKind::SubscriptionSuspended { partner }
            }
            SubscriptionStatus::Cancelled => {
                AssociationEventKind::SubscriptionCancelled { partner }
            }
        };
        let por = self.partner_of_record().cloned();
        Ok(self.version_step(por, target, recordable(at)?, vec![kind]))
    }

    /// One version step to `partner_of_record` and `status`, recording `kinds` as
    /// events numbered on from the last one.
    fn version_step(
        &self,
        partner_of_record: Option<PartnerOfRecord>,
        status: SubscriptionStatus,
        at: OffsetDateTime,
        kinds: Vec<AssociationEventKind>,
    ) -> Transition {
        let first = self.last_event_sequence() + 1;
        let events: Vec<AssociationEvent> = (first..)
            .zip(kinds)
            .map(|(sequence, kind)| AssociationEvent {
                subscription: self.id().clone(),
                customer: self.customer().clone(),
                sequence,
                at,
                kind,
                caused_by: Cause::Unknown,
            })
            .collect();
        let next = self.successor(partner_of_record, status, events.len() as u64);
        Transition::Changed { next, events }
    }
}

/// `at` in UTC, as every recorded time is, or [`Error::TimeOutOfRange`] when its UTC
/// date is outside the years 0000 to 9999 (a clock gone wrong).
pub(crate) fn recordable(at: OffsetDateTime) -> Result<OffsetDateTime, Error> {
    timestamp::utc(at).ok_or(Error::TimeOutOfRange { at })
}

/// A change decided on the subscription as a page or a check saw it, at version
/// `seen`, goes ahead only on that version: [`Error::Conflict`] otherwise.
pub(crate) fn ensure_version(subscription: &Subscription, seen: u64) -> Result<(), Error> {
    if subscription.version() == seen {
        return Ok(());
    }
    Err(Error::Conflict {
        subscription: subscription.id().clone(),
        expected: seen,
        actual: subscription.version(),
    })
}

/// Only an active subscription changes its partner of record: what
/// [`Subscription::associate`] and [`Subscription::remove_partner`] require first, and
/// what "Check ID" verifies before it asks the directory.
///
/// # Errors
///
/// [`Error::SubscriptionNotActive`] when it is suspended or cancelled.
pub fn ensure_active(subscription: &Subscription) -> Result<(), Error> {
    match subscription.status() {
        SubscriptionStatus::Active => Ok(()),
        status => Err(Error::SubscriptionNotActive {
            subscription: subscription.id().clone(),
            status,
        }),
    }
}

/// A partner may be designated for `program` only if it is enrolled in it: what
/// [`Subscription::associate`] requires, and what "Check ID" verifies.
///
/// # Errors
///
/// [`Error::PartnerNotEnrolled`].
pub fn ensure_enrolled(partner: &Partner, program: Program) -> Result<(), Error> {
    if partner.is_enrolled(program) {
        Ok(())
    } else {
        Err(Error::PartnerNotEnrolled {
            mpn_id: partner.mpn_id(),
            program,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{CustomerId, MpnId, SubscriptionId};
    use crate::subscription::CloudService;
    use time::macros::datetime;

    const SELL: Program = Program::OnlineServicesSell;

    fn sub() -> Subscription {
        Subscription::new(
            SubscriptionId::new("sub-1").unwrap(),
            CustomerId::new("contoso").unwrap(),
            CloudService::Office365,
            "E3",
        )
    }

    fn partner(id: &str) -> Partner {
        Partner::new(MpnId::parse(id).unwrap(), format!("Partner {id}")).enrolled_in(SELL)
    }

    fn changed(t: Transition) -> (Subscription, Vec<AssociationEvent>) {
        match t {
            Transition::Changed { next, events } => (next, events),
            Transition::Unchanged => panic!("expected a change"),
        }
    }

    const T0: OffsetDateTime = datetime!(2026-01-05 10:00 UTC);

    #[test]
    fn associating_when_none_is_one_event() {
        let (next, events) = changed(sub().associate(&partner("565380"), SELL, T0).unwrap());
        assert_eq!(next.version(), 1);
        assert_eq!(next.last_event_sequence(), 1);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].sequence, 1);
        assert!(matches!(
            events[0].kind,
            AssociationEventKind::PartnerAssociated { replaced: None, .. }
        ));
    }

    #[test]
    fn replacing_is_one_version_step_with_two_events() {
        let (a, b) = (partner("565380"), partner("3664167"));
        let (one, _) = changed(sub().associate(&a, SELL, T0).unwrap());
        let (two, events) = changed(one.associate(&b, SELL, T0).unwrap());
        assert_eq!(two.version(), 2);
        assert_eq!(two.last_event_sequence(), 3);
        assert_eq!(
            events[0].kind,
            AssociationEventKind::PartnerRemoved {
                partner: a.mpn_id(),
                reason: RemovalReason::ReplacedBy(b.mpn_id())
            }
        );
        assert!(matches!(
            events[1].kind,
            AssociationEventKind::PartnerAssociated { replaced: Some(r), .. } if r == a.mpn_id()
        ));
        assert_eq!([events[0].sequence, events[1].sequence], [2, 3]);
    }

    #[test]
    fn same_partner_under_another_program_is_a_replacement() {
        let a = partner("565380").enrolled_in(Program::OnlineServicesUsage);
        let (one, _) = changed(sub().associate(&a, SELL, T0).unwrap());
        let (two, events) = changed(one.associate(&a, Program::OnlineServicesUsage, T0).unwrap());
        assert_eq!(events.len(), 2);
        assert_eq!(
            two.partner_of_record().unwrap().program(),
            Program::OnlineServicesUsage
        );
    }

    #[test]
    fn same_partner_again_is_unchanged() {
        let a = partner("565380");
        let (one, _) = changed(sub().associate(&a, SELL, T0).unwrap());
        assert_eq!(one.associate(&a, SELL, T0).unwrap(), Transition::Unchanged);
    }

    #[test]
    fn not_enrolled_partner_is_refused() {
        let a = Partner::new(MpnId::parse("565380").unwrap(), "A");
        assert!(matches!(
            sub().associate(&a, SELL, T0),
            Err(Error::PartnerNotEnrolled { program: SELL, .. })
        ));
    }

    #[test]
    fn inactive_subscription_is_refused_before_enrolment() {
        let a = Partner::new(MpnId::parse("565380").unwrap(), "A");
        let cancelled = sub().with_status(SubscriptionStatus::Cancelled);
        assert!(matches!(
            cancelled.associate(&a, SELL, T0),
            Err(Error::SubscriptionNotActive {
                status: SubscriptionStatus::Cancelled,
                ..
            })
        ));
        assert!(matches!(
            cancelled.remove_partner(T0),
            Err(Error::SubscriptionNotActive { .. })
        ));
    }

    #[test]
    fn removing_with_none_is_refused() {
        assert!(matches!(
            sub().remove_partner(T0),
            Err(Error::NoPartnerOfRecord(_))
        ));
    }

    #[test]
    fn removing_records_removed_by_customer() {
        let (one, _) = changed(sub().associate(&partner("565380"), SELL, T0).unwrap());
        let (two, events) = changed(one.remove_partner(T0).unwrap());
        assert!(two.partner_of_record().is_none());
        assert_eq!(two.version(), 2);
        assert!(matches!(
            events[0].kind,
            AssociationEventKind::PartnerRemoved {
                reason: RemovalReason::RemovedByCustomer,
                ..
            }
        ));
    }

    #[test]
    fn transitions_never_modify_their_input() {
        let before = sub();
        let copy = before.clone();
        let _ = before.associate(&partner("565380"), SELL, T0);
        assert_eq!(before, copy);
    }

    #[test]
    fn suspension_keeps_the_partner_and_blocks_changes() {
        let (one, _) = changed(sub().associate(&partner("565380"), SELL, T0).unwrap());
        let (suspended, events) = changed(one.suspend(T0).unwrap());
        assert_eq!(suspended.status(), SubscriptionStatus::Suspended);
        assert!(suspended.partner_of_record().is_some());
        assert_eq!(events[0].sequence, 2);
        assert!(matches!(
            suspended.remove_partner(T0),
            Err(Error::SubscriptionNotActive { .. })
        ));
        let (active, _) = changed(suspended.reactivate(T0).unwrap());
        assert_eq!(active.status(), SubscriptionStatus::Active);
        assert_eq!(active.version(), 3);
    }

    #[test]
    fn a_cancelled_subscription_no_longer_changes() {
        let (cancelled, _) = changed(sub().cancel(T0).unwrap());
        assert_eq!(cancelled.cancel(T0).unwrap(), Transition::Unchanged);
        for result in [cancelled.suspend(T0), cancelled.reactivate(T0)] {
            assert!(matches!(result, Err(Error::SubscriptionCancelled(_))));
        }
        assert!(matches!(
            cancelled.migrate(SubscriptionId::new("new").unwrap(), T0),
            Err(Error::SubscriptionCancelled(_))
        ));
    }

    #[test]
    fn migration_drops_the_partner_of_record() {
        let (one, _) = changed(sub().associate(&partner("565380"), SELL, T0).unwrap());
        let (old, new) = one
            .migrate(SubscriptionId::new("new").unwrap(), T0)
            .unwrap();
        let (old, events) = changed(old);
        assert_eq!(old.status(), SubscriptionStatus::Cancelled);
        assert!(old.partner_of_record().is_none());
        assert!(matches!(
            events[0].kind,
            AssociationEventKind::PartnerRemoved {
                reason: RemovalReason::SubscriptionMigrated,
                ..
            }
        ));
        assert!(matches!(
            events[1].kind,
            AssociationEventKind::SubscriptionMigrated { .. }
        ));
        assert_eq!((new.version(), new.partner_of_record()), (0, None));
        assert_eq!(new.customer(), old.customer());
    }

    #[test]
    fn times_are_recorded_in_utc() {
        let at = datetime!(2026-01-05 12:00 +02:00);
        let (next, events) = changed(sub().associate(&partner("565380"), SELL, at).unwrap());
        assert_eq!(events[0].at.offset(), time::UtcOffset::UTC);
        assert_eq!(next.partner_of_record().unwrap().since(), at);
    }
}
