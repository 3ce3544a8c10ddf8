//! Property tests of the association state machine: random sequences of associate and
//! remove over random partners keep every invariant after every step.

mod common;

use common::replay;
use dpor::*;
use proptest::prelude::*;
use time::{Duration, OffsetDateTime, macros::datetime};

const START: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);
const PARTNERS: [&str; 5] = ["565380", "3664167", "5139005", "0012345", "1234567890"];
const PROGRAMS: [Program; 2] = [Program::OnlineServicesSell, Program::OnlineServicesUsage];

#[derive(Clone, Debug)]
enum Op {
    Associate {
        partner: usize,
        program: usize,
        enrolled: bool,
    },
    Remove,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..PARTNERS.len(), 0..PROGRAMS.len(), prop::bool::weighted(0.9))
            .prop_map(|(partner, program, enrolled)| Op::Associate { partner, program, enrolled }),
        1 => Just(Op::Remove),
    ]
}

fn partner(index: usize, program: Program, enrolled: bool) -> Partner {
    let p = Partner::new(
        MpnId::parse(PARTNERS[index]).unwrap(),
        format!("Partner {index}"),
    );
    if enrolled { p.enrolled_in(program) } else { p }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn invariants_hold_after_every_step(ops in prop::collection::vec(op(), 1..60)) {
        let mut sub = Subscription::new(
            SubscriptionId::new("sub-1").unwrap(),
            CustomerId::new("contoso").unwrap(),
            CloudService::Office365,
            "E3",
        );
        let mut history: Vec<AssociationEvent> = Vec::new();
        for (step, op) in ops.into_iter().enumerate() {
            let at = START + Duration::minutes(step as i64);
            let before = sub.clone();
            let result = match op {
                Op::Associate { partner: p, program, enrolled } => {
                    let program = PROGRAMS[program];
                    sub.associate(&partner(p, program, enrolled), program, at)
                }
                Op::Remove => sub.remove_partner(at),
            };
            prop_assert_eq!(&sub, &before, "a transition modified its input");
            match result {
                Ok(Transition::Changed { next, events }) => {
                    prop_assert_eq!(next.version(), before.version() + 1);
                    prop_assert!(!events.is_empty() && events.len() <= 2);
                    for (i, event) in events.iter().enumerate() {
                        prop_assert_eq!(event.sequence, before.last_event_sequence() + 1 + i as u64);
                        prop_assert_eq!(event.at, at);
                        prop_assert_eq!(&event.subscription, next.id());
                    }
                    prop_assert_eq!(next.last_event_sequence(), before.last_event_sequence() + events.len() as u64);
                    history.extend(events);
                    sub = next;
                }
                Ok(Transition::Unchanged) => {
                    let por = before.partner_of_record().unwrap();
                    let same = matches!(op, Op::Associate { partner: p, .. } if MpnId::parse(PARTNERS[p]).unwrap() == por.mpn_id());
                    prop_assert!(same, "unchanged although another partner was asked for");
                }
                Err(Error::PartnerNotEnrolled { .. }) => {
                    let not_enrolled = matches!(op, Op::Associate { enrolled: false, .. });
                    prop_assert!(not_enrolled, "refused an enrolled partner");
                }
                Err(Error::NoPartnerOfRecord(_)) => prop_assert!(before.partner_of_record().is_none()),
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
            let replayed = replay(&history).map_err(TestCaseError::fail)?;
            let current = sub.partner_of_record().map(|p| (p.mpn_id(), p.program()));
            prop_assert_eq!(replayed, current);
            let sequences: Vec<u64> = history.iter().map(|e| e.sequence).collect();
            prop_assert_eq!(sequences, (1..=history.len() as u64).collect::<Vec<_>>());
        }
    }
}
