"""Types shared by the clinical parts of the contract: patients, diagnoses, member-owned records."""

from __future__ import annotations

import strawberry

from schema.enums import Sex


@strawberry.type(description="A patient as the alliance knows them: a pseudonym, sex and age.")
class Patient:
    pseudonym: str = strawberry.field(
        description="HMAC of the resident ID under the alliance's linkage key; the same at every "
        "hospital."
    )
    sex: Sex
    age: int | None


@strawberry.input(
    description="A patient in a request. The resident ID is checked (GB 11643), "
    "turned into the pseudonym in memory, and never stored or logged."
)
class PatientInput:
    resident_id: str
    sex: Sex
    age: int | None = None


@strawberry.type(description="An ICD-10 diagnosis.")
class Diagnosis:
    code: str
    name: str


@strawberry.input
class DiagnosisInput:
    code: str
    name: str
