"""Founding an alliance (`alliance-gateway init`): its record, lead hospital, council and founding
members with their agreements, registered at once, under the rules the membership workflow applies
to every hospital that joins later (resolvers/membership.py, resolvers/agreements.py).

Registering is idempotent: what was founded is kept with the alliance, so running the same founding
again changes nothing, and a different one is refused, saying what differs, before anything is
written."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, replace
from datetime import date
from enum import StrEnum
from functools import partial
from typing import Any

from adapters.registry.records import AllianceRecord, HospitalRecord
from adapters.registry.store import RegistryStore
from resolvers import clock
from resolvers.agreements import check_signed_on, check_term, term_end
from resolvers.errors import GatewayError
from resolvers.membership import check_hospital_identity, check_inclusion, validate_hospital
from resolvers.rules import AllianceRules

MEMBER_ROLES = ("BACKBONE", "MEMBER")
COUNCIL_ROLES = ("CHAIR", "VICE_CHAIR", "STANDING_MEMBER", "SECRETARY")


@dataclass(frozen=True, slots=True)
class CouncilSeat:
    role: str
    holder_name: str
    hospital_code: str
    holder_title: str | None = None
    # From the founding by default.
    since: date | None = None


@dataclass(frozen=True, slots=True)
class FoundingAgreement:
    """The cooperation agreement between the lead hospital (party A) and a founding member."""

    signed_on: date
    term_years: int


@dataclass(frozen=True, slots=True)
class FoundingMember:
    hospital: HospitalRecord
    agreement: FoundingAgreement
    role: str = "MEMBER"
    # The founding day by default.
    joined_on: date | None = None


@dataclass(frozen=True, slots=True)
class Founding:
    alliance: AllianceRecord
    lead: HospitalRecord
    council: tuple[CouncilSeat, ...]
    members: tuple[FoundingMember, ...]

    def plan(self) -> dict[str, Any]:
        """What is registered, as JSON values: kept with the alliance, compared on a re-run."""
        return _json(asdict(self))


class Outcome(StrEnum):
    CREATED = "CREATED"
    UNCHANGED = "UNCHANGED"


class FoundingRefused(Exception):
    """The founding cannot be registered; `problems` says each thing to fix, where."""

    def __init__(self, summary: str, problems: list[str]) -> None:
        super().__init__(summary + "".join(f"\n  - {p}" for p in problems))
        self.summary = summary
        self.problems = problems


def _json(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def _snake(field: str) -> str:
    """`hospital.creditCode` (the workflow's field) as the founding file names it: credit_code."""
    name = field.rpartition(".")[2]
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _where_hospital(kind: str, hospital: HospitalRecord) -> str:
    return f"{kind} {hospital.code or '?'} ({hospital.name.strip() or 'no name'})"


def validate(founding: Founding, rules: AllianceRules) -> Founding:
    """The founding, its hospitals normalised; FoundingRefused listing every problem found.
    Each hospital is checked as an applicant is (credit code, codes, phone, licence) and against
    the inclusion criteria; each agreement's term and signing date as signAgreement checks them."""
    problems: list[str] = []
    today = clock.today()

    def hospital(kind: str, h: HospitalRecord) -> HospitalRecord:
        where = _where_hospital(kind, h)
        try:
            h = validate_hospital(h)
            check_inclusion(h, rules.inclusion)
        except GatewayError as e:
            field = e.extensions.get("field")
            criterion = e.extensions.get("criterion")
            label = _snake(field) if field else f"inclusion criterion {criterion}"
            problems.append(f"{where}: {label}: {e.message}")
        return h

    alliance = founding.alliance
    if alliance.founded_on > today:
        problems.append(f"alliance.founded_on {alliance.founded_on} is in the future")
    lead = hospital("lead hospital", founding.lead)
    members: list[FoundingMember] = []
    for m in founding.members:
        checked = hospital("founding member", m.hospital)
        where = _where_hospital("founding member", checked)
        if m.role not in MEMBER_ROLES:
            problems.append(f"{where}: role must be one of {', '.join(MEMBER_ROLES)}, not {m.role}")
        joined_on = m.joined_on or alliance.founded_on
        if not alliance.founded_on <= joined_on <= today:
            problems.append(
                f"{where}: joined_on {joined_on} must be between the founding "
                f"({alliance.founded_on}) and today"
            )
        for check in (
            partial(check_term, m.agreement.term_years, rules),
            partial(check_signed_on, m.agreement.signed_on),
        ):
            try:
                check()
            except GatewayError as e:
                field = _snake(e.extensions.get("field", ""))
                problems.append(f"{where}: agreement.{field}: {e.message}")
        members.append(replace(m, hospital=checked, joined_on=joined_on))
    everyone = [lead, *(m.hospital for m in members)]
    for attribute in ("code", "credit_code"):
        counts = Counter(getattr(h, attribute) for h in everyone)
        for value, count in counts.items():
            if count > 1:
                problems.append(f"{attribute} {value} is given to {count} hospitals")
    codes = {h.code for h in everyone}
    council: list[CouncilSeat] = []
    for index, seat in enumerate(founding.council):
        where = f"council[{index}] ({seat.role} {seat.holder_name})"
        if seat.role not in COUNCIL_ROLES:
            problems.append(f"{where}: role must be one of {', '.join(COUNCIL_ROLES)}")
        if not seat.holder_name.strip():
            problems.append(f"{where}: holder is required")
        if seat.hospital_code not in codes:
            problems.append(
                f"{where}: hospital {seat.hospital_code} is neither the lead nor a founding member"
            )
        council.append(replace(seat, since=seat.since or alliance.founded_on))
    chairs = [s for s in council if s.role == "CHAIR"]
    if len(chairs) != 1 or chairs[0].hospital_code != lead.code:
        problems.append(
            f"the council needs exactly one CHAIR, held at the lead hospital {lead.code} "
            f"(理事长单位); it has {len(chairs)}"
            + (f", at {chairs[0].hospital_code}" if len(chairs) == 1 else "")
        )
    if problems:
        raise FoundingRefused(
            f"The founding of {alliance.id} does not meet the alliance's rules; nothing was "
            "written.",
            problems,
        )
    return Founding(
        alliance=replace(alliance, lead_hospital_code=lead.code),
        lead=lead,
        council=tuple(council),
        members=tuple(members),
    )


def differences(registered: Any, given: Any, path: str = "") -> list[str]:
    """Where two founding plans differ, as `path: registered …, given …` (members by code)."""
    if isinstance(registered, dict) and isinstance(given, dict):
        found: list[str] = []
        for key in [*registered, *(k for k in given if k not in registered)]:
            found += differences(
                registered.get(key), given.get(key), f"{path}.{key}" if path else key
            )
        return found
    if isinstance(registered, list) and isinstance(given, list) and path == "members":
        by_code = {m["hospital"]["code"]: m for m in registered}
        given_codes = {m["hospital"]["code"]: m for m in given}
        found = []
        for code in [*by_code, *(c for c in given_codes if c not in by_code)]:
            if code not in given_codes:
                found.append(f"members: {code} is a founding member, and not in the file")
            elif code not in by_code:
                found.append(f"members: {code} is in the file, and not a founding member")
            else:
                found += differences(by_code[code], given_codes[code], f"members[{code}]")
        return found
    if isinstance(registered, list) and isinstance(given, list):
        found = []
        for index in range(max(len(registered), len(given))):
            item = f"{path}[{index}]"
            if index >= len(registered):
                found.append(f"{item}: not registered, given {given[index]}")
            elif index >= len(given):
                found.append(f"{item}: registered {registered[index]}, not given")
            else:
                found += differences(registered[index], given[index], item)
        return found
    if registered != given:
        return [f"{path}: registered {registered!r}, given {given!r}"]
    return []


async def register(store: RegistryStore, founding: Founding) -> Outcome:
    """Register a validated founding in one transaction: all of it, or (refused) nothing."""
    alliance = founding.alliance
    plan = founding.plan()
    async with store.transaction() as tx:
        await tx.lock_founding(alliance.id)
        if await tx.alliance(alliance.id) is not None:
            registered = await tx.founding_plan(alliance.id)
            if registered is None:
                raise FoundingRefused(
                    f"Alliance {alliance.id} is already in the registry, registered otherwise "
                    "than by `init` (e.g. by the demo); nothing was written.",
                    [],
                )
            changed = differences(registered, plan)
            if changed:
                raise FoundingRefused(
                    f"Alliance {alliance.id} was founded differently; nothing was written. A "
                    "founding is registered once: later changes go through the membership "
                    "workflow (mutations). What differs:",
                    changed,
                )
            return Outcome.UNCHANGED
        everyone = [founding.lead, *(m.hospital for m in founding.members)]
        conflicts = []
        for hospital in everyone:
            try:
                await check_hospital_identity(tx, hospital)
            except GatewayError as e:
                conflicts.append(f"{_where_hospital('hospital', hospital)}: {e.message}")
        if conflicts:
            raise FoundingRefused(
                f"The founding of {alliance.id} conflicts with hospitals already registered; "
                "nothing was written.",
                conflicts,
            )
        for hospital in everyone:
            await tx.upsert_hospital(hospital)
        await tx.insert_alliance(alliance)
        await tx.insert_membership(alliance.id, founding.lead.code, "LEAD", alliance.founded_on)
        for member in founding.members:
            assert member.joined_on is not None
            code = member.hospital.code
            await tx.insert_membership(alliance.id, code, member.role, member.joined_on)
            signed = member.agreement.signed_on
            await tx.insert_agreement(
                alliance_id=alliance.id,
                party_a_code=founding.lead.code,
                party_b_code=code,
                signed_on=signed,
                term_years=member.agreement.term_years,
                effective_on=signed,
                expires_on=term_end(signed, member.agreement.term_years),
            )
        for seat in founding.council:
            assert seat.since is not None
            await tx.insert_council_seat(
                alliance.id,
                seat.role,
                seat.holder_name,
                seat.holder_title,
                seat.hospital_code,
                seat.since,
            )
        await tx.record_founding(alliance.id, plan)
    return Outcome.CREATED
