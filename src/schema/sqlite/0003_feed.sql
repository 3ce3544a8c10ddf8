-- dpor schema step 3, "feed", for SQLite: every event gets its position in the change
-- feed. SQLite writes one transaction at a time, so a position taken in a write
-- transaction is commit order: `position` is an INTEGER PRIMARY KEY (the rowid, which
-- VACUUM keeps), and a new event takes the next one. The events already stored keep
-- the order they were written in (the old rowid order).
CREATE TABLE dpor_events_by_position (
    position     INTEGER NOT NULL PRIMARY KEY,
    subscription TEXT    NOT NULL REFERENCES dpor_subscriptions (id),
    sequence     INTEGER NOT NULL CHECK (sequence >= 1),
    event        TEXT    NOT NULL,          -- the AssociationEvent
    UNIQUE (subscription, sequence)
);
INSERT INTO dpor_events_by_position (subscription, sequence, event)
    SELECT subscription, sequence, event FROM dpor_events ORDER BY rowid;
DROP TABLE dpor_events;
ALTER TABLE dpor_events_by_position RENAME TO dpor_events;
INSERT INTO dpor_schema (version, name) VALUES (3, 'feed');
