//! The demo data: two customers, their subscriptions, three partners.
//!
//! [`seed`] works over any repository (it skips subscriptions that already exist), so a
//! persistent store can be seeded on every start.

use dpor::{
    Actor, Clock, CloudService, CustomerId, InMemoryDirectory, InMemoryRepository, MpnId, Notifier,
    Partner, PartnerDirectory, PorService, Program, RecordingNotifier, Store, StoreError,
    Subscription, SubscriptionId, SubscriptionStatus,
};

/// Errors while seeding (bad literals cannot happen, a failing store can).
pub type SeedError = Box<dyn std::error::Error + Send + Sync>;

/// The demo customer that the sign-in page offers first.
pub const DEMO_CUSTOMER: &str = "contoso";

/// The customers the sign-in page offers.
pub fn customers() -> Result<Vec<CustomerId>, SeedError> {
    Ok(vec![
        CustomerId::new(DEMO_CUSTOMER)?,
        CustomerId::new("fourthcoffee")?,
    ])
}

/// The partner directory: two partners enrolled in Online Services Sell, one only in
/// Online Services Usage (so "Check ID" refuses it on a Sell portal).
pub fn directory() -> Result<InMemoryDirectory, SeedError> {
    Ok(InMemoryDirectory::new()
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
        )
        .with_partner(
            Partner::new(MpnId::parse("4412040")?, "Adventure Works Cloud")
                .with_location("Sydney, Australia")
                .with_contact_email("alliances@adventure-works.example")
                .enrolled_in(Program::OnlineServicesUsage),
        ))
}

/// Inserts the demo subscriptions and makes Northwind the partner of record of
/// `sub-002` (through the service, so it has a history and an email).
pub async fn seed<R, D, N, C>(service: &PorService<R, D, N, C>) -> Result<(), SeedError>
where
    R: Store,
    D: PartnerDirectory,
    N: Notifier,
    C: Clock,
{
    let contoso = CustomerId::new(DEMO_CUSTOMER)?;
    let fourthcoffee = CustomerId::new("fourthcoffee")?;
    let subscriptions = [
        (
            &contoso,
            "sub-001",
            CloudService::Office365,
            "Office 365 E3",
            SubscriptionStatus::Active,
        ),
        (
            &contoso,
            "sub-002",
            CloudService::Dynamics365,
            "Dynamics 365 Sales",
            SubscriptionStatus::Active,
        ),
        (
            &contoso,
            "sub-003",
            CloudService::Azure,
            "Azure plan",
            SubscriptionStatus::Active,
        ),
        (
            &contoso,
            "sub-004",
            CloudService::Intune,
            "Intune (retired)",
            SubscriptionStatus::Cancelled,
        ),
        (
            &fourthcoffee,
            "fc-001",
            CloudService::Office365,
            "Office 365 Business Premium",
            SubscriptionStatus::Active,
        ),
        (
            &fourthcoffee,
            "fc-002",
            CloudService::Azure,
            "Azure plan",
            SubscriptionStatus::Active,
        ),
    ];
    for (customer, id, cloud, name, status) in subscriptions {
        let subscription =
            Subscription::new(SubscriptionId::new(id)?, customer.clone(), cloud, name)
                .with_status(status);
        match service.repository().insert(subscription).await {
            Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    let admin = Actor::global_admin(contoso);
    let sub = SubscriptionId::new("sub-002")?;
    // Only on a fresh store: a later start must not undo what the demo user changed.
    if service.history(&admin, &sub).await?.is_empty() {
        let check = service.check_partner(&admin, &sub, "3664167").await?;
        service.submit(&admin, &check).await?;
    }
    Ok(())
}

/// The in-memory demo: a seeded service and the recorder it delivers to.
pub async fn demo_service() -> Result<
    (
        PorService<InMemoryRepository, InMemoryDirectory, RecordingNotifier>,
        RecordingNotifier,
    ),
    SeedError,
> {
    let outbox = RecordingNotifier::new();
    let service = PorService::new(InMemoryRepository::new(), directory()?, outbox.clone());
    seed(&service).await?;
    Ok((service, outbox))
}
