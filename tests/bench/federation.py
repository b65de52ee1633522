"""Federation benchmark: the same merged page of 50 referrals, through the gateway and as a
direct asyncpg fan-out to the same member databases (no GraphQL), at concurrency 1, 8 and 32.

    uv run python tests/bench/federation.py --members 10 --duration 10 [--tracing] [--with-fhir]
        [--client raw|httpx]

Starts its own stack (embedded PostgreSQL, N member databases, a gateway process), prints a
summary and, last, one JSON line. The gateway is measured twice: with every request different
(its own `until` bound, so no two can share a member call) and with identical concurrent
requests (a dashboard many people open, where identical member calls in flight are shared). For
the gateway it also prints the CPU its processes spent per request, the CPU the load generator
(this process, on the same cores) spent per request, and the member errors seen. With
--tracing it measures the varied requests a second time while the gateway exports traces and
metrics over OTLP/HTTP to a local receiver, and reports the overhead. The demo's FHIR hospital is
left out unless --with-fhir: its server (sekmet-fhir, Python over SQLite) takes longer to answer
than the gateway takes to merge, and would measure that server rather than the gateway."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import orjson
import psutil
import tomli_w

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from adapters.registry.store import RegistryStore  # noqa: E402
from adapters.sources import port  # noqa: E402
from adapters.sources.kinds import open_source  # noqa: E402
from adapters.sources.port import SourcePort  # noqa: E402
from adapters.sources.records import ListQuery, ReferralFilter  # noqa: E402
from gateway.demo import data as demo_data  # noqa: E402
from gateway.demo import provision  # noqa: E402
from gateway.settings import load_settings  # noqa: E402

PAGE = 50
QUERY = """query Page($until: DateTime) { referrals(first: 50, filter: {until: $until}) {
  edges { cursor node { id status direction createdAt
  fromHospital { name } toHospital { name } diagnosis { code } } } } }"""
CONCURRENCY = (1, 8, 32)
# Every referral is older than this; a microsecond more per request makes each one unique.
FAR = datetime(2100, 1, 1, tzinfo=UTC)
Measure = dict[str, float]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _measure(
    call: Callable[[], Awaitable[None]], concurrency: int, duration: float
) -> Measure:
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "rps": round(len(latencies) / elapsed, 1),
        "requests": len(latencies),
    }


@contextlib.asynccontextmanager
async def otlp_receiver() -> AsyncIterator[tuple[str, dict[str, int]]]:
    """A local OTLP/HTTP endpoint that accepts and counts what it is sent."""
    received = {"requests": 0, "bytes": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                received["requests"] += 1
                received["bytes"] += length
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                    b"Content-Length: 0\r\n\r\n"
                )
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        server.close()


@contextlib.asynccontextmanager
async def gateway(config: Path, env: dict[str, str]) -> AsyncIterator[tuple[str, int]]:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient() as probe:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await probe.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield f"http://127.0.0.1:{port}/graphql", process.pid
    finally:
        process.terminate()
        process.wait(10)


def _cpu_seconds(pid: int) -> dict[int, float]:
    """The gateway's CPU so far, per process: its own and its workers'."""
    parent = psutil.Process(pid)
    spent: dict[int, float] = {}
    for process in (parent, *parent.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            spent[process.pid] = times.user + times.system
    return spent


class KeepAliveClient:
    """POSTs JSON over kept-alive HTTP/1.1 connections, one per concurrent caller, and nothing
    more. The load generator shares the two cores with what it measures: httpx spends about
    1.3 ms of CPU per request here, this about a fifth of that (both print as `client`)."""

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self._address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._head = (
            f"POST {parts.path} HTTP/1.1\r\nhost: {parts.netloc}\r\n"
            f"authorization: Bearer {token}\r\ncontent-type: application/json\r\n"
        ).encode()
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, payload: object) -> Any:
        body = orjson.dumps(payload)
        reader, writer = (
            self._idle.pop() if self._idle else await asyncio.open_connection(*self._address)
        )
        writer.write(self._head + b"content-length: %d\r\n\r\n" % len(body) + body)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = next(
            int(line[15:])
            for line in head.split(b"\r\n")
            if line[:15].lower() == b"content-length:"
        )
        answer = await reader.readexactly(length)
        self._idle.append((reader, writer))
        assert status == 200, (status, answer[:500])
        return orjson.loads(answer)

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()


async def measure_gateway(
    url: str, token: str, duration: float, pid: int, *, varied: bool, client_kind: str
) -> dict[int, Measure]:
    limits = httpx.Limits(max_connections=max(CONCURRENCY) * 2)
    sent = iter(range(1, 1 << 40))
    errors = 0
    raw = KeepAliveClient(url, token)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:

        async def post(payload: dict[str, Any]) -> Any:
            if client_kind == "raw":
                return await raw.post(payload)
            response = await http.post(
                url, json=payload, headers={"authorization": f"Bearer {token}"}
            )
            return response.json()

        async def call() -> None:
            nonlocal errors
            until = FAR + timedelta(microseconds=next(sent) if varied else 0)
            body = await post({"query": QUERY, "variables": {"until": until.isoformat()}})
            # A member that missed its deadline is counted, not fatal: under load that is the
            # figure to watch.
            errors += len(body.get("errors", []))
            assert len(body["data"]["referrals"]["edges"]) == PAGE, body

        for _ in range(30):
            await call()
        measured: dict[int, Measure] = {}
        client = psutil.Process()
        for c in CONCURRENCY:
            errors, cpu, started = 0, _cpu_seconds(pid), time.perf_counter()
            own = sum(client.cpu_times()[:2])
            m = await _measure(call, c, duration)
            spent = {p: t - cpu.get(p, 0.0) for p, t in _cpu_seconds(pid).items()}
            m["cpu_ms_per_request"] = round(sum(spent.values()) * 1000 / m["requests"], 2)
            # Whether the workers shared the load: the busiest process's share of a core.
            m["busiest_process_core"] = round(
                max(spent.values()) / (time.perf_counter() - started), 2
            )
            # The load generator shares the two cores: what it takes is not the gateway's.
            m["client_cpu_ms_per_request"] = round(
                (sum(client.cpu_times()[:2]) - own) * 1000 / m["requests"], 2
            )
            m["member_errors"] = errors
            measured[c] = m
        raw.close()
        return measured


async def measure_direct(
    sources: list[SourcePort], registry: RegistryStore, duration: float
) -> dict[int, Measure]:
    # What QUERY reads of a referral, as a hand-written fan-out would select it.
    read = frozenset(
        {
            "id",
            "status",
            "direction",
            "created_at",
            "from_hospital",
            "to_hospital",
            "diagnosis_code",
        }
    )
    request = port.PageRequest(
        port.REFERRAL, ListQuery(parties=None, limit=PAGE + 1), ReferralFilter(), fields=read
    )

    async def call() -> None:
        pages = await asyncio.gather(*(s.page(request) for s in sources))
        merged = heapq.merge(
            *[
                [(r.created_at, s.member, r) for r in page.records]
                for s, page in zip(sources, pages, strict=True)
            ],
            key=lambda item: item[:2],
            reverse=True,
        )
        rows = [item[2] for _, item in zip(range(PAGE), merged, strict=False)]
        names = await registry.hospitals(
            sorted({r.from_hospital for r in rows} | {r.to_hospital for r in rows})
        )
        assert len(rows) == PAGE and names

    for _ in range(30):
        await call()
    me, measured = psutil.Process(), {}
    for c in CONCURRENCY:
        before = sum(me.cpu_times()[:2])
        m = measured[c] = await _measure(call, c, duration)
        m["cpu_ms_per_request"] = round(
            (sum(me.cpu_times()[:2]) - before) * 1000 / m["requests"], 2
        )
    return measured


async def run(
    members: int,
    duration: float,
    tracing: bool,
    trace_ratio: float = 1.0,
    with_fhir: bool = False,
    client: str = "raw",
) -> dict[str, object]:
    data_dir = Path(tempfile.mkdtemp(prefix="alliance-bench-"))
    demo_members = len(demo_data.HOSPITALS) - (0 if with_fhir else 1)
    prepared = await provision.prepare(
        data_dir,
        reset=True,
        registry_dsn=None,
        graphql_url="",
        extra_members=max(0, members - demo_members),
    )
    # The gateway serves exactly the members the direct fan-out asks, without rate limits.
    raw = tomllib.loads(prepared.paths.config.read_text())
    raw["members"] = [m for m in raw["members"] if with_fhir or m.get("kind") != "fhir"][:members]
    raw["rate_limit"] = {"enabled": False}
    config = data_dir / "bench.toml"
    config.write_text(tomli_w.dumps(raw))
    settings = load_settings(config)
    info = json.loads(prepared.paths.demo_json.read_text())
    token = next(t["token"] for t in info["tokens"] if t["role"] == "SECRETARIAT")
    quiet = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}

    sources = [open_source(m.source_config()) for m in settings.members]
    pool = await asyncpg.create_pool(settings.registry.dsn, min_size=1, max_size=8)
    try:
        async with gateway(config, quiet) as (url, pid):
            varied = await measure_gateway(
                url, token, duration, pid, varied=True, client_kind=client
            )
            identical = await measure_gateway(
                url, token, duration, pid, varied=False, client_kind=client
            )
        direct = await measure_direct(sources, RegistryStore(pool), duration)
        results: dict[str, object] = {
            "members": len(settings.members),
            "gateway": varied,
            "identical": identical,
            "direct": direct,
        }
        if tracing:
            async with otlp_receiver() as (endpoint, received):
                env = {
                    "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                    "OTEL_TRACES_EXPORTER": "otlp",
                    "OTEL_METRICS_EXPORTER": "otlp",
                    "OTEL_BSP_SCHEDULE_DELAY": "500",
                }
                async with gateway(config, env) as (url, pid):
                    results["traced"] = await measure_gateway(
                        url, token, duration, pid, varied=True, client_kind=client
                    )
                    await asyncio.sleep(1.5)
                results["otlp_received"] = dict(received)
        return results
    finally:
        await pool.close()
        await asyncio.gather(*(s.close() for s in sources))
        if prepared.embedded is not None:
            prepared.embedded.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="also measure the gateway exporting over OTLP to a local receiver",
    )
    parser.add_argument(
        "--trace-ratio",
        type=float,
        default=1.0,
        help="the share of traces sampled while exporting (default: all)",
    )
    parser.add_argument(
        "--with-fhir",
        action="store_true",
        help="also ask the demo's FHIR hospital (its server then sets the pace)",
    )
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="the load generator: kept-alive HTTP/1.1 connections (default) or httpx",
    )
    args = parser.parse_args()
    r = asyncio.run(
        run(
            args.members,
            args.duration,
            args.tracing,
            args.trace_ratio,
            args.with_fhir,
            args.client,
        )
    )
    gw, same, dr = r["gateway"], r["identical"], r["direct"]
    assert isinstance(gw, dict) and isinstance(same, dict) and isinstance(dr, dict)
    traced = r.get("traced")
    for c in CONCURRENCY:
        print(f"concurrency {c}, {r['members']} members, page of {PAGE}:")
        rows = [("gateway", gw[c]), ("same", same[c]), ("direct", dr[c])]
        if isinstance(traced, dict):
            rows.insert(1, ("traced", traced[c]))
        for name, m in rows:
            cpu = (
                f"  cpu {m['cpu_ms_per_request']:6.2f} ms/req" if "cpu_ms_per_request" in m else ""
            )
            if "member_errors" in m:
                cpu += (
                    f" (client {m['client_cpu_ms_per_request']:.2f}, busiest process "
                    f"{m['busiest_process_core']:.0%} of a core)  member errors {m['member_errors']}"
                )
            print(
                f"  {name:8} p50 {m['p50_ms']:7.2f} ms  p99 {m['p99_ms']:7.2f} ms  "
                f"{m['rps']:7.1f} req/s  ({m['requests']} requests){cpu}"
            )
        print(
            f"  gateway/direct p50 {gw[c]['p50_ms'] / dr[c]['p50_ms']:.2f}x, "
            f"throughput {gw[c]['rps'] / dr[c]['rps']:.2f}x; "
            f"identical/varied throughput {same[c]['rps'] / gw[c]['rps']:.2f}x"
        )
    summary: dict[str, object] = {
        "members": r["members"],
        "gateway_p50_ms": gw[1]["p50_ms"],
        "gateway_p99_ms": gw[1]["p99_ms"],
        "gateway_cpu_ms_per_request": gw[1]["cpu_ms_per_request"],
        "client_cpu_ms_per_request": gw[1]["client_cpu_ms_per_request"],
        "direct_p50_ms": dr[1]["p50_ms"],
        "direct_cpu_ms_per_request": dr[1]["cpu_ms_per_request"],
        "gateway_rps": gw[8]["rps"],
        "direct_rps": dr[8]["rps"],
        "c8_gateway_p50_ms": gw[8]["p50_ms"],
        "c8_direct_p50_ms": dr[8]["p50_ms"],
        "c32_gateway_rps": gw[32]["rps"],
        "c32_identical_rps": same[32]["rps"],
        "c32_direct_rps": dr[32]["rps"],
        "c32_member_errors": gw[32]["member_errors"],
    }
    if isinstance(traced, dict):
        overhead = (traced[1]["p50_ms"] / gw[1]["p50_ms"] - 1) * 100
        print(
            f"tracing and metrics over OTLP: p50 {overhead:+.1f}% at concurrency 1 "
            f"({r['otlp_received']})"
        )
        summary.update(
            traced_p50_ms=traced[1]["p50_ms"], tracing_overhead_p50_pct=round(overhead, 1)
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
