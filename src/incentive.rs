//! Incentive eligibility: [`IncentivePolicy`] decides, from a partner's portfolio and
//! the [attribution periods](crate::attribution::periods) of each subscription, whether
//! the partner has earned the program's incentive, and [`Eligibility`] says why or why
//! not.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::attribution;
use crate::event::AssociationEvent;
use crate::id::SubscriptionId;
use crate::partner::Program;
use crate::subscription::{CloudService, Subscription, SubscriptionStatus};

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
#[serde(remote = "Self", tag = "type", rename_all = "snake_case")]
enum DisqualificationRepr {
    NoPartnerOfRecord,
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

crate::wire::object_only!(DisqualificationRepr, "a disqualification (a JSON object)");

impl From<DisqualificationRepr> for Disqualification {
    fn from(repr: DisqualificationRepr) -> Self {
        match repr {
            DisqualificationRepr::NoPartnerOfRecord => Disqualification::NoPartnerOfRecord,
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
            Disqualification::NoPartnerOfRecord => DisqualificationRepr::NoPartnerOfRecord,
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
    /// use dpor::incentive::IncentivePolicy;
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
        let tenure = attribution::periods(history)
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
