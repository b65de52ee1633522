"""Round trips per request stay O(1) per member, and no raw resident ID reaches a log line, the
audit trail or a response. Round trips are counted at asyncpg's pool, aiomysql's cursor and httpx's
client (the demo's FHIR hospital), under the real app."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator

import aiomysql
import asyncpg
import httpx
import pytest

from tests.conftest import Api, Demo, error_codes


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Statements sent, per database, through any asyncpg pool of this process."""
    counts: Counter[str] = Counter()
    for name in ("fetch", "fetchrow", "fetchval", "execute", "executemany"):
        original = getattr(asyncpg.Pool, name)

        def counting(self: asyncpg.Pool, *args: object, _original=original, **kw: object):
            counts[self._connect_kwargs.get("database") or _database(self)] += 1
            return _original(self, *args, **kw)

        monkeypatch.setattr(asyncpg.Pool, name, counting)
    # And through aiomysql, for the demo's MariaDB hospital: its session set-up (SET SESSION …)
    # is once per pooled connection, not a round trip of the request.
    execute = aiomysql.Cursor.execute

    async def counting_execute(
        self: aiomysql.Cursor, query: str, args: object = None, _original=execute
    ) -> object:
        if not str(query).startswith("SET SESSION"):
            counts[self.connection.db] += 1
        return await _original(self, query, args)

    monkeypatch.setattr(aiomysql.Cursor, "execute", counting_execute)
    # And through httpx, for the demo's FHIR hospital: counted by its service base.
    send = httpx.AsyncClient.send

    async def counting_send(
        self: httpx.AsyncClient, request: httpx.Request, *args: object, _original=send, **kw: object
    ) -> httpx.Response:
        counts[f"{request.url.scheme}://{request.url.netloc.decode()}/fhir"] += 1
        return await _original(self, request, *args, **kw)

    monkeypatch.setattr(httpx.AsyncClient, "send", counting_send)
    yield counts


def _source(member: dict[str, str]) -> str:
    """Where a demo member's round trips are counted: its database, or its FHIR service base."""
    return member.get("database") or member["base_url"]


def _database(pool: asyncpg.Pool) -> str:
    dsn = pool._connect_args[0] if pool._connect_args else ""
    return str(dsn).split("?", 1)[0].rsplit("/", 1)[-1]


async def test_a_page_costs_one_round_trip_per_member_and_one_to_the_registry(
    api: Api, demo_env: Demo, round_trips: Counter[str]
) -> None:
    query = """{ referrals(first: 50) { edges { node { id fromHospital { name grade }
             toHospital { name } patient { sex } } } } }"""
    members = {_source(m) for m in demo_env.info["members"]}
    # Members are read in rounds (resolvers/federation.py, page_in_rounds): the first page may
    # ask a member that holds more of it than expected a second time (tests/test_federation_unit
    # bounds that to two); once its part is known, a page costs one round trip per member.
    for attempt in range(2):
        round_trips.clear()
        body = await api.run(query, role="CLINICIAN", member="LHZX")
        assert len(body["data"]["referrals"]["edges"]) == 50
        assert {db for db in round_trips if db in members} == members
        if attempt == 1:
            assert all(round_trips[db] == 1 for db in members), round_trips
        # The registry: the page's hospitals in one query, and the audit entry written at the end.
        assert round_trips["alliance_registry"] <= 2, round_trips


async def test_consultation_reports_are_batched_per_member(
    api: Api, demo_env: Demo, round_trips: Counter[str]
) -> None:
    owners = {_source(m) for m in demo_env.info["members"]}
    # Once each member's part of the page is known (the first page may ask one twice, and a FHIR
    # server's search may take two requests for it), one page query per member, plus one report
    # lookup per member that owns a row on the page.
    for attempt in range(2):
        round_trips.clear()
        body = await api.run(
            """{ consultations(first: 50, filter: {statuses: [REPORTED, CLOSED]}) {
             edges { node { id report { issuedAt expertName } requestingHospital { name } } } } }""",
            role="SECRETARIAT",
        )
        edges = body["data"]["consultations"]["edges"]
        assert len(edges) == 50 and all(e["node"]["report"] for e in edges)
        assert all(round_trips[db] >= 1 for db in owners), round_trips
        if attempt == 1:
            assert all(round_trips[db] <= 2 for db in owners), round_trips


async def test_no_raw_resident_id_in_logs_audit_or_errors(
    api: Api, demo_env: Demo, registry_db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    patient = demo_env.info["sample_patients"][0]["resident_id"]
    wrong = patient[:17] + ("0" if patient[17] != "0" else "1")
    caplog.set_level(logging.DEBUG)
    reads = await api.run(
        """query($id: String!) { testResults(patient: {residentId: $id}) { edges { node { id } } } }""",
        {"id": patient},
        role="CLINICIAN",
        member="LYZG",
    )
    assert "errors" not in reads
    refused = await api.run(
        """query($id: String!) { testResults(patient: {residentId: $id}) { edges { node { id } } } }""",
        {"id": wrong},
        role="CLINICIAN",
        member="LYZG",
    )
    assert error_codes(refused) == ["BAD_USER_INPUT"]
    assert wrong not in str(refused) and patient not in str(reads)
    assert patient not in caplog.text and wrong not in caplog.text
    leaked = await registry_db.fetchval(
        "SELECT count(*) FROM audit_event WHERE audit_event::text LIKE '%' || $1 || '%' "
        "OR audit_event::text LIKE '%' || $2 || '%'",
        patient,
        wrong,
    )
    assert leaked == 0


async def test_the_audit_trail_is_for_the_chair_and_operations(api: Api, demo_env: Demo) -> None:
    patient = demo_env.info["sample_patients"][1]["resident_id"]
    body = await api.run(
        """query($id: String!) { testResults(patient: {residentId: $id}) { patientPseudonym } }""",
        {"id": patient},
        role="CLINICIAN",
        member="LHZY",
    )
    pseudonym = body["data"]["testResults"]["patientPseudonym"]
    query = """query($p: String) { auditTrail(patient: $p, first: 5) { edges { node {
        subject hospital roles purpose operation action patients membersAsked outcome } } } }"""
    for role in ("ALLIANCE_ADMIN", "OPS"):
        trail = await api.run(query, {"p": pseudonym}, role=role)
        latest = trail["data"]["auditTrail"]["edges"][0]["node"]
        assert latest["operation"] == "testResults" and latest["patients"] == [pseudonym]
        assert latest["hospital"] == "LHZY" and latest["purpose"] == "TREATMENT"
        assert latest["roles"] == ["CLINICIAN"] and latest["action"] == "READ"
    for role, member in (("SECRETARIAT", None), ("CLINICIAN", "LHZY")):
        assert error_codes(await api.run(query, {"p": pseudonym}, role=role, member=member)) == [
            "FORBIDDEN"
        ]
