//! The typical mistakes a customer makes in the "Microsoft Partner ID" field, and the
//! message a portal would show next to it for each.
//!
//! Run with `cargo run --example bad_input`.

use dpor::*;
use time::macros::datetime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let contoso = CustomerId::new("contoso")?;
    let repository = InMemoryRepository::new();
    let sub = SubscriptionId::new("sub-001")?;
    repository
        .insert(Subscription::new(
            sub.clone(),
            contoso.clone(),
            CloudService::Office365,
            "Office 365 E3",
        ))
        .await?;
    let cancelled = SubscriptionId::new("sub-old")?;
    repository
        .insert(
            Subscription::new(
                cancelled.clone(),
                contoso.clone(),
                CloudService::Intune,
                "Intune (old)",
            )
            .with_status(SubscriptionStatus::Cancelled),
        )
        .await?;
    let directory = InMemoryDirectory::new()
        .with_partner(
            Partner::new(MpnId::parse("565380")?, "Fabrikam Consulting")
                .enrolled_in(Program::OnlineServicesSell),
        )
        .with_partner(
            Partner::new(MpnId::parse("5139005")?, "Usage Only Ltd")
                .enrolled_in(Program::OnlineServicesUsage),
        );
    let service = PorService::new(repository, directory, RecordingNotifier::new())
        .with_clock(ManualClock::new(datetime!(2026-01-05 10:00 UTC)));
    let admin = Actor::global_admin(contoso.clone());

    println!("Check ID on \"Office 365 E3\" as the global administrator:\n");
    for (what, input) in [
        ("blank", "   "),
        ("letters", "MSFT-565380"),
        ("a letter O for a zero", "56538O"),
        ("too short", "5653"),
        ("too long", "56538012345"),
        ("unknown partner", "99999"),
        ("not enrolled in the Sell program", "5139005"),
        ("valid", " 565380 "),
    ] {
        let shown = match service.check_partner(&admin, &sub, input).await {
            Ok(check) => format!(
                "ok: {} ({})",
                check.partner().name(),
                check.partner().mpn_id()
            ),
            Err(error) => error.to_string(),
        };
        println!("  {what:<34} {input:<14} -> {shown}");
    }

    println!("\nOther refusals:\n");
    let billing = Actor::customer(contoso, CustomerRole::BillingAdministrator);
    let refusals = [
        (
            "billing administrator checks",
            service.check_partner(&billing, &sub, "565380").await.err(),
        ),
        (
            "cancelled subscription",
            service
                .check_partner(&admin, &cancelled, "565380")
                .await
                .err(),
        ),
        (
            "another customer's subscription",
            service
                .check_partner(
                    &Actor::global_admin(CustomerId::new("litware")?),
                    &sub,
                    "565380",
                )
                .await
                .err(),
        ),
        (
            "partner designates itself",
            service
                .check_partner(&Actor::partner(MpnId::parse("565380")?), &sub, "565380")
                .await
                .err(),
        ),
        (
            "remove when none is set",
            service.remove_partner(&admin, &sub).await.err(),
        ),
    ];
    for (what, error) in refusals {
        let shown = error.map_or_else(|| "ok".to_owned(), |e| e.to_string());
        println!("  {what:<34} -> {shown}");
    }
    Ok(())
}
