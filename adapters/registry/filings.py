"""Filing applications (备案) and their steps in the registry. Parameterised SQL only; the
workflow's rules live in resolvers/filing.py."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import asyncpg

from adapters.registry.records import (
    FiledAgreement,
    FiledHospital,
    FiledMember,
    FiledResolution,
    FilingApplicationRecord,
    FilingForm,
    FilingStepRecord,
)
from adapters.registry.store import RegistryStore


def form_to_json(form: FilingForm) -> str:
    def value(v: Any) -> Any:
        if isinstance(v, date):
            return v.isoformat()
        if isinstance(v, tuple):
            return [value(x) for x in v]
        if hasattr(v, "__dataclass_fields__"):
            return {k: value(getattr(v, k)) for k in v.__dataclass_fields__}
        return v

    return json.dumps(value(form), ensure_ascii=False, sort_keys=True)


def _hospital(d: dict[str, Any]) -> FiledHospital:
    return FiledHospital(**d)


def _agreement(d: dict[str, Any] | None) -> FiledAgreement | None:
    if d is None:
        return None
    return FiledAgreement(
        signed_on=date.fromisoformat(d["signed_on"]),
        effective_on=date.fromisoformat(d["effective_on"]),
        expires_on=date.fromisoformat(d["expires_on"]),
        term_years=d["term_years"],
        status=d["status"],
    )


def form_from_json(text: str) -> FilingForm:
    d = json.loads(text)
    return FilingForm(
        name=d["name"],
        specialty=d["specialty"],
        level=d["level"],
        founded_on=date.fromisoformat(d["founded_on"]),
        lead_department=d["lead_department"],
        department_head=d["department_head"],
        discipline_leader=d["discipline_leader"],
        lead_hospital=_hospital(d["lead_hospital"]),
        lead_hospital_affiliation=d["lead_hospital_affiliation"],
        members=tuple(
            FiledMember(
                hospital=_hospital(m["hospital"]),
                role=m["role"],
                joined_on=date.fromisoformat(m["joined_on"]),
                agreement=_agreement(m["agreement"]),
            )
            for m in d["members"]
        ),
        charter_version=d["charter_version"],
        charter_resolutions=tuple(
            FiledResolution(
                number=r["number"],
                adopted_on=date.fromisoformat(r["adopted_on"]),
                summary=r["summary"],
            )
            for r in d["charter_resolutions"]
        ),
        discipline_building=d["discipline_building"],
        development_plan=d["development_plan"],
    )


def _application(row: asyncpg.Record) -> FilingApplicationRecord:
    return FilingApplicationRecord(
        id=row["id"],
        alliance_id=row["alliance_id"],
        attempt=row["attempt"],
        status=row["status"],
        municipal_opinion_required=row["municipal_opinion_required"],
        form=form_from_json(row["form"]),
        number=row["number"],
        rejection_reason=row["rejection_reason"],
        drafted_at=row["drafted_at"],
        decided_at=row["decided_at"],
    )


_STEP_COLUMNS = "s.*, a.attempt"


class FilingStore:
    """Filing queries over the registry's pool, or its connection inside `transaction()`: a step
    commits with the change of the alliance's filing it causes, or not at all."""

    def __init__(self, registry: RegistryStore) -> None:
        self._db = registry.db

    async def lock(self, alliance_id: str) -> None:
        """Inside a transaction: one filing step of this alliance at a time."""
        await self._db.execute(
            "SELECT pg_advisory_xact_lock(hashtext('filing:' || $1))", alliance_id
        )

    async def applications(self, alliance_id: str) -> list[FilingApplicationRecord]:
        """Newest first."""
        rows = await self._db.fetch(
            "SELECT * FROM filing_application WHERE alliance_id = $1 ORDER BY attempt DESC",
            alliance_id,
        )
        return [_application(r) for r in rows]

    async def latest(self, alliance_id: str) -> FilingApplicationRecord | None:
        row = await self._db.fetchrow(
            """SELECT * FROM filing_application WHERE alliance_id = $1
               ORDER BY attempt DESC LIMIT 1""",
            alliance_id,
        )
        return _application(row) if row else None

    async def steps(self, alliance_id: str) -> list[FilingStepRecord]:
        """Every step of every application of the alliance, in the order they were taken."""
        rows = await self._db.fetch(
            f"""SELECT {_STEP_COLUMNS} FROM filing_step s
                JOIN filing_application a ON a.id = s.application_id
                WHERE a.alliance_id = $1 ORDER BY a.attempt, s.at, s.id""",
            alliance_id,
        )
        return [FilingStepRecord.from_row(r) for r in rows]

    async def insert_application(
        self,
        alliance_id: str,
        status: str,
        municipal_opinion_required: bool,
        form: FilingForm,
        drafted_at: datetime,
    ) -> FilingApplicationRecord:
        row = await self._db.fetchrow(
            """INSERT INTO filing_application (alliance_id, attempt, status,
                   municipal_opinion_required, form, drafted_at)
               SELECT $1, coalesce(max(attempt), 0) + 1, $2, $3, $4::jsonb, $5
               FROM filing_application WHERE alliance_id = $1
               RETURNING *""",
            alliance_id,
            status,
            municipal_opinion_required,
            form_to_json(form),
            drafted_at,
        )
        return _application(row)

    async def set_status(
        self,
        application_id: int,
        status: str,
        *,
        decided_at: datetime | None = None,
        number: str | None = None,
        rejection_reason: str | None = None,
    ) -> FilingApplicationRecord:
        row = await self._db.fetchrow(
            """UPDATE filing_application
               SET status = $2, decided_at = $3, number = $4, rejection_reason = $5
               WHERE id = $1 RETURNING *""",
            application_id,
            status,
            decided_at,
            number,
            rejection_reason,
        )
        return _application(row)

    async def insert_step(
        self,
        application_id: int,
        step: str,
        *,
        role: str,
        subject: str,
        at: datetime,
        hospital_code: str | None = None,
        authority: str | None = None,
        favourable: bool | None = None,
        opinion: str | None = None,
    ) -> None:
        await self._db.execute(
            """INSERT INTO filing_step (application_id, step, role, subject, hospital_code,
                   authority, favourable, opinion, at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
            application_id,
            step,
            role,
            subject,
            hospital_code,
            authority,
            favourable,
            opinion,
            at,
        )

    async def next_number_in(self, prefix: str) -> int:
        """The next serial after those of every filing number starting with `prefix` (the
        alliances' own included: one may have been filed before the registry kept applications).
        Call under `lock` of a key all alliances share, so two decisions never take the same."""
        return await self._db.fetchval(
            r"""SELECT coalesce(max(substring(n FROM '(\d+)\D*$')::int), 0) + 1
                FROM (SELECT number AS n FROM filing_application
                      UNION ALL SELECT filing_number FROM alliance) numbers
                WHERE n LIKE $1 || '%'""",
            prefix.replace("%", r"\%").replace("_", r"\_"),
        )

    async def set_alliance_filing(self, alliance_id: str, status: str, number: str | None) -> None:
        await self._db.execute(
            "UPDATE alliance SET filing_status = $2, filing_number = $3 WHERE id = $1",
            alliance_id,
            status,
            number,
        )
