-- The audit trail of patient-level access (IHE ATNA's who / what / why), never clinical values:
-- patients appear only as the alliance pseudonym.
CREATE TABLE audit_event (
    id              bigserial PRIMARY KEY,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    subject         text NOT NULL,
    hospital_code   text,
    roles           text[] NOT NULL,
    purpose         text,
    operation       text NOT NULL,
    action          text NOT NULL CHECK (action IN ('READ', 'WRITE')),
    patients        text[] NOT NULL DEFAULT '{}',
    members_asked   text[] NOT NULL DEFAULT '{}',
    members_failed  text[] NOT NULL DEFAULT '{}',
    outcome         text NOT NULL CHECK (outcome IN ('SUCCESS', 'PARTIAL', 'FAILURE', 'DENIED'))
);
CREATE INDEX audit_event_time ON audit_event (occurred_at DESC, id DESC);
CREATE INDEX audit_event_patients ON audit_event USING gin (patients);
