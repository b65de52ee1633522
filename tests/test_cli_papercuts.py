"""The command line as a newcomer meets it (issue 11): `demo` on a busy port, `token` from anywhere
and only for hospitals that exist, defaults in every --help, and a malformed token's message."""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.cli import build_parser
from tests.conftest import Api, Demo

CLI = [sys.executable, "-m", "gateway.cli"]


def _run(
    *args: str, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        # The checkout on the path: the tests run the CLI from other working directories.
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )


def _claims(token: str) -> dict[str, object]:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_demo_on_a_busy_port_says_who_holds_it_before_doing_any_work(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        data_dir = tmp_path / "never-made"
        started = time.monotonic()
        result = _run("demo", "--port", str(port), "--data-dir", str(data_dir))
        elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    # psutil names the holder: this test's own process.
    assert f"pid {os.getpid()}" in result.stderr, result.stderr
    assert "--port" in result.stderr
    assert not data_dir.exists(), "nothing is prepared when the port is taken"
    assert "GraphiQL" not in result.stdout
    assert elapsed < 20


@pytest.mark.parametrize("role", ["CLINICIAN", "MEMBER_ADMIN", "PARTNER_SYSTEM"])
def test_token_refuses_a_hospital_role_without_member(demo_env: Demo, role: str) -> None:
    result = _run("token", "--data-dir", str(demo_env.root), "--role", role)
    assert result.returncode == 2
    assert "--member" in result.stderr and role in result.stderr
    assert result.stdout == ""


def test_token_refuses_a_hospital_not_in_the_registry(demo_env: Demo) -> None:
    result = _run(
        "token", "--data-dir", str(demo_env.root), "--role", "CLINICIAN", "--member", "NOPE"
    )
    assert result.returncode == 1
    assert "'NOPE' is not in the registry" in result.stderr
    assert "LHZX" in result.stderr, "the message lists the hospitals there are"
    assert result.stdout == ""


def test_token_prints_just_the_token_from_any_working_directory(
    demo_env: Demo, tmp_path: Path
) -> None:
    # --data-dir relative to the working directory, resolved.
    (tmp_path / "here").symlink_to(demo_env.root)
    result = _run(
        "token", "--data-dir", "here", "--role", "CLINICIAN", "--member", "LHZX", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+\n", result.stdout), result.stdout
    claims = _claims(result.stdout.strip())
    assert claims["hospital"] == "LHZX" and claims["roles"] == ["CLINICIAN"]

    # Without --data-dir: demo-data found in a parent of the working directory.
    (tmp_path / "demo-data").symlink_to(demo_env.root)
    deeper = tmp_path / "a" / "b"
    deeper.mkdir(parents=True)
    result = _run("token", "--role", "ALLIANCE_ADMIN", cwd=deeper)
    assert result.returncode == 0, result.stderr
    assert _claims(result.stdout.strip())["roles"] == ["ALLIANCE_ADMIN"]


def test_token_names_a_directory_without_demo_json(tmp_path: Path) -> None:
    result = _run("token", "--data-dir", str(tmp_path), "--role", "OPS")
    assert result.returncode == 1
    assert f"{tmp_path} holds no demo.json" in result.stderr
    assert "alliance-gateway demo" in result.stderr
    assert "Traceback" not in result.stderr


def test_token_checks_demo_json_when_the_registry_is_down(demo_env: Demo, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("demo.json", "signing-key.pem", "signing-key.pub.pem"):
        shutil.copy(demo_env.root / name, copy / name)
    config = (demo_env.root / "alliance.toml").read_text(encoding="utf-8")
    config = re.sub(
        r'(\[registry\]\ndsn = )"[^"]*"', r'\1"postgresql://x:y@127.0.0.1:9/nothing"', config
    )
    (copy / "alliance.toml").write_text(config, encoding="utf-8")
    known = _run("token", "--data-dir", str(copy), "--role", "PARTNER_SYSTEM", "--member", "LHZY")
    assert known.returncode == 0, known.stderr
    assert "not reachable" in known.stderr
    unknown = _run("token", "--data-dir", str(copy), "--role", "CLINICIAN", "--member", "NOPE")
    assert unknown.returncode == 1
    assert "'NOPE' is not in" in unknown.stderr and "demo.json" in unknown.stderr


def test_every_subcommands_help_shows_the_defaults() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        text = " ".join(sub.format_help().split())
        for action in sub._actions:
            if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
                assert f"(default: {action.default})" in text, (name, action.dest, text)
        for option in ("--data-dir", "--config"):
            if option in text:
                assert "(default:" in text.split(option, 2)[-1], (name, option)


def _segment(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "token",
    [
        # Issue 11's: a header that is not UTF-8.
        _segment(b"\xb7\xd0\x01") + "." + _segment(b"{}") + ".c2ln",
        "abc",
        "a.b.c.d",
    ],
)
async def test_a_malformed_token_is_not_a_valid_jwt(api: Api, token: str) -> None:
    response = await api.post("{ alliance { name } }", token=token)
    assert response.status_code == 401
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["message"].startswith("The token is not a valid JWT"), error
    for internal in ("utf-8", "codec", "Invalid header", "byte", "segments", "0xb7"):
        assert internal not in error["message"], error
