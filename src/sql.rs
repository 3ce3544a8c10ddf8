//! What the SQL repositories share: the statements (the same text for SQLite and
//! PostgreSQL, with `$n` placeholders), the row encoding, and the `Repository`
//! implementation, written once and instantiated per database by a macro.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;
use crate::id::SubscriptionId;
use crate::subscription::Subscription;

pub(crate) const INSERT_SUBSCRIPTION: &str = "INSERT INTO dpor_subscriptions \
     (id, customer, partner, version, record) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (id) DO NOTHING";
pub(crate) const GET: &str = "SELECT id, version, record FROM dpor_subscriptions WHERE id = $1";
pub(crate) const BY_CUSTOMER: &str =
    "SELECT id, version, record FROM dpor_subscriptions WHERE customer = $1 ORDER BY id";
pub(crate) const BY_PARTNER: &str =
    "SELECT id, version, record FROM dpor_subscriptions WHERE partner = $1 ORDER BY id";
pub(crate) const UPDATE: &str = "UPDATE dpor_subscriptions \
     SET partner = $1, version = $2, record = $3 WHERE id = $4 AND version = $5";
pub(crate) const VERSION: &str = "SELECT version FROM dpor_subscriptions WHERE id = $1";
pub(crate) const INSERT_EVENT: &str =
    "INSERT INTO dpor_events (subscription, sequence, event) VALUES ($1, $2, $3)";
pub(crate) const INSERT_NOTIFICATION: &str =
    "INSERT INTO dpor_outbox (id, notification) VALUES ($1, $2)";
pub(crate) const HISTORY: &str =
    "SELECT event FROM dpor_events WHERE subscription = $1 ORDER BY sequence";
pub(crate) const PENDING: &str =
    "SELECT notification FROM dpor_outbox WHERE NOT delivered ORDER BY position LIMIT $1";
pub(crate) const MARK_DELIVERED: &str = "UPDATE dpor_outbox SET delivered = TRUE WHERE id = $1";

pub(crate) fn backend(error: impl Into<crate::error::BoxError>) -> StoreError {
    StoreError::Backend(error.into())
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(backend)
}

pub(crate) fn from_json<T: DeserializeOwned>(json: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| backend(format!("a stored {what} does not decode: {e}")))
}

/// A count as the signed 64-bit integer SQL stores.
pub(crate) fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| backend(format!("{value} does not fit a BIGINT column")))
}

/// A `LIMIT` from a `usize` (saturating: "all" is `usize::MAX`).
pub(crate) fn limit(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Decodes a subscription row, checking that the record agrees with its columns (a
/// row edited by another tool may not).
pub(crate) fn decode_subscription(
    id: &str,
    version: i64,
    record: &str,
) -> Result<Subscription, StoreError> {
    let subscription: Subscription = from_json(record, "subscription")?;
    if subscription.id().as_str() != id || to_i64(subscription.version())? != version {
        return Err(backend(format!(
            "stored subscription {id} is inconsistent: its record says {} at version {}, \
             its row version {version}",
            subscription.id(),
            subscription.version()
        )));
    }
    Ok(subscription)
}

/// The conflict or not-found answer to a compare-and-swap that updated no row.
pub(crate) fn conflict_or_not_found(
    subscription: &SubscriptionId,
    expected: u64,
    actual: Option<i64>,
) -> StoreError {
    match actual {
        None => StoreError::NotFound(subscription.clone()),
        Some(actual) => StoreError::Conflict {
            subscription: subscription.clone(),
            expected,
            actual: u64::try_from(actual).unwrap_or_default(),
        },
    }
}

/// Implements `Repository` for a struct with a `pool: sqlx::Pool<$db>` field.
macro_rules! sql_repository {
    ($name:ident, $db:ty) => {
        impl $name {
            async fn fetch_subscriptions(
                &self,
                statement: &'static str,
                key: &str,
            ) -> Result<Vec<Subscription>, StoreError> {
                let rows = sqlx::query(statement)
                    .bind(key)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::backend)?;
                rows.iter().map(decode_row).collect()
            }
        }

        /// The bound `INSERT` of a new subscription row (which does nothing when the id
        /// is taken).
        fn insert_subscription(
            subscription: &Subscription,
        ) -> Result<sqlx::query::Query<'_, $db, <$db as sqlx::Database>::Arguments<'_>>, StoreError>
        {
            Ok(sqlx::query(sql::INSERT_SUBSCRIPTION)
                .bind(subscription.id().as_str())
                .bind(subscription.customer().as_str())
                .bind(
                    subscription
                        .partner_of_record()
                        .map(|p| p.mpn_id().to_string()),
                )
                .bind(sql::to_i64(subscription.version())?)
                .bind(sql::to_json(subscription)?))
        }

        /// Decodes the JSON in a row's first column.
        fn json_column<T: serde::de::DeserializeOwned>(
            row: &<$db as sqlx::Database>::Row,
            what: &str,
        ) -> Result<T, StoreError> {
            use sqlx::Row as _;
            let json: String = row.try_get(0).map_err(sql::backend)?;
            sql::from_json(&json, what)
        }

        fn decode_row(row: &<$db as sqlx::Database>::Row) -> Result<Subscription, StoreError> {
            use sqlx::Row as _;
            let id: String = row.try_get(0).map_err(sql::backend)?;
            let version: i64 = row.try_get(1).map_err(sql::backend)?;
            let record: String = row.try_get(2).map_err(sql::backend)?;
            sql::decode_subscription(&id, version, &record)
        }

        #[async_trait]
        impl Repository for $name {
            async fn insert(&self, subscription: Subscription) -> Result<(), StoreError> {
                let inserted = insert_subscription(&subscription)?
                    .execute(&self.pool)
                    .await
                    .map_err(sql::backend)?;
                if inserted.rows_affected() == 0 {
                    return Err(StoreError::AlreadyExists(subscription.id().clone()));
                }
                Ok(())
            }

            async fn get(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
                let row = sqlx::query(sql::GET)
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(sql::backend)?;
                row.as_ref().map(decode_row).transpose()
            }

            async fn list_by_customer(
                &self,
                customer: &CustomerId,
            ) -> Result<Vec<Subscription>, StoreError> {
                self.fetch_subscriptions(sql::BY_CUSTOMER, customer.as_str())
                    .await
            }

            async fn list_by_partner(
                &self,
                partner: &MpnId,
            ) -> Result<Vec<Subscription>, StoreError> {
                self.fetch_subscriptions(sql::BY_PARTNER, partner.as_str())
                    .await
            }

            async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
                use sqlx::Row as _;
                commit.check()?;
                let id = commit.next.id();
                // Encode everything before touching the database.
                let record = sql::to_json(&commit.next)?;
                let events = commit
                    .events
                    .iter()
                    .map(|e| Ok((sql::to_i64(e.sequence)?, sql::to_json(e)?)))
                    .collect::<Result<Vec<_>, StoreError>>()?;
                let notifications = commit
                    .notifications
                    .iter()
                    .map(|n| Ok((n.id.as_str(), sql::to_json(n)?)))
                    .collect::<Result<Vec<_>, StoreError>>()?;
                let create = match &commit.create {
                    Some(created) => Some((created.id(), insert_subscription(created)?)),
                    None => None,
                };

                let mut tx = self.pool.begin().await.map_err(sql::backend)?;
                let updated = sqlx::query(sql::UPDATE)
                    .bind(
                        commit
                            .next
                            .partner_of_record()
                            .map(|p| p.mpn_id().to_string()),
                    )
                    .bind(sql::to_i64(commit.next.version())?)
                    .bind(record)
                    .bind(id.as_str())
                    .bind(sql::to_i64(commit.expected_version)?)
                    .execute(&mut *tx)
                    .await
                    .map_err(sql::backend)?;
                if updated.rows_affected() == 0 {
                    let actual = sqlx::query(sql::VERSION)
                        .bind(id.as_str())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(sql::backend)?
                        .map(|row| row.try_get::<i64, _>(0))
                        .transpose()
                        .map_err(sql::backend)?;
                    // Dropping `tx` rolls back.
                    return Err(sql::conflict_or_not_found(
                        id,
                        commit.expected_version,
                        actual,
                    ));
                }
                if let Some((created, insert)) = create {
                    let inserted = insert.execute(&mut *tx).await.map_err(sql::backend)?;
                    if inserted.rows_affected() == 0 {
                        // Dropping `tx` rolls the update back.
                        return Err(StoreError::AlreadyExists(created.clone()));
                    }
                }
                for (sequence, event) in events {
                    sqlx::query(sql::INSERT_EVENT)
                        .bind(id.as_str())
                        .bind(sequence)
                        .bind(event)
                        .execute(&mut *tx)
                        .await
                        .map_err(sql::backend)?;
                }
                for (notification_id, notification) in notifications {
                    sqlx::query(sql::INSERT_NOTIFICATION)
                        .bind(notification_id)
                        .bind(notification)
                        .execute(&mut *tx)
                        .await
                        .map_err(sql::backend)?;
                }
                tx.commit().await.map_err(sql::backend)
            }

            async fn history(
                &self,
                id: &SubscriptionId,
            ) -> Result<Vec<AssociationEvent>, StoreError> {
                let rows = sqlx::query(sql::HISTORY)
                    .bind(id.as_str())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::backend)?;
                rows.iter().map(|row| json_column(row, "event")).collect()
            }

            async fn pending_notifications(
                &self,
                limit: usize,
            ) -> Result<Vec<Notification>, StoreError> {
                let rows = sqlx::query(sql::PENDING)
                    .bind(sql::limit(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::backend)?;
                rows.iter()
                    .map(|row| json_column(row, "notification"))
                    .collect()
            }

            async fn mark_delivered(&self, ids: &[NotificationId]) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await.map_err(sql::backend)?;
                for id in ids {
                    sqlx::query(sql::MARK_DELIVERED)
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(sql::backend)?;
                }
                tx.commit().await.map_err(sql::backend)
            }
        }
    };
}

pub(crate) use sql_repository;
