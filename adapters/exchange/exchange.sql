-- The exchange database (前置机) contract, version 1.
--
-- A member hospital runs this schema inside its own network and fills it from its HIS, LIS and
-- PACS. The alliance gateway reads it at request time and writes only the rows the alliance's
-- workflows create (a referral it sends, a consultation it requests, a recognition decision its
-- clinician makes). Patients appear only as the alliance pseudonym: HMAC-SHA256 of the normalised
-- 18-character resident ID under the alliance's linkage key, hex-encoded. Never a name or an ID.
--
-- Column names may differ at a hospital: the gateway's configuration maps them
-- ([members.columns.<table>] logical = "physical"). Table names are fixed.
-- Every row carries updated_at and version, which the gateway uses for optimistic writes and
-- for change capture.

CREATE TABLE IF NOT EXISTS referral (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    referral_no         text NOT NULL UNIQUE,
    direction           text NOT NULL CHECK (direction IN ('UP', 'DOWN')),
    from_hospital       text NOT NULL,
    from_department     text,
    to_hospital         text NOT NULL,
    to_department       text,
    patient_pseudonym   text NOT NULL,
    patient_sex         text NOT NULL CHECK (patient_sex IN ('MALE', 'FEMALE', 'UNKNOWN')),
    patient_age         integer CHECK (patient_age BETWEEN 0 AND 150),
    diagnosis_code      text NOT NULL,
    diagnosis_name      text NOT NULL,
    reason              text NOT NULL,
    condition_summary   text,
    notes               text,
    urgency             text NOT NULL DEFAULT 'ROUTINE' CHECK (urgency IN ('ROUTINE', 'URGENT', 'EMERGENCY')),
    green_channel       boolean NOT NULL DEFAULT false,
    status              text NOT NULL DEFAULT 'INITIATED'
                        CHECK (status IN ('INITIATED', 'ACCEPTED', 'REJECTED', 'ARRIVED', 'COMPLETED', 'CANCELLED')),
    status_reason       text,
    requested_date      date,
    arrived_at          timestamptz,
    completed_at        timestamptz,
    treatment_result    text,
    discharge_summary   text,
    rehab_advice        text,
    idempotency_key     text UNIQUE,
    created_by          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    version             integer NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS referral_created ON referral (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS referral_to ON referral (to_hospital, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS referral_updated ON referral (updated_at);

CREATE TABLE IF NOT EXISTS consultation (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind                text NOT NULL CHECK (kind IN ('REMOTE_CONSULTATION', 'MDT', 'REMOTE_IMAGING',
                                                      'REMOTE_ECG', 'REMOTE_PATHOLOGY', 'ON_SITE')),
    requesting_hospital text NOT NULL,
    requesting_doctor   text NOT NULL,
    invited_hospital    text NOT NULL,
    department          text,
    patient_pseudonym   text NOT NULL,
    patient_sex         text NOT NULL CHECK (patient_sex IN ('MALE', 'FEMALE', 'UNKNOWN')),
    patient_age         integer CHECK (patient_age BETWEEN 0 AND 150),
    urgency             text NOT NULL DEFAULT 'ROUTINE' CHECK (urgency IN ('ROUTINE', 'URGENT', 'EMERGENCY')),
    purpose             text NOT NULL,
    case_summary        text,
    attached_studies    text[] NOT NULL DEFAULT '{}',
    desired_specialty   text,
    desired_title       text,
    proposed_at         timestamptz,
    consent_obtained    boolean NOT NULL CHECK (consent_obtained),
    status              text NOT NULL DEFAULT 'REQUESTED'
                        CHECK (status IN ('REQUESTED', 'ACCEPTED', 'DECLINED', 'SCHEDULED', 'IN_PROGRESS',
                                          'REPORTED', 'CLOSED', 'CANCELLED')),
    status_reason       text,
    expert_name         text,
    expert_title        text,
    scheduled_at        timestamptz,
    fee_fen             integer CHECK (fee_fen >= 0),
    idempotency_key     text UNIQUE,
    created_by          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    version             integer NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS consultation_created ON consultation (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS consultation_invited ON consultation (invited_hospital, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS consultation_updated ON consultation (updated_at);

CREATE TABLE IF NOT EXISTS consultation_report (
    consultation_id     bigint PRIMARY KEY REFERENCES consultation (id),
    issued_at           timestamptz NOT NULL DEFAULT now(),
    expert_name         text NOT NULL,
    opinion             text NOT NULL,
    signed              boolean NOT NULL DEFAULT true,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    version             integer NOT NULL DEFAULT 1
);

CREATE TABLE IF NOT EXISTS training_event (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind                text NOT NULL CHECK (kind IN ('TRAINING_COURSE', 'LECTURE_TOUR', 'SURGERY_DEMONSTRATION',
                                                      'CLINICAL_TEACHING', 'TEACHING_ROUND', 'REMOTE_TEACHING',
                                                      'CASE_DISCUSSION', 'ACADEMIC_CONFERENCE', 'FREE_CLINIC')),
    host_hospital       text NOT NULL,
    mode                text NOT NULL CHECK (mode IN ('ON_SITE', 'ONLINE')),
    place               text,
    held_on             date NOT NULL,
    topic               text NOT NULL,
    lecturers           text[] NOT NULL DEFAULT '{}',
    credits             numeric(4, 1),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    version             integer NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS training_event_held ON training_event (held_on DESC, id DESC);
CREATE INDEX IF NOT EXISTS training_event_updated ON training_event (updated_at);

CREATE TABLE IF NOT EXISTS training_participation (
    event_id            bigint NOT NULL REFERENCES training_event (id),
    hospital            text NOT NULL,
    participants        integer NOT NULL CHECK (participants >= 0),
    PRIMARY KEY (event_id, hospital)
);

-- 进修: a member's doctor or nurse placed at the host hospital for months. Staff, not patients.
CREATE TABLE IF NOT EXISTS placement (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host_hospital       text NOT NULL,
    home_hospital       text NOT NULL,
    trainee_name        text NOT NULL,
    profession          text NOT NULL CHECK (profession IN ('DOCTOR', 'NURSE', 'TECHNICIAN')),
    department          text NOT NULL,
    supervisor          text,
    starts_on           date NOT NULL,
    ends_on             date NOT NULL CHECK (ends_on >= starts_on),
    fee_waived          boolean NOT NULL DEFAULT true,
    evaluation          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    version             integer NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS placement_starts ON placement (starts_on DESC, id DESC);

-- Results of examinations (检查) and laboratory tests (检验) performed at this hospital.
CREATE TABLE IF NOT EXISTS test_result (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_pseudonym   text NOT NULL,
    item_code           text NOT NULL,
    item_name           text NOT NULL,
    loinc               text,
    category            text NOT NULL CHECK (category IN ('LAB', 'EXAM')),
    value               text NOT NULL,
    unit                text,
    reference_range     text,
    performed_at        timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    version             integer NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS test_result_patient ON test_result (patient_pseudonym, performed_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS test_result_updated ON test_result (updated_at);

-- The lab's quality-control standing per item (室内质控 / 室间质评 passed), by LOINC.
CREATE TABLE IF NOT EXISTS quality_control (
    loinc               text NOT NULL,
    scheme              text NOT NULL,
    valid_from          date NOT NULL,
    valid_until         date NOT NULL CHECK (valid_until >= valid_from),
    PRIMARY KEY (loinc, valid_from)
);

-- A clinician's decision on another hospital's result, stored at the deciding hospital.
CREATE TABLE IF NOT EXISTS recognition_decision (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    result_member       text NOT NULL,
    result_id           text NOT NULL,  -- the result's key at its member, whatever its kind of source
    patient_pseudonym   text NOT NULL,
    loinc               text,
    decided_by          text NOT NULL,
    decision            text NOT NULL CHECK (decision IN ('RECOGNIZED', 'DECLINED')),
    reason              text CHECK (reason IN ('CONDITION_CHANGED', 'RAPIDLY_CHANGING', 'CRITICAL_PROCEDURE',
                                               'EMERGENCY', 'APPRAISAL', 'OTHER', 'PATIENT_REQUEST',
                                               'LAB_FAILED_EQA', 'INTERVAL_TOO_LONG')),
    note                text,
    retest_cost_fen     integer CHECK (retest_cost_fen >= 0),
    decided_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    version             integer NOT NULL DEFAULT 1,
    CHECK (decision = 'RECOGNIZED' OR reason IS NOT NULL),
    CHECK (reason IS DISTINCT FROM 'OTHER' OR note IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS recognition_decision_decided ON recognition_decision (decided_at DESC, id DESC);

-- Part 2: the assessment's figures.
-- What the alliance's annual assessment and work reports count, published by the hospital itself.
-- Totals and counts only: no row names a patient. A database installed before part 2 existed is
-- given just this part (the installer looks for specialty_volume).

-- One row per month of the alliance's specialty (month = its first day), totalled by the HIS.
CREATE TABLE IF NOT EXISTS specialty_volume (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hospital                text NOT NULL,
    month                   date NOT NULL CHECK (extract(day FROM month) = 1),
    outpatient_visits       integer NOT NULL CHECK (outpatient_visits >= 0),
    admissions              integer NOT NULL CHECK (admissions >= 0),
    discharges              integer NOT NULL CHECK (discharges >= 0),
    discharged_bed_days     integer NOT NULL CHECK (discharged_bed_days >= 0),  -- 出院者占用总床日
    occupied_bed_days       integer NOT NULL CHECK (occupied_bed_days >= 0),    -- 实际占用总床日
    open_bed_days           integer NOT NULL CHECK (open_bed_days >= 0),        -- 实际开放总床日
    operations              integer NOT NULL CHECK (operations >= 0),
    grade34_operations      integer NOT NULL CHECK (grade34_operations >= 0),   -- 三、四级手术
    complex_critical_cases  integer NOT NULL CHECK (complex_critical_cases >= 0), -- 疑难危重病例
    outpatient_cost_fen     bigint NOT NULL CHECK (outpatient_cost_fen >= 0),   -- total, all visits
    inpatient_cost_fen      bigint NOT NULL CHECK (inpatient_cost_fen >= 0),    -- total, all discharges
    updated_at              timestamptz NOT NULL DEFAULT now(),
    version                 integer NOT NULL DEFAULT 1,
    UNIQUE (hospital, month)
);
CREATE INDEX IF NOT EXISTS specialty_volume_month ON specialty_volume (month DESC, id DESC);

-- Satisfaction surveys (满意度调查): patients (outpatient, inpatient) and the specialty's staff.
CREATE TABLE IF NOT EXISTS satisfaction_survey (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hospital            text NOT NULL,
    month               date NOT NULL CHECK (extract(day FROM month) = 1),
    population          text NOT NULL CHECK (population IN ('OUTPATIENT', 'INPATIENT', 'STAFF')),
    respondents         integer NOT NULL CHECK (respondents >= 0),
    satisfied           integer NOT NULL CHECK (satisfied >= 0),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    version             integer NOT NULL DEFAULT 1,
    CHECK (satisfied <= respondents),
    UNIQUE (hospital, month, population)
);
CREATE INDEX IF NOT EXISTS satisfaction_survey_month ON satisfaction_survey (month DESC, id DESC);

-- 帮扶: capacity building, recorded by the hospital that holds the record (the helping one, as a
-- rule): staff dispatched (派驻/下沉), one-to-one mentoring (一对一带教), a new technique or project
-- started at the helped hospital (新技术新项目), an on-site tour (巡诊). Staff and titles, no patient.
CREATE TABLE IF NOT EXISTS capacity_activity (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind                text NOT NULL CHECK (kind IN ('DISPATCH', 'MENTORING', 'NEW_TECHNIQUE', 'ON_SITE_TOUR')),
    helping_hospital    text NOT NULL,
    helped_hospital     text NOT NULL,
    title               text NOT NULL,
    started_on          date NOT NULL,
    ended_on            date CHECK (ended_on >= started_on),
    people              integer NOT NULL CHECK (people >= 0),
    idempotency_key     text UNIQUE,
    created_by          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    version             integer NOT NULL DEFAULT 1,
    CHECK (helping_hospital <> helped_hospital)
);
CREATE INDEX IF NOT EXISTS capacity_activity_started ON capacity_activity (started_on DESC, id DESC);
CREATE INDEX IF NOT EXISTS capacity_activity_updated ON capacity_activity (updated_at);
