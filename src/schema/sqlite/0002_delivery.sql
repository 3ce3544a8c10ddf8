-- dpor schema step 2, "delivery", for SQLite: the outbox keeps each notification's
-- delivery state (attempts, last error, next attempt, dead letters) and the claims of
-- the dispatchers, and knows the (subscription, recipient partner) pair it orders by.
-- Times are Unix microseconds. The `delivered` flag becomes `status`.
ALTER TABLE dpor_outbox ADD COLUMN subscription TEXT;
ALTER TABLE dpor_outbox ADD COLUMN recipient TEXT;
ALTER TABLE dpor_outbox ADD COLUMN status TEXT NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'delivered', 'dead'));
ALTER TABLE dpor_outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE dpor_outbox ADD COLUMN last_error TEXT;
ALTER TABLE dpor_outbox ADD COLUMN last_attempt_at INTEGER;
ALTER TABLE dpor_outbox ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE dpor_outbox ADD COLUMN claimed_until INTEGER;
UPDATE dpor_outbox SET
    subscription = json_extract(notification, '$.subscription'),
    recipient = json_extract(notification, '$.partner'),
    status = CASE WHEN delivered THEN 'delivered' ELSE 'pending' END;
DROP INDEX dpor_outbox_pending;
ALTER TABLE dpor_outbox DROP COLUMN delivered;
CREATE INDEX dpor_outbox_due ON dpor_outbox (position) WHERE status = 'pending';
CREATE INDEX dpor_outbox_by_pair ON dpor_outbox (subscription, recipient, position)
    WHERE status = 'pending';
CREATE INDEX dpor_outbox_dead ON dpor_outbox (position) WHERE status = 'dead';
INSERT INTO dpor_schema (version, name) VALUES (2, 'delivery');
