"""The PostgreSQL adapter for an exchange database: one pool per member, with that member's own
credentials, bounded size and timeouts. Filters, order and limits are pushed down into SQL; every
value is a bound parameter, every identifier comes from the checked column map."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
from opentelemetry import trace

from adapters.exchange.columns import ColumnMap, Table
from adapters.exchange.records import (
    ConsultationFilter,
    ConsultationRow,
    DecisionRow,
    ListQuery,
    ParticipationRow,
    PlacementRow,
    QualityControlRow,
    RecognitionTally,
    ReferralFilter,
    ReferralRow,
    ReportRow,
    ResultQuery,
    ResultRow,
    TrainingEventRow,
    TrainingFilter,
)
from adapters.observe import operation
from adapters.resilience import SourceError, SourceErrorCode
from adapters.rows import FromRow

R = TypeVar("R", bound=FromRow)


def traced(sql: str) -> str:
    """`sql` with the W3C sqlcommenter comment `/*traceparent='00-<trace>-<span>-<flags>'*/` of the
    current span, so that the hospital's DBA can find the trace of a statement in their logs.

    Only while a span is being recorded: every commented statement is unique text, so asyncpg's
    statement cache cannot reuse it (one more prepare per statement, and cached statements are
    pushed out). Unsampled and untraced requests send the plain SQL and keep the cache."""
    span = trace.get_current_span()
    if not span.is_recording():
        return sql
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return sql
    return (
        f"{sql} /*traceparent='00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}'*/"
    )


class _Where:
    """A WHERE clause built from parts, numbering parameters as they are added."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []

    def add(self, sql: str, *values: Any) -> None:
        """`sql` uses {} for each value, in order."""
        placeholders = []
        for value in values:
            self.params.append(value)
            placeholders.append(f"${len(self.params)}")
        self.parts.append(sql.format(*placeholders))

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    @property
    def sql(self) -> str:
        return " AND ".join(self.parts) if self.parts else "TRUE"


class ExchangeDatabase:
    kind = "postgres"

    def __init__(
        self,
        member: str,
        dsn: str,
        *,
        columns: ColumnMap | None = None,
        read_only: bool = False,
        pool_max_size: int = 5,
        connect_timeout_seconds: float = 2.0,
        statement_timeout_seconds: float = 5.0,
    ) -> None:
        self.member = member
        self.read_only = read_only
        self._dsn = dsn
        self._columns = columns or ColumnMap()
        self._pool_max_size = pool_max_size
        self._connect_timeout = connect_timeout_seconds
        self._statement_timeout_ms = int(statement_timeout_seconds * 1000)
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()

    def t(self, table: str) -> Table:
        return self._columns[table]

    async def pool(self) -> asyncpg.Pool:
        # Created on first use, not at start-up: a member that is down must not stop the gateway,
        # and a member that comes back is reached again without a restart.
        if self._pool is not None:
            return self._pool
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=0,
                    max_size=self._pool_max_size,
                    timeout=self._connect_timeout,
                    max_inactive_connection_lifetime=60,
                    server_settings={
                        "application_name": "alliance-gateway",
                        "statement_timeout": str(self._statement_timeout_ms),
                    },
                )
        assert self._pool is not None
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _fetch(self, row_type: type[R], sql: str, params: Sequence[Any]) -> list[R]:
        pool = await self.pool()
        return [row_type.from_row(r) for r in await pool.fetch(traced(sql), *params)]

    async def _fetchval(self, sql: str, params: Sequence[Any]) -> Any:
        pool = await self.pool()
        return await pool.fetchval(traced(sql), *params)

    def _refuse_writes(self) -> None:
        if self.read_only:
            raise SourceError(
                SourceErrorCode.SOURCE_READ_ONLY,
                self.member,
                f"Member {self.member}'s source is read-only; the change cannot be stored there.",
            )

    # -- generic list, insert and transition -------------------------------------------------

    def _list_where(
        self, table: str, time_col: str, parties: Sequence[str], q: ListQuery
    ) -> _Where:
        t, w = self.t(table), _Where()
        if q.parties is not None:
            w.add(
                "(" + " OR ".join(f"{t.col(p)} = ANY({{}}::text[])" for p in parties) + ")",
                *([list(q.parties)] * len(parties)),
            )
        if q.with_party is not None:
            w.add(
                "(" + " OR ".join(f"{t.col(p)} = {{}}" for p in parties) + ")",
                *([q.with_party] * len(parties)),
            )
        if q.since is not None:
            w.add(f"{t.col(time_col)} >= {{}}", q.since)
        if q.until is not None:
            w.add(f"{t.col(time_col)} < {{}}", q.until)
        if q.bound is not None:
            w.add(f"({t.col(time_col)}, {t.col('id')}) < ({{}}, {{}})", q.bound.value, q.bound.id)
        return w

    async def _page(
        self, row_type: type[R], table: str, time_col: str, w: _Where, limit: int
    ) -> list[R]:
        t = self.t(table)
        sql = (
            f"SELECT {t.select_list()} FROM {t.name} WHERE {w.sql} "
            f"ORDER BY {t.col(time_col)} DESC, {t.col('id')} DESC LIMIT {w.param(limit)}"
        )
        return await self._fetch(row_type, sql, w.params)

    async def _count(self, table: str, w: _Where) -> int:
        return await self._fetchval(
            f"SELECT count(*) FROM {self.t(table).name} WHERE {w.sql}", w.params
        )

    async def _by_ids(
        self, row_type: type[R], table: str, ids: Sequence[int], key: str = "id"
    ) -> list[R]:
        t = self.t(table)
        return await self._fetch(
            row_type,
            f"SELECT {t.select_list()} FROM {t.name} WHERE {t.col(key)} = ANY($1::bigint[])",
            [list(ids)],
        )

    async def _insert(
        self,
        row_type: type[R],
        table: str,
        values: dict[str, Any],
        conn: asyncpg.Connection | None = None,
    ) -> R:
        t = self.t(table)
        names = list(values)
        placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
        sql = (
            f"INSERT INTO {t.name} ({t.cols(names)}) VALUES ({placeholders}) "
            f"RETURNING {t.select_list()}"
        )
        db = conn or await self.pool()
        return row_type.from_row(await db.fetchrow(traced(sql), *values.values()))

    async def _transition(
        self,
        row_type: type[R],
        table: str,
        row_id: int,
        allowed_from: Sequence[str],
        changes: dict[str, Any],
    ) -> R | None:
        """Apply `changes` if the row's status is one of `allowed_from`; None otherwise."""
        self._refuse_writes()
        t, w = self.t(table), _Where()
        sets = [f"{t.col(k)} = {w.param(v)}" for k, v in changes.items()]
        sets += [f"{t.col('version')} = {t.col('version')} + 1", f"{t.col('updated_at')} = now()"]
        w.add(f"{t.col('id')} = {{}}", row_id)
        w.add(f"{t.col('status')} = ANY({{}}::text[])", list(allowed_from))
        sql = f"UPDATE {t.name} SET {', '.join(sets)} WHERE {w.sql} RETURNING {t.select_list()}"
        row = await (await self.pool()).fetchrow(traced(sql), *w.params)
        return row_type.from_row(row) if row else None

    # -- referrals -----------------------------------------------------------------------------

    _REFERRAL_PARTIES = ("from_hospital", "to_hospital")

    def _referral_where(self, q: ListQuery, f: ReferralFilter) -> _Where:
        t = self.t("referral")
        w = self._list_where("referral", "created_at", self._REFERRAL_PARTIES, q)
        if f.directions:
            w.add(f"{t.col('direction')} = ANY({{}}::text[])", list(f.directions))
        if f.statuses:
            w.add(f"{t.col('status')} = ANY({{}}::text[])", list(f.statuses))
        if f.green_channel is not None:
            w.add(f"{t.col('green_channel')} = {{}}", f.green_channel)
        return w

    @operation("referrals")
    async def referrals(self, q: ListQuery, f: ReferralFilter) -> list[ReferralRow]:
        return await self._page(
            ReferralRow, "referral", "created_at", self._referral_where(q, f), q.limit
        )

    @operation("count_referrals")
    async def count_referrals(self, q: ListQuery, f: ReferralFilter) -> int:
        return await self._count("referral", self._referral_where(q, f))

    @operation("referrals_by_id")
    async def referrals_by_id(self, ids: Sequence[int]) -> list[ReferralRow]:
        return await self._by_ids(ReferralRow, "referral", ids)

    @operation("insert_referral")
    async def insert_referral(self, values: dict[str, Any]) -> tuple[ReferralRow, bool]:
        """Returns the row and whether it is new: the idempotency key makes a retry harmless."""
        self._refuse_writes()
        t = self.t("referral")
        try:
            return await self._insert(ReferralRow, "referral", values), True
        except asyncpg.UniqueViolationError:
            existing = await self._fetch(
                ReferralRow,
                f"SELECT {t.select_list()} FROM {t.name} WHERE {t.col('idempotency_key')} = $1",
                [values["idempotency_key"]],
            )
            if not existing:
                raise
            return existing[0], False

    @operation("transition_referral")
    async def transition_referral(
        self, row_id: int, allowed_from: Sequence[str], changes: dict[str, Any]
    ) -> ReferralRow | None:
        return await self._transition(ReferralRow, "referral", row_id, allowed_from, changes)

    # -- consultations -------------------------------------------------------------------------

    _CONSULTATION_PARTIES = ("requesting_hospital", "invited_hospital")

    def _consultation_where(self, q: ListQuery, f: ConsultationFilter) -> _Where:
        t = self.t("consultation")
        w = self._list_where("consultation", "created_at", self._CONSULTATION_PARTIES, q)
        if f.kinds:
            w.add(f"{t.col('kind')} = ANY({{}}::text[])", list(f.kinds))
        if f.statuses:
            w.add(f"{t.col('status')} = ANY({{}}::text[])", list(f.statuses))
        return w

    @operation("consultations")
    async def consultations(self, q: ListQuery, f: ConsultationFilter) -> list[ConsultationRow]:
        return await self._page(
            ConsultationRow, "consultation", "created_at", self._consultation_where(q, f), q.limit
        )

    @operation("count_consultations")
    async def count_consultations(self, q: ListQuery, f: ConsultationFilter) -> int:
        return await self._count("consultation", self._consultation_where(q, f))

    @operation("consultations_by_id")
    async def consultations_by_id(self, ids: Sequence[int]) -> list[ConsultationRow]:
        return await self._by_ids(ConsultationRow, "consultation", ids)

    @operation("reports")
    async def reports(self, consultation_ids: Sequence[int]) -> list[ReportRow]:
        return await self._by_ids(
            ReportRow, "consultation_report", consultation_ids, key="consultation_id"
        )

    @operation("insert_consultation")
    async def insert_consultation(self, values: dict[str, Any]) -> tuple[ConsultationRow, bool]:
        self._refuse_writes()
        t = self.t("consultation")
        try:
            return await self._insert(ConsultationRow, "consultation", values), True
        except asyncpg.UniqueViolationError:
            existing = await self._fetch(
                ConsultationRow,
                f"SELECT {t.select_list()} FROM {t.name} WHERE {t.col('idempotency_key')} = $1",
                [values["idempotency_key"]],
            )
            if not existing:
                raise
            return existing[0], False

    @operation("transition_consultation")
    async def transition_consultation(
        self, row_id: int, allowed_from: Sequence[str], changes: dict[str, Any]
    ) -> ConsultationRow | None:
        return await self._transition(
            ConsultationRow, "consultation", row_id, allowed_from, changes
        )

    @operation("report_consultation")
    async def report_consultation(
        self, row_id: int, allowed_from: Sequence[str], expert_name: str, opinion: str
    ) -> ConsultationRow | None:
        """Store the signed opinion and move the consultation to REPORTED, atomically."""
        self._refuse_writes()
        pool = await self.pool()
        async with pool.acquire() as conn, conn.transaction():
            t, w = self.t("consultation"), _Where()
            w.add(f"{t.col('id')} = {{}}", row_id)
            w.add(f"{t.col('status')} = ANY({{}}::text[])", list(allowed_from))
            row = await conn.fetchrow(
                traced(
                    f"UPDATE {t.name} SET {t.col('status')} = 'REPORTED', "
                    f"{t.col('version')} = {t.col('version')} + 1, {t.col('updated_at')} = now() "
                    f"WHERE {w.sql} RETURNING {t.select_list()}"
                ),
                *w.params,
            )
            if row is None:
                return None
            await self._insert(
                ReportRow,
                "consultation_report",
                {"consultation_id": row_id, "expert_name": expert_name, "opinion": opinion},
                conn,
            )
            return ConsultationRow.from_row(row)

    # -- training and placements ---------------------------------------------------------------

    def _training_where(self, q: ListQuery, f: TrainingFilter) -> _Where:
        t, p = self.t("training_event"), self.t("training_participation")
        # An event concerns its host and every hospital that sent participants.
        w = self._list_where(
            "training_event",
            "held_on",
            (),
            ListQuery(parties=None, since=q.since, until=q.until, bound=q.bound, limit=q.limit),
        )
        for hospitals in (q.parties, (q.with_party,) if q.with_party else None):
            if hospitals is None:
                continue
            param = w.param(list(hospitals))
            w.parts.append(
                f"({t.col('host_hospital')} = ANY({param}::text[]) OR EXISTS (SELECT 1 FROM "
                f"{p.name} WHERE {p.col('event_id')} = {t.name}.{t.col('id')} "
                f"AND {p.col('hospital')} = ANY({param}::text[])))"
            )
        if f.kinds:
            w.add(f"{t.col('kind')} = ANY({{}}::text[])", list(f.kinds))
        if f.modes:
            w.add(f"{t.col('mode')} = ANY({{}}::text[])", list(f.modes))
        return w

    @operation("training_events")
    async def training_events(self, q: ListQuery, f: TrainingFilter) -> list[TrainingEventRow]:
        return await self._page(
            TrainingEventRow, "training_event", "held_on", self._training_where(q, f), q.limit
        )

    @operation("count_training_events")
    async def count_training_events(self, q: ListQuery, f: TrainingFilter) -> int:
        return await self._count("training_event", self._training_where(q, f))

    @operation("training_events_by_id")
    async def training_events_by_id(self, ids: Sequence[int]) -> list[TrainingEventRow]:
        return await self._by_ids(TrainingEventRow, "training_event", ids)

    @operation("participation")
    async def participation(self, event_ids: Sequence[int]) -> list[ParticipationRow]:
        return await self._by_ids(
            ParticipationRow, "training_participation", event_ids, key="event_id"
        )

    @operation("insert_training_event")
    async def insert_training_event(
        self, values: dict[str, Any], participants: dict[str, int]
    ) -> TrainingEventRow:
        self._refuse_writes()
        pool = await self.pool()
        async with pool.acquire() as conn, conn.transaction():
            event = await self._insert(TrainingEventRow, "training_event", values, conn)
            for hospital, count in participants.items():
                await self._insert(
                    ParticipationRow,
                    "training_participation",
                    {"event_id": event.id, "hospital": hospital, "participants": count},
                    conn,
                )
            return event

    def _placement_where(self, q: ListQuery) -> _Where:
        return self._list_where("placement", "starts_on", ("host_hospital", "home_hospital"), q)

    @operation("placements")
    async def placements(self, q: ListQuery) -> list[PlacementRow]:
        return await self._page(
            PlacementRow, "placement", "starts_on", self._placement_where(q), q.limit
        )

    @operation("count_placements")
    async def count_placements(self, q: ListQuery) -> int:
        return await self._count("placement", self._placement_where(q))

    @operation("placements_by_id")
    async def placements_by_id(self, ids: Sequence[int]) -> list[PlacementRow]:
        return await self._by_ids(PlacementRow, "placement", ids)

    @operation("insert_placement")
    async def insert_placement(self, values: dict[str, Any]) -> PlacementRow:
        self._refuse_writes()
        return await self._insert(PlacementRow, "placement", values)

    # -- results and recognition ---------------------------------------------------------------

    @operation("results")
    async def results(self, q: ResultQuery) -> list[ResultRow]:
        t, w = self.t("test_result"), _Where()
        w.add(f"{t.col('patient_pseudonym')} = {{}}", q.patient_pseudonym)
        w.add(f"{t.col('performed_at')} >= {{}}", q.performed_since)
        if q.item_codes:
            w.add(
                f"({t.col('item_code')} = ANY({{}}::text[]) OR {t.col('loinc')} = ANY({{}}::text[]))",
                list(q.item_codes),
                list(q.item_codes),
            )
        if q.bound is not None:
            w.add(
                f"({t.col('performed_at')}, {t.col('id')}) < ({{}}, {{}})",
                q.bound.value,
                q.bound.id,
            )
        return await self._page(ResultRow, "test_result", "performed_at", w, q.limit)

    @operation("results_by_id")
    async def results_by_id(self, ids: Sequence[int]) -> list[ResultRow]:
        return await self._by_ids(ResultRow, "test_result", ids)

    @operation("quality_control")
    async def quality_control(self, loincs: Sequence[str]) -> list[QualityControlRow]:
        t = self.t("quality_control")
        return await self._fetch(
            QualityControlRow,
            f"SELECT {t.select_list()} FROM {t.name} WHERE {t.col('loinc')} = ANY($1::text[])",
            [list(loincs)],
        )

    @operation("decisions_on")
    async def decisions_on(
        self, result_member: str, result_ids: Sequence[int]
    ) -> list[DecisionRow]:
        t = self.t("recognition_decision")
        return await self._fetch(
            DecisionRow,
            f"SELECT {t.select_list()} FROM {t.name} WHERE {t.col('result_member')} = $1 "
            f"AND {t.col('result_id')} = ANY($2::bigint[]) ORDER BY {t.col('decided_at')} DESC",
            [result_member, list(result_ids)],
        )

    @operation("decisions_by_id")
    async def decisions_by_id(self, ids: Sequence[int]) -> list[DecisionRow]:
        return await self._by_ids(DecisionRow, "recognition_decision", ids)

    @operation("insert_decision")
    async def insert_decision(self, values: dict[str, Any]) -> DecisionRow:
        self._refuse_writes()
        return await self._insert(DecisionRow, "recognition_decision", values)

    @operation("recognition_tally")
    async def recognition_tally(self, since: datetime, until: datetime) -> RecognitionTally:
        t = self.t("recognition_decision")
        rows = await (await self.pool()).fetch(
            traced(
                f"SELECT {t.col('decision')} AS decision, {t.col('reason')} AS reason, "
                f"count(*) AS n, coalesce(sum({t.col('retest_cost_fen')}), 0) AS cost "
                f"FROM {t.name} WHERE {t.col('decided_at')} >= $1 AND {t.col('decided_at')} < $2 "
                f"GROUP BY 1, 2"
            ),
            since,
            until,
        )
        recognized, cost, declined = 0, 0, {}
        for r in rows:
            if r["decision"] == "RECOGNIZED":
                recognized += r["n"]
                cost += r["cost"]
            else:
                declined[r["reason"]] = declined.get(r["reason"], 0) + r["n"]
        return RecognitionTally(
            recognized=recognized, declined_by_reason=declined, retests_avoided_cost_fen=int(cost)
        )

    @operation("ping")
    async def ping(self) -> None:
        await self._fetchval("SELECT 1", [])
