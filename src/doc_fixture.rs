//! The world the documentation's examples share, so that each example shows only its
//! own point. Hidden from the docs; not part of the API, and may change at any time.

use time::{Date, Month};

use crate::actor::Actor;
use crate::id::{CustomerId, MpnId, SubscriptionId};
use crate::memory::{InMemoryDirectory, InMemoryRepository, ManualClock, RecordingNotifier};
use crate::partner::{Partner, Program};
use crate::ports::Repository;
use crate::service::PorService;
use crate::subscription::{CloudService, Subscription};

/// The service of [`fabrikam`], over the in-memory ports.
pub type DemoService =
    PorService<InMemoryRepository, InMemoryDirectory, RecordingNotifier, ManualClock>;

/// What the examples use.
#[derive(Debug)]
pub struct Fixture {
    /// The service, its clock at 2026-01-05 10:00 UTC.
    pub service: DemoService,
    /// The service's notifier.
    pub notifier: RecordingNotifier,
    /// The global administrator of `contoso`, which owns `sub`.
    pub admin: Actor,
    /// Subscription `sub-1`, Office 365, active, with no partner of record.
    pub sub: SubscriptionId,
    /// The service's clock.
    pub clock: ManualClock,
}

/// A service whose directory lists partner 565380 ("Fabrikam", Seattle, US, enrolled in
/// the Sell program), with one subscription of contoso's.
///
/// # Errors
///
/// None in practice: the ids are valid and the store is empty.
pub async fn fabrikam() -> Result<Fixture, Box<dyn std::error::Error>> {
    let (contoso, sub) = (CustomerId::new("contoso")?, SubscriptionId::new("sub-1")?);
    let repository = InMemoryRepository::new();
    let subscription =
        Subscription::new(sub.clone(), contoso.clone(), CloudService::Office365, "E3");
    repository.insert(subscription).await?;
    let directory = InMemoryDirectory::new().with_partner(
        Partner::new(MpnId::parse("565380")?, "Fabrikam")
            .with_location("Seattle, US")
            .enrolled_in(Program::OnlineServicesSell),
    );
    let notifier = RecordingNotifier::new();
    let now = Date::from_calendar_date(2026, Month::January, 5)?
        .with_hms(10, 0, 0)?
        .assume_utc();
    let clock = ManualClock::new(now);
    let service =
        PorService::new(repository, directory, notifier.clone()).with_clock(clock.clone());
    Ok(Fixture {
        service,
        notifier,
        admin: Actor::global_admin(contoso),
        sub,
        clock,
    })
}
