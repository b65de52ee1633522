"""`alliance-gateway init` (issue 11): an alliance founded from a file in an empty registry (a fresh
database on the tests' PostgreSQL), under the workflow's rules; the same file again changes nothing,
a different one is refused with nothing written; then `serve` answers the overview query on it."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from adapters import postgres_admin
from gateway.app import create_app
from gateway.demo import tokens
from gateway.founding_file import load_founding
from gateway.settings import load_settings
from resolvers.founding import FoundingRefused
from tests.conftest import Demo, serving

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docker" / "founding.example.toml"
CLI = [sys.executable, "-m", "gateway.cli"]
OVERVIEW = "{ alliance { name leadHospital { code } members(first: 50) { totalCount } } }"


async def _fresh_registry(demo: Demo, name: str) -> str:
    """A new, empty database with its own login role on the tests' server; its DSN."""
    password = secrets.token_urlsafe(12)
    admin = await asyncpg.connect(demo.info["admin_dsn"])
    try:
        await postgres_admin.ensure_role(admin, name, password)
        await postgres_admin.ensure_database(admin, name, owner=name)
    finally:
        await admin.close()
    url = urlsplit(demo.info["admin_dsn"])
    host = url.netloc.rpartition("@")[2]
    return urlunsplit(
        (url.scheme, f"{quote(name)}:{quote(password)}@{host}", f"/{name}", url.query, "")
    )


def _config(directory: Path, demo: Demo, dsn: str) -> Path:
    config = directory / "alliance.toml"
    config.write_text(
        f"""alliance_id = "lyzg-orthopaedics"
[registry]
dsn = "{dsn}"
[auth]
issuer = "init-test"
audience = "alliance-gateway"
public_key_file = "{demo.root / tokens.PUBLIC_KEY_FILE}"
algorithms = ["ES256"]
""",
        encoding="utf-8",
    )
    return config


def _init(founding: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "init", str(founding), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("ALLIANCE_")},
    )


@pytest.fixture
async def empty_registry(demo_env: Demo, tmp_path: Path) -> AsyncIterator[tuple[Path, str]]:
    dsn = await _fresh_registry(demo_env, f"init_{secrets.token_hex(4)}")
    yield _config(tmp_path, demo_env, dsn), dsn


async def _counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            table: await conn.fetchval(f"SELECT count(*) FROM {table}")
            for table in (
                "alliance",
                "hospital",
                "membership",
                "agreement",
                "council_seat",
                "alliance_founding",
            )
        }
    finally:
        await conn.close()


async def test_init_founds_the_alliance_once_and_serve_answers_the_overview(
    demo_env: Demo, empty_registry: tuple[Path, str], tmp_path: Path
) -> None:
    config, dsn = empty_registry
    created = _init(EXAMPLE, config)
    assert created.returncode == 0, created.stderr
    assert "registered alliance lyzg-orthopaedics" in created.stdout
    after = await _counts(dsn)
    assert after == {
        "alliance": 1,
        "hospital": 4,
        "membership": 4,
        "agreement": 3,
        "council_seat": 4,
        "alliance_founding": 1,
    }

    # The same file again: nothing to do, nothing written.
    again = _init(EXAMPLE, config)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    assert await _counts(dsn) == after

    # A different founding: refused, saying what differs, nothing written.
    text = EXAMPLE.read_text(encoding="utf-8")
    changed = tmp_path / "changed.toml"
    changed.write_text(
        text.replace('name = "河南省洛阳正骨医院骨伤专科联盟"', 'name = "另一个联盟"').replace(
            "agreement = { signed_on = 2024-06-15, term_years = 2 }",
            "agreement = { signed_on = 2024-06-15, term_years = 3 }",
        ),
        encoding="utf-8",
    )
    refused = _init(changed, config)
    assert refused.returncode == 1
    assert "was founded differently; nothing was written" in refused.stderr
    assert "alliance.name: registered '河南省洛阳正骨医院骨伤专科联盟', given '另一个联盟'" in (
        refused.stderr
    )
    assert "members[LHZY].agreement.term_years: registered 2, given 3" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert await _counts(dsn) == after
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT name FROM alliance") == "河南省洛阳正骨医院骨伤专科联盟"
    finally:
        await conn.close()

    # serve (create_app + uvicorn) answers the overview query on the founded registry.
    settings = load_settings(config)
    token = tokens.mint(
        demo_env.root / tokens.PRIVATE_KEY_FILE,
        issuer="init-test",
        audience="alliance-gateway",
        subject="init-test-admin",
        roles=["ALLIANCE_ADMIN"],
    )
    async with serving(create_app(settings)) as url, httpx.AsyncClient() as client:
        response = await client.post(
            f"{url}/graphql",
            json={"query": OVERVIEW},
            headers={"authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        assert response.json() == {
            "data": {
                "alliance": {
                    "name": "河南省洛阳正骨医院骨伤专科联盟",
                    "leadHospital": {"code": "LYZG"},
                    "members": {"totalCount": 4},
                }
            }
        }
        council = await client.post(
            f"{url}/graphql",
            json={
                "query": "{ alliance { council { role holder { name } hospital { code } } "
                "members(first: 50) { edges { node { code role agreement { status "
                "effectiveOn expiresOn } } } } } }"
            },
            headers={"authorization": f"Bearer {token}"},
        )
    alliance = council.json()["data"]["alliance"]
    assert alliance["council"][0] == {
        "role": "CHAIR",
        "holder": {"name": "李建国"},
        "hospital": {"code": "LYZG"},
    }
    members = {e["node"]["code"]: e["node"] for e in alliance["members"]["edges"]}
    assert members["LYZG"]["role"] == "LEAD" and members["LYZG"]["agreement"] is None
    assert members["LHZY"]["agreement"]["effectiveOn"] == "2024-06-15"
    assert members["LHZY"]["agreement"]["expiresOn"] == "2026-06-14"
    assert members["LHZY"]["agreement"]["status"] == "EXPIRED"


async def test_init_refuses_a_founding_against_the_workflows_rules_writing_nothing(
    empty_registry: tuple[Path, str], tmp_path: Path
) -> None:
    config, dsn = empty_registry
    text = EXAMPLE.read_text(encoding="utf-8")
    bad = (
        # The check character of 漯河市中心医院's credit code changed.
        text.replace('"12411100417001033P"', '"12411100417001033Q"')
        # 漯河市中医院 with too small a ward, and privately run.
        .replace("specialty_beds = 60", "specialty_beds = 20")
        # A term over the charter's 3 years; an agreement signed in the future.
        .replace(
            'agreement = { signed_on = 2024-05-20, term_years = 3 }\n\n[[founding_members]]\ncode = "LHGK"',
            'agreement = { signed_on = 2024-05-20, term_years = 5 }\n\n[[founding_members]]\ncode = "LHGK"',
        )
        .replace(
            'agreement = { signed_on = 2024-05-20, term_years = 3 }\n\n[[founding_members]]\ncode = "LHZY"',
            'agreement = { signed_on = 2999-01-01, term_years = 3 }\n\n[[founding_members]]\ncode = "LHZY"',
        )
        # The chair at a member, not at the lead.
        .replace('role = "CHAIR"', 'role = "VICE_CHAIR"')
    )
    path = tmp_path / "bad.toml"
    path.write_text(bad, encoding="utf-8")
    refused = _init(path, config)
    assert refused.returncode == 1
    err = refused.stderr
    assert "does not meet the alliance's rules; nothing was written" in err
    assert re.search(r"LHZX .*credit_code: hospital.creditCode has the wrong check character", err)
    assert "LHZY (漯河市中医院): inclusion criterion MIN_SPECIALTY_BEDS" in err
    assert "LHZX (漯河市中心医院): agreement.term_years: termYears must be between 1 and 3" in err
    assert "LHGK" in err and "agreement.signed_on: signedOn cannot be in the future" in err
    assert "exactly one CHAIR" in err
    assert "Traceback" not in err
    # Refused before the registry was touched: not even the migrations ran.
    conn = await asyncpg.connect(dsn)
    try:
        assert (
            await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
        )
    finally:
        await conn.close()


async def test_init_refuses_a_founding_for_another_alliance(
    empty_registry: tuple[Path, str], tmp_path: Path
) -> None:
    config, _ = empty_registry
    other = tmp_path / "other.toml"
    other.write_text(
        EXAMPLE.read_text(encoding="utf-8").replace(
            'id = "lyzg-orthopaedics"', 'id = "another-alliance"'
        ),
        encoding="utf-8",
    )
    refused = _init(other, config)
    assert refused.returncode == 1
    assert "founds alliance 'another-alliance', but the configuration serves" in refused.stderr


def test_a_file_of_the_wrong_shape_is_refused_naming_each_field(tmp_path: Path) -> None:
    path = tmp_path / "shape.toml"
    path.write_text(
        EXAMPLE.read_text(encoding="utf-8")
        .replace('level = "PROVINCIAL"', 'level = "NATIONAL"')
        .replace('ownership = "PUBLIC"', 'ownership = "STATE"', 1)
        .replace('holder = "王海"\n', ""),
        encoding="utf-8",
    )
    with pytest.raises(FoundingRefused) as refused:
        load_founding(path)
    problems = " | ".join(refused.value.problems)
    assert "alliance.level" in problems
    assert "lead_hospital.ownership" in problems
    assert "council[1].holder: Field required" in problems
    path.write_text("[alliance\n", encoding="utf-8")
    with pytest.raises(FoundingRefused, match="is not valid TOML"):
        load_founding(path)


async def test_init_refuses_an_alliance_registered_otherwise(
    demo_env: Demo, tmp_path: Path, registry_db: asyncpg.Connection
) -> None:
    """The demo's registry holds lyzg-orthopaedics, seeded by the demo, not founded by init."""
    config = _config(tmp_path, demo_env, demo_env.registry_dsn)
    hospitals = await registry_db.fetchval("SELECT count(*) FROM hospital")
    refused = _init(EXAMPLE, config)
    assert refused.returncode == 1
    assert "registered otherwise than by `init`" in refused.stderr
    assert await registry_db.fetchval("SELECT count(*) FROM hospital") == hospitals
