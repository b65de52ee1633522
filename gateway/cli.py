"""`alliance-gateway`: demo, serve, migrate, token."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import asyncpg
import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import STARTUP_FAILURE

from adapters.registry.migrate import apply_migrations
from gateway.app import create_app
from gateway.logs import configure_logging
from gateway.settings import Settings, load_settings
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
    "ws": "websockets-sansio",
    "proxy_headers": True,
}


def _frozen_app(settings: Settings) -> ASGIApp:
    app = create_app(settings)
    # The schema, settings and modules live as long as the process: keep them out of every
    # garbage collection, which otherwise rescans them while requests wait.
    gc.freeze()
    return app


def _serve(settings: Settings, host: str, port: int) -> None:
    uvicorn.run(_frozen_app(settings), host=host, port=port, **_UVICORN_OPTIONS)


def _serve_simulating(settings: Settings, host: str, port: int, interval: float) -> None:
    """Serve as _serve does, while the demo hospitals' own systems write activity. uvicorn.run
    owns its event loop, so the server and the simulator share one made here, as uvicorn would."""
    from gateway.demo.simulate import Simulation, simulate_activity

    simulation = Simulation.from_settings(settings)
    server = uvicorn.Server(
        uvicorn.Config(_frozen_app(settings), host=host, port=port, **_UVICORN_OPTIONS)
    )

    async def serve() -> None:
        async with simulate_activity(simulation, interval):
            await server.serve()

    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(serve())
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


def cmd_serve(args: argparse.Namespace) -> None:
    _serve(load_settings(_config_path(args.config)), args.host, args.port)


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
    print(f"GraphiQL at {url}  (Ctrl-C stops the gateway and the embedded PostgreSQL)")
    settings = load_settings(prepared.paths.config)
    if args.simulate_activity:
        print(f"the demo hospitals write new activity about every {args.activity_interval:g}s")
        _serve_simulating(settings, args.host, args.port, args.activity_interval)
    else:
        _serve(settings, args.host, args.port)


def cmd_token(args: argparse.Namespace) -> None:
    # The demo's own signing key: needs none of the demo's dependencies.
    from gateway.demo import tokens

    data_dir = Path(args.data_dir)
    settings = load_settings(data_dir / "alliance.toml")
    subject = args.subject or f"{args.role.lower()}-{(args.member or 'alliance').lower()}"
    print(
        tokens.mint(
            data_dir / tokens.PRIVATE_KEY_FILE,
            issuer=settings.auth.issuer,
            audience=settings.auth.audience,
            subject=subject,
            roles=[args.role],
            hospital=args.member,
            purpose=args.purpose,
            ttl_seconds=args.ttl,
        )
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alliance-gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the gateway on an embedded demo alliance")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--data-dir", default="demo-data")
    demo.add_argument("--reset", action="store_true", help="delete the directory and start over")
    demo.add_argument(
        "--registry-dsn", help="use this PostgreSQL (superuser) instead of the embedded one"
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
        help="about how often a simulated write happens (default: 3.0)",
    )
    demo.set_defaults(func=cmd_demo, usage_error=demo.error)

    serve = sub.add_parser("serve", help="run the gateway with a configuration file")
    serve.add_argument("--config", help="alliance.toml (default: $ALLIANCE_CONFIG)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply the registry's SQL migrations")
    migrate.add_argument("--config", help="alliance.toml (default: $ALLIANCE_CONFIG)")
    migrate.set_defaults(func=cmd_migrate)

    token = sub.add_parser("token", help="mint a token with the demo's signing key")
    token.add_argument("--data-dir", default="demo-data")
    token.add_argument("--role", required=True, choices=[r.value for r in Role])
    token.add_argument("--member", help="the hospital code the token speaks for")
    token.add_argument("--purpose", choices=[p.value for p in Purpose])
    token.add_argument("--subject")
    token.add_argument("--ttl", type=int, default=24 * 3600, help="lifetime in seconds")
    token.set_defaults(func=cmd_token)
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
