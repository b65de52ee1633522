-- The annual assessment (绩效考核, seed 001 Annex 4) as the alliance office and the provincial
-- office keep it: the assessors' scores of the qualitative indicators, the QC centre's results per
-- member, and each concluded year's fixed result. Counts per hospital only, never a patient.
CREATE TABLE assessment (
    alliance_id      text NOT NULL REFERENCES alliance (id),
    year             integer NOT NULL CHECK (year BETWEEN 2000 AND 2999),
    status           text NOT NULL DEFAULT 'IN_PROGRESS'
                     CHECK (status IN ('IN_PROGRESS', 'CONCLUDED')),
    total_score      numeric(6, 2),
    pass_mark        numeric(5, 2),
    passed           boolean,
    standing_before  text,
    standing_after   text,
    concluded_at     timestamptz,
    concluded_by     text,
    -- What was concluded, as read then: a concluded year is shown from here, never recomputed.
    snapshot         jsonb,
    PRIMARY KEY (alliance_id, year),
    CHECK ((status = 'CONCLUDED') = (snapshot IS NOT NULL AND passed IS NOT NULL
                                     AND concluded_at IS NOT NULL))
);

-- An assessor's score of one qualitative (A) indicator; scoring again replaces it.
CREATE TABLE assessment_score (
    alliance_id  text NOT NULL,
    year         integer NOT NULL,
    indicator    smallint NOT NULL CHECK (indicator BETWEEN 1 AND 31),
    score        numeric(5, 2) NOT NULL CHECK (score >= 0),
    comment      text NOT NULL,
    assessor     text NOT NULL,
    evidence     jsonb NOT NULL DEFAULT '[]',
    recorded_by  text NOT NULL,
    recorded_at  timestamptz NOT NULL,
    PRIMARY KEY (alliance_id, year, indicator),
    FOREIGN KEY (alliance_id, year) REFERENCES assessment (alliance_id, year)
);

-- The provincial specialty QC centre's result for one member (indicator 25, kind E).
CREATE TABLE assessment_qc_result (
    alliance_id    text NOT NULL,
    year           integer NOT NULL,
    hospital_code  text NOT NULL REFERENCES hospital (code),
    passed         boolean NOT NULL,
    qc_score       numeric(6, 2),
    comment        text,
    evidence       jsonb NOT NULL DEFAULT '[]',
    recorded_by    text NOT NULL,
    recorded_at    timestamptz NOT NULL,
    PRIMARY KEY (alliance_id, year, hospital_code),
    FOREIGN KEY (alliance_id, year) REFERENCES assessment (alliance_id, year)
);
