-- dpor schema, version 1, for SQLite. Applied by `SqliteRepository::migrate`.
-- The JSON columns hold the records in the crate's wire format; the other columns
-- are what the store indexes, compares and orders by.
CREATE TABLE IF NOT EXISTS dpor_subscriptions (
    id       TEXT    NOT NULL PRIMARY KEY,  -- one row per subscription
    customer TEXT    NOT NULL,
    partner  TEXT,                          -- its partner of record: one at most
    version  INTEGER NOT NULL CHECK (version >= 0),
    record   TEXT    NOT NULL               -- the Subscription
);
CREATE INDEX IF NOT EXISTS dpor_subscriptions_by_customer ON dpor_subscriptions (customer, id);
CREATE INDEX IF NOT EXISTS dpor_subscriptions_by_partner ON dpor_subscriptions (partner, id)
    WHERE partner IS NOT NULL;

CREATE TABLE IF NOT EXISTS dpor_events (
    subscription TEXT    NOT NULL REFERENCES dpor_subscriptions (id),
    sequence     INTEGER NOT NULL CHECK (sequence >= 1),
    event        TEXT    NOT NULL,          -- the AssociationEvent
    PRIMARY KEY (subscription, sequence)
);

CREATE TABLE IF NOT EXISTS dpor_outbox (
    position     INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,  -- commit order
    id           TEXT    NOT NULL UNIQUE,
    notification TEXT    NOT NULL,          -- the Notification
    delivered    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX IF NOT EXISTS dpor_outbox_pending ON dpor_outbox (position) WHERE NOT delivered;
