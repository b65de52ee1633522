"""The embedded PostgreSQL of the demo: server binaries from the `pgserver` package, data in the
demo's directory, reached over a Unix socket."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import quote, urlsplit

import asyncpg
import pgserver
import psutil

from adapters import postgres_admin

log = logging.getLogger(__name__)

_HBA = """\
# Written by alliance-gateway: the superuser on the local socket, every other role by password,
# so each hospital's credentials are really checked.
local all postgres trust
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""


def _forget_dead_handles(data_dir: Path) -> None:
    """pgserver stops the server when the last process that used it exits, counting processes in
    a file; a process killed without running its exit handlers would otherwise keep it alive."""
    handles = data_dir / ".handle_pids.json"
    if not handles.exists():
        return
    alive = [pid for pid in json.loads(handles.read_text()) if psutil.pid_exists(pid)]
    handles.write_text(json.dumps(alive))


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        _forget_dead_handles(data_dir)
        # cleanup_mode="stop": the server stops when the last process using it exits (Ctrl-C).
        self._server = pgserver.get_server(data_dir, cleanup_mode="stop")
        self.admin_dsn = self._server.get_uri()
        self.socket_dir = dict(
            p.split("=", 1) for p in urlsplit(self.admin_dsn).query.split("&") if "=" in p
        )["host"]

    def dsn(self, role: str, password: str, database: str) -> str:
        return f"postgresql://{quote(role)}:{quote(password)}@/{quote(database)}?host={self.socket_dir}"

    async def require_passwords(self) -> None:
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            hba = Path(await postgres_admin.hba_file(admin))
            if hba.read_text() != _HBA:
                hba.write_text(_HBA)
                await postgres_admin.reload_config(admin)
        finally:
            await admin.close()

    async def ensure_capacity(self, max_connections: int) -> None:
        """Each member database is its own pool: many members need many connections. The
        setting takes effect on a restart, done here once."""
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            current = int(await admin.fetchval("SHOW max_connections"))
            if current >= max_connections:
                return
            await postgres_admin.set_max_connections(admin, max_connections)
        finally:
            await admin.close()
        data_dir = Path(self._server.pgdata)
        self._server.cleanup()
        self._server = pgserver.get_server(data_dir, cleanup_mode="stop")

    def stop(self) -> None:
        self._server.cleanup()
