"""Live traffic for the demo (`alliance-gateway demo --simulate-activity`): while the gateway
serves, the demo hospitals' own systems (HIS, LIS) keep working, and every few seconds one of them
writes straight into an exchange database (前置机), or, for the hospital whose source is FHIR, to
its FHIR server (gateway/demo/fhir_system.py): a new referral, a step of one, a consultation
request, a consultation report or a new result. Subscribers of the gateway then see traffic that
did not come through it, found by the change watcher.

The writes look like a real HIS's because the change watcher can only tell by the rows: each is
one short transaction under the hospital's own credentials and column names; a new row takes the
database's defaults (created_at = updated_at = now(), version 1) and an update sets
updated_at = now() and version = version + 1. Patients are the demo's synthetic patients, written
only as the alliance pseudonym; the log names member, table, row and status, never a patient."""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, NamedTuple, Self

import asyncpg

from adapters.exchange.columns import ColumnMap, Table, quote
from adapters.fhir import mapping, workflow
from gateway.demo import activity
from gateway.demo import data as demo_data
from gateway.demo.activity import CST, SyntheticHospital, SyntheticPatient
from gateway.demo.fhir_system import FhirSystem, FhirWriteError
from gateway.demo.provision import demo_patients
from gateway.settings import Settings
from resolvers import clock
from resolvers.patients import pseudonym

log = logging.getLogger(__name__)

# provision.prepare makes its patients with this seed; the simulator must use the same ones.
# A hospital's systems work on its most recent open rows, not on years-old ones.
RECENT = 10


class Kind(StrEnum):
    REFERRAL = "referral"
    REFERRAL_STEP = "referral_step"
    CONSULTATION = "consultation"
    REPORT = "consultation_report"
    RESULT = "test_result"


# A referral takes up to three steps after it is made, so steps come most often; results are
# the everyday business of a lab, consultations rarer.
WEIGHTS: dict[Kind, float] = {
    Kind.REFERRAL: 0.25,
    Kind.REFERRAL_STEP: 0.35,
    Kind.CONSULTATION: 0.12,
    Kind.REPORT: 0.10,
    Kind.RESULT: 0.18,
}


@dataclass(frozen=True)
class SimulatedMember:
    """A demo hospital as its own systems see it: its exchange database and column names, or
    (kind "fhir") its FHIR server."""

    hospital: SyntheticHospital
    dsn: str
    columns: ColumnMap
    kind: str = "postgres"
    base_url: str = ""

    @property
    def code(self) -> str:
        return self.hospital.code


class RowRef(NamedTuple):
    """A row in one member's exchange database."""

    member: str
    row_id: int | str  # a FHIR server's ids are strings


@dataclass(frozen=True)
class SimulatedWrite:
    kind: Kind
    member: str  # whose exchange database holds the row
    table: str
    row_id: int | str  # for a report, the consultation's id (the report's key)
    version: int
    status: str  # a result has no status: its category, LAB or EXAM
    by: str  # whose systems wrote it: the invited hospital, for a report

    @property
    def ref(self) -> RowRef:
        return RowRef(self.member, self.row_id)


class WriteFailed(Exception):
    """A hospital's exchange database could not take a write (down, refusing, timing out)."""

    def __init__(self, member: str, error: str) -> None:
        super().__init__(f"{member}: {error}")
        self.member = member
        self.error = error


@dataclass
class Simulation:
    members: list[SimulatedMember]
    patients: list[SyntheticPatient]
    linkage_key: bytes
    timeout_seconds: float = 5.0
    _by_pseudonym: dict[str, SyntheticPatient] | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, today: date | None = None) -> Simulation:
        """The demo's members, credentials, column names and patients, from the configuration
        `alliance-gateway demo` wrote (alliance.toml)."""
        if settings.linkage_key is None:
            raise ValueError("the configuration has no linkage key: it is not the demo's")
        hospitals = _demo_hospitals([m.code for m in settings.members], today or clock.today())
        # The hospitals whose exchange database is PostgreSQL, and the one whose source is FHIR.
        # (The MariaDB one, when the demo has it, is written to only by the gateway.)
        members = [
            SimulatedMember(hospitals[m.code], m.resolved_dsn(), ColumnMap(m.columns))
            if m.kind == "postgres"
            else SimulatedMember(
                hospitals[m.code], "", ColumnMap({}), kind="fhir", base_url=m.base_url or ""
            )
            for m in settings.members
            if m.kind in ("postgres", "fhir")
        ]
        return cls(
            members=members,
            patients=demo_patients(list(hospitals.values())),
            linkage_key=settings.linkage_key.get_secret_value().encode(),
        )

    @property
    def hospitals(self) -> list[SyntheticHospital]:
        return [m.hospital for m in self.members]

    def member(self, code: str) -> SimulatedMember:
        for m in self.members:
            if m.code == code:
                return m
        raise ValueError(f"{code} is not a simulated member")

    def patient_of(self, pseudo: str) -> SyntheticPatient | None:
        if self._by_pseudonym is None:
            self._by_pseudonym = {
                pseudonym(p.resident_id, self.linkage_key): p for p in self.patients
            }
        return self._by_pseudonym.get(pseudo)


def _demo_hospitals(codes: Sequence[str], today: date) -> dict[str, SyntheticHospital]:
    """The hospitals provision.prepare made patients for, in its order: the demo's own and
    the synthetic extra members (`--members N`)."""
    known = {h.code for h in demo_data.HOSPITALS}
    extra = demo_data.extra_hospitals(len([c for c in codes if c not in known]))
    roles = {m.code: m.role for m in demo_data.demo_members(today)}
    hospitals = {
        h.code: SyntheticHospital(h.code, h.grade, roles.get(h.code, "MEMBER"))
        for h in [*demo_data.HOSPITALS, *extra]
    }
    unknown = sorted(set(codes) - set(hospitals))
    if unknown:
        raise ValueError(f"members {unknown} are not demo hospitals")
    return hospitals


# -- SQL under a hospital's own column names ---------------------------------------------------


def _aliased(t: Table, logicals: Sequence[str]) -> str:
    return ", ".join(f"{t.col(c)} AS {quote(c)}" for c in logicals)


_RETURNING = ("id", "version", "status")


async def _insert(
    conn: asyncpg.Connection, t: Table, values: Mapping[str, Any], returning: Sequence[str]
) -> asyncpg.Record:
    """A new row: id, created_at, updated_at and version are left to the table's defaults."""
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    sql = (
        f"INSERT INTO {t.name} ({t.cols(values)}) VALUES ({placeholders}) "
        f"RETURNING {_aliased(t, returning)}"
    )
    return await conn.fetchrow(sql, *values.values())


async def _update(
    conn: asyncpg.Connection, t: Table, row_id: int, status: str, changes: Mapping[str, Any]
) -> asyncpg.Record | None:
    """Apply `changes` if the row is still in `status`: someone else (the gateway, a clerk)
    may have moved it since it was read. None if so."""
    sets = [f"{t.col(c)} = ${i}" for i, c in enumerate(changes, start=3)]
    # Every update a HIS makes, and what the change watcher reads.
    sets += [f"{t.col('version')} = {t.col('version')} + 1", f"{t.col('updated_at')} = now()"]
    sql = (
        f"UPDATE {t.name} SET {', '.join(sets)} "
        f"WHERE {t.col('id')} = $1 AND {t.col('status')} = $2 "
        f"RETURNING {_aliased(t, _RETURNING)}"
    )
    return await conn.fetchrow(sql, row_id, status, *changes.values())


@asynccontextmanager
async def _connect(member: SimulatedMember, seconds: float) -> AsyncIterator[asyncpg.Connection]:
    """A connection with the hospital's own credentials. Failures become WriteFailed, named by
    the error's type only: a driver's message may quote row values."""
    try:
        conn = await asyncpg.connect(member.dsn, timeout=seconds, command_timeout=seconds)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        raise WriteFailed(member.code, type(e).__name__) from e
    try:
        yield conn
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        raise WriteFailed(member.code, type(e).__name__) from e
    finally:
        await conn.close()


@asynccontextmanager
async def _fhir(member: SimulatedMember, seconds: float) -> AsyncIterator[FhirSystem]:
    """The hospital's integration engine. Failures become WriteFailed, as for a database."""
    try:
        async with FhirSystem(member.base_url, seconds) as fhir:
            yield fhir
    except FhirWriteError as e:
        raise WriteFailed(member.code, e.error) from e
    except mapping.Malformed as e:
        raise WriteFailed(member.code, "off the mapping") from e


_OPEN_REFERRALS = ",".join(f"{mapping.STATUS}|{s}" for s in activity.OPEN_REFERRAL)
_OPEN_CONSULTATIONS = ",".join(
    f"{mapping.CONSULTATION_STATUS}|{s}" for s in activity.OPEN_CONSULTATION
)
_REFERRAL_CATEGORY = f"{mapping.SNOMED}|{mapping.REFERRAL_CATEGORY['code']}"
_CONSULTATION_CATEGORY = f"{mapping.SNOMED}|{mapping.CONSULTATION_CATEGORY['code']}"


def _fhir_recent(
    category: str, statuses: str, target: RowRef | None, party: str
) -> list[tuple[str, str]]:
    """Search parameters: the target, or the most recent open ones `party` takes part in."""
    params = [("category", category), ("_tag", statuses)]
    if target is not None:
        return [*params, ("_id", str(target.row_id))]
    return [
        *params,
        ("_tag", f"{mapping.PARTY}|{party}"),
        ("_sort", "-authored"),
        ("_count", str(3 * RECENT)),
    ]


# -- the five kinds of write -------------------------------------------------------------------


@dataclass(frozen=True)
class _Tick:
    simulation: Simulation
    actor: SimulatedMember
    rng: random.Random
    now: datetime
    target: RowRef | None

    def connect(self, member: SimulatedMember) -> AbstractAsyncContextManager[asyncpg.Connection]:
        return _connect(member, self.simulation.timeout_seconds)

    def fhir(self, member: SimulatedMember) -> AbstractAsyncContextManager[FhirSystem]:
        return _fhir(member, self.simulation.timeout_seconds)

    def wrote_row(self, kind: Kind, member: str, table: str, row: Any) -> SimulatedWrite:
        return SimulatedWrite(kind, member, table, row.id, row.version, row.status, self.actor.code)

    def wrote(
        self, kind: Kind, member: str, table: str, rec: asyncpg.Record | Mapping[str, Any]
    ) -> SimulatedWrite:
        return SimulatedWrite(
            kind, member, table, rec["id"], rec["version"], rec["status"], self.actor.code
        )


async def _new_referral(tick: _Tick) -> SimulatedWrite | None:
    sim, me = tick.simulation, tick.actor
    number = f"{me.code}-R{tick.now:%Y%m%d}-{secrets.token_hex(4).upper()}"
    row = activity.new_referral(
        tick.rng, me.hospital, sim.hospitals, sim.patients, sim.linkage_key, tick.now, number
    )
    if row is None:
        return None
    if me.kind == "fhir":
        entries = workflow.create_entries(workflow.REFERRAL, {**row, "created_at": tick.now})
        async with tick.fhir(me) as fhir:
            written = await fhir.transaction(entries)
            if written is None:
                return None
            created = mapping.referral_row(written[0])
        return tick.wrote_row(Kind.REFERRAL, me.code, "referral", created)
    async with tick.connect(me) as conn, conn.transaction():
        rec = await _insert(conn, me.columns["referral"], row, _RETURNING)
    return tick.wrote(Kind.REFERRAL, me.code, "referral", rec)


async def _step_referral_fhir(tick: _Tick) -> SimulatedWrite | None:
    me = tick.actor
    async with tick.fhir(me) as fhir:
        params = _fhir_recent(_REFERRAL_CATEGORY, _OPEN_REFERRALS, tick.target, me.code)
        found = [mapping.referral_row(r) for r in await fhir.search("ServiceRequest", params)]
        mine = [r for r in found if tick.target is not None or r.from_hospital == me.code]
        if not mine:
            return None
        row = tick.rng.choice(mine[:RECENT])
        values = mapping.row_values(row)
        changes = activity.referral_step(tick.rng, values, tick.now)
        if changes is None:
            return None
        # The step and the referral's Task together, at the version read.
        entries = workflow.update_entries(
            workflow.REFERRAL, {**values, **changes}, row.id, row.version, tick.now
        )
        written = await fhir.transaction(entries)
        if written is None:
            return None
        moved = mapping.referral_row(written[0])
    return tick.wrote_row(Kind.REFERRAL_STEP, me.code, "referral", moved)


async def _step_referral(tick: _Tick) -> SimulatedWrite | None:
    me = tick.actor
    if me.kind == "fhir":
        return await _step_referral_fhir(tick)
    t = me.columns["referral"]
    where = f"{t.col('status')} = ANY($1::text[]) AND "
    if tick.target is not None:
        where += f"{t.col('id')} = $2"
        key: Any = tick.target.row_id
    else:
        where += (
            f"{t.col('from_hospital')} = $2 "
            f"ORDER BY {t.col('created_at')} DESC, {t.col('id')} DESC LIMIT {RECENT}"
        )
        key = me.code
    async with tick.connect(me) as conn:
        sql = f"SELECT {t.select_list()} FROM {t.name} WHERE {where}"
        candidates = await conn.fetch(sql, list(activity.OPEN_REFERRAL), key)
        if not candidates:
            return None
        row = dict(tick.rng.choice(candidates))
        changes = activity.referral_step(tick.rng, row, tick.now)
        if changes is None:
            return None
        async with conn.transaction():
            rec = await _update(conn, t, row["id"], row["status"], changes)
    return None if rec is None else tick.wrote(Kind.REFERRAL_STEP, me.code, "referral", rec)


async def _new_consultation(tick: _Tick) -> SimulatedWrite | None:
    sim, me = tick.simulation, tick.actor
    row = activity.new_consultation(
        tick.rng, me.hospital, sim.hospitals, sim.patients, sim.linkage_key, tick.now
    )
    if row is None:
        return None
    if me.kind == "fhir":
        entries = workflow.create_entries(workflow.CONSULTATION, {**row, "created_at": tick.now})
        async with tick.fhir(me) as fhir:
            written = await fhir.transaction(entries)
            if written is None:
                return None
            created = mapping.consultation_row(written[0])
        return tick.wrote_row(Kind.CONSULTATION, me.code, "consultation", created)
    async with tick.connect(me) as conn, conn.transaction():
        rec = await _insert(conn, me.columns["consultation"], row, _RETURNING)
    return tick.wrote(Kind.CONSULTATION, me.code, "consultation", rec)


def _unreported(holder: SimulatedMember, by_id: bool) -> str:
    """Open consultations without a report: one by id ($2), or the most recent invited to a
    hospital ($2)."""
    t, r = holder.columns["consultation"], holder.columns["consultation_report"]
    match = f"c.{t.col('id')} = $2" if by_id else f"c.{t.col('invited_hospital')} = $2"
    order = "" if by_id else f" ORDER BY c.{t.col('created_at')} DESC, c.{t.col('id')} DESC"
    return (
        f"SELECT {t.select_list()} FROM {t.name} c "
        f"WHERE c.{t.col('status')} = ANY($1::text[]) AND {match} AND NOT EXISTS ("
        f"SELECT 1 FROM {r.name} WHERE {r.col('consultation_id')} = c.{t.col('id')})"
        f"{order} LIMIT {RECENT}"
    )


async def _find_unreported(tick: _Tick) -> tuple[SimulatedMember, dict[str, Any]] | None:
    """A consultation awaiting the report: the target, or a recent one invited to the actor,
    from the databases of the hospitals that invite it (a consultation lives at the requester)."""
    sim, open_ = tick.simulation, list(activity.OPEN_CONSULTATION)
    if tick.target is not None:
        holders = [sim.member(tick.target.member)]
        key: Any = tick.target.row_id
    else:
        holders = [
            m
            for m in sim.members
            if tick.actor.hospital in activity.partners(m.hospital, sim.hospitals, True)
        ]
        tick.rng.shuffle(holders)
        key = tick.actor.code
    for holder in holders:
        if holder.kind == "fhir":
            candidates = await _unreported_fhir(tick, holder)
        else:
            async with tick.connect(holder) as conn:
                sql = _unreported(holder, tick.target is not None)
                candidates = [dict(r) for r in await conn.fetch(sql, open_, key)]
        if candidates:
            return holder, tick.rng.choice(candidates)
    return None


async def _unreported_fhir(tick: _Tick, holder: SimulatedMember) -> list[dict[str, Any]]:
    """Open consultations at a FHIR holder without a report (the reports come along by
    _revinclude): the target, or recent ones invited to the actor."""
    params = _fhir_recent(_CONSULTATION_CATEGORY, _OPEN_CONSULTATIONS, tick.target, tick.actor.code)
    async with tick.fhir(holder) as fhir:
        found = await fhir.search(
            "ServiceRequest", [*params, ("_revinclude", "DiagnosticReport:based-on")]
        )
    reported = {
        mapping.report_row(r).consultation_id
        for r in found
        if r.get("resourceType") == "DiagnosticReport"
    }
    rows = [mapping.consultation_row(r) for r in found if r.get("resourceType") == "ServiceRequest"]
    return [
        mapping.row_values(r)
        for r in rows
        if r.id not in reported
        and (tick.target is not None or r.invited_hospital == tick.actor.code)
    ][:RECENT]


async def _report_fhir(
    tick: _Tick, holder: SimulatedMember, row: dict[str, Any], changes: dict[str, Any], report: Any
) -> SimulatedWrite | None:
    """The opinion and the consultation's move to REPORTED (with its Task and Appointment) in one
    transaction, at the version read."""
    issued = {"expert_name": report["expert_name"], "opinion": report["opinion"]}
    entries = workflow.update_entries(
        workflow.CONSULTATION, {**row, **changes}, row["id"], row["version"], tick.now
    )
    entries.append(
        {
            "resource": mapping.report_resource(issued, row, tick.now),
            "request": {"method": "POST", "url": "DiagnosticReport"},
        }
    )
    async with tick.fhir(holder) as fhir:
        if await fhir.transaction(entries) is None:
            return None
    return SimulatedWrite(
        Kind.REPORT,
        holder.code,
        "consultation_report",
        row["id"],
        1,
        "REPORTED",
        row["invited_hospital"],
    )


async def _report(tick: _Tick) -> SimulatedWrite | None:
    found = await _find_unreported(tick)
    if found is None:
        return None
    holder, row = found
    patient = tick.simulation.patient_of(row["patient_pseudonym"])
    report = activity.consultation_report(tick.rng, row, patient, tick.now.astimezone(CST).date())
    changes = {
        "status": "REPORTED",
        "expert_name": report["expert_name"],
        "expert_title": report["expert_title"],
        "scheduled_at": row["scheduled_at"] or tick.now,
    }
    if holder.kind == "fhir":
        return await _report_fhir(tick, holder, row, changes, report)
    t, r = holder.columns["consultation"], holder.columns["consultation_report"]
    values = {
        "consultation_id": row["id"],
        "expert_name": report["expert_name"],
        "opinion": report["opinion"],
    }
    async with tick.connect(holder) as conn, conn.transaction():
        moved = await _update(conn, t, row["id"], row["status"], changes)
        if moved is None:
            return None
        rec = await _insert(conn, r, values, ("consultation_id", "version"))
    # The invited hospital's systems issue the report, into the requester's database.
    return SimulatedWrite(
        Kind.REPORT,
        holder.code,
        "consultation_report",
        rec["consultation_id"],
        rec["version"],
        moved["status"],
        row["invited_hospital"],
    )


async def _new_result(tick: _Tick) -> SimulatedWrite | None:
    sim, me = tick.simulation, tick.actor
    row = activity.new_result(tick.rng, me.code, sim.patients, sim.linkage_key, tick.now)
    if row is None:
        return None
    if me.kind == "fhir":
        # The result with the DiagnosticReport of its draw, as the LIS releases it.
        async with tick.fhir(me) as fhir:
            written = await fhir.transaction(workflow.draw_entries([row], me.code))
            if written is None:
                return None
            result = mapping.result_row(written[0])
        return SimulatedWrite(
            Kind.RESULT, me.code, "test_result", result.id, result.version, result.category, me.code
        )
    async with tick.connect(me) as conn, conn.transaction():
        rec = await _insert(conn, me.columns["test_result"], row, ("id", "version", "category"))
    return tick.wrote(Kind.RESULT, me.code, "test_result", {**dict(rec), "status": rec["category"]})


_WRITERS: dict[Kind, Callable[[_Tick], Awaitable[SimulatedWrite | None]]] = {
    Kind.REFERRAL: _new_referral,
    Kind.REFERRAL_STEP: _step_referral,
    Kind.CONSULTATION: _new_consultation,
    Kind.REPORT: _report,
    Kind.RESULT: _new_result,
}


def _kinds_in_turn(rng: random.Random) -> list[Kind]:
    """Every kind once, in a weighted random order: what to try when the first has nothing to
    do (the lead requests no consultations; nobody invites a county hospital)."""
    left = dict(WEIGHTS)
    order: list[Kind] = []
    while left:
        kind = rng.choices(list(left), weights=list(left.values()))[0]
        order.append(kind)
        del left[kind]
    return order


async def simulate_once(
    simulation: Simulation,
    rng: random.Random | None = None,
    *,
    member: str | None = None,
    kind: Kind | None = None,
    target: RowRef | None = None,
    now: datetime | None = None,
) -> SimulatedWrite | None:
    """One write by one hospital's systems, logged; None when there was nothing to do.

    `member` (whose systems act) defaults to a random member, `kind` to a weighted random one,
    falling back on the other kinds when that one has nothing to do. `target` names the row a
    REFERRAL_STEP or REPORT works on instead of a recent one; the acting hospital then follows
    from the row. Raises WriteFailed when a hospital's database cannot take the write."""
    if target is not None and (kind not in (Kind.REFERRAL_STEP, Kind.REPORT) or member):
        raise ValueError("a target goes with kind REFERRAL_STEP or REPORT and no member")
    rng = rng or random.Random()
    if target is not None:
        actor = simulation.member(target.member)
    elif member is not None:
        actor = simulation.member(member)
    else:
        actor = rng.choice(simulation.members)
    tick = _Tick(simulation, actor, rng, now or datetime.now(CST), target)
    for each in [kind] if kind else _kinds_in_turn(rng):
        write = await _WRITERS[each](tick)
        if write is not None:
            log.info(
                "simulated %s %s %s %s",
                write.member,
                write.table,
                write.row_id,
                write.status,
                extra={"member": write.member, "version": write.version, "by": write.by},
            )
            return write
    return None


# -- the background loop -----------------------------------------------------------------------


class ActivitySimulator:
    """Calls simulate_once every `interval` seconds (± `jitter` of it) until stopped. A write
    that fails is logged and the loop goes on: a hospital's database may be down for a while."""

    def __init__(
        self,
        simulation: Simulation,
        interval: float = 3.0,
        *,
        rng: random.Random | None = None,
        jitter: float = 0.5,
    ) -> None:
        if interval <= 0 or not 0 <= jitter < 1:
            raise ValueError("the interval must be positive and the jitter in [0, 1)")
        self.simulation = simulation
        self.interval = interval
        self.jitter = jitter
        self.rng = rng or random.Random()
        self.writes = 0
        self.failures = 0
        self.recent: deque[SimulatedWrite] = deque(maxlen=100)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the simulator is running already")
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="demo-simulate-activity")

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Stop after the write in progress, if any; cancel it after `grace_seconds`."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        grace = grace_seconds if grace_seconds is not None else 2 * self.simulation.timeout_seconds
        try:
            await asyncio.wait_for(task, grace)
        except TimeoutError:
            log.warning("simulated activity cancelled mid-write on stopping")

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _run(self) -> None:
        while True:
            delay = self.interval * self.rng.uniform(1 - self.jitter, 1 + self.jitter)
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
                return
            except TimeoutError:
                pass
            await self.tick()

    async def tick(self) -> SimulatedWrite | None:
        try:
            write = await simulate_once(self.simulation, self.rng)
        except WriteFailed as e:
            self.failures += 1
            log.warning(
                "simulated write at %s failed: %s",
                e.member,
                e.error,
                extra={"member": e.member, "error": e.error},
            )
            return None
        except Exception as e:
            # A bug must not take the demo down with it; its type says enough to find it.
            self.failures += 1
            log.warning(
                "simulated write failed: %s", type(e).__name__, extra={"error": type(e).__name__}
            )
            return None
        if write is not None:
            self.writes += 1
            self.recent.append(write)
        return write


def simulate_activity(
    source: Settings | Simulation,
    interval: float = 3.0,
    *,
    rng: random.Random | None = None,
) -> ActivitySimulator:
    """`async with simulate_activity(settings, 3.0):` the demo hospitals write while the block
    runs. `source` is the demo's configuration or a Simulation built from it."""
    simulation = source if isinstance(source, Simulation) else Simulation.from_settings(source)
    return ActivitySimulator(simulation, interval, rng=rng)
