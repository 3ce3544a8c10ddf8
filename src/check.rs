//! "Check ID" and "Submit", decided: [`PartnerCheck`] (what the customer confirms) and
//! the pure functions that apply DESIGN section 4's order of checks to values read by
//! the [service](crate::service):
//!
//! | step | before the directory is asked | once it answered |
//! |---|---|---|
//! | "Check ID" | [`partner_to_look_up`]: authorization, the ID's syntax, status | [`PartnerCheck::issue`]: found, enrolled |
//! | "Submit" | [`PartnerCheck::verify`]: authorization, already on record, version, age, status | [`designate`]: found, enrolled, the change |

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::actor::{Access, Actor};
use crate::association::{self, Transition};
use crate::error::Error;
use crate::id::{MpnId, SubscriptionId};
use crate::partner::{Partner, Program};
use crate::subscription::{PartnerOfRecord, Subscription};

/// How long a [`PartnerCheck`] may be submitted after it was made, by default.
pub const DEFAULT_CHECK_TTL: Duration = Duration::minutes(15);

/// What "Check ID" found: the partner to confirm, and the state of the subscription it
/// was checked against. Pass it back to [`PorService::submit`](crate::PorService::submit).
///
/// A check is serializable so that a portal can round-trip it through a form, which
/// also makes it forgeable: `submit` re-verifies everything and trusts nothing in it
/// but the subscription id, the partner's MPN ID, the version and the time.
///
/// # Examples
///
/// ```
/// use dpor::*;
/// # use time::macros::datetime;
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// # let dpor::doc_fixture::Fixture { service, notifier, admin, sub, .. } = dpor::doc_fixture::fabrikam().await?;
/// // `service` runs over the in-memory ports, its clock at 2026-01-05 10:00 UTC; `admin`
/// // is the global administrator of the customer that owns subscription `sub`; the
/// // directory lists partner 565380 (Fabrikam, Seattle); `notifier` records the emails.
/// let check = service.check_partner(&admin, &sub, "565380").await?;
/// // What the portal shows before "Submit":
/// assert_eq!((check.partner().name(), check.partner().location()), ("Fabrikam", Some("Seattle, US")));
/// assert!(check.current().is_none()); // nobody to replace
/// assert_eq!((check.version(), check.checked_at()), (0, datetime!(2026-01-05 10:00 UTC)));
///
/// // A portal may round-trip the check through a form; `submit` re-verifies it.
/// let from_form: PartnerCheck = serde_json::from_str(&serde_json::to_string(&check)?)?;
/// assert!(service.submit(&admin, &from_form).await?.changed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartnerCheck {
    subscription: SubscriptionId,
    partner: Partner,
    program: Program,
    current: Option<PartnerOfRecord>,
    version: u64,
    checked_at: OffsetDateTime,
}

/// The wire form of [`PartnerCheck`], a request: unknown fields are refused, and
/// [`object_only!`](crate::wire::object_only) refuses an array in place of the object,
/// here and in the nested records.
#[derive(Serialize, Deserialize)]
#[serde(remote = "PartnerCheck", deny_unknown_fields)]
struct PartnerCheckFields {
    subscription: SubscriptionId,
    #[serde(deserialize_with = "crate::wire::object")]
    partner: Partner,
    program: Program,
    #[serde(deserialize_with = "crate::wire::optional_object")]
    current: Option<PartnerOfRecord>,
    version: u64,
    #[serde(with = "crate::timestamp")]
    checked_at: OffsetDateTime,
}

crate::wire::object_only!(PartnerCheck via PartnerCheckFields, "a partner check (a JSON object)");

impl PartnerCheck {
    /// The subscription checked against.
    pub fn subscription(&self) -> &SubscriptionId {
        &self.subscription
    }

    /// The partner found: its name and location are what the portal shows.
    pub fn partner(&self) -> &Partner {
        &self.partner
    }

    /// The program the partner would be designated for.
    pub fn program(&self) -> Program {
        self.program
    }

    /// The partner of record at the time of the check, if any (the one to be replaced).
    pub fn current(&self) -> Option<&PartnerOfRecord> {
        self.current.as_ref()
    }

    /// The subscription's version at the time of the check.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When the check was made.
    pub fn checked_at(&self) -> OffsetDateTime {
        self.checked_at
    }

    /// Whether submitting this check would change nothing (the partner is already
    /// partner of record for this program).
    pub fn is_current(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|c| c.is(self.partner.mpn_id(), self.program))
    }

    /// "Check ID", once the directory answered for the MPN ID that
    /// [`partner_to_look_up`] gave: the partner must exist ([`Error::PartnerNotFound`])
    /// and be enrolled in `program` ([`Error::PartnerNotEnrolled`]). The check records
    /// the subscription's state as read and the time `now`.
    ///
    /// # Errors
    ///
    /// [`Error::PartnerNotFound`], then [`Error::PartnerNotEnrolled`];
    /// [`Error::TimeOutOfRange`] when `now` cannot be recorded.
    pub fn issue(
        stored: &Subscription,
        mpn_id: MpnId,
        found: Option<Partner>,
        program: Program,
        now: OffsetDateTime,
    ) -> Result<PartnerCheck, Error> {
        let partner = found.ok_or(Error::PartnerNotFound(mpn_id))?;
        association::ensure_enrolled(&partner, program)?;
        Ok(PartnerCheck {
            subscription: stored.id().clone(),
            partner,
            program,
            current: stored.partner_of_record().cloned(),
            version: stored.version(),
            checked_at: association::recordable(now)?,
        })
    }

    /// "Submit", up to the directory: decides whether `actor` may submit this check
    /// against `stored` (the subscription as read now) for the service's `program` at
    /// `now`, and what comes next. Nothing in the check is trusted but its subscription
    /// id, MPN ID, version and time.
    ///
    /// A check whose partner is already partner of record (for `program`) is
    /// [`Verified::AlreadyOnRecord`] whatever the version: submitting it again (a double
    /// click, a client retrying after a lost response) changes nothing and succeeds. A
    /// stale check for any other partner is a conflict, so that it never undoes someone
    /// else's later change.
    ///
    /// # Errors
    ///
    /// In this order: [`Error::SubscriptionNotFound`] for the check's subscription when
    /// `stored` is another one; [`Error::SubscriptionNotFound`] or [`Error::Forbidden`]
    /// (see [`Actor::authorize`]); then, unless the partner is already on record,
    /// [`Error::Conflict`] when the subscription's version is no longer the check's;
    /// [`Error::CheckExpired`] when the check is older than `ttl` or dated after `now`;
    /// [`Error::SubscriptionNotActive`].
    ///
    /// ```
    /// use dpor::*;
    /// use dpor::check::Verified;
    /// use time::{Duration, macros::datetime};
    ///
    /// let contoso = CustomerId::new("contoso")?;
    /// let sub = Subscription::new(SubscriptionId::new("sub-1")?, contoso.clone(), CloudService::Office365, "E3");
    /// let fabrikam = Partner::new(MpnId::parse("565380")?, "Fabrikam").enrolled_in(Program::OnlineServicesSell);
    /// let (sell, at, ttl) = (Program::OnlineServicesSell, datetime!(2026-01-05 10:00 UTC), Duration::minutes(15));
    /// let check = PartnerCheck::issue(&sub, fabrikam.mpn_id(), Some(fabrikam.clone()), sell, at)?;
    ///
    /// let admin = Actor::global_admin(contoso);
    /// let soon = at + Duration::minutes(5);
    /// assert_eq!(check.verify(&admin, &sub, sell, soon, ttl)?, Verified::LookUp(fabrikam.mpn_id()));
    /// assert!(matches!(check.verify(&admin, &sub, sell, at + Duration::minutes(16), ttl), Err(Error::CheckExpired { .. })));
    ///
    /// // Once the partner is on record, the same check again is nothing to do.
    /// let Transition::Changed { next, .. } = sub.associate(&fabrikam, sell, soon)? else { unreachable!() };
    /// assert_eq!(check.verify(&admin, &next, sell, soon, ttl)?, Verified::AlreadyOnRecord);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify(
        &self,
        actor: &Actor,
        stored: &Subscription,
        program: Program,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<Verified, Error> {
        if stored.id() != &self.subscription {
            return Err(Error::SubscriptionNotFound(self.subscription.clone()));
        }
        actor.authorize(stored, Access::Change)?;
        let mpn_id = self.partner.mpn_id();
        if stored
            .partner_of_record()
            .is_some_and(|por| por.is(mpn_id, program))
        {
            return Ok(Verified::AlreadyOnRecord);
        }
        association::ensure_version(stored, self.version)?;
        if self.checked_at > now || now - self.checked_at > ttl {
            return Err(Error::CheckExpired {
                checked_at: self.checked_at,
            });
        }
        association::ensure_active(stored)?;
        Ok(Verified::LookUp(mpn_id))
    }
}

/// What "Submit" does after [`PartnerCheck::verify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verified {
    /// The check's partner is already partner of record: nothing changes, no email.
    AlreadyOnRecord,
    /// Look this partner up again in the directory, then [`designate`] it.
    LookUp(MpnId),
}

/// "Check ID", up to the directory: decides whether `actor` may check a partner on
/// `stored` and which MPN ID to look up, from what the customer `typed`.
///
/// # Errors
///
/// In this order: [`Error::SubscriptionNotFound`] or [`Error::Forbidden`] (see
/// [`Actor::authorize`]); [`Error::InvalidMpnId`]; [`Error::SubscriptionNotActive`].
///
/// ```
/// use dpor::*;
/// use dpor::check::partner_to_look_up;
///
/// let contoso = CustomerId::new("contoso")?;
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, contoso.clone(), CloudService::Office365, "E3");
/// let admin = Actor::global_admin(contoso);
/// assert_eq!(partner_to_look_up(&admin, &sub, " 565380 ")?.as_str(), "565380");
/// assert!(matches!(partner_to_look_up(&admin, &sub, "56538O"), Err(Error::InvalidMpnId(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn partner_to_look_up(
    actor: &Actor,
    stored: &Subscription,
    typed: &str,
) -> Result<MpnId, Error> {
    actor.authorize(stored, Access::Change)?;
    let mpn_id = MpnId::parse(typed)?;
    association::ensure_active(stored)?;
    Ok(mpn_id)
}

/// "Submit", once the directory answered again for the MPN ID that
/// [`PartnerCheck::verify`] gave: the partner must still exist, and then
/// [`Subscription::associate`] decides (enrolment in the service's `program`, the
/// change).
///
/// # Errors
///
/// [`Error::PartnerNotFound`]; then those of [`Subscription::associate`].
pub fn designate(
    stored: &Subscription,
    mpn_id: MpnId,
    found: Option<&Partner>,
    program: Program,
    now: OffsetDateTime,
) -> Result<Transition, Error> {
    let partner = found.ok_or(Error::PartnerNotFound(mpn_id))?;
    stored.associate(partner, program, now)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::actor::CustomerRole;
    use crate::id::CustomerId;
    use crate::subscription::{CloudService, SubscriptionStatus};

    const AT: OffsetDateTime = datetime!(2026-01-05 10:00 UTC);
    const TTL: Duration = Duration::minutes(15);
    const SELL: Program = Program::OnlineServicesSell;

    fn contoso() -> CustomerId {
        CustomerId::new("contoso").unwrap()
    }

    fn sub() -> Subscription {
        let id = SubscriptionId::new("sub-1").unwrap();
        Subscription::new(id, contoso(), CloudService::Office365, "E3")
    }

    fn fabrikam() -> Partner {
        Partner::new(MpnId::parse("565380").unwrap(), "Fabrikam")
            .enrolled_in(Program::OnlineServicesSell)
    }

    fn check_of(stored: &Subscription) -> PartnerCheck {
        let partner = fabrikam();
        PartnerCheck::issue(
            stored,
            partner.mpn_id(),
            Some(partner),
            Program::OnlineServicesSell,
            AT,
        )
        .unwrap()
    }

    fn admin() -> Actor {
        Actor::global_admin(contoso())
    }

    #[test]
    fn a_fresh_check_verifies_and_names_the_partner_to_look_up() {
        let verified = check_of(&sub()).verify(&admin(), &sub(), SELL, AT + TTL, TTL);
        assert_eq!(verified.unwrap(), Verified::LookUp(fabrikam().mpn_id()));
    }

    #[test]
    fn a_check_verifies_only_against_its_own_subscription() {
        let other = Subscription::new(
            SubscriptionId::new("sub-2").unwrap(),
            contoso(),
            CloudService::Office365,
            "E3",
        );
        let verified = check_of(&sub()).verify(&admin(), &other, SELL, AT, TTL);
        assert!(
            matches!(&verified, Err(Error::SubscriptionNotFound(id)) if id == sub().id()),
            "{verified:?}"
        );
    }

    #[test]
    fn a_changed_version_is_a_conflict() {
        let check = check_of(&sub());
        let Transition::Changed { next, .. } = sub().suspend(AT).unwrap() else {
            panic!("expected a change")
        };
        assert!(matches!(
            check.verify(&admin(), &next, SELL, AT, TTL),
            Err(Error::Conflict {
                expected: 0,
                actual: 1,
                ..
            })
        ));
    }

    #[test]
    fn an_old_or_future_check_has_expired() {
        let check = check_of(&sub());
        let late = AT + TTL + Duration::SECOND;
        let early = AT - Duration::SECOND;
        for now in [late, early] {
            assert!(matches!(
                check.verify(&admin(), &sub(), SELL, now, TTL),
                Err(Error::CheckExpired { checked_at }) if checked_at == AT
            ));
        }
    }

    #[test]
    fn authorization_comes_before_the_version_and_the_age() {
        let check = check_of(&sub());
        let billing = Actor::customer(contoso(), CustomerRole::BillingAdministrator);
        let stale = sub().with_status(SubscriptionStatus::Suspended);
        assert!(matches!(
            check.verify(&billing, &stale, SELL, AT + TTL * 2, TTL),
            Err(Error::Forbidden { .. })
        ));
        let stranger = Actor::global_admin(CustomerId::new("fabrikam").unwrap());
        assert!(matches!(
            check.verify(&stranger, &sub(), SELL, AT, TTL),
            Err(Error::SubscriptionNotFound(_))
        ));
    }

    #[test]
    fn an_inactive_subscription_is_refused_after_the_age() {
        let suspended = sub().with_status(SubscriptionStatus::Suspended);
        let check = check_of(&sub());
        assert!(matches!(
            check.verify(&admin(), &suspended, SELL, AT, TTL),
            Err(Error::SubscriptionNotActive { .. })
        ));
    }

    #[test]
    fn the_partner_already_on_record_is_nothing_to_do_whatever_the_version() {
        let check = check_of(&sub());
        let on_record = |partner: &Partner| match sub().associate(partner, SELL, AT).unwrap() {
            Transition::Changed { next, .. } => next,
            Transition::Unchanged => panic!("expected a change"),
        };
        let mine = on_record(&fabrikam());
        let late = AT + TTL * 4;
        let verified = check.verify(&admin(), &mine, SELL, late, TTL);
        assert_eq!(verified.unwrap(), Verified::AlreadyOnRecord);
        // Not for someone else's partner, nor under another program.
        let northwind =
            Partner::new(MpnId::parse("3664167").unwrap(), "Northwind").enrolled_in(SELL);
        let theirs = on_record(&northwind);
        assert!(matches!(
            check.verify(&admin(), &theirs, SELL, AT, TTL),
            Err(Error::Conflict { .. })
        ));
        let usage = Program::OnlineServicesUsage;
        assert!(matches!(
            check.verify(&admin(), &mine, usage, AT, TTL),
            Err(Error::Conflict { .. })
        ));
        // Authorization still comes first.
        let billing = Actor::customer(contoso(), CustomerRole::BillingAdministrator);
        assert!(matches!(
            check.verify(&billing, &mine, SELL, AT, TTL),
            Err(Error::Forbidden { .. })
        ));
    }

    #[test]
    fn check_id_orders_syntax_before_status_and_found_before_enrolled() {
        let suspended = sub().with_status(SubscriptionStatus::Suspended);
        assert!(matches!(
            partner_to_look_up(&admin(), &suspended, "x"),
            Err(Error::InvalidMpnId(_))
        ));
        assert!(matches!(
            partner_to_look_up(&admin(), &suspended, "565380"),
            Err(Error::SubscriptionNotActive { .. })
        ));
        let mpn_id = fabrikam().mpn_id();
        let usage = Program::OnlineServicesUsage;
        assert!(matches!(
            PartnerCheck::issue(&sub(), mpn_id, None, usage, AT),
            Err(Error::PartnerNotFound(_))
        ));
        assert!(matches!(
            PartnerCheck::issue(&sub(), mpn_id, Some(fabrikam()), usage, AT),
            Err(Error::PartnerNotEnrolled { .. })
        ));
    }
}
