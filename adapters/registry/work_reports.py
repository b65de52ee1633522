"""Reads and writes of the semi-annual work reports (table work_report, migration 0007).
Parameterised SQL only; when a report may change lives in resolvers/work_report/."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import asyncpg

from adapters.registry.records import WorkReportRecord
from adapters.registry.store import RegistryStore

_COLUMNS = ", ".join(WorkReportRecord.__dataclass_fields__)


def _record(row: asyncpg.Record) -> WorkReportRecord:
    values = dict(row)
    counts = values["counts"]
    values["counts"] = None if counts is None else json.loads(counts)
    return WorkReportRecord.from_row(values)


class WorkReportStore:
    """The work reports of one alliance, in the registry's own database."""

    def __init__(self, registry: RegistryStore, alliance_id: str) -> None:
        self._db = registry.db
        self._alliance_id = alliance_id

    async def get(self, year: int, half: int) -> WorkReportRecord | None:
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM work_report WHERE alliance_id = $1 AND year = $2 AND half = $3",
            self._alliance_id,
            year,
            half,
        )
        return _record(row) if row else None

    async def all(self) -> list[WorkReportRecord]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM work_report WHERE alliance_id = $1 ORDER BY year, half",
            self._alliance_id,
        )
        return [_record(r) for r in rows]

    async def save_narrative(
        self, year: int, half: int, narrative: str, by: str, at: datetime
    ) -> WorkReportRecord | None:
        """The draft's narrative; None when the report has been submitted meanwhile."""
        row = await self._db.fetchrow(
            f"""INSERT INTO work_report (alliance_id, year, half, narrative, narrative_by, narrative_at)
                VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (alliance_id, year, half) DO UPDATE
                   SET narrative = EXCLUDED.narrative, narrative_by = EXCLUDED.narrative_by,
                       narrative_at = EXCLUDED.narrative_at
                 WHERE work_report.status = 'DRAFT'
                RETURNING {_COLUMNS}""",
            self._alliance_id,
            year,
            half,
            narrative,
            by,
            at,
        )
        return _record(row) if row else None

    async def submit(
        self,
        year: int,
        half: int,
        counts: dict[str, Any],
        *,
        by: str,
        at: datetime,
        due_on: date,
    ) -> WorkReportRecord | None:
        """The report as submitted with its counts; None when it already was (once only)."""
        row = await self._db.fetchrow(
            f"""INSERT INTO work_report (alliance_id, year, half, status, submitted_at,
                                         submitted_by, due_on, counts)
                VALUES ($1, $2, $3, 'SUBMITTED', $4, $5, $6, $7::jsonb)
                ON CONFLICT (alliance_id, year, half) DO UPDATE
                   SET status = 'SUBMITTED', submitted_at = EXCLUDED.submitted_at,
                       submitted_by = EXCLUDED.submitted_by, due_on = EXCLUDED.due_on,
                       counts = EXCLUDED.counts
                 WHERE work_report.status = 'DRAFT'
                RETURNING {_COLUMNS}""",
            self._alliance_id,
            year,
            half,
            at,
            by,
            due_on,
            json.dumps(counts, ensure_ascii=False),
        )
        return _record(row) if row else None
