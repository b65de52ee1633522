-- The lead hospital's assessment of one member for a year (seed 000 §11: 牵头医院 … 定期对成员单位
-- … 进行多维度考核): the member's F/N figures and scores as they stood, and the lead's decision. A
-- failed one is the ground seed 000 §16(三) names for expelling the member (ASSESSMENT_FAILED).
CREATE TABLE member_assessment (
    alliance_id    text NOT NULL REFERENCES alliance (id),
    year           integer NOT NULL CHECK (year BETWEEN 2000 AND 2999),
    hospital_code  text NOT NULL REFERENCES hospital (code),
    passed         boolean NOT NULL,
    note           text,
    score          numeric(6, 2) NOT NULL,
    max_score      numeric(6, 2) NOT NULL,
    -- What was concluded, as read then: shown from here, never recomputed.
    snapshot       jsonb NOT NULL,
    concluded_at   timestamptz NOT NULL,
    concluded_by   text NOT NULL,
    PRIMARY KEY (alliance_id, year, hospital_code),
    CHECK (passed OR note IS NOT NULL)
);
