-- dpor schema, version 1, for PostgreSQL. Applied by `PostgresRepository::migrate`.
-- The JSON columns hold the records in the crate's wire format; the other columns
-- are what the store indexes, compares and orders by. Text keys use the "C"
-- collation, so that "ordered by id" is the byte order Rust's `str` uses.
CREATE TABLE IF NOT EXISTS dpor_subscriptions (
    id       TEXT COLLATE "C" NOT NULL PRIMARY KEY,  -- one row per subscription
    customer TEXT COLLATE "C" NOT NULL,
    partner  TEXT COLLATE "C",                       -- its partner of record: one at most
    version  BIGINT NOT NULL CHECK (version >= 0),
    record   TEXT   NOT NULL                         -- the Subscription
);
CREATE INDEX IF NOT EXISTS dpor_subscriptions_by_customer ON dpor_subscriptions (customer, id);
CREATE INDEX IF NOT EXISTS dpor_subscriptions_by_partner ON dpor_subscriptions (partner, id)
    WHERE partner IS NOT NULL;

CREATE TABLE IF NOT EXISTS dpor_events (
    subscription TEXT COLLATE "C" NOT NULL REFERENCES dpor_subscriptions (id),
    sequence     BIGINT NOT NULL CHECK (sequence >= 1),
    event        TEXT   NOT NULL,                    -- the AssociationEvent
    PRIMARY KEY (subscription, sequence)
);

CREATE TABLE IF NOT EXISTS dpor_outbox (
    position     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- commit order
    id           TEXT COLLATE "C" NOT NULL UNIQUE,
    notification TEXT    NOT NULL,                   -- the Notification
    delivered    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX IF NOT EXISTS dpor_outbox_pending ON dpor_outbox (position) WHERE NOT delivered;
