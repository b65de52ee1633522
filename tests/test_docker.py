"""docker/ kept consistent (issue 11): the compose file validates, publishes on loopback unless told
otherwise, founds the alliance with `init` in the production image, and its gateways really read
each hospital's own exchange database with that hospital's own credentials."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML (via uvicorn[standard]) ships no types

from gateway.founding_file import load_founding
from gateway.settings import load_settings
from resolvers.founding import validate

DOCKER = Path(__file__).resolve().parents[1] / "docker"


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))


def test_published_ports_are_on_loopback_unless_configured() -> None:
    services = _compose()["services"]
    published = [(name, p) for name, s in services.items() for p in s.get("ports", [])]
    assert {name for name, _ in published} == {"gateway-1", "gateway-2", "jaeger"}
    for name, port in published:
        assert port.startswith("${BIND_ADDRESS:-127.0.0.1}:"), (name, port)


def test_the_seed_founds_the_alliance_with_init_in_the_production_image() -> None:
    services = _compose()["services"]
    seed = services["seed"]
    assert seed["image"] == "alliance-gateway:local"
    assert seed["build"]["target"] == "runtime"
    script = "\n".join(seed["command"])
    assert "alliance-gateway init /etc/alliance/founding.toml" in script
    assert "./founding.example.toml:/etc/alliance/founding.toml:ro" in seed["volumes"]
    for service in services.values():
        assert service.get("image") != "alliance-gateway:demo"
        assert "demo" not in (service.get("command") or [])


def test_each_hospital_has_its_own_exchange_database_that_the_gateways_use() -> None:
    services = _compose()["services"]
    config = load_settings(DOCKER / "alliance.toml")
    gateway_env = services["gateway-1"]["environment"]
    assert services["gateway-2"]["environment"] == gateway_env
    users = set()
    for member in config.members:
        service = services[f"hospital-{member.code.lower()}-db"]
        assert (
            "../adapters/exchange/exchange.sql:/docker-entrypoint-initdb.d/10-exchange.sql:ro"
            in (service["volumes"])
        )
        env = service["environment"]
        users.add(env["POSTGRES_USER"])
        assert member.dsn_env is not None
        dsn = gateway_env[member.dsn_env]
        assert dsn.startswith(
            f"postgresql://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@hospital-{member.code.lower()}-db:5432/"
        )
        assert dsn.endswith("/" + env["POSTGRES_DB"])
        assert f"hospital-{member.code.lower()}-db" in services["gateway-1"]["depends_on"]
    assert len(users) == len(config.members) == 2


def test_the_example_founding_is_the_configured_alliance_and_meets_its_rules() -> None:
    config = load_settings(DOCKER / "alliance.toml")
    founding = validate(load_founding(DOCKER / "founding.example.toml"), config.rules)
    assert founding.alliance.id == config.alliance_id
    founded = {founding.lead.code, *(m.hospital.code for m in founding.members)}
    assert {m.code for m in config.members} <= founded


def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose is not installed")
    # docker-compose v1 rejects the top-level `name:` that Compose v2 reads; check a copy without.
    text = (DOCKER / "compose.yaml").read_text(encoding="utf-8")
    copy = DOCKER / f".compose-check-{tmp_path.name}.yaml"
    copy.write_text(text.replace("\nname: alliance\n", "\n"), encoding="utf-8")
    try:
        result = subprocess.run(
            [compose, "-f", str(copy), "config", "--quiet"],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin"},
        )
    finally:
        copy.unlink()
    assert result.returncode == 0, result.stderr
