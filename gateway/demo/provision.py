"""The embedded demo: PostgreSQL from pgserver (or a server you name), the registry and one exchange
database per hospital, the demo alliance, signing keys, tokens, and the files a second replica needs."""

from __future__ import annotations

import atexit
import json
import logging
import random
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiomysql
import asyncpg
import tomli_w

from adapters import postgres_admin
from adapters.mysql import session as mysql_session
from adapters.registry.migrate import apply_migrations
from adapters.registry.records import HospitalRecord
from adapters.registry.store import RegistryStore
from gateway.demo import data as demo_data
from gateway.demo import filing_seed, tokens
from gateway.demo.activity import (
    RENAMED_COLUMNS,
    SyntheticHospital,
    SyntheticPatient,
    sample_patients,
    seed_activity,
    seed_activity_mysql,
    synthetic_patients,
)
from gateway.demo.assessment_seed import seed_assessments
from gateway.demo.embedded_fhir import EmbeddedFhir
from gateway.demo.embedded_mariadb import INSTALL_HINT, EmbeddedMariaDB, binaries
from gateway.demo.embedded_postgres import EmbeddedPostgres
from gateway.demo.fhir_seed import seed_activity_fhir
from gateway.demo.work_report_seed import seed as seed_work_reports
from resolvers import clock
from resolvers.agreements import term_end
from resolvers.principal import Purpose, Role

log = logging.getLogger(__name__)

ISSUER = "alliance-gateway-demo"
AUDIENCE = "alliance-gateway"
REGISTRY_DATABASE = "alliance_registry"
SECRETS_FILE = "secrets.json"
LINKAGE_KEY = "linkage_key"
FHIR_HOOK_SECRET = "fhir_hook_secret"
PATIENTS_PER_HOSPITAL = 150
# Fixed: the simulated hospital activity writes for the same patients the demo was seeded with.
_PATIENT_SEED = 20261122
# The hospital whose exchange database is MariaDB (the mysql adapter) when MariaDB's server is
# installed here; PostgreSQL otherwise, as every other one.
MARIADB_MEMBER = "LHYZ3"
# The hospital whose source is an HL7 FHIR R4 server (the fhir adapter), always: the demo runs its
# own (sekmet-fhir, a Python package of the demo extra).
FHIR_MEMBER = "LHRM2"


def demo_patients(hospitals: Sequence[SyntheticHospital]) -> list[SyntheticPatient]:
    """The synthetic patients the demo's exchange databases are seeded with."""
    return synthetic_patients(
        hospitals, PATIENTS_PER_HOSPITAL * len(hospitals), random.Random(_PATIENT_SEED)
    )


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

    @property
    def mariadb(self) -> Path:
        return self.root / "mariadb"

    @property
    def fhir(self) -> Path:
        return self.root / "fhir"


def _load_or_create_secrets(paths: DemoPaths, hospitals: list[HospitalRecord]) -> dict[str, str]:
    """Database passwords and the linkage key, made once per demo directory so re-runs reuse them."""
    known: dict[str, str] = json.loads(paths.secrets.read_text()) if paths.secrets.exists() else {}
    for role in [REGISTRY_DATABASE, *(_exchange_role(h.code) for h in hospitals)]:
        known.setdefault(role, secrets.token_urlsafe(18))
    known.setdefault(LINKAGE_KEY, secrets.token_urlsafe(32))
    known.setdefault(FHIR_HOOK_SECRET, secrets.token_urlsafe(32))
    paths.secrets.write_text(json.dumps(known, indent=2))
    paths.secrets.chmod(0o600)
    return known


def _exchange_role(code: str) -> str:
    return f"exchange_{code.lower()}"


async def _provision(admin_dsn: str, roles: dict[str, str]) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        for role, password in roles.items():
            await postgres_admin.ensure_role(admin, role, password)
            await postgres_admin.ensure_database(admin, role, owner=role)
    finally:
        await admin.close()


async def seed_registry(store: RegistryStore, extra: list[HospitalRecord]) -> bool:
    """Register the demo alliance and any extra members; False when nothing was missing."""
    today = clock.today()
    alliance = demo_data.alliance(today)
    if await store.alliance(demo_data.ALLIANCE_ID) is not None:
        missing = [h for h in extra if not await store.memberships(alliance.id, [h.code])]
        async with store.transaction() as tx:
            for hospital in missing:
                await _add_extra_member(tx, alliance.id, hospital, today)
        return bool(missing)
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
            if member.inclusion_exception is not None:
                await tx.set_inclusion_exception(
                    alliance.id, member.code, *member.inclusion_exception
                )
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
        for hospital in extra:
            await _add_extra_member(tx, alliance.id, hospital, today)
    return True


async def _add_extra_member(
    tx: RegistryStore, alliance_id: str, hospital: HospitalRecord, today: date
) -> None:
    await tx.upsert_hospital(hospital)
    joined = today - timedelta(days=400)
    await tx.insert_membership(alliance_id, hospital.code, "MEMBER", joined)
    await tx.insert_agreement(
        alliance_id=alliance_id,
        party_a_code=demo_data.LEAD,
        party_b_code=hospital.code,
        signed_on=joined,
        term_years=3,
        effective_on=joined,
        expires_on=term_end(joined, 3),
    )


def _token_list(paths: DemoPaths, hospitals: list[HospitalRecord]) -> list[dict[str, Any]]:
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
        entry(Role.REGULATOR, None, Purpose.OPERATIONS),
    ]
    for hospital in [*hospitals, demo_data.APPLICANT]:
        listed.append(entry(Role.MEMBER_ADMIN, hospital.code, Purpose.OPERATIONS))
    for hospital in hospitals:
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


def _hook_base(graphql_url: str) -> str | None:
    """Where the demo's FHIR server notifies the gateway: on loopback, at the port it serves."""
    port = urlsplit(graphql_url).port if graphql_url else None
    return f"http://127.0.0.1:{port}" if port else None


def _write_config(
    paths: DemoPaths,
    registry_dsn: str,
    members: list[dict[str, Any]],
    linkage_key: str,
    fhir_hook: tuple[str, str] | None,
) -> None:
    config: dict[str, Any] = {
        "alliance_id": demo_data.ALLIANCE_ID,
        "introspection": True,
        "graphiql": True,
        # Production defaults are 20 a second with bursts of 40 per subject; the demo's few shared
        # tokens serve the test suite and the federation benchmark, so they get far more.
        "rate_limit": {"enabled": True, "requests_per_second": 1000.0, "burst": 2000},
        "linkage_key": linkage_key,
        "registry": {"dsn": registry_dsn},
        "auth": {
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "public_key_file": tokens.PUBLIC_KEY_FILE,
            "algorithms": ["ES256"],
        },
        "rules": {
            "max_term_years": 3,
            "renewal_window_months": 3,
            "inclusion": {"min_level": 2, "public_only": True, "min_specialty_beds": 30},
            "consultation_fees_fen": demo_data.CONSULTATION_FEES_FEN,
            "recognition": {
                "alliance_wide": False,
                "items": [
                    {
                        "loinc": loinc,
                        "name": name,
                        "validity_days": days,
                        "scope": "ALLIANCE",
                        "retest_cost_fen": cost,
                    }
                    for loinc, name, days, cost in demo_data.RECOGNITION_CATALOGUE
                ],
            },
        },
        "members": [
            {
                "code": m["code"],
                **({"kind": m["kind"]} if m["kind"] != "postgres" else {}),
                **({"base_url": m["base_url"]} if m["kind"] == "fhir" else {"dsn": m["dsn"]}),
                **({"columns": m["columns"]} if m.get("columns") else {}),
            }
            for m in members
        ],
    }
    if fhir_hook is not None:
        # The FHIR hospital's changes are pushed by rest-hook Subscriptions, not only polled.
        config["events"] = {"fhir_hook_base_url": fhir_hook[0], "fhir_hook_secret": fhir_hook[1]}
    header = "# Written by `alliance-gateway demo`. Environment variables ALLIANCE_* override it.\n"
    paths.config.write_text(header + tomli_w.dumps(config), encoding="utf-8")
    paths.config.chmod(0o600)


@dataclass
class PreparedDemo:
    paths: DemoPaths
    registry_dsn: str
    embedded: EmbeddedPostgres | None
    # The MariaDB server of MARIADB_MEMBER's exchange database; None when MariaDB is not installed.
    mariadb: EmbeddedMariaDB | None = None
    # The FHIR server of FHIR_MEMBER.
    fhir: EmbeddedFhir | None = None


async def _start_fhir(paths: DemoPaths) -> EmbeddedFhir:
    server = EmbeddedFhir(paths.fhir)
    await server.start()
    atexit.register(server.stop)
    return server


async def _start_mariadb(paths: DemoPaths) -> EmbeddedMariaDB:
    server = EmbeddedMariaDB(paths.mariadb)
    await server.start()
    # Stopped when the demo exits, as pgserver stops the embedded PostgreSQL.
    atexit.register(server.stop_now)
    return server


async def _seed_on_mariadb(
    server: EmbeddedMariaDB,
    role: str,
    password: str,
    hospital: SyntheticHospital,
    synthetic: list[SyntheticHospital],
    patients: list[SyntheticPatient],
    linkage_key: str,
    seed: int,
) -> str:
    """The hospital's exchange database on MariaDB, under its own account; its DSN."""
    await server.ensure_database(role, role, password)
    dsn = server.dsn(role, password, role)
    conn = await aiomysql.connect(**mysql_session.connect_options(dsn, connect_timeout=10))
    try:
        await seed_activity_mysql(
            conn,
            hospital,
            synthetic,
            patients,
            linkage_key.encode(),
            clock.today(),
            seed=seed,
            renamed=RENAMED_COLUMNS.get(hospital.code, {}),
        )
    finally:
        conn.close()
    return dsn


async def prepare(
    data_dir: Path,
    *,
    reset: bool,
    registry_dsn: str | None,
    graphql_url: str,
    extra_members: int = 0,
) -> PreparedDemo:
    """Everything but serving: the database server, databases, seed data and files. Idempotent."""
    paths = DemoPaths(data_dir.resolve())
    if reset and paths.root.exists():
        if paths.pgdata.exists():
            EmbeddedPostgres(paths.pgdata).stop()
        if paths.mariadb.exists() and binaries() is not None:
            await EmbeddedMariaDB(paths.mariadb).stop()
        shutil.rmtree(paths.root)
    paths.root.mkdir(parents=True, exist_ok=True)
    extra = demo_data.extra_hospitals(extra_members)
    hospitals = [*demo_data.HOSPITALS, *extra]
    passwords = _load_or_create_secrets(paths, hospitals)
    roles = {r: p for r, p in passwords.items() if r not in (LINKAGE_KEY, FHIR_HOOK_SECRET)}

    embedded: EmbeddedPostgres | None = None
    if registry_dsn is None:
        embedded = EmbeddedPostgres(paths.pgdata)
        await embedded.require_passwords()
        await embedded.ensure_capacity(100 + 12 * len(hospitals))
        admin_dsn = embedded.admin_dsn

        def dsn_of(role: str) -> str:
            return embedded.dsn(role, passwords[role], role)
    else:
        admin_dsn = registry_dsn

        def dsn_of(role: str) -> str:
            return _with_credentials(registry_dsn, role, passwords[role])

    await _provision(admin_dsn, roles)
    own_registry_dsn = dsn_of(REGISTRY_DATABASE)
    conn = await asyncpg.connect(own_registry_dsn)
    try:
        await apply_migrations(conn)
        seeded = await seed_registry(RegistryStore(conn), extra)
        await filing_seed.seed_filing(RegistryStore(conn))
    finally:
        await conn.close()
    log.info("demo registry %s", "seeded" if seeded else "reused")

    mariadb = await _start_mariadb(paths) if binaries() is not None else None
    fhir = await _start_fhir(paths)
    today = clock.today()
    roles_of = {m.code: m.role for m in demo_data.demo_members(today)}
    synthetic = [
        SyntheticHospital(h.code, h.grade, roles_of.get(h.code, "MEMBER")) for h in hospitals
    ]
    patients = demo_patients(synthetic)
    linkage_key = passwords[LINKAGE_KEY]
    members: list[dict[str, Any]] = []
    for index, hospital in enumerate(synthetic):
        role = _exchange_role(hospital.code)
        renamed = RENAMED_COLUMNS.get(hospital.code, {})
        if hospital.code == FHIR_MEMBER:
            await seed_activity_fhir(
                fhir.base_url, hospital, synthetic, patients, linkage_key.encode(), today, index
            )
            members.append(
                {
                    "code": hospital.code,
                    "role": hospital.role,
                    "kind": "fhir",
                    "base_url": fhir.base_url,
                }
            )
            continue
        if mariadb is not None and hospital.code == MARIADB_MEMBER:
            dsn = await _seed_on_mariadb(
                mariadb, role, passwords[role], hospital, synthetic, patients, linkage_key, index
            )
            members.append(
                {
                    "code": hospital.code,
                    "role": hospital.role,
                    "kind": "mysql",
                    "database": role,
                    "dsn": dsn,
                    "columns": renamed,
                }
            )
            continue
        member_conn = await asyncpg.connect(dsn_of(role))
        try:
            await seed_activity(
                member_conn,
                hospital,
                synthetic,
                patients,
                linkage_key.encode(),
                today,
                seed=index,
                renamed=renamed,
            )
        finally:
            await member_conn.close()
        members.append(
            {
                "code": hospital.code,
                "role": hospital.role,
                "kind": "postgres",
                "database": role,
                "dsn": dsn_of(role),
                "columns": renamed,
            }
        )

    tokens.ensure_signing_key(paths.root)
    hook_base = _hook_base(graphql_url)
    _write_config(
        paths,
        own_registry_dsn,
        members,
        linkage_key,
        (hook_base, passwords[FHIR_HOOK_SECRET]) if hook_base else None,
    )
    await seed_assessments(paths.config)
    await seed_work_reports(paths.config)
    names = {h.code: h.name for h in hospitals}
    demo = {
        "graphql_url": graphql_url,
        "registry_dsn": own_registry_dsn,
        "admin_dsn": admin_dsn,
        "config": str(paths.config),
        "members": [
            {
                "code": m["code"],
                "name": names[m["code"]],
                "role": m["role"],
                "kind": m["kind"],
                **(
                    {"base_url": m["base_url"]}
                    if m["kind"] == "fhir"
                    else {"database": m["database"], "dsn": m["dsn"]}
                ),
            }
            for m in members
        ],
        "sample_patients": sample_patients(patients),
        "tokens": _token_list(paths, hospitals),
    }
    paths.demo_json.write_text(json.dumps(demo, ensure_ascii=False, indent=2), encoding="utf-8")
    paths.demo_json.chmod(0o600)
    print(_mariadb_note(mariadb, names))
    print(
        f"{FHIR_MEMBER} ({names[FHIR_MEMBER]}) is served from an HL7 FHIR R4 server (kind fhir, "
        f"sekmet-fhir) at {fhir.base_url}, data in {fhir.data_dir}."
    )
    return PreparedDemo(
        paths=paths,
        registry_dsn=own_registry_dsn,
        embedded=embedded,
        mariadb=mariadb,
        fhir=fhir,
    )


def _mariadb_note(server: EmbeddedMariaDB | None, names: dict[str, str]) -> str:
    if server is None:
        return (
            "every demo hospital's exchange database is PostgreSQL. To serve "
            f"{MARIADB_MEMBER} from MariaDB through the mysql adapter, install MariaDB's server "
            f"({INSTALL_HINT}) and run the demo again."
        )
    return (
        f"{MARIADB_MEMBER} ({names[MARIADB_MEMBER]}) is served from MariaDB (kind mysql) on "
        f"127.0.0.1:{server.port}, data in {server.data_dir}."
    )
