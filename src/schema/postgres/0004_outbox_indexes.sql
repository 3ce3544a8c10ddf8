-- dpor schema step 4, "outbox_indexes", for PostgreSQL (SQLite records the step and
-- changes nothing: see there): each of the outbox's two partial indexes of pending
-- notifications is given to the statements it serves, and to no other.
--
-- Their predicates were the same, `status = 'pending'`. A partial index of pending
-- rows keeps an entry for every notification delivered since the table was last
-- vacuumed, and once its statistics said that few rows were pending (the normal state
-- of an outbox, right after any ANALYZE), the planner took either index as free: it
-- answered "is a notification of this pair pending?" (asked by every commit and every
-- claim) and the statements that find a notification by id by reading all those
-- entries (3 ms to mark two emails delivered after 20,000 deliveries; a fifth of the
-- server's time in the 8-client bench of issue 15's fifth round).
--
-- Each predicate now also holds a comparison that is true of every row and that only
-- its own statements repeat: `position > 0` (positions start at 1) for
-- `dpor_outbox_due` (what is due, in order: the claim and the list of pending
-- notifications), `recipient > ''` (an MPN ID is never empty) for
-- `dpor_outbox_by_pair` (a pair's pending notifications). A partial index serves a
-- statement whose terms imply its predicate, and neither term follows from the
-- other's, nor from anything else the statements say. The statements that find a
-- notification by id test its status in a form that implies neither predicate
-- (`status NOT IN ('delivered', 'dead')`). Not `column IS NOT NULL` on these NOT NULL
-- columns: PostgreSQL 17 and 18 drop that term from a statement, and 19 from an
-- index's predicate. The rows the two indexes hold are the same as before.
--
-- Applying it locks the outbox, for reads too, while the two indexes are built (each
-- build reads the table once).
DROP INDEX dpor_outbox_due;
CREATE INDEX dpor_outbox_due ON dpor_outbox (position)
    WHERE status = 'pending' AND position > 0;
DROP INDEX dpor_outbox_by_pair;
CREATE INDEX dpor_outbox_by_pair ON dpor_outbox (subscription, recipient, position)
    WHERE status = 'pending' AND recipient > '';
INSERT INTO dpor_schema (version, name) VALUES (4, 'outbox_indexes');
