//! The authorization matrix: every role, a partner, and another customer's global
//! admin, against every operation. Nothing changes on any refusal.

mod common;

use common::*;
use dpor::*;

#[derive(Debug, PartialEq)]
enum Outcome {
    Ok,
    Forbidden,
    NotFound,
}

fn outcome<T>(result: Result<T, Error>) -> Outcome {
    match result {
        Ok(_) => Outcome::Ok,
        Err(Error::Forbidden { .. }) => Outcome::Forbidden,
        Err(Error::SubscriptionNotFound(_)) => Outcome::NotFound,
        Err(other) => panic!("unexpected error: {other}"),
    }
}

/// (actor, customer-side reads, history (a partner-side read too), changes), on
/// sub-001 whose partner of record is Northwind (3664167). A hidden subscription reads
/// as not found.
fn actors() -> Vec<(Actor, Outcome, Outcome, Outcome)> {
    use CustomerRole::*;
    use Outcome::*;
    let delegated = DelegatedAdministrator {
        partner: mpn("565380"),
    };
    vec![
        (admin(), Ok, Ok, Ok),
        (
            Actor::customer(contoso(), BillingAdministrator),
            Ok,
            Ok,
            Forbidden,
        ),
        (
            Actor::customer(contoso(), ServiceAdministrator),
            Ok,
            Ok,
            Forbidden,
        ),
        (Actor::customer(contoso(), delegated), Ok, Ok, Forbidden),
        // Another partner: refused, and may not learn the subscription exists.
        (
            Actor::partner(mpn("565380")),
            Forbidden,
            NotFound,
            Forbidden,
        ),
        // The partner of record itself: its history, nothing else.
        (Actor::partner(mpn("3664167")), Forbidden, Ok, Forbidden),
        (
            Actor::global_admin(CustomerId::new("litware").unwrap()),
            NotFound,
            NotFound,
            NotFound,
        ),
    ]
}

#[tokio::test]
async fn every_actor_against_every_operation() {
    let w = world().await;
    w.designate("sub-001", &northwind()).await;
    let sub = sub_id("sub-001");
    let genuine = w
        .service
        .check_partner(&admin(), &sub, "565380")
        .await
        .unwrap();

    for (actor, view, history, change) in actors() {
        let before = w.snapshot().await;
        assert_eq!(
            outcome(w.service.subscription(&actor, &sub).await),
            view,
            "{actor:?} subscription"
        );
        assert_eq!(
            outcome(w.service.partner_of_record(&actor, &sub).await),
            view,
            "{actor:?} partner_of_record"
        );
        assert_eq!(
            outcome(w.service.history(&actor, &sub).await),
            history,
            "{actor:?} history"
        );
        if change != Outcome::Ok {
            assert_eq!(
                outcome(w.service.check_partner(&actor, &sub, "565380").await),
                change,
                "{actor:?} check"
            );
            assert_eq!(
                outcome(w.service.submit(&actor, &genuine).await),
                change,
                "{actor:?} submit"
            );
            assert_eq!(
                outcome(w.service.remove_partner(&actor, &sub).await),
                change,
                "{actor:?} remove"
            );
            assert_eq!(w.snapshot().await, before, "{actor:?} changed something");
        }
        let listed = w.service.subscriptions(&actor).await;
        match &actor {
            Actor::Partner { .. } => assert_eq!(outcome(listed), Outcome::Forbidden),
            Actor::Customer { customer, .. } => {
                assert!(listed.unwrap().iter().all(|s| s.customer() == customer));
            }
        }
    }
    // The global admin may change: the same check then goes through.
    assert!(w.service.submit(&admin(), &genuine).await.unwrap().changed);
}

#[tokio::test]
async fn another_customer_cannot_tell_a_subscription_exists() {
    let w = world().await;
    let stranger = Actor::global_admin(CustomerId::new("litware").unwrap());
    let existing = w
        .service
        .check_partner(&stranger, &sub_id("sub-001"), "565380")
        .await
        .unwrap_err();
    let missing = w
        .service
        .check_partner(&stranger, &sub_id("no-such"), "565380")
        .await
        .unwrap_err();
    assert!(matches!(existing, Error::SubscriptionNotFound(_)));
    assert!(matches!(missing, Error::SubscriptionNotFound(_)));
}

#[tokio::test]
async fn a_partner_is_refused_before_anything_is_read() {
    let w = world().await;
    let partner = Actor::partner(mpn("565380"));
    // Even for a subscription that does not exist: Forbidden, not NotFound.
    assert!(matches!(
        w.service
            .check_partner(&partner, &sub_id("no-such"), "565380")
            .await,
        Err(Error::Forbidden { .. })
    ));
}

#[tokio::test]
async fn role_is_checked_before_mpn_syntax() {
    let w = world().await;
    let billing = Actor::customer(contoso(), CustomerRole::BillingAdministrator);
    assert!(matches!(
        w.service
            .check_partner(&billing, &sub_id("sub-001"), "not an id")
            .await,
        Err(Error::Forbidden { .. })
    ));
}

#[tokio::test]
async fn actions_follow_the_rules() {
    let w = world().await;
    let sub = w
        .service
        .subscription(&admin(), &sub_id("sub-001"))
        .await
        .unwrap();
    for (actor, _, _, change) in actors() {
        let expected: &[Action] = if change == Outcome::Ok {
            &[Action::AddPartnerOfRecord]
        } else {
            &[]
        };
        assert_eq!(sub.actions_for(&actor), expected, "{actor:?}");
    }
}
