"""Metrics on /metrics, the explanation of member calls for OPS, and sourceHealth: over real HTTP
against the real app."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx

from gateway.app import create_app
from gateway.settings import MemberSourceSettings, load_settings
from tests.conftest import Api, Demo, error_codes, serving

REFERRALS = """query ReferralsForMetrics {
  referrals(first: 10) { edges { node { id status fromHospital { code } } } } }"""
CONSULTATIONS = """query ConsultationsWithReports {
  consultations(first: 20) { edges { node { id report { issuedAt } } } } }"""
HEALTH = """{ sourceHealth { member adapter status circuit consecutiveFailures lastLatencyMs
  pingLatencyMs readOnly error } }"""
EXPLAIN = {"x-alliance-explain": "1"}


REFERRALS_WITH_TOTAL = """{ referrals(first: 5) { totalCount
  edges { node { id status patient { pseudonym } } } } }"""


def _members(demo: Demo) -> set[str]:
    return {m["code"] for m in demo.info["members"]}


def _kinds(demo: Demo) -> dict[str, str]:
    """Each member's adapter: postgres, and mysql for the demo's MariaDB hospital if it has one."""
    return {m["code"]: m["kind"] for m in demo.info["members"]}


def _ops_reader(demo: Demo) -> str:
    """An operations engineer of the alliance office: OPS alone reads no clinical records."""
    return demo.mint("ops-engineer", "OPS", "SECRETARIAT", purpose="OPERATIONS")


async def _post(
    api: Api, query: str, token: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = await api.http.post(
        "/graphql",
        json={"query": query},
        headers={"authorization": f"Bearer {token}", **(headers or {})},
    )
    assert response.status_code == 200, response.text
    return response.json()


def _samples(text: str, metric: str) -> list[tuple[dict[str, str], float]]:
    """The samples of one metric in Prometheus text exposition, as (labels, value)."""
    found = []
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(metric)}\{{(.*)\}} (\S+)$", line)
        if match:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1)))
            found.append((labels, float(match.group(2))))
    return found


async def test_metrics_show_requests_member_calls_circuits_and_pools(
    api: Api, demo_env: Demo
) -> None:
    body = await _post(api, REFERRALS, demo_env.token("SECRETARIAT"))
    assert "errors" not in body, body["errors"]
    refused = await api.post("{ alliance { name } }", token=None)
    assert refused.status_code == 401

    response = await api.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    members = _members(demo_env)

    requests = _samples(text, "alliance_graphql_requests_total")
    ours = [
        v
        for labels, v in requests
        if labels["graphql_operation_name"] == "ReferralsForMetrics"
        and labels["graphql_operation_type"] == "query"
        and labels["alliance_outcome"] == "success"
    ]
    assert ours and ours[0] >= 1
    assert any(
        labels["alliance_outcome"] == "refused" and labels["graphql_operation_name"] == "(unparsed)"
        for labels, _ in requests
    ), "a 401 is counted as refused"
    assert _samples(text, "alliance_graphql_request_duration_milliseconds_count")

    def refusals(text: str, name: str) -> float:
        return sum(
            v
            for labels, v in _samples(text, "alliance_graphql_requests_total")
            if labels["graphql_operation_name"] == name and labels["alliance_outcome"] == "refused"
        )

    invalid = await api.post("query Broken { nope }", token=demo_env.token("SECRETARIAT"))
    assert invalid.status_code == 400
    after = (await api.http.get("/metrics")).text
    assert refusals(after, "Broken") == refusals(text, "Broken") + 1
    assert refusals(after, "(unparsed)") == refusals(text, "(unparsed)"), "counted once"

    calls = _samples(text, "alliance_member_call_duration_milliseconds_count")
    called = {
        labels["alliance_member"]
        for labels, v in calls
        if labels["alliance_operation"] == "page referral"
        and labels["alliance_outcome"] == "ok"
        and v
    }
    # The meter is the process's: other tests' members (in-memory ones too) may be there as well.
    assert members <= called
    assert {"alliance_adapter", "alliance_member", "alliance_operation"} <= set(calls[0][0])

    circuits = {
        labels["alliance_member"]: v
        for labels, v in _samples(text, "alliance_member_circuit_state")
    }
    assert members <= set(circuits)
    assert all(circuits[m] == 0 for m in members), circuits

    pools = _samples(text, "db_client_connection_count")
    names = {labels["db_client_connection_pool_name"] for labels, _ in pools}
    assert {"registry", *members} <= names
    states = {labels["db_client_connection_state"] for labels, _ in pools}
    assert states == {"used", "idle"}
    registry_open = sum(
        v for labels, v in pools if labels["db_client_connection_pool_name"] == "registry"
    )
    assert registry_open >= 1
    maxima = {
        labels["db_client_connection_pool_name"]: v
        for labels, v in _samples(text, "db_client_connection_max")
    }
    assert all(maxima[m] >= 1 for m in members), "member pools exist after the query"


async def test_ops_asking_for_an_explanation_gets_one_entry_per_member_call(
    api: Api, demo_env: Demo
) -> None:
    body = await _post(api, REFERRALS, _ops_reader(demo_env), EXPLAIN)
    assert "errors" not in body, body["errors"]
    calls = body["extensions"]["federation"]["calls"]
    listed = [c for c in calls if c["operation"] == "page referral"]
    # A member whose records could still reach the page is asked a second time (page_in_rounds).
    asked = [c["member"] for c in listed]
    assert sorted(set(asked)) == sorted(_members(demo_env))
    assert all(asked.count(member) <= 2 for member in asked)
    for call in listed:
        assert call["adapter"] == _kinds(demo_env)[call["member"]]
        assert call["via"] == "direct"
        assert call["outcome"] == "ok" and call["code"] is None
        assert call["durationMs"] >= 0 and isinstance(call["rows"], int)
    rows = sum(c["rows"] for c in listed)
    assert rows >= len(body["data"]["referrals"]["edges"])


async def test_ops_alone_explains_a_referrals_query_without_seeing_patients(
    api: Api, demo_env: Demo
) -> None:
    body = await _post(api, REFERRALS_WITH_TOTAL, demo_env.token("OPS"), EXPLAIN)
    assert "errors" not in body, body["errors"]
    assert all(e["node"]["patient"] is None for e in body["data"]["referrals"]["edges"])
    calls = body["extensions"]["federation"]["calls"]
    # What was asked, by shape: one call per member carries its first round and the count; a
    # member whose records could still reach the page is asked for more, without the count.
    counted = [c["member"] for c in calls if "+total" in c["asked"]]
    assert sorted(counted) == sorted(_members(demo_env))
    for call in calls:
        assert call["operation"] == "page referral"
        assert re.fullmatch(r"page referral limit=\d+( \+total)? by -", call["asked"]), call
        assert call["outcome"] == "ok" and call["adapter"] == _kinds(demo_env)[call["member"]]


async def test_dataloader_batches_and_cache_hits_are_explained(api: Api, demo_env: Demo) -> None:
    body = await _post(api, CONSULTATIONS, _ops_reader(demo_env), EXPLAIN)
    assert "errors" not in body, body["errors"]
    edges = body["data"]["consultations"]["edges"]
    assert edges
    federation = body["extensions"]["federation"]
    batched = [c for c in federation["calls"] if c["via"] == "dataloader"]
    assert batched and {c["operation"] for c in batched} == {"lookup consultation_report"}
    # One batch per member asked, never one call per consultation.
    assert len(batched) == len({c["member"] for c in batched}) <= len(edges)
    loaders = {entry["loader"]: entry for entry in federation["dataLoaders"]}
    report = loaders["member.report"]
    assert report["loads"] == len(edges)
    assert report["batches"] == 1
    assert report["cacheHits"] == 0 and report["keys"] == len(edges)

    # The same consultation twice under two aliases: the second load is a cache hit.
    consultation = edges[0]["node"]["id"]
    twice = f"""{{ a: node(id: "{consultation}") {{ ... on Consultation {{ report {{ issuedAt }} }} }}
      b: node(id: "{consultation}") {{ ... on Consultation {{ report {{ issuedAt }} }} }} }}"""
    body = await _post(api, twice, _ops_reader(demo_env), EXPLAIN)
    assert "errors" not in body, body["errors"]
    loaders = {e["loader"]: e for e in body["extensions"]["federation"]["dataLoaders"]}
    assert loaders["member.consultation"]["cacheHits"] == 1
    assert loaders["member.consultation"]["batches"] == 1


async def test_others_never_see_an_explanation(api: Api, demo_env: Demo) -> None:
    body = await _post(api, REFERRALS, _ops_reader(demo_env))
    assert "federation" not in body.get("extensions", {})
    body = await _post(api, REFERRALS, demo_env.token("SECRETARIAT"), EXPLAIN)
    assert "errors" not in body
    assert "federation" not in body.get("extensions", {})
    body = await _post(
        api, REFERRALS, demo_env.token("CLINICIAN", "LHZX"), {"x-alliance-explain": "1"}
    )
    assert "federation" not in body.get("extensions", {})


async def test_source_health_lists_every_member(api: Api, demo_env: Demo) -> None:
    for role in ("OPS", "SECRETARIAT", "ALLIANCE_ADMIN"):
        body = await _post(api, HEALTH, demo_env.token(role))
        assert "errors" not in body, body["errors"]
        health = body["data"]["sourceHealth"]
        assert {h["member"] for h in health} == _members(demo_env)
        for h in health:
            kind = _kinds(demo_env)[h["member"]]
            assert (h["status"], h["circuit"], h["adapter"]) == ("UP", "CLOSED", kind)
            assert h["consecutiveFailures"] == 0 and h["error"] is None
            assert h["pingLatencyMs"] >= 0 and h["lastLatencyMs"] >= 0
            assert h["readOnly"] is False

    body = await _post(api, HEALTH, demo_env.token("CLINICIAN", "LHZX"))
    assert error_codes(body) == ["FORBIDDEN"]
    assert body["data"] is None


async def test_a_dead_member_is_down_with_its_circuit_open(demo_env: Demo) -> None:
    """A member whose source refuses connections: DOWN in sourceHealth, its circuit opens after
    the configured failures, and /metrics shows the open circuit and an empty pool."""
    settings = load_settings(demo_env.root / "alliance.toml")
    dead = MemberSourceSettings(
        code="GHOST",
        dsn="postgresql://nobody@127.0.0.1:9/none",  # the discard port: nothing listens
        circuit_failure_threshold=2,
        circuit_reset_seconds=60,
    )
    app = create_app(settings.model_copy(update={"members": [*settings.members, dead]}))
    token = demo_env.token("OPS")
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as client:

        async def health() -> dict[str, dict[str, Any]]:
            response = await client.post(
                "/graphql", json={"query": HEALTH}, headers={"authorization": f"Bearer {token}"}
            )
            assert response.status_code == 200
            return {h["member"]: h for h in response.json()["data"]["sourceHealth"]}

        first = await health()
        assert first["GHOST"]["status"] == "DOWN"
        assert first["GHOST"]["error"] == "SOURCE_UNAVAILABLE"
        assert first["GHOST"]["pingLatencyMs"] is None
        assert all(h["status"] == "UP" for code, h in first.items() if code != "GHOST")
        second = await health()
        assert (second["GHOST"]["circuit"], second["GHOST"]["consecutiveFailures"]) == ("OPEN", 2)
        third = await health()
        assert (third["GHOST"]["status"], third["GHOST"]["error"]) == (
            "DOWN",
            "SOURCE_CIRCUIT_OPEN",
        )

        text = (await client.get("/metrics")).text
        circuits = {
            labels["alliance_member"]: v
            for labels, v in _samples(text, "alliance_member_circuit_state")
        }
        assert circuits["GHOST"] == 2
        errors = _samples(text, "alliance_member_call_errors_total")
        assert any(
            labels["alliance_member"] == "GHOST"
            and labels["alliance_error_code"] == "SOURCE_UNAVAILABLE"
            and v >= 2
            for labels, v in errors
        )
        ghost_pool = [
            v
            for labels, v in _samples(text, "db_client_connection_count")
            if labels["db_client_connection_pool_name"] == "GHOST"
        ]
        assert ghost_pool == [0, 0]


def test_outcomes() -> None:
    from graphql import GraphQLError
    from strawberry.types.execution import ExecutionResult, PreExecutionError

    from gateway.metrics import outcome_of

    def error(code: str) -> GraphQLError:
        return GraphQLError("x", extensions={"code": code})

    assert outcome_of(ExecutionResult(data={"a": 1}, errors=None), None) == "success"
    unavailable = [error("SOURCE_UNAVAILABLE")]
    assert outcome_of(ExecutionResult(data={"a": [1]}, errors=unavailable), None) == "partial"
    assert outcome_of(ExecutionResult(data={"a": None}, errors=unavailable), None) == "error"
    forbidden = [error("FORBIDDEN")]
    assert outcome_of(ExecutionResult(data={"a": None}, errors=forbidden), None) == "refused"
    assert outcome_of(PreExecutionError(data=None, errors=[GraphQLError("x")]), None) == "refused"
    assert outcome_of(None, RuntimeError("boom")) == "error"


OTLP_CHILD = """
import time
from opentelemetry import metrics
from gateway import metrics as gateway_metrics
gateway_metrics.setup_metrics("test-alliance")
gateway_metrics.record_request("Probe", "query", "success", 1.5)
metrics.get_meter_provider().force_flush()
"""


def test_metrics_are_exported_over_otlp_when_an_endpoint_is_set() -> None:
    """In a child process (one MeterProvider per process): OTLP http/protobuf to a local
    endpoint, as OTEL_EXPORTER_OTLP_ENDPOINT asks."""
    received: list[tuple[str, str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((self.path, self.headers["content-type"], body))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
            "OTEL_METRIC_EXPORT_INTERVAL": "60000",
        }
        env.pop("OTEL_METRICS_EXPORTER", None)
        subprocess.run(
            [sys.executable, "-c", OTLP_CHILD],
            env=env,
            check=True,
            timeout=30,
            cwd=Path(__file__).parent.parent,
        )
    finally:
        server.shutdown()
    paths = {path for path, _, _ in received}
    assert paths == {"/v1/metrics"}
    assert all(ct == "application/x-protobuf" for _, ct, _ in received)
    assert any(b"alliance.graphql.requests" in body for _, _, body in received)
