-- dpor schema step 1, "initial", for PostgreSQL: the schema of 0.1.0. Applied by `migrate()`
-- or by the host's own migration tool (`dpor::schema::steps`); it records itself in
-- dpor_schema, so the stores know the version either way.
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

-- The applied steps. A database without this table but with dpor_subscriptions was
-- written by 0.1.0, which had no versions: it is at step 1.
CREATE TABLE IF NOT EXISTS dpor_schema (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO dpor_schema (version, name) VALUES (1, 'initial');
