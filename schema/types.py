"""Object types of the public contract. Each wraps a record and resolves links through resolvers/."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, cast

import strawberry
from strawberry.types import Info

from adapters.registry.records import (
    AgreementRecord,
    AllianceRecord,
    ApplicationRecord,
    CouncilSeatRecord,
    HospitalRecord,
    MembershipRecord,
    ResolutionRecord,
)
from resolvers import agreements, clock, global_ids, registry
from resolvers.context import RequestContext
from resolvers.errors import ErrorCode, GatewayError
from schema.connections import Connection, Edge, PageInfo
from schema.enums import (
    AgreementStatus,
    AllianceForm,
    AllianceLevel,
    ApplicationKind,
    ApplicationStatus,
    CouncilRole,
    DueDiligenceItem,
    ExitReason,
    Grade,
    HospitalType,
    MemberRole,
    MemberStatus,
    Ownership,
    ResolutionSubject,
    Standing,
    TerminationReason,
)

if TYPE_CHECKING:
    from schema.filing import Filing

Ctx = Info[RequestContext, None]


@strawberry.interface(description="An object with an opaque, globally unique id.")
class Node:
    id: strawberry.ID


@strawberry.type(description="A hospital: a legal entity with its own data (医疗机构).")
class Hospital(Node):
    record: strawberry.Private[HospitalRecord]

    @classmethod
    def of(cls, record: HospitalRecord) -> Hospital:
        # Plain fields, filled once: a field with a resolver costs a call per field per node.
        return cls(
            id=strawberry.ID(global_ids.encode("Hospital", record.code)),
            record=record,
            code=record.code,
            name=record.name,
            credit_code=record.credit_code,
            grade=Grade(record.grade),
            ownership=Ownership(record.ownership),
            type=HospitalType(record.type),
            division_code=record.division_code,
            address=record.address,
            licence_number=record.licence_number,
            licence_valid_until=record.licence_valid_until,
            authorised_beds=record.authorised_beds,
            open_beds=record.open_beds,
            staff_total=record.staff_total,
            medical_staff=record.medical_staff,
            management_staff=record.management_staff,
            specialty_ward=record.specialty_ward,
            specialty_beds=record.specialty_beds,
            contact_name=record.contact_name,
            contact_phone=record.contact_phone,
        )

    code: str = strawberry.field(description="The hospital's code in the alliance; tokens name it.")
    name: str
    credit_code: str = strawberry.field(
        description="Unified social credit code (统一社会信用代码, GB 32100)."
    )
    grade: Grade
    ownership: Ownership
    type: HospitalType
    division_code: str = strawberry.field(description="Administrative division code (GB/T 2260).")
    address: str | None
    licence_number: str | None = strawberry.field(
        description="Practice licence number (医疗机构执业许可证)."
    )
    licence_valid_until: date | None
    authorised_beds: int | None = strawberry.field(description="Authorised beds (编制床位).")
    open_beds: int | None = strawberry.field(description="Open beds (开放床位).")
    staff_total: int | None
    medical_staff: int | None
    management_staff: int | None
    specialty_ward: str | None
    specialty_beds: int
    contact_name: str = strawberry.field(description="The alliance contact person (联络人).")
    contact_phone: str

    @strawberry.field(description="Its membership of the alliance; null if it never joined.")
    async def membership(self, info: Ctx) -> Member | None:
        record = await registry.membership(info.context, self.record.code)
        return Member(record=record) if record else None


def hospital_of(info: Ctx, code: str) -> Hospital:
    """A referenced hospital, as the answer of a field typed Hospital: immediate, or an awaitable
    that graphql-core awaits. Cast, because Strawberry takes the field's GraphQL type from the
    resolver's annotation, which therefore cannot say Awaitable."""
    return cast(Hospital, hospital_or_awaitable(info, code))


def hospital_or_awaitable(info: Ctx, code: str) -> Hospital | Awaitable[Hospital]:
    """A referenced hospital. A page's hospitals are usually fetched ahead (see
    resolvers.lists): then the answer is immediate, with no awaitable per field."""
    known = info.context.loaders.known_hospitals.get(code)
    if known is not None:
        return Hospital.of(known)
    return _load_hospital(info, code)


async def _load_hospital(info: Ctx, code: str) -> Hospital:
    record = await registry.hospital(info.context, code)
    if record is None:
        raise GatewayError(
            ErrorCode.INTERNAL_SERVER_ERROR,
            f"A record names hospital {code}, which the alliance registry does not know.",
        )
    return Hospital.of(record)


@strawberry.type(
    description="A cooperation agreement (合作协议) between the lead (甲方) and a member (乙方)."
)
class Agreement(Node):
    record: strawberry.Private[AgreementRecord]

    @classmethod
    def of(cls, record: AgreementRecord) -> Agreement:
        return cls(id=strawberry.ID(global_ids.encode("Agreement", record.id)), record=record)

    @strawberry.field(description="Party A (甲方): the lead hospital.")
    def party_a(self, info: Ctx) -> Hospital:
        return hospital_of(info, self.record.party_a_code)

    @strawberry.field(description="Party B (乙方): the member hospital.")
    def party_b(self, info: Ctx) -> Hospital:
        return hospital_of(info, self.record.party_b_code)

    @strawberry.field
    def signed_on(self) -> date:
        return self.record.signed_on

    @strawberry.field
    def term_years(self) -> int:
        return self.record.term_years

    @strawberry.field
    def effective_on(self) -> date:
        return self.record.effective_on

    @strawberry.field(description="The last day the agreement is in force.")
    def expires_on(self) -> date:
        return self.record.expires_on

    @strawberry.field(description="Derived from today's date unless terminated or renewed.")
    def status(self, info: Ctx) -> AgreementStatus:
        return agreements.status_of(self.record, clock.today(), info.context.rules)

    @strawberry.field(description="The first day renewal talks may conclude (续约窗口).")
    def renewal_window_opens_on(self, info: Ctx) -> date:
        return agreements.renewal_window_opens(self.record, info.context.rules)

    @strawberry.field
    def closed_on(self) -> date | None:
        return self.record.closed_on

    @strawberry.field
    def termination_reason(self) -> TerminationReason | None:
        reason = self.record.termination_reason
        return TerminationReason(reason) if reason else None

    @strawberry.field
    def termination_note(self) -> str | None:
        return self.record.termination_note

    @strawberry.field(description="The agreement this one renewed.")
    async def renews(self, info: Ctx) -> Agreement | None:
        if self.record.renews_id is None:
            return None
        record = await registry.agreement(info.context, self.record.renews_id)
        return Agreement.of(record) if record else None


@strawberry.type(description="An inclusion criterion a member was admitted without, and why.")
class InclusionException:
    criterion: str = strawberry.field(
        description="MIN_LEVEL | PUBLIC_ONLY | MIN_SPECIALTY_BEDS, as in BAD_USER_INPUT's criterion."
    )
    reason: str


@strawberry.type(description="A hospital's membership of the alliance (成员单位).")
class Member(Node):
    record: strawberry.Private[MembershipRecord]

    def __init__(self, record: MembershipRecord) -> None:
        self.record = record
        self.id = strawberry.ID(global_ids.encode("Member", record.hospital_code))

    async def _h(self, info: Ctx) -> HospitalRecord:
        hospital = hospital_or_awaitable(info, self.record.hospital_code)
        return (hospital if isinstance(hospital, Hospital) else await hospital).record

    @strawberry.field
    def code(self) -> str:
        return self.record.hospital_code

    @strawberry.field
    async def name(self, info: Ctx) -> str:
        return (await self._h(info)).name

    @strawberry.field
    async def grade(self, info: Ctx) -> Grade:
        return Grade((await self._h(info)).grade)

    @strawberry.field
    async def ownership(self, info: Ctx) -> Ownership:
        return Ownership((await self._h(info)).ownership)

    @strawberry.field
    async def type(self, info: Ctx) -> HospitalType:
        return HospitalType((await self._h(info)).type)

    @strawberry.field
    def hospital(self, info: Ctx) -> Hospital:
        return hospital_of(info, self.record.hospital_code)

    @strawberry.field
    def role(self) -> MemberRole:
        return MemberRole(self.record.role)

    @strawberry.field
    def status(self) -> MemberStatus:
        return MemberStatus(self.record.status)

    @strawberry.field
    def joined_on(self) -> date:
        return self.record.joined_on

    @strawberry.field(description="When the alliance plaque was granted (授牌).")
    def plaque_granted_on(self) -> date | None:
        return self.record.plaque_granted_on

    @strawberry.field
    def left_on(self) -> date | None:
        return self.record.left_on

    @strawberry.field
    def exit_reason(self) -> ExitReason | None:
        return ExitReason(self.record.exit_reason) if self.record.exit_reason else None

    @strawberry.field(
        description="Admitted by exception to one of the inclusion criteria (纳入标准): which, "
        "and why; null when it met them all."
    )
    def inclusion_exception(self) -> InclusionException | None:
        criterion = self.record.inclusion_exception
        reason = self.record.inclusion_exception_reason
        if criterion is None or reason is None:
            return None
        return InclusionException(criterion=criterion, reason=reason)

    @strawberry.field(description="The member's most recent agreement; null for the lead hospital.")
    async def agreement(self, info: Ctx) -> Agreement | None:
        record = await registry.latest_agreement(info.context, self.record.hospital_code)
        return Agreement.of(record) if record else None

    @strawberry.field(description="Every agreement the member has signed, newest first.")
    async def agreements(self, info: Ctx) -> list[Agreement]:
        records = await registry.agreement_history(info.context, self.record.hospital_code)
        return [Agreement.of(r) for r in records]


@strawberry.input
class MemberFilter:
    statuses: list[MemberStatus] | None = strawberry.field(
        default=None, description="Defaults to ACTIVE members only."
    )
    roles: list[MemberRole] | None = None


@strawberry.type
class MemberConnection(Connection[Member]):
    statuses: strawberry.Private[list[str] | None]
    roles: strawberry.Private[list[str] | None]

    @strawberry.field
    async def total_count(self, info: Ctx) -> int:
        return await registry.count_members(info.context, self.statuses, self.roles)


@strawberry.type
class Person:
    name: str
    title: str | None


@strawberry.type(description="A council seat (理事会席位).")
class CouncilSeat:
    record: strawberry.Private[CouncilSeatRecord]

    @strawberry.field
    def role(self) -> CouncilRole:
        return CouncilRole(self.record.role)

    @strawberry.field
    def holder(self) -> Person:
        return Person(name=self.record.holder_name, title=self.record.holder_title)

    @strawberry.field
    def hospital(self, info: Ctx) -> Hospital:
        return hospital_of(info, self.record.hospital_code)

    @strawberry.field
    def since(self) -> date:
        return self.record.since


@strawberry.type(description="A council resolution (理事会决议).")
class Resolution:
    record: strawberry.Private[ResolutionRecord]

    @strawberry.field
    def number(self) -> str:
        return self.record.number

    @strawberry.field
    def adopted_on(self) -> date:
        return self.record.adopted_on

    @strawberry.field
    def subject(self) -> ResolutionSubject:
        return ResolutionSubject(self.record.subject)

    @strawberry.field
    def summary(self) -> str:
        return self.record.summary


@strawberry.type(description="The specialty alliance (专科联盟) this gateway serves.")
class Alliance(Node):
    record: strawberry.Private[AllianceRecord]

    @classmethod
    def of(cls, record: AllianceRecord) -> Alliance:
        return cls(id=strawberry.ID(global_ids.encode("Alliance", record.id)), record=record)

    @strawberry.field
    def name(self) -> str:
        return self.record.name

    @strawberry.field
    def specialty(self) -> str:
        return self.record.specialty

    @strawberry.field
    def level(self) -> AllianceLevel:
        return AllianceLevel(self.record.level)

    @strawberry.field
    def form(self) -> AllianceForm:
        return AllianceForm(self.record.form)

    @strawberry.field
    def lead_hospital(self, info: Ctx) -> Hospital:
        return hospital_of(info, self.record.lead_hospital_code)

    @strawberry.field(description="Lead department (牵头科室).")
    def lead_department(self) -> str:
        return self.record.lead_department

    @strawberry.field(description="Discipline leader (学科带头人).")
    def discipline_leader(self) -> str:
        return self.record.discipline_leader

    @strawberry.field
    def founded_on(self) -> date:
        return self.record.founded_on

    @strawberry.field
    def charter_version(self) -> str:
        return self.record.charter_version

    @strawberry.field
    def development_plan(self) -> str | None:
        return self.record.development_plan

    @strawberry.field(description="Filing (备案) with the provincial alliance office.")
    def filing(self) -> Annotated[Filing, strawberry.lazy("schema.filing")]:
        from schema.filing import Filing

        return Filing(record=self.record)

    @strawberry.field
    def standing(self) -> Standing:
        return Standing(self.record.standing)

    @strawberry.field
    async def council(self, info: Ctx) -> list[CouncilSeat]:
        return [CouncilSeat(record=r) for r in await registry.council(info.context)]

    @strawberry.field
    async def resolutions(self, info: Ctx) -> list[Resolution]:
        return [Resolution(record=r) for r in await registry.resolutions(info.context)]

    @strawberry.field
    async def members(
        self,
        info: Ctx,
        first: Annotated[int | None, strawberry.argument(description="At most 100.")] = 50,
        after: str | None = None,
        filter: MemberFilter | None = None,
    ) -> MemberConnection:
        statuses = [s.value for s in filter.statuses] if filter and filter.statuses else ["ACTIVE"]
        roles = [r.value for r in filter.roles] if filter and filter.roles else None
        page = await registry.members_page(info.context, statuses, roles, first, after)
        return MemberConnection(
            edges=[Edge(cursor=c, node=Member(record=m)) for c, m in page.items],
            page_info=PageInfo.of(page),
            statuses=statuses,
            roles=roles,
        )


@strawberry.type(description="A hospital's application to join (入盟申请).")
class MembershipApplication(Node):
    record: strawberry.Private[ApplicationRecord]

    @classmethod
    def of(cls, record: ApplicationRecord) -> MembershipApplication:
        gid = global_ids.encode("MembershipApplication", record.id)
        return cls(id=strawberry.ID(gid), record=record)

    @strawberry.field
    def status(self) -> ApplicationStatus:
        return ApplicationStatus(self.record.status)

    @strawberry.field
    def hospital(self, info: Ctx) -> Hospital:
        return hospital_of(info, self.record.hospital_code)

    @strawberry.field
    def submitted_at(self) -> datetime:
        return self.record.submitted_at

    @strawberry.field(description="Secretariat initial review (初审).")
    def reviewed_at(self) -> datetime | None:
        return self.record.reviewed_at

    @strawberry.field
    def review_note(self) -> str | None:
        return self.record.review_note

    @strawberry.field(description="Due-diligence items the secretariat verified (seed 003).")
    def due_diligence(self) -> list[DueDiligenceItem]:
        return [DueDiligenceItem(i) for i in self.record.due_diligence]

    @strawberry.field(description="Chair institution's decision (理事长单位审批).")
    def decided_at(self) -> datetime | None:
        return self.record.decided_at

    @strawberry.field
    def decision_note(self) -> str | None:
        return self.record.decision_note

    @strawberry.field
    def kind(self) -> ApplicationKind:
        return ApplicationKind(self.record.kind)

    @strawberry.field(description="For a RENEWAL application, the agreement it would renew.")
    async def renews(self, info: Ctx) -> Agreement | None:
        if self.record.renews_agreement_id is None:
            return None
        record = await registry.agreement(info.context, self.record.renews_agreement_id)
        return Agreement.of(record) if record else None


@strawberry.type
class MembershipApplicationConnection(Connection[MembershipApplication]):
    statuses: strawberry.Private[list[str] | None]

    @strawberry.field
    async def total_count(self, info: Ctx) -> int:
        return await registry.count_applications(info.context, self.statuses)
