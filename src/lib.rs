//! # dpor — Digital Partner of Record
//!
//! One partner of record per cloud subscription, designated only by the customer.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod actor;
pub mod association;
pub mod error;
pub mod event;
pub mod id;
pub mod memory;
pub mod partner;
pub mod ports;
pub mod service;
pub mod subscription;
mod timestamp;

pub use actor::{Access, Actor, CustomerRole};
pub use association::Transition;
pub use error::{BoxError, DirectoryError, Error, NotifyError, StoreError};
pub use event::{
    AssociationEvent, AssociationEventKind, Notification, NotificationKind, RemovalReason,
};
pub use id::{CustomerId, IdError, MpnId, MpnIdError, NotificationId, SubscriptionId};
pub use memory::{InMemoryDirectory, InMemoryRepository, ManualClock, RecordingNotifier};
pub use partner::{Partner, Program};
pub use ports::{Clock, Commit, Notifier, PartnerDirectory, Repository, SystemClock};
pub use service::{DispatchReport, PartnerCheck, PorService, Receipt};
pub use subscription::{Action, CloudService, PartnerOfRecord, Subscription, SubscriptionStatus};
