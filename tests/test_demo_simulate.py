"""`demo --simulate-activity`: the demo hospitals' own systems writing into their exchange
databases while the gateway serves. Against the demo's PostgreSQL: the members' own databases
(only adding rows, and only stepping rows these tests made) and scratch databases on the same
server for the random walk."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import random
import re
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from adapters.exchange import bulk
from adapters.exchange.columns import ColumnMap
from gateway import cli
from gateway.app import create_app
from gateway.demo import activity as da
from gateway.demo.simulate import (
    ActivitySimulator,
    Kind,
    RowRef,
    SimulatedMember,
    SimulatedWrite,
    Simulation,
    simulate_activity,
    simulate_once,
)
from gateway.logs import JsonFormatter
from gateway.settings import Settings, load_settings
from resolvers import global_ids
from resolvers.patients import pseudonym
from resolvers.referrals import expected_direction
from tests.conftest import Demo, free_port, serving
from tests.events_client import next_event, subscribed, watching

LOGGER = "gateway.demo.simulate"
ID_LIKE = re.compile(r"\d{17}[\dX]")
HEX64 = re.compile(r"[0-9a-f]{64}")
HAN = re.compile(r"[\u4e00-\u9fff]")
LOG_LINE = re.compile(
    r"^simulated [A-Z0-9]+ (referral|consultation_report|consultation|test_result) "
    r"(\d+|[0-9a-f-]{36}) [A-Z_]+$"  # a row id, or a FHIR server's
)
STEPS = {"INITIATED": {"ACCEPTED", "REJECTED"}, "ACCEPTED": {"ARRIVED"}, "ARRIVED": {"COMPLETED"}}


@pytest.fixture(scope="module")
def settings(demo_env: Demo) -> Settings:
    return load_settings(demo_env.root / "alliance.toml")


@pytest.fixture(scope="module")
def simulation(settings: Settings) -> Simulation:
    """The demo's members and credentials, with patients of their own: other tests count the
    demo patients' rows."""
    demo = Simulation.from_settings(settings)
    fresh = da.synthetic_patients(demo.hospitals, 300, random.Random(4711))
    return Simulation(demo.members, fresh, demo.linkage_key)


def pseudonyms(sim: Simulation) -> set[str]:
    return {pseudonym(p.resident_id, sim.linkage_key) for p in sim.patients}


async def fetch(member: SimulatedMember, sql: str, *args: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(member.dsn)
    try:
        return [dict(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


async def row_of(member: SimulatedMember, table: str, row_id: int | str) -> dict[str, Any]:
    t = member.columns[table]
    key = "consultation_id" if table == "consultation_report" else "id"
    rows = await fetch(
        member, f"SELECT {t.select_list()} FROM {t.name} WHERE {t.col(key)} = $1", row_id
    )
    assert len(rows) == 1
    return rows[0]


def just_now(value: datetime) -> bool:
    return abs(datetime.now(da.CST) - value) < timedelta(minutes=1)


# -- the demo's own configuration ---------------------------------------------------------------


def test_the_simulation_is_the_demos_members_credentials_and_patients(
    demo_env: Demo, settings: Settings
) -> None:
    sim = Simulation.from_settings(settings)
    # The hospitals whose exchange database is PostgreSQL and the FHIR one (not the demo's
    # MariaDB one, if any).
    listed = [m for m in demo_env.info["members"] if m["kind"] in ("postgres", "fhir")]
    assert [m.code for m in sim.members] == [m["code"] for m in listed]
    # Each hospital's systems write with that hospital's own credentials, or to its FHIR server.
    assert [m.dsn or m.base_url for m in sim.members] == [
        m.get("dsn") or m["base_url"] for m in listed
    ]
    assert sim.member("LYZG").hospital == da.SyntheticHospital("LYZG", "GRADE_3A", "LEAD")
    assert sim.member("LHRH").columns["referral"].col("created_at") == '"cjsj"'
    assert sim.member("LHZY").columns["referral"].col("created_at") == '"created_at"'
    # The same synthetic patients demo.prepare seeded, living at the same hospitals.
    by_id = {p.resident_id: p for p in sim.patients}
    assert len(by_id) == 150 * len(demo_env.info["members"])
    for sample in demo_env.info["sample_patients"]:
        assert list(by_id[sample["resident_id"]].hospitals) == sample["members"]


def test_the_simulation_knows_the_extra_members_and_refuses_strangers(settings: Settings) -> None:
    # An extra member's exchange database is PostgreSQL (the last one may be the MariaDB one).
    extra = settings.members[-1].model_copy(update={"code": "SYN001", "kind": "postgres"})
    sim = Simulation.from_settings(
        settings.model_copy(update={"members": [*settings.members, extra]})
    )
    # demo --members 1: the same hospitals and patients demo.prepare made for it.
    assert sim.member("SYN001").hospital == da.SyntheticHospital("SYN001", "GRADE_2B", "MEMBER")
    assert len(sim.patients) == 150 * (len(settings.members) + 1)
    assert any("SYN001" in p.hospitals for p in sim.patients)
    stranger = settings.members[-1].model_copy(update={"code": "ELSEWHERE"})
    with pytest.raises(ValueError, match="ELSEWHERE"):
        Simulation.from_settings(settings.model_copy(update={"members": [stranger]}))
    with pytest.raises(ValueError, match="linkage key"):
        Simulation.from_settings(settings.model_copy(update={"linkage_key": None}))


async def test_the_simulation_finds_a_demo_patient_by_pseudonym(
    demo_env: Demo, settings: Settings
) -> None:
    sim = Simulation.from_settings(settings)
    lhzy = sim.member("LHZY")
    seeded = await fetch(lhzy, "SELECT patient_pseudonym FROM referral ORDER BY id LIMIT 20")
    assert seeded and all(sim.patient_of(r["patient_pseudonym"]) for r in seeded)
    assert sim.patient_of("0" * 64) is None


# -- each kind of write, in the members' own databases --------------------------------------------


async def test_a_new_referral_is_inserted_as_a_his_inserts_it(simulation: Simulation) -> None:
    for code, direction in (("LHZY", "UP"), ("LYZG", "DOWN")):
        write = await simulate_once(simulation, random.Random(1), member=code, kind=Kind.REFERRAL)
        assert write is not None
        assert (write.kind, write.member, write.by, write.table) == (
            Kind.REFERRAL,
            code,
            code,
            "referral",
        )
        assert (write.version, write.status) == (1, "INITIATED")
        row = await row_of(simulation.member(code), "referral", write.row_id)
        assert row["version"] == 1 and row["created_at"] == row["updated_at"]
        assert just_now(row["created_at"])
        assert row["status"] == "INITIATED" and row["direction"] == direction
        assert row["from_hospital"] == code and row["patient_pseudonym"] in pseudonyms(simulation)
        # By role first (seed 001 #16, #17): the lead refers DOWN even to a hospital of its own
        # grade; between two others, by grade.
        me, to = simulation.member(code).hospital, simulation.member(row["to_hospital"]).hospital
        assert expected_direction(me.role, me.grade, to.role, to.grade) == direction
        if direction == "DOWN":
            assert row["discharge_summary"] and row["rehab_advice"]


async def _step_to_the_end(sim: Simulation, write: SimulatedWrite) -> list[dict[str, Any]]:
    member = sim.member(write.member)
    history = [await row_of(member, "referral", write.row_id)]
    rng = random.Random(write.row_id)
    while (
        step := await simulate_once(sim, rng, kind=Kind.REFERRAL_STEP, target=write.ref)
    ) is not None:
        assert step.ref == write.ref and step.table == "referral"
        history.append(await row_of(member, "referral", write.row_id))
        assert step.version == history[-1]["version"] and step.status == history[-1]["status"]
    return history


async def test_status_steps_bump_version_and_updated_at(simulation: Simulation) -> None:
    finished: list[dict[str, Any]] = []
    for seed in range(4):
        made = await simulate_once(
            simulation, random.Random(seed), member="LHGK", kind=Kind.REFERRAL
        )
        assert made is not None
        history = await _step_to_the_end(simulation, made)
        for before, after in itertools.pairwise(history):
            assert after["status"] in STEPS[before["status"]]
            assert after["version"] == before["version"] + 1
            assert after["updated_at"] > before["updated_at"]
            assert after["created_at"] == history[0]["created_at"]
        assert history[-1]["status"] in ("REJECTED", "COMPLETED")
        finished.append(history[-1])
    completed = [r for r in finished if r["status"] == "COMPLETED"]
    assert completed, "four referrals, none completed"
    for row in completed:
        assert row["version"] == 4 and row["arrived_at"] <= row["completed_at"]
        assert row["treatment_result"]
        if row["direction"] == "DOWN":
            assert row["discharge_summary"] and row["rehab_advice"]
    for row in finished:
        if row["status"] == "REJECTED":
            assert row["status_reason"] and row["version"] == 2


async def test_lhrh_rows_are_written_under_its_own_column_names(simulation: Simulation) -> None:
    lhrh = simulation.member("LHRH")
    columns = await fetch(
        lhrh,
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_name IN ('referral', 'test_result')",
    )
    names = {(c["table_name"], c["column_name"]) for c in columns}
    assert ("referral", "cjsj") in names and ("referral", "created_at") not in names
    assert ("test_result", "jcsj") in names and ("test_result", "performed_at") not in names

    made = await simulate_once(simulation, random.Random(5), member="LHRH", kind=Kind.REFERRAL)
    assert made is not None
    sql = "SELECT hzxb, hznl, zdbm, zdmc, cjsj, updated_at, version FROM referral WHERE id = $1"
    [row] = await fetch(lhrh, sql, made.row_id)
    assert row["hzxb"] in ("MALE", "FEMALE") and 0 <= row["hznl"] <= 150
    assert row["zdbm"] and row["zdmc"] and row["cjsj"] == row["updated_at"]
    assert row["version"] == 1
    stepped = await simulate_once(
        simulation, random.Random(5), kind=Kind.REFERRAL_STEP, target=made.ref
    )
    assert stepped is not None and stepped.version == 2
    [after] = await fetch(lhrh, sql, made.row_id)
    assert after["version"] == 2 and after["cjsj"] == row["cjsj"]
    assert after["updated_at"] > row["updated_at"]

    result = await simulate_once(simulation, random.Random(6), member="LHRH", kind=Kind.RESULT)
    assert result is not None and result.table == "test_result"
    [res] = await fetch(
        lhrh,
        "SELECT xmdm, xmmc, ckfw, jcsj, category, patient_pseudonym, created_at, updated_at, "
        "version FROM test_result WHERE id = $1",
        result.row_id,
    )
    assert res["xmdm"].startswith("LHRH") and res["xmmc"] and res["category"] == result.status
    assert res["jcsj"] < res["created_at"] == res["updated_at"] and res["version"] == 1
    assert res["patient_pseudonym"] in pseudonyms(simulation)


async def test_a_consultation_request_and_its_report(simulation: Simulation) -> None:
    made = await simulate_once(simulation, random.Random(2), member="LHZY", kind=Kind.CONSULTATION)
    assert made is not None and (made.table, made.version, made.status) == (
        "consultation",
        1,
        "REQUESTED",
    )
    lhzy = simulation.member("LHZY")
    asked = await row_of(lhzy, "consultation", made.row_id)
    assert asked["consent_obtained"] is True and asked["requesting_hospital"] == "LHZY"
    assert asked["version"] == 1 and asked["created_at"] == asked["updated_at"]
    assert asked["patient_pseudonym"] in pseudonyms(simulation)
    invited = {h.code for h in da.partners(lhzy.hospital, simulation.hospitals, True)}
    assert asked["invited_hospital"] in invited

    report = await simulate_once(simulation, random.Random(3), kind=Kind.REPORT, target=made.ref)
    assert report is not None
    # Written into the requester's database, by the invited hospital's systems.
    assert (report.member, report.by, report.table) == (
        "LHZY",
        asked["invited_hospital"],
        "consultation_report",
    )
    assert (report.row_id, report.version, report.status) == (made.row_id, 1, "REPORTED")
    reported = await row_of(lhzy, "consultation", made.row_id)
    assert reported["status"] == "REPORTED" and reported["version"] == 2
    assert reported["updated_at"] > asked["updated_at"] and reported["scheduled_at"]
    issued = await row_of(lhzy, "consultation_report", made.row_id)
    assert issued["expert_name"] == reported["expert_name"] and issued["opinion"]
    assert issued["signed"] is True and issued["version"] == 1
    # One report per consultation.
    again = await simulate_once(simulation, random.Random(4), kind=Kind.REPORT, target=made.ref)
    assert again is None


async def test_a_new_result_for_one_of_the_hospitals_patients(simulation: Simulation) -> None:
    seen = set()
    for seed in range(6):
        write = await simulate_once(
            simulation, random.Random(seed), member="LHZX", kind=Kind.RESULT
        )
        assert write is not None and write.version == 1
        row = await row_of(simulation.member("LHZX"), "test_result", write.row_id)
        assert row["category"] == write.status and row["value"]
        assert row["item_code"].startswith("LHZX") and row["version"] == 1
        assert row["performed_at"] < row["created_at"] == row["updated_at"]
        patient = next(
            p
            for p in simulation.patients
            if pseudonym(p.resident_id, simulation.linkage_key) == row["patient_pseudonym"]
        )
        assert "LHZX" in patient.hospitals
        seen.add(row["category"])
    assert seen == {"LAB", "EXAM"}


async def test_a_target_goes_with_a_step_or_a_report_only(simulation: Simulation) -> None:
    for kind in (Kind.RESULT, Kind.REFERRAL, None):
        with pytest.raises(ValueError):
            await simulate_once(simulation, kind=kind, target=RowRef("LHZY", 1))
    with pytest.raises(ValueError):
        await simulate_once(
            simulation, member="LHZY", kind=Kind.REFERRAL_STEP, target=RowRef("LHZY", 1)
        )


# -- what subscribers see ---------------------------------------------------------------------


async def _event_of(received: asyncio.Queue[Any], gid: str, version: int) -> dict[str, Any]:
    """The event of one version of one entity; the watcher may first catch up on older writes
    of other tests."""
    for _ in range(50):
        event = await next_event(received, within=5)
        if event["entityId"].rstrip("=") == gid and event["entityVersion"] == version:
            return event
    raise AssertionError(f"no event of {gid} version {version}")


async def test_subscribers_see_the_simulated_writes_as_hospital_side_changes(
    demo_env: Demo, simulation: Simulation, registry_db: asyncpg.Connection
) -> None:
    """The point of it all: the change watcher takes the writes for a hospital's own."""
    settings = load_settings(
        demo_env.root / "alliance.toml",
        events={"poll_interval_seconds": 0.2, "claim_interval_seconds": 0.2},
    )
    token = demo_env.token("PARTNER_SYSTEM", "LHRH")
    async with serving(create_app(settings)) as url:
        await watching(url, "LHRH")
        after = str(await registry_db.fetchval("SELECT coalesce(max(cursor), 0) FROM event_log"))
        async with subscribed(url, token, after=after, members=["LHRH"]) as received:
            made = await simulate_once(
                simulation, random.Random(8), member="LHRH", kind=Kind.REFERRAL
            )
            assert made is not None
            gid = global_ids.encode("Referral", "LHRH", made.row_id)
            created = await _event_of(received, gid, 1)
            step = await simulate_once(
                simulation, random.Random(8), kind=Kind.REFERRAL_STEP, target=made.ref
            )
            assert step is not None
            changed = await _event_of(received, gid, 2)
    assert (created["type"], created["detectedBy"]) == ("REFERRAL_CREATED", "WATCHER")
    assert created["referral"]["status"] == "INITIATED"
    assert (changed["type"], changed["detectedBy"]) == ("REFERRAL_STATUS_CHANGED", "WATCHER")
    assert changed["entityVersion"] == 2 and changed["referral"]["status"] == step.status


# -- the random walk, in scratch databases on the demo's server ---------------------------------

SCRATCH = ("LYZG", "LHZX", "LHZY", "LHRH")


@pytest.fixture(scope="module")
async def scratch(demo_env: Demo, settings: Settings) -> AsyncIterator[Simulation]:
    """Exchange databases of four demo hospitals (LHRH under its own column names), empty, for
    the simulator to do as it likes: the members' real databases are shared with other tests."""
    admin_dsn = demo_env.info["admin_dsn"]
    demo = Simulation.from_settings(settings)
    admin = await asyncpg.connect(admin_dsn)
    created: list[str] = []
    members: list[SimulatedMember] = []
    try:
        for code in SCRATCH:
            name = f"sim_{code.lower()}_{uuid.uuid4().hex[:8]}"
            await admin.execute(f'CREATE DATABASE "{name}"')
            created.append(name)
            dsn = admin_dsn.replace("/postgres?", f"/{name}?", 1)
            renamed = da.RENAMED_COLUMNS[code]
            conn = await asyncpg.connect(dsn)
            try:
                await bulk.install_schema(conn, renamed)
            finally:
                await conn.close()
            members.append(SimulatedMember(demo.member(code).hospital, dsn, ColumnMap(renamed)))
        hospitals = [m.hospital for m in members]
        patients = da.synthetic_patients(hospitals, 200, random.Random(99))
        yield Simulation(members, patients, demo.linkage_key)
    finally:
        for name in created:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_a_random_walk_keeps_every_row_consistent(
    scratch: Simulation, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    rng = random.Random(2024)
    writes = [w for _ in range(150) if (w := await simulate_once(scratch, rng)) is not None]
    assert len(writes) == 150, "some write had nothing to do and nothing to fall back on"
    kinds = Counter(w.kind for w in writes)
    assert set(kinds) == set(Kind), kinds
    assert {w.by for w in writes} == set(SCRATCH)

    # Each referral's version counts its own writes: the insert and one per step.
    per_referral = Counter(w.ref for w in writes if w.table == "referral")
    for ref, count in per_referral.items():
        row = await row_of(scratch.member(ref.member), "referral", ref.row_id)
        assert row["version"] == count
        assert (row["updated_at"] > row["created_at"]) == (count > 1)
        if row["status"] == "COMPLETED" and row["direction"] == "DOWN":
            assert row["discharge_summary"] and row["rehab_advice"]
    # Steps work on recent open referrals of the acting hospital's own.
    for w in writes:
        if w.kind is Kind.REFERRAL_STEP:
            assert w.member == w.by
    # A report moves its consultation to REPORTED, one report each.
    for member in scratch.members:
        c, r = member.columns["consultation"], member.columns["consultation_report"]
        rows = await fetch(
            member,
            f"SELECT c.{c.col('status')} AS status, c.{c.col('version')} AS version, "
            f"count(r.{r.col('consultation_id')}) AS reports FROM {c.name} c "
            f"LEFT JOIN {r.name} r ON r.{r.col('consultation_id')} = c.{c.col('id')} "
            f"GROUP BY 1, 2",
        )
        for row in rows:
            assert (row["status"] == "REPORTED") == (row["reports"] > 0)
            assert row["version"] == (2 if row["status"] == "REPORTED" else 1)
    results = sum(
        [(await fetch(m, "SELECT count(*) AS n FROM test_result"))[0]["n"] for m in scratch.members]
    )
    assert results == kinds[Kind.RESULT]
    assert len([r for r in caplog.records if r.name == LOGGER]) == len(writes)


async def test_the_log_names_member_table_row_and_status_only(
    scratch: Simulation, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    rng = random.Random(7)
    every_table = {"referral", "consultation", "consultation_report", "test_result"}
    # Until every kind of write has been logged: which are possible depends on what the
    # module's earlier tests left in the scratch databases, and on the time of day.
    writes, tables = 0, set[str]()
    while tables != every_table and writes < 400:
        write = await simulate_once(scratch, rng)
        assert write is not None
        writes += 1
        tables.add(write.table)
    records = [r for r in caplog.records if r.name == LOGGER]
    assert len(records) == writes
    assert {r.getMessage().split()[2] for r in records} == tables == every_table
    resident_ids = {p.resident_id for p in scratch.patients}
    formatter = JsonFormatter()
    for record in records:
        message = record.getMessage()
        assert LOG_LINE.match(message), message
        text = formatter.format(record)
        assert not ID_LIKE.search(text) and not HEX64.search(text) and not HAN.search(text)
        assert not any(rid in text for rid in resident_ids)
        fields = json.loads(text)
        assert {"member", "version", "by"} <= set(fields)


# -- the background loop ------------------------------------------------------------------------


async def test_the_loop_logs_a_hospital_that_is_down_and_goes_on(
    scratch: Simulation, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    port = free_port()  # nothing listens there: the hospital's database is down
    down = SimulatedMember(
        scratch.member("LHZX").hospital,
        f"postgresql://exchange_lhzx:secret@127.0.0.1:{port}/exchange_lhzx",
        ColumnMap(),
    )
    members = [down if m.code == "LHZX" else m for m in scratch.members]
    sim = Simulation(members, scratch.patients, scratch.linkage_key, timeout_seconds=2.0)
    async with ActivitySimulator(sim, 0.01, rng=random.Random(11)) as loop:
        for _ in range(500):
            if loop.failures >= 2 and loop.writes >= 10:
                break
            await asyncio.sleep(0.02)
    assert loop.failures >= 2 and loop.writes >= 10
    # Stopped: nothing more is written.
    counts = [
        len(await fetch(m, "SELECT id FROM test_result")) for m in scratch.members if m is not down
    ]
    await asyncio.sleep(0.1)
    assert counts == [
        len(await fetch(m, "SELECT id FROM test_result")) for m in scratch.members if m is not down
    ]
    failed = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert failed and all(
        r.getMessage().startswith("simulated write at LHZX failed: ") for r in failed
    )
    assert {getattr(r, "error", None) for r in failed} <= {"ConnectionRefusedError", "OSError"}
    assert all(w.member != "LHZX" for w in loop.recent)


async def test_simulate_activity_takes_the_demo_configuration(
    settings: Settings, demo_env: Demo
) -> None:
    # From the configuration alone, and stopped before its first write (the interval is long):
    # nothing lands in the shared databases.
    async with simulate_activity(settings, 60.0, rng=random.Random(1)) as loop:
        assert [m.code for m in loop.simulation.members] == [
            m["code"] for m in demo_env.info["members"] if m["kind"] in ("postgres", "fhir")
        ]
    assert loop.writes == 0 and loop.failures == 0
    with pytest.raises(ValueError):
        simulate_activity(settings, 0)


# -- the command line ---------------------------------------------------------------------------


def test_the_cli_refuses_simulation_without_serving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "configure_logging", lambda level: None)
    data_dir = tmp_path / "never-made"
    with pytest.raises(SystemExit) as refused:
        cli.main(["demo", "--seed-only", "--simulate-activity", "--data-dir", str(data_dir)])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "--simulate-activity" in err and "--seed-only" in err
    assert not data_dir.exists(), "refused before preparing anything"
    for bad in ("0", "-1", "soon"):
        with pytest.raises(SystemExit) as refused:
            cli.main(["demo", "--simulate-activity", "--activity-interval", bad])
        assert refused.value.code == 2
        assert "--activity-interval" in capsys.readouterr().err


CLI = [sys.executable, "-m", "gateway.cli"]


async def _wait_for(predicate: Any, process: subprocess.Popen[bytes], what: str) -> None:
    for _ in range(600):
        assert process.poll() is None, f"the demo exited waiting for {what}"
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {what}")


async def test_the_demo_command_simulates_while_serving_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    port = free_port()
    data_dir = tmp_path / "live-demo"
    log_file = tmp_path / "stderr.log"
    with log_file.open("wb") as stderr:
        process = subprocess.Popen(
            [
                *CLI,
                *("demo", "--data-dir", str(data_dir), "--port", str(port)),
                *("--simulate-activity", "--activity-interval", "0.2"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    url = f"http://127.0.0.1:{port}"

    def simulated() -> list[dict[str, Any]]:
        lines = [json.loads(x) for x in log_file.read_text().splitlines() if x.startswith("{")]
        return [x for x in lines if x["logger"] == LOGGER and x["level"] == "INFO"]

    async def ready() -> bool:
        async with httpx.AsyncClient() as client:
            try:
                return (await client.get(f"{url}/readyz")).status_code == 200
            except httpx.TransportError:
                return False

    async def wrote_some() -> bool:
        return len(simulated()) >= 3

    try:
        await _wait_for(ready, process, "gateway")
        await _wait_for(wrote_some, process, "simulated writes")
        # Rows of the demo's own patients, in the member's own database.
        sim = Simulation.from_settings(load_settings(data_dir / "alliance.toml"))
        for entry in simulated():
            table = entry["message"].split()[2]
            member = sim.member(entry["member"])
            # The FHIR hospital's writes are checked in tests/test_demo_fhir_member.py.
            if table in ("referral", "test_result") and member.kind == "postgres":
                row = await row_of(member, table, int(entry["message"].split()[3]))
                assert sim.patient_of(row["patient_pseudonym"]) is not None
                assert row["version"] == entry["version"]
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()
    text = log_file.read_text()
    samples = json.loads((data_dir / "demo.json").read_text())["sample_patients"]
    assert not any(s["resident_id"] in text for s in samples)
    for entry in simulated():
        assert LOG_LINE.match(entry["message"]), entry
