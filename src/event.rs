//! What happened: [`AssociationEvent`]s in a subscription's history, and the
//! [`Notification`]s (emails) they cause.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::id::{CustomerId, MpnId, NotificationId, SubscriptionId, UserRef};
use crate::partner::Program;
use crate::role::{CustomerRole, StoredRole};
use crate::subscription::CloudService;

/// One change of a subscription's partner of record, as kept in its history.
///
/// Incentives are paid on the history: it tells who was partner of record at any
/// instant. `sequence` is 1-based and gap-free per subscription.
///
/// # Examples
///
/// ```
/// use dpor::*;
/// use time::macros::datetime;
///
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, CloudService::Office365, "E3");
/// let fabrikam = Partner::new(MpnId::parse("565380")?, "Fabrikam").enrolled_in(Program::OnlineServicesSell);
/// let Transition::Changed { events, .. } =
///     sub.associate(&fabrikam, Program::OnlineServicesSell, datetime!(2026-01-05 10:00 UTC))?
/// else { unreachable!() };
///
/// let event = &events[0];
/// assert_eq!((event.subscription.as_str(), event.customer.as_str()), ("sub-1", "contoso"));
/// assert_eq!(event.sequence, 1); // the subscription's first event
/// assert_eq!(event.at, datetime!(2026-01-05 10:00 UTC));
/// assert!(matches!(event.kind, AssociationEventKind::PartnerAssociated { replaced: None, .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssociationEvent {
    /// The subscription that changed.
    pub subscription: SubscriptionId,
    /// Its owner.
    pub customer: CustomerId,
    /// 1-based, gap-free position in the subscription's history.
    pub sequence: u64,
    /// When the change was decided (UTC).
    #[serde(with = "crate::timestamp")]
    pub at: OffsetDateTime,
    /// What changed.
    pub kind: AssociationEventKind,
    /// Who caused it. The service records its caller; an event decided outside the
    /// service, or stored before dpor recorded it (no `caused_by` in its JSON), reads as
    /// [`Cause::Unknown`].
    #[serde(default)]
    pub caused_by: Cause,
}

/// Who caused an [`AssociationEvent`], for audits and disputes ("who replaced us?").
///
/// On the wire, an object tagged by `"type"`:
/// `{"type":"customer","role":{"type":"global_administrator"},"user":"alice@contoso.example"}`
/// (no `"user"` when the host did not name the user), `{"type":"billing_system"}`,
/// `{"type":"unknown"}`. A type this release does not know (written by a later one),
/// or a customer role it does not know, reads as [`Cause::Unknown`] (without its user,
/// which only a known role's cause holds); fields it does not know are ignored (in the
/// role too, which a request's [`Actor`](crate::Actor) refuses).
///
/// ```
/// use dpor::*;
///
/// let alice = Actor::global_admin(CustomerId::new("contoso")?)
///     .with_user(UserRef::new("alice@contoso.example")?);
/// let cause = alice.cause();
/// assert_eq!(cause.user().map(UserRef::as_str), Some("alice@contoso.example"));
/// assert_eq!(Actor::billing_system().cause(), Cause::BillingSystem);
/// let old: Cause = serde_json::from_str(r#"{"type":"a_later_kind"}"#)?;
/// assert_eq!(old, Cause::Unknown);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", from = "StoredCause")]
#[non_exhaustive]
pub enum Cause {
    /// A user of the subscription's customer (the event's `customer`).
    Customer {
        /// The user's role.
        role: CustomerRole,
        /// The user, when the host named it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<UserRef>,
    },
    /// The host's billing system (the lifecycle: suspend, reactivate, cancel, migrate).
    BillingSystem,
    /// Nobody known: written before dpor recorded causes, or decided without an actor.
    #[default]
    Unknown,
}

/// How a [`Cause`] reads back: as derived for it, but with the stored form of the role
/// ([`StoredRole`]).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StoredCause {
    Customer {
        role: StoredRole,
        #[serde(default)]
        user: Option<UserRef>,
    },
    BillingSystem,
    #[serde(other)]
    Unknown,
}

impl From<StoredCause> for Cause {
    fn from(stored: StoredCause) -> Self {
        match stored {
            StoredCause::Customer { role, user } => match role.known() {
                Some(role) => Cause::Customer { role, user },
                None => Cause::Unknown,
            },
            StoredCause::BillingSystem => Cause::BillingSystem,
            StoredCause::Unknown => Cause::Unknown,
        }
    }
}

impl Cause {
    /// The customer's user, when the host named it.
    pub fn user(&self) -> Option<&UserRef> {
        match self {
            Cause::Customer { user, .. } => user.as_ref(),
            _ => None,
        }
    }

    /// The same cause without the user: what a reader who may not see the customer's
    /// users gets ([`Actor::sees_users`](crate::Actor::sees_users)).
    pub fn without_user(self) -> Cause {
        match self {
            Cause::Customer { role, .. } => Cause::Customer { role, user: None },
            other => other,
        }
    }
}

/// What an [`AssociationEvent`] records.
///
/// # Examples
///
/// Rendering a history line (the enum is `#[non_exhaustive]`, so a match outside this
/// crate needs a wildcard arm):
///
/// ```
/// use dpor::*;
///
/// fn describe(kind: &AssociationEventKind) -> String {
///     match kind {
///         AssociationEventKind::PartnerAssociated { partner, partner_name, .. } => {
///             format!("{partner_name} ({partner}) became partner of record")
///         }
///         AssociationEventKind::PartnerRemoved { partner, .. } => format!("{partner} was removed"),
///         _ => "the partner of record changed".to_owned(),
///     }
/// }
///
/// let fabrikam = MpnId::parse("565380")?;
/// let kind = AssociationEventKind::PartnerRemoved { partner: fabrikam, reason: RemovalReason::RemovedByCustomer };
/// assert_eq!(describe(&kind), "565380 was removed");
/// assert_eq!(kind.partner_to_notify(), Some((fabrikam, NotificationKind::Removed)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AssociationEventKind {
    /// A partner became partner of record.
    PartnerAssociated {
        /// The new partner of record.
        partner: MpnId,
        /// Its name in the directory at that moment.
        #[serde(with = "crate::text::name")]
        partner_name: String,
        /// The program the association counts for.
        program: Program,
        /// The partner it replaced, if any (its removal is the event just before).
        replaced: Option<MpnId>,
    },
    /// A partner stopped being partner of record.
    PartnerRemoved {
        /// The former partner of record.
        partner: MpnId,
        /// Why.
        reason: RemovalReason,
    },
    /// The subscription was suspended: the partner of record stays, its attribution
    /// pauses.
    SubscriptionSuspended {
        /// The partner of record at that moment, if any.
        partner: Option<MpnId>,
    },
    /// The subscription was reactivated: attribution resumes.
    SubscriptionReactivated {
        /// The partner of record at that moment, if any.
        partner: Option<MpnId>,
    },
    /// The subscription was cancelled: the partner of record stays on the record,
    /// frozen, and its attribution ends.
    SubscriptionCancelled {
        /// The partner of record at that moment, if any.
        partner: Option<MpnId>,
    },
    /// The subscription moved to another commerce platform as a new subscription, which
    /// starts with no partner of record; this one ends (a `PartnerRemoved` with
    /// [`RemovalReason::SubscriptionMigrated`] comes just before when one was set).
    SubscriptionMigrated {
        /// The new subscription.
        to: SubscriptionId,
    },
}

/// Why a partner stopped being partner of record.
///
/// Serialized as an object tagged by `"type"`: `{"type":"removed_by_customer"}`,
/// `{"type":"replaced_by","partner":"565380"}`.
///
/// # Examples
///
/// ```
/// use dpor::*;
/// use time::macros::datetime;
///
/// let (a, b, sell) = (MpnId::parse("565380")?, MpnId::parse("3664167")?, Program::OnlineServicesSell);
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, CloudService::Office365, "E3");
/// let Transition::Changed { next, .. } =
///     sub.associate(&Partner::new(a, "Fabrikam").enrolled_in(sell), sell, datetime!(2026-01-05 10:00 UTC))?
/// else { unreachable!() };
/// let Transition::Changed { events, .. } =
///     next.associate(&Partner::new(b, "Northwind").enrolled_in(sell), sell, datetime!(2026-02-01 10:00 UTC))?
/// else { unreachable!() };
///
/// // Replacing A by B first removes A, saying why.
/// let reason = RemovalReason::ReplacedBy(b);
/// assert_eq!(events[0].kind, AssociationEventKind::PartnerRemoved { partner: a, reason: reason.clone() });
/// assert_eq!(serde_json::to_string(&reason)?, r#"{"type":"replaced_by","partner":"3664167"}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "RemovalReasonRepr", into = "RemovalReasonRepr")]
#[non_exhaustive]
pub enum RemovalReason {
    /// The customer removed it (deleted the MPN ID).
    RemovedByCustomer,
    /// The customer designated another partner (or the same one for another program).
    ReplacedBy(MpnId),
    /// The subscription was migrated to another commerce platform; the partner of
    /// record is not carried over.
    SubscriptionMigrated,
}

/// The wire form of [`RemovalReason`]: serde cannot tag a newtype variant, and ignores
/// unknown fields of internally tagged unit variants, hence `{}`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Self", tag = "type", rename_all = "snake_case")]
enum RemovalReasonRepr {
    RemovedByCustomer,
    ReplacedBy { partner: MpnId },
    SubscriptionMigrated,
}

crate::wire::object_only!(RemovalReasonRepr, "a removal reason (a JSON object)");

impl From<RemovalReasonRepr> for RemovalReason {
    fn from(repr: RemovalReasonRepr) -> Self {
        match repr {
            RemovalReasonRepr::RemovedByCustomer => RemovalReason::RemovedByCustomer,
            RemovalReasonRepr::ReplacedBy { partner } => RemovalReason::ReplacedBy(partner),
            RemovalReasonRepr::SubscriptionMigrated => RemovalReason::SubscriptionMigrated,
        }
    }
}

impl From<RemovalReason> for RemovalReasonRepr {
    fn from(reason: RemovalReason) -> Self {
        match reason {
            RemovalReason::RemovedByCustomer => RemovalReasonRepr::RemovedByCustomer,
            RemovalReason::ReplacedBy(partner) => RemovalReasonRepr::ReplacedBy { partner },
            RemovalReason::SubscriptionMigrated => RemovalReasonRepr::SubscriptionMigrated,
        }
    }
}

impl AssociationEventKind {
    /// The partner to tell about this event, and what to tell it: `Added` to a newly
    /// associated partner, `Removed` to a removed one; nobody for lifecycle events.
    pub fn partner_to_notify(&self) -> Option<(MpnId, NotificationKind)> {
        match self {
            AssociationEventKind::PartnerAssociated { partner, .. } => {
                Some((*partner, NotificationKind::Added))
            }
            AssociationEventKind::PartnerRemoved { partner, .. } => {
                Some((*partner, NotificationKind::Removed))
            }
            AssociationEventKind::SubscriptionSuspended { .. }
            | AssociationEventKind::SubscriptionReactivated { .. }
            | AssociationEventKind::SubscriptionCancelled { .. }
            | AssociationEventKind::SubscriptionMigrated { .. } => None,
        }
    }
}

/// What a [`Notification`] tells its partner.
///
/// # Examples
///
/// Choosing an email's subject in a [`Notifier`](crate::Notifier) (the enum is
/// `#[non_exhaustive]`, so a match outside this crate needs a wildcard arm):
///
/// ```
/// use dpor::*;
///
/// fn subject(kind: NotificationKind, service: &CloudService) -> String {
///     match kind {
///         NotificationKind::Added => format!("You are now partner of record for {service}"),
///         NotificationKind::Removed => format!("You are no longer partner of record for {service}"),
///         _ => format!("Your partner of record status for {service} changed"),
///     }
/// }
///
/// assert_eq!(subject(NotificationKind::Added, &CloudService::Intune), "You are now partner of record for Intune");
/// assert_eq!(serde_json::to_string(&NotificationKind::Removed)?, r#""removed""#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NotificationKind {
    /// "You are now partner of record for this subscription."
    Added,
    /// "You are no longer partner of record for this subscription."
    Removed,
}

/// An email to a partner, kept in the outbox until the [`Notifier`](crate::Notifier)
/// delivered it.
///
/// Its `id` is derived from the event it tells of, so it is the same on every delivery
/// attempt: a notifier can drop duplicates.
///
/// # Examples
///
/// ```
/// use dpor::*;
/// use time::macros::datetime;
///
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, CustomerId::new("contoso")?, CloudService::Office365, "E3");
/// let fabrikam = Partner::new(MpnId::parse("565380")?, "Fabrikam").enrolled_in(Program::OnlineServicesSell);
/// let Transition::Changed { events, .. } =
///     sub.associate(&fabrikam, Program::OnlineServicesSell, datetime!(2026-01-05 10:00 UTC))?
/// else { unreachable!() };
///
/// let email = Notification::for_event(&events[0], sub.service(), Some("por@fabrikam.example".into()))
///     .ok_or("the event tells nobody")?;
/// assert_eq!(email.id.as_str(), "sub-1#1");
/// assert_eq!((email.partner, email.kind), (fabrikam.mpn_id(), NotificationKind::Added));
/// assert_eq!(email.contact_email.as_deref(), Some("por@fabrikam.example"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Stable id: `"{subscription}#{event sequence}"`.
    pub id: NotificationId,
    /// The partner to tell.
    pub partner: MpnId,
    /// Where to send it, as the directory listed it when the change was decided: none
    /// when it listed none, or an address longer than an address can be (254
    /// characters; traced).
    #[serde(default, with = "crate::text::email::option")]
    pub contact_email: Option<String>,
    /// Added or removed.
    pub kind: NotificationKind,
    /// The subscription concerned.
    pub subscription: SubscriptionId,
    /// Its owner.
    pub customer: CustomerId,
    /// Its cloud service.
    pub service: CloudService,
    /// When the change happened (UTC).
    #[serde(with = "crate::timestamp")]
    pub at: OffsetDateTime,
}

impl Notification {
    /// The notification that `event` causes, if any, for a subscription of `service`,
    /// sent to `contact_email`.
    pub fn for_event(
        event: &AssociationEvent,
        service: &CloudService,
        contact_email: Option<String>,
    ) -> Option<Notification> {
        let (partner, kind) = event.kind.partner_to_notify()?;
        Some(Notification {
            id: NotificationId::for_event(&event.subscription, event.sequence),
            partner,
            contact_email,
            kind,
            subscription: event.subscription.clone(),
            customer: event.customer.clone(),
            service: service.clone(),
            at: event.at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_reason_wire_form_is_tagged() {
        let a = MpnId::parse("565380").unwrap();
        assert_eq!(
            serde_json::to_string(&RemovalReason::ReplacedBy(a)).unwrap(),
            r#"{"type":"replaced_by","partner":"565380"}"#
        );
        assert_eq!(
            serde_json::to_string(&RemovalReason::RemovedByCustomer).unwrap(),
            r#"{"type":"removed_by_customer"}"#
        );
        // A stored record: a field from a newer release is ignored.
        assert_eq!(
            serde_json::from_str::<RemovalReason>(r#"{"type":"removed_by_customer","x":0}"#)
                .unwrap(),
            RemovalReason::RemovedByCustomer
        );
        assert!(serde_json::from_str::<RemovalReason>(r#"["removed_by_customer"]"#).is_err());
        assert!(
            serde_json::from_str::<RemovalReason>(r#"{"type":"replaced_by","partner":"12"}"#)
                .is_err()
        );
    }
}
