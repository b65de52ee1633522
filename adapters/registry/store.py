"""Reads and writes of the registry. Parameterised SQL only; every rule lives in resolvers/."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import asyncpg

from adapters.registry.events import insert_events
from adapters.registry.hospital_cache import HospitalCache
from adapters.registry.records import (
    AgreementRecord,
    AllianceRecord,
    ApplicationRecord,
    CouncilSeatRecord,
    HospitalRecord,
    MembershipRecord,
    NewEvent,
    ResolutionRecord,
)

# Lead first, then backbone hospitals, then members: the order a member list is read in.
ROLE_RANK_SQL = "CASE m.role WHEN 'LEAD' THEN 0 WHEN 'BACKBONE' THEN 1 ELSE 2 END"

_HOSPITAL_COLUMNS = tuple(HospitalRecord.__dataclass_fields__)


class RegistryStore:
    """Registry queries over a pool, or over one connection inside a transaction."""

    def __init__(
        self, db: asyncpg.Pool | asyncpg.Connection, kept: HospitalCache | None = None
    ) -> None:
        self._db = db
        self._kept = kept

    @property
    def db(self) -> asyncpg.Pool | asyncpg.Connection:
        """The pool, or inside `transaction()` its connection: the stores of the registry's other
        tables (filings, assessments, work reports) run on it, so one transaction covers them."""
        return self._db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[RegistryStore]:
        if isinstance(self._db, asyncpg.Connection):
            async with self._db.transaction():
                yield self
            return
        async with self._db.acquire() as conn, conn.transaction():
            yield RegistryStore(conn, self._kept)

    async def record_events(self, alliance_id: str, events: Sequence[NewEvent]) -> None:
        """Inside `transaction()`: the events commit, or not, with the change they describe."""
        assert isinstance(self._db, asyncpg.Connection), "record events inside transaction()"
        await insert_events(self._db, alliance_id, events)

    async def ping(self) -> None:
        await self._db.fetchval("SELECT 1")

    # -- alliance and council -------------------------------------------------------------

    async def alliance(self, alliance_id: str) -> AllianceRecord | None:
        row = await self._db.fetchrow("SELECT * FROM alliance WHERE id = $1", alliance_id)
        return AllianceRecord.from_row(row) if row else None

    async def council(self, alliance_id: str) -> list[CouncilSeatRecord]:
        rows = await self._db.fetch(
            """SELECT * FROM council_seat WHERE alliance_id = $1
               ORDER BY CASE role WHEN 'CHAIR' THEN 0 WHEN 'VICE_CHAIR' THEN 1
                                  WHEN 'STANDING_MEMBER' THEN 2 ELSE 3 END, id""",
            alliance_id,
        )
        return [CouncilSeatRecord.from_row(r) for r in rows]

    async def resolutions(self, alliance_id: str) -> list[ResolutionRecord]:
        rows = await self._db.fetch(
            "SELECT * FROM council_resolution WHERE alliance_id = $1 ORDER BY adopted_on, id",
            alliance_id,
        )
        return [ResolutionRecord.from_row(r) for r in rows]

    async def add_resolution(
        self, alliance_id: str, adopted_on: date, subject: str, summary: str
    ) -> ResolutionRecord:
        # Numbered per year in adoption order, e.g. 2026-004; the advisory lock keeps numbers unique
        # when two resolutions are adopted at once.
        await self._db.execute("SELECT pg_advisory_xact_lock(hashtext($1))", alliance_id)
        row = await self._db.fetchrow(
            """INSERT INTO council_resolution (alliance_id, number, adopted_on, subject, summary)
               SELECT $1, $2::text || '-' || lpad((count(*) + 1)::text, 3, '0'), $3, $4, $5
               FROM council_resolution WHERE alliance_id = $1 AND number LIKE $2::text || '-%'
               RETURNING *""",
            alliance_id,
            str(adopted_on.year),
            adopted_on,
            subject,
            summary,
        )
        return ResolutionRecord.from_row(row)

    # -- hospitals ------------------------------------------------------------------------

    async def hospitals(self, codes: Sequence[str]) -> list[HospitalRecord]:
        rows = await self._db.fetch("SELECT * FROM hospital WHERE code = ANY($1::text[])", codes)
        return [HospitalRecord.from_row(r) for r in rows]

    async def hospitals_named(self, codes: Sequence[str]) -> list[HospitalRecord]:
        """The hospitals a page names, for their names: kept between requests where a
        HospitalCache is given (adapters/registry/hospital_cache.py)."""
        if self._kept is None:
            return await self.hospitals(codes)
        return await self._kept.hospitals(codes)

    async def hospital_codes(self) -> list[str]:
        return [r["code"] for r in await self._db.fetch("SELECT code FROM hospital ORDER BY code")]

    async def hospital_by_credit_code(self, credit_code: str) -> HospitalRecord | None:
        row = await self._db.fetchrow("SELECT * FROM hospital WHERE credit_code = $1", credit_code)
        return HospitalRecord.from_row(row) if row else None

    async def upsert_hospital(self, hospital: HospitalRecord) -> None:
        values = hospital.as_row()
        columns = ", ".join(_HOSPITAL_COLUMNS)
        params = ", ".join(f"${i}" for i in range(1, len(_HOSPITAL_COLUMNS) + 1))
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _HOSPITAL_COLUMNS if c != "code")
        await self._db.execute(
            f"INSERT INTO hospital ({columns}) VALUES ({params}) "
            f"ON CONFLICT (code) DO UPDATE SET {updates}",
            *(values[c] for c in _HOSPITAL_COLUMNS),
        )
        if self._kept is not None:
            # Its notification follows the commit; this replica's own next page need not wait.
            self._kept.forget()

    # -- membership -----------------------------------------------------------------------

    async def memberships(self, alliance_id: str, codes: Sequence[str]) -> list[MembershipRecord]:
        rows = await self._db.fetch(
            "SELECT * FROM membership WHERE alliance_id = $1 AND hospital_code = ANY($2::text[])",
            alliance_id,
            codes,
        )
        return [MembershipRecord.from_row(r) for r in rows]

    async def membership_for_update(
        self, alliance_id: str, hospital_code: str
    ) -> MembershipRecord | None:
        row = await self._db.fetchrow(
            "SELECT * FROM membership WHERE alliance_id = $1 AND hospital_code = $2 FOR UPDATE",
            alliance_id,
            hospital_code,
        )
        return MembershipRecord.from_row(row) if row else None

    def _member_filter(
        self, alliance_id: str, statuses: Sequence[str] | None, roles: Sequence[str] | None
    ) -> tuple[str, list[Any]]:
        clauses = ["m.alliance_id = $1"]
        args: list[Any] = [alliance_id]
        if statuses:
            args.append(list(statuses))
            clauses.append(f"m.status = ANY(${len(args)}::text[])")
        if roles:
            args.append(list(roles))
            clauses.append(f"m.role = ANY(${len(args)}::text[])")
        return " AND ".join(clauses), args

    async def count_members(
        self, alliance_id: str, statuses: Sequence[str] | None, roles: Sequence[str] | None
    ) -> int:
        where, args = self._member_filter(alliance_id, statuses, roles)
        return await self._db.fetchval(f"SELECT count(*) FROM membership m WHERE {where}", *args)

    async def members_page(
        self,
        alliance_id: str,
        statuses: Sequence[str] | None,
        roles: Sequence[str] | None,
        after: tuple[int, str] | None,
        limit: int,
    ) -> list[tuple[int, MembershipRecord]]:
        """Members ordered by (role rank, hospital code), after the given key, as (rank, record)."""
        where, args = self._member_filter(alliance_id, statuses, roles)
        if after is not None:
            args.extend(after)
            where += f" AND ({ROLE_RANK_SQL}, m.hospital_code) > (${len(args) - 1}, ${len(args)})"
        args.append(limit)
        rows = await self._db.fetch(
            f"""SELECT m.*, {ROLE_RANK_SQL} AS role_rank FROM membership m WHERE {where}
                ORDER BY role_rank, m.hospital_code LIMIT ${len(args)}""",
            *args,
        )
        return [(r["role_rank"], MembershipRecord.from_row(r)) for r in rows]

    async def insert_membership(
        self, alliance_id: str, hospital_code: str, role: str, joined_on: date
    ) -> None:
        await self._db.execute(
            """INSERT INTO membership (alliance_id, hospital_code, role, status, joined_on)
               VALUES ($1, $2, $3, 'ACTIVE', $4)
               ON CONFLICT (alliance_id, hospital_code) DO UPDATE
               SET status = 'ACTIVE', role = EXCLUDED.role, joined_on = EXCLUDED.joined_on,
                   left_on = NULL, exit_reason = NULL""",
            alliance_id,
            hospital_code,
            role,
            joined_on,
        )

    async def end_membership(
        self, alliance_id: str, hospital_code: str, status: str, left_on: date, reason: str
    ) -> None:
        await self._db.execute(
            """UPDATE membership SET status = $3, left_on = $4, exit_reason = $5
               WHERE alliance_id = $1 AND hospital_code = $2""",
            alliance_id,
            hospital_code,
            status,
            left_on,
            reason,
        )

    # -- applications ---------------------------------------------------------------------

    async def application(
        self, application_id: int, *, lock: bool = False
    ) -> ApplicationRecord | None:
        sql = "SELECT * FROM membership_application WHERE id = $1"
        row = await self._db.fetchrow(sql + (" FOR UPDATE" if lock else ""), application_id)
        return ApplicationRecord.from_row(row) if row else None

    async def open_application_of(self, alliance_id: str, hospital_code: str) -> int | None:
        return await self._db.fetchval(
            """SELECT id FROM membership_application
               WHERE alliance_id = $1 AND hospital_code = $2
                 AND status IN ('SUBMITTED', 'REVIEW_PASSED', 'APPROVED')""",
            alliance_id,
            hospital_code,
        )

    async def insert_application(
        self,
        alliance_id: str,
        hospital_code: str,
        submitted_by: str,
        *,
        renews_agreement_id: int | None = None,
    ) -> ApplicationRecord:
        """A JOIN application, or a RENEWAL one when it names the agreement it would renew."""
        row = await self._db.fetchrow(
            """INSERT INTO membership_application
                   (alliance_id, hospital_code, status, submitted_by, kind, renews_agreement_id)
               VALUES ($1, $2, 'SUBMITTED', $3, $4, $5) RETURNING *""",
            alliance_id,
            hospital_code,
            submitted_by,
            "JOIN" if renews_agreement_id is None else "RENEWAL",
            renews_agreement_id,
        )
        return ApplicationRecord.from_row(row)

    async def renewal_application(
        self, agreement_id: int, status: str, *, lock: bool = False
    ) -> ApplicationRecord | None:
        """The renewal application of this agreement in the given status, the latest if several."""
        sql = """SELECT * FROM membership_application
                 WHERE kind = 'RENEWAL' AND renews_agreement_id = $1 AND status = $2
                 ORDER BY id DESC LIMIT 1"""
        row = await self._db.fetchrow(sql + (" FOR UPDATE" if lock else ""), agreement_id, status)
        return ApplicationRecord.from_row(row) if row else None

    async def record_review(
        self,
        application_id: int,
        status: str,
        reviewer: str,
        note: str | None,
        due_diligence: Sequence[str],
    ) -> ApplicationRecord:
        row = await self._db.fetchrow(
            """UPDATE membership_application
               SET status = $2, reviewed_at = now(), reviewed_by = $3, review_note = $4,
                   due_diligence = $5
               WHERE id = $1 RETURNING *""",
            application_id,
            status,
            reviewer,
            note,
            list(due_diligence),
        )
        return ApplicationRecord.from_row(row)

    async def record_decision(
        self,
        application_id: int,
        status: str,
        decider: str,
        note: str | None,
        resolution_id: int | None,
    ) -> ApplicationRecord:
        row = await self._db.fetchrow(
            """UPDATE membership_application
               SET status = $2, decided_at = now(), decided_by = $3, decision_note = $4,
                   resolution_id = $5
               WHERE id = $1 RETURNING *""",
            application_id,
            status,
            decider,
            note,
            resolution_id,
        )
        return ApplicationRecord.from_row(row)

    async def mark_application_signed(self, application_id: int) -> None:
        await self._db.execute(
            "UPDATE membership_application SET status = 'SIGNED' WHERE id = $1", application_id
        )

    async def count_applications(
        self, alliance_id: str, statuses: Sequence[str] | None, hospital_code: str | None
    ) -> int:
        return await self._db.fetchval(
            """SELECT count(*) FROM membership_application
               WHERE alliance_id = $1 AND ($2::text[] IS NULL OR status = ANY($2::text[]))
                 AND ($3::text IS NULL OR hospital_code = $3)""",
            alliance_id,
            list(statuses) if statuses else None,
            hospital_code,
        )

    async def applications_page(
        self,
        alliance_id: str,
        statuses: Sequence[str] | None,
        hospital_code: str | None,
        before_id: int | None,
        limit: int,
    ) -> list[ApplicationRecord]:
        """Newest first; `before_id` is the last id of the previous page."""
        rows = await self._db.fetch(
            """SELECT * FROM membership_application
               WHERE alliance_id = $1
                 AND ($2::text[] IS NULL OR status = ANY($2::text[]))
                 AND ($3::text IS NULL OR hospital_code = $3)
                 AND ($4::bigint IS NULL OR id < $4)
               ORDER BY id DESC LIMIT $5""",
            alliance_id,
            list(statuses) if statuses else None,
            hospital_code,
            before_id,
            limit,
        )
        return [ApplicationRecord.from_row(r) for r in rows]

    # -- agreements -----------------------------------------------------------------------

    async def agreement(self, agreement_id: int, *, lock: bool = False) -> AgreementRecord | None:
        sql = "SELECT * FROM agreement WHERE id = $1"
        row = await self._db.fetchrow(sql + (" FOR UPDATE" if lock else ""), agreement_id)
        return AgreementRecord.from_row(row) if row else None

    async def agreements(self, ids: Sequence[int]) -> list[AgreementRecord]:
        rows = await self._db.fetch("SELECT * FROM agreement WHERE id = ANY($1::bigint[])", ids)
        return [AgreementRecord.from_row(r) for r in rows]

    async def latest_agreements(
        self, alliance_id: str, member_codes: Sequence[str]
    ) -> list[AgreementRecord]:
        """Each member's most recent agreement (the one in force, or the last one it had)."""
        rows = await self._db.fetch(
            """SELECT DISTINCT ON (party_b_code) * FROM agreement
               WHERE alliance_id = $1 AND party_b_code = ANY($2::text[])
               ORDER BY party_b_code, effective_on DESC, id DESC""",
            alliance_id,
            member_codes,
        )
        return [AgreementRecord.from_row(r) for r in rows]

    async def agreements_of(self, alliance_id: str, member_code: str) -> list[AgreementRecord]:
        rows = await self._db.fetch(
            """SELECT * FROM agreement WHERE alliance_id = $1 AND party_b_code = $2
               ORDER BY effective_on DESC, id DESC""",
            alliance_id,
            member_code,
        )
        return [AgreementRecord.from_row(r) for r in rows]

    async def agreements_of_members(
        self, alliance_id: str, member_codes: Sequence[str]
    ) -> list[AgreementRecord]:
        """Every agreement of each of `member_codes`, each member's newest first."""
        rows = await self._db.fetch(
            """SELECT * FROM agreement WHERE alliance_id = $1 AND party_b_code = ANY($2::text[])
               ORDER BY party_b_code, effective_on DESC, id DESC""",
            alliance_id,
            list(member_codes),
        )
        return [AgreementRecord.from_row(r) for r in rows]

    async def insert_agreement(
        self,
        *,
        alliance_id: str,
        party_a_code: str,
        party_b_code: str,
        signed_on: date,
        term_years: int,
        effective_on: date,
        expires_on: date,
        application_id: int | None = None,
        renews_id: int | None = None,
    ) -> AgreementRecord:
        row = await self._db.fetchrow(
            """INSERT INTO agreement (alliance_id, party_a_code, party_b_code, application_id,
                                      renews_id, signed_on, term_years, effective_on, expires_on)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *""",
            alliance_id,
            party_a_code,
            party_b_code,
            application_id,
            renews_id,
            signed_on,
            term_years,
            effective_on,
            expires_on,
        )
        return AgreementRecord.from_row(row)

    async def close_agreement(
        self,
        agreement_id: int,
        closed_as: str,
        closed_on: date,
        reason: str | None = None,
        note: str | None = None,
    ) -> AgreementRecord:
        row = await self._db.fetchrow(
            """UPDATE agreement SET closed_as = $2, closed_on = $3, termination_reason = $4,
                                    termination_note = $5
               WHERE id = $1 RETURNING *""",
            agreement_id,
            closed_as,
            closed_on,
            reason,
            note,
        )
        return AgreementRecord.from_row(row)

    # -- bootstrap (used when an alliance is first registered, e.g. by the demo) ------------

    async def insert_alliance(self, alliance: AllianceRecord) -> None:
        await self._db.execute(
            """INSERT INTO alliance (id, name, specialty, level, form, lead_hospital_code,
                   lead_department, discipline_leader, founded_on, charter_version,
                   development_plan, filing_status, filing_number, standing)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)""",
            alliance.id,
            alliance.name,
            alliance.specialty,
            alliance.level,
            alliance.form,
            alliance.lead_hospital_code,
            alliance.lead_department,
            alliance.discipline_leader,
            alliance.founded_on,
            alliance.charter_version,
            alliance.development_plan,
            alliance.filing_status,
            alliance.filing_number,
            alliance.standing,
        )

    async def insert_council_seat(
        self,
        alliance_id: str,
        role: str,
        holder_name: str,
        holder_title: str | None,
        hospital_code: str,
        since: date,
    ) -> None:
        await self._db.execute(
            """INSERT INTO council_seat (alliance_id, role, holder_name, holder_title,
                                         hospital_code, since)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            alliance_id,
            role,
            holder_name,
            holder_title,
            hospital_code,
            since,
        )

    async def lock_founding(self, alliance_id: str) -> None:
        """Inside `transaction()`: one founding of this alliance at a time."""
        await self._db.execute(
            "SELECT pg_advisory_xact_lock(hashtext('alliance_founding:' || $1))", alliance_id
        )

    async def founding_plan(self, alliance_id: str) -> Any:
        """The founding `alliance-gateway init` registered (JSON values), or None."""
        plan = await self._db.fetchval(
            "SELECT plan FROM alliance_founding WHERE alliance_id = $1", alliance_id
        )
        return None if plan is None else json.loads(plan)

    async def record_founding(self, alliance_id: str, plan: dict[str, Any]) -> None:
        await self._db.execute(
            "INSERT INTO alliance_founding (alliance_id, plan) VALUES ($1, $2::jsonb)",
            alliance_id,
            json.dumps(plan, ensure_ascii=False, sort_keys=True),
        )

    async def set_inclusion_exception(
        self, alliance_id: str, hospital_code: str, criterion: str, reason: str
    ) -> None:
        await self._db.execute(
            """UPDATE membership SET inclusion_exception = $3, inclusion_exception_reason = $4
               WHERE alliance_id = $1 AND hospital_code = $2""",
            alliance_id,
            hospital_code,
            criterion,
            reason,
        )

    async def set_plaque_granted(self, alliance_id: str, hospital_code: str, on: date) -> None:
        await self._db.execute(
            """UPDATE membership SET plaque_granted_on = $3
               WHERE alliance_id = $1 AND hospital_code = $2""",
            alliance_id,
            hospital_code,
            on,
        )
