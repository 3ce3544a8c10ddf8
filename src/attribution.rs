//! Attribution over time: who was partner of record *when* ([`periods`],
//! [`partner_of_record_at`]), incentive eligibility ([`IncentivePolicy`]), and the
//! partner quick link ([`PartnerLink`]). Pure functions over a subscription's history.
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

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::event::{AssociationEvent, AssociationEventKind};
use crate::id::{IdError, MpnId, MpnIdError, SubscriptionId};
use crate::partner::Program;
use crate::subscription::{CloudService, Subscription, SubscriptionStatus};

/// One stretch of time during which `partner` was partner of record, for `program`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

/// An incentive rule: which subscriptions count for a partner, and how many it needs.
///
/// The Sell program rewards partners associated with a number of Office 365 and CRM /
/// Dynamics subscriptions ([`IncentivePolicy::sell`]); the Usage program, workloads in
/// use ([`IncentivePolicy::usage`]). The thresholds are the host's to set; the
/// defaults (1 subscription, 30 days) are placeholders to be replaced by the program's
/// current terms.
///
/// Serialized with `minimum_tenure` in whole seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncentivePolicy {
    /// The program the association must count for.
    pub program: Program,
    /// The services that count.
    pub services: BTreeSet<CloudService>,
    /// How many qualifying subscriptions make the partner eligible.
    pub minimum_subscriptions: usize,
    /// How long a subscription must have been attributed to its current partner (time
    /// suspended excluded) to qualify.
    #[serde(with = "crate::timestamp::seconds")]
    pub minimum_tenure: Duration,
}

/// Why one subscription does not qualify under an [`IncentivePolicy`]: a portal can
/// show each reason to the partner.
///
/// ```
/// use dpor::{CloudService, Disqualification};
///
/// fn explain(reason: &Disqualification) -> String {
///     match reason {
///         Disqualification::ServiceNotCounted(service) => format!("{service} does not count"),
///         Disqualification::TenureTooShort { tenure, required } => {
///             format!("{} of {} days", tenure.whole_days(), required.whole_days())
///         }
///         other => format!("{other:?}"),
///     }
/// }
/// assert_eq!(explain(&Disqualification::ServiceNotCounted(CloudService::Azure)), "Azure does not count");
/// ```
///
/// Serialized as an object tagged by `"type"`, durations in whole seconds:
/// `{"type":"tenure_too_short","tenure":86400,"required":2592000}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "DisqualificationRepr", into = "DisqualificationRepr")]
#[non_exhaustive]
pub enum Disqualification {
    /// It has no partner of record.
    NoPartnerOfRecord,
    /// Its service does not count for the policy.
    ServiceNotCounted(CloudService),
    /// It is suspended or cancelled.
    NotActive(SubscriptionStatus),
    /// Its partner of record is designated for another program.
    OtherProgram(Program),
    /// Its partner of record has not held it long enough yet.
    TenureTooShort {
        /// Attributed time so far.
        tenure: Duration,
        /// Attributed time required.
        required: Duration,
    },
}

/// The verdict of [`IncentivePolicy::evaluate`]: eligible or not, and why.
///
/// ```
/// use dpor::*;
///
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, CloudService::Azure, "Azure plan");
/// let verdict = IncentivePolicy::sell().evaluate(&[(sub, Vec::new())], time::OffsetDateTime::UNIX_EPOCH);
/// assert!(!verdict.eligible);
/// assert_eq!((verdict.required, verdict.missing), (1, 1));
/// assert_eq!(verdict.disqualified[0].1, Disqualification::NoPartnerOfRecord);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Eligibility {
    /// Whether enough subscriptions qualify.
    pub eligible: bool,
    /// The subscriptions that qualify.
    pub qualifying: Vec<SubscriptionId>,
    /// The subscriptions that do not, each with the reason.
    pub disqualified: Vec<(SubscriptionId, Disqualification)>,
    /// How many qualifying subscriptions the policy requires.
    pub required: usize,
    /// How many more would be needed (0 when eligible).
    pub missing: usize,
}

/// The wire form of [`Disqualification`]: named fields for the newtype variants, `{}`
/// for the unit one, durations in whole seconds.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum DisqualificationRepr {
    NoPartnerOfRecord {},
    ServiceNotCounted {
        service: CloudService,
    },
    NotActive {
        status: SubscriptionStatus,
    },
    OtherProgram {
        program: Program,
    },
    TenureTooShort {
        #[serde(with = "crate::timestamp::seconds")]
        tenure: Duration,
        #[serde(with = "crate::timestamp::seconds")]
        required: Duration,
    },
}

impl From<DisqualificationRepr> for Disqualification {
    fn from(repr: DisqualificationRepr) -> Self {
        match repr {
            DisqualificationRepr::NoPartnerOfRecord {} => Disqualification::NoPartnerOfRecord,
            DisqualificationRepr::ServiceNotCounted { service } => {
                Disqualification::ServiceNotCounted(service)
            }
            DisqualificationRepr::NotActive { status } => Disqualification::NotActive(status),
            DisqualificationRepr::OtherProgram { program } => {
                Disqualification::OtherProgram(program)
            }
            DisqualificationRepr::TenureTooShort { tenure, required } => {
                Disqualification::TenureTooShort { tenure, required }
            }
        }
    }
}

impl From<Disqualification> for DisqualificationRepr {
    fn from(reason: Disqualification) -> Self {
        match reason {
            Disqualification::NoPartnerOfRecord => DisqualificationRepr::NoPartnerOfRecord {},
            Disqualification::ServiceNotCounted(service) => {
                DisqualificationRepr::ServiceNotCounted { service }
            }
            Disqualification::NotActive(status) => DisqualificationRepr::NotActive { status },
            Disqualification::OtherProgram(program) => {
                DisqualificationRepr::OtherProgram { program }
            }
            Disqualification::TenureTooShort { tenure, required } => {
                DisqualificationRepr::TenureTooShort { tenure, required }
            }
        }
    }
}

impl IncentivePolicy {
    /// The Online Services Sell program: Office 365 and CRM / Dynamics subscriptions.
    pub fn sell() -> Self {
        IncentivePolicy {
            program: Program::OnlineServicesSell,
            services: [
                CloudService::Office365,
                CloudService::DynamicsCrmOnline,
                CloudService::Dynamics365,
            ]
            .into(),
            minimum_subscriptions: 1,
            minimum_tenure: Duration::days(30),
        }
    }

    /// The Online Services Usage program: every named cloud service counts.
    pub fn usage() -> Self {
        IncentivePolicy {
            program: Program::OnlineServicesUsage,
            services: [
                CloudService::Office365,
                CloudService::DynamicsCrmOnline,
                CloudService::Dynamics365,
                CloudService::Intune,
                CloudService::EnterpriseMobilitySuite,
                CloudService::Azure,
            ]
            .into(),
            ..IncentivePolicy::sell()
        }
    }

    /// The same policy requiring `n` qualifying subscriptions.
    pub fn with_minimum_subscriptions(self, n: usize) -> Self {
        IncentivePolicy {
            minimum_subscriptions: n,
            ..self
        }
    }

    /// The same policy requiring `tenure` of attributed time per subscription.
    pub fn with_minimum_tenure(self, tenure: Duration) -> Self {
        IncentivePolicy {
            minimum_tenure: tenure,
            ..self
        }
    }

    /// Evaluates one partner's portfolio (each subscription with its history, as
    /// [`PorService::partner_portfolio`](crate::PorService::partner_portfolio) and
    /// [`PorService::history`](crate::PorService::history) give them) at `now`.
    ///
    /// A subscription qualifies when it has a partner of record for the policy's
    /// program, its service counts, it is active, and its current partner has been
    /// attributed it for at least the minimum tenure since it was last designated.
    ///
    /// ```
    /// use dpor::*;
    /// use dpor::attribution::IncentivePolicy;
    /// use time::{Duration, macros::datetime};
    ///
    /// let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, CloudService::Office365, "E3");
    /// let a = Partner::new(MpnId::parse("565380")?, "A").enrolled_in(Program::OnlineServicesSell);
    /// let Transition::Changed { next, events } = sub.associate(&a, Program::OnlineServicesSell, datetime!(2026-01-01 0:00 UTC))? else { unreachable!() };
    ///
    /// let policy = IncentivePolicy::sell().with_minimum_tenure(Duration::days(30));
    /// let portfolio = [(next, events)];
    /// assert!(!policy.evaluate(&portfolio, datetime!(2026-01-15 0:00 UTC)).eligible);
    /// assert!(policy.evaluate(&portfolio, datetime!(2026-02-15 0:00 UTC)).eligible);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn evaluate(
        &self,
        portfolio: &[(Subscription, Vec<AssociationEvent>)],
        now: OffsetDateTime,
    ) -> Eligibility {
        let mut qualifying = Vec::new();
        let mut disqualified = Vec::new();
        for (subscription, history) in portfolio {
            match self.disqualification(subscription, history, now) {
                None => qualifying.push(subscription.id().clone()),
                Some(reason) => disqualified.push((subscription.id().clone(), reason)),
            }
        }
        let missing = self.minimum_subscriptions.saturating_sub(qualifying.len());
        Eligibility {
            eligible: missing == 0,
            qualifying,
            disqualified,
            required: self.minimum_subscriptions,
            missing,
        }
    }

    fn disqualification(
        &self,
        subscription: &Subscription,
        history: &[AssociationEvent],
        now: OffsetDateTime,
    ) -> Option<Disqualification> {
        let Some(por) = subscription.partner_of_record() else {
            return Some(Disqualification::NoPartnerOfRecord);
        };
        if !self.services.contains(subscription.service()) {
            return Some(Disqualification::ServiceNotCounted(
                subscription.service().clone(),
            ));
        }
        if subscription.status() != SubscriptionStatus::Active {
            return Some(Disqualification::NotActive(subscription.status()));
        }
        if por.program() != self.program {
            return Some(Disqualification::OtherProgram(por.program()));
        }
        let tenure = periods(history)
            .iter()
            .filter(|p| p.partner == por.mpn_id() && p.from >= por.since())
            .map(|p| p.length_until(now))
            .fold(Duration::ZERO, |sum, d| sum.saturating_add(d));
        if tenure < self.minimum_tenure {
            return Some(Disqualification::TenureTooShort {
                tenure,
                required: self.minimum_tenure,
            });
        }
        None
    }
}

/// A partner's quick link: a URL query that pre-fills "Check ID" for the customer.
///
/// The partner sends it; the customer's global administrator opens it, which is
/// [`PorService::check_partner`](crate::PorService::check_partner) with its fields,
/// and submits as usual. Parsing is strict: exactly the keys `subscription` and
/// `mpn_id`, once each, percent-encoded UTF-8, each value valid.
///
/// ```
/// use dpor::*;
/// use dpor::attribution::PartnerLink;
///
/// let link = PartnerLink { subscription: SubscriptionId::new("sub#1")?, mpn_id: MpnId::parse("565380")? };
/// let query = link.to_query_string();
/// assert_eq!(query, "subscription=sub%231&mpn_id=565380");
/// assert_eq!(PartnerLink::parse(&query)?, link);
/// assert!(PartnerLink::parse("subscription=sub-1").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerLink {
    /// The subscription to designate the partner on.
    pub subscription: SubscriptionId,
    /// The partner's MPN ID.
    pub mpn_id: MpnId,
}

/// Why a query string is not a [`PartnerLink`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PartnerLinkError {
    /// A `key=value` pair is malformed (no `=`, or an empty pair).
    #[error("the link is malformed near {0:?}")]
    Malformed(String),
    /// A key other than `subscription` and `mpn_id`.
    #[error("the link has an unknown field {0:?}")]
    UnknownField(String),
    /// A field given twice.
    #[error("the link gives {0} twice")]
    DuplicateField(&'static str),
    /// A required field is missing.
    #[error("the link has no {0}")]
    MissingField(&'static str),
    /// Bad percent-encoding, a character that must be encoded, or not UTF-8.
    #[error("the link is not correctly encoded near {0:?}")]
    Encoding(String),
    /// The subscription id is invalid.
    #[error("the link's subscription id is invalid: {0}")]
    Subscription(#[source] IdError),
    /// The MPN ID is invalid.
    #[error("the link's partner ID is invalid: {0}")]
    MpnId(#[source] MpnIdError),
}

impl PartnerLink {
    /// The link as a query string (without `?`): `subscription=...&mpn_id=...`, every
    /// byte outside `A-Z a-z 0-9 - . _ ~` percent-encoded.
    pub fn to_query_string(&self) -> String {
        format!(
            "subscription={}&mpn_id={}",
            encode(self.subscription.as_str()),
            self.mpn_id
        )
    }

    /// Parses a query string (a leading `?` is allowed).
    ///
    /// # Errors
    ///
    /// [`PartnerLinkError`] says what is wrong; nothing is guessed or skipped.
    pub fn parse(query: &str) -> Result<PartnerLink, PartnerLinkError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let (mut subscription, mut mpn_id) = (None, None);
        for pair in query.split('&') {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(PartnerLinkError::Malformed(pair.to_owned()));
            };
            let (slot, name) = match decode(key)?.as_str() {
                "subscription" => (&mut subscription, "subscription"),
                "mpn_id" => (&mut mpn_id, "mpn_id"),
                other => return Err(PartnerLinkError::UnknownField(other.to_owned())),
            };
            if slot.replace(decode(value)?).is_some() {
                return Err(PartnerLinkError::DuplicateField(name));
            }
        }
        let subscription = subscription.ok_or(PartnerLinkError::MissingField("subscription"))?;
        let mpn_id = mpn_id.ok_or(PartnerLinkError::MissingField("mpn_id"))?;
        Ok(PartnerLink {
            subscription: SubscriptionId::new(subscription)
                .map_err(PartnerLinkError::Subscription)?,
            mpn_id: MpnId::parse(&mpn_id).map_err(PartnerLinkError::MpnId)?,
        })
    }
}

impl fmt::Display for PartnerLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_query_string())
    }
}

impl FromStr for PartnerLink {
    type Err = PartnerLinkError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PartnerLink::parse(s)
    }
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &byte in value.as_bytes() {
        if is_unreserved(byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn decode(value: &str) -> Result<String, PartnerLinkError> {
    let error = || PartnerLinkError::Encoding(value.to_owned());
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(error)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return Err(error());
            }
            let hex = std::str::from_utf8(hex).map_err(|_| error())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| error())?);
            i += 3;
        } else if is_unreserved(byte) {
            out.push(byte);
            i += 1;
        } else {
            return Err(error());
        }
    }
    String::from_utf8(out).map_err(|_| error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_parsing_is_strict() {
        for bad in [
            "",
            "subscription=s",
            "mpn_id=565380",
            "subscription=s&mpn_id=565380&x=1",
            "subscription=s&subscription=t&mpn_id=565380",
            "subscription=s&mpn_id=5653",
            "subscription=a b&mpn_id=565380",
            "subscription=a%2&mpn_id=565380",
            "subscription=a%ZZ&mpn_id=565380",
            "subscription=a%+F&mpn_id=565380",
            "subscription=%FF&mpn_id=565380",
            "subscription=a+b&mpn_id=565380",
            "subscription=%20&mpn_id=565380",
            "subscription&mpn_id=565380",
            "subscription=s&&mpn_id=565380",
        ] {
            assert!(PartnerLink::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn link_round_trips_any_valid_id() {
        for id in ["sub-1", "a&b=c", "100%", "é/ü?#", "x+y"] {
            let link = PartnerLink {
                subscription: SubscriptionId::new(id).unwrap(),
                mpn_id: MpnId::parse("0012345").unwrap(),
            };
            assert_eq!(
                PartnerLink::parse(&link.to_query_string()),
                Ok(link.clone())
            );
            assert_eq!(format!("?{link}").parse::<PartnerLink>(), Ok(link));
        }
    }
}
