//! Subscriptions: [`Subscription`] with its current [`PartnerOfRecord`], its
//! [`CloudService`] and [`SubscriptionStatus`], and the portal [`Action`]s it offers.
//!
//! The transitions that change the partner of record are in
//! [`association`](crate::association).

use std::fmt;

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;
use time::OffsetDateTime;

use crate::id::{CustomerId, MpnId, SubscriptionId};
use crate::partner::Program;

/// The cloud service a subscription is for.
///
/// Serialized as an object tagged by `"type"`: `{"type":"office365"}`,
/// `{"type":"other","name":"AX7"}`.
///
/// # Examples
///
/// ```
/// use dpor::*;
///
/// let ax = CloudService::Other("AX7".into());
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, ax, "AX7");
/// assert_eq!(sub.service().to_string(), "AX7");
/// assert_eq!(CloudService::Office365.to_string(), "Office 365");
///
/// assert_eq!(serde_json::to_string(&CloudService::Office365)?, r#"{"type":"office365"}"#);
/// let read: CloudService = serde_json::from_str(r#"{"type":"other","name":"AX7"}"#)?;
/// assert_eq!(&read, sub.service());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "CloudServiceRepr", into = "CloudServiceRepr")]
#[non_exhaustive]
pub enum CloudService {
    /// Office 365 / Microsoft 365.
    Office365,
    /// Dynamics CRM Online.
    DynamicsCrmOnline,
    /// Dynamics 365.
    Dynamics365,
    /// Intune.
    Intune,
    /// Enterprise Mobility Suite.
    EnterpriseMobilitySuite,
    /// Azure.
    Azure,
    /// Any other service (for example `"AX7"` or `"Business Central"`), by name.
    Other(String),
}

/// The wire form of [`CloudService`]: serde cannot tag a newtype variant holding a
/// string.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Self", tag = "type", rename_all = "snake_case")]
enum CloudServiceRepr {
    Office365,
    DynamicsCrmOnline,
    Dynamics365,
    Intune,
    EnterpriseMobilitySuite,
    Azure,
    Other {
        #[serde(with = "crate::text::name")]
        name: String,
    },
}

crate::wire::object_only!(CloudServiceRepr, "a cloud service (a JSON object)");

impl From<CloudServiceRepr> for CloudService {
    fn from(repr: CloudServiceRepr) -> Self {
        match repr {
            CloudServiceRepr::Office365 => CloudService::Office365,
            CloudServiceRepr::DynamicsCrmOnline => CloudService::DynamicsCrmOnline,
            CloudServiceRepr::Dynamics365 => CloudService::Dynamics365,
            CloudServiceRepr::Intune => CloudService::Intune,
            CloudServiceRepr::EnterpriseMobilitySuite => CloudService::EnterpriseMobilitySuite,
            CloudServiceRepr::Azure => CloudService::Azure,
            CloudServiceRepr::Other { name } => CloudService::Other(name),
        }
    }
}

impl From<CloudService> for CloudServiceRepr {
    fn from(service: CloudService) -> Self {
        match service {
            CloudService::Office365 => CloudServiceRepr::Office365,
            CloudService::DynamicsCrmOnline => CloudServiceRepr::DynamicsCrmOnline,
            CloudService::Dynamics365 => CloudServiceRepr::Dynamics365,
            CloudService::Intune => CloudServiceRepr::Intune,
            CloudService::EnterpriseMobilitySuite => CloudServiceRepr::EnterpriseMobilitySuite,
            CloudService::Azure => CloudServiceRepr::Azure,
            CloudService::Other(name) => CloudServiceRepr::Other { name },
        }
    }
}

impl fmt::Display for CloudService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloudService::Office365 => "Office 365",
            CloudService::DynamicsCrmOnline => "Dynamics CRM Online",
            CloudService::Dynamics365 => "Dynamics 365",
            CloudService::Intune => "Intune",
            CloudService::EnterpriseMobilitySuite => "Enterprise Mobility Suite",
            CloudService::Azure => "Azure",
            CloudService::Other(name) => name,
        })
    }
}

/// Whether a subscription is in use. Only an `Active` one can have its partner of
/// record changed.
///
/// # Examples
///
/// ```
/// use dpor::*;
/// use time::macros::datetime;
///
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, CloudService::Azure, "Azure plan")
///     .with_status(SubscriptionStatus::Suspended);
/// let fabrikam = Partner::new(MpnId::parse("565380")?, "Fabrikam").enrolled_in(Program::OnlineServicesSell);
///
/// let refused = sub.associate(&fabrikam, Program::OnlineServicesSell, datetime!(2026-01-05 10:00 UTC));
/// assert!(matches!(refused, Err(Error::SubscriptionNotActive { status: SubscriptionStatus::Suspended, .. })));
/// assert_eq!(sub.status().to_string(), "suspended");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// In use: the partner of record can be added, changed and removed.
    Active,
    /// Paused (for example for non-payment); the partner of record is frozen.
    Suspended,
    /// Ended; the partner of record is frozen.
    Cancelled,
}

impl fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Suspended => "suspended",
            SubscriptionStatus::Cancelled => "cancelled",
        })
    }
}

/// The partner currently designated on a subscription, for one program.
///
/// It is read from a [`Subscription`]; only the transitions set it.
///
/// # Examples
///
/// ```
/// use dpor::*;
/// use time::macros::datetime;
///
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, CloudService::Office365, "E3");
/// let fabrikam = Partner::new(MpnId::parse("565380")?, "Fabrikam Consulting").enrolled_in(Program::OnlineServicesSell);
/// let Transition::Changed { next, .. } =
///     sub.associate(&fabrikam, Program::OnlineServicesSell, datetime!(2026-01-05 10:00 UTC))?
/// else { unreachable!() };
///
/// let por = next.partner_of_record().ok_or("no partner of record")?;
/// assert_eq!(por.mpn_id().as_str(), "565380");
/// assert_eq!(por.partner_name(), "Fabrikam Consulting");
/// assert_eq!(por.program(), Program::OnlineServicesSell);
/// assert_eq!(por.since(), datetime!(2026-01-05 10:00 UTC));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerOfRecord {
    mpn_id: MpnId,
    // A `SmolStr`: inline up to 23 bytes, so that a copy of the record allocates
    // nothing for most names; a store holds one per subscription.
    #[serde(with = "crate::text::name")]
    partner_name: SmolStr,
    program: Program,
    #[serde(with = "crate::timestamp")]
    since: OffsetDateTime,
}

impl PartnerOfRecord {
    pub(crate) fn new(
        mpn_id: MpnId,
        partner_name: &str,
        program: Program,
        since: OffsetDateTime,
    ) -> Self {
        PartnerOfRecord {
            mpn_id,
            partner_name: partner_name.into(),
            program,
            since,
        }
    }

    /// The partner's MPN ID: what "Edit partner of record" shows.
    pub fn mpn_id(&self) -> MpnId {
        self.mpn_id
    }

    /// The partner's name as the directory gave it when it was designated.
    pub fn partner_name(&self) -> &str {
        &self.partner_name
    }

    /// The program the association counts for.
    pub fn program(&self) -> Program {
        self.program
    }

    /// When the partner was designated (UTC).
    pub fn since(&self) -> OffsetDateTime {
        self.since
    }

    /// Whether this is `partner` for `program`: the partner of record is the pair, so
    /// designating the same pair again changes nothing.
    pub fn is(&self, partner: MpnId, program: Program) -> bool {
        self.mpn_id == partner && self.program == program
    }
}

/// What the portal's "More Actions" menu offers on a subscription.
///
/// Ask [`Subscription::actions_for`] which ones to show to an actor.
///
/// # Examples
///
/// ```
/// use dpor::*;
/// use time::macros::datetime;
///
/// let contoso = CustomerId::new("contoso")?;
/// let admin = Actor::global_admin(contoso.clone());
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, contoso, CloudService::Office365, "E3");
/// assert_eq!(sub.actions_for(&admin), [Action::AddPartnerOfRecord]);
///
/// let fabrikam = Partner::new(MpnId::parse("565380")?, "Fabrikam").enrolled_in(Program::OnlineServicesSell);
/// let Transition::Changed { next, .. } =
///     sub.associate(&fabrikam, Program::OnlineServicesSell, datetime!(2026-01-05 10:00 UTC))?
/// else { unreachable!() };
/// assert_eq!(next.actions_for(&admin), [Action::EditPartnerOfRecord, Action::RemovePartnerOfRecord]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// "Add partner of record": offered when none is set.
    AddPartnerOfRecord,
    /// "Edit partner of record": offered when one is set.
    EditPartnerOfRecord,
    /// "Remove partner of record": offered when one is set.
    RemovePartnerOfRecord,
}

/// One cloud subscription of a customer, with at most one partner of record.
///
/// A `Subscription` is a value: the transitions ([`associate`](Self::associate),
/// [`remove_partner`](Self::remove_partner)) never modify it, they return the next
/// value and the events that lead to it. `version` counts the changes (for
/// compare-and-swap in the [`Repository`](crate::Repository)); `last_event_sequence`
/// is the sequence of its latest event.
///
/// # Examples
///
/// ```
/// use dpor::{Action, Actor, CloudService, CustomerId, Subscription, SubscriptionId, SubscriptionStatus};
///
/// let contoso = CustomerId::new("contoso")?;
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, contoso.clone(), CloudService::Office365, "Office 365 E3");
/// assert_eq!(sub.status(), SubscriptionStatus::Active);
/// assert_eq!(sub.version(), 0);
/// assert!(sub.partner_of_record().is_none());
/// assert_eq!(sub.actions_for(&Actor::global_admin(contoso)), [Action::AddPartnerOfRecord]);
/// # Ok::<(), dpor::IdError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    id: SubscriptionId,
    customer: CustomerId,
    service: CloudService,
    #[serde(with = "crate::text::name")]
    name: SmolStr,
    status: SubscriptionStatus,
    #[serde(deserialize_with = "counter")]
    version: u64,
    #[serde(deserialize_with = "counter")]
    last_event_sequence: u64,
    partner_of_record: Option<PartnerOfRecord>,
}

/// The most a stored count may be: a SQL `BIGINT`. Counts start at 0 and grow by one
/// change at a time, so a value read within this bound can never overflow a `u64`.
pub(crate) const MAX_COUNT: u64 = i64::MAX as u64;

/// Deserializes a version or sequence, refusing values beyond [`MAX_COUNT`].
fn counter<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let value = u64::deserialize(deserializer)?;
    if value > MAX_COUNT {
        return Err(serde::de::Error::custom(format!(
            "{value} is beyond the largest version or sequence, {MAX_COUNT}"
        )));
    }
    Ok(value)
}

impl Subscription {
    /// A new, active subscription at version 0, with no partner of record and no events.
    pub fn new(
        id: SubscriptionId,
        customer: CustomerId,
        service: CloudService,
        name: impl Into<String>,
    ) -> Self {
        Subscription {
            id,
            customer,
            service,
            name: SmolStr::from(name.into()),
            status: SubscriptionStatus::Active,
            version: 0,
            last_event_sequence: 0,
            partner_of_record: None,
        }
    }

    /// The same subscription with another status (for seeding a store; lifecycle
    /// changes of stored subscriptions go through the service).
    pub fn with_status(self, status: SubscriptionStatus) -> Self {
        Subscription { status, ..self }
    }

    /// The subscription's id.
    pub fn id(&self) -> &SubscriptionId {
        &self.id
    }

    /// The customer that owns it.
    pub fn customer(&self) -> &CustomerId {
        &self.customer
    }

    /// The cloud service it is for.
    pub fn service(&self) -> &CloudService {
        &self.service
    }

    /// Its display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it is active, suspended or cancelled.
    pub fn status(&self) -> SubscriptionStatus {
        self.status
    }

    /// How many committed changes it has had (0 when new).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The sequence number of its latest event (0 before any).
    pub fn last_event_sequence(&self) -> u64 {
        self.last_event_sequence
    }

    /// The current partner of record, if any.
    pub fn partner_of_record(&self) -> Option<&PartnerOfRecord> {
        self.partner_of_record.as_ref()
    }

    /// The value after one committed change: one version on, `events` more events,
    /// with the given partner of record and status. Only the transitions call this.
    /// (No overflow: counts only grow from values bounded by [`MAX_COUNT`].)
    pub(crate) fn successor(
        &self,
        partner_of_record: Option<PartnerOfRecord>,
        status: SubscriptionStatus,
        events: u64,
    ) -> Subscription {
        Subscription {
            partner_of_record,
            status,
            version: self.version + 1,
            last_event_sequence: self.last_event_sequence + events,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_service_wire_form_is_tagged() {
        assert_eq!(
            serde_json::to_string(&CloudService::Office365).unwrap(),
            r#"{"type":"office365"}"#
        );
        assert_eq!(
            serde_json::to_string(&CloudService::Other("AX7".into())).unwrap(),
            r#"{"type":"other","name":"AX7"}"#
        );
        assert_eq!(
            serde_json::from_str::<CloudService>(r#"{"type":"dynamics_crm_online"}"#).unwrap(),
            CloudService::DynamicsCrmOnline
        );
        // A stored record: a field from a newer release is ignored; an array is no object.
        assert_eq!(
            serde_json::from_str::<CloudService>(r#"{"type":"azure","x":1}"#).unwrap(),
            CloudService::Azure
        );
        assert_eq!(
            serde_json::from_str::<CloudService>(r#"{"type":"other","name":"a","x":1}"#).unwrap(),
            CloudService::Other("a".into())
        );
        assert!(serde_json::from_str::<CloudService>(r#"["azure"]"#).is_err());
        assert!(serde_json::from_str::<CloudService>(r#""azure""#).is_err());
    }
}
