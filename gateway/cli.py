"""`alliance-gateway`: demo, serve, migrate, init, token."""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any, NoReturn

import asyncpg
import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import STARTUP_FAILURE

from adapters.registry.migrate import apply_migrations
from adapters.registry.store import RegistryStore
from gateway.app import create_app
from gateway.auth import HOSPITAL_ROLES
from gateway.graphiql_page import BUILD_COMMAND, GraphiQLPage
from gateway.logs import configure_logging
from gateway.settings import Settings, load_settings, worker_count
from resolvers.principal import Purpose, Role


def _positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of seconds")
    return seconds


def _config_path(value: str | None) -> Path | None:
    chosen = value or os.environ.get("ALLIANCE_CONFIG")
    return Path(chosen) if chosen else None


_UVICORN_OPTIONS: dict[str, Any] = {
    "log_level": "info",
    # uvicorn's own loggers propagate to the root logger's JSON handler (see main).
    "log_config": None,
    # uvicorn's websockets-sansio protocol, keeping less per open connection (gateway/ws_protocol.py).
    "ws": "gateway.ws_protocol:GatewayWebSocketProtocol",
    "proxy_headers": True,
    # The gateway writes its access lines once each response is sent (gateway/access_log.py).
    "access_log": False,
}


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        **_UVICORN_OPTIONS,
        "ws_per_message_deflate": settings.websocket_compression,
        # The WebSocket keep-alive: graphql-transport-ws leaves pings to the client, so the
        # server's are WebSocket ping frames, at the interval SSE sends its comment lines.
        "ws_ping_interval": settings.events.keep_alive_seconds,
    }


# A page's response tree, records and coroutines are alive at once, several thousand objects,
# and freed by their reference counts once it is sent. At the default 700 new objects a young
# collection ran about once a request, scanning and promoting a tree about to be freed anyway
# (4 % of a page's CPU); at 10,000 it runs only as objects that outlive requests accumulate.
_YOUNG_COLLECTION_THRESHOLD = 10_000


def _frozen_app(settings: Settings) -> ASGIApp:
    app = create_app(settings)
    # The schema, settings and modules live as long as the process: keep them out of every
    # garbage collection, which otherwise rescans them while requests wait.
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(_YOUNG_COLLECTION_THRESHOLD, older, oldest)
    return app


# How a worker process finds the settings its parent serves: the configuration file and the
# overrides the command applied, in the environment uvicorn's worker processes inherit.
_WORKER_CONFIG = "ALLIANCE_WORKER_CONFIG"
_WORKER_OVERRIDES = "ALLIANCE_WORKER_OVERRIDES"


def _serve(settings: Settings, host: str, port: int, config: Path | None, **overrides: str) -> None:
    """One process per worker; each is a replica like any other (they share the registry, the
    event log and the change watch through PostgreSQL), so a host's every core serves."""
    workers = worker_count(settings)
    if workers == 1:
        uvicorn.run(_frozen_app(settings), host=host, port=port, **_uvicorn_options(settings))
        return
    if config is not None:
        os.environ[_WORKER_CONFIG] = str(config.resolve())
    os.environ[_WORKER_OVERRIDES] = json.dumps(overrides)
    print(f"serving with {workers} worker processes")
    uvicorn.run(
        "gateway.cli:worker_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        **_uvicorn_options(settings),
    )


def _given(**overrides: Any) -> dict[str, Any]:
    return {k: v for k, v in overrides.items() if v is not None}


def worker_app() -> ASGIApp:
    """The app of one worker process that `_serve` started."""
    configure_logging(logging.INFO)
    config = os.environ.get(_WORKER_CONFIG)
    overrides = json.loads(os.environ.get(_WORKER_OVERRIDES, "{}"))
    return _frozen_app(load_settings(Path(config) if config else None, **overrides))


def _serve_simulating(settings: Settings, host: str, port: int, interval: float) -> None:
    """Serve as _serve does, while the demo hospitals' own systems write activity. uvicorn.run
    owns its event loop, so the server and the simulator share one made here, as uvicorn would."""
    from gateway.demo.simulate import Simulation, simulate_activity

    simulation = Simulation.from_settings(settings)
    server = uvicorn.Server(
        uvicorn.Config(_frozen_app(settings), host=host, port=port, **_uvicorn_options(settings))
    )

    async def serve() -> None:
        async with simulate_activity(simulation, interval):
            await server.serve()

    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(serve())
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


def port_problem(host: str, port: int) -> str | None:
    """Why the gateway could not listen on host:port (naming the process that holds the port when
    psutil can), or None when it can. Bound as uvicorn binds, with SO_REUSEADDR."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError):
        return f"cannot serve on {host}: no such address"
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                return f"cannot serve on port {port} on {host}: {e.strerror}"
            holder = _listener(port)
            return f"port {port} on {host} is in use" + (f" by {holder}" if holder else "")
    return None


def _listener(port: int) -> str | None:
    """The process listening on `port`, as `name (pid N)`, if psutil is installed (the demo's
    dependency) and may see it."""
    try:
        import psutil
    except ImportError:
        return None
    try:
        connections = psutil.net_connections(kind="inet")
    except (psutil.Error, OSError):
        return None
    for c in connections:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            try:
                process = psutil.Process(c.pid)
                command = " ".join(process.cmdline())
                name = process.name()
            except psutil.Error:
                return f"pid {c.pid}"
            if len(command) > 100:
                command = command[:99] + "…"
            return f"{name} (pid {c.pid}: {command})" if command else f"{name} (pid {c.pid})"
    return None


def _require_port(command: str, host: str, port: int) -> None:
    problem = port_problem(host, port)
    if problem is not None:
        print(
            f"alliance-gateway {command}: {problem}. Stop it, or choose another port with --port.",
            file=sys.stderr,
        )
        raise SystemExit(1)


def cmd_serve(args: argparse.Namespace) -> None:
    config = _config_path(args.config)
    settings = load_settings(config, workers=args.workers)
    _require_port("serve", args.host, args.port)
    _serve(settings, args.host, args.port, config, **_given(workers=args.workers))


def cmd_migrate(args: argparse.Namespace) -> None:
    settings = load_settings(_config_path(args.config))

    async def run() -> list[str]:
        conn = await asyncpg.connect(settings.registry.dsn)
        try:
            return await apply_migrations(conn)
        finally:
            await conn.close()

    applied = asyncio.run(run())
    print("applied: " + ", ".join(applied) if applied else "registry is up to date")


def cmd_init(args: argparse.Namespace) -> None:
    from gateway.founding_file import load_founding
    from resolvers import founding

    settings = load_settings(_config_path(args.config))
    path = Path(args.file)
    try:
        plan = load_founding(path)
        if plan.alliance.id != settings.alliance_id:
            raise founding.FoundingRefused(
                f"{path} founds alliance {plan.alliance.id!r}, but the configuration serves "
                f"alliance_id {settings.alliance_id!r}; nothing was written.",
                [],
            )
        plan = founding.validate(plan, settings.rules)
        if not settings.registry.dsn:
            _fail("init", "no registry DSN: set [registry] dsn or ALLIANCE_REGISTRY__DSN")

        async def run() -> founding.Outcome:
            conn = await asyncpg.connect(settings.registry.dsn)
            try:
                await apply_migrations(conn)
                return await founding.register(RegistryStore(conn), plan)
            finally:
                await conn.close()

        outcome = asyncio.run(run())
    except founding.FoundingRefused as e:
        _fail("init", str(e))
    alliance = plan.alliance
    if outcome is founding.Outcome.UNCHANGED:
        print(f"alliance {alliance.id} is registered as {path} founds it; nothing to do")
        return
    print(
        f"registered alliance {alliance.id} ({alliance.name}): lead hospital {plan.lead.code}, "
        f"{len(plan.members)} founding members with their agreements, "
        f"{len(plan.council)} council seats"
    )


# `demo` and `token` import the embedded demo (gateway.demo) only when they run: the serving code
# never loads it, and a production install, without the demo's dependencies, still serves.
# The top-level modules of those dependencies (the `demo` extra and group in pyproject.toml):
_DEMO_MODULES = frozenset({"pgserver", "tomli_w", "psutil"})


def _demo_not_installed(error: ModuleNotFoundError) -> NoReturn:
    if (error.name or "").partition(".")[0] not in _DEMO_MODULES:
        raise error
    print(
        f"alliance-gateway demo: the demo's dependencies are not installed (no module {error.name})."
        " Install them with `uv sync --group demo` in a checkout of the project, or with"
        " `pip install 'alliance-gateway[demo]'`.",
        file=sys.stderr,
    )
    raise SystemExit(1)


def cmd_demo(args: argparse.Namespace) -> None:
    if args.simulate_activity and args.seed_only:
        # Before preparing anything: the simulator runs only while the gateway serves.
        args.usage_error("--simulate-activity needs the gateway to serve; drop --seed-only")
    if not args.seed_only:
        # Before anything is prepared: seeding takes a while, and then could not be served.
        _require_port("demo", args.host, args.port)
    try:
        from gateway.demo import provision
    except ModuleNotFoundError as e:
        _demo_not_installed(e)
    logging.getLogger("pgserver").setLevel(logging.WARNING)

    url = f"http://{args.host}:{args.port}/graphql"
    prepared = asyncio.run(
        provision.prepare(
            Path(args.data_dir),
            reset=args.reset,
            registry_dsn=args.registry_dsn,
            graphql_url=url,
            extra_members=args.members,
        )
    )
    print(f"demo ready in {prepared.paths.root}: tokens in {prepared.paths.demo_json}")
    if args.seed_only:
        return
    # The demo's GraphiQL page offers its tokens without login (on the demo only).
    demo_tokens = str(prepared.paths.demo_json)
    settings = load_settings(
        prepared.paths.config, graphiql_demo_tokens=demo_tokens, workers=args.workers
    )
    if GraphiQLPage(settings.graphiql_assets).installed:
        print(f"GraphiQL at {url}  (Ctrl-C stops the gateway and the embedded PostgreSQL)")
    else:
        print(
            f"GraphQL at {url}; GraphiQL's assets are not installed: {BUILD_COMMAND}"
            "  (Ctrl-C stops the gateway and the embedded PostgreSQL)"
        )
    if args.simulate_activity:
        print(f"the demo hospitals write new activity about every {args.activity_interval:g}s")
        _serve_simulating(settings, args.host, args.port, args.activity_interval)
    else:
        _serve(
            settings,
            args.host,
            args.port,
            prepared.paths.config,
            **_given(graphiql_demo_tokens=demo_tokens, workers=args.workers),
        )


# Where `token` looks for the demo's directory when --data-dir is not given: `demo-data` in the
# working directory or one of its parents, then in the checkout this package was loaded from.
DEMO_DATA = "demo-data"
_CHECKOUT = Path(__file__).resolve().parents[1]


def demo_data_dir(value: str | None) -> Path:
    """The demo's data directory: --data-dir resolved, or found; SystemExit saying where it
    looked when there is none."""
    if value is not None:
        chosen = Path(value).expanduser().resolve()
        if not _has_signing_key(chosen):
            _fail(
                "token",
                f"{chosen} holds no demo.json (nor an alliance.toml beside a signing-key.pem): it "
                "is not a demo data directory. Prepare one with "
                f"`alliance-gateway demo --data-dir {value} --seed-only`, or name the directory "
                "`demo` wrote (by default demo-data in the directory you ran it from).",
            )
        return chosen
    cwd = Path.cwd().resolve()
    candidates = [d / DEMO_DATA for d in (cwd, *cwd.parents)]
    candidates.append(_CHECKOUT / DEMO_DATA)
    for candidate in candidates:
        if (candidate / "demo.json").is_file():
            return candidate
    _fail(
        "token",
        f"found no {DEMO_DATA}/demo.json in {cwd}, its parents or {_CHECKOUT}. Run "
        "`alliance-gateway demo` first, or pass --data-dir DIR (the directory `demo` wrote).",
    )


def _has_signing_key(directory: Path) -> bool:
    """The demo's directory, or one laid out as it is (docker compose's trial key and config)."""
    if (directory / "demo.json").is_file():
        return True
    return (directory / "alliance.toml").is_file() and (directory / "signing-key.pem").is_file()


def _fail(command: str, message: str) -> NoReturn:
    print(f"alliance-gateway {command}: {message}", file=sys.stderr)
    raise SystemExit(1)


async def _registered_hospitals(dsn: str | None, code: str) -> set[str] | None:
    """The hospital codes in the registry among [code] and all others, or None when the registry
    cannot be reached (the demo is not running)."""
    if not dsn:
        return None
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return None
    try:
        store = RegistryStore(conn)
        if await store.hospitals([code]):
            return {code}
        return set(await store.hospital_codes())
    finally:
        await conn.close()


def _demo_json_hospitals(data_dir: Path) -> set[str]:
    if not (data_dir / "demo.json").is_file():
        return set()
    info = json.loads((data_dir / "demo.json").read_text(encoding="utf-8"))
    codes = {m["code"] for m in info.get("members", [])}
    return codes | {t["member"] for t in info.get("tokens", []) if t.get("member")}


def cmd_token(args: argparse.Namespace) -> None:
    # The demo's own signing key: needs none of the demo's dependencies.
    from gateway.demo import tokens

    role = Role(args.role)
    if role in HOSPITAL_ROLES and not args.member:
        args.usage_error(
            f"a {role} token acts for one hospital: name it with --member CODE "
            "(a hospital code in the registry, e.g. LHZX)"
        )
    data_dir = demo_data_dir(args.data_dir)
    settings = load_settings(data_dir / "alliance.toml")
    if args.member:
        known = asyncio.run(_registered_hospitals(settings.registry.dsn, args.member))
        where = "the registry"
        if known is None:
            known, where = _demo_json_hospitals(data_dir), f"{data_dir / 'demo.json'}"
            print(
                f"alliance-gateway token: the registry is not reachable (is `demo` running?); "
                f"checked --member against {where}",
                file=sys.stderr,
            )
        if args.member not in known:
            _fail(
                "token",
                f"hospital {args.member!r} is not in {where}; known hospitals: "
                + ", ".join(sorted(known)),
            )
    subject = args.subject or f"{role.lower()}-{(args.member or 'alliance').lower()}"
    print(
        tokens.mint(
            data_dir / tokens.PRIVATE_KEY_FILE,
            issuer=settings.auth.issuer,
            audience=settings.auth.audience,
            subject=subject,
            roles=[role.value],
            hospital=args.member,
            purpose=args.purpose,
            ttl_seconds=args.ttl,
        )
    )


class _HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, when it has one worth saying."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        default = action.default
        if (
            "%(default)" not in help_text
            and action.option_strings
            and default not in (None, False, argparse.SUPPRESS)
        ):
            help_text += " (default: %(default)s)"
        return help_text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alliance-gateway", description=__doc__, formatter_class=_HelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=_HelpFormatter
        )

    demo = command("demo", "run the gateway on an embedded demo alliance")
    demo.add_argument("--host", default="127.0.0.1", help="address to serve on")
    demo.add_argument("--port", type=int, default=8000, help="port to serve on")
    demo.add_argument(
        "--workers",
        type=int,
        default=None,
        help="server processes (default: one per core; the simulator needs and gets one)",
    )
    demo.add_argument(
        "--data-dir",
        default=DEMO_DATA,
        help="where PostgreSQL data, alliance.toml, keys and demo.json (tokens) live",
    )
    demo.add_argument("--reset", action="store_true", help="delete the directory and start over")
    demo.add_argument(
        "--registry-dsn",
        help="use this PostgreSQL (a superuser DSN) instead of the embedded one",
    )
    demo.add_argument("--seed-only", action="store_true", help="prepare everything, do not serve")
    demo.add_argument(
        "--members",
        type=int,
        default=0,
        metavar="N",
        help="add N synthetic member hospitals, for scale tests",
    )
    demo.add_argument(
        "--simulate-activity",
        action="store_true",
        help="while serving, let the demo hospitals' own systems write new referrals, "
        "consultations, reports and results into their exchange databases",
    )
    demo.add_argument(
        "--activity-interval",
        type=_positive_seconds,
        default=3.0,
        metavar="SECONDS",
        help="about how often a simulated write happens",
    )
    demo.set_defaults(func=cmd_demo, usage_error=demo.error)

    serve = command("serve", "run the gateway with a configuration file")
    serve.add_argument("--config", help="alliance.toml (default: $ALLIANCE_CONFIG)")
    serve.add_argument("--host", default="127.0.0.1", help="address to serve on")
    serve.add_argument("--port", type=int, default=8000, help="port to serve on")
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="server processes (default: `workers` in the configuration; 0 there: one per core)",
    )
    serve.set_defaults(func=cmd_serve)

    migrate = command("migrate", "apply the registry's SQL migrations")
    migrate.add_argument("--config", help="alliance.toml (default: $ALLIANCE_CONFIG)")
    migrate.set_defaults(func=cmd_migrate)

    init = command(
        "init",
        "register an alliance (its lead hospital, council, founding members and their "
        "agreements) in the registry from a founding file; the same file again changes nothing",
    )
    init.add_argument("file", metavar="FOUNDING_FILE", help="e.g. docker/founding.example.toml")
    init.add_argument("--config", help="alliance.toml (default: $ALLIANCE_CONFIG)")
    init.set_defaults(func=cmd_init)

    token = command("token", "mint a token with the demo's signing key; prints just the token")
    token.add_argument(
        "--data-dir",
        help=f"the demo's directory (default: {DEMO_DATA} in the working directory or a parent "
        "of it, else in the checkout)",
    )
    token.add_argument("--role", required=True, choices=[r.value for r in Role], help="its role")
    token.add_argument(
        "--member",
        help="the hospital code the token speaks for, as registered; required for "
        + ", ".join(sorted(HOSPITAL_ROLES)),
    )
    token.add_argument(
        "--purpose",
        choices=[p.value for p in Purpose],
        help="the purpose_of_use claim (none if not given)",
    )
    token.add_argument("--subject", help="`sub` claim (default: ROLE-MEMBER, lower case)")
    token.add_argument("--ttl", type=int, default=24 * 3600, help="lifetime in seconds")
    token.set_defaults(func=cmd_token, usage_error=token.error)
    return parser


def main(argv: list[str] | None = None) -> None:
    configure_logging(logging.INFO)
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        pass
    except (OSError, ValueError, asyncpg.PostgresError) as e:
        print(f"alliance-gateway: {e}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
