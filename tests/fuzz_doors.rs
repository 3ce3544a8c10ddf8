//! Every door of the crate fed with arbitrary bytes and with mutations of valid input:
//! each `Deserialize` type and each parser answers a typed error or a value that
//! round-trips, and never panics.

use std::fmt::Debug;

use dpor::*;
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Reads `bytes` as a `T`; a value read must write and read back as itself.
fn door<T>(bytes: &[u8]) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let Ok(value) = serde_json::from_slice::<T>(bytes) else {
        return Ok(());
    };
    let written = serde_json::to_vec(&value)
        .map_err(|e| TestCaseError::fail(format!("{value:?} was read but not written: {e}")))?;
    let again: T = serde_json::from_slice(&written).map_err(|e| {
        TestCaseError::fail(format!("{value:?} was written but not read back: {e}"))
    })?;
    prop_assert_eq!(again, value);
    Ok(())
}

/// Every type that deserializes, through [`door`].
fn every_door(bytes: &[u8]) -> Result<(), TestCaseError> {
    door::<Subscription>(bytes)?;
    door::<PartnerOfRecord>(bytes)?;
    door::<AssociationEvent>(bytes)?;
    door::<AssociationEventKind>(bytes)?;
    door::<RemovalReason>(bytes)?;
    door::<Notification>(bytes)?;
    door::<NotificationKind>(bytes)?;
    door::<Partner>(bytes)?;
    door::<Program>(bytes)?;
    door::<CloudService>(bytes)?;
    door::<SubscriptionStatus>(bytes)?;
    door::<Action>(bytes)?;
    door::<Actor>(bytes)?;
    door::<CustomerRole>(bytes)?;
    door::<Access>(bytes)?;
    door::<PartnerCheck>(bytes)?;
    door::<PartnerLink>(bytes)?;
    door::<Commit>(bytes)?;
    door::<Receipt>(bytes)?;
    door::<DispatchReport>(bytes)?;
    door::<Transition>(bytes)?;
    door::<PorPeriod>(bytes)?;
    door::<IncentivePolicy>(bytes)?;
    door::<Eligibility>(bytes)?;
    door::<Disqualification>(bytes)?;
    door::<BulkMode>(bytes)?;
    door::<MpnId>(bytes)?;
    door::<SubscriptionId>(bytes)?;
    door::<CustomerId>(bytes)?;
    door::<NotificationId>(bytes)?;
    Ok(())
}

/// Valid documents of every shape, to mutate.
fn seeds() -> Vec<String> {
    use time::macros::datetime;
    let sub = Subscription::new(
        SubscriptionId::new("sub-001").unwrap(),
        CustomerId::new("contoso").unwrap(),
        CloudService::Other("AX7".into()),
        "Office 365 E3",
    );
    let partner = Partner::new(MpnId::parse("565380").unwrap(), "Fabrikam")
        .with_location("Seattle, US")
        .with_contact_email("por@fabrikam.example")
        .enrolled_in(Program::OnlineServicesSell);
    let at = datetime!(2026-01-05 10:00 UTC);
    let Ok(Transition::Changed { next, events }) =
        sub.associate(&partner, Program::OnlineServicesSell, at)
    else {
        panic!("expected a change")
    };
    let check = PartnerCheck::issue(
        &sub,
        partner.mpn_id(),
        Some(partner.clone()),
        Program::OnlineServicesSell,
        at,
    )
    .unwrap();
    let notification = Notification::for_event(&events[0], sub.service(), None).unwrap();
    let commit = Commit {
        expected_version: 0,
        next: next.clone(),
        events: events.clone(),
        notifications: vec![notification.clone()],
        create: None,
    };
    let json = |v: &dyn erased::Json| v.json();
    vec![
        json(&next),
        json(&events[0]),
        json(&notification),
        json(&partner),
        json(&check),
        json(&commit),
        json(&Actor::global_admin(CustomerId::new("contoso").unwrap())),
        json(&Actor::customer(
            CustomerId::new("contoso").unwrap(),
            CustomerRole::DelegatedAdministrator {
                partner: partner.mpn_id(),
            },
        )),
        json(&Actor::billing_system()),
        json(&PartnerLink {
            subscription: sub.id().clone(),
            mpn_id: partner.mpn_id(),
        }),
        json(&IncentivePolicy::sell()),
        json(&dpor::attribution::periods(&events)),
        json(&Transition::Changed { next, events }),
    ]
}

/// `serde_json::to_string` behind a trait object, so that seeds of any type share a
/// vector.
mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).expect("a seed serializes")
        }
    }
}

/// One edit of a document: cut a range, insert a token, or swap a range for a token.
#[derive(Debug, Clone)]
enum Mutation {
    Cut(usize, usize),
    Insert(usize, &'static str),
    Replace(usize, usize, &'static str),
}

const TOKENS: &[&str] = &[
    "",
    "\"",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "true",
    "-1",
    "0",
    "1e400",
    "18446744073709551616",
    "\"\"",
    "\"x\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\u{200b}\"",
    "\"9999-12-31T23:59:59-00:01\"",
    "\"0000-01-01T00:00:00+23:59\"",
    "\"2026-02-30T00:00:00Z\"",
    "{\"type\":\"other\"}",
    "{\"type\":\"billing_system\"}",
    "[1,2,3]",
    "\"565380\"",
    "\"12345678901\"",
    "\"type\"",
    "\"extra\":1,",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    let token = prop::sample::select(TOKENS);
    prop_oneof![
        (any::<usize>(), 0usize..16).prop_map(|(at, n)| Mutation::Cut(at, n)),
        (any::<usize>(), token.clone()).prop_map(|(at, t)| Mutation::Insert(at, t)),
        (any::<usize>(), 0usize..24, token).prop_map(|(at, n, t)| Mutation::Replace(at, n, t)),
    ]
}

fn apply(document: &str, mutations: &[Mutation]) -> String {
    let mut text = document.to_owned();
    let boundary = |text: &str, at: usize| {
        let mut at = at % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    for m in mutations {
        match *m {
            Mutation::Cut(at, n) => {
                let start = boundary(&text, at);
                let end = boundary(&text, start + n.min(text.len() - start));
                text.replace_range(start..end.max(start), "");
            }
            Mutation::Insert(at, token) => {
                let at = boundary(&text, at);
                text.insert_str(at, token);
            }
            Mutation::Replace(at, n, token) => {
                let start = boundary(&text, at);
                let end = boundary(&text, start + n.min(text.len() - start));
                text.replace_range(start..end.max(start), token);
            }
        }
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn arbitrary_bytes_are_a_value_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        every_door(&bytes)?;
    }

    #[test]
    fn mutated_documents_are_a_value_or_an_error(
        seed in prop::sample::select(seeds()),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        every_door(apply(&seed, &mutations).as_bytes())?;
    }

    #[test]
    fn the_parsers_answer_a_value_that_round_trips_or_an_error(input in ".{0,40}") {
        if let Ok(id) = MpnId::parse(&input) {
            prop_assert_eq!(MpnId::parse(id.as_str()), Ok(id));
        }
        if let Ok(id) = SubscriptionId::new(input.as_str()) {
            prop_assert_eq!(SubscriptionId::new(id.as_str()), Ok(id));
        }
        if let Ok(id) = CustomerId::new(input.as_str()) {
            prop_assert_eq!(CustomerId::new(id.as_str()), Ok(id));
        }
        if let Ok(link) = PartnerLink::parse(&input) {
            prop_assert_eq!(PartnerLink::parse(&link.to_query_string()), Ok(link));
        }
        if let Some(decoded) = dpor::link::percent_decode(&input) {
            prop_assert_eq!(dpor::link::percent_decode(&dpor::link::percent_encode(&decoded)), Some(decoded));
        }
    }

    #[test]
    fn query_strings_built_from_parts_parse_strictly(
        key in prop::sample::select(vec!["subscription", "mpn_id", "x", "", "subscription%3D"]),
        value in "[a-z0-9%+&=#é ]{0,12}",
        rest in "[a-z0-9%+&=_]{0,24}",
    ) {
        let query = format!("{key}={value}&{rest}");
        if let Ok(link) = PartnerLink::parse(&query) {
            prop_assert_eq!(PartnerLink::parse(&link.to_query_string()), Ok(link));
        }
    }
}

#[test]
fn a_ten_megabyte_partner_name_is_refused_naming_the_field() {
    let name = "x".repeat(10 * 1024 * 1024);
    let json = format!(
        r#"{{"mpn_id":"565380","name":"{name}","location":null,"contact_email":null,"programs":[]}}"#
    );
    let error = serde_json::from_str::<Partner>(&json).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the name has 10485760 characters, at most 256"),
        "{error}"
    );
    // Built in code, it cannot be written either: a store never writes what it could
    // not read back.
    let partner = Partner::new(MpnId::parse("565380").unwrap(), name);
    assert!(serde_json::to_string(&partner).is_err());
    let long_email = format!("{}@example.com", "a".repeat(250));
    let partner = Partner::new(MpnId::parse("565380").unwrap(), "F").with_contact_email(long_email);
    let error = serde_json::to_string(&partner).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the contact email has 262 characters"),
        "{error}"
    );
}
