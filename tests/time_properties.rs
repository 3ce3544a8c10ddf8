//! Every timestamp a record reads either lands in the years a record can hold (0000 to
//! 9999 in UTC) and writes back as it was read, or is a typed deserialization error:
//! never a panic. The edge space: years 0000 and 9999, offsets up to ±23:59, the leap
//! second `:60`, fractional seconds.

use dpor::*;
use proptest::prelude::*;

/// An RFC 3339 timestamp near the edges of what the format writes.
fn edge_timestamp() -> impl Strategy<Value = String> {
    let year = prop::sample::select(vec![0, 1, 1969, 1970, 2026, 9998, 9999]);
    let month = prop::sample::select(vec![1u8, 2, 12]);
    let day = prop::sample::select(vec![1u8, 28, 29, 31]);
    let hour = prop::sample::select(vec![0u8, 12, 23]);
    let minute = prop::sample::select(vec![0u8, 1, 59]);
    let second = prop::sample::select(vec![0u8, 59, 60]);
    let fraction =
        prop::sample::select(vec!["", ".5", ".999999999", ".000000001", ".123456789123"]);
    let offset = prop_oneof![
        Just("Z".to_owned()),
        (prop::bool::ANY, 0u8..=23, 0u8..=59)
            .prop_map(|(east, h, m)| { format!("{}{h:02}:{m:02}", if east { '+' } else { '-' }) }),
    ];
    (year, month, day, hour, minute, second, fraction, offset).prop_map(
        |(y, mo, d, h, mi, s, f, o)| format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{f}{o}"),
    )
}

/// The records and requests that hold a time, with `at` in it.
fn documents(at: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "subscription",
            format!(
                r#"{{"id":"sub-1","customer":"c","service":{{"type":"azure"}},"name":"n","status":"active","version":1,"last_event_sequence":1,"partner_of_record":{{"mpn_id":"565380","partner_name":"F","program":"online_services_sell","since":"{at}"}}}}"#
            ),
        ),
        (
            "event",
            format!(
                r#"{{"subscription":"sub-1","customer":"c","sequence":1,"at":"{at}","kind":{{"type":"subscription_suspended","partner":null}}}}"#
            ),
        ),
        (
            "notification",
            format!(
                r#"{{"id":"sub-1#1","partner":"565380","contact_email":null,"kind":"added","subscription":"sub-1","customer":"c","service":{{"type":"azure"}},"at":"{at}"}}"#
            ),
        ),
        (
            "check",
            format!(
                r#"{{"subscription":"sub-1","partner":{{"mpn_id":"565380","name":"F","location":null,"contact_email":null,"programs":[]}},"program":"online_services_sell","current":null,"version":0,"checked_at":"{at}"}}"#
            ),
        ),
        (
            "period",
            format!(
                r#"{{"partner":"565380","program":"online_services_sell","from":"{at}","to":"{at}"}}"#
            ),
        ),
    ]
}

/// Reads `json` as `T`; when that succeeds, writing and reading again gives the same
/// value and the same text.
fn round_trips<T>(json: &str) -> Result<bool, String>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(value) = serde_json::from_str::<T>(json) else {
        return Ok(false);
    };
    let written =
        serde_json::to_string(&value).map_err(|e| format!("accepted but not written: {e}"))?;
    let again: T =
        serde_json::from_str(&written).map_err(|e| format!("written but not read: {e}"))?;
    if again != value {
        return Err(format!("{value:?} came back as {again:?}"));
    }
    if serde_json::to_string(&again).ok().as_deref() != Some(written.as_str()) {
        return Err("written twice differently".to_owned());
    }
    Ok(true)
}

fn check_all(at: &str) -> Result<[bool; 5], String> {
    let docs = documents(at);
    Ok([
        round_trips::<Subscription>(&docs[0].1)?,
        round_trips::<AssociationEvent>(&docs[1].1)?,
        round_trips::<Notification>(&docs[2].1)?,
        round_trips::<PartnerCheck>(&docs[3].1)?,
        round_trips::<PorPeriod>(&docs[4].1)?,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_edge_time_is_a_value_that_round_trips_or_an_error(at in edge_timestamp()) {
        let accepted = check_all(&at).map_err(TestCaseError::fail)?;
        // One time, one answer: every record takes it or none does.
        prop_assert!(accepted.iter().all(|a| *a == accepted[0]), "{at}: {accepted:?}");
    }
}

#[test]
fn a_time_beyond_the_year_9999_in_utc_is_an_error_not_a_panic() {
    for at in ["9999-12-31T23:59:59-00:01", "0000-01-01T00:00:00+23:59"] {
        assert_eq!(check_all(at), Ok([false; 5]), "{at}");
    }
    for at in [
        "9999-12-31T23:59:59Z",
        "0000-01-01T00:00:00Z",
        "0000-01-01T23:59:00+23:59",
    ] {
        assert_eq!(check_all(at), Ok([true; 5]), "{at}");
    }
}

#[test]
fn a_clock_beyond_the_recordable_years_is_refused_by_the_transitions() {
    use time::macros::datetime;
    let sub = Subscription::new(
        SubscriptionId::new("sub-1").unwrap(),
        CustomerId::new("c").unwrap(),
        CloudService::Azure,
        "n",
    );
    let late = datetime!(9999-12-31 23:59:59 -00:01);
    assert!(matches!(
        sub.suspend(late),
        Err(Error::TimeOutOfRange { .. })
    ));
    let partner =
        Partner::new(MpnId::parse("565380").unwrap(), "F").enrolled_in(Program::OnlineServicesSell);
    assert!(matches!(
        sub.associate(&partner, Program::OnlineServicesSell, late),
        Err(Error::TimeOutOfRange { .. })
    ));
    assert!(sub.suspend(datetime!(9999-12-31 23:59:59 UTC)).is_ok());
}
