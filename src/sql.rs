//! What the SQL repositories share: the statements (mostly the same text for SQLite and
//! PostgreSQL, with `$n` placeholders; those PostgreSQL plans for each call have their
//! arguments in their text), the row encoding, and the `Repository` implementation,
//! written once and instantiated per database by a macro.

use serde::Serialize;
use serde::de::DeserializeOwned;

use time::OffsetDateTime;

use crate::error::{SchemaError, StoreError};
use crate::id::SubscriptionId;
use crate::ports::{Commit, DeliveryStatus, OutboxEntry};
use crate::subscription::Subscription;

pub(crate) const INSERT_SUBSCRIPTION: &str = "INSERT INTO dpor_subscriptions \
     (id, customer, partner, version, record) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (id) DO NOTHING";
pub(crate) const GET: &str = "SELECT id, version, record FROM dpor_subscriptions WHERE id = $1";
pub(crate) const BY_CUSTOMER: &str =
    "SELECT id, version, record FROM dpor_subscriptions WHERE customer = $1 ORDER BY id";
pub(crate) const BY_PARTNER: &str =
    "SELECT id, version, record FROM dpor_subscriptions WHERE partner = $1 ORDER BY id";
/// The condition that a commit's events follow the last event stored for subscription
/// `$subscription`, which must be `$follows` (0 for none): what keeps a history gap-free
/// when a commit's `next` was not made from the stored subscription (a repeat is refused
/// by the events' key anyway, a gap or a counter set back only by this). One look at
/// the end of the subscription's events in their primary key.
macro_rules! follows_stored {
    ($subscription:literal, $follows:literal) => {
        concat!(
            "(SELECT COALESCE(MAX(sequence), 0) FROM dpor_events WHERE subscription = ",
            $subscription,
            ") = ",
            $follows
        )
    };
}

/// The compare-and-swap: `$5` the version expected, `$6` the last event sequence stored
/// before the commit's events ([`Encoded::follows`]).
pub(crate) const UPDATE: &str = concat!(
    "UPDATE dpor_subscriptions SET partner = $1, version = $2, record = $3 ",
    "WHERE id = $4 AND version = $5 AND ",
    follows_stored!("$4", "$6")
);
pub(crate) const VERSION: &str = "SELECT version FROM dpor_subscriptions WHERE id = $1";
pub(crate) const INSERT_EVENT: &str =
    "INSERT INTO dpor_events (subscription, sequence, event) VALUES ($1, $2, $3)";
pub(crate) const HISTORY: &str =
    "SELECT event FROM dpor_events WHERE subscription = $1 ORDER BY sequence";
/// The change feed after the cursor `($1, $2)`, at most `$3`: epoch, position, event.
/// When no change follows the cursor, one row instead: the cursor of the feed's last
/// change with no event (none when the feed is empty), so that a reader polling the
/// end of the feed learns in the same round trip whether its cursor is one this store
/// answered ([`check_cursor`](crate::ports::check_cursor)). SQLite writes one
/// transaction at a time, so positions commit in order; its epoch is always 0.
#[cfg(feature = "sqlite")]
pub(crate) const CHANGES_SQLITE: &str = "WITH page AS (SELECT 0 AS epoch, position, event \
     FROM dpor_events WHERE (0, position) > ($1, $2) ORDER BY position LIMIT $3) \
     SELECT epoch, position, event FROM page \
     UNION ALL SELECT * FROM (SELECT 0, position, NULL FROM dpor_events \
     WHERE NOT EXISTS (SELECT 1 FROM page) ORDER BY position DESC LIMIT 1) \
     ORDER BY 1, 2";
/// The change feed on PostgreSQL, as [`CHANGES_SQLITE`]: only the events of
/// transactions older than the oldest one still running (schema step 3 says why); the
/// last change when none follows the cursor, whether its transaction is older than the
/// oldest one running or not.
#[cfg(feature = "postgres")]
pub(crate) const CHANGES_POSTGRES: &str = "WITH page AS (SELECT tx, position, event \
     FROM dpor_events WHERE (tx, position) > ($1, $2) \
     AND tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
     ORDER BY tx, position LIMIT $3) \
     SELECT tx, position, event FROM page \
     UNION ALL (SELECT tx, position, NULL FROM dpor_events \
     WHERE NOT EXISTS (SELECT FROM page) ORDER BY tx DESC, position DESC LIMIT 1) \
     ORDER BY 1, 2";
/// The terms that select the pending notifications through one of the outbox's partial
/// indexes, on table alias `$t`: `due!` through `dpor_outbox_due` (in position
/// order), `of_pair!` through `dpor_outbox_by_pair`. Each repeats its index's own
/// term (`position > 0`, `recipient > ''`: true of every row), so that a statement
/// meets the predicate of its index and not the other's (schema step 4 says why).
macro_rules! due {
    ($t:literal) => {
        concat!($t, "status = 'pending' AND ", $t, "position > 0")
    };
}
/// See `due!`.
macro_rules! of_pair {
    ($t:literal) => {
        concat!($t, "status = 'pending' AND ", $t, "recipient > ''")
    };
}

/// The pending notifications in order, at most `$limit` (SQL text).
macro_rules! pending {
    ($limit:literal) => {
        concat!(
            "SELECT notification FROM dpor_outbox WHERE ",
            due!(""),
            " ORDER BY position LIMIT ",
            $limit
        )
    };
}
/// [`Outbox::pending_notifications`](crate::ports::Outbox::pending_notifications) on
/// SQLite.
#[cfg(feature = "sqlite")]
pub(crate) const PENDING_SQLITE: &str = pending!("$1");
pub(crate) const PAGE_FIRST: &str =
    "SELECT id, version, record FROM dpor_subscriptions ORDER BY id LIMIT $1";
pub(crate) const PAGE_AFTER: &str =
    "SELECT id, version, record FROM dpor_subscriptions WHERE id > $1 ORDER BY id LIMIT $2";
/// The columns an [`OutboxEntry`](crate::ports::OutboxEntry) is read from.
macro_rules! entry_columns {
    () => {
        "position, notification, status, attempts, last_error, last_attempt_at, next_attempt_at"
    };
}
pub(crate) const OUTBOX_PAGE: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM dpor_outbox WHERE position > $1 ORDER BY position LIMIT $2"
);
/// The dead letters after position `$after`, at most `$limit` (SQL text).
macro_rules! dead_letters {
    ($after:literal, $limit:literal) => {
        concat!(
            "SELECT ",
            entry_columns!(),
            " FROM dpor_outbox WHERE status = 'dead' AND position > ",
            $after,
            " ORDER BY position LIMIT ",
            $limit
        )
    };
}
/// [`Outbox::dead_letters`](crate::ports::Outbox::dead_letters) on SQLite.
#[cfg(feature = "sqlite")]
pub(crate) const DEAD_LETTERS_SQLITE: &str = dead_letters!("$1", "$2");
pub(crate) const IMPORT_NOTIFICATION: &str = "INSERT INTO dpor_outbox (id, notification, \
     subscription, recipient, status, attempts, last_error, last_attempt_at, next_attempt_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING";

/// The status test of a statement that finds its notifications by `id`: "still
/// pending" (or "still dead", or "not delivered yet") written as the statuses the row
/// must not have, so that it implies no partial index's predicate and the rows are
/// found by the unique index on `id` (schema step 4 says why). The status column's
/// `CHECK` allows exactly these three statuses.
macro_rules! by_id_while {
    ("pending") => {
        "status NOT IN ('delivered', 'dead')"
    };
    ("dead") => {
        "status NOT IN ('pending', 'delivered')"
    };
    ("not delivered") => {
        "status <> 'delivered'"
    };
}

/// [`Failure::under`](crate::ports::Failure::under) on table column `claimed_until`,
/// the failure's lease end being parameter `$p` (NULL: none). The comparison comes
/// first, so that PostgreSQL types the parameter from the column.
macro_rules! under_its_lease {
    ($p:literal) => {
        concat!("(claimed_until = ", $p, " OR ", $p, " IS NULL)")
    };
}

pub(crate) const RECORD_RETRY: &str = concat!(
    "UPDATE dpor_outbox SET attempts = $2, last_error = $3, last_attempt_at = $4, ",
    "next_attempt_at = $5, claimed_until = NULL WHERE id = $1 AND ",
    by_id_while!("pending"),
    " AND ",
    under_its_lease!("$6")
);
pub(crate) const RECORD_DEAD: &str = concat!(
    "UPDATE dpor_outbox SET status = 'dead', attempts = $2, last_error = $3, ",
    "last_attempt_at = $4, claimed_until = NULL WHERE id = $1 AND ",
    by_id_while!("pending"),
    " AND ",
    under_its_lease!("$5")
);
pub(crate) const REDRIVE: &str = concat!(
    "UPDATE dpor_outbox SET status = 'pending', attempts = 0, next_attempt_at = $2, ",
    "claimed_until = NULL WHERE id = $1 AND ",
    by_id_while!("dead")
);

/// Whether a notification of the pair (`$subscription`, `$recipient`) is pending (with
/// `$more`, SQL text on `e`): a lookup in `dpor_outbox_by_pair` (`of_pair!`).
/// `LIMIT 1 OFFSET 0` keeps it a subquery run per row with the pair as its key:
/// flattened into an anti-join (until issue 15's fifth round), the pair was no key and
/// PostgreSQL scanned the whole index for every row. (`OFFSET` stops the flattening;
/// SQLite wants a `LIMIT` before it.)
macro_rules! pending_of_pair {
    ($subscription:expr, $recipient:expr, $more:expr) => {
        concat!(
            "EXISTS (SELECT 1 FROM dpor_outbox e WHERE ",
            of_pair!("e."),
            " AND e.subscription = ",
            $subscription,
            " AND e.recipient = ",
            $recipient,
            $more,
            " LIMIT 1 OFFSET 0)"
        )
    };
}

/// Which pending notifications a claim may take (`$now` is now, `$limit` how many at
/// most: SQL text): among the pending ones (`due`), or the one with id `$4` (`only`),
/// those due, not claimed by a running lease, and the first pending one of their
/// (subscription, partner) pair.
macro_rules! claimable {
    (due, $now:literal, $limit:literal) => {
        claimable!(@among due!("o."), $now, $limit)
    };
    (only, $now:literal, $limit:literal) => {
        claimable!(@among concat!("o.id = $4 AND o.", by_id_while!("pending")), $now, $limit)
    };
    (@among $rows:expr, $now:literal, $limit:literal) => {
        concat!(
            " SELECT o.position FROM dpor_outbox o WHERE ",
            $rows,
            " AND o.next_attempt_at <= ",
            $now,
            " AND (o.claimed_until IS NULL OR o.claimed_until <= ",
            $now,
            ")",
            " AND NOT ",
            pending_of_pair!(
                "o.subscription",
                "o.recipient",
                " AND e.position < o.position"
            ),
            " ORDER BY o.position LIMIT ",
            $limit
        )
    };
}

/// A claim on SQLite: marks the oldest claimable notifications (`due`, or `only` the
/// one with id `$4`) claimed until `$1` and returns them (`$3` is the limit). SQLite has
/// one writer at a time: the statement is the whole claim.
#[cfg(feature = "sqlite")]
macro_rules! claim_sqlite {
    ($which:tt) => {
        concat!(
            "UPDATE dpor_outbox SET claimed_until = $1 WHERE position IN (",
            claimable!($which, "$2", "$3"),
            ") RETURNING ",
            entry_columns!()
        )
    };
}
/// [`Outbox::claim`](crate::ports::Outbox::claim) on SQLite:
/// [`Claim::Due`](crate::ports::Claim::Due).
#[cfg(feature = "sqlite")]
pub(crate) const CLAIM_DUE_SQLITE: &str = claim_sqlite!(due);
/// [`Claim::Only`](crate::ports::Claim::Only) on SQLite, one id per statement.
#[cfg(feature = "sqlite")]
pub(crate) const CLAIM_ONLY_SQLITE: &str = claim_sqlite!(only);

/// A claim on PostgreSQL, as `claim_sqlite!`'s (claimed until `$until`, SQL text): the
/// candidates are locked with `FOR UPDATE SKIP LOCKED`, so that two dispatchers never
/// claim one row, in a materialized CTE (a `LIMIT` subquery inside `IN (...)` may be
/// run more than once and claim more than the limit).
#[cfg(feature = "postgres")]
macro_rules! claim_postgres {
    ($which:tt, $until:literal, $now:literal, $limit:literal) => {
        concat!(
            "WITH picked AS MATERIALIZED (",
            claimable!($which, $now, $limit),
            " FOR UPDATE SKIP LOCKED) ",
            "UPDATE dpor_outbox SET claimed_until = ",
            $until,
            " FROM picked ",
            "WHERE dpor_outbox.position = picked.position RETURNING dpor_outbox.position, ",
            "dpor_outbox.notification, dpor_outbox.status, dpor_outbox.attempts, ",
            "dpor_outbox.last_error, dpor_outbox.last_attempt_at, dpor_outbox.next_attempt_at"
        )
    };
}
/// [`Claim::Only`](crate::ports::Claim::Only) on PostgreSQL, one id per statement.
#[cfg(feature = "postgres")]
pub(crate) const CLAIM_ONLY_POSTGRES: &str = claim_postgres!(only, "$1", "$2", "$3");
/// A read of one of the outbox's partial indexes in position order, with its
/// arguments: SQLite prepares and binds it, PostgreSQL is sent it as
/// [`in_order_postgres`] says.
#[derive(Clone, Copy, Debug)]
pub(crate) enum InOrder {
    /// [`Claim::Due`](crate::ports::Claim::Due): claimed until `until`, at `now`, at
    /// most `limit`.
    ClaimDue { until: i64, now: i64, limit: i64 },
    /// [`Outbox::pending_notifications`](crate::ports::Outbox::pending_notifications).
    Pending { limit: i64 },
    /// [`Outbox::dead_letters`](crate::ports::Outbox::dead_letters) after position
    /// `after`.
    DeadLetters { after: i64, limit: i64 },
}

impl InOrder {
    /// The pool it runs on: a claim writes.
    pub(crate) fn side(self) -> Side {
        match self {
            InOrder::ClaimDue { .. } => Side::Writes,
            InOrder::Pending { .. } | InOrder::DeadLetters { .. } => Side::Reads,
        }
    }

    /// The statement on PostgreSQL, its arguments in its text.
    #[cfg(feature = "postgres")]
    pub(crate) fn postgres(self) -> String {
        match self {
            InOrder::ClaimDue { until, now, limit } => format!(
                claim_postgres!(due, "{until}", "{now}", "{limit}"),
                until = until,
                now = now,
                limit = limit
            ),
            InOrder::Pending { limit } => format!(pending!("{limit}"), limit = limit),
            InOrder::DeadLetters { after, limit } => format!(
                dead_letters!("{after}", "{limit}"),
                after = after,
                limit = limit
            ),
        }
    }
}

/// The message that sends `statement`, a PostgreSQL read of one of the outbox's partial
/// indexes in position order ([`InOrder`]), with no sorting: it
/// is sent unprepared, after `SET LOCAL enable_sort = off` in one message (the simple
/// query protocol: one round trip, in one implicit transaction, at whose end the
/// setting lapses), its arguments (numbers) in its text, so that PostgreSQL plans it
/// for each call with sorting priced out. What is left are the walks of an index in
/// position order, which stop at the limit, and of those PostgreSQL takes the partial
/// index, `dpor_outbox_due` or `dpor_outbox_dead` (tested).
///
/// Planned freely, as they were until issue 15's eleventh round, PostgreSQL chose by
/// the outbox's statistics, and an outbox never analyzed has none (a new database's,
/// until autovacuum's first `ANALYZE` of it: up to a minute on a default server). It
/// then took few notifications to be pending, and sorting them looked cheapest: every
/// call read every pending row, tested each and sorted them all, to take its first
/// 100 (so over 20,000 emails never analyzed, 2,000 of them pending: the plan tests
/// fail with sorting on). Draining a backlog that way costs time in proportion to its
/// square. Seen in the SQL bench, whose dispatch rows delete and fill the outbox again
/// for every run: each claim of 100 among 1,000 pending read and sorted all 1,000
/// (3.4 ms), and one dispatcher delivered 8.5-10.5k emails per second; walking the
/// index, 20-27k. Planning each call costs the server about 0.15 ms per claim; the
/// 2-dispatcher row, which did not meet the misplan, went from 26.8-31.3k to
/// 22.4-29.3k in the same runs. A page of dead letters was planned the same way
/// (until the same round): every page read and sorted all of them, so paging through
/// dead letters imported into a new database cost time in proportion to their square.
#[cfg(feature = "postgres")]
pub(crate) fn in_order_postgres(statement: &str) -> String {
    format!("SET LOCAL enable_sort = off; {statement}")
}

/// The claim of a notification a commit inserts, for its `claimed_until`: until `$until`
/// when it is the first of its recipient in the commit (`$first`: rows of one statement
/// do not see each other), due (its time `$at` at most now, `$now`), and no
/// notification of its pair (`$subscription`, `$recipient`) is pending already. This is
/// [`claimable!`]'s rule for a row that no lease or retry has touched yet; the commit
/// claims without a second statement. Each argument is SQL text.
macro_rules! fresh_claim {
    ($first:literal, $at:literal, $now:literal, $subscription:literal, $recipient:literal, $until:literal) => {
        concat!(
            "CASE WHEN ",
            $first,
            " AND ",
            $at,
            " <= ",
            $now,
            " AND NOT ",
            pending_of_pair!($subscription, $recipient, ""),
            " THEN ",
            $until,
            " END"
        )
    };
}

/// [`Repository::commit_and_claim`](crate::ports::Repository::commit_and_claim) (and
/// `commit`) on PostgreSQL in one statement, so one round trip: the compare-and-swap
/// (`$1`-`$5`, and the last event sequence stored, `$15`: see [`UPDATE`]), the events
/// (`$6`, `$7`) and the notifications (`$8`-`$12`: id, JSON, recipient, time, first of
/// its recipient) in data-modifying CTEs that write only when the swap did, each
/// notification claimed until `$13` ([`fresh_claim!`]; none when NULL), now `$14`.
/// Answers one row with how many rows the swap updated, then one per notification,
/// oldest first.
///
/// Each array is read through a sub-select (`(SELECT $6::BIGINT[])`), so that the
/// planner sizes it by its default in every plan, as it does a parameter in the
/// generic plan. Given the arrays themselves, each custom plan counted two events where
/// the generic plan assumed ten, so the generic plan looked four times as costly and
/// PostgreSQL planned the statement afresh on every call: a quarter of the server's
/// time at 8 clients (issue 15's fifth round). Now it keeps the generic plan after its
/// first five calls, as it does for the other statements.
#[cfg(feature = "postgres")]
pub(crate) const COMMIT_AND_CLAIM_POSTGRES: &str = concat!(
    "WITH updated AS (UPDATE dpor_subscriptions SET partner = $1, version = $2, record = $3 ",
    "WHERE id = $4 AND version = $5 AND ",
    follows_stored!("$4", "$15::BIGINT"),
    " RETURNING id), ",
    "events AS (INSERT INTO dpor_events (subscription, sequence, event) ",
    "SELECT updated.id, e.sequence, e.event ",
    "FROM updated, UNNEST((SELECT $6::BIGINT[]), (SELECT $7::TEXT[])) ",
    "WITH ORDINALITY AS e (sequence, event, ord) ",
    "ORDER BY e.ord), ",
    "written AS (INSERT INTO dpor_outbox ",
    "(id, notification, subscription, recipient, next_attempt_at, claimed_until) ",
    "SELECT n.id, n.notification, updated.id, n.recipient, n.at, ",
    fresh_claim!("n.first", "n.at", "$14", "updated.id", "n.recipient", "$13"),
    " FROM updated, UNNEST((SELECT $8::TEXT[]), (SELECT $9::TEXT[]), (SELECT $10::TEXT[]), ",
    "(SELECT $11::BIGINT[]), (SELECT $12::BOOL[])) ",
    "WITH ORDINALITY AS n (id, notification, recipient, at, first, ord) ORDER BY n.ord ",
    "RETURNING id, position, claimed_until IS NOT NULL AS claimed) ",
    "SELECT (SELECT COUNT(*) FROM updated) AS updated, written.id, written.position, ",
    "written.claimed FROM (SELECT 1) AS one LEFT JOIN written ON TRUE ",
    "ORDER BY written.position"
);

/// A commit's events in one statement, inside its transaction: `$1` the subscription,
/// `$2` a JSON array of `[sequence, event JSON]`.
#[cfg(feature = "sqlite")]
pub(crate) const INSERT_EVENTS_SQLITE: &str = "INSERT INTO dpor_events \
     (subscription, sequence, event) SELECT $1, json_extract(value, '$[0]'), \
     json_extract(value, '$[1]') FROM json_each($2) ORDER BY key";
#[cfg(feature = "postgres")]
pub(crate) const INSERT_EVENTS_POSTGRES: &str = "INSERT INTO dpor_events \
     (subscription, sequence, event) SELECT $1, (e ->> 0)::BIGINT, e ->> 1 \
     FROM json_array_elements($2::JSON) WITH ORDINALITY AS t (e, ord) ORDER BY ord";

/// A commit's notifications in one statement, inside its transaction, each claimed
/// until `$2` ([`fresh_claim!`]; none when NULL), now `$3`. `$1` is the subscription,
/// `$4` a JSON array of `[id, notification JSON, recipient, time, first of its
/// recipient]`. Answers each row's id, position and whether it was claimed.
#[cfg(feature = "sqlite")]
pub(crate) const INSERT_NOTIFICATIONS_SQLITE: &str = concat!(
    "INSERT INTO dpor_outbox ",
    "(id, notification, subscription, recipient, next_attempt_at, claimed_until) ",
    "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), $1, ",
    "json_extract(value, '$[2]'), json_extract(value, '$[3]'), ",
    fresh_claim!(
        "json_extract(value, '$[4]')",
        "json_extract(value, '$[3]')",
        "$3",
        "$1",
        "json_extract(value, '$[2]')",
        "$2"
    ),
    " FROM json_each($4) ORDER BY key RETURNING id, position, claimed_until IS NOT NULL"
);
#[cfg(feature = "postgres")]
pub(crate) const INSERT_NOTIFICATIONS_POSTGRES: &str = concat!(
    "INSERT INTO dpor_outbox ",
    "(id, notification, subscription, recipient, next_attempt_at, claimed_until) ",
    "SELECT n ->> 0, n ->> 1, $1, n ->> 2, (n ->> 3)::BIGINT, ",
    fresh_claim!(
        "(n ->> 4)::BOOLEAN",
        "(n ->> 3)::BIGINT",
        "$3",
        "$1",
        "n ->> 2",
        "$2::BIGINT"
    ),
    " FROM json_array_elements($4::JSON) WITH ORDINALITY AS t (n, ord) ORDER BY ord",
    " RETURNING id, position, claimed_until IS NOT NULL"
);

/// The PostgreSQL statements that find notifications by a list of ids are sent
/// unprepared (the simple query protocol), so that PostgreSQL plans each for its call's
/// ids on the outbox as it is then; this is the list, as a `TEXT[]` in the statement's
/// own text: an array literal, hex-encoded, which holds whatever an id holds and needs
/// no quoting, whatever the server's string settings.
///
/// Prepared, as they were until issue 15's tenth round, PostgreSQL planned them for
/// their first five calls on a connection, then kept the generic plan. That plan
/// assumes ten ids, and for ten ids reading the whole table looks cheapest while the
/// outbox is small and has no statistics yet (over 10 to 1,000 emails, tested). So in
/// a new database every connection kept that plan as the outbox grew,
/// until autovacuum's first `ANALYZE` of the table: each delivered mark read every
/// email ever written. In the 10-second client benches that was most of the server's
/// time: 0.6–0.7k replacements per second at 1 client, against 1.1–1.3k with the
/// outbox analyzed during the run. Planning the mark on every call costs the server
/// about 0.05 ms (`pg_stat_statements`, 8 clients), which the marks of one and two
/// ids ([`MARK_DELIVERED_POSTGRES`]) and the statements by one id are spared: those
/// keep plans that find their rows by key whatever the outbox held when they were
/// made (tested).
#[cfg(feature = "postgres")]
fn text_array_postgres<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    use std::fmt::Write as _;

    // `{"id1","id2"}`, each element quoted, its `"` and `\` escaped with a `\`.
    let mut array = String::from("{");
    for (n, id) in ids.into_iter().enumerate() {
        if n > 0 {
            array.push(',');
        }
        array.push('"');
        for c in id.chars() {
            if matches!(c, '"' | '\\') {
                array.push('\\');
            }
            array.push(c);
        }
        array.push('"');
    }
    array.push('}');
    let mut expression = String::with_capacity(50 + 2 * array.len());
    expression.push_str("convert_from(decode('");
    for byte in array.bytes() {
        // Writing to a `String` cannot fail.
        let _ = write!(expression, "{byte:02x}");
    }
    expression.push_str("', 'hex'), 'UTF8')::TEXT[]");
    expression
}

/// The delivered mark on PostgreSQL, `UPDATE ... WHERE $ids AND` the row is not
/// delivered yet, with `$ids` SQL text.
#[cfg(feature = "postgres")]
macro_rules! mark_delivered_postgres {
    ($ids:literal) => {
        concat!(
            "UPDATE dpor_outbox SET status = 'delivered', claimed_until = NULL WHERE ",
            $ids,
            " AND ",
            by_id_while!("not delivered")
        )
    };
}

/// [`Outbox::mark_delivered`](crate::ports::Outbox::mark_delivered) of one id (`$1`)
/// and of two (`$1`, `$2`), prepared: the emails a commit claims are one (a
/// designation, a removal) or two (a replacement). Unlike a list's, the plans
/// PostgreSQL keeps of these name how many ids they take, and find them by id however
/// small the outbox was when they were made (tested), so they are not planned again
/// on every call (about 0.04 ms of the server's time at 1 client, issue 15's tenth
/// round).
#[cfg(feature = "postgres")]
pub(crate) const MARK_DELIVERED_POSTGRES: [&str; 2] = [
    mark_delivered_postgres!("id = $1"),
    mark_delivered_postgres!("id IN ($1, $2)"),
];

/// [`Outbox::mark_delivered`](crate::ports::Outbox::mark_delivered) of any number of
/// ids in one statement, to be sent unprepared (see [`text_array_postgres`]).
#[cfg(feature = "postgres")]
pub(crate) fn mark_all_delivered_postgres(ids: &[crate::id::NotificationId]) -> String {
    format!(
        mark_delivered_postgres!("id = ANY({})"),
        text_array_postgres(ids.iter().map(crate::id::NotificationId::as_str))
    )
}
/// [`Outbox::mark_delivered`](crate::ports::Outbox::mark_delivered) of many ids in one
/// statement on SQLite, `$1` the ids as a JSON array. Prepared: with no `ANALYZE`
/// statistics SQLite's planner takes every table for a large one, so the plan it
/// keeps finds the ids by their unique index whatever the outbox held when it was
/// made (`sqlite::tests::the_outbox_statements_find_their_rows_by_their_keys`).
#[cfg(feature = "sqlite")]
pub(crate) const MARK_ALL_DELIVERED_SQLITE: &str = concat!(
    "UPDATE dpor_outbox SET status = 'delivered', claimed_until = NULL ",
    "WHERE id IN (SELECT value FROM json_each($1)) AND ",
    by_id_while!("not delivered")
);

/// Which of the notification ids `ids` are stored, oldest first: the order in which a
/// claim of given ids that cannot take them all takes them. To be sent unprepared (see
/// [`text_array_postgres`]).
#[cfg(feature = "postgres")]
pub(crate) fn oldest_first_postgres(ids: &[&str]) -> String {
    format!(
        "SELECT id FROM dpor_outbox WHERE id = ANY({}) ORDER BY position",
        text_array_postgres(ids.iter().copied())
    )
}
/// Which of the notification ids `$1` (a JSON array) are stored, oldest first.
#[cfg(feature = "sqlite")]
pub(crate) const OLDEST_FIRST_SQLITE: &str = "SELECT id FROM dpor_outbox \
     WHERE id IN (SELECT value FROM json_each($1)) ORDER BY position";

/// Which of a store's pools a statement runs on (SQLite's writes have a connection of
/// their own; PostgreSQL's one pool serves both).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Side {
    Reads,
    Writes,
}

/// A commit encoded for a SQL store, before the database is touched.
#[derive(Debug)]
pub(crate) struct Encoded {
    /// The new partner of record's id, for the indexed column.
    pub partner: Option<String>,
    pub version: i64,
    pub expected: i64,
    /// The last event sequence the commit's events follow: what the store must hold.
    pub follows: i64,
    pub record: String,
    /// Each event's sequence and JSON.
    pub events: Vec<(i64, String)>,
    /// Each notification's JSON and whether it is the first of its recipient in the
    /// commit.
    pub notifications: Vec<(String, bool)>,
}

/// Checks and encodes `commit`.
pub(crate) fn encode(commit: &Commit) -> Result<Encoded, StoreError> {
    commit.check()?;
    let events = commit
        .events
        .iter()
        .map(|e| Ok((to_i64(e.sequence)?, to_json(e)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let all = &commit.notifications;
    let notifications = all
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let first = !all[..i].iter().any(|m| m.partner == n.partner);
            Ok((to_json(n)?, first))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Encoded {
        partner: commit
            .next
            .partner_of_record()
            .map(|p| p.mpn_id().to_string()),
        version: to_i64(commit.next.version())?,
        expected: to_i64(commit.expected_version)?,
        // `Commit::check`: the events run up to `next`'s last sequence.
        follows: to_i64(commit.next.last_event_sequence() - commit.events.len() as u64)?,
        record: to_json(&commit.next)?,
        events,
        notifications,
    })
}

/// A commit checked and encoded for the statements of a SQL store's transaction: the
/// events as a JSON array of `[sequence, event JSON]`, the notifications of `[id,
/// notification JSON, recipient, time, first of its recipient]`.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub commit: Commit,
    pub encoded: Encoded,
    pub events: String,
    pub notifications: String,
}

/// Checks and encodes `commit` for a transaction, before the database is touched.
pub(crate) fn prepare(commit: Commit) -> Result<Prepared, StoreError> {
    let encoded = encode(&commit)?;
    let events = to_json(&encoded.events)?;
    let rows: Vec<_> = commit
        .notifications
        .iter()
        .zip(&encoded.notifications)
        .map(|(n, (json, first))| (n.id.as_str(), json, n.partner.as_str(), micros(n.at), first))
        .collect();
    let notifications = to_json(&rows)?;
    Ok(Prepared {
        commit,
        encoded,
        events,
        notifications,
    })
}

/// The commit's notifications that the store claimed, as entries, oldest first:
/// `written` holds the id, position and claim of each row the store inserted.
pub(crate) fn claimed_entries(
    commit: Commit,
    written: Vec<(String, i64, bool)>,
) -> Result<Vec<OutboxEntry>, StoreError> {
    let mut claimed = Vec::new();
    for notification in commit.notifications {
        let Some((_, position, is_claimed)) = written
            .iter()
            .find(|(id, ..)| *id == notification.id.as_str())
        else {
            return Err(backend(format!(
                "notification {} was not written",
                notification.id
            )));
        };
        if *is_claimed {
            let position = u64::try_from(*position)
                .map_err(|_| backend(format!("outbox position {position} is negative")))?;
            claimed.push(OutboxEntry::new(position, notification));
        }
    }
    claimed.sort_unstable_by_key(|e| e.position);
    Ok(claimed)
}

/// An instant as the outbox stores it: Unix microseconds.
pub(crate) fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// An instant from Unix microseconds.
pub(crate) fn from_micros(micros: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map_err(|e| backend(format!("a stored time is out of range: {e}")))
}

/// A lease's end, `now + lease`, as stored: the instant a
/// [`Failure::claimed_until`](crate::ports::Failure::claimed_until) names, in
/// microseconds.
pub(crate) fn until(now: OffsetDateTime, lease: time::Duration) -> i64 {
    micros(now.saturating_add(lease))
}

/// A status as stored.
pub(crate) fn status_text(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Dead => "dead",
        _ => "pending",
    }
}

/// A stored status.
pub(crate) fn status_of(text: &str) -> Result<DeliveryStatus, StoreError> {
    match text {
        "pending" => Ok(DeliveryStatus::Pending),
        "delivered" => Ok(DeliveryStatus::Delivered),
        "dead" => Ok(DeliveryStatus::Dead),
        other => Err(backend(format!("unknown outbox status {other:?}"))),
    }
}

/// A backend failure.
pub(crate) fn backend(error: impl Into<crate::error::BoxError>) -> StoreError {
    StoreError::Backend(error.into())
}

/// A database error as a store error: a missing table (SQLite's "no such table",
/// PostgreSQL's `42P01`) means that the schema is not installed, and a missing column
/// (SQLite's "no such column" and "has no column named", PostgreSQL's `42703`) that it
/// is at another step than this release's statements use; each says so.
pub(crate) fn database(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error {
        let (code, message) = (db.code(), db.message());
        if code.as_deref() == Some("42P01") || message.starts_with("no such table") {
            return StoreError::Schema(SchemaError::NotInstalled);
        }
        if code.as_deref() == Some("42703")
            || message.starts_with("no such column")
            || message.contains("has no column named")
        {
            return StoreError::Schema(SchemaError::NotMigrated);
        }
    }
    backend(error)
}

/// An error of a commit on `subscription`: a unique key's refusal (an event or a
/// notification stored already, which the commit is to blame for) is
/// [`StoreError::InvalidCommit`], as the in-memory store answers it; any other stays
/// as [`database`] made it.
pub(crate) fn refused(subscription: &SubscriptionId, error: StoreError) -> StoreError {
    let StoreError::Backend(source) = &error else {
        return error;
    };
    match source.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(db)) if db.is_unique_violation() => StoreError::InvalidCommit {
            subscription: subscription.clone(),
            reason: format!(
                "an event or notification it writes is stored already ({})",
                db.message()
            ),
        },
        _ => error,
    }
}

/// The statements of a schema step: its text without `--` comments, split at `;`. The
/// steps are the crate's own files, which hold no `;` or `--` inside a literal.
pub(crate) fn statements(step: &'static str) -> Vec<String> {
    let code: String = step
        .lines()
        .map(|line| line.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .map(str::trim)
        .filter(|statement| !statement.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A version read from a schema table.
pub(crate) fn schema_version(value: Option<i64>) -> Result<Option<u32>, StoreError> {
    value
        .map(|v| {
            u32::try_from(v).map_err(|_| backend(format!("schema version {v} is out of range")))
        })
        .transpose()
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

/// The answer to a compare-and-swap that updated no row: not found, a conflict, or,
/// with the version expected stored, a commit whose events do not follow the stored
/// history ([`follows_stored!`]).
pub(crate) fn swap_refused(
    subscription: &SubscriptionId,
    expected: u64,
    actual: Option<i64>,
) -> StoreError {
    match actual.map(|actual| u64::try_from(actual).unwrap_or_default()) {
        None => StoreError::NotFound(subscription.clone()),
        Some(actual) if actual == expected => StoreError::InvalidCommit {
            subscription: subscription.clone(),
            reason: "its events do not follow the last event stored".to_owned(),
        },
        Some(actual) => StoreError::Conflict {
            subscription: subscription.clone(),
            expected,
            actual,
        },
    }
}

/// Implements `Repository`, `Outbox` and `migrate()` for a struct, given the
/// backend's statements (`$claim_only`: the claim of one id; `$insert_events`,
/// `$insert_notifications`; `$changes`, the feed's page or its last change) and its own
/// items: `lend(side)` (a connection for a
/// statement, see `crate::spare`), `writer()` (the pool write transactions begin in),
/// `begin_write` (a write transaction), `begin_schema_step` (a transaction holding the
/// database's schema lock), `recorded_and_found` (the recorded and the actual schema
/// versions), `commit_claiming` (`Repository::commit`, and with a claim
/// `Repository::commit_and_claim`), `oldest_first` (the stored ones of given
/// notification ids, by position), `mark_all_delivered`, and `in_order` (the rows of
/// an [`InOrder`] read).
macro_rules! sql_repository {
    ($name:ident, $db:ty, $backend:expr, $claim_only:expr, $insert_events:expr, $insert_notifications:expr, $changes:expr) => {
        impl $name {
            /// What `connect()` checks before answering a repository: a database
            /// from a newer release is refused ([`SchemaError::TooNew`](crate::SchemaError::TooNew)).
            async fn refuse_newer_schema(pool: &sqlx::Pool<$db>) -> Result<(), StoreError> {
                let mut connection = pool.acquire().await.map_err(sql::backend)?;
                let (_, found) = recorded_and_found(&mut connection).await?;
                crate::schema::pending($backend, found)?;
                Ok(())
            }

            /// Brings the schema to this release's version: applies the missing
            /// [steps](crate::schema) in order, each in its own transaction under the
            /// database's lock (SQLite's write lock by `BEGIN IMMEDIATE`, a
            /// transaction-scoped advisory lock on PostgreSQL), and answers what it did.
            /// Idempotent: several instances calling it at once apply each step once;
            /// the others wait and find nothing to do. A 0.1.0 database (its tables but
            /// no `dpor_schema`) is recognised as being at step 1, and recorded so.
            ///
            /// # Errors
            ///
            /// [`StoreError::Schema`] with
            /// [`SchemaError::TooNew`](crate::SchemaError::TooNew) for a database from a
            /// newer release (nothing is changed); [`StoreError::Backend`] when a
            /// statement fails (that step is rolled back).
            pub async fn migrate(&self) -> Result<crate::schema::Migration, StoreError> {
                let mut from = None;
                loop {
                    let mut tx = begin_schema_step(self.writer()).await?;
                    let (recorded, found) = recorded_and_found(&mut tx).await?;
                    let first_found = *from.get_or_insert(found);
                    let pending = crate::schema::pending($backend, found)?;
                    // A 0.1.0 database records its step 1 now (the step is idempotent).
                    let step = match (recorded, pending.first()) {
                        (None, _) if found == 1 => crate::schema::steps($backend).first(),
                        (_, next) => next,
                    };
                    let Some(step) = step else {
                        settle_feed(&mut tx).await?;
                        tx.commit().await.map_err(sql::backend)?;
                        return Ok(crate::schema::Migration {
                            from: first_found,
                            to: found,
                        });
                    };
                    apply_step(&mut tx, step.sql).await?;
                    tx.commit().await.map_err(sql::backend)?;
                }
            }

            /// `query`'s rows, on a connection [lent](Self::lend) from `side`'s pool.
            async fn fetch_all<'q>(
                &self,
                side: sql::Side,
                query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
            ) -> Result<Vec<<$db as sqlx::Database>::Row>, StoreError> {
                let mut lent = self.lend(side).await?;
                let result = query.fetch_all(lent.connection()).await;
                lent.settle(result)
            }

            /// `query`'s row, if any, as [`fetch_all`](Self::fetch_all).
            async fn fetch_optional<'q>(
                &self,
                side: sql::Side,
                query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
            ) -> Result<Option<<$db as sqlx::Database>::Row>, StoreError> {
                let mut lent = self.lend(side).await?;
                let result = query.fetch_optional(lent.connection()).await;
                lent.settle(result)
            }

            /// Runs `query` as [`fetch_all`](Self::fetch_all) and answers how many rows
            /// it changed.
            async fn execute<'q>(
                &self,
                side: sql::Side,
                query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
            ) -> Result<u64, StoreError> {
                let mut lent = self.lend(side).await?;
                let result = query.execute(lent.connection()).await;
                lent.settle(result).map(|done| done.rows_affected())
            }

            /// The outbox entries after position `after`, at most `limit`: all of them,
            /// or only the dead letters.
            async fn fetch_entries(
                &self,
                dead_only: bool,
                after: Option<u64>,
                limit: usize,
            ) -> Result<Vec<OutboxEntry>, StoreError> {
                // Positions are BIGINTs: none comes after one past what a BIGINT holds.
                let Ok(after) = i64::try_from(after.unwrap_or(0)) else {
                    return Ok(Vec::new());
                };
                let limit = sql::limit(limit);
                let rows = if dead_only {
                    self.in_order(sql::InOrder::DeadLetters { after, limit })
                        .await?
                } else {
                    let query = sqlx::query(sql::OUTBOX_PAGE).bind(after).bind(limit);
                    self.fetch_all(sql::Side::Reads, query).await?
                };
                rows.iter().map(decode_entry).collect()
            }

            async fn fetch_subscriptions(
                &self,
                statement: &'static str,
                key: &str,
            ) -> Result<Vec<Subscription>, StoreError> {
                let rows = self
                    .fetch_all(sql::Side::Reads, sqlx::query(statement).bind(key))
                    .await?;
                rows.iter().map(decode_row).collect()
            }
        }

        /// Decodes an outbox row read with the columns of `entry_columns!`.
        fn decode_entry(row: &<$db as sqlx::Database>::Row) -> Result<OutboxEntry, StoreError> {
            use sqlx::Row as _;
            let position: i64 = row.try_get(0).map_err(sql::database)?;
            let json: String = row.try_get(1).map_err(sql::database)?;
            let status: String = row.try_get(2).map_err(sql::database)?;
            let attempts: i64 = row.try_get(3).map_err(sql::database)?;
            let last_attempt_at: Option<i64> = row.try_get(5).map_err(sql::database)?;
            Ok(OutboxEntry {
                position: u64::try_from(position).map_err(sql::backend)?,
                notification: sql::from_json(&json, "notification")?,
                status: sql::status_of(&status)?,
                attempts: u32::try_from(attempts).map_err(sql::backend)?,
                last_error: row.try_get(4).map_err(sql::database)?,
                last_attempt_at: last_attempt_at.map(sql::from_micros).transpose()?,
                next_attempt_at: sql::from_micros(row.try_get(6).map_err(sql::database)?)?,
            })
        }

        /// Runs one schema step's statements in `connection` (a transaction), one by
        /// one: sqlx's `raw_sql` future is not provably `Send` here, and hosts spawn
        /// `migrate()`.
        async fn apply_step(
            connection: &mut <$db as sqlx::Database>::Connection,
            step: &'static str,
        ) -> Result<(), StoreError> {
            for statement in sql::statements(step) {
                sqlx::query(&statement)
                    .execute(&mut *connection)
                    .await
                    .map_err(sql::backend)?;
            }
            Ok(())
        }

        /// Applies a prepared commit inside `connection`'s open transaction: the
        /// compare-and-swap, a migration's new subscription, then the events in one
        /// statement and the notifications in another; with `claim` (now and the
        /// lease), the notifications are claimed as they are inserted, and the claimed
        /// ones are answered (read back before the caller commits: after it, an error
        /// would report a change that was made). On an error the caller rolls back.
        async fn apply(
            connection: &mut <$db as sqlx::Database>::Connection,
            prepared: sql::Prepared,
            claim: Option<(time::OffsetDateTime, time::Duration)>,
        ) -> Result<Vec<OutboxEntry>, StoreError> {
            let sql::Prepared {
                commit,
                encoded,
                events,
                notifications,
            } = prepared;
            let id = commit.next.id();
            let updated = sqlx::query(sql::UPDATE)
                .bind(encoded.partner)
                .bind(encoded.version)
                .bind(encoded.record)
                .bind(id.as_str())
                .bind(encoded.expected)
                .bind(encoded.follows)
                .execute(&mut *connection)
                .await
                .map_err(sql::database)?;
            if updated.rows_affected() == 0 {
                let actual = stored_version(&mut *connection, id)
                    .await
                    .map_err(sql::database)?;
                return Err(sql::swap_refused(id, commit.expected_version, actual));
            }
            if let Some(created) = &commit.create {
                let inserted = insert_subscription(created)?
                    .execute(&mut *connection)
                    .await
                    .map_err(sql::database)?;
                if inserted.rows_affected() == 0 {
                    return Err(StoreError::AlreadyExists(created.id().clone()));
                }
            }
            if !commit.events.is_empty() {
                sqlx::query($insert_events)
                    .bind(id.as_str())
                    .bind(events)
                    .execute(&mut *connection)
                    .await
                    .map_err(|e| sql::refused(id, sql::database(e)))?;
            }
            let mut written = Vec::with_capacity(commit.notifications.len());
            if !commit.notifications.is_empty() {
                let rows = sqlx::query($insert_notifications)
                    .bind(id.as_str())
                    .bind(claim.map(|(now, lease)| sql::until(now, lease)))
                    .bind(claim.map_or(0, |(now, _)| sql::micros(now)))
                    .bind(notifications)
                    .fetch_all(&mut *connection)
                    .await
                    .map_err(|e| sql::refused(id, sql::database(e)))?;
                for row in &rows {
                    written.extend(written_row(row, 0)?);
                }
            }
            match claim {
                None => Ok(Vec::new()),
                Some(_) => sql::claimed_entries(commit, written),
            }
        }

        /// A row of the notifications a commit wrote, from column `first` on: the id
        /// (none on the one row of a commit that wrote none), position, and whether it
        /// was claimed.
        fn written_row(
            row: &<$db as sqlx::Database>::Row,
            first: usize,
        ) -> Result<Option<(String, i64, bool)>, StoreError> {
            use sqlx::Row as _;
            let Some(id) = row
                .try_get::<Option<String>, _>(first)
                .map_err(sql::database)?
            else {
                return Ok(None);
            };
            let position = row.try_get(first + 1).map_err(sql::database)?;
            let claimed = row.try_get(first + 2).map_err(sql::database)?;
            Ok(Some((id, position, claimed)))
        }

        /// The version of subscription `id` as stored, if it is.
        async fn stored_version<'e>(
            executor: impl sqlx::Executor<'e, Database = $db>,
            id: &SubscriptionId,
        ) -> Result<Option<i64>, sqlx::Error> {
            sqlx::query_scalar(sql::VERSION)
                .bind(id.as_str())
                .fetch_optional(executor)
                .await
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
            let json: String = row.try_get(0).map_err(sql::database)?;
            sql::from_json(&json, what)
        }

        fn decode_row(row: &<$db as sqlx::Database>::Row) -> Result<Subscription, StoreError> {
            use sqlx::Row as _;
            let id: String = row.try_get(0).map_err(sql::database)?;
            let version: i64 = row.try_get(1).map_err(sql::database)?;
            let record: String = row.try_get(2).map_err(sql::database)?;
            sql::decode_subscription(&id, version, &record)
        }

        #[async_trait]
        impl Repository for $name {
            async fn insert(&self, subscription: Subscription) -> Result<(), StoreError> {
                crate::ports::check_new(&subscription)?;
                let inserted = self
                    .execute(sql::Side::Writes, insert_subscription(&subscription)?)
                    .await?;
                if inserted == 0 {
                    return Err(StoreError::AlreadyExists(subscription.id().clone()));
                }
                Ok(())
            }

            async fn get(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
                let row = self
                    .fetch_optional(sql::Side::Reads, sqlx::query(sql::GET).bind(id.as_str()))
                    .await?;
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
                self.commit_claiming(commit, None).await.map(drop)
            }

            async fn commit_and_claim(
                &self,
                commit: Commit,
                now: time::OffsetDateTime,
                lease: time::Duration,
            ) -> Result<Vec<OutboxEntry>, StoreError> {
                self.commit_claiming(commit, Some((now, lease))).await
            }

            async fn history(
                &self,
                id: &SubscriptionId,
            ) -> Result<Vec<AssociationEvent>, StoreError> {
                let rows = self
                    .fetch_all(
                        sql::Side::Reads,
                        sqlx::query(sql::HISTORY).bind(id.as_str()),
                    )
                    .await?;
                rows.iter().map(|row| json_column(row, "event")).collect()
            }

            async fn changes(
                &self,
                after: Option<&crate::feed::Cursor>,
                limit: usize,
            ) -> Result<Vec<crate::feed::Change>, StoreError> {
                use sqlx::Row as _;
                let after = after.copied().unwrap_or(crate::feed::Cursor::new(0, 0));
                // A cursor past what a BIGINT holds is past every change.
                let big = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                let rows = self
                    .fetch_all(
                        sql::Side::Reads,
                        sqlx::query($changes)
                            .bind(big(after.epoch()))
                            .bind(big(after.position()))
                            .bind(sql::limit(limit.min(crate::feed::MAX_CHANGES))),
                    )
                    .await?;
                let cursor = |row: &<$db as sqlx::Database>::Row| {
                    let epoch: i64 = row.try_get(0).map_err(sql::database)?;
                    let position: i64 = row.try_get(1).map_err(sql::database)?;
                    let unsigned = |n: i64| {
                        u64::try_from(n).map_err(|_| {
                            StoreError::Backend(format!("a negative feed position: {n}").into())
                        })
                    };
                    Ok::<_, StoreError>(crate::feed::Cursor::new(
                        unsigned(epoch)?,
                        unsigned(position)?,
                    ))
                };
                let mut changes = Vec::with_capacity(rows.len());
                for row in &rows {
                    let event: Option<String> = row.try_get(2).map_err(sql::database)?;
                    match event {
                        Some(json) => changes.push(crate::feed::Change {
                            cursor: cursor(row)?,
                            event: sql::from_json(&json, "event")?,
                        }),
                        // Nothing after the cursor: it may lie past the end, not from
                        // this store.
                        None => crate::ports::check_cursor(&after, Some(cursor(row)?))?,
                    }
                }
                if rows.is_empty() {
                    crate::ports::check_cursor(&after, None)?;
                }
                Ok(changes)
            }

            async fn page_subscriptions(
                &self,
                after: Option<&SubscriptionId>,
                limit: usize,
            ) -> Result<Vec<Subscription>, StoreError> {
                let query = match after {
                    None => sqlx::query(sql::PAGE_FIRST),
                    Some(after) => sqlx::query(sql::PAGE_AFTER).bind(after.as_str()),
                };
                let rows = self
                    .fetch_all(sql::Side::Reads, query.bind(sql::limit(limit)))
                    .await?;
                rows.iter().map(decode_row).collect()
            }

            async fn import_subscriptions(
                &self,
                batch: Vec<(Subscription, Vec<AssociationEvent>)>,
            ) -> Result<(), StoreError> {
                // Check and encode everything before touching the database.
                let mut rows = Vec::with_capacity(batch.len());
                for (subscription, history) in &batch {
                    crate::ports::check_history(subscription, history)?;
                    let events = history
                        .iter()
                        .map(|e| Ok((sql::to_i64(e.sequence)?, sql::to_json(e)?)))
                        .collect::<Result<Vec<_>, StoreError>>()?;
                    rows.push((subscription, insert_subscription(subscription)?, events));
                }
                let mut tx = begin_write(self.writer()).await?;
                for (subscription, insert, events) in rows {
                    let inserted = insert.execute(&mut *tx).await.map_err(sql::database)?;
                    if inserted.rows_affected() == 0 {
                        // Dropping `tx` rolls the batch back.
                        return Err(StoreError::AlreadyExists(subscription.id().clone()));
                    }
                    for (sequence, event) in events {
                        sqlx::query(sql::INSERT_EVENT)
                            .bind(subscription.id().as_str())
                            .bind(sequence)
                            .bind(event)
                            .execute(&mut *tx)
                            .await
                            .map_err(sql::database)?;
                    }
                }
                tx.commit().await.map_err(sql::database)
            }
        }

        #[async_trait]
        impl Outbox for $name {
            async fn claim(
                &self,
                which: Claim<'_>,
                now: time::OffsetDateTime,
                lease: time::Duration,
                limit: usize,
            ) -> Result<Vec<OutboxEntry>, StoreError> {
                let until = sql::until(now, lease);
                let mut ids: Vec<Option<&str>> = match which {
                    Claim::Due => vec![None],
                    Claim::Only(ids) => ids.iter().map(|id| Some(id.as_str())).collect(),
                };
                // An id given twice is claimed once (with no lease left, a second
                // statement would claim it again and answer it twice).
                let mut asked = std::collections::HashSet::new();
                ids.retain(|id| asked.insert(*id));
                // Fewer to claim than asked for: the oldest first, as in memory.
                if matches!(which, Claim::Only(_)) && ids.len() > limit && limit > 0 {
                    let given: Vec<&str> = ids.iter().flatten().copied().collect();
                    let order = self.oldest_first(&given).await?;
                    let rank: std::collections::HashMap<&str, usize> = order
                        .iter()
                        .enumerate()
                        .map(|(i, id)| (id.as_str(), i))
                        .collect();
                    // Those not stored claim nothing: last.
                    ids.sort_by_key(|id| {
                        id.and_then(|id| rank.get(id).copied())
                            .unwrap_or(usize::MAX)
                    });
                }
                let mut claimed = Vec::new();
                let at = sql::micros(now);
                for id in ids {
                    if claimed.len() >= limit {
                        break;
                    }
                    let left = sql::limit(limit - claimed.len());
                    let rows = match id {
                        None => {
                            let claim = sql::InOrder::ClaimDue {
                                until,
                                now: at,
                                limit: left,
                            };
                            self.in_order(claim).await?
                        }
                        Some(id) => {
                            let query = sqlx::query($claim_only).bind(until).bind(at);
                            let query = query.bind(left).bind(id);
                            self.fetch_all(sql::Side::Writes, query).await?
                        }
                    };
                    for row in &rows {
                        // A row that does not decode (a hand edit, a kind of email
                        // only a newer release knows) is traced and left claimed
                        // until its lease runs out, for a release that reads it:
                        // it holds back none of the others.
                        match decode_entry(row) {
                            Ok(entry) => claimed.push(entry),
                            Err(error) => crate::trace::claimed_unreadable(&error),
                        }
                    }
                }
                claimed.sort_unstable_by_key(|e: &OutboxEntry| e.position);
                Ok(claimed)
            }

            async fn mark_delivered(&self, ids: &[NotificationId]) -> Result<(), StoreError> {
                if ids.is_empty() {
                    return Ok(());
                }
                self.mark_all_delivered(ids).await
            }

            async fn record_failure(&self, failure: &Failure) -> Result<(), StoreError> {
                let query = match failure.next {
                    AfterFailure::RetryAt(at) => sqlx::query(sql::RECORD_RETRY)
                        .bind(failure.id.as_str())
                        .bind(i64::from(failure.attempts))
                        .bind(failure.error.as_str())
                        .bind(sql::micros(failure.at))
                        .bind(sql::micros(at))
                        .bind(failure.claimed_until.map(sql::micros)),
                    AfterFailure::DeadLetter => sqlx::query(sql::RECORD_DEAD)
                        .bind(failure.id.as_str())
                        .bind(i64::from(failure.attempts))
                        .bind(failure.error.as_str())
                        .bind(sql::micros(failure.at))
                        .bind(failure.claimed_until.map(sql::micros)),
                };
                self.execute(sql::Side::Writes, query).await?;
                Ok(())
            }

            async fn pending_notifications(
                &self,
                limit: usize,
            ) -> Result<Vec<Notification>, StoreError> {
                let limit = sql::limit(limit);
                let rows = self.in_order(sql::InOrder::Pending { limit }).await?;
                rows.iter()
                    .map(|row| json_column(row, "notification"))
                    .collect()
            }

            async fn dead_letters(
                &self,
                after: Option<u64>,
                limit: usize,
            ) -> Result<Vec<OutboxEntry>, StoreError> {
                self.fetch_entries(true, after, limit).await
            }

            async fn redrive(
                &self,
                id: &NotificationId,
                now: time::OffsetDateTime,
            ) -> Result<bool, StoreError> {
                let done = self
                    .execute(
                        sql::Side::Writes,
                        sqlx::query(sql::REDRIVE)
                            .bind(id.as_str())
                            .bind(sql::micros(now)),
                    )
                    .await?;
                Ok(done > 0)
            }

            async fn page_outbox(
                &self,
                after: Option<u64>,
                limit: usize,
            ) -> Result<Vec<OutboxEntry>, StoreError> {
                self.fetch_entries(false, after, limit).await
            }

            async fn import_outbox(&self, entries: Vec<OutboxEntry>) -> Result<(), StoreError> {
                let rows = entries
                    .iter()
                    .map(|e| Ok((e, sql::to_json(&e.notification)?)))
                    .collect::<Result<Vec<_>, StoreError>>()?;
                let mut tx = begin_write(self.writer()).await?;
                for (entry, json) in rows {
                    let n = &entry.notification;
                    let inserted = sqlx::query(sql::IMPORT_NOTIFICATION)
                        .bind(n.id.as_str())
                        .bind(json)
                        .bind(n.subscription.as_str())
                        .bind(n.partner.as_str())
                        .bind(sql::status_text(entry.status))
                        .bind(i64::from(entry.attempts))
                        .bind(entry.last_error.as_deref())
                        .bind(entry.last_attempt_at.map(sql::micros))
                        .bind(sql::micros(entry.next_attempt_at))
                        .execute(&mut *tx)
                        .await
                        .map_err(sql::database)?;
                    if inserted.rows_affected() == 0 {
                        return Err(StoreError::InvalidCommit {
                            subscription: n.subscription.clone(),
                            reason: format!("notification {} is stored already", n.id),
                        });
                    }
                }
                tx.commit().await.map_err(sql::database)
            }
        }
    };
}

pub(crate) use sql_repository;
