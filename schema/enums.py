"""Enumerations of the public contract."""

from __future__ import annotations

from enum import Enum

import strawberry

from resolvers import agreements, membership
from resolvers.principal import Purpose as _Purpose
from resolvers.principal import Role as _Role

# strawberry.enum registers each class in place and returns it: the names stay types.
AgreementStatus = agreements.AgreementStatus
strawberry.enum(AgreementStatus)
TerminationReason = agreements.TerminationReason
strawberry.enum(TerminationReason)
DueDiligenceItem = membership.DueDiligenceItem
strawberry.enum(DueDiligenceItem)
ExitReason = membership.ExitReason
strawberry.enum(ExitReason)
Role = _Role
strawberry.enum(Role)
Purpose = _Purpose
strawberry.enum(Purpose)


@strawberry.enum
class AllianceLevel(Enum):
    PROVINCIAL = "PROVINCIAL"
    MUNICIPAL = "MUNICIPAL"
    REGIONAL = "REGIONAL"
    CROSS_PROVINCIAL = "CROSS_PROVINCIAL"


@strawberry.enum
class AllianceForm(Enum):
    LOOSE = "LOOSE"
    CLOSE = "CLOSE"


@strawberry.enum
class FilingStatus(Enum):
    APPLIED = "APPLIED"
    UNDER_REVIEW = "UNDER_REVIEW"
    FILED = "FILED"
    REJECTED = "REJECTED"


@strawberry.enum
class Standing(Enum):
    GOOD = "GOOD"
    YELLOW_CARD = "YELLOW_CARD"
    ORDERED_TO_DISSOLVE = "ORDERED_TO_DISSOLVE"
    DISSOLVED = "DISSOLVED"


@strawberry.enum
class Grade(Enum):
    GRADE_3A = "GRADE_3A"
    GRADE_3B = "GRADE_3B"
    GRADE_2A = "GRADE_2A"
    GRADE_2B = "GRADE_2B"
    GRADE_1 = "GRADE_1"
    UNGRADED = "UNGRADED"


@strawberry.enum
class Ownership(Enum):
    PUBLIC = "PUBLIC"
    PRIVATE = "PRIVATE"


@strawberry.enum
class HospitalType(Enum):
    GENERAL = "GENERAL"
    TCM = "TCM"
    SPECIALTY = "SPECIALTY"
    COMMUNITY = "COMMUNITY"
    TOWNSHIP = "TOWNSHIP"


@strawberry.enum
class MemberRole(Enum):
    LEAD = "LEAD"
    BACKBONE = "BACKBONE"
    MEMBER = "MEMBER"


@strawberry.enum
class MemberStatus(Enum):
    ACTIVE = "ACTIVE"
    WITHDRAWN = "WITHDRAWN"
    EXPELLED = "EXPELLED"


@strawberry.enum
class CouncilRole(Enum):
    CHAIR = "CHAIR"
    VICE_CHAIR = "VICE_CHAIR"
    STANDING_MEMBER = "STANDING_MEMBER"
    SECRETARY = "SECRETARY"


@strawberry.enum
class ResolutionSubject(Enum):
    ADMIT_MEMBER = "ADMIT_MEMBER"
    TERMINATE_AGREEMENT = "TERMINATE_AGREEMENT"
    EXPEL_MEMBER = "EXPEL_MEMBER"
    AMEND_CHARTER = "AMEND_CHARTER"
    OTHER = "OTHER"


@strawberry.enum
class ApplicationStatus(Enum):
    SUBMITTED = "SUBMITTED"
    REVIEW_PASSED = "REVIEW_PASSED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    SIGNED = "SIGNED"


@strawberry.enum(
    description="JOIN: a hospital applies to join; RENEWAL: a member's re-evaluation "
    "before its agreement is renewed (seed 000 §19)."
)
class ApplicationKind(Enum):
    JOIN = "JOIN"
    RENEWAL = "RENEWAL"


@strawberry.enum
class ReviewDecision(Enum):
    PASS = "PASS"
    REJECT = "REJECT"


@strawberry.enum
class ApprovalDecision(Enum):
    APPROVE = "APPROVE"
    REJECT = "REJECT"


@strawberry.enum
class Sex(Enum):
    MALE = "MALE"
    FEMALE = "FEMALE"
    UNKNOWN = "UNKNOWN"


@strawberry.enum
class Urgency(Enum):
    ROUTINE = "ROUTINE"
    URGENT = "URGENT"
    EMERGENCY = "EMERGENCY"
