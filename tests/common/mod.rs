//! A seeded world for the service tests: one customer with three subscriptions, a
//! second customer, and partners with and without enrolment. Everything in memory,
//! time from a `ManualClock`.
#![allow(dead_code)]

use dpor::*;
use time::{OffsetDateTime, macros::datetime};

pub const T0: OffsetDateTime = datetime!(2026-01-05 10:00 UTC);

pub type Service =
    PorService<InMemoryRepository, InMemoryDirectory, RecordingNotifier, ManualClock>;

pub struct World {
    pub service: Service,
    pub repo: InMemoryRepository,
    pub directory: InMemoryDirectory,
    pub notifier: RecordingNotifier,
    pub clock: ManualClock,
}

pub fn mpn(s: &str) -> MpnId {
    MpnId::parse(s).unwrap()
}

pub fn sub_id(s: &str) -> SubscriptionId {
    SubscriptionId::new(s).unwrap()
}

pub fn contoso() -> CustomerId {
    CustomerId::new("contoso").unwrap()
}

pub fn admin() -> Actor {
    Actor::global_admin(contoso())
}

/// Enrolled in Sell, with a contact email.
pub fn fabrikam() -> Partner {
    Partner::new(mpn("565380"), "Fabrikam Consulting")
        .with_location("Seattle, US")
        .with_contact_email("por@fabrikam.example")
        .enrolled_in(Program::OnlineServicesSell)
}

/// Enrolled in Sell, with a contact email.
pub fn northwind() -> Partner {
    Partner::new(mpn("3664167"), "Northwind Traders")
        .with_contact_email("partners@northwind.example")
        .enrolled_in(Program::OnlineServicesSell)
}

/// Listed, but enrolled in the Usage program only.
pub fn usage_only() -> Partner {
    Partner::new(mpn("5139005"), "Usage Only Ltd").enrolled_in(Program::OnlineServicesUsage)
}

pub async fn world() -> World {
    let repo = InMemoryRepository::new();
    let directory = InMemoryDirectory::new()
        .with_partner(fabrikam())
        .with_partner(northwind())
        .with_partner(usage_only());
    let notifier = RecordingNotifier::new();
    let clock = ManualClock::new(T0);
    for (id, service, name) in [
        ("sub-001", CloudService::Office365, "Office 365 E3"),
        ("sub-002", CloudService::Dynamics365, "Dynamics 365 Sales"),
        ("sub-003", CloudService::Azure, "Azure plan"),
    ] {
        repo.insert(Subscription::new(sub_id(id), contoso(), service, name))
            .await
            .unwrap();
    }
    repo.insert(
        Subscription::new(
            sub_id("sub-cancelled"),
            contoso(),
            CloudService::Intune,
            "Intune",
        )
        .with_status(SubscriptionStatus::Cancelled),
    )
    .await
    .unwrap();
    repo.insert(Subscription::new(
        sub_id("other-001"),
        CustomerId::new("litware").unwrap(),
        CloudService::Office365,
        "Litware E5",
    ))
    .await
    .unwrap();
    let service = PorService::new(repo.clone(), directory.clone(), notifier.clone())
        .with_clock(clock.clone());
    World {
        service,
        repo,
        directory,
        notifier,
        clock,
    }
}

impl World {
    /// Checks and submits `partner` on `sub` as the global admin.
    pub async fn designate(&self, sub: &str, partner: &Partner) -> Receipt {
        let check = self
            .service
            .check_partner(&admin(), &sub_id(sub), partner.mpn_id().as_str())
            .await
            .unwrap();
        self.service.submit(&admin(), &check).await.unwrap()
    }

    /// Everything a test can observe, for "nothing changed" assertions.
    pub async fn snapshot(
        &self,
    ) -> (
        Vec<Subscription>,
        Vec<Vec<AssociationEvent>>,
        Vec<Notification>,
        usize,
    ) {
        let mut subs = self.repo.list_by_customer(&contoso()).await.unwrap();
        subs.extend(
            self.repo
                .list_by_customer(&CustomerId::new("litware").unwrap())
                .await
                .unwrap(),
        );
        let mut histories = Vec::new();
        for s in &subs {
            histories.push(self.repo.history(s.id()).await.unwrap());
        }
        let pending = self.repo.pending_notifications(usize::MAX).await.unwrap();
        (subs, histories, pending, self.notifier.sent().len())
    }
}

/// Replays a history, checking that it never shows two partners at once, and returns
/// the partner of record (id and program) it ends with.
pub fn replay(history: &[AssociationEvent]) -> Result<Option<(MpnId, Program)>, String> {
    let mut current = None;
    for event in history {
        match &event.kind {
            AssociationEventKind::PartnerAssociated {
                partner,
                program,
                replaced,
                ..
            } => {
                if current.is_some() {
                    return Err(format!(
                        "event {} associates a second partner",
                        event.sequence
                    ));
                }
                if let Some(replaced) = replaced {
                    let previous = history.iter().rev().find(|e| e.sequence < event.sequence);
                    let ok = matches!(previous.map(|e| &e.kind),
                        Some(AssociationEventKind::PartnerRemoved { partner: p, reason: RemovalReason::ReplacedBy(b) })
                            if p == replaced && b == partner);
                    if !ok {
                        return Err(format!(
                            "event {} replaces without a removal just before",
                            event.sequence
                        ));
                    }
                }
                current = Some((*partner, *program));
            }
            AssociationEventKind::PartnerRemoved { partner, .. } => match current {
                Some((p, _)) if p == *partner => current = None,
                _ => {
                    return Err(format!(
                        "event {} removes a partner that is not set",
                        event.sequence
                    ));
                }
            },
            other => return Err(format!("unexpected event {other:?}")),
        }
    }
    Ok(current)
}
