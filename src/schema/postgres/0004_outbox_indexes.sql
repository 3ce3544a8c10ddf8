-- dpor schema step 4, "outbox_indexes", for PostgreSQL (SQLite records the step and
-- changes nothing: see there): each of the outbox's two partial indexes of pending
-- notifications is given to the statements it serves, and to no other. Their
-- predicates were the same, `status = 'pending'`, so the planner could answer "is a
-- notification of this pair pending?" (asked by every commit and every claim) from
-- `dpor_outbox_due`, and did once its statistics said that few rows were pending,
-- which is the normal state of an outbox. But a partial index of pending rows keeps an
-- entry for every notification delivered since the table was last vacuumed, so that
-- lookup read them all: its cost grew with the deliveries.
--
-- Each predicate now also names a column that is never NULL and that only its own
-- statements compare: `next_attempt_at` for `dpor_outbox_due` (the claim of what is
-- due, `next_attempt_at <= now`; the list of pending notifications), `recipient` for
-- `dpor_outbox_by_pair` (`recipient = ...`). The rows they hold are the same as before.
DROP INDEX dpor_outbox_due;
CREATE INDEX dpor_outbox_due ON dpor_outbox (position)
    WHERE status = 'pending' AND next_attempt_at IS NOT NULL;
DROP INDEX dpor_outbox_by_pair;
CREATE INDEX dpor_outbox_by_pair ON dpor_outbox (subscription, recipient, position)
    WHERE status = 'pending' AND recipient IS NOT NULL;
INSERT INTO dpor_schema (version, name) VALUES (4, 'outbox_indexes');
