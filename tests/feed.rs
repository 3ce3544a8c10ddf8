//! The change feed through the service: who may read it, pages and limits, and cursors
//! as a reader stores them. (The order under concurrent writers is raced in
//! `tests/concurrency.rs` and in the SQL stores' tests.)

mod common;

use common::*;
use dpor::feed::{Cursor, MAX_CHANGES};
use dpor::*;

#[tokio::test]
async fn only_the_billing_system_reads_the_feed() {
    let w = world().await;
    for actor in [
        admin(),
        Actor::customer(contoso(), CustomerRole::BillingAdministrator),
        Actor::customer(
            contoso(),
            CustomerRole::DelegatedAdministrator {
                partner: mpn("565380"),
            },
        ),
        Actor::partner(mpn("565380")),
    ] {
        let refused = w.service.changes(&actor, None, 10).await;
        assert!(
            matches!(refused, Err(Error::Forbidden { .. })),
            "{actor:?}: {refused:?}"
        );
    }
    assert!(
        w.service
            .changes(&Actor::billing_system(), None, 10)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn pages_follow_commits_and_cursors_resume_from_their_json() {
    let w = world().await;
    let billing = Actor::billing_system();
    for (sub, mpn) in [
        ("sub-001", "565380"),
        ("sub-002", "565380"),
        ("sub-001", "3664167"),
    ] {
        check_and_submit(&w.service, &admin(), &sub_id(sub), mpn)
            .await
            .unwrap();
    }
    w.service
        .suspend(&billing, &sub_id("sub-002"))
        .await
        .unwrap();
    let all = w.service.changes(&billing, None, 100).await.unwrap();
    let order: Vec<(&str, u64)> = all
        .iter()
        .map(|c| (c.event.subscription.as_str(), c.event.sequence))
        .collect();
    assert_eq!(
        order,
        [
            ("sub-001", 1),
            ("sub-002", 1),
            ("sub-001", 2),
            ("sub-001", 3),
            ("sub-002", 2)
        ]
    );
    assert!(matches!(all[4].event.caused_by, Cause::BillingSystem));
    // A reader that saved the second cursor as JSON, and resumes.
    let saved = serde_json::to_string(&all[1].cursor).unwrap();
    let cursor: Cursor = serde_json::from_str(&saved).unwrap();
    let rest = w.service.changes(&billing, Some(&cursor), 2).await.unwrap();
    assert_eq!(rest, all[2..4]);
    // A limit of 0 reads nothing; a huge one reads at most MAX_CHANGES.
    assert!(
        w.service
            .changes(&billing, None, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        w.service
            .changes(&billing, None, usize::MAX)
            .await
            .unwrap()
            .len(),
        5
    );
    const { assert!(MAX_CHANGES >= 100) };
    // A cursor past the end, or from another epoch, is another store's (read as "nothing
    // yet", it would hide every change up to it): the reader is told to start again.
    for foreign in [
        Cursor::new(0, 6),
        Cursor::new(0, u64::MAX),
        Cursor::new(1, 0),
    ] {
        let refused = w.service.changes(&billing, Some(&foreign), 10).await;
        assert!(
            matches!(&refused, Err(e @ Error::UnknownCursor(c)) if *c == foreign && e.code() == "unknown_cursor"),
            "{foreign}: {refused:?}"
        );
    }
    let last = w.service.changes(&billing, None, 10).await.unwrap()[4].cursor;
    assert_eq!(last, Cursor::new(0, 5));
    assert!(
        w.service
            .changes(&billing, Some(&last), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A cursor that is not one is a JSON error, before it reaches the service.
    for bad in [r#""""#, r#""1""#, r#""x.1""#, "1", r#""-1.0""#] {
        assert!(serde_json::from_str::<Cursor>(bad).is_err(), "{bad}");
    }
}
