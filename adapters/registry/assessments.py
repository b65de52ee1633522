"""Reads and writes of the annual assessment (tables of migration 0006). Parameterised SQL only;
who may score, and when, lives in resolvers/assessment/."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from adapters.registry.store import RegistryStore


@dataclass(frozen=True, slots=True)
class EvidenceRef:
    title: str
    location: str
    content_hash: str


@dataclass(frozen=True, slots=True)
class AssessmentRecord:
    year: int
    status: str
    total_score: float | None
    pass_mark: float | None
    passed: bool | None
    standing_before: str | None
    standing_after: str | None
    concluded_at: datetime | None
    concluded_by: str | None
    snapshot: Any  # the concluded assessment, as JSON values


@dataclass(frozen=True, slots=True)
class ScoreRecord:
    indicator: int
    score: float
    comment: str
    assessor: str
    evidence: tuple[EvidenceRef, ...]
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class QualityControlRecord:
    hospital_code: str
    passed: bool
    qc_score: float | None
    comment: str | None
    evidence: tuple[EvidenceRef, ...]
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class MemberAssessmentRecord:
    """The lead's concluded assessment of one member for a year (migration 0009)."""

    year: int
    hospital_code: str
    passed: bool
    note: str | None
    score: float
    max_score: float
    snapshot: Any  # the member's figures and scores, as JSON values
    concluded_at: datetime
    concluded_by: str


@dataclass(frozen=True, slots=True)
class MemberRole:
    code: str
    role: str


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _evidence(raw: str) -> tuple[EvidenceRef, ...]:
    return tuple(EvidenceRef(**e) for e in json.loads(raw))


def evidence_json(evidence: tuple[EvidenceRef, ...]) -> str:
    return json.dumps(
        [
            {"title": e.title, "location": e.location, "content_hash": e.content_hash}
            for e in evidence
        ],
        ensure_ascii=False,
    )


class AssessmentStore:
    """One alliance's assessments, in the registry's own database."""

    def __init__(self, registry: RegistryStore, alliance_id: str) -> None:
        self._db = registry.db
        self._alliance_id = alliance_id

    async def get(self, year: int) -> AssessmentRecord | None:
        row = await self._db.fetchrow(
            "SELECT * FROM assessment WHERE alliance_id = $1 AND year = $2",
            self._alliance_id,
            year,
        )
        return None if row is None else _assessment(row)

    async def open_for_update(self, year: int) -> AssessmentRecord:
        """Inside a transaction: the year's assessment (opened IN_PROGRESS if new), locked."""
        await self._db.execute(
            """INSERT INTO assessment (alliance_id, year) VALUES ($1, $2)
               ON CONFLICT (alliance_id, year) DO NOTHING""",
            self._alliance_id,
            year,
        )
        row = await self._db.fetchrow(
            "SELECT * FROM assessment WHERE alliance_id = $1 AND year = $2 FOR UPDATE",
            self._alliance_id,
            year,
        )
        return _assessment(row)

    async def concluded_years(self) -> list[int]:
        rows = await self._db.fetch(
            """SELECT year FROM assessment WHERE alliance_id = $1 AND status = 'CONCLUDED'
               ORDER BY year""",
            self._alliance_id,
        )
        return [r["year"] for r in rows]

    async def scores(self, year: int) -> list[ScoreRecord]:
        rows = await self._db.fetch(
            """SELECT indicator, score, comment, assessor, evidence, recorded_by, recorded_at
               FROM assessment_score WHERE alliance_id = $1 AND year = $2 ORDER BY indicator""",
            self._alliance_id,
            year,
        )
        return [
            ScoreRecord(
                indicator=r["indicator"],
                score=float(r["score"]),
                comment=r["comment"],
                assessor=r["assessor"],
                evidence=_evidence(r["evidence"]),
                recorded_by=r["recorded_by"],
                recorded_at=r["recorded_at"],
            )
            for r in rows
        ]

    async def quality_control(self, year: int) -> list[QualityControlRecord]:
        rows = await self._db.fetch(
            """SELECT hospital_code, passed, qc_score, comment, evidence, recorded_by, recorded_at
               FROM assessment_qc_result WHERE alliance_id = $1 AND year = $2
               ORDER BY hospital_code""",
            self._alliance_id,
            year,
        )
        return [
            QualityControlRecord(
                hospital_code=r["hospital_code"],
                passed=r["passed"],
                qc_score=_float(r["qc_score"]),
                comment=r["comment"],
                evidence=_evidence(r["evidence"]),
                recorded_by=r["recorded_by"],
                recorded_at=r["recorded_at"],
            )
            for r in rows
        ]

    async def save_score(self, year: int, score: ScoreRecord) -> None:
        await self._db.execute(
            """INSERT INTO assessment_score (alliance_id, year, indicator, score, comment, assessor,
                   evidence, recorded_by, recorded_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)
               ON CONFLICT (alliance_id, year, indicator) DO UPDATE
               SET score = EXCLUDED.score, comment = EXCLUDED.comment,
                   assessor = EXCLUDED.assessor, evidence = EXCLUDED.evidence,
                   recorded_by = EXCLUDED.recorded_by, recorded_at = EXCLUDED.recorded_at""",
            self._alliance_id,
            year,
            score.indicator,
            Decimal(str(score.score)),
            score.comment,
            score.assessor,
            evidence_json(score.evidence),
            score.recorded_by,
            score.recorded_at,
        )

    async def save_quality_control(self, year: int, result: QualityControlRecord) -> None:
        await self._db.execute(
            """INSERT INTO assessment_qc_result (alliance_id, year, hospital_code, passed,
                   qc_score, comment, evidence, recorded_by, recorded_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)
               ON CONFLICT (alliance_id, year, hospital_code) DO UPDATE
               SET passed = EXCLUDED.passed, qc_score = EXCLUDED.qc_score,
                   comment = EXCLUDED.comment, evidence = EXCLUDED.evidence,
                   recorded_by = EXCLUDED.recorded_by, recorded_at = EXCLUDED.recorded_at""",
            self._alliance_id,
            year,
            result.hospital_code,
            result.passed,
            None if result.qc_score is None else Decimal(str(result.qc_score)),
            result.comment,
            evidence_json(result.evidence),
            result.recorded_by,
            result.recorded_at,
        )

    async def conclude(self, year: int, record: AssessmentRecord) -> None:
        await self._db.execute(
            """UPDATE assessment SET status = 'CONCLUDED', total_score = $3, pass_mark = $4,
                   passed = $5, standing_before = $6, standing_after = $7, concluded_at = $8,
                   concluded_by = $9, snapshot = $10::jsonb
               WHERE alliance_id = $1 AND year = $2""",
            self._alliance_id,
            year,
            Decimal(str(record.total_score)),
            Decimal(str(record.pass_mark)),
            record.passed,
            record.standing_before,
            record.standing_after,
            record.concluded_at,
            record.concluded_by,
            json.dumps(record.snapshot, ensure_ascii=False),
        )

    async def lock_alliance(self) -> str:
        """Inside a transaction: the alliance's standing, locked until it commits."""
        standing: str = await self._db.fetchval(
            "SELECT standing FROM alliance WHERE id = $1 FOR UPDATE", self._alliance_id
        )
        return standing

    async def set_standing(self, standing: str) -> None:
        await self._db.execute(
            "UPDATE alliance SET standing = $2 WHERE id = $1", self._alliance_id, standing
        )

    async def members_during(self, since: date, until: date) -> list[MemberRole]:
        """The alliance's hospitals that were members at some time in [since, until)."""
        rows = await self._db.fetch(
            """SELECT hospital_code, role FROM membership
               WHERE alliance_id = $1 AND joined_on < $3
                 AND (left_on IS NULL OR left_on >= $2)
               ORDER BY hospital_code""",
            self._alliance_id,
            since,
            until,
        )
        return [MemberRole(r["hospital_code"], r["role"]) for r in rows]

    async def member_assessment(self, year: int, hospital: str) -> MemberAssessmentRecord | None:
        row = await self._db.fetchrow(
            """SELECT * FROM member_assessment
               WHERE alliance_id = $1 AND year = $2 AND hospital_code = $3""",
            self._alliance_id,
            year,
            hospital,
        )
        return None if row is None else _member_assessment(row)

    async def member_assessments_since(
        self, hospital: str, since_year: int
    ) -> list[MemberAssessmentRecord]:
        """The member's concluded assessments from `since_year` on, latest year first."""
        rows = await self._db.fetch(
            """SELECT * FROM member_assessment
               WHERE alliance_id = $1 AND hospital_code = $2 AND year >= $3
               ORDER BY year DESC""",
            self._alliance_id,
            hospital,
            since_year,
        )
        return [_member_assessment(r) for r in rows]

    async def conclude_member(self, record: MemberAssessmentRecord) -> bool:
        """Stores the conclusion; False if the year was concluded for that member already."""
        stored = await self._db.fetchval(
            """INSERT INTO member_assessment (alliance_id, year, hospital_code, passed, note,
                   score, max_score, snapshot, concluded_at, concluded_by)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10)
               ON CONFLICT (alliance_id, year, hospital_code) DO NOTHING
               RETURNING year""",
            self._alliance_id,
            record.year,
            record.hospital_code,
            record.passed,
            record.note,
            Decimal(str(record.score)),
            Decimal(str(record.max_score)),
            json.dumps(record.snapshot, ensure_ascii=False),
            record.concluded_at,
            record.concluded_by,
        )
        return stored is not None


def _member_assessment(row: asyncpg.Record) -> MemberAssessmentRecord:
    return MemberAssessmentRecord(
        year=row["year"],
        hospital_code=row["hospital_code"],
        passed=row["passed"],
        note=row["note"],
        score=float(row["score"]),
        max_score=float(row["max_score"]),
        snapshot=json.loads(row["snapshot"]),
        concluded_at=row["concluded_at"],
        concluded_by=row["concluded_by"],
    )


def _assessment(row: asyncpg.Record) -> AssessmentRecord:
    snapshot = row["snapshot"]
    return AssessmentRecord(
        year=row["year"],
        status=row["status"],
        total_score=_float(row["total_score"]),
        pass_mark=_float(row["pass_mark"]),
        passed=row["passed"],
        standing_before=row["standing_before"],
        standing_after=row["standing_after"],
        concluded_at=row["concluded_at"],
        concluded_by=row["concluded_by"],
        snapshot=None if snapshot is None else json.loads(snapshot),
    )
