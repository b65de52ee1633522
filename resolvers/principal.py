"""Who is asking: the verified claims of a request, as authorization decisions see them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ALLIANCE_ADMIN = "ALLIANCE_ADMIN"  # the chair institution (理事长单位)
    SECRETARIAT = "SECRETARIAT"  # 秘书处
    MEMBER_ADMIN = "MEMBER_ADMIN"  # a member hospital's alliance office
    CLINICIAN = "CLINICIAN"
    PARTNER_SYSTEM = "PARTNER_SYSTEM"  # a provincial platform, a member's HIS, a referral app
    OPS = "OPS"
    # The provincial alliance office (省专科联盟管理办公室): filings, reports, assessments and
    # aggregate statistics; never a patient-level record.
    REGULATOR = "REGULATOR"


class Purpose(StrEnum):
    TREATMENT = "TREATMENT"
    OPERATIONS = "OPERATIONS"
    QUALITY = "QUALITY"


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    hospital_code: str | None
    roles: frozenset[Role]
    purpose: Purpose | None
    # When the token stops being valid (Unix time): long-lived connections end then.
    expires_at: float | None = None

    def has_any(self, *roles: Role) -> bool:
        return not self.roles.isdisjoint(roles)
