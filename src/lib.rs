#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod actor;
pub mod association;
pub mod attribution;
pub mod check;
pub mod delivery;
#[doc(hidden)]
pub mod doc_fixture;
pub mod error;
pub mod event;
pub mod feed;
pub mod id;
pub mod incentive;
pub mod link;
pub mod memory;
pub mod partner;
pub mod ports;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
pub mod role;
pub mod schema;
pub mod service;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod spare;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;
pub mod subscription;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;
pub mod text;
mod timestamp;
mod trace;
pub mod transfer;
mod wire;

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
pub use delivery::{AfterFailure, DeliveryPolicy};
pub use error::{
    BoxError, DirectoryError, Error, NotifyError, SchemaError, StoreError, TransferError,
};
pub use event::{
    AssociationEvent, AssociationEventKind, Cause, Notification, NotificationKind, RemovalReason,
};
pub use feed::{Change, Cursor};
pub use id::{CustomerId, IdError, MpnId, MpnIdError, NotificationId, SubscriptionId, UserRef};
pub use incentive::{Disqualification, Eligibility, IncentivePolicy};
pub use link::{PartnerLink, PartnerLinkError};
pub use memory::{InMemoryDirectory, InMemoryRepository, ManualClock, RecordingNotifier};
pub use partner::{Partner, Program};
pub use ports::{
    Claim, Clock, Commit, DeliveryStatus, Failure, Notifier, Outbox, OutboxEntry, PartnerDirectory,
    Repository, Store, SystemClock,
};
#[cfg(feature = "postgres")]
pub use postgres::PostgresRepository;
pub use service::{BulkMode, BulkOutcome, DispatchReport, PorService, Receipt};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteRepository;
pub use subscription::{Action, CloudService, PartnerOfRecord, Subscription, SubscriptionStatus};
pub use text::TextError;
pub use transfer::{TransferReport, transfer};
