//! The partner side: a partner's portfolio (where it is partner of record now), the
//! attribution periods of each subscription (who was partner of record when, paused
//! while suspended, ended by cancellation or migration), and its incentive eligibility.
//!
//! Run with `cargo run --example partner_report`.

use dpor::attribution::periods;
use dpor::*;
use time::{Duration, macros::datetime};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let repository = InMemoryRepository::new();
    let contoso = CustomerId::new("contoso")?;
    for (id, service, name) in [
        ("sub-001", CloudService::Office365, "Office 365 E3"),
        ("sub-002", CloudService::Dynamics365, "Dynamics 365 Sales"),
        ("sub-003", CloudService::Azure, "Azure plan"),
        ("sub-004", CloudService::Office365, "Office 365 E5"),
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
    let fabrikam = MpnId::parse("565380")?;
    let directory = InMemoryDirectory::new()
        .with_partner(
            Partner::new(fabrikam, "Fabrikam Consulting").enrolled_in(Program::OnlineServicesSell),
        )
        .with_partner(
            Partner::new(MpnId::parse("3664167")?, "Northwind Traders")
                .enrolled_in(Program::OnlineServicesSell),
        );
    let clock = ManualClock::new(datetime!(2026-01-05 10:00 UTC));
    let service =
        PorService::new(repository, directory, RecordingNotifier::new()).with_clock(clock.clone());
    let admin = Actor::global_admin(contoso);
    let billing = Actor::billing_system();

    // Three months of a customer's decisions and its billing system's events.
    let ids = ["sub-001", "sub-002", "sub-003", "sub-004"].map(SubscriptionId::new);
    let ids = ids.into_iter().collect::<Result<Vec<_>, _>>()?;
    service
        .submit_many(&admin, "565380", &ids, BulkMode::Apply)
        .await?;
    clock.advance(Duration::days(20));
    service.suspend(&billing, &ids[1]).await?;
    clock.advance(Duration::days(10));
    service.reactivate(&billing, &ids[1]).await?;
    clock.advance(Duration::days(15));
    let check = service.check_partner(&admin, &ids[3], "3664167").await?;
    service.submit(&admin, &check).await?;
    clock.advance(Duration::days(30));
    service
        .migrate(&billing, &ids[0], SubscriptionId::new("sub-001-mca")?)
        .await?;
    clock.advance(Duration::days(15));
    let now = clock.now();

    let me = Actor::partner(fabrikam);
    println!(
        "Partner {fabrikam} (Fabrikam Consulting), report of {}\n",
        now.date()
    );
    println!("Portfolio: where it is partner of record now");
    let mut portfolio = Vec::new();
    for sub in service.partner_portfolio(&me).await? {
        println!(
            "  {:<8} {:<20} {:<10} since {}",
            sub.id(),
            sub.name(),
            sub.status().to_string(),
            sub.partner_of_record()
                .map(|p| p.since().date().to_string())
                .unwrap_or_default()
        );
        let history = service.history(&me, sub.id()).await?;
        portfolio.push((sub, history));
    }

    println!("\nAttribution periods (paused while suspended)");
    for (sub, history) in &portfolio {
        for period in periods(history) {
            let to = period
                .to
                .map_or_else(|| "now".to_owned(), |t| t.date().to_string());
            println!(
                "  {:<8} {} .. {:<10} {} days",
                sub.id(),
                period.from.date(),
                to,
                period.length_until(now).whole_days()
            );
        }
    }

    println!("\nWho was partner of record on 2026-03-01, across the customer's subscriptions");
    for id in &ids {
        let who = service
            .partner_of_record_at(&admin, id, datetime!(2026-03-01 00:00 UTC))
            .await?;
        println!(
            "  {id:<8} {}",
            who.map_or_else(|| "-".to_owned(), |m| m.to_string())
        );
    }

    let policy = IncentivePolicy::sell()
        .with_minimum_subscriptions(2)
        .with_minimum_tenure(Duration::days(60));
    let verdict = policy.evaluate(&portfolio, now);
    println!(
        "\nIncentive eligibility: {} subscriptions of Office 365 or Dynamics, 60 days each",
        policy.minimum_subscriptions
    );
    println!(
        "  eligible: {} ({} qualifying, {} missing)",
        verdict.eligible,
        verdict.qualifying.len(),
        verdict.missing
    );
    for id in &verdict.qualifying {
        println!("  + {id}");
    }
    for (id, reason) in &verdict.disqualified {
        let why = match reason {
            Disqualification::ServiceNotCounted(service) => format!("{service} does not count"),
            Disqualification::TenureTooShort { tenure, required } => {
                format!(
                    "{} of {} days so far",
                    tenure.whole_days(),
                    required.whole_days()
                )
            }
            other => format!("{other:?}"),
        };
        println!("  - {id}: {why}");
    }
    Ok(())
}
