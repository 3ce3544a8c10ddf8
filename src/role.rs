//! [`CustomerRole`]: a user's role in the customer's tenant. A record-level type, since
//! events record the role of whoever caused them ([`Cause`](crate::event::Cause)); the
//! rules about what each role may do are in [`actor`](crate::actor).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::MpnId;

/// A user's role in the customer's tenant.
///
/// Serialized as an object tagged by `"type"`: `{"type":"global_administrator"}`,
/// `{"type":"delegated_administrator","partner":"565380"}`.
///
/// # Examples
///
/// ```
/// use dpor::*;
///
/// let contoso = CustomerId::new("contoso")?;
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, contoso.clone(), CloudService::Office365, "E3");
///
/// // A partner with delegated admin rights may look, but never designate.
/// let role = CustomerRole::DelegatedAdministrator { partner: MpnId::parse("565380")? };
/// let delegated = Actor::customer(contoso, role.clone());
/// assert_eq!(delegated.access_to(&sub), Access::View);
/// assert!(sub.actions_for(&delegated).is_empty());
///
/// assert_eq!(role.to_string(), "delegated administrator (partner 565380)");
/// assert_eq!(serde_json::to_string(&CustomerRole::GlobalAdministrator)?, r#"{"type":"global_administrator"}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "CustomerRoleRepr", into = "CustomerRoleRepr")]
#[non_exhaustive]
pub enum CustomerRole {
    /// The tenant owner: the only role that may designate the partner of record.
    GlobalAdministrator,
    /// Manages billing; may view the partner of record.
    BillingAdministrator,
    /// Manages a service; may view the partner of record.
    ServiceAdministrator,
    /// A partner with delegated administration rights in the tenant; may view, and
    /// never designate (itself or anyone).
    DelegatedAdministrator {
        /// The partner holding the delegation.
        partner: MpnId,
    },
}

/// The wire form of [`CustomerRole`]: serde ignores unknown fields of internally
/// tagged unit variants, hence the empty struct variants.
#[derive(Serialize, Deserialize)]
#[serde(
    remote = "Self",
    tag = "type",
    rename_all = "snake_case",
    deny_unknown_fields
)]
#[allow(clippy::enum_variant_names)] // mirrors the public names
enum CustomerRoleRepr {
    GlobalAdministrator {},
    BillingAdministrator {},
    ServiceAdministrator {},
    DelegatedAdministrator { partner: MpnId },
}

crate::wire::object_only!(CustomerRoleRepr, "a customer role (a JSON object)");

impl From<CustomerRoleRepr> for CustomerRole {
    fn from(repr: CustomerRoleRepr) -> Self {
        match repr {
            CustomerRoleRepr::GlobalAdministrator {} => CustomerRole::GlobalAdministrator,
            CustomerRoleRepr::BillingAdministrator {} => CustomerRole::BillingAdministrator,
            CustomerRoleRepr::ServiceAdministrator {} => CustomerRole::ServiceAdministrator,
            CustomerRoleRepr::DelegatedAdministrator { partner } => {
                CustomerRole::DelegatedAdministrator { partner }
            }
        }
    }
}

impl From<CustomerRole> for CustomerRoleRepr {
    fn from(role: CustomerRole) -> Self {
        match role {
            CustomerRole::GlobalAdministrator => CustomerRoleRepr::GlobalAdministrator {},
            CustomerRole::BillingAdministrator => CustomerRoleRepr::BillingAdministrator {},
            CustomerRole::ServiceAdministrator => CustomerRoleRepr::ServiceAdministrator {},
            CustomerRole::DelegatedAdministrator { partner } => {
                CustomerRoleRepr::DelegatedAdministrator { partner }
            }
        }
    }
}

/// A [`CustomerRole`] as a stored record holds it (an event's `caused_by`): unlike the
/// request form, which refuses what it does not know, fields a later release added
/// are ignored and a role this release does not know reads as [`StoredRole::Unknown`],
/// so that the record still reads.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum StoredRole {
    GlobalAdministrator,
    BillingAdministrator,
    ServiceAdministrator,
    DelegatedAdministrator {
        partner: MpnId,
    },
    #[serde(other)]
    Unknown,
}

impl StoredRole {
    /// The role, when this release knows it.
    pub(crate) fn known(self) -> Option<CustomerRole> {
        Some(match self {
            StoredRole::GlobalAdministrator => CustomerRole::GlobalAdministrator,
            StoredRole::BillingAdministrator => CustomerRole::BillingAdministrator,
            StoredRole::ServiceAdministrator => CustomerRole::ServiceAdministrator,
            StoredRole::DelegatedAdministrator { partner } => {
                CustomerRole::DelegatedAdministrator { partner }
            }
            StoredRole::Unknown => return None,
        })
    }
}

impl fmt::Display for CustomerRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CustomerRole::GlobalAdministrator => f.write_str("global administrator"),
            CustomerRole::BillingAdministrator => f.write_str("billing administrator"),
            CustomerRole::ServiceAdministrator => f.write_str("service administrator"),
            CustomerRole::DelegatedAdministrator { partner } => {
                write!(f, "delegated administrator (partner {partner})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every role, once: the match makes a role added later fail to compile here until
    /// it is listed, and so until its stored form is checked below.
    fn every_role() -> Vec<CustomerRole> {
        let partner = MpnId::parse("565380").unwrap();
        let roles = vec![
            CustomerRole::GlobalAdministrator,
            CustomerRole::BillingAdministrator,
            CustomerRole::ServiceAdministrator,
            CustomerRole::DelegatedAdministrator { partner },
        ];
        for role in &roles {
            match role {
                CustomerRole::GlobalAdministrator
                | CustomerRole::BillingAdministrator
                | CustomerRole::ServiceAdministrator
                | CustomerRole::DelegatedAdministrator { .. } => {}
            }
        }
        roles
    }

    #[test]
    fn every_role_written_reads_back_as_stored() {
        for role in every_role() {
            let json = serde_json::to_string(&role).unwrap();
            let stored: StoredRole = serde_json::from_str(&json).unwrap();
            assert_eq!(stored.known(), Some(role), "{json}");
        }
    }
}
