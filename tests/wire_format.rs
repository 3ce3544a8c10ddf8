//! The JSON wire format (DESIGN.md section 5), pinned byte for byte.

use dpor::*;
use time::macros::datetime;

const SUBSCRIPTION: &str = r#"{"id":"sub-001","customer":"contoso","service":{"type":"office365"},"name":"Office 365 E3","status":"active","version":1,"last_event_sequence":1,"partner_of_record":{"mpn_id":"565380","partner_name":"Fabrikam Consulting","program":"online_services_sell","since":"2026-01-05T10:00:00Z"}}"#;
const EVENT: &str = r#"{"subscription":"sub-001","customer":"contoso","sequence":3,"at":"2026-02-01T09:30:00Z","kind":{"type":"partner_removed","partner":"565380","reason":{"type":"replaced_by","partner":"3664167"}}}"#;
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
fn unknown_fields_are_rejected_in_every_record() {
    let with_extra = |json: &str| format!("{},\"extra\":1}}", &json[..json.len() - 1]);
    assert!(serde_json::from_str::<Subscription>(&with_extra(SUBSCRIPTION)).is_err());
    assert!(serde_json::from_str::<AssociationEvent>(&with_extra(EVENT)).is_err());
    assert!(serde_json::from_str::<Notification>(&with_extra(NOTIFICATION)).is_err());
    let nested = SUBSCRIPTION.replace(r#""since""#, r#""extra":1,"since""#);
    assert!(serde_json::from_str::<Subscription>(&nested).is_err());
    let in_kind = EVENT.replace(r#""reason""#, r#""extra":1,"reason""#);
    assert!(serde_json::from_str::<AssociationEvent>(&in_kind).is_err());
    for tagged in [
        r#"{"type":"removed_by_customer","extra":1}"#,
        r#"{"type":"replaced_by","partner":"565380","extra":1}"#,
    ] {
        assert!(
            serde_json::from_str::<RemovalReason>(tagged).is_err(),
            "{tagged}"
        );
    }
    assert!(
        serde_json::from_str::<CustomerRole>(r#"{"type":"global_administrator","extra":1}"#)
            .is_err()
    );
    assert!(
        serde_json::from_str::<Actor>(r#"{"type":"partner","mpn_id":"565380","extra":1}"#).is_err()
    );
}

#[test]
fn an_invalid_id_fails_the_whole_record() {
    let bad_mpn = SUBSCRIPTION.replace(r#""mpn_id":"565380""#, r#""mpn_id":"56538a""#);
    assert!(serde_json::from_str::<Subscription>(&bad_mpn).is_err());
    let numeric = SUBSCRIPTION.replace(r#""mpn_id":"565380""#, r#""mpn_id":565380"#);
    assert!(serde_json::from_str::<Subscription>(&numeric).is_err());
    let bad_sub = EVENT.replace(r#""sub-001""#, r#""sub 001""#);
    assert!(serde_json::from_str::<AssociationEvent>(&bad_sub).is_err());
}

#[test]
fn field_less_enums_are_snake_case_strings() {
    assert_eq!(
        serde_json::to_string(&Program::OnlineServicesUsage).unwrap(),
        r#""online_services_usage""#
    );
    assert_eq!(
        serde_json::to_string(&SubscriptionStatus::Cancelled).unwrap(),
        r#""cancelled""#
    );
    assert_eq!(
        serde_json::to_string(&Action::EditPartnerOfRecord).unwrap(),
        r#""edit_partner_of_record""#
    );
    assert_eq!(
        serde_json::to_string(&NotificationKind::Removed).unwrap(),
        r#""removed""#
    );
}

#[test]
fn tagged_enums_round_trip() {
    let role = CustomerRole::DelegatedAdministrator {
        partner: MpnId::parse("565380").unwrap(),
    };
    let json = serde_json::to_string(&role).unwrap();
    assert_eq!(
        json,
        r#"{"type":"delegated_administrator","partner":"565380"}"#
    );
    assert_eq!(serde_json::from_str::<CustomerRole>(&json).unwrap(), role);
    let actor = Actor::global_admin(CustomerId::new("contoso").unwrap());
    let json = serde_json::to_string(&actor).unwrap();
    assert_eq!(
        json,
        r#"{"type":"customer","customer":"contoso","role":{"type":"global_administrator"}}"#
    );
    assert_eq!(serde_json::from_str::<Actor>(&json).unwrap(), actor);
}

#[test]
fn lifecycle_events_and_periods_wire_form() {
    let suspended = AssociationEventKind::SubscriptionSuspended {
        partner: Some(MpnId::parse("565380").unwrap()),
    };
    assert_eq!(
        serde_json::to_string(&suspended).unwrap(),
        r#"{"type":"subscription_suspended","partner":"565380"}"#
    );
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
    assert!(
        serde_json::from_str::<RemovalReason>(r#"{"type":"subscription_migrated","x":1}"#).is_err()
    );
    assert!(
        serde_json::from_str::<AssociationEventKind>(
            r#"{"type":"subscription_cancelled","partner":null,"x":1}"#
        )
        .is_err()
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
    assert!(serde_json::from_str::<Transition>(r#"{"type":"unchanged","x":1}"#).is_err());
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
    assert!(
        serde_json::from_str::<Disqualification>(r#"{"type":"no_partner_of_record","x":1}"#)
            .is_err()
    );

    let policy = IncentivePolicy::sell();
    let json = serde_json::to_string(&policy).unwrap();
    assert!(json.contains(r#""minimum_tenure":2592000"#), "{json}");
    assert_eq!(
        serde_json::from_str::<IncentivePolicy>(&json).unwrap(),
        policy
    );
    assert_eq!(
        serde_json::to_string(&BulkMode::DryRun).unwrap(),
        r#""dry_run""#
    );
    assert_eq!(serde_json::to_string(&Access::View).unwrap(), r#""view""#);
}
