//! # dpor — Digital Partner of Record
//!
//! A customer designates one **partner of record** (POR) per cloud subscription: the
//! partner who services it, and who earns incentives for it. `dpor` is the domain core
//! of that feature, ready to link into a billing back end or wrap in a portal:
//!
//! - a pure, synchronous model: validated ids ([`MpnId`], [`SubscriptionId`]), the
//!   [`Subscription`] with at most one [`PartnerOfRecord`], and the state machine
//!   ([`Subscription::associate`], [`Subscription::remove_partner`]) that records every
//!   change as an [`AssociationEvent`];
//! - the rules of who may do what ([`Actor`], [`Actor::authorize`]): only the
//!   customer's global administrator designates;
//! - a thin async shell, [`PorService`], over four ports that a host implements
//!   ([`Repository`], [`PartnerDirectory`], [`Notifier`], [`Clock`]);
//! - in-memory implementations of each ([`memory`]), so everything below runs as is.
//!
//! ## Guarantees
//!
//! - **One partner of record per subscription**, at every instant and under any
//!   concurrency: every change is a compare-and-swap on the subscription's version
//!   ([`Repository::commit`]); a lost race is [`Error::Conflict`], never a second POR.
//! - **Nothing lost**: a change, its events and its notifications are committed
//!   together or not at all; notifications are delivered *at least once*, with stable
//!   ids ([`service`] module docs).
//! - **Bad input changes nothing**: every refusal is a typed [`Error`] whose message a
//!   portal can show as it is.
//!
//! ## The portal flow (KB3185444), step by step
//!
//! ```
//! use dpor::*;
//! use time::{Duration, macros::datetime};
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! // The host's infrastructure; here the in-memory defaults.
//! let repository = InMemoryRepository::new();
//! let directory = InMemoryDirectory::new()
//!     .with_partner(
//!         Partner::new(MpnId::parse("565380")?, "Fabrikam Consulting")
//!             .with_location("Seattle, US")
//!             .with_contact_email("por@fabrikam.example")
//!             .enrolled_in(Program::OnlineServicesSell),
//!     )
//!     .with_partner(
//!         Partner::new(MpnId::parse("3664167")?, "Northwind Traders")
//!             .with_contact_email("partners@northwind.example")
//!             .enrolled_in(Program::OnlineServicesSell),
//!     );
//! let notifier = RecordingNotifier::new();
//! let clock = ManualClock::new(datetime!(2026-01-05 10:00 UTC));
//! let contoso = CustomerId::new("contoso")?;
//! let sub = SubscriptionId::new("sub-001")?;
//! repository
//!     .insert(Subscription::new(sub.clone(), contoso.clone(), CloudService::Office365, "Office 365 E3"))
//!     .await?;
//!
//! let service = PorService::new(repository, directory, notifier.clone()).with_clock(clock.clone());
//! let admin = Actor::global_admin(contoso);
//!
//! // Steps 1-3: sign in, Billing > Subscriptions, pick the cloud service.
//! let subscriptions = service.subscriptions(&admin).await?;
//! assert_eq!(subscriptions.len(), 1);
//! assert!(subscriptions[0].partner_of_record().is_none());
//!
//! // Step 4: "More Actions" offers "Add partner of record".
//! assert_eq!(subscriptions[0].actions_for(&admin), [Action::AddPartnerOfRecord]);
//!
//! // Step 5: a typo is caught before anything is looked up.
//! let typo = service.check_partner(&admin, &sub, "56538O").await;
//! assert!(matches!(typo, Err(Error::InvalidMpnId(MpnIdError::InvalidCharacter { index: 5, character: 'O' }))));
//!
//! // Step 6: "Check ID" shows who the partner is.
//! let check = service.check_partner(&admin, &sub, "565380").await?;
//! assert_eq!(check.partner().name(), "Fabrikam Consulting");
//! assert_eq!(check.partner().location(), Some("Seattle, US"));
//!
//! // Step 7: "Submit".
//! clock.advance(Duration::minutes(1));
//! let receipt = service.submit(&admin, &check).await?;
//! assert!(receipt.changed);
//!
//! // Step 8: "Edit partner of record" shows the most recent MPN ID.
//! let por = service.partner_of_record(&admin, &sub).await?.ok_or("no partner of record")?;
//! assert_eq!(por.mpn_id().as_str(), "565380");
//!
//! // Step 9: the partner's confirmation email.
//! let sent = notifier.sent();
//! assert_eq!(sent.len(), 1);
//! assert_eq!((sent[0].kind, sent[0].contact_email.as_deref()), (NotificationKind::Added, Some("por@fabrikam.example")));
//!
//! // Replace: one atomic change; Fabrikam is told "removed", Northwind "added".
//! let check = service.check_partner(&admin, &sub, "3664167").await?;
//! assert_eq!(check.current().map(|c| c.mpn_id()), Some(por.mpn_id()));
//! service.submit(&admin, &check).await?;
//! let kinds: Vec<_> = notifier.sent()[1..].iter().map(|n| (n.partner.to_string(), n.kind)).collect();
//! assert_eq!(kinds, [("565380".into(), NotificationKind::Removed), ("3664167".into(), NotificationKind::Added)]);
//!
//! // Remove at any time: Northwind is told.
//! service.remove_partner(&admin, &sub).await?;
//! assert_eq!(service.partner_of_record(&admin, &sub).await?, None);
//!
//! // The history tells who was partner of record when.
//! let history = service.history(&admin, &sub).await?;
//! assert_eq!(history.len(), 4); // associated, removed + associated, removed
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Where to go next
//!
//! - [`ports`] explains how to implement the traits over your own storage and email.
//! - [`service`] documents the order of checks and the delivery guarantee.
//! - [`association`] holds the state machine's rules (including the subscription
//!   lifecycle); [`actor`] the authorization rules.
//! - [`attribution`] answers who was partner of record when, and who is eligible for
//!   incentives; [`PorService::partner_portfolio`] is the partner side.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod actor;
pub mod association;
pub mod attribution;
pub mod check;
pub mod error;
pub mod event;
pub mod id;
pub mod incentive;
pub mod link;
pub mod memory;
pub mod partner;
pub mod ports;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
pub mod service;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;
pub mod subscription;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;
mod timestamp;

/// The attribute the port traits are declared with, re-exported so that an
/// implementation needs no extra dependency: `#[dpor::async_trait] impl Repository for ...`.
pub use async_trait::async_trait;

/// The sqlx crate the SQL repositories are built on (their pools are sqlx types),
/// re-exported so that a host uses the same version.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sqlx;

pub use actor::{Access, Actor, CustomerRole};
pub use association::Transition;
pub use attribution::PorPeriod;
pub use check::PartnerCheck;
pub use error::{BoxError, DirectoryError, Error, NotifyError, StoreError};
pub use event::{
    AssociationEvent, AssociationEventKind, Notification, NotificationKind, RemovalReason,
};
pub use id::{CustomerId, IdError, MpnId, MpnIdError, NotificationId, SubscriptionId};
pub use incentive::{Disqualification, Eligibility, IncentivePolicy};
pub use link::{PartnerLink, PartnerLinkError};
pub use memory::{InMemoryDirectory, InMemoryRepository, ManualClock, RecordingNotifier};
pub use partner::{Partner, Program};
pub use ports::{Clock, Commit, Notifier, PartnerDirectory, Repository, SystemClock};
#[cfg(feature = "postgres")]
pub use postgres::PostgresRepository;
pub use service::{BulkMode, BulkOutcome, DispatchReport, PorService, Receipt};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteRepository;
pub use subscription::{Action, CloudService, PartnerOfRecord, Subscription, SubscriptionStatus};

/// The README's code examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
