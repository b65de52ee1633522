"""The federation logic over in-memory sources: merge order and cursors with keys that are not
numbers, ties across members, containment of any failure of one member, kinds a source does not
serve. Fast; the same behaviour against real PostgreSQL is in test_referrals.py and
test_fault_matrix.py."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.resilience import CircuitBreaker, CircuitState, Guard
from adapters.sources import port
from adapters.sources.errors import SourceErrorCode
from adapters.sources.port import PageRequest
from adapters.sources.records import ListQuery, ReferralRow
from resolvers.errors import GatewayError
from resolvers.federation import (
    Federation,
    MemberSource,
    Merged,
    SourceReport,
    bounds,
    fan_out,
    merge_pages,
    page_in_rounds,
)
from tests.memory_source import MemorySource

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def referral(key: str, at: datetime, status: str = "INITIATED") -> ReferralRow:
    return ReferralRow(
        id=key,
        referral_no=f"R-{key}",
        direction="UP",
        from_hospital="A",
        from_department=None,
        to_hospital="B",
        to_department=None,
        patient_pseudonym="p" * 64,
        patient_sex="FEMALE",
        patient_age=60,
        diagnosis_code="S72.001",
        diagnosis_name="股骨颈骨折",
        reason="r",
        condition_summary=None,
        notes=None,
        urgency="ROUTINE",
        green_channel=False,
        status=status,
        status_reason=None,
        requested_date=None,
        arrived_at=None,
        completed_at=None,
        treatment_result=None,
        discharge_summary=None,
        rehab_advice=None,
        idempotency_key=None,
        created_by=None,
        created_at=at,
        updated_at=at,
        version=1,
    )


def federation(*sources: MemorySource) -> Federation:
    return Federation(
        MemberSource(
            s.member,
            s,
            Guard(
                s.member,
                timeout_seconds=0.5,
                max_concurrency=4,
                breaker=CircuitBreaker(failure_threshold=2, reset_after_seconds=60),
                adapter=s.adapter,
            ),
        )
        for s in sources
    )


def sources_with_ties() -> tuple[MemorySource, ...]:
    # FHIR-like keys, many records at the very same time in several members.
    a = MemorySource(
        "AAA",
        records={
            "referral": [referral(f"a-{i}", T0 - timedelta(minutes=i // 3)) for i in range(20)]
        },
    )
    b = MemorySource(
        "BBB",
        records={
            "referral": [referral(f"b.{i}", T0 - timedelta(minutes=i // 4)) for i in range(17)]
        },
    )
    c = MemorySource("CCC", records={"referral": [referral("only", T0)]})
    return a, b, c


async def read_all(fed: Federation, size: int) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    after: str | None = None
    while True:
        bound_of = bounds(after, "Referral", fed)
        answered = await fan_out(
            fed,
            fed.codes(),
            lambda code, bound_of=bound_of: PageRequest(  # type: ignore[misc]
                port.REFERRAL, ListQuery(parties=None, bound=bound_of(code), limit=size + 1)
            ),
        )
        assert answered.errors == []
        merged = merge_pages(
            "Referral",
            {code: page.records for code, page in answered.results.items()},
            lambda r: r.created_at,
            size,
        )
        seen += [(member, row.id) for _, member, row in merged.items]
        if not merged.has_next_page:
            return seen
        after = merged.items[-1][0]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 50])
async def test_pages_of_any_size_never_skip_or_repeat_with_string_keys_and_ties(size: int) -> None:
    fed = federation(*sources_with_ties())
    everything = await read_all(fed, 100)
    assert len(everything) == len(set(everything)) == 38
    assert await read_all(fed, size) == everything


async def test_a_member_failing_in_an_unforeseen_way_costs_only_its_part() -> None:
    a, b, c = sources_with_ties()

    def broken() -> None:
        raise RuntimeError("a bug inside an adapter")

    b.before = broken
    fed = federation(a, b, c)
    request = PageRequest(port.REFERRAL, ListQuery(parties=None, limit=100), with_total=True)
    for attempt in range(3):
        answered = await fan_out(fed, fed.codes(), lambda _: request)
        assert sorted(answered.results) == ["AAA", "CCC"]
        assert [(e.member, e.code) for e in answered.errors] == [
            (
                "BBB",
                SourceErrorCode.SOURCE_CIRCUIT_OPEN
                if attempt == 2
                else SourceErrorCode.SOURCE_FAILED,
            )
        ]
        assert "RuntimeError" not in answered.errors[0].message
    assert fed.members["BBB"].guard.breaker.state is CircuitState.OPEN
    assert sum(p.total or 0 for p in answered.results.values()) == 21


def test_a_member_whose_breaker_opened_mid_operation_is_reported_by_its_cause() -> None:
    from adapters.sources.errors import SourceError
    from gateway.runtime.errors import source_errors

    code = SourceErrorCode
    failures = [
        SourceError(code.SOURCE_CIRCUIT_OPEN, "BBB"),
        SourceError(code.SOURCE_TIMEOUT, "AAA"),
        SourceError(code.SOURCE_UNAVAILABLE, "BBB"),
        SourceError(code.SOURCE_CIRCUIT_OPEN, "BBB"),
        SourceError(code.SOURCE_CIRCUIT_OPEN, "CCC"),
    ]
    reported = [(e.extensions or {}) for e in source_errors(failures)]
    assert [(e["member"], e["code"]) for e in reported] == [
        ("BBB", "SOURCE_UNAVAILABLE"),
        ("AAA", "SOURCE_TIMEOUT"),
        ("CCC", "SOURCE_CIRCUIT_OPEN"),
    ]


async def test_a_slow_member_costs_one_deadline_with_its_total() -> None:
    a, b, _ = sources_with_ties()
    b.delay_seconds = 5
    fed = federation(a, b)
    request = PageRequest(port.REFERRAL, ListQuery(parties=None, limit=10), with_total=True)
    started = datetime.now(UTC)
    answered = await fan_out(fed, fed.codes(), lambda _: request)
    elapsed = (datetime.now(UTC) - started).total_seconds()
    assert [e.code for e in answered.errors] == [SourceErrorCode.SOURCE_TIMEOUT]
    assert answered.results["AAA"].total == 20
    assert elapsed < 0.9, "one deadline (0.5 s), not two"
    assert len(a.asked) == 1 and "+total" in a.asked[0], "page and total in one call"


async def test_a_kind_a_source_does_not_serve_leaves_it_out_silently() -> None:
    a, b, _ = sources_with_ties()
    b.serves = frozenset({port.TEST_RESULT})
    fed = federation(a, b)
    request = PageRequest(port.REFERRAL, ListQuery(parties=None, limit=100))
    answered = await fan_out(fed, fed.codes(), lambda _: request)
    assert list(answered.results) == ["AAA"] and answered.errors == []
    assert b.asked == []


@given(
    st.one_of(
        st.dates(),
        st.datetimes(),
        st.datetimes(
            # UTC, whole and part hours, and a local mean time's seconds (Shanghai's until 1901)
            timezones=st.sampled_from(
                [
                    UTC,
                    timezone(timedelta(hours=8)),
                    timezone(timedelta(hours=-3, minutes=-30)),
                    timezone(timedelta(hours=8, minutes=5, seconds=43)),
                ]
            )
        ),
    )
)
def test_a_cursor_holds_the_isoformat_of_its_sort_value(value: date) -> None:
    from resolvers.federation import Position, encode_position
    from resolvers.pagination import cursor_parts

    _, (written, member, key) = cursor_parts(
        encode_position("Referral", Position(value, "AAA", "k"))
    )
    assert (written, member, key) == (value.isoformat(), "AAA", "k")


@pytest.mark.parametrize("key", ["", "with space", "x" * 65, "semi;colon", "١٢٣"])
async def test_a_cursor_key_the_member_could_not_have_issued_is_bad_input(key: str) -> None:
    from resolvers.federation import Position, encode_position

    fed = federation(*sources_with_ties())
    cursor = encode_position("Referral", Position(T0, "AAA", key))
    with pytest.raises(GatewayError) as refused:
        bounds(cursor, "Referral", fed)
    assert refused.value.code == "BAD_USER_INPUT"


async def test_updates_apply_only_at_the_expected_version() -> None:
    a, _, _ = sources_with_ties()
    current = a.records["referral"][0]
    moved = await a.update(
        port.UpdateRequest(port.REFERRAL, current.id, current.version, {"status": "ACCEPTED"})
    )
    assert moved is not None and moved.version == 2 and moved.status == "ACCEPTED"
    stale = await a.update(
        port.UpdateRequest(port.REFERRAL, current.id, current.version, {"status": "REJECTED"})
    )
    assert stale is None
    assert replace(moved) == a.records["referral"][0]


async def test_identical_reads_in_flight_are_asked_once_and_shared() -> None:
    a, _, _ = sources_with_ties()
    a.delay_seconds = 0.05
    fed = federation(a)
    member = fed.members["AAA"]
    everyone = PageRequest(port.REFERRAL, ListQuery(parties=None, limit=5))
    one_hospital = PageRequest(port.REFERRAL, ListQuery(parties=("A",), limit=5))
    pages = await asyncio.gather(
        *(member.ask(everyone) for _ in range(5)), member.ask(one_hospital)
    )
    assert len(a.asked) == 2, "one call per distinct read, whatever the number of readers"
    assert all(p is pages[0] for p in pages[:5])
    # Once settled, the next read asks again: nothing is cached beyond the flight.
    await member.ask(everyone)
    assert len(a.asked) == 3


async def test_a_reader_giving_up_does_not_cancel_the_shared_read() -> None:
    a, _, _ = sources_with_ties()
    a.delay_seconds = 0.05
    member = federation(a).members["AAA"]
    request = PageRequest(port.REFERRAL, ListQuery(parties=None, limit=5))
    first = asyncio.ensure_future(member.ask(request))
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(member.ask(request))
    await asyncio.sleep(0.01)
    first.cancel()
    page = await second
    assert len(page.records) == 5 and len(a.asked) == 1


async def test_the_in_memory_feed_gives_changes_after_a_watermark_oldest_first() -> None:
    a, _, _ = sources_with_ties()
    feed = a.change_feed()
    assert await feed.connect(lambda: None) is False
    first = await feed.changes("referral", (datetime.min.replace(tzinfo=UTC), ""), 5)
    assert len(first) == 5
    assert [(c.updated_at, c.id) for c in first] == sorted((c.updated_at, c.id) for c in first)
    rest = await feed.changes("referral", (first[-1].updated_at, first[-1].id), 100)
    assert len(first) + len(rest) == 20
    assert not {c.id for c in first} & {c.id for c in rest}
    assert first[0].parties == ("A", "B")


async def page_of(fed: Federation, size: int, after: str | None) -> Merged[ReferralRow]:
    """A page of `size` after `after`, read as the gateway reads a list: in rounds."""
    merged, _ = await page_in_rounds(
        fed,
        port.REFERRAL,
        "Referral",
        size,
        bounds(after, "Referral", fed),
        lambda _code, bound, limit, _first: PageRequest(
            port.REFERRAL, ListQuery(parties=None, bound=bound, limit=limit)
        ),
    )
    return merged


async def read_in_rounds(fed: Federation, size: int) -> list[list[tuple[str, str]]]:
    pages: list[list[tuple[str, str]]] = []
    after: str | None = None
    while True:
        merged = await page_of(fed, size, after)
        pages.append([(member, row.id) for _, member, row in merged.items])
        if not merged.has_next_page:
            return pages
        after = merged.items[-1][0]


@settings(max_examples=60, deadline=None)
@given(
    # Per member, how many records at each minute: bunched members, empty ones, ties.
    members=st.lists(st.lists(st.integers(0, 3), min_size=0, max_size=12), min_size=1, max_size=6),
    size=st.integers(1, 30),
)
async def test_pages_read_in_rounds_equal_pages_read_whole(
    members: list[list[int]], size: int
) -> None:
    sources = [
        MemorySource(
            f"M{m:02d}",
            records={
                "referral": [
                    referral(f"k{m}-{minute}-{i}", T0 - timedelta(minutes=minute))
                    for minute, count in enumerate(counts)
                    for i in range(count)
                ]
            },
        )
        for m, counts in enumerate(members)
    ]
    fed = federation(*sources)
    whole = await read_all(fed, size)
    in_rounds = await read_in_rounds(fed, size)
    assert [item for page in in_rounds for item in page] == whole
    assert all(len(page) == size for page in in_rounds[:-1])
    # No member is asked more than twice for a page.
    for source in sources:
        source.asked.clear()
    await page_of(fed, size, None)
    assert all(len(source.asked) <= 2 for source in sources)


async def test_a_member_read_in_rounds_gives_all_of_its_part_or_none() -> None:
    # BBB holds the newest records: it is asked a second time, and fails then.
    older = [
        MemorySource(
            code,
            records={
                "referral": [referral(f"{code}{i}", T0 - timedelta(hours=i + 1)) for i in range(30)]
            },
        )
        for code in ("AAA", "CCC", "DDD", "EEE")
    ]
    b = MemorySource(
        "BBB",
        records={"referral": [referral(f"b{i}", T0 - timedelta(minutes=i)) for i in range(30)]},
    )

    def fail_the_second_round() -> None:
        if len(b.asked) == 2:
            raise RuntimeError("lost the connection")

    b.before = fail_the_second_round
    report = SourceReport()
    fed = federation(b, *older)
    merged, opening = await page_in_rounds(
        fed,
        port.REFERRAL,
        "Referral",
        20,
        bounds(None, "Referral", fed),
        lambda _code, bound, limit, _first: PageRequest(
            port.REFERRAL, ListQuery(parties=None, bound=bound, limit=limit)
        ),
        report,
    )
    assert len(b.asked) == 2
    assert [e.member for e in report.failures] == ["BBB"]
    assert "BBB" not in opening
    assert len(merged.items) == 20
    assert "BBB" not in {member for _, member, _ in merged.items}
