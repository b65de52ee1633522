"""The embedded demo: PostgreSQL from pgserver (or a server you name), the registry and one exchange
database per hospital, the demo alliance, signing keys, tokens, and the files a second replica needs."""

from __future__ import annotations

import json
import logging
import secrets
import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from adapters import postgres_admin
from adapters.registry.migrate import apply_migrations
from adapters.registry.store import RegistryStore
from gateway import demo_data, tokens
from gateway.embedded_postgres import EmbeddedPostgres
from resolvers import clock
from resolvers.principal import Purpose, Role

log = logging.getLogger(__name__)

ISSUER = "alliance-gateway-demo"
AUDIENCE = "alliance-gateway"
REGISTRY_DATABASE = "alliance_registry"
SECRETS_FILE = "secrets.json"


@dataclass
class DemoPaths:
    root: Path

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def config(self) -> Path:
        return self.root / "alliance.toml"

    @property
    def demo_json(self) -> Path:
        return self.root / "demo.json"

    @property
    def secrets(self) -> Path:
        return self.root / SECRETS_FILE


def _load_or_create_secrets(paths: DemoPaths) -> dict[str, str]:
    """Database passwords, made once per demo directory so re-runs reuse them."""
    known: dict[str, str] = json.loads(paths.secrets.read_text()) if paths.secrets.exists() else {}
    wanted = ["alliance_registry"] + [f"exchange_{h.code.lower()}" for h in demo_data.HOSPITALS]
    for role in wanted:
        known.setdefault(role, secrets.token_urlsafe(18))
    paths.secrets.write_text(json.dumps(known, indent=2))
    paths.secrets.chmod(0o600)
    return known


async def _provision(admin_dsn: str, passwords: dict[str, str]) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        for role, password in passwords.items():
            await postgres_admin.ensure_role(admin, role, password)
            await postgres_admin.ensure_database(admin, role, owner=role)
    finally:
        await admin.close()


async def seed_registry(store: RegistryStore) -> bool:
    """Register the demo alliance; False when it is already there."""
    if await store.alliance(demo_data.ALLIANCE_ID) is not None:
        return False
    today = clock.today()
    alliance = demo_data.alliance(today)
    async with store.transaction() as tx:
        for hospital in [*demo_data.HOSPITALS, demo_data.APPLICANT]:
            await tx.upsert_hospital(hospital)
        await tx.insert_alliance(alliance)
        for role, holder, title, code in demo_data.COUNCIL:
            await tx.insert_council_seat(
                alliance.id, role, holder, title, code, alliance.founded_on
            )
        for member in demo_data.demo_members(today):
            joined = today - timedelta(days=member.joined_days_ago)
            await tx.insert_membership(alliance.id, member.code, member.role, joined)
            await tx.set_plaque_granted(alliance.id, member.code, joined + timedelta(days=14))
            dates = demo_data.agreement_dates(member, today)
            if dates is not None:
                assert member.term_years is not None
                await tx.insert_agreement(
                    alliance_id=alliance.id,
                    party_a_code=demo_data.LEAD,
                    party_b_code=member.code,
                    signed_on=dates[0],
                    term_years=member.term_years,
                    effective_on=dates[0],
                    expires_on=dates[1],
                )
        await tx.add_resolution(
            alliance.id, alliance.founded_on, "AMEND_CHARTER", "通过《骨伤专科联盟章程（试行）》"
        )
        await tx.insert_application(alliance.id, demo_data.APPLICANT.code, "demo-seed")
    return True


def _token_list(paths: DemoPaths) -> list[dict[str, Any]]:
    key = paths.root / tokens.PRIVATE_KEY_FILE

    def entry(role: Role, member: str | None, purpose: Purpose | None = None) -> dict[str, Any]:
        subject = f"demo-{role.lower()}-{(member or 'alliance').lower()}"
        token = tokens.mint(
            key,
            issuer=ISSUER,
            audience=AUDIENCE,
            subject=subject,
            roles=[role.value],
            hospital=member,
            purpose=purpose.value if purpose else None,
        )
        return {"role": role.value, "member": member, "token": token}

    lead = demo_data.LEAD
    listed = [
        entry(Role.ALLIANCE_ADMIN, lead, Purpose.OPERATIONS),
        entry(Role.SECRETARIAT, lead, Purpose.OPERATIONS),
        entry(Role.OPS, None, Purpose.OPERATIONS),
    ]
    for hospital in [*demo_data.HOSPITALS, demo_data.APPLICANT]:
        listed.append(entry(Role.MEMBER_ADMIN, hospital.code, Purpose.OPERATIONS))
    for hospital in demo_data.HOSPITALS:
        listed.append(entry(Role.CLINICIAN, hospital.code, Purpose.TREATMENT))
        listed.append(entry(Role.PARTNER_SYSTEM, hospital.code, Purpose.OPERATIONS))
    return listed


def _with_credentials(dsn: str, role: str, password: str) -> str:
    """The same server as `dsn`, as `role` on its own database of the same name."""
    url = urlsplit(dsn)
    host = url.netloc.rpartition("@")[2]
    return urlunsplit(
        (url.scheme, f"{quote(role)}:{quote(password)}@{host}", f"/{role}", url.query, "")
    )


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _write_config(paths: DemoPaths, registry_dsn: str) -> None:
    paths.config.write_text(
        "# Written by `alliance-gateway demo`. Environment variables ALLIANCE_* override it.\n"
        f"alliance_id = {_toml_string(demo_data.ALLIANCE_ID)}\n"
        "introspection = true\n"
        "graphiql = true\n\n"
        "[registry]\n"
        f"dsn = {_toml_string(registry_dsn)}\n\n"
        "[auth]\n"
        f"issuer = {_toml_string(ISSUER)}\n"
        f"audience = {_toml_string(AUDIENCE)}\n"
        f"public_key_file = {_toml_string(tokens.PUBLIC_KEY_FILE)}\n"
        'algorithms = ["ES256"]\n\n'
        "[rules]\n"
        "max_term_years = 3\n"
        "renewal_window_months = 3\n\n"
        "[rules.inclusion]\n"
        "min_level = 2\n"
        "public_only = true\n"
        "min_specialty_beds = 30\n",
        encoding="utf-8",
    )
    paths.config.chmod(0o600)


@dataclass
class PreparedDemo:
    paths: DemoPaths
    registry_dsn: str
    embedded: EmbeddedPostgres | None


async def prepare(
    data_dir: Path, *, reset: bool, registry_dsn: str | None, graphql_url: str
) -> PreparedDemo:
    """Everything but serving: the database server, databases, seed data and files. Idempotent."""
    paths = DemoPaths(data_dir.resolve())
    if reset and paths.root.exists():
        if paths.pgdata.exists():
            EmbeddedPostgres(paths.pgdata).stop()
        shutil.rmtree(paths.root)
    paths.root.mkdir(parents=True, exist_ok=True)
    passwords = _load_or_create_secrets(paths)

    embedded: EmbeddedPostgres | None = None
    if registry_dsn is None:
        embedded = EmbeddedPostgres(paths.pgdata)
        await embedded.require_passwords()
        admin_dsn = embedded.admin_dsn

        def dsn_of(role: str) -> str:
            return embedded.dsn(role, passwords[role], role)  # type: ignore[union-attr]
    else:
        admin_dsn = registry_dsn

        def dsn_of(role: str) -> str:
            return _with_credentials(registry_dsn, role, passwords[role])

    await _provision(admin_dsn, passwords)
    own_registry_dsn = dsn_of(REGISTRY_DATABASE)
    conn = await asyncpg.connect(own_registry_dsn)
    try:
        await apply_migrations(conn)
        seeded = await seed_registry(RegistryStore(conn))
    finally:
        await conn.close()
    log.info("demo registry %s", "seeded" if seeded else "reused")

    tokens.ensure_signing_key(paths.root)
    _write_config(paths, own_registry_dsn)
    roles = {m.code: m.role for m in demo_data.demo_members(clock.today())}
    members = [
        {
            "code": h.code,
            "name": h.name,
            "role": roles[h.code],
            "database": f"exchange_{h.code.lower()}",
            "dsn": dsn_of(f"exchange_{h.code.lower()}"),
        }
        for h in demo_data.HOSPITALS
    ]
    demo = {
        "graphql_url": graphql_url,
        "registry_dsn": own_registry_dsn,
        "admin_dsn": admin_dsn,
        "config": str(paths.config),
        "members": members,
        "tokens": _token_list(paths),
    }
    paths.demo_json.write_text(json.dumps(demo, ensure_ascii=False, indent=2), encoding="utf-8")
    paths.demo_json.chmod(0o600)
    return PreparedDemo(paths=paths, registry_dsn=own_registry_dsn, embedded=embedded)
