"""Fixtures: the demo prepared on a PostgreSQL server the tests start (pgserver), the real app served
by uvicorn on a loopback port, and clients that speak to it over HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from gateway.app import create_app
from gateway.demo import provision, tokens
from gateway.settings import load_settings
from gateway.ws_protocol import GatewayWebSocketProtocol

# The session's MariaDB server (fixtures), for the tests of the MySQL adapter.
from tests.mariadb_server import mariadb, mariadb_if_installed  # noqa: F401


@dataclass
class Demo:
    root: Path
    info: dict[str, Any]

    @property
    def registry_dsn(self) -> str:
        return self.info["registry_dsn"]

    def token(self, role: str, member: str | None = None) -> str:
        for entry in self.info["tokens"]:
            if entry["role"] == role and (member is None or entry["member"] == member):
                return entry["token"]
        raise KeyError((role, member))

    def mint(self, subject: str, *roles: str, **claims: Any) -> str:
        """A token of the demo's issuer for `subject` beyond the demo's own (claims: hospital,
        purpose, ttl_seconds)."""
        return tokens.mint(
            self.root / tokens.PRIVATE_KEY_FILE,
            issuer=provision.ISSUER,
            audience=provision.AUDIENCE,
            subject=subject,
            roles=list(roles),
            **claims,
        )


@pytest.fixture(scope="session")
async def demo_env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Demo]:
    root = tmp_path_factory.mktemp("demo")
    prepared = await provision.prepare(root, reset=False, registry_dsn=None, graphql_url="")
    yield Demo(root=root, info=json.loads(prepared.paths.demo_json.read_text()))
    assert prepared.embedded is not None
    prepared.embedded.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def serving(app: ASGIApp, *, compression: bool = False) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free loopback port for the duration of the block."""
    port = free_port()
    # WebSockets as the CLI serves them (gateway/cli.py): its protocol, without compression
    # unless asked (the `websocket_compression` setting).
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            ws=GatewayWebSocketProtocol,
            ws_per_message_deflate=compression,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="session")
async def base_url(demo_env: Demo) -> AsyncIterator[str]:
    # The shared app does not watch the members: the event tests start watching replicas of
    # their own, and a watch held here would keep it from them.
    settings = load_settings(demo_env.root / "alliance.toml", events={"watch": False})
    async with serving(create_app(settings)) as url:
        yield url


@dataclass
class Api:
    http: httpx.AsyncClient
    demo: Demo

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None,
        accept: str = "application/graphql-response+json",
    ) -> httpx.Response:
        headers = {"accept": accept}
        if token:
            headers["authorization"] = f"Bearer {token}"
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    async def run(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        role: str,
        member: str | None = None,
    ) -> dict[str, Any]:
        response = await self.post(query, variables, token=self.demo.token(role, member))
        assert response.status_code in (200, 400), response.text
        return response.json()


@pytest.fixture(scope="session")
async def api(base_url: str, demo_env: Demo) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        yield Api(http=http, demo=demo_env)


@pytest.fixture
async def registry_db(demo_env: Demo) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(demo_env.registry_dsn)
    yield conn
    await conn.close()


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
