-- dpor schema step 2, "delivery", for PostgreSQL: the outbox keeps each notification's
-- delivery state (attempts, last error, next attempt, dead letters) and the claims of
-- the dispatchers, and knows the (subscription, recipient partner) pair it orders by.
-- Times are Unix microseconds. The `delivered` flag becomes `status`.
ALTER TABLE dpor_outbox
    ADD COLUMN subscription TEXT COLLATE "C",
    ADD COLUMN recipient TEXT COLLATE "C",
    ADD COLUMN status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'dead')),
    ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN last_error TEXT,
    ADD COLUMN last_attempt_at BIGINT,
    ADD COLUMN next_attempt_at BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN claimed_until BIGINT;
UPDATE dpor_outbox SET
    subscription = notification::json ->> 'subscription',
    recipient = notification::json ->> 'partner',
    status = CASE WHEN delivered THEN 'delivered' ELSE 'pending' END;
ALTER TABLE dpor_outbox
    ALTER COLUMN subscription SET NOT NULL,
    ALTER COLUMN recipient SET NOT NULL;
DROP INDEX dpor_outbox_pending;
ALTER TABLE dpor_outbox DROP COLUMN delivered;
CREATE INDEX dpor_outbox_due ON dpor_outbox (position) WHERE status = 'pending';
CREATE INDEX dpor_outbox_by_pair ON dpor_outbox (subscription, recipient, position)
    WHERE status = 'pending';
CREATE INDEX dpor_outbox_dead ON dpor_outbox (position) WHERE status = 'dead';
INSERT INTO dpor_schema (version, name) VALUES (2, 'delivery');
