//! Who did it: every event the service writes records who caused it, and only those
//! who may see the customer's users see which user it was.

mod common;

use common::*;
use dpor::*;

fn alice() -> Actor {
    admin().with_user(UserRef::new("alice@contoso.example").unwrap())
}

/// "Check ID" and "Submit" as `actor`.
async fn designate(w: &World, actor: &Actor, sub: &str, mpn: &str) -> Receipt {
    let check = w
        .service
        .check_partner(actor, &sub_id(sub), mpn)
        .await
        .unwrap();
    w.service.submit(actor, &check).await.unwrap()
}

#[tokio::test]
async fn every_event_records_the_user_and_role_or_the_billing_system() {
    let w = world().await;
    let sub = sub_id("sub-001");
    designate(&w, &alice(), "sub-001", "565380").await;
    // An admin the host did not name: the role only.
    designate(&w, &admin(), "sub-001", "3664167").await;
    w.service
        .suspend(&Actor::billing_system(), &sub)
        .await
        .unwrap();

    let history = w.service.history(&alice(), &sub).await.unwrap();
    let causes: Vec<&Cause> = history.iter().map(|e| &e.caused_by).collect();
    let named = Cause::Customer {
        role: CustomerRole::GlobalAdministrator,
        user: Some(UserRef::new("alice@contoso.example").unwrap()),
    };
    let unnamed = Cause::Customer {
        role: CustomerRole::GlobalAdministrator,
        user: None,
    };
    // Fabrikam added (alice); Fabrikam replaced and Northwind added (an admin); suspended.
    assert_eq!(
        causes,
        [&named, &unnamed, &unnamed, &Cause::BillingSystem],
        "{history:#?}"
    );
    // The receipt's events say the same.
    let receipt = designate(&w, &alice(), "sub-002", "565380").await;
    assert!(receipt.events.iter().all(|e| e.caused_by == named));
}

#[tokio::test]
async fn partners_and_delegated_admins_see_the_role_but_not_the_user() {
    let w = world().await;
    let sub = sub_id("sub-001");
    designate(&w, &alice(), "sub-001", "565380").await;

    let users = |history: Vec<AssociationEvent>| -> Vec<Option<String>> {
        history
            .iter()
            .map(|e| e.caused_by.user().map(|u| u.as_str().to_owned()))
            .collect()
    };
    let alice_ref = Some("alice@contoso.example".to_owned());
    for (actor, sees) in [
        (alice(), true),
        (
            Actor::customer(contoso(), CustomerRole::BillingAdministrator),
            true,
        ),
        (Actor::billing_system(), true),
        (Actor::partner(mpn("565380")), false),
        (
            Actor::customer(
                contoso(),
                CustomerRole::DelegatedAdministrator {
                    partner: mpn("565380"),
                },
            ),
            false,
        ),
    ] {
        let history = w.service.history(&actor, &sub).await.unwrap();
        assert!(matches!(
            history[0].caused_by,
            Cause::Customer {
                role: CustomerRole::GlobalAdministrator,
                ..
            }
        ));
        let expected = if sees { alice_ref.clone() } else { None };
        assert_eq!(users(history), [expected], "{actor:?}");
        assert_eq!(actor.sees_users(), sees);
    }
}

#[test]
fn a_user_reference_is_validated_like_an_id_and_optional_on_the_wire() {
    for bad in ["", " ", "alice smith", "alice\u{200b}", &"a".repeat(257)] {
        assert!(UserRef::new(bad).is_err(), "{bad:?}");
    }
    assert!(UserRef::new("a".repeat(256)).is_ok());
    // The actor's JSON without "user" is the one callers sent before.
    let json = r#"{"type":"customer","customer":"contoso","role":{"type":"global_administrator"}}"#;
    let actor: Actor = serde_json::from_str(json).unwrap();
    assert_eq!(actor, admin());
    assert_eq!(serde_json::to_string(&actor).unwrap(), json);
    let bad = r#"{"type":"customer","customer":"contoso","role":{"type":"global_administrator"},"user":"a b"}"#;
    assert!(serde_json::from_str::<Actor>(bad).is_err());
    // Other actors have no user to name.
    let partner = Actor::partner(mpn("565380")).with_user(UserRef::new("bob").unwrap());
    assert_eq!(partner.user(), None);
}
