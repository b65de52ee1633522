"""A MariaDB server of the demo's (and the tests') own, from Debian's `mariadb-server` binaries when
they are installed: `mariadb-install-db` into a data directory of its own, then `mariadbd` on a
loopback port, as a child of this process. The Debian service itself is never used.

Root logs in only over the Unix socket (no password); every other account by password over TCP,
so each hospital's credentials are really checked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from urllib.parse import quote

import aiomysql
import pymysql

from gateway.demo.ports import free_port, port_free

SEARCH_PATH = ("/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin")
INSTALL_HINT = "sudo apt-get install mariadb-server (Debian/Ubuntu; the service need not run)"


def binaries() -> tuple[str, str] | None:
    """(mariadbd, mariadb-install-db), or None when MariaDB's server is not installed here."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *SEARCH_PATH])
    server = shutil.which("mariadbd", path=path)
    install = shutil.which("mariadb-install-db", path=path)
    return (server, install) if server and install else None


class EmbeddedMariaDB:
    """One mariadbd over `data_dir`. `start()` installs the system tables on first use and reuses a
    server still running from an earlier process over the same directory."""

    def __init__(self, data_dir: Path) -> None:
        found = binaries()
        if found is None:
            raise RuntimeError(f"MariaDB's server binaries are not installed: {INSTALL_HINT}")
        self.server_bin, self.install_bin = found
        self.data_dir = data_dir.resolve()
        self.log = self.data_dir.parent / f"{self.data_dir.name}.log"
        self._state_file = self.data_dir.parent / f"{self.data_dir.name}.json"
        self._process: subprocess.Popen[bytes] | None = None
        state = json.loads(self._state_file.read_text()) if self._state_file.exists() else {}
        # The port of an earlier run, if still free (or held by that run's server, still up).
        port = state.get("port")
        self.port: int = port if port and (self.running() or port_free(port)) else free_port()
        self.socket: str = state.get("socket") or self._socket_path()

    def _socket_path(self) -> str:
        # A Unix socket's path has at most 107 bytes.
        inside = self.data_dir / "mysqld.sock"
        if len(str(inside)) < 100:
            return str(inside)
        return str(Path(tempfile.mkdtemp(prefix="alliance-mariadb-")) / "mysqld.sock")

    def dsn(self, user: str, password: str, database: str) -> str:
        return f"mysql://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}/{quote(database)}"

    @property
    def pid(self) -> int | None:
        pid_file = self.data_dir / "mariadbd.pid"
        if self._process is not None:
            return self._process.pid
        with contextlib.suppress(OSError, ValueError):
            return int(pid_file.read_text().strip())
        return None

    def running(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        pid = self.pid
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True

    def _user_args(self) -> list[str]:
        return ["--user=root"] if os.geteuid() == 0 else []

    def _install(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                self.install_bin,
                "--no-defaults",
                f"--datadir={self.data_dir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
                *self._user_args(),
            ],
            check=True,
            capture_output=True,
        )

    async def admin(self) -> aiomysql.Connection:
        """Root, over the Unix socket."""
        return await aiomysql.connect(
            unix_socket=self.socket, user="root", charset="utf8mb4", autocommit=True
        )

    async def start(self, *, within_seconds: float = 30.0) -> None:
        """Start the server (after installing on first use) and wait until it accepts
        connections; after a kill this is crash recovery."""
        first = not (self.data_dir / "mysql").exists()
        if first:
            await asyncio.to_thread(self._install)
        if self.running() and await self._answers():
            return  # left running by an earlier process over this directory
        self._state_file.write_text(json.dumps({"port": self.port, "socket": self.socket}))
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    self.server_bin,
                    "--no-defaults",
                    f"--datadir={self.data_dir}",
                    f"--socket={self.socket}",
                    f"--port={self.port}",
                    "--bind-address=127.0.0.1",
                    f"--pid-file={self.data_dir / 'mariadbd.pid'}",
                    "--character-set-server=utf8mb4",
                    "--collation-server=utf8mb4_bin",
                    "--skip-name-resolve",
                    "--skip-log-bin",
                    "--innodb-buffer-pool-size=64M",
                    "--innodb-log-file-size=16M",
                    "--innodb-flush-log-at-trx-commit=2",
                    "--max-connections=200",
                    *self._user_args(),
                ],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + within_seconds
        while not await self._answers():
            if self._process.poll() is not None:
                raise RuntimeError(f"mariadbd did not start; see {self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"mariadbd did not answer in {within_seconds:g} s; see {self.log}"
                )
            await asyncio.sleep(0.05)
        if first:
            await self._lock_root_to_the_socket()

    async def _answers(self) -> bool:
        try:
            conn = await asyncio.wait_for(self.admin(), 2)
        except (OSError, TimeoutError, pymysql.err.MySQLError):
            return False
        conn.close()
        return True

    async def _lock_root_to_the_socket(self) -> None:
        conn = await self.admin()
        try:
            async with conn.cursor() as cur:
                await cur.execute(
                    "SELECT host FROM mysql.user WHERE user = 'root' AND host <> 'localhost'"
                )
                for (host,) in await cur.fetchall():
                    await cur.execute("DROP USER 'root'@%s", [host])
        finally:
            conn.close()

    async def ensure_database(self, database: str, user: str, password: str) -> None:
        """A database of the exchange contract's character set, owned by `user` (with
        `password`), which may use no other."""
        if not database.replace("_", "").isalnum():
            raise ValueError(f"unsafe database name {database!r}")
        conn = await self.admin()
        try:
            # A re-run finds both: the server's notes saying so are not worth a warning.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", pymysql.Warning)
                async with conn.cursor() as cur:
                    await cur.execute(
                        f"CREATE DATABASE IF NOT EXISTS `{database}` "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                    )
                    await cur.execute(
                        "CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", [user, password]
                    )
                    await cur.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", [user, password])
                    await cur.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO %s@'%%'", [user])
        finally:
            conn.close()

    async def kill(self) -> None:
        """kill -9, as a crash would."""
        pid = self.pid
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if self._process is not None:
            await asyncio.to_thread(self._process.wait, 10)  # reaped here, not left a zombie
        self._process = None

    async def stop(self, *, delete: bool = False) -> None:
        if self.running():
            pid = self.pid
            assert pid is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while self.running() and time.monotonic() < deadline:
                if self._process is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        await asyncio.to_thread(self._process.wait, 0.2)
                else:
                    await asyncio.sleep(0.1)
            if self.running():
                await self.kill()
        self._process = None
        if delete:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self._state_file.unlink(missing_ok=True)

    def stop_now(self) -> None:
        """Stop from synchronous code (an exit handler): SIGTERM, then wait a little."""
        pid = self.pid
        if pid is None or not self.running():
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(30)
        self._process = None
