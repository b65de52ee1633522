"""The demo's synthetic activity, generated and loaded into real exchange databases (pgserver):
one database per hospital, the private hospital under its own column names."""

from __future__ import annotations

import random
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pgserver
import pytest

from adapters.exchange.columns import TABLES
from gateway.demo import activity as da
from resolvers.patients import check_character, pseudonym

KEY = b"alliance-linkage-key-for-tests-0001"
TODAY = datetime.now(da.CST).date()
SEEDED = ("LYZG", "LHZY", "LHRH")
PATIENTS = 1200
HEX64 = re.compile(r"^[0-9a-f]{64}$")
ID_LIKE = re.compile(r"\d{17}[\dX]")


@dataclass
class Seeded:
    dsns: dict[str, str]
    counts: dict[str, dict[str, int]]
    seconds: dict[str, float]
    hospitals: list[da.SyntheticHospital]
    patients: list[da.SyntheticPatient]

    def hospital(self, code: str) -> da.SyntheticHospital:
        return next(h for h in self.hospitals if h.code == code)

    def renamed(self, code: str) -> dict[str, dict[str, str]]:
        return da.RENAMED_COLUMNS.get(code, {})


def _dsn(admin_dsn: str, database: str) -> str:
    return admin_dsn.replace("/postgres?", f"/{database}?", 1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    srv = pgserver.get_server(Path(tmp_path_factory.mktemp("pg")), cleanup_mode="stop")
    yield srv
    srv.cleanup()


@pytest.fixture(scope="module")
async def seeded(server: Any) -> AsyncIterator[Seeded]:
    admin_dsn = server.get_uri()
    hospitals = da.demo_hospitals(TODAY)
    patients = da.synthetic_patients(hospitals, PATIENTS, random.Random(7))
    admin = await asyncpg.connect(admin_dsn)
    dsns: dict[str, str] = {}
    try:
        for code in SEEDED:
            name = f"exchange_{code.lower()}"
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await admin.execute(f'CREATE DATABASE "{name}"')
            dsns[code] = _dsn(admin_dsn, name)
    finally:
        await admin.close()
    counts: dict[str, dict[str, int]] = {}
    seconds: dict[str, float] = {}
    for i, code in enumerate(SEEDED):
        conn = await asyncpg.connect(dsns[code])
        try:
            started = time.perf_counter()
            counts[code] = await da.seed_activity(
                conn,
                next(h for h in hospitals if h.code == code),
                hospitals,
                patients,
                KEY,
                TODAY,
                seed=100 + i,
                renamed=da.RENAMED_COLUMNS.get(code),
            )
            seconds[code] = time.perf_counter() - started
        finally:
            await conn.close()
    yield Seeded(dsns, counts, seconds, hospitals, patients)


async def _fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def _col(s: Seeded, code: str, table: str, logical: str) -> str:
    return s.renamed(code).get(table, {}).get(logical, logical)


async def _table_counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {t: await conn.fetchval(f'SELECT count(*) FROM "{t}"') for t in TABLES}
    finally:
        await conn.close()


# -- generation, without a database ------------------------------------------------------------


def test_patients_are_synthetic_valid_and_often_shared() -> None:
    hospitals = da.demo_hospitals(TODAY)
    patients = da.synthetic_patients(hospitals, 500, random.Random(1))
    codes = {h.code for h in hospitals}
    roles = {h.code: h.role for h in hospitals}
    assert len({p.resident_id for p in patients}) == 500
    for p in patients:
        rid = p.resident_id
        assert re.fullmatch(r"\d{17}[\dX]", rid)
        assert rid[17] == check_character(rid[:17])
        assert rid[:2] == "41"  # 河南
        assert 1940 <= p.birth_year <= 2015 and int(rid[6:10]) == p.birth_year
        assert p.sex == ("MALE" if int(rid[16]) % 2 else "FEMALE")
        assert 1 <= len(p.hospitals) <= 3 and len(set(p.hospitals)) == len(p.hospitals)
        assert set(p.hospitals) <= codes
    shared = [p for p in patients if len(p.hospitals) >= 2]
    assert len(shared) >= 0.3 * len(patients)
    assert sum(roles[p.hospitals[0]] == "MEMBER" for p in patients) > 0.6 * len(patients)
    member_homes = [p for p in shared if roles[p.hospitals[0]] == "MEMBER"]
    assert all(roles[p.hospitals[1]] in ("LEAD", "BACKBONE") for p in member_homes)
    # The same seed gives the same patients.
    assert da.synthetic_patients(hospitals, 500, random.Random(1)) == patients

    samples = da.sample_patients(patients)
    assert 0 < len(samples) <= 20
    assert all(len(s["members"]) >= 2 for s in samples)
    assert len({s["members"][0] for s in samples}) >= 5  # homes taken in turn


def test_activity_rows_are_pure_and_use_logical_columns() -> None:
    hospitals = da.demo_hospitals(TODAY)
    patients = da.synthetic_patients(hospitals, 300, random.Random(2))
    lhzy = next(h for h in hospitals if h.code == "LHZY")
    a = da.activity_rows(lhzy, hospitals, patients, KEY, TODAY, random.Random(5))
    b = da.activity_rows(lhzy, hospitals, patients, KEY, TODAY, random.Random(5))
    assert a == b
    assert set(a) == set(TABLES)
    for table, rows in a.items():
        for row in rows:
            assert set(row) <= set(TABLES[table]), table
        if "id" in TABLES[table] and rows:
            assert [r["id"] for r in rows] == list(range(1, len(rows) + 1))
    numbers = [r["referral_no"] for r in a["referral"]]
    assert len(set(numbers)) == len(numbers)
    assert all(re.fullmatch(r"LHZY-R20\d\d\d{5}", n) for n in numbers)
    half = da.activity_rows(lhzy, hospitals, patients, KEY, TODAY, random.Random(5), scale=0.5)
    assert len(half["referral"]) < len(a["referral"])


# -- loaded into PostgreSQL --------------------------------------------------------------------


async def test_volumes_and_timing(seeded: Seeded) -> None:
    lead, member = seeded.counts["LYZG"], seeded.counts["LHZY"]
    assert 250 <= lead["referral"] <= 350
    assert 200 <= member["referral"] <= 500
    assert 30 <= member["consultation"] <= 120
    assert lead["consultation"] == 0
    assert 0 < member["consultation_report"] < member["consultation"]
    assert lead["training_event"] > 50 and lead["training_participation"] > lead["training_event"]
    assert lead["placement"] > 20 and member["placement"] == 0
    assert all(c["test_result"] > 1000 for c in seeded.counts.values())
    assert all(c["quality_control"] > 0 for c in seeded.counts.values())
    assert all(s < 2.0 for s in seeded.seconds.values()), seeded.seconds


async def test_pseudonyms_only_no_resident_ids_in_any_text(seeded: Seeded) -> None:
    ids = {p.resident_id for p in seeded.patients}
    expected = {pseudonym(p.resident_id, KEY) for p in seeded.patients}
    for code, dsn in seeded.dsns.items():
        conn = await asyncpg.connect(dsn)
        try:
            columns = await conn.fetch(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' AND data_type IN ('text', 'ARRAY')"
            )
            assert columns
            for c in columns:
                table, column = c["table_name"], c["column_name"]
                expr = (
                    f"array_to_string(\"{column}\", ' ')"
                    if c["data_type"] == "ARRAY"
                    else f'"{column}"'
                )
                values = await conn.fetch(f'SELECT {expr} AS v FROM "{table}"')
                blob = "\n".join(v["v"] for v in values if v["v"] is not None)
                assert not ids.intersection(ID_LIKE.findall(blob)), (code, table, column)
            for table in ("referral", "consultation", "test_result"):
                found = {
                    r["p"]
                    for r in await conn.fetch(
                        f'SELECT DISTINCT patient_pseudonym AS p FROM "{table}"'
                    )
                }
                assert all(HEX64.match(p) for p in found), (code, table)
                assert found <= expected, (code, table)
        finally:
            await conn.close()


async def test_referrals_go_up_to_higher_and_down_to_lower_levels(seeded: Seeded) -> None:
    by_code = {h.code: h for h in seeded.hospitals}
    grade = {h.code: da.GRADES.index(h.grade) for h in seeded.hospitals}
    for code, dsn in seeded.dsns.items():
        rows = await _fetch(
            dsn,
            "SELECT direction, from_hospital, to_hospital, green_channel, status, status_reason, "
            "treatment_result, discharge_summary, rehab_advice, completed_at, arrived_at, "
            f'"{_col(seeded, code, "referral", "created_at")}" AS created_at, updated_at '
            "FROM referral",
        )
        assert rows
        for r in rows:
            assert r["from_hospital"] == code and r["to_hospital"] != code
            me, to = by_code[code], by_code[r["to_hospital"]]
            if r["direction"] == "UP":
                assert da.level(to) > da.level(me) and grade[to.code] >= grade[code]
                assert to.role in ("LEAD", "BACKBONE")
            else:
                assert da.level(to) < da.level(me) and grade[to.code] <= grade[code]
            if r["status"] in ("REJECTED", "CANCELLED"):
                assert r["status_reason"]
            if r["direction"] == "DOWN" and r["status"] == "COMPLETED":
                assert r["treatment_result"] and r["discharge_summary"] and r["rehab_advice"]
            if r["status"] == "COMPLETED":
                assert r["arrived_at"] <= r["completed_at"] <= r["updated_at"]
            assert r["created_at"] <= r["updated_at"] < datetime.now(da.CST)
        statuses = {r["status"] for r in rows}
        assert {"COMPLETED", "REJECTED", "CANCELLED"} <= statuses
        directions = {r["direction"] for r in rows}
        if by_code[code].role == "LEAD":
            assert directions == {"DOWN"}
        else:
            assert directions == {"UP"}
            ups = [r for r in rows if r["direction"] == "UP"]
            share = sum(r["green_channel"] for r in ups) / len(ups)
            assert 0.04 < share < 0.18
        recent = [r for r in rows if r["created_at"] > datetime.now(da.CST) - timedelta(days=3)]
        assert all(r["status"] != "COMPLETED" for r in recent)


async def test_a_sample_patient_has_results_at_two_hospitals(seeded: Seeded) -> None:
    samples = da.sample_patients(seeded.patients)
    both = [s for s in samples if {"LYZG", "LHZY"} <= set(s["members"])]
    assert both, samples
    pseudo = pseudonym(both[0]["resident_id"], KEY)
    for code in ("LYZG", "LHZY"):
        rows = await _fetch(
            seeded.dsns[code],
            "SELECT count(*) AS n FROM test_result WHERE patient_pseudonym = $1",
            pseudo,
        )
        assert rows[0]["n"] > 5, code
    # Any patient known at both LYZG and LHRH has results in both databases too.
    shared = next(p for p in seeded.patients if {"LYZG", "LHRH"} <= set(p.hospitals))
    p = pseudonym(shared.resident_id, KEY)
    for code in ("LYZG", "LHRH"):
        rows = await _fetch(
            seeded.dsns[code],
            "SELECT count(*) AS n FROM test_result WHERE patient_pseudonym = $1",
            p,
        )
        assert rows[0]["n"] > 5, code


async def test_the_private_hospital_keeps_its_own_column_names(seeded: Seeded) -> None:
    rows = await _fetch(
        seeded.dsns["LHRH"],
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public'",
    )
    physical = {(r["table_name"], r["column_name"]) for r in rows}
    for table, names in da.RENAMED_COLUMNS["LHRH"].items():
        for logical, name in names.items():
            assert (table, name) in physical
            assert (table, logical) not in physical
    assert ("referral", "id") in physical and ("test_result", "id") in physical
    sexes = await _fetch(seeded.dsns["LHRH"], "SELECT DISTINCT hzxb FROM referral")
    assert {r["hzxb"] for r in sexes} <= {"MALE", "FEMALE"}
    items = await _fetch(seeded.dsns["LHRH"], "SELECT count(DISTINCT xmmc) AS n FROM test_result")
    assert items[0]["n"] > 10


async def test_seeding_again_changes_nothing(seeded: Seeded) -> None:
    for i, code in enumerate(SEEDED):
        before = await _table_counts(seeded.dsns[code])
        assert before["referral"] == seeded.counts[code]["referral"]
        conn = await asyncpg.connect(seeded.dsns[code])
        try:
            again = await da.seed_activity(
                conn,
                seeded.hospital(code),
                seeded.hospitals,
                seeded.patients,
                KEY,
                TODAY,
                seed=100 + i,
                renamed=da.RENAMED_COLUMNS.get(code),
            )
        finally:
            await conn.close()
        assert again == {}
        assert await _table_counts(seeded.dsns[code]) == before
    # New rows the gateway writes continue after the loaded ids.
    conn = await asyncpg.connect(seeded.dsns["LHZY"])
    try:
        async with conn.transaction():
            new_id = await conn.fetchval(
                "INSERT INTO training_event (kind, host_hospital, mode, held_on, topic) "
                "VALUES ('CASE_DISCUSSION', 'LHZY', 'ON_SITE', $1, 'test') RETURNING id",
                TODAY,
            )
            assert new_id == seeded.counts["LHZY"]["training_event"] + 1
            raise _Rollback
    except _Rollback:
        pass
    finally:
        await conn.close()


class _Rollback(Exception):
    pass


async def test_results_fall_inside_and_outside_the_validity_windows(seeded: Seeded) -> None:
    for code, dsn in seeded.dsns.items():
        at = _col(seeded, code, "test_result", "performed_at")
        rows = await _fetch(
            dsn,
            f"SELECT patient_pseudonym AS p, count(*) FILTER (WHERE \"{at}\" > now() - interval '7 days') AS week, "
            f"count(*) FILTER (WHERE \"{at}\" > now() - interval '60 days') AS months, "
            f"count(*) FILTER (WHERE \"{at}\" < now() - interval '60 days') AS older, "
            f"count(*) FILTER (WHERE \"{at}\" BETWEEN now() - interval '30 days' AND now() - interval '7 days') AS middle "
            "FROM test_result GROUP BY 1",
        )
        expected = {p.resident_id for p in seeded.patients if code in p.hospitals}
        assert len(rows) == len(expected)
        for r in rows:
            assert r["week"] >= 5 and r["months"] > r["week"] and r["older"] >= 1, (code, dict(r))
        assert sum(r["middle"] for r in rows) > 0
        loincs = await _fetch(dsn, "SELECT DISTINCT loinc FROM test_result WHERE loinc IS NOT NULL")
        assert {"2823-3", "2951-2", "2345-7", "4548-4", "2276-4", "1751-7"} <= {
            r["loinc"] for r in loincs
        }
        exams = await _fetch(
            dsn, "SELECT count(*) AS n FROM test_result WHERE category = 'EXAM' AND loinc IS NULL"
        )
        assert exams[0]["n"] > 0
    codes = {
        code: {
            r["c"]
            for r in await _fetch(
                dsn,
                f'SELECT DISTINCT "{_col(seeded, code, "test_result", "item_code")}" AS c FROM test_result',
            )
        }
        for code, dsn in seeded.dsns.items()
    }
    assert not codes["LYZG"] & codes["LHZY"] and not codes["LHZY"] & codes["LHRH"]


async def test_quality_control_gaps_at_the_private_hospital(seeded: Seeded) -> None:
    def valid(rows: list[asyncpg.Record]) -> set[str]:
        return {r["loinc"] for r in rows if r["valid_from"] <= TODAY <= r["valid_until"]}

    lyzg = await _fetch(seeded.dsns["LYZG"], "SELECT * FROM quality_control")
    lhrh = await _fetch(seeded.dsns["LHRH"], "SELECT * FROM quality_control")
    used = await _fetch(
        seeded.dsns["LYZG"], "SELECT DISTINCT loinc FROM test_result WHERE loinc IS NOT NULL"
    )
    assert {r["loinc"] for r in used} <= valid(lyzg)
    missing = set(da.QC_GAPS["LHRH"])
    assert missing and not missing & valid(lhrh)
    assert valid(lyzg) - missing <= valid(lhrh)
    expired = [k for k, v in da.QC_GAPS["LHRH"].items() if v == "EXPIRED"]
    assert all(any(r["loinc"] == k for r in lhrh) for k in expired)


async def test_consultations_and_reports(seeded: Seeded) -> None:
    rows = await _fetch(seeded.dsns["LHZY"], "SELECT * FROM consultation")
    reports = {
        r["consultation_id"]: r
        for r in await _fetch(seeded.dsns["LHZY"], "SELECT * FROM consultation_report")
    }
    roles = {h.code: h.role for h in seeded.hospitals}
    assert {r["kind"] for r in rows} == {
        "REMOTE_CONSULTATION",
        "MDT",
        "REMOTE_IMAGING",
        "REMOTE_ECG",
        "REMOTE_PATHOLOGY",
        "ON_SITE",
    }
    assert len({r["status"] for r in rows}) >= 4
    for r in rows:
        assert r["consent_obtained"] and r["requesting_hospital"] == "LHZY"
        assert roles[r["invited_hospital"]] in ("LEAD", "BACKBONE")
        reported = r["status"] in ("REPORTED", "CLOSED")
        assert (r["id"] in reports) == reported
        if reported:
            report = reports[r["id"]]
            assert report["expert_name"] == r["expert_name"] and report["signed"]
            assert r["scheduled_at"] <= report["issued_at"]
        if r["status"] in ("DECLINED", "CANCELLED"):
            assert r["status_reason"] and r["fee_fen"] is None
        else:
            assert 20000 <= r["fee_fen"] <= 50000


async def test_training_and_placements_at_the_lead(seeded: Seeded) -> None:
    dsn = seeded.dsns["LYZG"]
    events = await _fetch(dsn, "SELECT * FROM training_event")
    for year in range(2):
        newest, oldest = (
            TODAY - timedelta(days=1 + 365 * year),
            TODAY - timedelta(days=365 * (year + 1)),
        )
        remote = [
            e for e in events if e["kind"] == "REMOTE_TEACHING" and oldest <= e["held_on"] <= newest
        ]
        assert len(remote) >= 10, year
        assert all(e["mode"] == "ONLINE" for e in remote)
    assert len({e["kind"] for e in events}) == 9
    participation = await _fetch(
        dsn, "SELECT event_id, count(*) AS n FROM training_participation GROUP BY 1"
    )
    assert max(r["n"] for r in participation) >= 5
    placements = await _fetch(dsn, "SELECT * FROM placement")
    assert {p["host_hospital"] for p in placements} == {"LYZG"}
    assert "LYZG" not in {p["home_hospital"] for p in placements}
    assert all(
        p["trainee_name"] and re.fullmatch(r"[\u4e00-\u9fff]{2,3}", p["trainee_name"])
        for p in placements
    )
    assert all(p["evaluation"] for p in placements if p["ends_on"] < TODAY)
    member_events = await _fetch(seeded.dsns["LHZY"], "SELECT kind FROM training_event")
    assert len(member_events) < len(events) / 4


def test_renamed_columns_never_touch_ids() -> None:
    for tables in da.RENAMED_COLUMNS.values():
        for table, names in tables.items():
            assert "id" not in names and set(names) <= set(TABLES[table])
