"""Input objects of the public contract."""

from __future__ import annotations

from datetime import date

import strawberry

from schema.enums import Grade, HospitalType, Ownership


@strawberry.input(description="A hospital's particulars, as on the alliance's filing form.")
class HospitalInput:
    name: str
    credit_code: str = strawberry.field(description="Unified social credit code (GB 32100).")
    grade: Grade
    ownership: Ownership
    type: HospitalType
    division_code: str = strawberry.field(description="GB/T 2260 division code, 6 digits.")
    specialty_beds: int = strawberry.field(description="Beds of the independent specialty ward.")
    contact_name: str
    contact_phone: str
    code: str | None = strawberry.field(
        default=None,
        description="The code tokens will name the hospital by; derived from the credit code if "
        "omitted (a MEMBER_ADMIN applies under its own token's code).",
    )
    specialty_ward: str | None = None
    address: str | None = None
    licence_number: str | None = None
    licence_valid_until: date | None = None
    authorised_beds: int | None = None
    open_beds: int | None = None
    staff_total: int | None = None
    medical_staff: int | None = None
    management_staff: int | None = None


@strawberry.input
class SubmitMembershipApplicationInput:
    hospital: HospitalInput


@strawberry.input
class SignAgreementInput:
    application_id: strawberry.ID
    signed_on: date
    term_years: int = strawberry.field(description="At most the charter's maximum (3 years).")
