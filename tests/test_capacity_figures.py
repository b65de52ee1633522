"""The demo's figures for the exchange contract's part 2 (gateway.demo.figures): what they say
before any database (plausible for each hospital, with the trends the assessment looks for), a
database seeded before part 2 is given it, and the demo's own members served through the
gateway's federation: the SQL members answer, the FHIR member is left out without an error."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg
import pytest

from adapters.sources import port
from adapters.sources.port import AggregateRequest, AggregateRow
from adapters.sources.records import ListQuery
from gateway.app import build_federation
from gateway.demo import activity as da
from gateway.demo import figures
from gateway.demo.provision import FHIR_MEMBER
from gateway.settings import load_settings
from resolvers import clock
from resolvers.federation import FanOut, Federation, fan_out
from tests.conftest import Demo

TODAY = clock.today()
HOSPITALS = da.demo_hospitals(TODAY)
PAIRS = [(h.code, h.role) for h in HOSPITALS]


def rows_of(code: str) -> dict[str, list[dict[str, Any]]]:
    h = next(h for h in HOSPITALS if h.code == code)
    return figures.figures_rows(h.code, h.grade, h.role, PAIRS, TODAY)


def year_total(rows: Sequence[dict[str, Any]], year: int, field: str) -> int:
    return sum(r[field] for r in rows if r["month"].year == year)


def test_volumes_cover_two_full_years_and_fit_each_hospital() -> None:
    last, before = TODAY.year - 1, TODAY.year - 2
    lead = rows_of("LYZG")["specialty_volume"]
    assert [r["month"] for r in lead] == figures.months(TODAY)
    assert lead[0]["month"] == date(before, 1, 1) and len(lead) >= 24
    assert all(r["month"] < TODAY.replace(day=1) for r in lead), "complete months only"
    for code, role in PAIRS:
        for r in rows_of(code)["specialty_volume"]:
            numbers = [v for k, v in r.items() if k not in ("hospital", "month", "id")]
            assert all(isinstance(v, int) and v >= 0 for v in numbers), (code, r)
            assert r["grade34_operations"] <= r["operations"] <= r["discharges"]
            assert r["occupied_bed_days"] <= 1.1 * r["open_bed_days"]
        visits = year_total(rows_of(code)["specialty_volume"], last, "outpatient_visits") / 12
        if role == "LEAD":
            assert visits > 10_000, "a grade-3A lead sees thousands a month"
        elif role == "MEMBER":
            assert 300 < visits < 3000, code


def test_the_trends_the_assessment_looks_for() -> None:
    last, before = TODAY.year - 1, TODAY.year - 2

    def ratio(rows: Sequence[dict[str, Any]], year: int, top: str, bottom: str) -> float:
        return year_total(rows, year, top) / year_total(rows, year, bottom)

    lead = rows_of("LYZG")["specialty_volume"]
    assert ratio(lead, last, "discharged_bed_days", "discharges") < ratio(
        lead, before, "discharged_bed_days", "discharges"
    ), "the lead's average stay falls"
    for code, role in PAIRS:
        if role != "MEMBER":
            continue
        v = rows_of(code)["specialty_volume"]
        for field in ("outpatient_visits", "discharges", "grade34_operations"):
            assert year_total(v, last, field) > year_total(v, before, field), (code, field)
        assert ratio(v, last, "occupied_bed_days", "open_bed_days") > ratio(
            v, before, "occupied_bed_days", "open_bed_days"
        ), code


def test_surveys_are_quarterly_per_population_within_their_ranges() -> None:
    surveys = rows_of("LHZY")["satisfaction_survey"]
    assert {r["month"].month for r in surveys} == {3, 6, 9, 12}
    assert Counter(r["population"] for r in surveys) == {
        p: len(surveys) // 3 for p in ("OUTPATIENT", "INPATIENT", "STAFF")
    }
    ranges = {"OUTPATIENT": (0.85, 0.92), "INPATIENT": (0.90, 0.96), "STAFF": (0.70, 0.85)}
    for r in surveys:
        low, high = ranges[r["population"]]
        assert 50 <= r["respondents"] <= 300
        assert low - 0.01 <= r["satisfied"] / r["respondents"] <= high + 0.01, r


def test_capacity_building_is_given_by_the_lead_and_backbones_and_grows() -> None:
    roles = dict(PAIRS)
    by_year: Counter[int] = Counter()
    kinds: set[str] = set()
    for code, role in PAIRS:
        activities = rows_of(code)["capacity_activity"]
        if role == "MEMBER":
            assert activities == [], "a member records none of its own"
        for a in activities:
            assert a["helping_hospital"] == code != a["helped_hospital"]
            assert roles[a["helped_hospital"]] != "LEAD"
            assert a["started_on"] < TODAY
            assert a["ended_on"] is None or a["started_on"] <= a["ended_on"] < TODAY
            assert a["people"] >= 1 and a["title"]
            by_year[a["started_on"].year] += 1
            kinds.add(a["kind"])
    assert kinds == {"DISPATCH", "MENTORING", "NEW_TECHNIQUE", "ON_SITE_TOUR"}
    assert 20 <= by_year[TODAY.year - 2] < by_year[TODAY.year - 1], by_year
    assert rows_of("LYZG") == rows_of("LYZG"), "pure"


async def test_a_database_seeded_before_part_2_is_given_it(demo_env: Demo) -> None:
    admin_dsn = demo_env.info["admin_dsn"]
    name = f"figures_{datetime.now().strftime('%H%M%S%f')}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    lhgk = next(h for h in HOSPITALS if h.code == "LHGK")
    patients = da.synthetic_patients(HOSPITALS, 200, random.Random(1))
    conn = await asyncpg.connect(admin_dsn.replace("/postgres?", f"/{name}?", 1))
    try:

        async def seed() -> dict[str, int]:
            return await da.seed_activity(
                conn, lhgk, HOSPITALS, patients, b"k" * 32, TODAY, seed=3, scale=0.2
            )

        first = await seed()
        assert first["capacity_activity"] > 0 and first["referral"] > 0
        await conn.execute("DROP TABLE specialty_volume, satisfaction_survey, capacity_activity")
        again = await seed()
        assert again == {t: first[t] for t in figures.TABLES}, "only part 2, as first seeded"
        assert (
            await conn.fetchval("SELECT count(*) FROM capacity_activity")
            == first["capacity_activity"]
        )
        assert await seed() == {}
    finally:
        await conn.close()


def _by_group(rows: list[AggregateRow]) -> dict[tuple[Any, ...], AggregateRow]:
    return {r.group: r for r in rows}


async def _everywhere(
    federation: Federation, request: AggregateRequest
) -> FanOut[list[AggregateRow]]:
    return await fan_out(federation, federation.codes(), lambda _: request)


async def test_the_demo_members_serve_part_2_and_the_fhir_member_is_left_out(
    demo_env: Demo,
) -> None:
    settings = load_settings(demo_env.root / "alliance.toml")
    federation = build_federation(settings)
    codes = federation.codes()
    assert FHIR_MEMBER in codes
    last, before = TODAY.year - 1, TODAY.year - 2
    try:
        for kind, group_by, sums in (
            (port.SPECIALTY_VOLUME, ("month",), ("occupied_bed_days", "open_bed_days")),
            (port.SATISFACTION_SURVEY, ("population",), ("respondents", "satisfied")),
            (port.CAPACITY_ACTIVITY, ("helped_hospital", "kind"), ("people",)),
        ):
            request = AggregateRequest(
                kind,
                ListQuery(
                    parties=None,
                    since=datetime(before, 1, 1, tzinfo=clock.CHINA_STANDARD_TIME),
                    until=datetime(last + 1, 1, 1, tzinfo=clock.CHINA_STANDARD_TIME),
                ),
                group_by=group_by,
                sums=sums,
            )
            answered = await _everywhere(federation, request)
            assert answered.errors == [], kind
            assert FHIR_MEMBER not in answered.results, kind
            assert set(answered.results) == set(codes) - {FHIR_MEMBER}, kind
        volumes = await _everywhere(
            federation,
            AggregateRequest(
                port.SPECIALTY_VOLUME,
                ListQuery(parties=None, since=date(before, 1, 1), until=date(last + 1, 1, 1)),
                group_by=("month",),
                sums=("occupied_bed_days", "open_bed_days"),
            ),
        )
        for code, rows in volumes.results.items():
            assert len(rows) == 24, "two calendar years of months, window edges exact"
            assert all(r.count == 1 for r in rows), code
        tours = await _everywhere(
            federation,
            AggregateRequest(
                port.CAPACITY_ACTIVITY,
                ListQuery(parties=None, since=date(last, 1, 1), until=date(last + 1, 1, 1)),
                group_by=("kind",),
            ),
        )
        lead = _by_group(tours.results["LYZG"])
        assert lead[("ON_SITE_TOUR",)].count >= 10 and ("DISPATCH",) in lead
    finally:
        await federation.close()


@pytest.mark.parametrize("kind", [port.SPECIALTY_VOLUME, port.SATISFACTION_SURVEY])
def test_the_part_2_kinds_are_listed_by_month(kind: port.RecordKind[Any]) -> None:
    assert kind.sort_field == "month" and kind in port.RECORD_KINDS
