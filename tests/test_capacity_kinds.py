"""The exchange contract's part 2 through the source port: specialty volumes, satisfaction surveys
and capacity-building activities (帮扶), on both SQL engines (a scratch PostgreSQL database on the
demo's server, a scratch MariaDB database). Each test fills a fresh exchange database as the
hospital's own systems would and checks what the adapter answers: pages, windows on the kind's
date with their edges, aggregates with sums, lookups and idempotent creates. The FHIR adapter
does not serve these kinds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from adapters.sources import port
from adapters.sources.errors import SourceError, SourceErrorCode
from adapters.sources.kinds import open_source
from adapters.sources.port import (
    AggregateRequest,
    CreateRequest,
    LookupRequest,
    PageRequest,
    SourceConfig,
    SourcePort,
)
from adapters.sources.records import Bound, CapacityFilter, ListQuery, SpecialtyVolumeRow
from gateway.demo.embedded_mariadb import EmbeddedMariaDB
from tests.conftest import Demo
from tests.mariadb_server import require_mariadb
from tests.memory_source import MemorySource
from tests.test_source_contract import MEMBER, Site, _mysql_site, _postgres_site

NEW_KINDS = (port.SPECIALTY_VOLUME, port.SATISFACTION_SURVEY, port.CAPACITY_ACTIVITY)


@pytest.fixture(params=["postgres", "mysql"])
async def sql_site(
    request: pytest.FixtureRequest,
    demo_env: Demo,
    mariadb_if_installed: EmbeddedMariaDB | None,
) -> Site:
    if request.param == "postgres":
        return await _postgres_site(demo_env)
    if mariadb_if_installed is None:
        require_mariadb()
    assert mariadb_if_installed is not None
    return await _mysql_site(mariadb_if_installed)


@pytest.fixture
async def sql_source(sql_site: Site) -> AsyncIterator[SourcePort]:
    adapter = sql_site.source()
    yield adapter
    await adapter.close()


def volume(hospital: str, month: date, n: int) -> dict[str, Any]:
    """A month's figures that differ by `n`, so that a wrong window or group shows in the sums."""
    return {
        "hospital": hospital,
        "month": month,
        "outpatient_visits": 1000 * n,
        "admissions": 100 * n,
        "discharges": 90 * n,
        "discharged_bed_days": 800 * n,
        "occupied_bed_days": 850 * n,
        "open_bed_days": 1000,
        "operations": 40 * n,
        "grade34_operations": 20 * n,
        "complex_critical_cases": 5 * n,
        "outpatient_cost_fen": 30_000_000 * n,
        # Past int32 for a busy month: the contract's cost columns are bigint.
        "inpatient_cost_fen": 1_500_000_000 * n,
    }


def activity(n: int, kind: str, helping: str, helped: str, started: date, **values: Any) -> dict:
    at = datetime(started.year, started.month, started.day, 9, tzinfo=UTC)
    return {
        "kind": kind,
        "helping_hospital": helping,
        "helped_hospital": helped,
        "title": f"帮扶 {n}",
        "started_on": started,
        "ended_on": None,
        "people": n,
        "created_at": at,
        "updated_at": at,
        "version": 1,
        **values,
    }


def test_the_fhir_adapter_does_not_serve_the_new_kinds() -> None:
    fhir = open_source(SourceConfig(member="F", kind="fhir", base_url="http://127.0.0.1:9/fhir"))
    assert not set(NEW_KINDS) & fhir.capabilities.serves
    for kind in ("postgres", "mysql"):
        sql = open_source(SourceConfig(member="S", kind=kind, dsn=f"{kind}://u:p@127.0.0.1/x"))
        assert set(NEW_KINDS) <= sql.capabilities.serves


async def test_volumes_aggregate_per_hospital_with_sums_in_a_month_window(
    sql_site: Site, sql_source: SourcePort
) -> None:
    months = [date(2024, m, 1) for m in range(1, 13)]
    await sql_site.load(
        "specialty_volume",
        [volume(MEMBER, m, i + 1) for i, m in enumerate(months)]
        + [volume("LYZG", m, 10) for m in months],
    )
    sums = ("outpatient_visits", "inpatient_cost_fen", "open_bed_days")
    # March to May: since is the first month in, until the first month out.
    rows = await sql_source.aggregate(
        AggregateRequest(
            port.SPECIALTY_VOLUME,
            ListQuery(parties=None, since=date(2024, 3, 1), until=date(2024, 6, 1)),
            group_by=("hospital",),
            sums=sums,
        )
    )
    assert sorted((r.group, r.count, r.sums) for r in rows) == [
        (("LYZG",), 3, (30_000, 45_000_000_000, 3000)),
        ((MEMBER,), 3, (12_000, 18_000_000_000, 3000)),
    ]
    assert all(type(v) is int for r in rows for v in r.sums)
    # A reader who sees one hospital counts only its rows; by month, a group is a date.
    [mine] = await sql_source.aggregate(
        AggregateRequest(
            port.SPECIALTY_VOLUME,
            ListQuery(parties=(MEMBER,), since=date(2024, 12, 1), until=date(2025, 1, 1)),
            group_by=("month",),
            sums=("admissions",),
        )
    )
    assert (mine.group, mine.count, mine.sums) == ((date(2024, 12, 1),), 1, (1200,))
    [whole] = await sql_source.aggregate(AggregateRequest(port.SPECIALTY_VOLUME, ListQuery(None)))
    assert whole.count == 24


async def test_volumes_page_newest_month_first(sql_site: Site, sql_source: SourcePort) -> None:
    await sql_site.load(
        "specialty_volume", [volume(MEMBER, date(2023, m, 1), m) for m in range(1, 7)]
    )
    page = await sql_source.page(
        PageRequest(
            port.SPECIALTY_VOLUME,
            ListQuery(parties=None, bound=Bound(date(2023, 5, 1)), limit=2),
            with_total=True,
        )
    )
    assert [r.month for r in page.records] == [date(2023, 4, 1), date(2023, 3, 1)]
    assert page.total == 6
    record = page.records[0]
    assert record.hospital == MEMBER and record.outpatient_visits == 4000
    assert record.inpatient_cost_fen == 6_000_000_000 and isinstance(record.id, str)


async def test_surveys_sum_respondents_and_satisfied_by_population(
    sql_site: Site, sql_source: SourcePort
) -> None:
    def survey(month: date, population: str, respondents: int, satisfied: int) -> dict:
        return {
            "hospital": MEMBER,
            "month": month,
            "population": population,
            "respondents": respondents,
            "satisfied": satisfied,
        }

    await sql_site.load(
        "satisfaction_survey",
        [
            survey(date(2023, 12, 1), "OUTPATIENT", 999, 1),  # the year before
            survey(date(2024, 3, 1), "OUTPATIENT", 200, 180),
            survey(date(2024, 6, 1), "OUTPATIENT", 100, 88),
            survey(date(2024, 3, 1), "INPATIENT", 150, 141),
            survey(date(2024, 3, 1), "STAFF", 60, 45),
            survey(date(2025, 1, 1), "STAFF", 999, 1),  # the year after
        ],
    )
    rows = await sql_source.aggregate(
        AggregateRequest(
            port.SATISFACTION_SURVEY,
            ListQuery(parties=None, since=date(2024, 1, 1), until=date(2025, 1, 1)),
            group_by=("hospital", "population"),
            sums=("respondents", "satisfied"),
        )
    )
    assert sorted((r.group, r.count, r.sums) for r in rows) == [
        ((MEMBER, "INPATIENT"), 1, (150, 141)),
        ((MEMBER, "OUTPATIENT"), 2, (300, 268)),
        ((MEMBER, "STAFF"), 1, (60, 45)),
    ]


async def test_capacity_activities_page_by_start_with_parties_kinds_and_window(
    sql_site: Site, sql_source: SourcePort
) -> None:
    await sql_site.load(
        "capacity_activity",
        [
            activity(1, "DISPATCH", "LYZG", MEMBER, date(2024, 1, 1), ended_on=date(2024, 6, 30)),
            activity(2, "MENTORING", "LYZG", "LHZY", date(2024, 3, 15)),
            activity(3, "ON_SITE_TOUR", "LHGK", MEMBER, date(2024, 12, 31)),
            activity(4, "NEW_TECHNIQUE", MEMBER, "LHZY", date(2025, 1, 1)),
            activity(5, "ON_SITE_TOUR", "LYZG", "LHZY", date(2023, 12, 31)),
        ],
    )
    year_2024 = ListQuery(parties=None, since=date(2024, 1, 1), until=date(2025, 1, 1))
    page = await sql_source.page(PageRequest(port.CAPACITY_ACTIVITY, year_2024, with_total=True))
    assert [r.title for r in page.records] == ["帮扶 3", "帮扶 2", "帮扶 1"], (
        "edges: [since, until)"
    )
    assert page.total == 3
    first = page.records[-1]
    assert first.ended_on == date(2024, 6, 30) and first.people == 1 and first.version == 1
    assert first.created_at.tzinfo is not None and page.records[0].ended_on is None
    # A party sees what it helped or was helped in, on either side.
    mine = await sql_source.page(
        PageRequest(port.CAPACITY_ACTIVITY, ListQuery(parties=(MEMBER,), limit=10))
    )
    assert sorted(r.title for r in mine.records) == ["帮扶 1", "帮扶 3", "帮扶 4"]
    between = await sql_source.page(
        PageRequest(port.CAPACITY_ACTIVITY, ListQuery(parties=("LYZG",), with_party="LHZY"))
    )
    assert sorted(r.title for r in between.records) == ["帮扶 2", "帮扶 5"]
    tours = await sql_source.page(
        PageRequest(
            port.CAPACITY_ACTIVITY, ListQuery(parties=None), CapacityFilter(("ON_SITE_TOUR",))
        )
    )
    assert [r.title for r in tours.records] == ["帮扶 3", "帮扶 5"]
    rows = await sql_source.aggregate(
        AggregateRequest(
            port.CAPACITY_ACTIVITY,
            year_2024,
            group_by=("helping_hospital", "kind"),
            sums=("people",),
        )
    )
    assert sorted((r.group, r.count, r.sums) for r in rows) == [
        (("LHGK", "ON_SITE_TOUR"), 1, (3,)),
        (("LYZG", "DISPATCH"), 1, (1,)),
        (("LYZG", "MENTORING"), 1, (2,)),
    ]
    [found] = await sql_source.lookup(LookupRequest(port.CAPACITY_ACTIVITY, (first.id, "x")))
    assert found == first


async def test_a_capacity_activity_is_created_once_by_its_idempotency_key(
    sql_source: SourcePort,
) -> None:
    values = {
        "kind": "NEW_TECHNIQUE",
        "helping_hospital": "LYZG",
        "helped_hospital": MEMBER,
        "title": "经皮椎体成形术（PVP）",
        "started_on": date(2024, 9, 2),
        "people": 3,
        "created_by": "admin@LYZG",
        "idempotency_key": "cap-1",
    }
    first = await sql_source.create(CreateRequest(port.CAPACITY_ACTIVITY, values))
    again = await sql_source.create(
        CreateRequest(port.CAPACITY_ACTIVITY, {**values, "title": "another"})
    )
    assert first.created and not again.created
    assert again.record == first.record and first.record.title == "经皮椎体成形术（PVP）"
    assert first.record.version == 1 and first.record.ended_on is None
    assert first.record.created_by == "admin@LYZG" and first.record.created_at.tzinfo is not None
    [total] = await sql_source.aggregate(
        AggregateRequest(port.CAPACITY_ACTIVITY, ListQuery(parties=None), sums=("people",))
    )
    assert (total.count, total.sums) == (1, (3,)), "stored once"
    # The contract's checks hold: a hospital does not help itself, an end is not before a start.
    for wrong in (
        {"helped_hospital": "LYZG"},
        {"ended_on": date(2024, 9, 1)},
        {"people": -1},
        {"kind": "LECTURE"},
    ):
        with pytest.raises(SourceError) as refused:
            await sql_source.create(
                CreateRequest(port.CAPACITY_ACTIVITY, {**values, "idempotency_key": None, **wrong})
            )
        assert refused.value.code is SourceErrorCode.SOURCE_REJECTED, wrong


async def test_the_in_memory_source_counts_and_sums_them_in_the_window_too() -> None:
    def row(n: int, month: date) -> SpecialtyVolumeRow:
        values = volume(MEMBER, month, n)
        return SpecialtyVolumeRow(id=str(n), **values)

    memory = MemorySource(
        "MEM",
        records={"specialty_volume": [row(m, date(2024, m, 1)) for m in range(1, 13)]},
    )
    cst = timezone(timedelta(hours=8))
    [spring] = await memory.aggregate(
        AggregateRequest(
            port.SPECIALTY_VOLUME,
            ListQuery(
                parties=None,
                since=datetime(2024, 3, 1, tzinfo=cst),
                until=datetime(2024, 6, 1, tzinfo=cst),
            ),
            group_by=("hospital",),
            sums=("outpatient_visits", "discharges"),
        )
    )
    assert (spring.group, spring.count, spring.sums) == ((MEMBER,), 3, (12_000, 1080))
