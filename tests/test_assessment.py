"""The annual assessment (绩效考核, seed 001 Annex 4) through the public contract: the catalogue, F
and N values counted independently here from the members' own databases, the per-member figures, a
member that cannot be read, assessors' scores, the conclusion and the standing over two years."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from gateway.app import create_app
from gateway.settings import Settings, load_settings
from resolvers import clock
from resolvers.assessment.indicators import CATALOGUE, Kind
from tests.conftest import Api, Demo, error_codes, serving

YEAR = clock.today().year
LAST = YEAR - 1
LEAD = "LYZG"
# The current year counts its complete months, compared with the same months of last year.
THIS_WINDOW = (date(YEAR, 1, 1), date(YEAR, clock.today().month, 1))
LAST_WINDOW = (date(LAST, 1, 1), date(LAST, clock.today().month, 1))

ASSESSMENT = """query($year: Int!) { assessment(year: $year) {
    year status totalScore passed passMark provisional comparedUntil unavailable standingAfter
    indicators { number group text points kind value previousValue score provisional
      unavailable notServing scoring
      members { hospital { code } value previousValue }
      measures { name value met }
      evidence { title location contentHash } comment assessor } } }"""

SCORE = """mutation($input: ScoreAssessmentIndicatorInput!) { scoreAssessmentIndicator(input: $input) {
    assessment { totalScore indicators { number score comment assessor
      evidence { title location contentHash } } } } }"""

CONCLUDE = """mutation($year: Int!) { concludeAssessment(year: $year) {
    standing assessment { year status totalScore passed standingBefore standingAfter } } }"""


def _postgres(demo: Demo) -> dict[str, str]:
    return {m["code"]: m["dsn"] for m in demo.info["members"] if m["kind"] == "postgres"}


def _by_number(body: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {i["number"]: i for i in body["data"]["assessment"]["indicators"]}


def _figures(indicator: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {m["hospital"]["code"]: (m["value"], m["previousValue"]) for m in indicator["members"]}


async def _count(dsn: str, sql: str, *args: Any) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql, *args) or 0)
    finally:
        await conn.close()


def test_the_catalogue_is_seed_001_annex_4() -> None:
    assert len(CATALOGUE) == 30
    assert sorted(i.number for i in CATALOGUE) == [n for n in range(1, 32) if n != 3]
    assert sum(i.points for i in CATALOGUE) == 100
    groups: dict[str, float] = {}
    for i in CATALOGUE:
        groups[i.group] = groups.get(i.group, 0) + i.points
    assert list(groups.values()) == [10, 10, 15, 56, 9]
    kinds = {k: [i.number for i in CATALOGUE if i.kind is k] for k in Kind}
    assert kinds[Kind.F] == [12, 13, 16, 17, 20]
    assert kinds[Kind.E] == [25]
    assert len(kinds[Kind.N]) == 11 and len(kinds[Kind.A]) == 13


async def test_the_year_lists_every_indicator_with_live_values(api: Api, demo_env: Demo) -> None:
    body = await api.run(ASSESSMENT, {"year": YEAR}, role="REGULATOR")
    assert "errors" not in body, body
    a = body["data"]["assessment"]
    assert a["status"] == "IN_PROGRESS" and a["passMark"] == 60 and not a["provisional"]
    assert a["comparedUntil"] == THIS_WINDOW[1].isoformat()
    found = _by_number(body)
    assert len(found) == 30 and sum(i["points"] for i in found.values()) == 100
    assert found[12]["text"] == "专科（技术）联盟远程教学开展情况（每年不少于 10 次）"
    for n, i in found.items():
        if i["kind"] in ("F", "N"):
            assert i["value"] is not None and i["previousValue"] is not None, n
            assert i["members"] and i["score"] is not None, n
    # The FHIR member serves no training, placements or part-2 kinds: left out, said so.
    assert "LHRM2" in found[12]["notServing"] and "LHRM2" in found[15]["notServing"]
    assert found[12]["members"] and _figures(found[12])["LHRM2"] == (None, None)
    assert found[25]["score"] is not None and found[25]["evidence"]
    assert {1, 6, 8, 11} <= {n for n, i in found.items() if i["kind"] == "A" and i["score"]}
    total = round(sum(i["score"] or 0 for i in found.values()), 2)
    assert a["totalScore"] == total and a["passed"] == (total >= 60)

    pg = _postgres(demo_env)
    lead = pg[LEAD]
    members = set(_figures(found[17]))
    assert LEAD not in members and "LHZX" in members
    # #17: the lead's down-referrals are held at the lead: counted here from its database.
    down = """SELECT count(*) FROM referral WHERE from_hospital = $1 AND to_hospital = ANY($2)
              AND status NOT IN ('REJECTED', 'CANCELLED') AND created_at >= $3 AND created_at < $4"""
    for key, (since, until) in (("value", THIS_WINDOW), ("previousValue", LAST_WINDOW)):
        expected = await _count(lead, down, LEAD, list(members), *(_cst(since), _cst(until)))
        assert found[17][key] == expected, key
    # #20: placements at the lead, by home hospital.
    placed = """SELECT count(*) FROM placement WHERE host_hospital = $1 AND home_hospital = $2
                AND starts_on >= $3 AND starts_on < $4"""
    for code, (value, previous) in _figures(found[20]).items():
        assert value == await _count(lead, placed, LEAD, code, *THIS_WINDOW), code
        assert previous == await _count(lead, placed, LEAD, code, *LAST_WINDOW), code
    assert found[20]["value"] == sum(v for v, _ in _figures(found[20]).values())
    # #12 and #13 and #15, member by member (the PostgreSQL ones: their databases are here).
    teaching = """SELECT count(*) FROM training_event WHERE held_on >= $1 AND held_on < $2
        AND (kind = 'REMOTE_TEACHING' OR (mode = 'ONLINE' AND kind NOT IN
             ('ACADEMIC_CONFERENCE', 'FREE_CLINIC')))"""
    consulted = """SELECT count(*) FROM consultation WHERE created_at >= $1 AND created_at < $2
        AND kind <> 'ON_SITE' AND status IN ('REPORTED', 'CLOSED')"""
    volume = """SELECT coalesce(sum(outpatient_visits + admissions), 0) FROM specialty_volume
        WHERE hospital = $1 AND month >= $2 AND month < $3"""
    checked = 0
    for code, dsn in pg.items():
        assert _figures(found[12])[code][0] == await _count(dsn, teaching, *THIS_WINDOW), code
        window = (_cst(THIS_WINDOW[0]), _cst(THIS_WINDOW[1]))
        assert _figures(found[13])[code][0] == await _count(dsn, consulted, *window), code
        if code != LEAD:
            assert _figures(found[15])[code] == (
                await _count(dsn, volume, code, *THIS_WINDOW),
                await _count(dsn, volume, code, *LAST_WINDOW),
            ), code
        checked += 1
    assert checked >= 4
    assert found[12]["value"] == sum(v or 0 for v, _ in _figures(found[12]).values())


def _cst(day: date) -> Any:
    from datetime import datetime, time

    return datetime.combine(day, time(), clock.CHINA_STANDARD_TIME)


async def test_a_member_s_own_figures(api: Api) -> None:
    query = """query($year: Int!, $h: String!) { memberAssessment(year: $year, hospital: $h) {
        hospital { code } score maxScore provisional
        indicators { number value previousValue score } } }"""
    alliance = _by_number(await api.run(ASSESSMENT, {"year": YEAR}, role="REGULATOR"))
    body = await api.run(query, {"year": YEAR, "h": "LHZX"}, role="MEMBER_ADMIN", member=LEAD)
    assert "errors" not in body, body
    mine = {i["number"]: i for i in body["data"]["memberAssessment"]["indicators"]}
    assert {15, 16, 17, 20} <= set(mine) and 22 not in mine  # the lead's own shares are not its
    assert (mine[17]["value"], mine[17]["previousValue"]) == _figures(alliance[17])["LHZX"]
    assert mine[17]["score"] == (3 if mine[17]["value"] > mine[17]["previousValue"] else 0)
    refused = await api.run(query, {"year": YEAR, "h": "LHZX"}, role="MEMBER_ADMIN", member="LHGK")
    assert error_codes(refused) == ["FORBIDDEN"]


async def test_who_reads_it(api: Api) -> None:
    for role in ("SECRETARIAT", "ALLIANCE_ADMIN"):
        assert "errors" not in await api.run(ASSESSMENT, {"year": LAST}, role=role)
    body = await api.run(ASSESSMENT, {"year": YEAR}, role="CLINICIAN", member="LHZX")
    assert error_codes(body) == ["FORBIDDEN"]
    body = await api.run(ASSESSMENT, {"year": YEAR + 1}, role="REGULATOR")
    assert error_codes(body) == ["BAD_USER_INPUT"]


async def test_an_assessor_scores_with_evidence(api: Api) -> None:
    evidence = [
        {"title": "联盟激励机制文件", "location": "秘书处档案 2026-07", "contentHash": "AB" * 32}
    ]
    score = {"year": YEAR, "number": 5, "score": 2.0, "comment": "机制已建立", "assessor": "余晴"}
    body = await api.run(SCORE, {"input": {**score, "evidence": evidence}}, role="REGULATOR")
    assert "errors" not in body, body
    found = {
        i["number"]: i for i in body["data"]["scoreAssessmentIndicator"]["assessment"]["indicators"]
    }
    assert found[5]["score"] == 2.0 and found[5]["assessor"] == "余晴"
    assert found[5]["evidence"] == [{**evidence[0], "contentHash": "sha256:" + "ab" * 32}]
    for bad in ({"score": 2.6}, {"score": -1}, {"number": 12}, {"number": 3}, {"comment": " "}):
        refused = await api.run(
            SCORE, {"input": {**score, "evidence": evidence, **bad}}, role="REGULATOR"
        )
        assert error_codes(refused) == ["BAD_USER_INPUT"], bad
    refused = await api.run(
        SCORE,
        {"input": {**score, "evidence": [{**evidence[0], "contentHash": "x"}]}},
        role="REGULATOR",
    )
    assert error_codes(refused) == ["BAD_USER_INPUT"]
    refused = await api.run(SCORE, {"input": {**score, "evidence": evidence}}, role="SECRETARIAT")
    assert error_codes(refused) == ["FORBIDDEN"]


async def test_last_year_is_concluded_and_fixed(api: Api) -> None:
    body = await api.run(ASSESSMENT, {"year": LAST}, role="REGULATOR")
    a = body["data"]["assessment"]
    assert a["status"] == "CONCLUDED" and a["passed"] and a["standingAfter"] == "GOOD"
    assert len(a["indicators"]) == 30
    again = await api.run(CONCLUDE, {"year": LAST}, role="REGULATOR")
    assert error_codes(again) == ["INVALID_TRANSITION"]
    unfinished = await api.run(CONCLUDE, {"year": YEAR}, role="REGULATOR")
    assert error_codes(unfinished) == ["INVALID_TRANSITION"]
    late = {
        "year": LAST,
        "number": 5,
        "score": 1,
        "comment": "c",
        "assessor": "a",
        "evidence": [{"title": "t", "location": "l", "contentHash": "0" * 64}],
    }
    assert error_codes(await api.run(SCORE, {"input": late}, role="REGULATOR")) == [
        "INVALID_TRANSITION"
    ]
    assert error_codes(await api.run(CONCLUDE, {"year": LAST}, role="SECRETARIAT")) == ["FORBIDDEN"]


@pytest.fixture
async def unreachable(demo_env: Demo) -> AsyncIterator[str]:
    """The demo's app with one member's database out of reach (a socket directory that is not)."""
    settings = load_settings(demo_env.root / "alliance.toml", events={"watch": False})
    members = []
    for m in settings.members:
        if m.code == "LHZX":
            dsn = m.resolved_dsn()
            socket_dir = parse_qs(urlsplit(dsn).query)["host"][0]
            m = m.model_copy(
                update={
                    "dsn": dsn.replace(socket_dir, "/tmp/g2-nowhere"),
                    "dsn_env": None,
                    "timeout_seconds": 1.0,
                }
            )
        members.append(m)
    async with serving(create_app(settings.model_copy(update={"members": members}))) as url:
        yield url


async def test_a_member_that_cannot_be_read_makes_indicators_provisional(
    unreachable: str, demo_env: Demo
) -> None:
    async with httpx.AsyncClient(base_url=unreachable, timeout=30) as http:
        response = await http.post(
            "/graphql",
            json={"query": ASSESSMENT, "variables": {"year": YEAR}},
            headers={"authorization": f"Bearer {demo_env.token('REGULATOR')}"},
        )
    body = response.json()
    assert "SOURCE_UNAVAILABLE" in error_codes(body), body.get("errors")
    a = body["data"]["assessment"]
    assert a["provisional"] and a["unavailable"] == ["LHZX"]
    found = _by_number(body)
    for n in (12, 13, 15, 16, 27):
        assert found[n]["provisional"] and found[n]["unavailable"] == ["LHZX"], n
        assert _figures(found[n])["LHZX"] == (None, None), n
    # What the lead holds about LHZX (its referrals down, the placements it hosts) is still read.
    for n in (17, 20):
        assert not found[n]["provisional"] and _figures(found[n])["LHZX"][0] is not None, n
    assert not found[5]["provisional"]


async def _alliance_of_its_own(registry_db: asyncpg.Connection, demo: Demo) -> str:
    """An alliance beside the demo's, with its members since 2000: years whose data the test
    controls (none), and a standing nobody else reads."""
    demo_id = load_settings(demo.root / "alliance.toml").alliance_id
    own = f"assess-{uuid.uuid4().hex[:8]}"
    await registry_db.execute(
        """INSERT INTO alliance (id, name, specialty, level, form, lead_hospital_code,
               lead_department, discipline_leader, founded_on, charter_version, filing_status,
               standing)
           SELECT $2, name || $2, specialty, level, form, lead_hospital_code, lead_department,
                  discipline_leader, founded_on, charter_version, 'APPLIED', 'GOOD'
           FROM alliance WHERE id = $1""",
        demo_id,
        own,
    )
    await registry_db.execute(
        """INSERT INTO membership (alliance_id, hospital_code, role, status, joined_on)
           SELECT $2, hospital_code, role, 'ACTIVE', DATE '2000-01-01' FROM membership
           WHERE alliance_id = $1 AND status = 'ACTIVE'""",
        demo_id,
        own,
    )
    return own


def _settings(demo: Demo, alliance: str, pass_mark: float) -> Settings:
    return load_settings(
        demo.root / "alliance.toml",
        events={"watch": False},
        alliance_id=alliance,
        assessment={"pass_mark": pass_mark},
    )


async def _conclude(demo: Demo, settings: Settings, year: int) -> dict[str, Any]:
    async with (
        serving(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as http,
    ):
        response = await http.post(
            "/graphql",
            json={"query": CONCLUDE, "variables": {"year": year}},
            headers={"authorization": f"Bearer {demo.token('REGULATOR')}"},
        )
        return response.json()


async def test_two_failing_years_order_the_alliance_dissolved(
    demo_env: Demo, registry_db: asyncpg.Connection
) -> None:
    own = await _alliance_of_its_own(registry_db, demo_env)
    strict = _settings(demo_env, own, 60)
    first = await _conclude(demo_env, strict, 2001)
    assert "errors" not in first, first
    assert first["data"]["concludeAssessment"]["standing"] == "YELLOW_CARD"
    assert first["data"]["concludeAssessment"]["assessment"]["passed"] is False
    skipped = await _conclude(demo_env, strict, 2003)
    assert error_codes(skipped) == ["INVALID_TRANSITION"]
    second = await _conclude(demo_env, strict, 2002)
    assert second["data"]["concludeAssessment"]["standing"] == "ORDERED_TO_DISSOLVE"
    standing = await registry_db.fetchval("SELECT standing FROM alliance WHERE id = $1", own)
    assert standing == "ORDERED_TO_DISSOLVE"


async def test_passing_after_a_yellow_card_restores_good_standing(
    demo_env: Demo, registry_db: asyncpg.Connection
) -> None:
    own = await _alliance_of_its_own(registry_db, demo_env)
    first = await _conclude(demo_env, _settings(demo_env, own, 60), 2001)
    assert first["data"]["concludeAssessment"]["standing"] == "YELLOW_CARD"
    second = await _conclude(demo_env, _settings(demo_env, own, 0), 2002)
    concluded = second["data"]["concludeAssessment"]
    assert concluded["standing"] == "GOOD"
    assert concluded["assessment"]["standingBefore"] == "YELLOW_CARD"
    assert concluded["assessment"]["passed"] is True
