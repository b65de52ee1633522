-- The semi-annual work reports (每半年报送工作情况总结) the alliance office sends the provincial office
-- (seed 003). A half year has a row once the office writes its narrative or submits it. Submitting
-- keeps the counts as they were sent (per hospital, never a patient) and the deadline then in force,
-- so that a submitted report reads the same whatever the members' data or the rules become.
CREATE TABLE work_report (
    alliance_id        text NOT NULL REFERENCES alliance (id),
    year               integer NOT NULL CHECK (year BETWEEN 2000 AND 9999),
    half               smallint NOT NULL CHECK (half IN (1, 2)),
    narrative          text NOT NULL DEFAULT '',
    narrative_by       text,
    narrative_at       timestamptz,
    status             text NOT NULL DEFAULT 'DRAFT' CHECK (status IN ('DRAFT', 'SUBMITTED')),
    submitted_at       timestamptz,
    submitted_by       text,
    due_on             date,
    counts             jsonb,
    PRIMARY KEY (alliance_id, year, half),
    CHECK ((status = 'SUBMITTED') = (submitted_at IS NOT NULL AND counts IS NOT NULL
                                     AND due_on IS NOT NULL))
);
