"""Record-level access to the members' clinical records.

A hospital's staff and systems (CLINICIAN, MEMBER_ADMIN, PARTNER_SYSTEM) see the records their
hospital is a party to, with the patient's pseudonym, sex and age. The alliance office
(SECRETARIAT, ALLIANCE_ADMIN) sees every record, without the patient. Operations (OPS) sees every
record's shape (kinds, statuses, hospitals, times) and nothing clinical, so that every query shape
can be run, traced and explained by the people who run the gateway. Others see none."""

from __future__ import annotations

from dataclasses import dataclass

from resolvers.errors import forbidden
from resolvers.principal import Principal, Purpose, Role

PARTY_ROLES = (Role.CLINICIAN, Role.MEMBER_ADMIN, Role.PARTNER_SYSTEM)
OFFICE_ROLES = (Role.SECRETARIAT, Role.ALLIANCE_ADMIN)


@dataclass(frozen=True, slots=True)
class RecordScope:
    parties: tuple[str, ...] | None  # None: every record
    sees_patients: bool
    # Diagnoses and free-text reasons: not for operations.
    sees_clinical_text: bool = True


def record_scope(principal: Principal, what: str) -> RecordScope:
    if principal.has_any(*OFFICE_ROLES):
        return RecordScope(parties=None, sees_patients=False)
    if principal.has_any(Role.OPS):
        return RecordScope(parties=None, sees_patients=False, sees_clinical_text=False)
    if principal.has_any(*PARTY_ROLES):
        if not principal.hospital_code:
            raise forbidden(f"Reading {what} needs a token that names your hospital.")
        return RecordScope(parties=(principal.hospital_code,), sees_patients=True)
    raise forbidden(f"{', '.join(principal.roles)} may not read {what}.")


def acting_hospital(principal: Principal, action: str, *roles: Role) -> str:
    """The hospital on whose behalf a clinical write is made: the token's own."""
    allowed = roles or PARTY_ROLES
    if not principal.has_any(*allowed) or not principal.hospital_code:
        raise forbidden(
            f"Only {', '.join(allowed)} of a member hospital may {action}; the alliance office "
            "does not write clinical records."
        )
    return principal.hospital_code


def require_treatment_purpose(principal: Principal, what: str) -> str:
    if not principal.has_any(Role.CLINICIAN) or principal.purpose is not Purpose.TREATMENT:
        raise forbidden(f"{what} is for a CLINICIAN treating the patient (purpose TREATMENT).")
    if not principal.hospital_code:
        # Authentication refuses such tokens (gateway/auth.py); this holds whoever builds one.
        raise forbidden(f"{what} needs a token that names the clinician's hospital.")
    return principal.hospital_code
