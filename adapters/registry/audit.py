"""The audit trail in the gateway's own database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from adapters.registry.records import AuditRecord


class AuditStore:
    def __init__(self, db: asyncpg.Pool | asyncpg.Connection) -> None:
        self._db = db

    async def append(self, entries: Sequence[AuditRecord]) -> None:
        await self._db.executemany(
            """INSERT INTO audit_event (occurred_at, subject, hospital_code, roles, purpose,
                   operation, action, patients, members_asked, members_failed, outcome)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
            [
                (
                    e.occurred_at,
                    e.subject,
                    e.hospital_code,
                    e.roles,
                    e.purpose,
                    e.operation,
                    e.action,
                    e.patients,
                    e.members_asked,
                    e.members_failed,
                    e.outcome,
                )
                for e in entries
            ],
        )

    async def page(
        self,
        *,
        patient: str | None,
        subject: str | None,
        since: datetime | None,
        before: tuple[datetime, int] | None,
        limit: int,
    ) -> list[AuditRecord]:
        rows = await self._db.fetch(
            """SELECT * FROM audit_event
               WHERE ($1::text IS NULL OR patients @> ARRAY[$1::text])
                 AND ($2::text IS NULL OR subject = $2)
                 AND ($3::timestamptz IS NULL OR occurred_at >= $3)
                 AND ($4::timestamptz IS NULL OR (occurred_at, id) < ($4, $5))
               ORDER BY occurred_at DESC, id DESC LIMIT $6""",
            patient,
            subject,
            since,
            before[0] if before else None,
            before[1] if before else None,
            limit,
        )
        return [AuditRecord.from_row(r) for r in rows]
