-- The alliance office's own data. No clinical records, no patient identifiers.

CREATE TABLE alliance (
    id                 text PRIMARY KEY,
    name               text NOT NULL,
    specialty          text NOT NULL,
    level              text NOT NULL CHECK (level IN ('PROVINCIAL', 'MUNICIPAL', 'REGIONAL', 'CROSS_PROVINCIAL')),
    form               text NOT NULL CHECK (form IN ('LOOSE', 'CLOSE')),
    lead_hospital_code text NOT NULL,
    lead_department    text NOT NULL,
    discipline_leader  text NOT NULL,
    founded_on         date NOT NULL,
    charter_version    text NOT NULL,
    development_plan   text,
    filing_status      text NOT NULL CHECK (filing_status IN ('APPLIED', 'UNDER_REVIEW', 'FILED', 'REJECTED')),
    filing_number      text,
    standing           text NOT NULL DEFAULT 'GOOD'
                       CHECK (standing IN ('GOOD', 'YELLOW_CARD', 'ORDERED_TO_DISSOLVE', 'DISSOLVED')),
    CHECK (filing_status <> 'FILED' OR filing_number IS NOT NULL)
);

CREATE TABLE hospital (
    code                 text PRIMARY KEY,
    name                 text NOT NULL,
    credit_code          char(18) NOT NULL UNIQUE,
    grade                text NOT NULL
                         CHECK (grade IN ('GRADE_3A', 'GRADE_3B', 'GRADE_2A', 'GRADE_2B', 'GRADE_1', 'UNGRADED')),
    ownership            text NOT NULL CHECK (ownership IN ('PUBLIC', 'PRIVATE')),
    type                 text NOT NULL CHECK (type IN ('GENERAL', 'TCM', 'SPECIALTY', 'COMMUNITY', 'TOWNSHIP')),
    division_code        char(6) NOT NULL,
    address              text,
    licence_number       text,
    licence_valid_until  date,
    authorised_beds      integer CHECK (authorised_beds >= 0),
    open_beds            integer CHECK (open_beds >= 0),
    staff_total          integer CHECK (staff_total >= 0),
    medical_staff        integer CHECK (medical_staff >= 0),
    management_staff     integer CHECK (management_staff >= 0),
    specialty_ward       text,
    specialty_beds       integer NOT NULL DEFAULT 0 CHECK (specialty_beds >= 0),
    contact_name         text NOT NULL,
    contact_phone        text NOT NULL
);

CREATE TABLE membership (
    alliance_id        text NOT NULL REFERENCES alliance (id),
    hospital_code      text NOT NULL REFERENCES hospital (code),
    role               text NOT NULL CHECK (role IN ('LEAD', 'BACKBONE', 'MEMBER')),
    status             text NOT NULL CHECK (status IN ('ACTIVE', 'WITHDRAWN', 'EXPELLED')),
    joined_on          date NOT NULL,
    plaque_granted_on  date,
    left_on            date,
    exit_reason        text,
    PRIMARY KEY (alliance_id, hospital_code)
);

CREATE TABLE council_seat (
    id             bigserial PRIMARY KEY,
    alliance_id    text NOT NULL REFERENCES alliance (id),
    role           text NOT NULL CHECK (role IN ('CHAIR', 'VICE_CHAIR', 'STANDING_MEMBER', 'SECRETARY')),
    holder_name    text NOT NULL,
    holder_title   text,
    hospital_code  text NOT NULL REFERENCES hospital (code),
    since          date NOT NULL
);
CREATE INDEX council_seat_alliance ON council_seat (alliance_id);

CREATE TABLE council_resolution (
    id           bigserial PRIMARY KEY,
    alliance_id  text NOT NULL REFERENCES alliance (id),
    number       text NOT NULL,
    adopted_on   date NOT NULL,
    subject      text NOT NULL
                 CHECK (subject IN ('ADMIT_MEMBER', 'TERMINATE_AGREEMENT', 'EXPEL_MEMBER', 'AMEND_CHARTER', 'OTHER')),
    summary      text NOT NULL,
    UNIQUE (alliance_id, number)
);

CREATE TABLE membership_application (
    id                  bigserial PRIMARY KEY,
    alliance_id         text NOT NULL REFERENCES alliance (id),
    hospital_code       text NOT NULL REFERENCES hospital (code),
    status              text NOT NULL
                        CHECK (status IN ('SUBMITTED', 'REVIEW_PASSED', 'APPROVED', 'REJECTED', 'SIGNED')),
    submitted_at        timestamptz NOT NULL DEFAULT now(),
    submitted_by        text NOT NULL,
    reviewed_at         timestamptz,
    reviewed_by         text,
    review_note         text,
    due_diligence       text[] NOT NULL DEFAULT '{}',
    decided_at          timestamptz,
    decided_by          text,
    decision_note       text,
    resolution_id       bigint REFERENCES council_resolution (id)
);
-- One open application per hospital and alliance at a time.
CREATE UNIQUE INDEX membership_application_open
    ON membership_application (alliance_id, hospital_code)
    WHERE status IN ('SUBMITTED', 'REVIEW_PASSED', 'APPROVED');

CREATE TABLE agreement (
    id                  bigserial PRIMARY KEY,
    alliance_id         text NOT NULL REFERENCES alliance (id),
    party_a_code        text NOT NULL REFERENCES hospital (code),
    party_b_code        text NOT NULL REFERENCES hospital (code),
    application_id      bigint REFERENCES membership_application (id),
    renews_id           bigint REFERENCES agreement (id),
    signed_on           date NOT NULL,
    term_years          integer NOT NULL CHECK (term_years > 0),
    effective_on        date NOT NULL,
    expires_on          date NOT NULL CHECK (expires_on > effective_on),
    -- Only the outcomes a person decides are stored; ACTIVE / EXPIRING / EXPIRED follow from the dates.
    closed_as           text CHECK (closed_as IN ('TERMINATED', 'RENEWED')),
    closed_on           date,
    termination_reason  text,
    termination_note    text
);
CREATE INDEX agreement_party_b ON agreement (alliance_id, party_b_code, effective_on DESC);
