//! The JSON wire format (DESIGN.md section 5), pinned byte for byte.

use dpor::*;
use time::macros::datetime;

const SUBSCRIPTION: &str = r#"{"id":"sub-001","customer":"contoso","service":{"type":"office365"},"name":"Office 365 E3","status":"active","version":1,"last_event_sequence":1,"partner_of_record":{"mpn_id":"565380","partner_name":"Fabrikam Consulting","program":"online_services_sell","since":"2026-01-05T10:00:00Z"}}"#;
const EVENT: &str = r#"{"subscription":"sub-001","customer":"contoso","sequence":3,"at":"2026-02-01T09:30:00Z","kind":{"type":"partner_removed","partner":"565380","reason":{"type":"replaced_by","partner":"3664167"}},"caused_by":{"type":"customer","role":{"type":"global_administrator"},"user":"alice@contoso.example"}}"#;
/// The same event as 0.1.0 wrote it, before events recorded who caused them.
const EVENT_0_1_0: &str = r#"{"subscription":"sub-001","customer":"contoso","sequence":3,"at":"2026-02-01T09:30:00Z","kind":{"type":"partner_removed","partner":"565380","reason":{"type":"replaced_by","partner":"3664167"}}}"#;
const NOTIFICATION: &str = r#"{"id":"sub-001#1","partner":"565380","contact_email":"por@fabrikam.example","kind":"added","subscription":"sub-001","customer":"contoso","service":{"type":"office365"},"at":"2026-01-05T10:00:00Z"}"#;

const PARTNER: &str = r#"{"mpn_id":"565380","name":"Fabrikam Consulting","location":"Seattle, US","contact_email":"por@fabrikam.example","programs":["online_services_sell"]}"#;
const CHECK: &str = r#"{"subscription":"sub-001","partner":{"mpn_id":"565380","name":"Fabrikam Consulting","location":"Seattle, US","contact_email":"por@fabrikam.example","programs":["online_services_sell"]},"program":"online_services_sell","current":null,"version":0,"checked_at":"2026-01-05T09:58:00Z"}"#;

#[test]
fn the_readme_shows_exactly_the_pinned_examples() {
    let readme = include_str!("../README.md");
    for example in [SUBSCRIPTION, EVENT, NOTIFICATION, PARTNER, CHECK] {
        assert!(
            readme.contains(&format!("```json\n{example}\n```")),
            "README lacks {example}"
        );
    }
}

#[test]
fn partner_is_pinned() {
    let partner = fabrikam().with_location("Seattle, US");
    assert_eq!(serde_json::to_string(&partner).unwrap(), PARTNER);
    assert_eq!(serde_json::from_str::<Partner>(PARTNER).unwrap(), partner);
}

#[tokio::test]
async fn partner_check_is_pinned() {
    let repo = InMemoryRepository::new();
    let contoso = CustomerId::new("contoso").unwrap();
    let sub = SubscriptionId::new("sub-001").unwrap();
    repo.insert(Subscription::new(
        sub.clone(),
        contoso.clone(),
        CloudService::Office365,
        "Office 365 E3",
    ))
    .await
    .unwrap();
    let directory = InMemoryDirectory::new().with_partner(fabrikam().with_location("Seattle, US"));
    let service = PorService::new(repo, directory, RecordingNotifier::new())
        .with_clock(ManualClock::new(datetime!(2026-01-05 09:58 UTC)));
    let check = service
        .check_partner(&Actor::global_admin(contoso), &sub, "565380")
        .await
        .unwrap();
    assert_eq!(serde_json::to_string(&check).unwrap(), CHECK);
    assert_eq!(serde_json::from_str::<PartnerCheck>(CHECK).unwrap(), check);
}

fn fabrikam() -> Partner {
    Partner::new(MpnId::parse("565380").unwrap(), "Fabrikam Consulting")
        .with_contact_email("por@fabrikam.example")
        .enrolled_in(Program::OnlineServicesSell)
}

fn associated() -> (Subscription, Vec<AssociationEvent>) {
    let sub = Subscription::new(
        SubscriptionId::new("sub-001").unwrap(),
        CustomerId::new("contoso").unwrap(),
        CloudService::Office365,
        "Office 365 E3",
    );
    match sub
        .associate(
            &fabrikam(),
            Program::OnlineServicesSell,
            datetime!(2026-01-05 10:00 UTC),
        )
        .unwrap()
    {
        Transition::Changed { next, events } => (next, events),
        Transition::Unchanged => unreachable!(),
    }
}

#[test]
fn subscription_with_partner_of_record_is_pinned() {
    let (sub, _) = associated();
    assert_eq!(serde_json::to_string(&sub).unwrap(), SUBSCRIPTION);
    assert_eq!(
        serde_json::from_str::<Subscription>(SUBSCRIPTION).unwrap(),
        sub
    );
}

#[test]
fn association_event_is_pinned() {
    let event = AssociationEvent {
        subscription: SubscriptionId::new("sub-001").unwrap(),
        customer: CustomerId::new("contoso").unwrap(),
        sequence: 3,
        at: datetime!(2026-02-01 10:30 +01:00),
        kind: AssociationEventKind::PartnerRemoved {
            partner: MpnId::parse("565380").unwrap(),
            reason: RemovalReason::ReplacedBy(MpnId::parse("3664167").unwrap()),
        },
        caused_by: Cause::Customer {
            role: CustomerRole::GlobalAdministrator,
            user: Some(UserRef::new("alice@contoso.example").unwrap()),
        },
    };
    assert_eq!(
        serde_json::to_string(&event).unwrap(),
        EVENT,
        "times are written in UTC"
    );
    assert_eq!(
        serde_json::from_str::<AssociationEvent>(EVENT).unwrap(),
        event
    );
    // Written before events said who caused them: unknown, the rest as it was.
    let old = serde_json::from_str::<AssociationEvent>(EVENT_0_1_0).unwrap();
    assert_eq!(old.caused_by, Cause::Unknown);
    assert_eq!(
        AssociationEvent {
            caused_by: event.caused_by.clone(),
            ..old
        },
        event
    );
}

#[test]
fn causes_are_pinned() {
    let cases = [
        (Cause::BillingSystem, r#"{"type":"billing_system"}"#),
        (Cause::Unknown, r#"{"type":"unknown"}"#),
        (
            Cause::Customer {
                role: CustomerRole::BillingAdministrator,
                user: None,
            },
            r#"{"type":"customer","role":{"type":"billing_administrator"}}"#,
        ),
    ];
    for (cause, json) in cases {
        assert_eq!(serde_json::to_string(&cause).unwrap(), json);
        assert_eq!(serde_json::from_str::<Cause>(json).unwrap(), cause);
    }
    // A user reference is validated like the other ids.
    let bad = r#"{"type":"customer","role":{"type":"global_administrator"},"user":"a b"}"#;
    assert!(serde_json::from_str::<Cause>(bad).is_err());
}

/// An event is a stored record: one written by a later release reads, whatever that
/// release added to who caused it: a field in the cause or in its role, or a role this
/// release does not know (then the cause is unknown, the event as written).
#[test]
fn an_event_a_later_release_wrote_reads_whatever_it_added_to_its_cause() {
    let later = [
        (
            r#"{"type":"customer","role":{"type":"global_administrator","since":"2026-01-01"},"user":"alice@contoso.example","via":"portal"}"#,
            Cause::Customer {
                role: CustomerRole::GlobalAdministrator,
                user: Some(UserRef::new("alice@contoso.example").unwrap()),
            },
        ),
        (
            r#"{"type":"customer","role":{"type":"delegated_administrator","partner":"565380","scope":"all"}}"#,
            Cause::Customer {
                role: CustomerRole::DelegatedAdministrator {
                    partner: MpnId::parse("565380").unwrap(),
                },
                user: None,
            },
        ),
        (
            r#"{"type":"customer","role":{"type":"license_administrator"}}"#,
            Cause::Unknown,
        ),
    ];
    let written = EVENT.split(r#""caused_by":"#).next().unwrap();
    for (cause_json, cause) in later {
        let event: AssociationEvent =
            serde_json::from_str(&format!("{written}\"caused_by\":{cause_json}}}")).unwrap();
        assert_eq!(event.caused_by, cause, "{cause_json}");
        assert_eq!(event.sequence, 3);
    }
    // A request's actor still refuses what it does not know.
    let actor = r#"{"type":"customer","customer":"contoso","role":{"type":"global_administrator","since":"2026-01-01"}}"#;
    assert!(serde_json::from_str::<Actor>(actor).is_err());
}

#[test]
fn notification_is_pinned() {
    let (sub, events) = associated();
    let notification = Notification::for_event(
        &events[0],
        sub.service(),
        fabrikam().contact_email().map(String::from),
    )
    .unwrap();
    assert_eq!(serde_json::to_string(&notification).unwrap(), NOTIFICATION);
    assert_eq!(
        serde_json::from_str::<Notification>(NOTIFICATION).unwrap(),
        notification
    );
}

#[test]
fn associated_event_wire_form() {
    let (_, events) = associated();
    assert_eq!(
        serde_json::to_string(&events[0].kind).unwrap(),
        r#"{"type":"partner_associated","partner":"565380","partner_name":"Fabrikam Consulting","program":"online_services_sell","replaced":null}"#
    );
}

#[test]
fn stored_records_ignore_fields_a_newer_release_added() {
    let with_extra = |json: &str| format!("{},\"extra\":1}}", &json[..json.len() - 1]);
    let read = |json: &str| serde_json::from_str::<Subscription>(json).unwrap();
    assert_eq!(read(&with_extra(SUBSCRIPTION)), read(SUBSCRIPTION));
    let event: AssociationEvent = serde_json::from_str(EVENT).unwrap();
    assert_eq!(
        serde_json::from_str::<AssociationEvent>(&with_extra(EVENT)).unwrap(),
        event
    );
    let notification: Notification = serde_json::from_str(NOTIFICATION).unwrap();
    assert_eq!(
        serde_json::from_str::<Notification>(&with_extra(NOTIFICATION)).unwrap(),
        notification
    );
    let partner: Partner = serde_json::from_str(PARTNER).unwrap();
    assert_eq!(
        serde_json::from_str::<Partner>(&with_extra(PARTNER)).unwrap(),
        partner
    );
    // In nested records and in tagged variants too.
    let nested = SUBSCRIPTION.replace(r#""since""#, r#""extra":1,"since""#);
    assert_eq!(read(&nested), read(SUBSCRIPTION));
    let in_kind = EVENT.replace(r#""reason""#, r#""extra":1,"reason""#);
    assert_eq!(
        serde_json::from_str::<AssociationEvent>(&in_kind).unwrap(),
        event
    );
    for tagged in [
        r#"{"type":"removed_by_customer","extra":1}"#,
        r#"{"type":"replaced_by","partner":"565380","extra":1}"#,
        r#"{"type":"subscription_migrated","x":1}"#,
    ] {
        assert!(
            serde_json::from_str::<RemovalReason>(tagged).is_ok(),
            "{tagged}"
        );
    }
    assert!(
        serde_json::from_str::<AssociationEventKind>(
            r#"{"type":"subscription_cancelled","partner":null,"x":1}"#
        )
        .is_ok()
    );
}

#[test]
fn requests_refuse_unknown_fields_and_arrays() {
    let with_extra = |json: &str| format!("{},\"extra\":1}}", &json[..json.len() - 1]);
    assert!(serde_json::from_str::<PartnerCheck>(CHECK).is_ok());
    assert!(serde_json::from_str::<PartnerCheck>(&with_extra(CHECK)).is_err());
    for actor in [
        r#"{"type":"customer","customer":"contoso","role":{"type":"global_administrator"},"x":1}"#,
        r#"{"type":"customer","customer":"contoso","role":{"type":"global_administrator","x":1}}"#,
        r#"{"type":"partner","mpn_id":"565380","x":1}"#,
        r#"{"type":"billing_system","x":1}"#,
        r#"["customer","contoso",{"type":"global_administrator"}]"#,
        r#"{"type":"customer","customer":"contoso","role":["global_administrator"]}"#,
        r#"["billing_system"]"#,
    ] {
        assert!(serde_json::from_str::<Actor>(actor).is_err(), "{actor}");
    }
    assert_eq!(
        serde_json::from_str::<Actor>(r#"{"type":"billing_system"}"#).unwrap(),
        Actor::billing_system()
    );
    assert!(
        serde_json::from_str::<CustomerRole>(r#"{"type":"global_administrator","extra":1}"#)
            .is_err()
    );
    let link = r#"{"subscription":"sub-001","mpn_id":"565380"}"#;
    assert!(serde_json::from_str::<PartnerLink>(link).is_ok());
    assert!(serde_json::from_str::<PartnerLink>(&with_extra(link)).is_err());
    assert!(serde_json::from_str::<PartnerLink>(r#"["sub-001","565380"]"#).is_err());
    // A check written as an array of its fields, in their order (what serde's derive
    // would accept), and with its nested partner as an array.
    let check: serde_json::Value = serde_json::from_str(CHECK).unwrap();
    let fields = [
        "subscription",
        "partner",
        "program",
        "current",
        "version",
        "checked_at",
    ];
    let as_array = serde_json::Value::Array(fields.iter().map(|f| check[f].clone()).collect());
    assert!(serde_json::from_str::<PartnerCheck>(&as_array.to_string()).is_err());
    let partner = &check["partner"];
    let partner_fields = ["mpn_id", "name", "location", "contact_email", "programs"];
    let mut nested = check.clone();
    nested["partner"] =
        serde_json::Value::Array(partner_fields.iter().map(|f| partner[f].clone()).collect());
    assert!(serde_json::from_str::<PartnerCheck>(&nested.to_string()).is_err());
    // The same partner as an object reads.
    assert!(serde_json::from_str::<PartnerCheck>(&check.to_string()).is_ok());
}

#[test]
fn lifecycle_events_and_periods_wire_form() {
    let migrated = AssociationEventKind::SubscriptionMigrated {
        to: SubscriptionId::new("mca-1").unwrap(),
    };
    assert_eq!(
        serde_json::to_string(&migrated).unwrap(),
        r#"{"type":"subscription_migrated","to":"mca-1"}"#
    );
    assert_eq!(
        serde_json::to_string(&RemovalReason::SubscriptionMigrated).unwrap(),
        r#"{"type":"subscription_migrated"}"#
    );
    let period = PorPeriod {
        partner: MpnId::parse("565380").unwrap(),
        program: Program::OnlineServicesSell,
        from: datetime!(2026-01-05 10:00 UTC),
        to: None,
    };
    let json = r#"{"partner":"565380","program":"online_services_sell","from":"2026-01-05T10:00:00Z","to":null}"#;
    assert_eq!(serde_json::to_string(&period).unwrap(), json);
    assert_eq!(serde_json::from_str::<PorPeriod>(json).unwrap(), period);
}

#[test]
fn counts_beyond_a_bigint_are_refused() {
    let at_max = SUBSCRIPTION.replace(r#""version":1"#, &format!(r#""version":{}"#, i64::MAX));
    assert!(serde_json::from_str::<Subscription>(&at_max).is_ok());
    let beyond = SUBSCRIPTION.replace(
        r#""version":1"#,
        &format!(r#""version":{}"#, i64::MAX as u64 + 1),
    );
    assert!(serde_json::from_str::<Subscription>(&beyond).is_err());
    let sequence = SUBSCRIPTION.replace(
        r#""last_event_sequence":1"#,
        &format!(r#""last_event_sequence":{}"#, u64::MAX),
    );
    assert!(serde_json::from_str::<Subscription>(&sequence).is_err());
}

#[test]
fn transitions_and_verdicts_wire_form() {
    assert_eq!(
        serde_json::to_string(&Transition::Unchanged).unwrap(),
        r#"{"type":"unchanged"}"#
    );
    // What the crate writes may come from a newer release: extra fields are ignored.
    assert_eq!(
        serde_json::from_str::<Transition>(r#"{"type":"unchanged","x":1}"#).unwrap(),
        Transition::Unchanged
    );
    let (next, events) = associated();
    let changed = Transition::Changed { next, events };
    let json = serde_json::to_string(&changed).unwrap();
    assert!(json.starts_with(r#"{"type":"changed","next":{"#), "{json}");
    assert_eq!(serde_json::from_str::<Transition>(&json).unwrap(), changed);

    let reason = Disqualification::TenureTooShort {
        tenure: time::Duration::days(1),
        required: time::Duration::days(30),
    };
    let json = serde_json::to_string(&reason).unwrap();
    assert_eq!(
        json,
        r#"{"type":"tenure_too_short","tenure":86400,"required":2592000}"#
    );
    assert_eq!(
        serde_json::from_str::<Disqualification>(&json).unwrap(),
        reason
    );
    assert_eq!(
        serde_json::to_string(&Disqualification::ServiceNotCounted(CloudService::Azure)).unwrap(),
        r#"{"type":"service_not_counted","service":{"type":"azure"}}"#
    );
    assert_eq!(
        serde_json::from_str::<Disqualification>(r#"{"type":"no_partner_of_record","x":1}"#)
            .unwrap(),
        Disqualification::NoPartnerOfRecord
    );

    // A host's configuration is checked strictly: a misspelt field is an error.
    let policy = IncentivePolicy::sell();
    let json = serde_json::to_string(&policy).unwrap();
    assert!(json.contains(r#""minimum_tenure":2592000"#), "{json}");
    assert_eq!(
        serde_json::from_str::<IncentivePolicy>(&json).unwrap(),
        policy
    );
    let misspelt = json.replace("minimum_subscriptions", "minimum_subscription");
    assert!(serde_json::from_str::<IncentivePolicy>(&misspelt).is_err());
    assert_eq!(
        serde_json::to_string(&BulkMode::DryRun).unwrap(),
        r#""dry_run""#
    );
    assert_eq!(serde_json::to_string(&Access::View).unwrap(), r#""view""#);
}
