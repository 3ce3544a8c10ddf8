//! The customer's portal flow of KB3185444, step by step, on the in-memory defaults:
//! list the subscriptions, "Add partner of record", type the Partner ID, "Check ID",
//! "Submit", verify with "Edit partner of record", the partner's email; then replace
//! and remove the partner, and show the history.
//!
//! Run with `cargo run --example portal_walkthrough`.

use dpor::*;
use time::{Duration, macros::datetime};

type Service = PorService<InMemoryRepository, InMemoryDirectory, RecordingNotifier, ManualClock>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (service, notifier, clock) = seeded().await?;
    let contoso = CustomerId::new("contoso")?;
    let admin = Actor::global_admin(contoso);
    let sub = SubscriptionId::new("sub-001")?;

    step(
        "Steps 1-3",
        "Sign in as the global administrator, Billing > Subscriptions",
    );
    list(&service, &admin).await?;

    step("Step 4", "Open \"Office 365 E3\", More Actions");
    let subscription = service.subscription(&admin, &sub).await?;
    for action in subscription.actions_for(&admin) {
        println!("    [ {} ]", action_label(action));
    }

    step(
        "Step 5",
        "Type the partner's Microsoft Partner ID: \"565380\"",
    );
    step("Step 6", "Check ID");
    let check = service.check_partner(&admin, &sub, "565380").await?;
    show_check(&check);

    step("Step 7", "Select the partner and Submit");
    clock.advance(Duration::minutes(1));
    let receipt = service.submit(&admin, &check).await?;
    println!(
        "    Your partner of record has been updated. (version {}, {} email sent)",
        receipt.subscription.version(),
        receipt.notifications_delivered
    );

    step("Step 8", "Verify: More Actions > Edit partner of record");
    show_por(&service, &admin, &sub).await?;

    step("Step 9", "The partner receives a confirmation email");
    show_emails(&notifier, 0);

    step(
        "Change",
        "Edit partner of record: replace Fabrikam by Northwind (3664167)",
    );
    clock.advance(Duration::days(30));
    let check = service.check_partner(&admin, &sub, "3664167").await?;
    show_check(&check);
    service.submit(&admin, &check).await?;
    show_por(&service, &admin, &sub).await?;
    show_emails(&notifier, 1);

    step(
        "Remove",
        "Delete the MPN ID: the subscription has no partner of record",
    );
    clock.advance(Duration::days(30));
    service.remove_partner(&admin, &sub).await?;
    show_por(&service, &admin, &sub).await?;
    show_emails(&notifier, 3);

    step(
        "History",
        "Every change, with who was partner of record when",
    );
    for event in service.history(&admin, &sub).await? {
        println!(
            "    #{} {}  {}",
            event.sequence,
            event.at.date(),
            describe(&event.kind)
        );
    }

    step("Done", "The subscription list now");
    list(&service, &admin).await?;
    Ok(())
}

async fn seeded() -> Result<(Service, RecordingNotifier, ManualClock), Box<dyn std::error::Error>> {
    let repository = InMemoryRepository::new();
    let contoso = CustomerId::new("contoso")?;
    for (id, service, name) in [
        ("sub-001", CloudService::Office365, "Office 365 E3"),
        ("sub-002", CloudService::Dynamics365, "Dynamics 365 Sales"),
        ("sub-003", CloudService::Azure, "Azure plan"),
    ] {
        repository
            .insert(Subscription::new(
                SubscriptionId::new(id)?,
                contoso.clone(),
                service,
                name,
            ))
            .await?;
    }
    let directory = InMemoryDirectory::new()
        .with_partner(
            Partner::new(MpnId::parse("565380")?, "Fabrikam Consulting")
                .with_location("Seattle, WA, United States")
                .with_contact_email("por@fabrikam.example")
                .enrolled_in(Program::OnlineServicesSell),
        )
        .with_partner(
            Partner::new(MpnId::parse("3664167")?, "Northwind Traders")
                .with_location("London, United Kingdom")
                .with_contact_email("partners@northwind.example")
                .enrolled_in(Program::OnlineServicesSell),
        );
    let notifier = RecordingNotifier::new();
    let clock = ManualClock::new(datetime!(2026-01-05 10:00 UTC));
    let service =
        PorService::new(repository, directory, notifier.clone()).with_clock(clock.clone());
    Ok((service, notifier, clock))
}

fn step(label: &str, text: &str) {
    println!("\n{label}: {text}");
}

async fn list(service: &Service, admin: &Actor) -> Result<(), Error> {
    println!(
        "    {:<10} {:<22} {:<10} Partner of record",
        "ID", "Subscription", "Status"
    );
    for s in service.subscriptions(admin).await? {
        let por = s.partner_of_record().map_or_else(
            || "-".to_owned(),
            |p| format!("{} ({})", p.partner_name(), p.mpn_id()),
        );
        println!(
            "    {:<10} {:<22} {:<10} {por}",
            s.id(),
            s.name(),
            s.status().to_string()
        );
    }
    Ok(())
}

fn show_check(check: &PartnerCheck) {
    let partner = check.partner();
    println!("    Partner information");
    println!("      Microsoft Partner ID: {}", partner.mpn_id());
    println!("      Name:                 {}", partner.name());
    println!(
        "      Location:             {}",
        partner.location().unwrap_or("-")
    );
    if let Some(current) = check.current() {
        println!(
            "      Replaces:             {} ({})",
            current.partner_name(),
            current.mpn_id()
        );
    }
}

async fn show_por(service: &Service, admin: &Actor, sub: &SubscriptionId) -> Result<(), Error> {
    match service.partner_of_record(admin, sub).await? {
        Some(por) => println!(
            "    Microsoft Partner ID: {}  ({}, {} program, since {})",
            por.mpn_id(),
            por.partner_name(),
            por.program(),
            por.since().date()
        ),
        None => println!("    Microsoft Partner ID: (none)"),
    }
    Ok(())
}

fn show_emails(notifier: &RecordingNotifier, from: usize) {
    for n in notifier.sent().into_iter().skip(from) {
        let what = match n.kind {
            NotificationKind::Added => "you are now the partner of record",
            _ => "you are no longer the partner of record",
        };
        println!(
            "    email to {}: {what} for {} subscription {} of {}",
            n.contact_email.as_deref().unwrap_or("(no contact)"),
            n.service,
            n.subscription,
            n.customer
        );
    }
}

fn action_label(action: Action) -> &'static str {
    match action {
        Action::AddPartnerOfRecord => "Add partner of record",
        Action::EditPartnerOfRecord => "Edit partner of record",
        Action::RemovePartnerOfRecord => "Remove partner of record",
    }
}

fn describe(kind: &AssociationEventKind) -> String {
    match kind {
        AssociationEventKind::PartnerAssociated {
            partner,
            partner_name,
            ..
        } => {
            format!("{partner_name} ({partner}) became partner of record")
        }
        AssociationEventKind::PartnerRemoved { partner, reason } => match reason {
            RemovalReason::ReplacedBy(next) => format!("{partner} was replaced by {next}"),
            _ => format!("{partner} was removed by the customer"),
        },
        other => format!("{other:?}"),
    }
}
