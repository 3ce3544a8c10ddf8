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
        // The host's billing system reads everything and designates nothing.
        (Actor::billing_system(), Ok, Ok, Forbidden),
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
            Actor::Customer { customer, .. } => {
                assert!(listed.unwrap().iter().all(|s| s.customer() == customer));
            }
            _ => assert_eq!(outcome(listed), Outcome::Forbidden),
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

/// Who may change the lifecycle: (actor, suspend / reactivate / migrate, cancel), on
/// sub-001.
fn lifecycle_actors() -> Vec<(Actor, Outcome, Outcome)> {
    use CustomerRole::*;
    use Outcome::*;
    vec![
        (Actor::billing_system(), Ok, Ok),
        (admin(), Forbidden, Ok),
        (
            Actor::customer(contoso(), BillingAdministrator),
            Forbidden,
            Ok,
        ),
        (
            Actor::customer(contoso(), ServiceAdministrator),
            Forbidden,
            Forbidden,
        ),
        (Actor::partner(mpn("3664167")), Forbidden, Forbidden),
        (
            Actor::global_admin(CustomerId::new("litware").unwrap()),
            Forbidden,
            NotFound,
        ),
    ]
}

#[tokio::test]
async fn only_the_billing_system_suspends_reactivates_and_migrates() {
    for (actor, billing_only, cancel) in lifecycle_actors() {
        let w = world().await;
        w.designate("sub-001", &northwind()).await;
        let sub = sub_id("sub-001");
        let before = w.snapshot().await;
        let refused = billing_only != Outcome::Ok;
        assert_eq!(
            outcome(w.service.suspend(&actor, &sub).await),
            billing_only,
            "{actor:?} suspend"
        );
        assert_eq!(
            outcome(w.service.reactivate(&actor, &sub).await),
            billing_only,
            "{actor:?} reactivate"
        );
        if refused {
            assert_eq!(w.snapshot().await, before, "{actor:?} changed something");
        }
        assert_eq!(
            outcome(w.service.migrate(&actor, &sub, sub_id("new-001")).await),
            billing_only,
            "{actor:?} migrate"
        );
        if refused {
            assert_eq!(w.snapshot().await, before, "{actor:?} changed something");
        }
        let w = world().await;
        let before = w.snapshot().await;
        assert_eq!(
            outcome(w.service.cancel(&actor, &sub).await),
            cancel,
            "{actor:?} cancel"
        );
        if cancel != Outcome::Ok {
            assert_eq!(w.snapshot().await, before, "{actor:?} changed something");
        }
    }
}

#[tokio::test]
async fn a_person_calling_migrate_learns_nothing_about_ids() {
    let w = world().await;
    let before = w.snapshot().await;
    // A billing administrator of another customer aims at existing and missing ids:
    // the same refusal each time, before anything is read.
    let stranger = Actor::customer(
        CustomerId::new("litware").unwrap(),
        CustomerRole::BillingAdministrator,
    );
    for (from, to) in [
        ("sub-002", "sub-003"),
        ("sub-002", "free-id"),
        ("no-such", "sub-003"),
        ("no-such", "free-id"),
    ] {
        let refused = w
            .service
            .migrate(&stranger, &sub_id(from), sub_id(to))
            .await;
        assert!(
            matches!(refused, Err(Error::Forbidden { .. })),
            "{from} -> {to}: {refused:?}"
        );
    }
    assert_eq!(w.snapshot().await, before);
}
