"""The founding file that `alliance-gateway init` reads: an alliance, its lead hospital, council
seats and founding members with their agreements, in TOML (docker/founding.example.toml).

This module reads its shape (fields, types, the registry's enumerations); the alliance's rules are
applied after, by resolvers/founding.py, as the membership workflow applies them."""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adapters.registry.records import AllianceRecord, HospitalRecord
from resolvers.founding import (
    CouncilSeat,
    Founding,
    FoundingAgreement,
    FoundingMember,
    FoundingRefused,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AllianceEntry(_Strict):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    specialty: str = Field(min_length=1)
    level: Literal["PROVINCIAL", "MUNICIPAL", "REGIONAL", "CROSS_PROVINCIAL"]
    form: Literal["LOOSE", "CLOSE"]
    lead_department: str = Field(min_length=1)
    discipline_leader: str = Field(min_length=1)
    founded_on: date
    charter_version: str = Field(min_length=1)
    development_plan: str | None = None
    filing_status: Literal["APPLIED", "UNDER_REVIEW", "FILED", "REJECTED"]
    filing_number: str | None = None
    standing: Literal["GOOD", "YELLOW_CARD", "ORDERED_TO_DISSOLVE", "DISSOLVED"] = "GOOD"

    @model_validator(mode="after")
    def _filed_has_number(self) -> AllianceEntry:
        if self.filing_status == "FILED" and not self.filing_number:
            raise ValueError("a FILED alliance needs its filing_number (备案号)")
        return self


class HospitalEntry(_Strict):
    code: str
    name: str
    credit_code: str
    grade: Literal["GRADE_3A", "GRADE_3B", "GRADE_2A", "GRADE_2B", "GRADE_1", "UNGRADED"]
    ownership: Literal["PUBLIC", "PRIVATE"]
    type: Literal["GENERAL", "TCM", "SPECIALTY", "COMMUNITY", "TOWNSHIP"]
    division_code: str
    contact_name: str
    contact_phone: str
    specialty_beds: int = 0
    specialty_ward: str | None = None
    address: str | None = None
    licence_number: str | None = None
    licence_valid_until: date | None = None
    authorised_beds: int | None = None
    open_beds: int | None = None
    staff_total: int | None = None
    medical_staff: int | None = None
    management_staff: int | None = None

    def record(self) -> HospitalRecord:
        fields = self.model_dump()
        return HospitalRecord(**fields)


class AgreementEntry(_Strict):
    signed_on: date
    term_years: int


class MemberEntry(HospitalEntry):
    role: Literal["BACKBONE", "MEMBER"] = "MEMBER"
    joined_on: date | None = None
    agreement: AgreementEntry

    def record(self) -> HospitalRecord:
        fields = self.model_dump(exclude={"role", "joined_on", "agreement"})
        return HospitalRecord(**fields)


class SeatEntry(_Strict):
    role: Literal["CHAIR", "VICE_CHAIR", "STANDING_MEMBER", "SECRETARY"]
    holder: str = Field(min_length=1)
    title: str | None = None
    hospital: str
    since: date | None = None


class FoundingFile(_Strict):
    alliance: AllianceEntry
    lead_hospital: HospitalEntry
    council: list[SeatEntry] = Field(min_length=1)
    founding_members: list[MemberEntry] = []

    def founding(self) -> Founding:
        a = self.alliance
        lead = self.lead_hospital.record()
        return Founding(
            alliance=AllianceRecord(
                id=a.id,
                name=a.name,
                specialty=a.specialty,
                level=a.level,
                form=a.form,
                lead_hospital_code=lead.code,
                lead_department=a.lead_department,
                discipline_leader=a.discipline_leader,
                founded_on=a.founded_on,
                charter_version=a.charter_version,
                development_plan=a.development_plan,
                filing_status=a.filing_status,
                filing_number=a.filing_number,
                standing=a.standing,
            ),
            lead=lead,
            council=tuple(
                CouncilSeat(
                    role=s.role,
                    holder_name=s.holder,
                    holder_title=s.title,
                    hospital_code=s.hospital,
                    since=s.since,
                )
                for s in self.council
            ),
            members=tuple(
                FoundingMember(
                    hospital=m.record(),
                    agreement=FoundingAgreement(m.agreement.signed_on, m.agreement.term_years),
                    role=m.role,
                    joined_on=m.joined_on,
                )
                for m in self.founding_members
            ),
        )


def _location(loc: tuple[int | str, ...]) -> str:
    where = ""
    for part in loc:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return where or "the file"


def load_founding(path: Path) -> Founding:
    """The founding a file describes; FoundingRefused saying what is wrong with the file."""
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise FoundingRefused(f"{path} is not valid TOML: {e}.", []) from None
    try:
        return FoundingFile.model_validate(values).founding()
    except ValidationError as e:
        problems = [f"{_location(err['loc'])}: {err['msg']}" for err in e.errors()]
        raise FoundingRefused(f"{path} does not describe a founding:", problems) from None
