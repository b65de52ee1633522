"""The source port's contract, one suite run against every adapter: PostgreSQL (a scratch
database on the demo's server), MySQL (a scratch database on a MariaDB server the tests start) and
FHIR (a fresh sekmet-fhir server per test; a behaviour of a kind of record the FHIR adapter
declares not served is skipped for it, nothing else).
Each test gets a fresh exchange database, fills it as the hospital's own systems would (bulk
loading, not through the adapter) and checks what the adapter answers: order and keyset paging with
ties, filters, totals, lookups, idempotent creates with children, version updates, aggregates,
change capture and read-only refusal. The same data must give the same answers on both engines."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from adapters.exchange import bulk as pg_bulk
from adapters.exchange.columns import ColumnMap
from adapters.fhir import mapping as fhir_mapping
from adapters.mysql import bulk as mysql_bulk
from adapters.sources import port
from adapters.sources.errors import SourceError, SourceErrorCode
from adapters.sources.kinds import open_source
from adapters.sources.port import (
    AggregateRequest,
    Children,
    CreateRequest,
    LookupRequest,
    PageRequest,
    SourceConfig,
    SourcePort,
    UpdateRequest,
)
from adapters.sources.records import (
    Bound,
    ConsultationFilter,
    ListQuery,
    ReferralFilter,
    ReferralRow,
    ResultFilter,
    TrainingFilter,
)
from gateway.demo.embedded_mariadb import EmbeddedMariaDB
from tests.conftest import Demo
from tests.fhir_server import started as fhir_started
from tests.mariadb_server import exchange_database, require_mariadb

MEMBER = "SITE"
NOW = datetime.now(UTC).replace(microsecond=123456) - timedelta(hours=1)
_scratch = itertools.count(1)

Load = Callable[[str, Sequence[dict[str, Any]]], Awaitable[None]]


@dataclass
class Site:
    """A member's exchange database on one engine: its adapter kind, DSN, and how the hospital's
    own systems write into it."""

    kind: str
    dsn: str  # or a FHIR server's base URL
    load: Load  # table, rows keyed by logical column names

    def source(self, *, read_only: bool = False) -> SourcePort:
        if self.kind == "fhir":
            return open_source(
                SourceConfig(member=MEMBER, kind="fhir", base_url=self.dsn, read_only=read_only)
            )
        return open_source(
            SourceConfig(member=MEMBER, kind=self.kind, dsn=self.dsn, read_only=read_only)
        )


def needs(source: SourcePort, *kinds: port.RecordKind[Any]) -> None:
    """Skips a behaviour of kinds the adapter declares not served (they are absent, not errors)."""
    missing = [k.name for k in kinds if k not in source.capabilities.serves]
    if missing:
        pytest.skip(f"{source.adapter} does not serve {', '.join(missing)}")


async def _postgres_site(demo: Demo) -> Site:
    admin_dsn = demo.info["admin_dsn"]
    name = f"contract_{next(_scratch)}_{datetime.now().strftime('%H%M%S%f')}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = admin_dsn.replace("/postgres?", f"/{name}?", 1)
    conn = await asyncpg.connect(dsn)
    try:
        await pg_bulk.install_schema(conn)
    finally:
        await conn.close()

    async def load(table: str, rows: Sequence[dict[str, Any]]) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await pg_bulk.load(conn, ColumnMap(), table, rows)
        finally:
            await conn.close()

    return Site("postgres", dsn, load)


async def _mysql_site(server: EmbeddedMariaDB) -> Site:
    db = await exchange_database(server)

    async def load(table: str, rows: Sequence[dict[str, Any]]) -> None:
        conn = await db.connect()
        try:
            await mysql_bulk.load(conn, ColumnMap(), table, rows)
        finally:
            conn.close()

    return Site("mysql", db.dsn, load)


async def _fhir_site(directory: Path) -> AsyncIterator[Site]:
    server = await fhir_started(directory)
    ids = itertools.count(1)

    async def load(table: str, rows: Sequence[dict[str, Any]]) -> None:
        # As the hospital's own systems would: straight to its server, under the published mapping,
        # with ids of their own in load order (update as create), as the SQL sources' keys are.
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            for row in rows:
                if table == "referral":
                    resource = fhir_mapping.referral_resource(row)
                elif table == "test_result":
                    resource = fhir_mapping.result_resource(row, MEMBER)
                elif table == "recognition_decision":
                    resource = fhir_mapping.decision_resource(row, MEMBER)
                else:
                    raise AssertionError(f"fhir does not serve {table}")
                resource["id"] = f"h{next(ids):06d}"
                answer = await http.put(
                    f"/{resource['resourceType']}/{resource['id']}",
                    json=resource,
                    headers={"Content-Type": "application/fhir+json"},
                )
                assert answer.status_code == 201, answer.text

    try:
        yield Site("fhir", server.base_url, load)
    finally:
        server.stop()


@pytest.fixture(params=["postgres", "mysql", "fhir"])
async def site(
    request: pytest.FixtureRequest,
    demo_env: Demo,
    mariadb_if_installed: EmbeddedMariaDB | None,
    tmp_path: Path,
) -> AsyncIterator[Site]:
    if request.param == "postgres":
        yield await _postgres_site(demo_env)
        return
    if request.param == "fhir":
        async for fhir in _fhir_site(tmp_path / "fhir"):
            yield fhir
        return
    if mariadb_if_installed is None:
        require_mariadb()
    assert mariadb_if_installed is not None
    yield await _mysql_site(mariadb_if_installed)


@pytest.fixture
async def source(site: Site) -> AsyncIterator[SourcePort]:
    adapter = site.source()
    yield adapter
    await adapter.close()


# -- the hospital's rows --------------------------------------------------------------------------


def referral(n: int, at: datetime, **values: Any) -> dict[str, Any]:
    return {
        "referral_no": f"R-{n}",
        "direction": "UP",
        "from_hospital": MEMBER,
        "to_hospital": "LYZG",
        "patient_pseudonym": f"{n:064x}",
        "patient_sex": "FEMALE",
        "patient_age": 70,
        "diagnosis_code": "S72.001",
        "diagnosis_name": "股骨颈骨折",
        "reason": "需手术治疗",
        "urgency": "ROUTINE",
        "green_channel": False,
        "status": "INITIATED",
        "created_at": at,
        "updated_at": at,
        "version": 1,
        **values,
    }


def s(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


# Ties on created_at: three rows at NOW, two a second earlier, two at three seconds.
REFERRALS = [
    referral(1, s(4)),
    referral(2, s(3), to_hospital="LHZY"),
    referral(3, s(3), direction="DOWN", from_hospital="LYZG", to_hospital=MEMBER),
    referral(4, s(2), status="ACCEPTED", green_channel=True),
    referral(5, s(1)),
    referral(6, s(1), status="COMPLETED", to_hospital="LHZY"),
    referral(7, s(0), green_channel=True),
    referral(8, s(0), direction="DOWN", from_hospital="LHZY", to_hospital=MEMBER),
    referral(9, s(0), status="ACCEPTED"),
]
# Newest first by created_at, then by key (ids are given in load order): the source's own order.
ORDER = ["R-9", "R-8", "R-7", "R-6", "R-5", "R-4", "R-3", "R-2", "R-1"]


def nos(rows: Sequence[ReferralRow]) -> list[str]:
    return [r.referral_no for r in rows]


async def all_pages(
    source: SourcePort, query: ListQuery, filter: port.RecordFilter = None
) -> tuple[list[ReferralRow], list[int | None]]:
    """Every page of `limit`, each resuming after the last record of the one before."""
    seen: list[ReferralRow] = []
    totals: list[int | None] = []
    bound: Bound | None = None
    while True:
        page = await source.page(
            PageRequest(
                port.REFERRAL,
                replace(query, bound=bound),
                filter,
                with_total=True,
            )
        )
        totals.append(page.total)
        seen += page.records
        if len(page.records) < query.limit:
            return seen, totals
        last = page.records[-1]
        bound = Bound(last.created_at, last.id)


# -- lists ------------------------------------------------------------------------------------------


async def test_pages_in_one_order_with_ties_never_skip_or_repeat(
    site: Site, source: SourcePort
) -> None:
    await site.load("referral", REFERRALS)
    for limit in (1, 2, 3, 4, 9, 10):
        rows, totals = await all_pages(source, ListQuery(parties=None, limit=limit))
        assert nos(rows) == ORDER, limit
        assert set(totals) == {9}, "the total ignores the bound"
    first = await source.page(PageRequest(port.REFERRAL, ListQuery(parties=None, limit=3)))
    assert first.total is None, "no total unless asked"
    assert [type(r.id) for r in first.records] == [str] * 3
    assert all(r.created_at.tzinfo is not None for r in first.records)
    assert first.records[0].created_at == NOW, "microseconds and the instant survive the trip"


async def test_a_bound_without_a_key_takes_all_or_none_of_the_ties(
    source: SourcePort, site: Site
) -> None:
    await site.load("referral", REFERRALS)

    async def after(bound: Bound) -> list[str]:
        page = await source.page(
            PageRequest(port.REFERRAL, ListQuery(parties=None, bound=bound, limit=20))
        )
        return nos(page.records)

    assert await after(Bound(s(1), ties_after=True)) == ORDER[3:]
    assert await after(Bound(s(1))) == ORDER[5:]
    tied = [
        r
        for r in (
            await source.page(PageRequest(port.REFERRAL, ListQuery(parties=None, limit=20)))
        ).records
        if r.created_at == s(1)
    ]
    assert await after(Bound(s(1), tied[0].id)) == ORDER[4:], "strictly after (value, key)"


async def test_filters_are_pushed_down(site: Site, source: SourcePort) -> None:
    await site.load("referral", REFERRALS)

    async def listed(
        query: ListQuery, f: ReferralFilter | None = None, limit: int = 2
    ) -> tuple[list[str], set[int | None]]:
        rows, totals = await all_pages(source, replace(query, limit=limit), f)
        return nos(rows), set(totals)

    everyone = ListQuery(parties=None)
    assert await listed(everyone, ReferralFilter(directions=("DOWN",))) == (["R-8", "R-3"], {2})
    assert await listed(everyone, ReferralFilter(statuses=("ACCEPTED", "COMPLETED"))) == (
        ["R-9", "R-6", "R-4"],
        {3},
    )
    assert await listed(everyone, ReferralFilter(green_channel=True)) == (["R-7", "R-4"], {2})
    # A reader sees the records its hospital is a party to; with_party narrows to another's too.
    assert await listed(ListQuery(parties=("LHZY",))) == (["R-8", "R-6", "R-2"], {3})
    assert await listed(ListQuery(parties=(MEMBER,), with_party="LYZG")) == (
        ["R-9", "R-7", "R-5", "R-4", "R-3", "R-1"],
        {6},
    )
    assert await listed(ListQuery(parties=("NOBODY",))) == ([], {0})
    window = ListQuery(parties=None, since=s(3), until=s(0))
    assert await listed(window) == (["R-6", "R-5", "R-4", "R-3", "R-2"], {5})


async def test_results_of_one_patient_by_item_code_or_loinc(site: Site, source: SourcePort) -> None:
    patient, other = "a" * 64, "b" * 64

    def result(n: int, who: str, code: str, loinc: str | None) -> dict[str, Any]:
        return {
            "patient_pseudonym": who,
            "item_code": code,
            "item_name": f"项目{n}",
            "loinc": loinc,
            "category": "LAB",
            "value": str(n),
            "unit": "mmol/L",
            "performed_at": s(n),
            "updated_at": s(n),
        }

    await site.load(
        "test_result",
        [
            result(1, patient, "K", "2823-3"),
            result(2, patient, "GLU", "2345-7"),
            result(3, patient, "XRAY", None),
            result(4, other, "K", "2823-3"),
        ],
    )

    async def items(f: ResultFilter, since: datetime | None = None) -> list[str]:
        page = await source.page(
            PageRequest(port.TEST_RESULT, ListQuery(parties=None, since=since, limit=10), f)
        )
        return [r.item_code for r in page.records]

    assert await items(ResultFilter(patient)) == ["K", "GLU", "XRAY"]
    assert await items(ResultFilter(patient, ("2345-7", "XRAY"))) == ["GLU", "XRAY"]
    assert await items(ResultFilter(patient), since=s(2)) == ["K", "GLU"]


async def test_training_events_concern_their_host_and_the_hospitals_that_sent_people(
    source: SourcePort,
) -> None:
    needs(source, port.TRAINING_EVENT, port.TRAINING_PARTICIPATION)
    created = await source.create(
        CreateRequest(
            port.TRAINING_EVENT,
            {
                "kind": "REMOTE_TEACHING",
                "host_hospital": MEMBER,
                "mode": "ONLINE",
                "place": None,
                "held_on": date(2026, 3, 5),
                "topic": "髋关节置换术后康复",
                "lecturers": ["张三", "李四"],
                "credits": Decimal("1.5"),
            },
            Children(
                port.TRAINING_PARTICIPATION,
                "event_id",
                ({"hospital": "LHZY", "participants": 12}, {"hospital": "LHGK", "participants": 3}),
            ),
        )
    )
    event = created.record
    assert (
        created.created and event.lecturers == ["张三", "李四"] and event.credits == Decimal("1.5")
    )

    async def seen_by(*hospitals: str) -> int:
        page = await source.page(
            PageRequest(
                port.TRAINING_EVENT,
                ListQuery(parties=hospitals, limit=10),
                TrainingFilter(modes=("ONLINE",)),
                with_total=True,
            )
        )
        return page.total or 0

    assert await seen_by(MEMBER) == await seen_by("LHZY") == await seen_by("LHGK", "X") == 1
    assert await seen_by("LYZG") == 0
    people = await source.lookup(
        LookupRequest(port.TRAINING_PARTICIPATION, (event.id,), "event_id")
    )
    assert sorted((p.hospital, p.participants) for p in people) == [("LHGK", 3), ("LHZY", 12)]


# -- lookups -----------------------------------------------------------------------------------------


async def test_lookups_by_key_and_by_field(site: Site, source: SourcePort) -> None:
    await site.load("referral", REFERRALS)
    every = (
        await source.page(PageRequest(port.REFERRAL, ListQuery(parties=None, limit=20)))
    ).records
    by_no = {r.referral_no: r for r in every}
    wanted = (by_no["R-2"].id, by_no["R-7"].id, "999999", "not-a-key", "")
    found = await source.lookup(LookupRequest(port.REFERRAL, wanted))
    assert sorted(nos(found)) == ["R-2", "R-7"], "keys that cannot match match nothing"
    assert await source.lookup(LookupRequest(port.REFERRAL, ("x",))) == []
    needs(source, port.RECOGNITION_DECISION)
    decision = await source.create(
        CreateRequest(
            port.RECOGNITION_DECISION,
            {
                "result_member": "LHZY",
                "result_id": "fhir-Observation/17",
                "patient_pseudonym": "c" * 64,
                "loinc": "2823-3",
                "decided_by": "dr",
                "decision": "DECLINED",
                "reason": "CONDITION_CHANGED",
                "retest_cost_fen": 1200,
            },
        )
    )
    found_decisions = await source.lookup(
        LookupRequest(
            port.RECOGNITION_DECISION,
            ("fhir-Observation/17", "nothing"),
            "result_id",
            (("result_member", "LHZY"),),
        )
    )
    assert [d.id for d in found_decisions] == [decision.record.id]
    assert (
        await source.lookup(
            LookupRequest(
                port.RECOGNITION_DECISION,
                ("fhir-Observation/17",),
                "result_id",
                (("result_member", "LYZG"),),
            )
        )
        == []
    )


# -- writes ------------------------------------------------------------------------------------------


def new_referral(**values: Any) -> dict[str, Any]:
    row = referral(100, NOW, **{"idempotency_key": "idem-1", **values})
    for generated in ("created_at", "updated_at", "version", "status"):
        row.pop(generated)
    return row


async def test_create_is_idempotent_by_key(source: SourcePort) -> None:
    first = await source.create(CreateRequest(port.REFERRAL, new_referral()))
    again = await source.create(CreateRequest(port.REFERRAL, new_referral(referral_no="R-101")))
    assert first.created and not again.created
    assert again.record.id == first.record.id and again.record.referral_no == "R-100"
    assert first.record.version == 1 and first.record.status == "INITIATED"
    assert first.record.green_channel is False and first.record.created_at.tzinfo is not None
    page = await source.page(
        PageRequest(port.REFERRAL, ListQuery(parties=None, limit=10), with_total=True)
    )
    assert page.total == 1, "stored once"
    # Without an idempotency key, a duplicate is the source refusing the values.
    row = new_referral()
    row.pop("idempotency_key")
    with pytest.raises(SourceError) as refused:
        await source.create(CreateRequest(port.REFERRAL, row))
    assert refused.value.code is SourceErrorCode.SOURCE_REJECTED
    with pytest.raises(SourceError) as bad:
        await source.create(
            CreateRequest(
                port.REFERRAL,
                new_referral(idempotency_key="idem-2", referral_no="R-102", patient_age=400),
            )
        )
    assert bad.value.code is SourceErrorCode.SOURCE_REJECTED
    assert "400" not in bad.value.message, "the driver's text is never echoed"


async def test_children_are_created_in_the_same_transaction(source: SourcePort) -> None:
    needs(source, port.TRAINING_EVENT, port.TRAINING_PARTICIPATION)
    bad_child = Children(
        port.TRAINING_PARTICIPATION, "event_id", ({"hospital": "LHZY", "participants": -1},)
    )
    event = {
        "kind": "LECTURE_TOUR",
        "host_hospital": MEMBER,
        "mode": "ON_SITE",
        "place": "示教室",
        "held_on": date(2026, 4, 1),
        "topic": "脊柱微创",
        "lecturers": [],
        "credits": None,
    }
    with pytest.raises(SourceError) as refused:
        await source.create(CreateRequest(port.TRAINING_EVENT, event, bad_child))
    assert refused.value.code is SourceErrorCode.SOURCE_REJECTED
    page = await source.page(
        PageRequest(port.TRAINING_EVENT, ListQuery(parties=None), with_total=True)
    )
    assert page.total == 0, "the parent went with its child"


async def test_referral_updates_apply_at_the_expected_version_only(source: SourcePort) -> None:
    created = (await source.create(CreateRequest(port.REFERRAL, new_referral()))).record
    accepted = await source.update(
        UpdateRequest(port.REFERRAL, created.id, 1, {"status": "ACCEPTED", "to_department": "骨科"})
    )
    assert accepted is not None and accepted.version == 2 and accepted.status == "ACCEPTED"
    assert accepted.to_department == "骨科" and accepted.referral_no == created.referral_no
    assert accepted.updated_at > created.updated_at and accepted.created_at == created.created_at
    stale = await source.update(UpdateRequest(port.REFERRAL, created.id, 1, {"status": "REJECTED"}))
    assert stale is None, "a stale version changes nothing"
    [now] = await source.lookup(LookupRequest(port.REFERRAL, (created.id,)))
    assert (now.status, now.version) == ("ACCEPTED", 2)
    listed = await source.page(
        PageRequest(
            port.REFERRAL,
            ListQuery(parties=("LYZG",)),
            ReferralFilter(statuses=("ACCEPTED",)),
            with_total=True,
        )
    )
    assert listed.total == 1 and [r.version for r in listed.records] == [2]


async def test_updates_apply_at_the_expected_version_only(source: SourcePort) -> None:
    needs(source, port.CONSULTATION, port.CONSULTATION_REPORT)
    created = (
        await source.create(
            CreateRequest(
                port.CONSULTATION,
                {
                    "kind": "REMOTE_IMAGING",
                    "requesting_hospital": MEMBER,
                    "requesting_doctor": "王医生",
                    "invited_hospital": "LYZG",
                    "patient_pseudonym": "d" * 64,
                    "patient_sex": "MALE",
                    "patient_age": 55,
                    "purpose": "明确诊断",
                    "attached_studies": ["CT-1", "MR-2"],
                    "consent_obtained": True,
                    "idempotency_key": "c-1",
                },
            )
        )
    ).record
    assert created.attached_studies == ["CT-1", "MR-2"] and created.consent_obtained is True
    at = NOW.replace(microsecond=0) + timedelta(days=1)
    scheduled = await source.update(
        UpdateRequest(port.CONSULTATION, created.id, 1, {"status": "SCHEDULED", "scheduled_at": at})
    )
    assert scheduled is not None and scheduled.version == 2 and scheduled.scheduled_at == at
    assert scheduled.updated_at > created.updated_at
    stale = await source.update(
        UpdateRequest(port.CONSULTATION, created.id, 1, {"status": "CANCELLED"})
    )
    assert stale is None, "a stale version changes nothing"
    assert (
        await source.update(UpdateRequest(port.CONSULTATION, "999999", 1, {"status": "CLOSED"}))
        is None
    )
    reported = await source.update(
        UpdateRequest(
            port.CONSULTATION,
            created.id,
            2,
            {"status": "REPORTED"},
            Children(
                port.CONSULTATION_REPORT,
                "consultation_id",
                ({"expert_name": "李专家", "opinion": "未见明显异常"},),
            ),
        )
    )
    assert reported is not None and reported.status == "REPORTED" and reported.version == 3
    reports = await source.lookup(
        LookupRequest(port.CONSULTATION_REPORT, (created.id,), "consultation_id")
    )
    assert [(r.consultation_id, r.expert_name, r.signed) for r in reports] == [
        (created.id, "李专家", True)
    ]
    if source.capabilities.accepts_key("abc"):
        # A FHIR id may be any such string: there is simply no such record.
        assert (
            await source.update(UpdateRequest(port.CONSULTATION, "abc", 1, {"status": "CLOSED"}))
            is None
        )
    else:
        with pytest.raises(SourceError) as bad_key:
            await source.update(UpdateRequest(port.CONSULTATION, "abc", 1, {"status": "CLOSED"}))
        assert bad_key.value.code is SourceErrorCode.SOURCE_REJECTED
    listed = await source.page(
        PageRequest(
            port.CONSULTATION,
            ListQuery(parties=("LYZG",)),
            ConsultationFilter(statuses=("REPORTED",)),
            with_total=True,
        )
    )
    assert listed.total == 1 and listed.records[0].version == 3


async def test_a_read_only_source_refuses_writes(site: Site) -> None:
    source = site.source(read_only=True)
    try:
        assert not source.capabilities.writable
        with pytest.raises(SourceError) as refused:
            await source.create(CreateRequest(port.REFERRAL, new_referral()))
        assert refused.value.code is SourceErrorCode.SOURCE_READ_ONLY
        with pytest.raises(SourceError) as refused:
            await source.update(UpdateRequest(port.REFERRAL, "1", 1, {"status": "ACCEPTED"}))
        assert refused.value.code is SourceErrorCode.SOURCE_READ_ONLY
        await source.ping()  # reads still work
    finally:
        await source.close()


# -- aggregates -------------------------------------------------------------------------------------


async def test_aggregates_count_and_sum_in_the_window(site: Site, source: SourcePort) -> None:
    needs(source, port.RECOGNITION_DECISION)

    def decision(
        n: int, verdict: str, reason: str | None, cost: int | None, at: datetime
    ) -> dict[str, Any]:
        return {
            "result_member": "LHZY",
            "result_id": str(n),
            "patient_pseudonym": "e" * 64,
            "loinc": "2823-3",
            "decided_by": "dr",
            "decision": verdict,
            "reason": reason,
            "retest_cost_fen": cost,
            "decided_at": at,
            "updated_at": at,
        }

    await site.load(
        "recognition_decision",
        [
            decision(1, "RECOGNIZED", None, 1000, s(10)),
            decision(2, "RECOGNIZED", None, 2500, s(20)),
            decision(3, "RECOGNIZED", None, None, s(30)),
            decision(4, "DECLINED", "EMERGENCY", None, s(40)),
            decision(5, "DECLINED", "EMERGENCY", None, s(50)),
            decision(6, "DECLINED", "APPRAISAL", None, s(60)),
            decision(7, "RECOGNIZED", None, 9999, s(3600 * 48)),  # outside the window
        ],
    )
    rows = await source.aggregate(
        AggregateRequest(
            port.RECOGNITION_DECISION,
            ListQuery(parties=None, since=s(3600), until=NOW),
            group_by=("decision", "reason"),
            sums=("retest_cost_fen",),
        )
    )
    assert sorted((r.group, r.count, r.sums) for r in rows) == [
        (("DECLINED", "APPRAISAL"), 1, (0,)),
        (("DECLINED", "EMERGENCY"), 2, (0,)),
        (("RECOGNIZED", None), 3, (3500,)),
    ]
    [everything] = await source.aggregate(
        AggregateRequest(port.RECOGNITION_DECISION, ListQuery(parties=None))
    )
    assert everything.group == () and everything.count == 7


# -- change capture ---------------------------------------------------------------------------------


async def test_rows_written_at_the_hospital_are_changes_in_watermark_order(
    site: Site, source: SourcePort
) -> None:
    if site.kind == "fhir":
        pytest.skip("the FHIR server stamps lastUpdated itself: see test_fhir_source.py")
    feed = source.change_feed()
    # PostgreSQL could push (with change_notify.sql installed, not here); MySQL never can.
    assert source.capabilities.notifies is (site.kind == "postgres")
    assert await feed.connect(lambda: None) is False
    try:
        assert feed.connected and "referral" in feed.kinds
        start = await feed.now_or_latest("referral")
        assert abs(start - datetime.now(UTC)) < timedelta(minutes=1), "the source's own present"
        tie = start + timedelta(milliseconds=1)
        # The hospital's HIS writes two rows in the same instant, and a third later.
        await site.load(
            "referral",
            [
                referral(1, tie, updated_at=tie),
                referral(
                    2,
                    tie,
                    updated_at=tie,
                    direction="DOWN",
                    from_hospital="LHZY",
                    to_hospital=MEMBER,
                ),
                referral(3, tie, updated_at=tie + timedelta(seconds=1)),
            ],
        )
        changes = await feed.changes("referral", (start, ""), 10)
        assert [(c.version, c.updated_at) for c in changes] == [
            (1, tie),
            (1, tie),
            (1, tie + timedelta(seconds=1)),
        ]
        assert changes[0].parties == (MEMBER, "LYZG") and changes[1].parties == ("LHZY", MEMBER)
        assert int(changes[0].id) < int(changes[1].id), "ties in key order"
        after_first = await feed.changes("referral", (tie, changes[0].id), 10)
        assert [c.id for c in after_first] == [changes[1].id, changes[2].id]
        assert [c.id for c in await feed.changes("referral", (start, ""), 1)] == [changes[0].id]
        # A change through the adapter is a later version of the same row.
        moved = await source.update(
            UpdateRequest(port.REFERRAL, changes[0].id, 1, {"status": "ACCEPTED"})
        )
        assert moved is not None
        again = await feed.changes("referral", (start, ""), 10)
        assert [(c.id, c.version) for c in again if c.version > 1] == [(changes[0].id, 2)]
        assert len(again) == 3, "one row per record, at its latest version"
        # A report's parties are its consultation's.
        assert await feed.changes("consultation_report", (start, ""), 10) == []
    finally:
        await feed.close()
    assert not feed.connected
