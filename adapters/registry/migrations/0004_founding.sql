-- What `alliance-gateway init` registered for an alliance: its founding (record, lead hospital,
-- council, founding members and agreements) as JSON values, so that running it again can tell the
-- same founding (nothing to do) from a different one (refused, saying what differs).
CREATE TABLE alliance_founding (
    alliance_id    text PRIMARY KEY REFERENCES alliance (id),
    plan           jsonb NOT NULL,
    registered_at  timestamptz NOT NULL DEFAULT now()
);
