"""A member hospital's PostgreSQL server of its own, which a test may kill -9 and start again.

Built from the server binaries the `pgserver` package ships, but run as a child of the test
process rather than through pgserver (whose servers are daemons): a postmaster killed here is
reaped here, so its data directory can be started again at once, without waiting for init to reap
a zombie. Reached over a Unix socket in its data directory, local connections trusted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import asyncpg
import pgserver
import psutil

BIN = Path(pgserver.__file__).parent / "pginstall" / "bin"
# PostgreSQL refuses to run as root; pgserver runs its servers as this system user then.
SYSTEM_USER = "pgserver"


class MemberServer:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.log = data_dir.parent / f"{data_dir.name}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._user: str | None = SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def socket_dir(self) -> str:
        return str(self.data_dir)

    def dsn(self, role: str = "postgres", password: str = "", database: str = "postgres") -> str:
        credentials = f"{quote(role)}:{quote(password)}" if password else quote(role)
        return f"postgresql://{credentials}@/{quote(database)}?host={quote(self.socket_dir)}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

            entry = ensure_user_exists(self._user)
            assert entry is not None
            ensure_prefix_permissions(self.data_dir)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            [
                str(BIN / "initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "--encoding=utf8",
                "-U",
                "postgres",
            ],
            check=True,
            capture_output=True,
            user=self._user,
            cwd=self.data_dir,
        )

    async def start(self) -> None:
        """Start the server (after initdb on first use) and wait until it accepts connections;
        after a kill this is crash recovery."""
        if not (self.data_dir / "PG_VERSION").exists():
            await asyncio.to_thread(self._initdb)
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    str(BIN / "postgres"),
                    "-D",
                    str(self.data_dir),
                    "-k",
                    self.socket_dir,
                    "-c",
                    "listen_addresses=",
                    "-c",
                    "max_connections=40",
                    "-c",
                    "fsync=off",
                ],
                stdout=log,
                stderr=log,
                user=self._user,
                cwd=self.data_dir,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = await asyncpg.connect(self.dsn(), timeout=2)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                if not self.running():
                    raise RuntimeError(f"the server did not start; see {self.log}") from None
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
            else:
                await conn.close()
                return

    async def kill(self) -> None:
        """kill -9 of the postmaster and all its children at once, as a crash would."""
        assert self._process is not None
        postmaster = psutil.Process(self._process.pid)
        processes = [postmaster, *postmaster.children(recursive=True)]
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self._process.wait, 10)  # reaped here, not left a zombie

    async def stop(self, *, delete: bool = True) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                await asyncio.to_thread(self._process.wait, 15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                await asyncio.to_thread(self._process.wait)
        if delete:
            shutil.rmtree(self.data_dir, ignore_errors=True)
