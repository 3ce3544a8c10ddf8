-- dpor schema step 4, "outbox_indexes", for SQLite: nothing to change; the step is
-- recorded so that a schema version means the same on both stores. PostgreSQL's step
-- 4 gives each partial index of pending notifications a predicate that only its own
-- statements meet, because its planner chose between them by statistics that say
-- nothing is pending. SQLite's planner ranks an index by the terms of the statement
-- it can use (a pair's lookup uses two, the claim of what is due none), so it finds
-- each statement's index with the predicates of step 2, and the statements' extra
-- terms (`position > 0`, `recipient > ''`) leave those predicates met.
INSERT INTO dpor_schema (version, name) VALUES (4, 'outbox_indexes');
