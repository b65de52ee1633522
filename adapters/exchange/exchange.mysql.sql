-- The exchange database (前置机) contract, version 1, for MySQL 8.0 and MariaDB 10.11.
--
-- The same tables, columns, keys and checks as exchange.sql (PostgreSQL), and the same rules:
-- a member hospital runs it inside its own network and fills it from its HIS, LIS and PACS; the
-- alliance gateway reads it at request time and writes only the rows the alliance's workflows
-- create. Patients appear only as the alliance pseudonym (HMAC-SHA256 of the normalised resident
-- ID under the alliance's linkage key, 64 hex characters). Never a name or an ID.
--
-- Column names may differ at a hospital ([members.columns.<table>] logical = "physical" in the
-- gateway's configuration); table names are fixed. Every row carries updated_at and version, which
-- the gateway uses for optimistic writes and for change capture (by the updated_at watermark:
-- MySQL has no NOTIFY).
--
-- Where the engines differ:
--   * text is VARCHAR where it is a key, compared or indexed, else TEXT; every table is utf8mb4
--     with the binary collation, so that comparisons are exact, as PostgreSQL's text is;
--   * ids are BIGINT AUTO_INCREMENT (a row loaded with an explicit id moves the counter on);
--   * times are TIMESTAMP(6): an instant, whatever the writer's session time zone (as timestamptz;
--     the gateway reads them in UTC). TIMESTAMP ends at 2038-01-19 03:14:07 UTC on MySQL 8 and on
--     MariaDB before 11.5;
--   * updated_at also moves by itself on every UPDATE (ON UPDATE CURRENT_TIMESTAMP(6)), so a
--     hospital writer that forgets it is still seen by change capture; writers should still bump
--     version;
--   * lists (consultation.attached_studies, training_event.lecturers) are JSON arrays of strings;
--   * booleans are BOOLEAN (TINYINT(1)).
--
-- Create it in a database of its own: CREATE DATABASE exchange CHARACTER SET utf8mb4 COLLATE
-- utf8mb4_bin; give the gateway's account SELECT, INSERT, UPDATE on it (nothing else).

CREATE TABLE IF NOT EXISTS referral (
    id                  BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    referral_no         VARCHAR(64) NOT NULL UNIQUE,
    direction           VARCHAR(8) NOT NULL CHECK (direction IN ('UP', 'DOWN')),
    from_hospital       VARCHAR(64) NOT NULL,
    from_department     VARCHAR(255),
    to_hospital         VARCHAR(64) NOT NULL,
    to_department       VARCHAR(255),
    patient_pseudonym   VARCHAR(128) NOT NULL,
    patient_sex         VARCHAR(8) NOT NULL CHECK (patient_sex IN ('MALE', 'FEMALE', 'UNKNOWN')),
    patient_age         INT CHECK (patient_age BETWEEN 0 AND 150),
    diagnosis_code      VARCHAR(32) NOT NULL,
    diagnosis_name      VARCHAR(255) NOT NULL,
    reason              TEXT NOT NULL,
    condition_summary   TEXT,
    notes               TEXT,
    urgency             VARCHAR(16) NOT NULL DEFAULT 'ROUTINE' CHECK (urgency IN ('ROUTINE', 'URGENT', 'EMERGENCY')),
    green_channel       BOOLEAN NOT NULL DEFAULT FALSE,
    status              VARCHAR(16) NOT NULL DEFAULT 'INITIATED'
                        CHECK (status IN ('INITIATED', 'ACCEPTED', 'REJECTED', 'ARRIVED', 'COMPLETED', 'CANCELLED')),
    status_reason       TEXT,
    requested_date      DATE,
    arrived_at          TIMESTAMP(6) NULL DEFAULT NULL,
    completed_at        TIMESTAMP(6) NULL DEFAULT NULL,
    treatment_result    TEXT,
    discharge_summary   TEXT,
    rehab_advice        TEXT,
    idempotency_key     VARCHAR(128) UNIQUE,
    created_by          VARCHAR(255),
    created_at          TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at          TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    version             INT NOT NULL DEFAULT 1,
    INDEX referral_created (created_at, id),
    INDEX referral_from (from_hospital, created_at, id),
    INDEX referral_to (to_hospital, created_at, id),
    INDEX referral_updated (updated_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS consultation (
    id                  BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind                VARCHAR(32) NOT NULL CHECK (kind IN ('REMOTE_CONSULTATION', 'MDT', 'REMOTE_IMAGING',
                                                             'REMOTE_ECG', 'REMOTE_PATHOLOGY', 'ON_SITE')),
    requesting_hospital VARCHAR(64) NOT NULL,
    requesting_doctor   VARCHAR(255) NOT NULL,
    invited_hospital    VARCHAR(64) NOT NULL,
    department          VARCHAR(255),
    patient_pseudonym   VARCHAR(128) NOT NULL,
    patient_sex         VARCHAR(8) NOT NULL CHECK (patient_sex IN ('MALE', 'FEMALE', 'UNKNOWN')),
    patient_age         INT CHECK (patient_age BETWEEN 0 AND 150),
    urgency             VARCHAR(16) NOT NULL DEFAULT 'ROUTINE' CHECK (urgency IN ('ROUTINE', 'URGENT', 'EMERGENCY')),
    purpose             TEXT NOT NULL,
    case_summary        TEXT,
    attached_studies    JSON NOT NULL DEFAULT (JSON_ARRAY()),
    desired_specialty   VARCHAR(255),
    desired_title       VARCHAR(255),
    proposed_at         TIMESTAMP(6) NULL DEFAULT NULL,
    consent_obtained    BOOLEAN NOT NULL CHECK (consent_obtained),
    status              VARCHAR(16) NOT NULL DEFAULT 'REQUESTED'
                        CHECK (status IN ('REQUESTED', 'ACCEPTED', 'DECLINED', 'SCHEDULED', 'IN_PROGRESS',
                                          'REPORTED', 'CLOSED', 'CANCELLED')),
    status_reason       TEXT,
    expert_name         VARCHAR(255),
    expert_title        VARCHAR(255),
    scheduled_at        TIMESTAMP(6) NULL DEFAULT NULL,
    fee_fen             INT CHECK (fee_fen >= 0),
    idempotency_key     VARCHAR(128) UNIQUE,
    created_by          VARCHAR(255),
    created_at          TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at          TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    version             INT NOT NULL DEFAULT 1,
    INDEX consultation_created (created_at, id),
    INDEX consultation_requesting (requesting_hospital, created_at, id),
    INDEX consultation_invited (invited_hospital, created_at, id),
    INDEX consultation_updated (updated_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS consultation_report (
    consultation_id     BIGINT NOT NULL PRIMARY KEY,
    issued_at           TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    expert_name         VARCHAR(255) NOT NULL,
    opinion             TEXT NOT NULL,
    signed              BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at          TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    version             INT NOT NULL DEFAULT 1,
    INDEX consultation_report_updated (updated_at, consultation_id),
    CONSTRAINT consultation_report_consultation FOREIGN KEY (consultation_id) REFERENCES consultation (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS training_event (
    id                  BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind                VARCHAR(32) NOT NULL CHECK (kind IN ('TRAINING_COURSE', 'LECTURE_TOUR', 'SURGERY_DEMONSTRATION',
                                                             'CLINICAL_TEACHING', 'TEACHING_ROUND', 'REMOTE_TEACHING',
                                                             'CASE_DISCUSSION', 'ACADEMIC_CONFERENCE', 'FREE_CLINIC')),
    host_hospital       VARCHAR(64) NOT NULL,
    mode                VARCHAR(16) NOT NULL CHECK (mode IN ('ON_SITE', 'ONLINE')),
    place               VARCHAR(255),
    held_on             DATE NOT NULL,
    topic               VARCHAR(512) NOT NULL,
    lecturers           JSON NOT NULL DEFAULT (JSON_ARRAY()),
    credits             DECIMAL(4, 1),
    created_at          TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at          TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    version             INT NOT NULL DEFAULT 1,
    INDEX training_event_held (held_on, id),
    INDEX training_event_updated (updated_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS training_participation (
    event_id            BIGINT NOT NULL,
    hospital            VARCHAR(64) NOT NULL,
    participants        INT NOT NULL CHECK (participants >= 0),
    PRIMARY KEY (event_id, hospital),
    INDEX training_participation_hospital (hospital, event_id),
    CONSTRAINT training_participation_event FOREIGN KEY (event_id) REFERENCES training_event (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- 进修: a member's doctor or nurse placed at the host hospital for months. Staff, not patients.
CREATE TABLE IF NOT EXISTS placement (
    id                  BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    host_hospital       VARCHAR(64) NOT NULL,
    home_hospital       VARCHAR(64) NOT NULL,
    trainee_name        VARCHAR(255) NOT NULL,
    profession          VARCHAR(16) NOT NULL CHECK (profession IN ('DOCTOR', 'NURSE', 'TECHNICIAN')),
    department          VARCHAR(255) NOT NULL,
    supervisor          VARCHAR(255),
    starts_on           DATE NOT NULL,
    ends_on             DATE NOT NULL,
    fee_waived          BOOLEAN NOT NULL DEFAULT TRUE,
    evaluation          TEXT,
    created_at          TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at          TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    version             INT NOT NULL DEFAULT 1,
    CHECK (ends_on >= starts_on),
    INDEX placement_starts (starts_on, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Results of examinations (检查) and laboratory tests (检验) performed at this hospital.
CREATE TABLE IF NOT EXISTS test_result (
    id                  BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    patient_pseudonym   VARCHAR(128) NOT NULL,
    item_code           VARCHAR(64) NOT NULL,
    item_name           VARCHAR(255) NOT NULL,
    loinc               VARCHAR(32),
    category            VARCHAR(8) NOT NULL CHECK (category IN ('LAB', 'EXAM')),
    value               TEXT NOT NULL,
    unit                VARCHAR(64),
    reference_range     VARCHAR(255),
    performed_at        TIMESTAMP(6) NOT NULL,
    created_at          TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at          TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    version             INT NOT NULL DEFAULT 1,
    INDEX test_result_patient (patient_pseudonym, performed_at, id),
    INDEX test_result_updated (updated_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The lab's quality-control standing per item (室内质控 / 室间质评 passed), by LOINC.
CREATE TABLE IF NOT EXISTS quality_control (
    loinc               VARCHAR(32) NOT NULL,
    scheme              VARCHAR(255) NOT NULL,
    valid_from          DATE NOT NULL,
    valid_until         DATE NOT NULL,
    PRIMARY KEY (loinc, valid_from),
    CHECK (valid_until >= valid_from)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A clinician's decision on another hospital's result, stored at the deciding hospital.
CREATE TABLE IF NOT EXISTS recognition_decision (
    id                  BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    result_member       VARCHAR(64) NOT NULL,
    result_id           VARCHAR(255) NOT NULL,  -- the result's key at its member, whatever its kind of source
    patient_pseudonym   VARCHAR(128) NOT NULL,
    loinc               VARCHAR(32),
    decided_by          VARCHAR(255) NOT NULL,
    decision            VARCHAR(16) NOT NULL CHECK (decision IN ('RECOGNIZED', 'DECLINED')),
    reason              VARCHAR(32) CHECK (reason IN ('CONDITION_CHANGED', 'RAPIDLY_CHANGING', 'CRITICAL_PROCEDURE',
                                                      'EMERGENCY', 'APPRAISAL', 'OTHER', 'PATIENT_REQUEST',
                                                      'LAB_FAILED_EQA', 'INTERVAL_TOO_LONG')),
    note                TEXT,
    retest_cost_fen     INT CHECK (retest_cost_fen >= 0),
    decided_at          TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at          TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    version             INT NOT NULL DEFAULT 1,
    CHECK (decision = 'RECOGNIZED' OR reason IS NOT NULL),
    CHECK (NOT (reason <=> 'OTHER') OR note IS NOT NULL),
    INDEX recognition_decision_decided (decided_at, id),
    INDEX recognition_decision_result (result_member, result_id),
    INDEX recognition_decision_updated (updated_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Part 2: the assessment's figures.
-- What the alliance's annual assessment and work reports count, published by the hospital itself.
-- Totals and counts only: no row names a patient. A database installed before part 2 existed is
-- given just this part (the installer looks for specialty_volume).

-- One row per month of the alliance's specialty (month = its first day), totalled by the HIS.
CREATE TABLE IF NOT EXISTS specialty_volume (
    id                      BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    hospital                VARCHAR(64) NOT NULL,
    month                   DATE NOT NULL CHECK (DAYOFMONTH(month) = 1),
    outpatient_visits       INT NOT NULL CHECK (outpatient_visits >= 0),
    admissions              INT NOT NULL CHECK (admissions >= 0),
    discharges              INT NOT NULL CHECK (discharges >= 0),
    discharged_bed_days     INT NOT NULL CHECK (discharged_bed_days >= 0),
    occupied_bed_days       INT NOT NULL CHECK (occupied_bed_days >= 0),
    open_bed_days           INT NOT NULL CHECK (open_bed_days >= 0),
    operations              INT NOT NULL CHECK (operations >= 0),
    grade34_operations      INT NOT NULL CHECK (grade34_operations >= 0),
    complex_critical_cases  INT NOT NULL CHECK (complex_critical_cases >= 0),
    outpatient_cost_fen     BIGINT NOT NULL CHECK (outpatient_cost_fen >= 0),
    inpatient_cost_fen      BIGINT NOT NULL CHECK (inpatient_cost_fen >= 0),
    updated_at              TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    version                 INT NOT NULL DEFAULT 1,
    UNIQUE KEY specialty_volume_hospital_month (hospital, month),
    INDEX specialty_volume_month (month, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Satisfaction surveys (满意度调查): patients (outpatient, inpatient) and the specialty's staff.
CREATE TABLE IF NOT EXISTS satisfaction_survey (
    id                  BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    hospital            VARCHAR(64) NOT NULL,
    month               DATE NOT NULL CHECK (DAYOFMONTH(month) = 1),
    population          VARCHAR(16) NOT NULL CHECK (population IN ('OUTPATIENT', 'INPATIENT', 'STAFF')),
    respondents         INT NOT NULL CHECK (respondents >= 0),
    satisfied           INT NOT NULL CHECK (satisfied >= 0),
    updated_at          TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    version             INT NOT NULL DEFAULT 1,
    CHECK (satisfied <= respondents),
    UNIQUE KEY satisfaction_survey_hospital_month (hospital, month, population),
    INDEX satisfaction_survey_month (month, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- 帮扶: capacity building, recorded by the hospital that holds the record (the helping one, as a
-- rule): staff dispatched (派驻/下沉), one-to-one mentoring (一对一带教), a new technique or project
-- started at the helped hospital (新技术新项目), an on-site tour (巡诊). Staff and titles, no patient.
CREATE TABLE IF NOT EXISTS capacity_activity (
    id                  BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind                VARCHAR(16) NOT NULL CHECK (kind IN ('DISPATCH', 'MENTORING', 'NEW_TECHNIQUE', 'ON_SITE_TOUR')),
    helping_hospital    VARCHAR(64) NOT NULL,
    helped_hospital     VARCHAR(64) NOT NULL,
    title               VARCHAR(512) NOT NULL,
    started_on          DATE NOT NULL,
    ended_on            DATE NULL DEFAULT NULL,
    people              INT NOT NULL CHECK (people >= 0),
    idempotency_key     VARCHAR(128) UNIQUE,
    created_by          VARCHAR(255),
    created_at          TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at          TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    version             INT NOT NULL DEFAULT 1,
    CHECK (ended_on IS NULL OR ended_on >= started_on),
    CHECK (helping_hospital <> helped_hospital),
    INDEX capacity_activity_started (started_on, id),
    INDEX capacity_activity_updated (updated_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
