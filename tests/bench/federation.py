"""Federation benchmark: the same merged page of 50 referrals, through the gateway and as a
direct asyncpg fan-out to the same member databases (no GraphQL), at concurrency 1 and 8.

    uv run python tests/bench/federation.py --members 10 --duration 10 [--tracing]

Starts its own stack (embedded PostgreSQL, N member databases, a gateway process), prints a
summary and, last, one JSON line. With --tracing it measures the gateway a second time while it
exports traces and metrics over OTLP/HTTP to a local receiver, and reports the overhead."""

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
from pathlib import Path

import asyncpg
import httpx
import tomli_w

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from adapters.exchange.columns import ColumnMap  # noqa: E402
from adapters.exchange.postgres import PostgresExchange  # noqa: E402
from adapters.registry.store import RegistryStore  # noqa: E402
from adapters.sources import port  # noqa: E402
from adapters.sources.records import ListQuery, ReferralFilter  # noqa: E402
from gateway.demo import data as demo_data  # noqa: E402
from gateway.demo import provision  # noqa: E402
from gateway.settings import load_settings  # noqa: E402

PAGE = 50
QUERY = """{ referrals(first: 50) { edges { cursor node { id status direction createdAt
  fromHospital { name } toHospital { name } diagnosis { code } } } } }"""
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
async def gateway(config: Path, env: dict[str, str]) -> AsyncIterator[str]:
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
        yield f"http://127.0.0.1:{port}/graphql"
    finally:
        process.terminate()
        process.wait(10)


async def measure_gateway(url: str, token: str, duration: float) -> dict[int, Measure]:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=16)) as http:

        async def call() -> None:
            response = await http.post(
                url, json={"query": QUERY}, headers={"authorization": f"Bearer {token}"}
            )
            body = response.json()
            assert "errors" not in body and len(body["data"]["referrals"]["edges"]) == PAGE, body

        for _ in range(30):
            await call()
        return {c: await _measure(call, c, duration) for c in (1, 8)}


async def measure_direct(
    sources: list[PostgresExchange], registry: RegistryStore, duration: float
) -> dict[int, Measure]:
    request = port.PageRequest(
        port.REFERRAL, ListQuery(parties=None, limit=PAGE + 1), ReferralFilter()
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
    return {c: await _measure(call, c, duration) for c in (1, 8)}


async def run(
    members: int, duration: float, tracing: bool, trace_ratio: float = 1.0
) -> dict[str, object]:
    data_dir = Path(tempfile.mkdtemp(prefix="alliance-bench-"))
    prepared = await provision.prepare(
        data_dir,
        reset=True,
        registry_dsn=None,
        graphql_url="",
        extra_members=max(0, members - len(demo_data.HOSPITALS)),
    )
    # The gateway serves exactly the members the direct fan-out asks, without rate limits.
    raw = tomllib.loads(prepared.paths.config.read_text())
    raw["members"] = raw["members"][:members]
    raw["rate_limit"] = {"enabled": False}
    config = data_dir / "bench.toml"
    config.write_text(tomli_w.dumps(raw))
    settings = load_settings(config)
    info = json.loads(prepared.paths.demo_json.read_text())
    token = next(t["token"] for t in info["tokens"] if t["role"] == "SECRETARIAT")
    quiet = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}

    sources = [
        PostgresExchange(m.code, m.resolved_dsn(), columns=ColumnMap(m.columns))
        for m in settings.members
    ]
    pool = await asyncpg.create_pool(settings.registry.dsn, min_size=1, max_size=8)
    try:
        async with gateway(config, quiet) as url:
            plain = await measure_gateway(url, token, duration)
        direct = await measure_direct(sources, RegistryStore(pool), duration)
        results: dict[str, object] = {
            "members": len(settings.members),
            "gateway": plain,
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
                async with gateway(config, env) as url:
                    results["traced"] = await measure_gateway(url, token, duration)
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
    args = parser.parse_args()
    r = asyncio.run(run(args.members, args.duration, args.tracing, args.trace_ratio))
    gw, dr = r["gateway"], r["direct"]
    assert isinstance(gw, dict) and isinstance(dr, dict)
    for c in (1, 8):
        print(f"concurrency {c}, {r['members']} members, page of {PAGE}:")
        rows = [("gateway", gw[c]), ("direct", dr[c])]
        traced = r.get("traced")
        if isinstance(traced, dict):
            rows.insert(1, ("traced", traced[c]))
        for name, m in rows:
            print(
                f"  {name:8} p50 {m['p50_ms']:7.2f} ms  p99 {m['p99_ms']:7.2f} ms  "
                f"{m['rps']:7.1f} req/s  ({m['requests']} requests)"
            )
        print(
            f"  gateway/direct p50 {gw[c]['p50_ms'] / dr[c]['p50_ms']:.2f}x, "
            f"throughput {gw[c]['rps'] / dr[c]['rps']:.2f}x"
        )
    summary: dict[str, object] = {
        "members": r["members"],
        "gateway_p50_ms": gw[1]["p50_ms"],
        "gateway_p99_ms": gw[1]["p99_ms"],
        "gateway_rps": gw[8]["rps"],
        "direct_p50_ms": dr[1]["p50_ms"],
        "direct_rps": dr[8]["rps"],
        "c8_gateway_p50_ms": gw[8]["p50_ms"],
        "c8_direct_p50_ms": dr[8]["p50_ms"],
    }
    traced = r.get("traced")
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
