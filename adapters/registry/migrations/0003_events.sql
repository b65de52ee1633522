-- The event log: one envelope per change of a record, whichever way the change happened (a
-- mutation through the gateway, or a hospital's own system writing its exchange database). An
-- envelope names the record and its version, never its content: no clinical value, no pseudonym.
--
-- Cursors are taken from the sequence while holding the append lock (see EventStore.append), so
-- they are committed in increasing order: a reader that has seen cursor N has seen every event
-- below N that will ever exist.
CREATE SEQUENCE event_log_cursor;

CREATE TABLE event_log (
    cursor          bigint PRIMARY KEY,
    alliance_id     text NOT NULL REFERENCES alliance (id),
    type            text NOT NULL,
    members         text[] NOT NULL,
    entity_type     text NOT NULL,
    entity_id       text NOT NULL,
    entity_version  integer NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- How it reached the log: GATEWAY (a mutation), WATCHER (seen at the hospital), REGISTRY.
    detected_by     text NOT NULL CHECK (detected_by IN ('GATEWAY', 'WATCHER', 'REGISTRY')),
    UNIQUE (alliance_id, entity_id, entity_version, type)
);
CREATE INDEX event_log_recorded ON event_log (recorded_at);

-- The highest cursor removed by retention: resuming below it would miss events.
CREATE TABLE event_log_horizon (
    alliance_id     text PRIMARY KEY REFERENCES alliance (id),
    pruned_through  bigint NOT NULL
);

-- How far the change watcher has read each member's table, by the rows' updated_at.
CREATE TABLE change_watermark (
    alliance_id     text NOT NULL REFERENCES alliance (id),
    member          text NOT NULL,
    source_table    text NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (alliance_id, member, source_table)
);
