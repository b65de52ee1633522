"""The counts of a semi-annual work report, counted by the tests straight from each demo member's
own store (its PostgreSQL or MariaDB exchange database, its FHIR server), without the gateway."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Any

import aiomysql
import asyncpg
import httpx

from adapters.mysql import session as mysql_session
from gateway.demo.activity import RENAMED_COLUMNS
from resolvers.membership import GRADE_RANK

FIELDS = (
    "academicEvents",
    "onSiteTours",
    "remoteConsultations",
    "peopleTrained",
    "referralsUp",
    "referralsDown",
    "newTechniques",
)
A = "https://alliance-gateway.org/fhir"
REFERRAL_CATEGORY = "http://snomed.info/sct|3457005"
CONSULTATION_CATEGORY = "http://snomed.info/sct|11429006"


Direction = Callable[[str, str, str], str]


async def direction_rule(registry_dsn: str) -> Direction:
    """Seed 001 #16/#17 from the registry: to the lead is up, from the lead down; between two
    others by grade; as sent between two of the same grade."""
    conn = await asyncpg.connect(registry_dsn)
    try:
        rows = await conn.fetch(
            "SELECT h.code, h.grade, m.role FROM hospital h "
            "LEFT JOIN membership m ON m.hospital_code = h.code"
        )
    finally:
        await conn.close()
    grade = {r["code"]: GRADE_RANK[r["grade"]] for r in rows}
    lead = {r["code"] for r in rows if r["role"] == "LEAD"}

    def direction(sent: str, sender: str, receiver: str) -> str:
        if receiver in lead:
            return "UP"
        if sender in lead:
            return "DOWN"
        step = grade[receiver] - grade[sender]
        return "UP" if step > 0 else "DOWN" if step < 0 else sent

    return direction


def _queries(code: str, first: date, end: date, *, mysql: bool) -> dict[str, str]:
    created = RENAMED_COLUMNS.get(code, {}).get("referral", {}).get("created_at", "created_at")
    zone = "" if mysql else "+08"
    t0, t1 = f"'{first} 00:00:00{zone}'", f"'{end} 00:00:00{zone}'"
    d0, d1 = f"'{first}'", f"'{end}'"
    return {
        "academic": f"SELECT count(*) FROM training_event WHERE held_on >= {d0} AND held_on < {d1} "
        "AND kind <> 'FREE_CLINIC'",
        "trainees": "SELECT coalesce(sum(p.participants), 0) FROM training_participation p "
        "JOIN training_event e ON e.id = p.event_id "
        f"WHERE e.held_on >= {d0} AND e.held_on < {d1} AND e.kind <> 'FREE_CLINIC' "
        "AND p.hospital <> e.host_hospital",
        "placements": f"SELECT count(*) FROM placement WHERE starts_on >= {d0} AND starts_on < {d1}",
        "consultations": f"SELECT count(*) FROM consultation WHERE created_at >= {t0} "
        f"AND created_at < {t1} AND kind <> 'ON_SITE' "
        "AND status NOT IN ('DECLINED', 'CANCELLED')",
        "referrals": "SELECT direction, from_hospital, to_hospital, count(*) FROM referral "
        f"WHERE {created} >= {t0} AND {created} < {t1} "
        "AND status NOT IN ('REJECTED', 'CANCELLED') GROUP BY direction, from_hospital, to_hospital",
        "capacity": f"SELECT kind, count(*) FROM capacity_activity WHERE started_on >= {d0} "
        f"AND started_on < {d1} GROUP BY kind",
    }


def _tally(rows: dict[str, list[tuple[Any, ...]]], direction: Direction) -> dict[str, int]:
    directions: Counter[str] = Counter()
    for sent, sender, receiver, n in rows["referrals"]:
        directions[direction(sent, sender, receiver)] += int(n)
    capacity = {kind: int(n) for kind, n in rows["capacity"]}
    return {
        "academicEvents": int(rows["academic"][0][0]),
        "onSiteTours": capacity.get("ON_SITE_TOUR", 0),
        "remoteConsultations": int(rows["consultations"][0][0]),
        "peopleTrained": int(rows["trainees"][0][0]) + int(rows["placements"][0][0]),
        "referralsUp": directions["UP"],
        "referralsDown": directions["DOWN"],
        "newTechniques": capacity.get("NEW_TECHNIQUE", 0),
    }


async def _postgres(
    member: dict[str, Any], first: date, end: date, direction: Direction
) -> dict[str, int]:
    conn = await asyncpg.connect(member["dsn"])
    try:
        queries = _queries(member["code"], first, end, mysql=False)
        rows = {name: [tuple(r) for r in await conn.fetch(sql)] for name, sql in queries.items()}
    finally:
        await conn.close()
    return _tally(rows, direction)


async def _mysql(
    member: dict[str, Any], first: date, end: date, direction: Direction
) -> dict[str, int]:
    conn = await aiomysql.connect(
        **mysql_session.connect_options(member["dsn"], connect_timeout=10)
    )
    try:
        async with conn.cursor() as cur:
            # TIMESTAMP columns compared in China Standard Time, as the window is written.
            await cur.execute("SET time_zone = '+08:00'")
            rows = {}
            for name, sql in _queries(member["code"], first, end, mysql=True).items():
                await cur.execute(sql)
                rows[name] = list(await cur.fetchall())
    finally:
        conn.close()
    return _tally(rows, direction)


async def _fhir_search(base_url: str, category: str, first: date, end: date) -> list[Any]:
    found = []
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(
            f"{base_url}/ServiceRequest",
            params=[
                ("category", category),
                ("authored", f"ge{first}T00:00:00+08:00"),
                ("authored", f"lt{end}T00:00:00+08:00"),
                ("_count", "500"),
            ],
        )
        while True:
            response.raise_for_status()
            bundle = response.json()
            found += [e["resource"] for e in bundle.get("entry", [])]
            after = [link["url"] for link in bundle.get("link", []) if link["relation"] == "next"]
            if not after:
                return found
            response = await http.get(after[0])


def _tag(resource: dict[str, Any], system: str) -> str:
    return next(t["code"] for t in resource["meta"]["tag"] if t["system"] == f"{A}/{system}")


def _hospital(reference: dict[str, Any]) -> str:
    return str(reference["identifier"]["value"])


async def _fhir(
    member: dict[str, Any], first: date, end: date, direction: Direction
) -> dict[str, int]:
    base = member["base_url"]
    referrals = [
        (
            _tag(r, "referral-direction"),
            _hospital(r["requester"]),
            _hospital(r["performer"][0]),
            1,
        )
        for r in await _fhir_search(base, REFERRAL_CATEGORY, first, end)
        if _tag(r, "referral-status") not in ("REJECTED", "CANCELLED")
    ]
    consultations = [
        r
        for r in await _fhir_search(base, CONSULTATION_CATEGORY, first, end)
        if _tag(r, "consultation-kind") != "ON_SITE"
        and _tag(r, "consultation-status") not in ("DECLINED", "CANCELLED")
    ]
    # No training, placements or capacity building on a FHIR server: none counted.
    rows: dict[str, list[tuple[Any, ...]]] = {
        "referrals": referrals,
        "capacity": [],
        "academic": [(0,)],
        "trainees": [(0,)],
        "placements": [(0,)],
        "consultations": [(len(consultations),)],
    }
    return _tally(rows, direction)


async def member_counts(
    member: dict[str, Any], first: date, end: date, direction: Direction
) -> dict[str, int]:
    """The member's counts for the days `first` up to `end` (exclusive), China Standard Time."""
    kind = member["kind"]
    if kind == "fhir":
        return await _fhir(member, first, end, direction)
    if kind == "mysql":
        return await _mysql(member, first, end, direction)
    return await _postgres(member, first, end, direction)
