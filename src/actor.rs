//! Who is acting: [`Actor`], [`CustomerRole`], and the authorization rules, as pure
//! functions ([`Actor::access_to`]).
//!
//! The rules, in one place:
//! - Only the owning customer's **global administrator** may add, change or remove the
//!   partner of record ([`Access::Change`]).
//! - Every other role of the owning customer (billing and service administrators,
//!   delegated-admin partners) may view ([`Access::View`]).
//! - A partner sees the subscriptions where it is the current partner of record, and
//!   their history ([`Access::View`]); nothing else, and it never changes anything.
//! - Another customer sees nothing ([`Access::Hidden`]); the service answers as if the
//!   subscription did not exist.
//! - The host's billing system ([`Actor::BillingSystem`]) reads any subscription and
//!   its history, and never checks, submits or removes a partner of record.
//! - The lifecycle is the billing side: suspend, reactivate and migrate are for the
//!   billing system alone; cancel for it or the owning customer's global or billing
//!   administrator ([`Actor::may_manage_lifecycle`]).
//! - Some refusals come **before anything is read** ([`Actor::may_attempt`]), so that the
//!   answer cannot tell whether a subscription exists: a partner on the customer-side
//!   operations, the billing system on partner changes, anyone but the billing system
//!   on suspend, reactivate and migrate.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::event::Cause;
use crate::id::{CustomerId, MpnId, UserRef};
pub use crate::role::CustomerRole;
use crate::subscription::{Action, Subscription, SubscriptionStatus};

/// The person or system behind a call.
///
/// # Examples
///
/// ```
/// use dpor::{Access, Actor, CloudService, CustomerId, CustomerRole, Subscription, SubscriptionId};
///
/// let contoso = CustomerId::new("contoso")?;
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, contoso.clone(), CloudService::Office365, "E3");
///
/// assert_eq!(Actor::global_admin(contoso.clone()).access_to(&sub), Access::Change);
/// let billing = Actor::customer(contoso, CustomerRole::BillingAdministrator);
/// assert_eq!(billing.access_to(&sub), Access::View);
/// assert_eq!(Actor::global_admin(CustomerId::new("fabrikam")?).access_to(&sub), Access::Hidden);
/// assert_eq!(Actor::billing_system().access_to(&sub), Access::View);
/// # Ok::<(), dpor::IdError>(())
/// ```
///
/// On the wire, an object tagged by `"type"`:
/// `{"type":"customer","customer":"contoso","role":{"type":"global_administrator"}}`,
/// `{"type":"partner","mpn_id":"565380"}`, `{"type":"billing_system"}`. It is a request
/// from a client, so unknown fields and arrays are refused.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "ActorRepr", into = "ActorRepr")]
#[non_exhaustive]
pub enum Actor {
    /// A user of a customer's tenant, in one role.
    Customer {
        /// The customer (tenant) the user belongs to.
        customer: CustomerId,
        /// The user's role in that tenant.
        role: CustomerRole,
        /// Which user it is, when the host says so ([`Actor::with_user`]): recorded in
        /// the events the user causes, for audits. Optional, and absent from the JSON
        /// when `None`.
        user: Option<UserRef>,
    },
    /// A partner acting on its own behalf (never allowed to designate itself).
    Partner {
        /// The partner's MPN ID.
        mpn_id: MpnId,
    },
    /// The host's own billing back end, never a signed-in person: it runs the
    /// subscription lifecycle and reads any subscription.
    BillingSystem,
}

/// The wire form of [`Actor`]: serde ignores unknown fields of internally tagged unit
/// variants, hence the empty struct variant.
#[derive(Serialize, Deserialize)]
#[serde(
    remote = "Self",
    tag = "type",
    rename_all = "snake_case",
    deny_unknown_fields
)]
enum ActorRepr {
    Customer {
        customer: CustomerId,
        role: CustomerRole,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<UserRef>,
    },
    Partner {
        mpn_id: MpnId,
    },
    BillingSystem {},
}

crate::wire::object_only!(ActorRepr, "an actor (a JSON object)");

impl From<ActorRepr> for Actor {
    fn from(repr: ActorRepr) -> Self {
        match repr {
            ActorRepr::Customer {
                customer,
                role,
                user,
            } => Actor::Customer {
                customer,
                role,
                user,
            },
            ActorRepr::Partner { mpn_id } => Actor::Partner { mpn_id },
            ActorRepr::BillingSystem {} => Actor::BillingSystem,
        }
    }
}

impl From<Actor> for ActorRepr {
    fn from(actor: Actor) -> Self {
        match actor {
            Actor::Customer {
                customer,
                role,
                user,
            } => ActorRepr::Customer {
                customer,
                role,
                user,
            },
            Actor::Partner { mpn_id } => ActorRepr::Partner { mpn_id },
            Actor::BillingSystem => ActorRepr::BillingSystem {},
        }
    }
}

/// What an [`Actor`] may do with one subscription.
///
/// Ordered: `Hidden < View < Change`.
///
/// # Examples
///
/// ```
/// use dpor::*;
///
/// let contoso = CustomerId::new("contoso")?;
/// let sub = Subscription::new(SubscriptionId::new("sub-1")?, contoso.clone(), CloudService::Intune, "Intune");
///
/// let access = Actor::customer(contoso, CustomerRole::ServiceAdministrator).access_to(&sub);
/// assert_eq!(access, Access::View);
/// assert!(access >= Access::View); // may read the partner of record and its history
/// assert!(access < Access::Change); // but may not change it
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// The actor may not know that the subscription exists.
    Hidden,
    /// The actor may read the subscription, its partner of record and its history.
    View,
    /// The actor may also add, change and remove the partner of record.
    Change,
}

/// What a caller attempts, for the refusals that come before anything is read
/// ([`Actor::may_attempt`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Read one subscription and its partner of record.
    View,
    /// Read a subscription's history, or who was partner of record when: a read its
    /// current partner of record may make too.
    ViewHistory,
    /// Check, submit or remove a partner of record.
    ChangePartner,
    /// Change the subscription's lifecycle.
    Lifecycle(LifecycleChange),
    /// Read the change feed: every subscription's events ([`PorService::changes`]).
    ///
    /// [`PorService::changes`]: crate::PorService::changes
    ReadChanges,
}

/// A change of a subscription's lifecycle, made by the billing side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LifecycleChange {
    /// Suspend: the partner of record stays, its attribution pauses.
    Suspend,
    /// Reactivate a suspended subscription.
    Reactivate,
    /// Cancel for good.
    Cancel,
    /// Move to another commerce platform under a new id.
    Migrate,
}

/// Why a partner may not act on a customer's subscriptions.
fn partner_refusal(mpn_id: MpnId) -> Error {
    Error::Forbidden {
        reason: format!(
            "partner {mpn_id} cannot act on a customer's subscriptions: only the customer's \
             global administrator designates the partner of record"
        ),
    }
}

/// Why a person or a partner may not suspend, reactivate or migrate.
const LIFECYCLE_REFUSAL: &str = "only the host's billing system can suspend, reactivate or \
                                 migrate a subscription";

/// Who may not read the change feed.
const CHANGES_REFUSAL: &str = "only the host's billing system reads the change feed of \
                               every subscription";

/// Who else may not cancel.
const CANCEL_REFUSAL: &str = "only the host's billing system or the customer's global or \
                              billing administrator can cancel a subscription";

impl Actor {
    /// The owning customer's global administrator.
    pub fn global_admin(customer: CustomerId) -> Self {
        Actor::customer(customer, CustomerRole::GlobalAdministrator)
    }

    /// A user of `customer` in `role`.
    pub fn customer(customer: CustomerId, role: CustomerRole) -> Self {
        Actor::Customer {
            customer,
            role,
            user: None,
        }
    }

    /// This customer's user, named: `user` is recorded in the events this actor causes
    /// ([`Cause::Customer`]). Other actors are returned
    /// unchanged: only a customer's users are people the host names.
    ///
    /// ```
    /// use dpor::*;
    ///
    /// let alice = Actor::global_admin(CustomerId::new("contoso")?)
    ///     .with_user(UserRef::new("alice@contoso.example")?);
    /// assert_eq!(alice.user().map(UserRef::as_str), Some("alice@contoso.example"));
    /// assert_eq!(
    ///     serde_json::to_string(&alice)?,
    ///     r#"{"type":"customer","customer":"contoso","role":{"type":"global_administrator"},"user":"alice@contoso.example"}"#
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_user(self, user: UserRef) -> Self {
        match self {
            Actor::Customer { customer, role, .. } => Actor::Customer {
                customer,
                role,
                user: Some(user),
            },
            other => other,
        }
    }

    /// The customer's user, when the host named it.
    pub fn user(&self) -> Option<&UserRef> {
        match self {
            Actor::Customer { user, .. } => user.as_ref(),
            _ => None,
        }
    }

    /// What the events this actor causes record of it ([`AssociationEvent::caused_by`]).
    /// A partner causes none (it never changes anything); it would read as unknown.
    ///
    /// [`AssociationEvent::caused_by`]: crate::AssociationEvent::caused_by
    pub fn cause(&self) -> Cause {
        match self {
            Actor::Customer { role, user, .. } => Cause::Customer {
                role: role.clone(),
                user: user.clone(),
            },
            Actor::BillingSystem => Cause::BillingSystem,
            Actor::Partner { .. } => Cause::Unknown,
        }
    }

    /// Whether this actor may see which of the customer's users caused an event: the
    /// customer's own users and the billing system. Partners, and partners acting as
    /// delegated administrators, see the role but not the user.
    pub fn sees_users(&self) -> bool {
        match self {
            Actor::Customer { role, .. } => {
                !matches!(role, CustomerRole::DelegatedAdministrator { .. })
            }
            Actor::BillingSystem => true,
            Actor::Partner { .. } => false,
        }
    }

    /// A partner acting on its own behalf.
    pub fn partner(mpn_id: MpnId) -> Self {
        Actor::Partner { mpn_id }
    }

    /// The host's billing system.
    pub fn billing_system() -> Self {
        Actor::BillingSystem
    }

    /// What this actor may do with `subscription`.
    pub fn access_to(&self, subscription: &Subscription) -> Access {
        match self {
            Actor::Customer { customer, .. } if customer != subscription.customer() => {
                Access::Hidden
            }
            Actor::Customer {
                role: CustomerRole::GlobalAdministrator,
                ..
            } => Access::Change,
            Actor::Customer { .. } | Actor::BillingSystem => Access::View,
            Actor::Partner { mpn_id } => {
                let current = subscription.partner_of_record().map(|p| p.mpn_id());
                if current == Some(*mpn_id) {
                    Access::View
                } else {
                    Access::Hidden
                }
            }
        }
    }

    /// Whether this kind of actor may attempt `operation` at all: the refusals that
    /// come before anything is read, so that they cannot tell whether a subscription
    /// exists. What passes here is then checked against the subscription
    /// ([`authorize`](Self::authorize), [`authorize_lifecycle`](Self::authorize_lifecycle)).
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`]: for a partner on every operation but
    /// [`Operation::ViewHistory`]; for the billing system on
    /// [`Operation::ChangePartner`]; for anyone but the billing system on suspend,
    /// reactivate, migrate and [`Operation::ReadChanges`] (and for a partner on
    /// cancel).
    ///
    /// ```
    /// use dpor::*;
    /// use dpor::actor::{LifecycleChange, Operation};
    ///
    /// let admin = Actor::global_admin(CustomerId::new("contoso")?);
    /// assert!(admin.may_attempt(Operation::ChangePartner).is_ok());
    /// assert!(admin.may_attempt(Operation::Lifecycle(LifecycleChange::Cancel)).is_ok());
    /// // Only the billing system migrates: a person learns nothing about the ids.
    /// let migrate = Operation::Lifecycle(LifecycleChange::Migrate);
    /// assert!(matches!(admin.may_attempt(migrate), Err(Error::Forbidden { .. })));
    /// assert!(Actor::billing_system().may_attempt(migrate).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn may_attempt(&self, operation: Operation) -> Result<(), Error> {
        let refusal = match (self, operation) {
            (Actor::Partner { .. }, Operation::ViewHistory) => return Ok(()),
            (Actor::Partner { mpn_id }, Operation::View | Operation::ChangePartner) => {
                return Err(partner_refusal(*mpn_id));
            }
            (Actor::BillingSystem, Operation::ChangePartner) => {
                "the billing system never checks, submits or removes a partner of record: \
                 only the customer's global administrator designates it"
                    .to_owned()
            }
            (Actor::BillingSystem, _) => return Ok(()),
            (_, Operation::ReadChanges) => CHANGES_REFUSAL.to_owned(),
            (Actor::Customer { .. }, Operation::Lifecycle(LifecycleChange::Cancel)) => {
                return Ok(());
            }
            (_, Operation::Lifecycle(LifecycleChange::Cancel)) => CANCEL_REFUSAL.to_owned(),
            (_, Operation::Lifecycle(_)) => LIFECYCLE_REFUSAL.to_owned(),
            (Actor::Customer { .. }, _) => return Ok(()),
        };
        Err(Error::Forbidden { reason: refusal })
    }

    /// Whether this actor may make `change` to `subscription`: the billing system always;
    /// for [`LifecycleChange::Cancel`] also the owning customer's global or billing
    /// administrator.
    pub fn may_manage_lifecycle(
        &self,
        subscription: &Subscription,
        change: LifecycleChange,
    ) -> bool {
        match self {
            Actor::BillingSystem => true,
            Actor::Customer { customer, role, .. } => {
                change == LifecycleChange::Cancel
                    && customer == subscription.customer()
                    && matches!(
                        role,
                        CustomerRole::GlobalAdministrator | CustomerRole::BillingAdministrator
                    )
            }
            Actor::Partner { .. } => false,
        }
    }

    /// Checks [`may_manage_lifecycle`](Self::may_manage_lifecycle).
    ///
    /// # Errors
    ///
    /// [`Error::SubscriptionNotFound`] when the subscription is hidden from the actor,
    /// [`Error::Forbidden`] when it may see but not manage it.
    pub fn authorize_lifecycle(
        &self,
        subscription: &Subscription,
        change: LifecycleChange,
    ) -> Result<(), Error> {
        self.access_unless_hidden(subscription)?;
        if !self.may_manage_lifecycle(subscription, change) {
            let reason = match change {
                LifecycleChange::Cancel => CANCEL_REFUSAL,
                _ => LIFECYCLE_REFUSAL,
            };
            return Err(Error::Forbidden {
                reason: reason.to_owned(),
            });
        }
        Ok(())
    }

    /// The actor's access to `subscription`, unless it is hidden from it: then
    /// [`Error::SubscriptionNotFound`], exactly as for one that does not exist.
    fn access_unless_hidden(&self, subscription: &Subscription) -> Result<Access, Error> {
        match self.access_to(subscription) {
            Access::Hidden => Err(Error::SubscriptionNotFound(subscription.id().clone())),
            granted => Ok(granted),
        }
    }

    /// The customer whose subscriptions this actor lists: partners and the billing
    /// system list nothing by customer.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] for a partner or the billing system.
    ///
    /// ```
    /// use dpor::*;
    ///
    /// let contoso = CustomerId::new("contoso")?;
    /// assert_eq!(Actor::global_admin(contoso.clone()).acting_customer()?, &contoso);
    /// let partner = Actor::partner(MpnId::parse("565380")?);
    /// assert!(matches!(partner.acting_customer(), Err(Error::Forbidden { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acting_customer(&self) -> Result<&CustomerId, Error> {
        match self {
            Actor::Customer { customer, .. } => Ok(customer),
            Actor::Partner { mpn_id } => Err(partner_refusal(*mpn_id)),
            Actor::BillingSystem => Err(Error::Forbidden {
                reason: "the billing system reads subscriptions by id".to_owned(),
            }),
        }
    }

    /// The partner this actor acts for, on the partner-side reads (its portfolio): a
    /// customer or the billing system is refused; customers list their subscriptions.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] for anyone but a partner.
    pub fn acting_partner(&self) -> Result<MpnId, Error> {
        match self {
            Actor::Partner { mpn_id } => Ok(*mpn_id),
            _ => Err(Error::Forbidden {
                reason: "the partner portfolio is for partners; customers list their \
                         subscriptions"
                    .to_owned(),
            }),
        }
    }

    /// Checks that this actor has at least `needed` on `subscription`.
    ///
    /// # Errors
    ///
    /// [`Error::SubscriptionNotFound`] when the subscription is hidden from the actor
    /// (so that nobody learns which subscriptions exist), [`Error::Forbidden`] when
    /// it may see but not do this.
    ///
    /// ```
    /// use dpor::*;
    ///
    /// let contoso = CustomerId::new("contoso")?;
    /// let sub = Subscription::new(SubscriptionId::new("sub-1")?, contoso.clone(), CloudService::Intune, "Intune");
    /// let billing = Actor::customer(contoso, CustomerRole::BillingAdministrator);
    /// assert!(billing.authorize(&sub, Access::View).is_ok());
    /// assert!(matches!(billing.authorize(&sub, Access::Change), Err(Error::Forbidden { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn authorize(&self, subscription: &Subscription, needed: Access) -> Result<(), Error> {
        if self.access_unless_hidden(subscription)? < needed {
            let role = match self {
                Actor::Customer { role, .. } => role.to_string(),
                Actor::Partner { .. } => "partner".to_owned(),
                Actor::BillingSystem => "billing system".to_owned(),
            };
            return Err(Error::Forbidden {
                reason: format!(
                    "only the customer's global administrator can change the partner of \
                     record; a {role} can only view it"
                ),
            });
        }
        Ok(())
    }
}

/// The "More Actions" menu is an authorization rule: it offers only what the actor may do.
impl Subscription {
    /// The "More Actions" entries to offer `actor`: none unless `actor` is the owning
    /// customer's global administrator and the subscription is active; then
    /// [`Action::AddPartnerOfRecord`] without a partner of record, and
    /// [`Action::EditPartnerOfRecord`] and [`Action::RemovePartnerOfRecord`] with one.
    pub fn actions_for(&self, actor: &Actor) -> Vec<Action> {
        if actor.access_to(self) != Access::Change || self.status() != SubscriptionStatus::Active {
            return Vec::new();
        }
        match self.partner_of_record() {
            None => vec![Action::AddPartnerOfRecord],
            Some(_) => vec![Action::EditPartnerOfRecord, Action::RemovePartnerOfRecord],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::SubscriptionId;
    use crate::subscription::CloudService;

    fn contoso() -> CustomerId {
        CustomerId::new("contoso").unwrap()
    }

    fn sub() -> Subscription {
        Subscription::new(
            SubscriptionId::new("sub-1").unwrap(),
            contoso(),
            CloudService::Office365,
            "E3",
        )
    }

    #[test]
    fn only_the_owners_global_admin_may_change() {
        assert_eq!(
            Actor::global_admin(contoso()).access_to(&sub()),
            Access::Change
        );
    }

    #[test]
    fn other_roles_of_the_owner_may_view() {
        let mpn = MpnId::parse("565380").unwrap();
        for role in [
            CustomerRole::BillingAdministrator,
            CustomerRole::ServiceAdministrator,
            CustomerRole::DelegatedAdministrator { partner: mpn },
        ] {
            assert_eq!(
                Actor::customer(contoso(), role).access_to(&sub()),
                Access::View
            );
        }
    }

    #[test]
    fn other_customers_and_other_partners_see_nothing() {
        let other = Actor::global_admin(CustomerId::new("fabrikam").unwrap());
        assert_eq!(other.access_to(&sub()), Access::Hidden);
        let partner = Actor::partner(MpnId::parse("565380").unwrap());
        assert_eq!(partner.access_to(&sub()), Access::Hidden);
    }

    #[test]
    fn the_partner_of_record_may_view_only() {
        use crate::association::Transition;
        use crate::partner::{Partner, Program};
        let mpn = MpnId::parse("565380").unwrap();
        let p = Partner::new(mpn, "P").enrolled_in(Program::OnlineServicesSell);
        let at = time::macros::datetime!(2026-01-01 0:00 UTC);
        let Ok(Transition::Changed { next, .. }) =
            sub().associate(&p, Program::OnlineServicesSell, at)
        else {
            panic!("expected a change")
        };
        assert_eq!(Actor::partner(mpn).access_to(&next), Access::View);
        assert!(next.actions_for(&Actor::partner(mpn)).is_empty());
        assert!(!Actor::partner(mpn).may_manage_lifecycle(&next, LifecycleChange::Cancel));
    }

    #[test]
    fn the_billing_system_alone_suspends_reactivates_and_migrates() {
        use LifecycleChange::*;
        let billing = Actor::billing_system();
        let people = [
            Actor::global_admin(contoso()),
            Actor::customer(contoso(), CustomerRole::BillingAdministrator),
        ];
        for change in [Suspend, Reactivate, Migrate] {
            assert!(billing.may_attempt(Operation::Lifecycle(change)).is_ok());
            assert!(billing.authorize_lifecycle(&sub(), change).is_ok());
            for person in &people {
                assert!(matches!(
                    person.may_attempt(Operation::Lifecycle(change)),
                    Err(Error::Forbidden { .. })
                ));
                assert!(!person.may_manage_lifecycle(&sub(), change));
            }
        }
    }

    #[test]
    fn the_owners_global_and_billing_admins_may_cancel_too() {
        for role in [
            CustomerRole::GlobalAdministrator,
            CustomerRole::BillingAdministrator,
        ] {
            let person = Actor::customer(contoso(), role);
            assert!(
                person
                    .may_attempt(Operation::Lifecycle(LifecycleChange::Cancel))
                    .is_ok()
            );
            assert!(
                person
                    .authorize_lifecycle(&sub(), LifecycleChange::Cancel)
                    .is_ok()
            );
        }
        let service = Actor::customer(contoso(), CustomerRole::ServiceAdministrator);
        assert!(matches!(
            service.authorize_lifecycle(&sub(), LifecycleChange::Cancel),
            Err(Error::Forbidden { .. })
        ));
        let other = Actor::global_admin(CustomerId::new("fabrikam").unwrap());
        assert!(matches!(
            other.authorize_lifecycle(&sub(), LifecycleChange::Cancel),
            Err(Error::SubscriptionNotFound(_))
        ));
        let partner = Actor::partner(MpnId::parse("565380").unwrap());
        assert!(matches!(
            partner.may_attempt(Operation::Lifecycle(LifecycleChange::Cancel)),
            Err(Error::Forbidden { .. })
        ));
    }

    #[test]
    fn the_billing_system_reads_everything_and_designates_nothing() {
        let billing = Actor::billing_system();
        assert_eq!(billing.access_to(&sub()), Access::View);
        assert!(billing.may_attempt(Operation::View).is_ok());
        assert!(billing.may_attempt(Operation::ViewHistory).is_ok());
        assert!(matches!(
            billing.may_attempt(Operation::ChangePartner),
            Err(Error::Forbidden { .. })
        ));
        assert!(sub().actions_for(&billing).is_empty());
    }

    #[test]
    fn hidden_is_not_found_and_too_little_is_forbidden() {
        let other = Actor::global_admin(CustomerId::new("fabrikam").unwrap());
        assert!(matches!(
            other.authorize(&sub(), Access::View),
            Err(Error::SubscriptionNotFound(_))
        ));
        let billing = Actor::customer(contoso(), CustomerRole::BillingAdministrator);
        assert!(matches!(
            billing.authorize(&sub(), Access::Change),
            Err(Error::Forbidden { .. })
        ));
    }

    #[test]
    fn actions_are_offered_only_to_the_owners_global_admin_on_active() {
        let owner = Actor::global_admin(CustomerId::new("contoso").unwrap());
        assert_eq!(sub().actions_for(&owner), [Action::AddPartnerOfRecord]);
        let billing = Actor::customer(
            CustomerId::new("contoso").unwrap(),
            CustomerRole::BillingAdministrator,
        );
        assert!(sub().actions_for(&billing).is_empty());
        let other = Actor::global_admin(CustomerId::new("fabrikam").unwrap());
        assert!(sub().actions_for(&other).is_empty());
        let suspended = sub().with_status(SubscriptionStatus::Suspended);
        assert!(suspended.actions_for(&owner).is_empty());
    }
}
