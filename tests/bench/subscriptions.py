"""Subscription benchmark: N concurrent WebSocket subscribers (graphql-transport-ws) of
`events(types: [REFERRAL_CREATED])`, the gateway's memory per subscriber, and the latency from a
referral committed straight into a member's exchange database (as the hospital's own system
writes it, not through the gateway) to its envelope arriving at every subscriber.

    uv run python tests/bench/subscriptions.py --subscribers 1000 [--subscribers 5000 ...]
        [--events 50] [--trigger] [--workers N]

Starts its own stack (embedded PostgreSQL, the member databases, a gateway per run: one process,
or --workers of them, replicas on one host sharing the event log) and
spreads the subscribers over several client processes. With --trigger the members' databases get
the NOTIFY trigger (adapters/exchange/change_notify.sql), so changes are detected at once instead
of by the change watch's poll. Prints a summary and, last, one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import queue
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import uvloop
import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.ws_client import LeanSubscriber  # noqa: E402

PROTOCOL = Subprotocol("graphql-transport-ws")
SUBSCRIPTION = (
    "subscription { events(types: [REFERRAL_CREATED]) { cursor type occurredAt recordedAt "
    "entityId entityType entityVersion detectedBy } }"
)
# With --live-fields: a field resolved under the subscriber's authorization, so that the result
# depends on its visibility class and is executed once per class.
LIVE_SUBSCRIPTION = SUBSCRIPTION.replace("detectedBy }", "detectedBy hospitals { code } }")
PONG = json.dumps({"type": "pong"})
QUIET = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}


def _raise_fd_limit() -> int:
    """The soft limit of open files up to the hard one: thousands of sockets need thousands."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


_interrupted = False


def _checkpoint() -> None:
    """Ends the run after Ctrl-C, even when a library swallowed the task's cancellation."""
    if _interrupted:
        raise asyncio.CancelledError


def _on_interrupt(main: asyncio.Task[Any]) -> None:
    global _interrupted
    _interrupted = True
    main.cancel()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _short(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:200]


# --- The client processes -------------------------------------------------------------------


async def _open(
    url: str, token: str, compression: str | None, document: str = SUBSCRIPTION
) -> ClientConnection:
    """One subscriber: connection_init → connection_ack → subscribe."""
    ws = await connect(
        url,
        subprotocols=[PROTOCOL],
        compression=compression,
        proxy=None,
        open_timeout=60,
        ping_interval=None,
        close_timeout=5,
    )
    try:
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        )
        ack = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"expected connection_ack, got {str(ack)[:150]}")
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": document}}))
    except BaseException:
        ws.transport.abort()
        raise
    return ws


async def _open_lean(
    url: str, token: str, document: str, on_text: Callable[[bytes, LeanSubscriber], None]
) -> LeanSubscriber:
    """One subscriber over the lean client: connection_init → connection_ack → subscribe; the
    messages after the ack go to `on_text`."""
    acked: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def first_then_rest(text: bytes, connection: LeanSubscriber) -> None:
        if not acked.done():
            acked.set_result(text)
        else:
            on_text(text, connection)

    ws = await LeanSubscriber.connect(url, PROTOCOL, first_then_rest)
    try:
        ws.send_text(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        )
        ack = json.loads(await asyncio.wait_for(acked, 60))
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"expected connection_ack, got {str(ack)[:150]}")
        ws.send_text(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": document}}))
    except BaseException:
        ws.abort()
        raise
    return ws


@dataclass
class _Clients:
    url: str
    tokens: list[str]
    compression: str | None
    document: str
    lean: bool
    sockets: list[ClientConnection | LeanSubscriber] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)
    # entity id → receipt times (time.time()), one per subscriber that received it
    receipts: dict[str, list[float]] = field(default_factory=dict)
    problems: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    closed: int = 0
    stopping: bool = False
    # How late this process's event loop woke for a 50 ms timer: late receipts are its fault.
    lags: list[float] = field(default_factory=list)

    async def watch_lag(self) -> None:
        while True:
            expected = time.monotonic() + 0.05
            await asyncio.sleep(0.05)
            self.lags.append((time.monotonic() - expected) * 1000)

    async def open_one(self, index: int) -> None:
        token = self.tokens[index % len(self.tokens)]
        if self.lean:
            seen: set[str] = set()

            def on_text(text: bytes, connection: LeanSubscriber) -> None:
                try:
                    if self._receive(text, time.time(), seen):
                        connection.send_text(PONG)
                except Exception as e:  # a malformed message: report it, do not hide it
                    self.problems[f"client error: {_short(e)}"] += 1

            lean = await _open_lean(self.url, token, self.document, on_text)
            self.sockets.append(lean)
            lean.closed.add_done_callback(lambda _: self._ended(lean.close_code, lean.close_reason))
            return
        ws = await _open(self.url, token, self.compression, self.document)
        self.sockets.append(ws)
        self.readers.append(asyncio.create_task(self._read(ws)))

    def _receive(self, raw: str | bytes, at: float, seen: set[str]) -> bool:
        """Records one message of a subscriber; True when it must be answered with a pong."""
        message = json.loads(raw)
        kind = message.get("type")
        if kind == "next":
            payload = message.get("payload") or {}
            event = (payload.get("data") or {}).get("events")
            if event:
                entity = event["entityId"]
                if entity in seen:
                    self.problems["duplicate event"] += 1
                else:
                    seen.add(entity)
                    self.receipts.setdefault(entity, []).append(at)
            for error in payload.get("errors") or []:
                self.problems[f"next with error: {str(error)[:200]}"] += 1
        elif kind == "ping":
            return True
        elif kind != "pong":
            self.problems[f"{kind}: {str(message.get('payload'))[:200]}"] += 1
        return False

    def _ended(self, code: int | None, reason: str | None) -> None:
        if not self.stopping:
            self.closed += 1
            self.problems[f"closed by the gateway: {code} {reason!r}"] += 1

    async def _read(self, ws: ClientConnection) -> None:
        seen: set[str] = set()
        try:
            async for raw in ws:
                if self._receive(raw, time.time(), seen):
                    await ws.send(PONG)
        except ConnectionClosed:
            pass
        except Exception as e:  # a malformed message: report it, do not hide it
            self.problems[f"client error: {_short(e)}"] += 1
        finally:
            self._ended(ws.close_code, ws.close_reason)

    def status(self) -> dict[str, Any]:
        return {
            "connected": len(self.sockets),
            "failed": self.failed,
            "closed": self.closed,
            "counts": {entity: len(times) for entity, times in self.receipts.items()},
            "problems": dict(self.problems),
        }


async def _client_main(
    index: int,
    url: str,
    tokens: list[str],
    count: int,
    batch: int,
    compression: str | None,
    document: str,
    lean: bool,
    commands: multiprocessing.Queue[str],
    replies: multiprocessing.Queue[tuple[str, int, dict[str, Any]]],
) -> None:
    # The lean client when nothing is compressed; websockets negotiates permessage-deflate.
    clients = _Clients(url, tokens, compression, document, lean=compression is None and lean)
    for start in range(0, count, batch):
        opened = await asyncio.gather(
            *(clients.open_one(start + i) for i in range(min(batch, count - start))),
            return_exceptions=True,
        )
        for outcome in opened:
            if isinstance(outcome, BaseException):
                clients.failed += 1
                clients.problems[f"connect: {_short(outcome)}"] += 1
    replies.put(("connected", index, clients.status()))
    lag = asyncio.create_task(clients.watch_lag())
    while True:
        command = await asyncio.to_thread(commands.get)
        if command == "status":
            replies.put(("status", index, clients.status()))
            continue
        if command == "reset-lag":
            clients.lags.clear()
            continue
        # "finish": close every subscriber and hand back every receipt.
        clients.stopping = True
        lag.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(ws.close() for ws in clients.sockets), return_exceptions=True),
                30,
            )
        for reader in clients.readers:
            reader.cancel()
        result = clients.status()
        result["receipts"] = clients.receipts
        result["lags"] = clients.lags
        replies.put(("done", index, result))
        return


def _client_process(
    index: int,
    url: str,
    tokens: list[str],
    count: int,
    batch: int,
    compression: str | None,
    document: str,
    lean: bool,
    commands: multiprocessing.Queue[str],
    replies: multiprocessing.Queue[tuple[str, int, dict[str, Any]]],
) -> None:
    # Ctrl-C reaches the whole process group: the parent cleans up and ends this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _raise_fd_limit()
    main = _client_main(
        index, url, tokens, count, batch, compression, document, lean, commands, replies
    )
    # The lean client reads in its protocol's callbacks: uvloop makes those cheapest.
    if lean and compression is None:
        uvloop.run(main)
    else:
        asyncio.run(main)


class ClientPool:
    """The subscribers, spread over `processes` client processes."""

    def __init__(
        self,
        url: str,
        tokens: list[str],
        subscribers: int,
        processes: int,
        batch: int,
        compression: str | None,
        document: str = SUBSCRIPTION,
        lean: bool = True,
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.replies: multiprocessing.Queue[tuple[str, int, dict[str, Any]]] = ctx.Queue()
        self.commands: list[multiprocessing.Queue[str]] = []
        self.processes: list[BaseProcess] = []
        processes = max(1, min(processes, subscribers))
        share, extra = divmod(subscribers, processes)
        first = 0
        for index in range(processes):
            count = share + (index < extra)
            commands: multiprocessing.Queue[str] = ctx.Queue()
            process = ctx.Process(
                target=_client_process,
                args=(
                    index,
                    url,
                    # Each process its own slice: with distinct tokens, every subscriber its own.
                    [tokens[(first + k) % len(tokens)] for k in range(min(count, len(tokens)))],
                    count,
                    max(1, batch // processes),
                    compression,
                    document,
                    lean,
                    commands,
                    self.replies,
                ),
                name=f"subscribers-{index}",
                daemon=True,
            )
            self.commands.append(commands)
            self.processes.append(process)
            first += count

    def start(self) -> None:
        for process in self.processes:
            process.start()

    async def _collect(self, kind: str, within: float) -> list[dict[str, Any]]:
        got: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + within
        while len(got) < len(self.processes):
            _checkpoint()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"client processes did not answer {kind!r} in {within:.0f} s")
            try:
                reply_kind, index, body = await asyncio.to_thread(
                    self.replies.get, True, min(left, 1.0)
                )
            except queue.Empty:
                dead = [p.name for p in self.processes if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"client processes died: {dead}") from None
                continue
            if reply_kind == kind:
                got[index] = body
        return [got[i] for i in sorted(got)]

    async def connected(self, within: float) -> list[dict[str, Any]]:
        return await self._collect("connected", within)

    async def status(self) -> list[dict[str, Any]]:
        for commands in self.commands:
            commands.put("status")
        return await self._collect("status", 60)

    def reset_lag(self) -> None:
        for commands in self.commands:
            commands.put("reset-lag")

    def cpu(self) -> float:
        """CPU seconds the client processes used so far."""
        return sum(_cpu_seconds(p.pid) for p in self.processes if p.pid is not None)

    async def finish(self) -> list[dict[str, Any]]:
        for commands in self.commands:
            commands.put("finish")
        return await self._collect("done", 120)

    def stop(self) -> None:
        started = [p for p in self.processes if p.pid is not None]
        for process in started:
            if process.is_alive():
                process.terminate()
        try:
            for process in started:
                process.join(10)
        finally:
            for process in started:
                if process.is_alive():
                    process.kill()
                    process.join(5)


def _merge_counts(statuses: list[dict[str, Any]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for status in statuses:
        total.update(status["counts"])
    return total


def _cpu_seconds(pid: int) -> float:
    """A process's CPU so far, with its children's (a gateway's worker processes)."""
    import psutil

    spent = 0.0
    with contextlib.suppress(psutil.Error):
        process = psutil.Process(pid)
        for one in (process, *process.children(recursive=True)):
            with contextlib.suppress(psutil.Error):
                times = one.cpu_times()
                spent += times.user + times.system
    return spent


# --- The gateway and the members ------------------------------------------------------------


@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    http: str
    ws: str
    log: Path
    # Under py-spy the server is py-spy's child: figures are the server's, not the sampler's.
    sampled: bool = False

    def _server(self) -> Any:
        import psutil

        process = psutil.Process(self.process.pid)
        if self.sampled:
            for _ in range(100):
                children = process.children()
                if children:
                    return children[0]
                time.sleep(0.05)
        return process

    def open_files_limit(self) -> int:
        import psutil

        return int(self._server().rlimit(psutil.RLIMIT_NOFILE)[0])

    def cpu(self) -> float:
        return _cpu_seconds(self._server().pid)

    def rss(self) -> int:
        process = self._server()
        return int(
            process.memory_info().rss
            + sum(c.memory_info().rss for c in process.children(recursive=True))
        )

    async def ready(self) -> dict[str, Any]:
        import httpx

        async with httpx.AsyncClient(timeout=10) as probe:
            response = await probe.get(f"{self.http}/readyz")
            return response.json()

    def problems(self) -> tuple[Counter[str], Counter[str]]:
        """The log's WARNING and worse lines by message, and the watch's mode per member."""
        levels: Counter[str] = Counter()
        modes: Counter[str] = Counter()
        if not self.log.exists():
            return levels, modes
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                if line.strip():
                    levels[f"(not JSON) {line[:200]}"] += 1
                continue
            if not isinstance(entry, dict):
                continue
            if entry.get("message") == "watching member":
                modes[str(entry.get("mode"))] += 1
            if entry.get("level") in ("WARNING", "ERROR", "CRITICAL"):
                detail = entry.get("error") or entry.get("exception") or ""
                levels[f"{entry['level']} {entry.get('message')} {str(detail)[:160]}".strip()] += 1
        return levels, modes


@contextlib.asynccontextmanager
async def gateway(
    config: Path, log: Path, members: int, profile: Path | None = None, workers: int = 1
) -> AsyncIterator[Gateway]:
    port = _free_port()
    # py-spy samples the gateway from its start (run with `uv run --with py-spy`); its raw
    # (collapsed) output has one line per distinct stack with its sample count.
    spy = []
    if profile is not None:
        spy = [shutil.which("py-spy") or "py-spy", "record", "-f", "raw", "-r", "200"]
        spy += ["-o", str(profile), "--"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *spy,
                sys.executable,
                "-m",
                "gateway.cli",
                "serve",
                "--config",
                str(config),
                "--port",
                str(port),
                # By default one replica, one process: what one replica delivers is the figure.
                "--workers",
                str(workers),
            ],
            cwd=ROOT,
            env={**os.environ, **QUIET},
            stdout=out,
            stderr=subprocess.STDOUT,
            # It inherits this process's limit of open files, raised in main().
        )
    running = Gateway(
        process,
        f"http://127.0.0.1:{port}",
        f"ws://127.0.0.1:{port}/graphql",
        log,
        profile is not None,
    )
    try:
        # Ready, and watching every member: a change made before its watch began is not an event.
        deadline = time.monotonic() + 60
        watching: set[str] = set()
        while True:
            _checkpoint()
            if process.poll() is not None:
                raise RuntimeError(f"the gateway exited with {process.returncode}; see {log}")
            with contextlib.suppress(Exception):
                state = await running.ready()
                # Each worker answers for itself: the watches are spread over them, and each
                # probe's new connection may reach either.
                watching.update(state.get("watching", []))
                if state.get("status") == "ready" and len(watching) >= members:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the gateway was not ready and watching in 60 s; see {log}")
            await asyncio.sleep(0.2)
        yield running
    finally:
        if process.poll() is None:
            # py-spy writes its profile when its child ends: the server gets the signal.
            target = running._server() if profile is not None else process
            with contextlib.suppress(Exception):
                target.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            pass
        finally:
            # Also when a second Ctrl-C interrupts the wait.
            if process.poll() is None:
                process.kill()
                process.wait(5)


class Hospitals:
    """Writes referrals into the members' exchange databases as their own systems would."""

    def __init__(self, members: list[tuple[str, str, Any]]) -> None:
        self._members = members
        self._conns: dict[str, Any] = {}

    async def open(self) -> None:
        import asyncpg

        for code, dsn, _ in self._members:
            self._conns[code] = await asyncpg.connect(dsn)

    async def close(self) -> None:
        for conn in self._conns.values():
            with contextlib.suppress(Exception):
                await conn.close(timeout=5)

    async def refer(self, i: int) -> tuple[str, float]:
        """One new referral at member i (round robin): its global id and when it committed."""
        from resolvers import global_ids

        code, _, columns = self._members[i % len(self._members)]
        to = self._members[(i + 1) % len(self._members)][0]
        t = columns["referral"]
        values = {
            "referral_no": f"BENCH-{code}-{secrets.token_hex(6).upper()}",
            "direction": "UP",
            "from_hospital": code,
            "from_department": "骨伤科",
            "to_hospital": to,
            "to_department": "骨科",
            "patient_pseudonym": secrets.token_hex(32),
            "patient_sex": "FEMALE",
            "patient_age": 67,
            "diagnosis_code": "S72.000",
            "diagnosis_name": "股骨颈骨折",
            "reason": "需手术治疗，本院条件不足",
            "urgency": "URGENT",
            "created_by": f"{code}-D001",
        }
        sql = (
            f"INSERT INTO {t.name} ({t.cols(values)}) "
            f"VALUES ({', '.join(f'${n}' for n in range(1, len(values) + 1))}) "
            f"RETURNING {t.col('id')}"
        )
        conn = self._conns[code]
        async with conn.transaction():
            row_id = await conn.fetchval(sql, *values.values())
        committed = time.time()
        return global_ids.encode("Referral", code, row_id), committed


async def install_triggers(admin_dsn: str, databases: list[str]) -> None:
    import asyncpg

    script = (ROOT / "adapters" / "exchange" / "change_notify.sql").read_text()
    for database in databases:
        conn = await asyncpg.connect(admin_dsn, database=database)
        try:
            await conn.execute(script)
        finally:
            await conn.close()


async def probe_subscription(url: str, token: str) -> None:
    """One subscriber opened and closed: the gateway's code paths for it loaded before measuring."""
    ws = await _open(url, token, "deflate")
    await asyncio.sleep(0.5)
    await ws.close()


# --- One run ---------------------------------------------------------------------------------


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def _wait_for(
    clients: ClientPool, entities: list[str], want: int, settle: float, limit: float
) -> list[dict[str, Any]]:
    """Poll the clients until every entity reached `want` subscribers, or nothing arrived for
    `settle` seconds, or `limit` seconds passed; the last statuses."""
    deadline = time.monotonic() + limit
    last_total, last_progress = -1, time.monotonic()
    while True:
        _checkpoint()
        statuses = await clients.status()
        counts = _merge_counts(statuses)
        total = sum(counts[e] for e in entities)
        if total >= want * len(entities):
            return statuses
        now = time.monotonic()
        if total != last_total:
            last_total, last_progress = total, now
        if now - last_progress > settle or now > deadline:
            return statuses
        await asyncio.sleep(0.25)


async def run_one(
    args: argparse.Namespace,
    subscribers: int,
    config: Path,
    data_dir: Path,
    tokens: list[str],
    hospitals: Hospitals,
    members: int,
) -> dict[str, Any]:
    log = data_dir / f"gateway-{subscribers}.log"
    compression = None if args.no_compression else "deflate"
    profile = (
        args.profile / f"gateway-{subscribers}-{int(time.time())}.txt" if args.profile else None
    )
    async with gateway(config, log, members, profile, args.workers) as gw:
        await probe_subscription(gw.ws, tokens[0])
        for _ in range(50):
            if (await gw.ready()).get("subscriptions") == 0:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        rss_before = gw.rss()
        fd_limit = gw.open_files_limit()

        document = LIVE_SUBSCRIPTION if args.live_fields else SUBSCRIPTION
        clients = ClientPool(
            gw.ws,
            tokens,
            subscribers,
            args.clients,
            args.batch,
            compression,
            document,
            lean=args.client == "lean",
        )
        try:
            started = time.monotonic()
            clients.start()
            opened = await clients.connected(within=60 + subscribers * 0.2)
            connect_s = time.monotonic() - started
            connected = sum(s["connected"] for s in opened)
            failed = sum(s["failed"] for s in opened)
            print(
                f"  {connected} subscribers connected in {connect_s:.1f} s"
                + (f", {failed} failed" if failed else ""),
                flush=True,
            )
            # Every subscription is registered with the gateway's hub before the first write. With
            # several workers each counts its own: the first event, below, shows every one live.
            hub_subscriptions = -1
            for _ in range(300 if args.workers == 1 else 0):
                hub_subscriptions = (await gw.ready()).get("subscriptions", -1)
                if hub_subscriptions >= connected:
                    break
                await asyncio.sleep(0.2)

            # A first event: every subscription is live (and its first delivery paid for).
            warm_id, warm_at = await hospitals.refer(0)
            statuses = await _wait_for(clients, [warm_id], connected, settle=15, limit=120)
            warm_counts = _merge_counts(statuses)
            warm_s = time.time() - warm_at
            rss_after = gw.rss()
            print(
                f"  first event reached {warm_counts[warm_id]}/{connected} subscribers "
                f"(within {warm_s:.2f} s); gateway RSS {rss_before / 2**20:.1f} MiB → "
                f"{rss_after / 2**20:.1f} MiB",
                flush=True,
            )

            clients.reset_lag()
            cpu_before = gw.cpu(), clients.cpu()
            committed: dict[str, float] = {}
            began = time.monotonic()
            for i in range(args.events):
                _checkpoint()
                pause = began + i * args.interval - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                entity, at = await hospitals.refer(i + 1)
                committed[entity] = at
            written_s = time.monotonic() - began
            await _wait_for(clients, list(committed), connected, settle=20, limit=300)
            rss_end = gw.rss()
            cpu_after = gw.cpu(), clients.cpu()
            cpu_window = time.monotonic() - began
            results = await clients.finish()
        finally:
            clients.stop()
        exited = gw.process.poll()
        levels, modes = gw.problems()

    latencies: list[float] = []
    per_event: dict[str, int] = dict.fromkeys(committed, 0)
    spreads: list[float] = []
    problems: Counter[str] = Counter()
    closed = 0
    for result in results:
        problems.update(result["problems"])
        closed += result["closed"]
    for entity, at in committed.items():
        times = [t for result in results for t in result["receipts"].get(entity, [])]
        per_event[entity] = len(times)
        latencies.extend((t - at) * 1000 for t in times)
        if times:
            spreads.append((max(times) - min(times)) * 1000)
    latencies.sort()
    lags = sorted(lag for result in results for lag in result["lags"])
    last_receipt = max(
        (t for result in results for e in committed for t in result["receipts"].get(e, [])),
        default=None,
    )
    first_commit = min(committed.values(), default=None)
    throughput = (
        len(latencies) / (last_receipt - first_commit)
        if last_receipt is not None and first_commit is not None and last_receipt > first_commit
        else None
    )
    gateway_cpu = (cpu_after[0] - cpu_before[0]) / cpu_window * 100
    clients_cpu = (cpu_after[1] - cpu_before[1]) / cpu_window * 100
    delivered = len(latencies)
    expected = subscribers * args.events
    detection = (
        "notify"
        if modes and set(modes) == {"notify"}
        else "poll"
        if modes and set(modes) == {"poll"}
        else ("mixed " + json.dumps(dict(modes)))
        if modes
        else ("notify" if args.trigger else "poll")
    )
    return {
        "subscribers": subscribers,
        "connected": connected,
        "connect_failed": failed,
        "connect_seconds": round(connect_s, 1),
        "hub_subscriptions": hub_subscriptions,
        "workers": args.workers,
        "events": args.events,
        "write_seconds": round(written_s, 2),
        "detection": detection,
        "compression": compression or "none",
        "client": "lean" if args.client == "lean" and compression is None else "websockets",
        "visibility_classes": min(subscribers, len(tokens)),
        "live_fields": args.live_fields,
        "profile": str(profile) if profile else None,
        "client_processes": len(clients.processes),
        "gateway_open_files_limit": fd_limit,
        "rss_before_mib": round(rss_before / 2**20, 1),
        "rss_after_mib": round(rss_after / 2**20, 1),
        "rss_end_mib": round(rss_end / 2**20, 1),
        "rss_per_subscriber_kib": round((rss_after - rss_before) / 1024 / max(1, subscribers), 1),
        "first_event": {"delivered": warm_counts[warm_id], "seconds": round(warm_s, 2)},
        "latency_ms": {
            "p50": round(statistics.median(latencies), 1) if latencies else None,
            "p90": round(_percentile(latencies, 0.90), 1) if latencies else None,
            "p99": round(_percentile(latencies, 0.99), 1) if latencies else None,
            "max": round(latencies[-1], 1) if latencies else None,
            "min": round(latencies[0], 1) if latencies else None,
        },
        "fan_out_spread_ms_p50": round(statistics.median(spreads), 1) if spreads else None,
        "delivered": delivered,
        "deliveries_per_second": round(throughput) if throughput else None,
        "gateway_cpu_pct": round(gateway_cpu),
        "clients_cpu_pct": round(clients_cpu),
        "client_loop_lag_ms": {
            "p50": round(statistics.median(lags), 1) if lags else None,
            "p99": round(_percentile(lags, 0.99), 1) if lags else None,
            "max": round(lags[-1], 1) if lags else None,
        },
        "expected": expected,
        "lost": expected - delivered,
        "events_not_reaching_all": sum(1 for n in per_event.values() if n < subscribers),
        "closed_by_gateway": closed,
        "client_problems": dict(problems),
        "gateway_log_problems": dict(levels),
        "gateway_exit": exited,
    }


def _print_run(r: dict[str, Any]) -> None:
    lat = r["latency_ms"]
    print(
        f"{r['subscribers']} subscribers ({r['visibility_classes']} visibility classes"
        f"{', live fields' if r['live_fields'] else ''}), "
        f"{r['events']} events, detection {r['detection']}:"
    )
    print(
        f"  connected {r['connected']} ({r['connect_failed']} failed) in "
        f"{r['connect_seconds']} s; "
        + (
            f"the hub counted {r['hub_subscriptions']} subscriptions; "
            if r["workers"] == 1
            else f"{r['workers']} workers, each counting its own; "
        )
        + f"the gateway may open {r['gateway_open_files_limit']} files"
    )
    print(
        f"  gateway RSS {r['rss_before_mib']} MiB before, {r['rss_after_mib']} MiB subscribed, "
        f"{r['rss_end_mib']} MiB after the events: "
        f"{r['rss_per_subscriber_kib']} KiB per subscriber (compression {r['compression']})"
    )
    print(
        f"  commit → receipt: p50 {lat['p50']} ms  p90 {lat['p90']} ms  p99 {lat['p99']} ms  "
        f"max {lat['max']} ms  min {lat['min']} ms; first-to-last receipt of an event "
        f"p50 {r['fan_out_spread_ms_p50']} ms"
    )
    print(
        f"  delivered {r['delivered']}/{r['expected']} (lost {r['lost']}; "
        f"{r['events_not_reaching_all']} events missed some subscriber); "
        f"{r['events']} events written in {r['write_seconds']} s"
    )
    lag = r["client_loop_lag_ms"]
    print(
        f"  {r['deliveries_per_second']} deliveries/s from the first commit to the last receipt; "
        f"while the events were written and delivered the gateway ({r['workers']} worker "
        f"processes) used {r['gateway_cpu_pct']}% of a core, the {r['client_processes']} client processes {r['clients_cpu_pct']}%; "
        f"client event loop lag p50 {lag['p50']} ms, p99 {lag['p99']} ms, max {lag['max']} ms"
    )
    if r["closed_by_gateway"] or r["client_problems"]:
        print(f"  subscribers closed by the gateway: {r['closed_by_gateway']}")
        for problem, n in sorted(r["client_problems"].items(), key=lambda p: -p[1]):
            print(f"    {n:6} × {problem}")
    if r["gateway_log_problems"]:
        print("  gateway log warnings and errors:")
        for problem, n in sorted(r["gateway_log_problems"].items(), key=lambda p: -p[1]):
            print(f"    {n:6} × {problem}")
    if r["profile"]:
        print(f"  profile (py-spy, collapsed stacks): {r['profile']}")
    if r["gateway_exit"] is not None:
        print(f"  the gateway EXITED during the run with code {r['gateway_exit']}")


def distinct_tokens(root: Path, settings: Any, count: int) -> list[str]:
    """`count` SECRETARIAT tokens each naming a hospital of its own: the office hears of every
    event, so each subscriber receives all of them, yet no two share a visibility class (role,
    hospital, purpose), and so none shares another's execution: the worst case of fan-out."""
    from gateway.demo import tokens

    return [
        tokens.mint(
            root / tokens.PRIVATE_KEY_FILE,
            issuer=settings.auth.issuer,
            audience=settings.auth.audience,
            subject=f"bench-office-{i}",
            roles=["SECRETARIAT"],
            hospital=f"BENCH{i:05d}",
        )
        for i in range(count)
    ]


def _remove(data_dir: Path, *, keep: bool) -> None:
    """The run's directory, once the embedded server is gone (blocking: a second Ctrl-C must
    not cut this short)."""
    # PostgreSQL removes its pid file last: after Ctrl-C (which reaches it too) it may still be
    # writing its shutdown files when stop() returns.
    pid_file = data_dir / "pgdata" / "postmaster.pid"
    for _ in range(150):
        if not pid_file.exists():
            break
        time.sleep(0.1)
    if keep:
        print(f"(data and gateway logs kept in {data_dir})", file=sys.stderr)
    else:
        shutil.rmtree(data_dir, ignore_errors=True)


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    import tomli_w

    from adapters.exchange.columns import ColumnMap
    from gateway.demo import data as demo_data
    from gateway.demo import provision
    from gateway.settings import load_settings

    main = asyncio.current_task()
    assert main is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, _on_interrupt, main)
    data_dir = Path(tempfile.mkdtemp(prefix="alliance-bench-subs-"))
    prepared = None
    hospitals: Hospitals | None = None
    try:
        prepared = await provision.prepare(
            data_dir,
            reset=True,
            registry_dsn=None,
            graphql_url="",
            extra_members=max(0, args.members - len(demo_data.HOSPITALS)),
        )
        raw = tomllib.loads(prepared.paths.config.read_text())
        # The hospitals write with SQL into PostgreSQL: the demo's MariaDB and FHIR members
        # take no part.
        raw["members"] = [m for m in raw["members"] if m.get("kind", "postgres") == "postgres"][
            : args.members
        ]
        raw["rate_limit"] = {"enabled": False}
        raw["events"] = {
            **raw.get("events", {}),
            "subscriber_queue": max(10_000, 4 * (args.events + 1)),
        }
        config = data_dir / "bench.toml"
        config.write_text(tomli_w.dumps(raw))
        settings = load_settings(config)
        info = json.loads(prepared.paths.demo_json.read_text())
        token = next(t["token"] for t in info["tokens"] if t["role"] == "SECRETARIAT")
        tokens = (
            distinct_tokens(prepared.paths.root, settings, args.distinct_hospitals)
            if args.distinct_hospitals
            else [token]
        )
        members = settings.members
        if args.trigger:
            databases = {m["code"]: m["database"] for m in info["members"] if "database" in m}
            await install_triggers(info["admin_dsn"], [databases[m.code] for m in members])
        hospitals = Hospitals([(m.code, m.resolved_dsn(), ColumnMap(m.columns)) for m in members])
        await hospitals.open()
        runs = []
        for subscribers in args.subscribers:
            _checkpoint()
            print(f"run: {subscribers} subscribers ...", flush=True)
            result = await run_one(
                args, subscribers, config, data_dir, tokens, hospitals, len(members)
            )
            _print_run(result)
            runs.append(result)
        return runs
    finally:
        try:
            if hospitals is not None:
                await hospitals.close()
        finally:
            if prepared is not None and prepared.embedded is not None:
                prepared.embedded.stop()
            _remove(data_dir, keep=args.keep_data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--subscribers",
        type=int,
        action="append",
        help="concurrent subscribers; repeat for several runs (default: 1000)",
    )
    parser.add_argument("--events", type=int, default=50, help="referrals written per run")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between referrals")
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument(
        "--trigger",
        action="store_true",
        help="install the members' NOTIFY trigger: detection at once instead of polled",
    )
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument(
        "--workers", type=int, default=1, help="gateway worker processes (replicas on one host)"
    )
    parser.add_argument("--batch", type=int, default=200, help="connections opened at a time")
    parser.add_argument(
        "--no-compression",
        action="store_true",
        help="do not offer permessage-deflate (browsers do offer it)",
    )
    parser.add_argument(
        "--client",
        choices=("lean", "websockets"),
        default="lean",
        help="the subscribers' client: a lean RFC 6455 reader (tests/bench/ws_client.py; "
        "default, used only with --no-compression) or the websockets library",
    )
    parser.add_argument("--keep-data", action="store_true", help="keep the data directory")
    parser.add_argument(
        "--distinct-hospitals",
        type=int,
        default=0,
        metavar="K",
        help="give the subscribers K tokens, each of its own hospital (K visibility classes); "
        "K ≥ subscribers: every subscriber its own class",
    )
    parser.add_argument(
        "--live-fields",
        action="store_true",
        help="also select `hospitals { code }`, resolved under each subscriber's authorization: "
        "one execution per visibility class instead of one for all",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="sample the gateway with py-spy into DIR (uv run --with py-spy ...)",
    )
    args = parser.parse_args()
    args.subscribers = args.subscribers or [1000]
    limit = _raise_fd_limit()
    need = max(args.subscribers) + 200
    if limit < need:
        print(f"warning: only {limit} open files allowed, {need} wanted", file=sys.stderr)
    print(
        f"client {'lean' if args.client == 'lean' and args.no_compression else 'websockets'}"
        f" (websockets {websockets.__version__}), open files limit {limit}, "
        f"{args.clients} client processes, batches of {args.batch}",
        flush=True,
    )
    try:
        runs = asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    summary = [
        {
            key: r[key]
            for key in (
                "subscribers",
                "connected",
                "events",
                "rss_per_subscriber_kib",
                "latency_ms",
                "delivered",
                "expected",
                "deliveries_per_second",
                "gateway_cpu_pct",
                "workers",
                "lost",
                "closed_by_gateway",
                "detection",
                "compression",
                "visibility_classes",
                "live_fields",
                "first_event",
                "gateway_exit",
            )
        }
        for r in runs
    ]
    print(json.dumps(summary[0] if len(summary) == 1 else {"runs": summary}, ensure_ascii=False))


if __name__ == "__main__":
    main()
