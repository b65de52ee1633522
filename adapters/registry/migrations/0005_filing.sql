-- Filing (备案) with the provincial alliance office (seed 003, Annex 2): each application with
-- the form as drafted (a snapshot of the registry then: members, agreements, charter; no patient
-- data), and each opinion on it, in order. The alliance's own filing_status / filing_number stay
-- the filing in force: a re-filing replaces them only when it is decided FILED.
CREATE TABLE filing_application (
    id                          bigserial PRIMARY KEY,
    alliance_id                 text NOT NULL REFERENCES alliance (id),
    attempt                     integer NOT NULL CHECK (attempt > 0),
    status                      text NOT NULL CHECK (status IN (
                                    'AWAITING_LEAD_HOSPITAL_OPINION', 'AWAITING_MUNICIPAL_OPINION',
                                    'AWAITING_ASSESSMENT', 'AWAITING_DECISION', 'FILED', 'REJECTED')),
    municipal_opinion_required  boolean NOT NULL,
    form                        jsonb NOT NULL,
    number                      text UNIQUE,
    rejection_reason            text,
    drafted_at                  timestamptz NOT NULL,
    decided_at                  timestamptz,
    UNIQUE (alliance_id, attempt),
    CHECK (status <> 'FILED' OR number IS NOT NULL),
    CHECK (status <> 'REJECTED' OR rejection_reason IS NOT NULL)
);
-- One application under way per alliance at a time.
CREATE UNIQUE INDEX filing_application_open ON filing_application (alliance_id)
    WHERE status NOT IN ('FILED', 'REJECTED');

CREATE TABLE filing_step (
    id              bigserial PRIMARY KEY,
    application_id  bigint NOT NULL REFERENCES filing_application (id),
    step            text NOT NULL CHECK (step IN (
                        'DRAFTED', 'LEAD_HOSPITAL_OPINION', 'MUNICIPAL_OPINION',
                        'ASSESSMENT_OPINION', 'DECISION')),
    role            text NOT NULL,
    subject         text NOT NULL,
    hospital_code   text,
    -- Whose opinion it is when the recorder transcribes it (the municipal commission's name).
    authority       text,
    favourable      boolean,
    opinion         text,
    at              timestamptz NOT NULL,
    UNIQUE (application_id, step)
);

CREATE UNIQUE INDEX alliance_filing_number ON alliance (filing_number)
    WHERE filing_number IS NOT NULL;
