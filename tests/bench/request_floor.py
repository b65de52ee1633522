"""The gateway's fixed cost per GraphQL request, at concurrency 1: what a query costs before it
asks any member (HTTP, authentication, the request checks, Strawberry's and graphql-core's
pipeline, metrics and the access log), set beside the federation benchmark's page.

    uv run python tests/bench/request_floor.py [--duration 5]

Starts its own stack as tests/bench/federation.py does (the same gateway, the same kept-alive
load generator) and measures `{ __typename }` (no resolver at all) and `{ alliance { name } }`
(one registry read). Prints the p50 and the gateway's CPU per request of each, then one JSON
line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import tomli_w

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gateway.demo import provision  # noqa: E402
from tests.bench.federation import KeepAliveClient, _cpu_seconds, gateway  # noqa: E402

QUERIES = {"typename": "{ __typename }", "registry_read": "{ alliance { name } }"}


async def measure(duration: float) -> dict[str, dict[str, float]]:
    data_dir = Path(tempfile.mkdtemp(prefix="alliance-bench-"))
    prepared = await provision.prepare(data_dir, reset=True, registry_dsn=None, graphql_url="")
    raw = tomllib.loads(prepared.paths.config.read_text())
    raw["rate_limit"] = {"enabled": False}
    config = data_dir / "bench.toml"
    config.write_text(tomli_w.dumps(raw))
    info = json.loads(prepared.paths.demo_json.read_text())
    token = next(t["token"] for t in info["tokens"] if t["role"] == "SECRETARIAT")
    quiet = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}
    measured: dict[str, dict[str, float]] = {}
    try:
        async with gateway(config, quiet) as (url, pid):
            client = KeepAliveClient(url, token)
            for name, query in QUERIES.items():
                for _ in range(200):
                    await client.post({"query": query})
                latencies: list[float] = []
                cpu = sum(_cpu_seconds(pid).values())
                started = time.perf_counter()
                while time.perf_counter() - started < duration:
                    sent = time.perf_counter()
                    body = await client.post({"query": query})
                    latencies.append(time.perf_counter() - sent)
                    assert "errors" not in body, body
                spent = sum(_cpu_seconds(pid).values()) - cpu
                latencies.sort()
                measured[name] = {
                    "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
                    "cpu_ms_per_request": round(spent * 1000 / len(latencies), 2),
                    "requests": len(latencies),
                }
            client.close()
    finally:
        if prepared.embedded is not None:
            prepared.embedded.stop()
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per query")
    args = parser.parse_args()
    measured = asyncio.run(measure(args.duration))
    for name, m in measured.items():
        print(
            f"{QUERIES[name]:<24} p50 {m['p50_ms']:5.2f} ms, gateway CPU "
            f"{m['cpu_ms_per_request']:.2f} ms per request ({int(m['requests'])} requests)"
        )
    print(json.dumps(measured))


if __name__ == "__main__":
    main()
