"""Federation benchmark: the same merged page of 50 referrals, through the gateway and as a
direct asyncpg fan-out to the same member databases (no GraphQL), at concurrency 1 and 8.

    uv run python tests/bench/federation.py --members 10 --duration 10

Starts its own stack (embedded PostgreSQL, N member databases, one gateway process), prints a
summary and, last, one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import tomli_w

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from adapters.exchange.columns import ColumnMap  # noqa: E402
from adapters.exchange.postgres import ExchangeDatabase  # noqa: E402
from adapters.exchange.records import ListQuery, ReferralFilter  # noqa: E402
from gateway import demo  # noqa: E402
from gateway.settings import load_settings  # noqa: E402

PAGE = 50
QUERY = """{ referrals(first: 50) { edges { cursor node { id status direction createdAt
  fromHospital { name } toHospital { name } diagnosis { code } } } } }"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _measure(
    call: Callable[[], Awaitable[None]], concurrency: int, duration: float
) -> dict[str, float]:
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


async def run(members: int, duration: float) -> dict[str, object]:
    data_dir = Path(tempfile.mkdtemp(prefix="alliance-bench-"))
    prepared = await demo.prepare(
        data_dir,
        reset=True,
        registry_dsn=None,
        graphql_url="",
        extra_members=max(0, members - len(demo.demo_data.HOSPITALS)),
    )
    settings = load_settings(prepared.paths.config)
    chosen = settings.members[:members]
    # The gateway serves exactly the members the direct fan-out asks.
    raw = tomllib.loads(prepared.paths.config.read_text())
    raw["members"] = raw["members"][:members]
    config = data_dir / "bench.toml"
    config.write_text(tomli_w.dumps(raw))
    info = json.loads(prepared.paths.demo_json.read_text())
    token = next(t["token"] for t in info["tokens"] if t["role"] == "SECRETARIAT")

    port = _free_port()
    env = {**os.environ, "ALLIANCE_GRAPHIQL": "false"}
    server = subprocess.Popen(
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
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    sources = [
        ExchangeDatabase(m.code, m.resolved_dsn(), columns=ColumnMap(m.columns)) for m in chosen
    ]
    registry = await asyncpg.create_pool(settings.registry.dsn, min_size=1, max_size=8)
    try:
        url = f"http://127.0.0.1:{port}/graphql"
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=16)) as http:
            for _ in range(200):
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)

            async def through_gateway() -> None:
                response = await http.post(
                    url, json={"query": QUERY}, headers={"authorization": f"Bearer {token}"}
                )
                body = response.json()
                assert "errors" not in body and len(body["data"]["referrals"]["edges"]) == PAGE

            query = ListQuery(parties=None, limit=PAGE + 1)

            async def direct() -> None:
                pages = await asyncio.gather(
                    *(s.referrals(query, ReferralFilter()) for s in sources)
                )
                merged = heapq.merge(
                    *[
                        [(r.created_at, s.member, r.id, r) for r in page]
                        for s, page in zip(sources, pages, strict=True)
                    ],
                    key=lambda item: item[:3],
                    reverse=True,
                )
                rows = [item[3] for _, item in zip(range(PAGE), merged, strict=False)]
                codes = {r.from_hospital for r in rows} | {r.to_hospital for r in rows}
                names = await registry.fetch(
                    "SELECT code, name FROM hospital WHERE code = ANY($1::text[])", list(codes)
                )
                assert len(rows) == PAGE and names

            for warm in (through_gateway, direct):
                for _ in range(20):
                    await warm()
            results: dict[str, object] = {"members": len(chosen)}
            for concurrency in (1, 8):
                gw = await _measure(through_gateway, concurrency, duration)
                dr = await _measure(direct, concurrency, duration)
                results[f"c{concurrency}"] = {"gateway": gw, "direct": dr}
            return results
    finally:
        server.terminate()
        server.wait(10)
        await registry.close()
        await asyncio.gather(*(s.close() for s in sources))
        if prepared.embedded is not None:
            prepared.embedded.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    args = parser.parse_args()
    results = asyncio.run(run(args.members, args.duration))
    for concurrency in (1, 8):
        r = results[f"c{concurrency}"]
        assert isinstance(r, dict)
        print(f"concurrency {concurrency}, {results['members']} members, page of {PAGE}:")
        for name in ("gateway", "direct"):
            m = r[name]
            print(
                f"  {name:8} p50 {m['p50_ms']:7.2f} ms  p99 {m['p99_ms']:7.2f} ms  "
                f"{m['rps']:7.1f} req/s  ({m['requests']} requests)"
            )
        print(
            f"  gateway/direct p50 {r['gateway']['p50_ms'] / r['direct']['p50_ms']:.2f}x, "
            f"throughput {r['gateway']['rps'] / r['direct']['rps']:.2f}x"
        )
    c1, c8 = results["c1"], results["c8"]
    assert isinstance(c1, dict) and isinstance(c8, dict)
    print(
        json.dumps(
            {
                "members": results["members"],
                "gateway_p50_ms": c1["gateway"]["p50_ms"],
                "gateway_p99_ms": c1["gateway"]["p99_ms"],
                "gateway_rps": c8["gateway"]["rps"],
                "direct_p50_ms": c1["direct"]["p50_ms"],
                "direct_rps": c8["direct"]["rps"],
                "concurrency_8": {
                    "gateway_p50_ms": c8["gateway"]["p50_ms"],
                    "direct_p50_ms": c8["direct"]["p50_ms"],
                },
            }
        )
    )


if __name__ == "__main__":
    main()
