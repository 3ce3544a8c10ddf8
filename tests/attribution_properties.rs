//! Property tests of attribution: for random histories (partner changes and the
//! lifecycle), `partner_of_record_at` agrees with replaying the events up to that
//! instant, the periods agree with the attribution rule (paused while suspended,
//! ended by cancellation or migration), and they never overlap.

use dpor::attribution::{partner_of_record_at, periods};
use dpor::*;
use proptest::prelude::*;
use time::{Duration, OffsetDateTime, macros::datetime};

const START: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);
const PARTNERS: [&str; 3] = ["565380", "3664167", "5139005"];
const SELL: Program = Program::OnlineServicesSell;

#[derive(Clone, Debug)]
enum Op {
    Associate(usize),
    Remove,
    Suspend,
    Reactivate,
    Cancel,
    Migrate,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..PARTNERS.len()).prop_map(Op::Associate),
        2 => Just(Op::Remove),
        1 => Just(Op::Suspend),
        2 => Just(Op::Reactivate),
        1 => Just(Op::Cancel),
        1 => Just(Op::Migrate),
    ]
}

/// Builds a history by applying `ops` (gaps in minutes, 0 allowed) with the pure
/// transitions; refused operations are skipped.
fn history(ops: &[(Op, u8)]) -> Vec<AssociationEvent> {
    let mut sub = Subscription::new(
        SubscriptionId::new("sub-1").unwrap(),
        CustomerId::new("contoso").unwrap(),
        CloudService::Office365,
        "E3",
    );
    let mut at = START;
    let mut events = Vec::new();
    for (op, gap) in ops {
        at += Duration::minutes(i64::from(*gap));
        let result = match op {
            Op::Associate(p) => {
                let partner =
                    Partner::new(MpnId::parse(PARTNERS[*p]).unwrap(), "P").enrolled_in(SELL);
                sub.associate(&partner, SELL, at)
            }
            Op::Remove => sub.remove_partner(at),
            Op::Suspend => sub.suspend(at),
            Op::Reactivate => sub.reactivate(at),
            Op::Cancel => sub.cancel(at),
            Op::Migrate => sub
                .migrate(SubscriptionId::new("sub-2").unwrap(), at)
                .map(|(t, _)| t),
        };
        if let Ok(Transition::Changed { next, events: new }) = result {
            events.extend(new);
            sub = next;
        }
    }
    events
}

/// The rule restated as a replay: the partner on the record after every event at or
/// before `at` (lifecycle events leave it there).
fn replay_at(history: &[AssociationEvent], at: OffsetDateTime) -> Option<MpnId> {
    let mut designated = None;
    for event in history.iter().filter(|e| e.at <= at) {
        match &event.kind {
            AssociationEventKind::PartnerAssociated { partner, .. } => designated = Some(*partner),
            AssociationEventKind::PartnerRemoved { .. } => designated = None,
            _ => {}
        }
    }
    designated
}

/// The attribution restated: the partner on the record, unless the subscription is
/// suspended or has ended.
fn attributed_at(history: &[AssociationEvent], at: OffsetDateTime) -> Option<MpnId> {
    let (mut suspended, mut ended) = (false, false);
    for event in history.iter().filter(|e| e.at <= at) {
        match &event.kind {
            AssociationEventKind::SubscriptionSuspended { .. } => suspended = true,
            AssociationEventKind::SubscriptionReactivated { .. } => suspended = false,
            AssociationEventKind::SubscriptionCancelled { .. }
            | AssociationEventKind::SubscriptionMigrated { .. } => ended = true,
            _ => {}
        }
    }
    replay_at(history, at).filter(|_| !suspended && !ended)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn partner_of_record_at_agrees_with_replay(ops in prop::collection::vec((op(), 0u8..4), 0..40), probe in 0i64..200) {
        let history = history(&ops);
        // Probe every event instant, the instants around them, and a random one.
        let mut instants: Vec<OffsetDateTime> = history.iter().flat_map(|e| [e.at - Duration::seconds(1), e.at, e.at + Duration::seconds(1)]).collect();
        instants.push(START + Duration::minutes(probe));
        for at in instants {
            prop_assert_eq!(partner_of_record_at(&history, at), replay_at(&history, at), "at {}", at);
            let attributed = periods(&history).into_iter().find(|p| p.contains(at)).map(|p| p.partner);
            prop_assert_eq!(attributed, attributed_at(&history, at), "periods at {}", at);
        }
    }

    #[test]
    fn periods_never_overlap(ops in prop::collection::vec((op(), 0u8..4), 0..40)) {
        let history = history(&ops);
        let periods = periods(&history);
        for pair in periods.windows(2) {
            let end = pair[0].to;
            prop_assert!(end.is_some(), "only the last period may be open");
            prop_assert!(end.unwrap() <= pair[1].from, "{:?} overlaps {:?}", pair[0], pair[1]);
        }
        for p in &periods {
            prop_assert!(p.to.is_none_or(|to| p.from < to), "empty period {:?}", p);
        }
    }
}

#[test]
fn a_clock_that_went_backwards_still_gives_disjoint_periods() {
    let a = Partner::new(MpnId::parse("565380").unwrap(), "A").enrolled_in(SELL);
    let b = Partner::new(MpnId::parse("3664167").unwrap(), "B").enrolled_in(SELL);
    let sub = Subscription::new(
        SubscriptionId::new("s").unwrap(),
        CustomerId::new("c").unwrap(),
        CloudService::Azure,
        "n",
    );
    let Ok(Transition::Changed {
        next,
        events: mut history,
    }) = sub.associate(&a, SELL, START + Duration::hours(2))
    else {
        panic!()
    };
    let Ok(Transition::Changed { events, .. }) = next.associate(&b, SELL, START) else {
        panic!()
    };
    history.extend(events);
    let p = periods(&history);
    assert_eq!(
        p.len(),
        1,
        "A's period is empty once B's start is clamped: {p:?}"
    );
    assert_eq!(
        (p[0].partner, p[0].from),
        (b.mpn_id(), START + Duration::hours(2))
    );
}
