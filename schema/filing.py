"""Filing (备案) with the provincial alliance office: the alliance's filing, its applications
(seed 003 Annex 2) with their history, and the mutations of each step."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum

import strawberry

from adapters.registry.records import (
    AllianceRecord,
    FiledAgreement,
    FiledHospital,
    FiledMember,
    FilingApplicationRecord,
    FilingStepRecord,
)
from resolvers import filing, global_ids, registry
from schema.enums import (
    AgreementStatus,
    AllianceLevel,
    FilingStatus,
    Grade,
    HospitalType,
    MemberRole,
    Ownership,
)
from schema.fan_out import FanOut
from schema.types import Ctx


@strawberry.enum(description="A step of a filing application, in the form's order.")
class FilingStep(Enum):
    DRAFTED = "DRAFTED"
    LEAD_HOSPITAL_OPINION = strawberry.enum_value(
        "LEAD_HOSPITAL_OPINION",
        description="牵头科室所属医院意见: MEMBER_ADMIN of the lead hospital.",
    )
    MUNICIPAL_OPINION = strawberry.enum_value(
        "MUNICIPAL_OPINION",
        description="属地市级卫生健康行政部门意见, where required: recorded by REGULATOR.",
    )
    ASSESSMENT_OPINION = strawberry.enum_value(
        "ASSESSMENT_OPINION", description="省专科联盟管理办公室评估意见: REGULATOR."
    )
    DECISION = strawberry.enum_value("DECISION", description="省卫生健康委意见: REGULATOR.")


@strawberry.enum
class FilingOpinionStep(Enum):
    LEAD_HOSPITAL_OPINION = "LEAD_HOSPITAL_OPINION"
    MUNICIPAL_OPINION = "MUNICIPAL_OPINION"
    ASSESSMENT_OPINION = "ASSESSMENT_OPINION"


# strawberry.enum registers the workflow's own class in place: one list of statuses.
FilingApplicationStatus = filing.FilingApplicationStatus
strawberry.enum(FilingApplicationStatus)


@strawberry.enum(description="Whom the lead hospital answers to (隶属关系).")
class LeadHospitalAffiliation(Enum):
    PROVINCIAL = strawberry.enum_value(
        "PROVINCIAL", description="委直委管 / 省直省管: no municipal opinion."
    )
    MUNICIPAL = strawberry.enum_value(
        "MUNICIPAL", description="市属: the municipal commission's opinion is required."
    )


@strawberry.enum
class FilingDecision(Enum):
    FILED = "FILED"
    REJECTED = "REJECTED"


@strawberry.type(description="A step taken: who took it, in which role, when, and the opinion.")
class FilingHistoryEntry:
    record: strawberry.Private[FilingStepRecord]

    @strawberry.field(description="Which application (1 for the first, 2 after a re-draft …).")
    def attempt(self) -> int:
        return self.record.attempt

    @strawberry.field
    def step(self) -> FilingStep:
        return FilingStep(self.record.step)

    @strawberry.field(description="The gateway role the step was taken in.")
    def role(self) -> str:
        return self.record.role

    @strawberry.field
    def at(self) -> datetime:
        return self.record.at

    @strawberry.field(description="The subject of the token that took the step.")
    def by(self) -> str:
        return self.record.subject

    @strawberry.field(description="Whose opinion it is: the hospital, commission or office.")
    def authority(self) -> str | None:
        return self.record.authority

    @strawberry.field(description="For an opinion: supports (true) or not; a decision: filed.")
    def favourable(self) -> bool | None:
        return self.record.favourable

    @strawberry.field
    def opinion(self) -> str | None:
        return self.record.opinion


@strawberry.type(name="FiledHospital", description="A hospital as the application names it.")
class FiledHospitalType:
    record: strawberry.Private[FiledHospital]

    @strawberry.field
    def code(self) -> str:
        return self.record.code

    @strawberry.field
    def name(self) -> str:
        return self.record.name

    @strawberry.field
    def grade(self) -> Grade:
        return Grade(self.record.grade)

    @strawberry.field
    def type(self) -> HospitalType:
        return HospitalType(self.record.type)

    @strawberry.field
    def ownership(self) -> Ownership:
        return Ownership(self.record.ownership)

    @strawberry.field
    def division_code(self) -> str:
        return self.record.division_code


@strawberry.type(name="FiledAgreement", description="A member's agreement at drafting.")
class FiledAgreementType:
    record: strawberry.Private[FiledAgreement]

    @strawberry.field
    def signed_on(self) -> date:
        return self.record.signed_on

    @strawberry.field
    def effective_on(self) -> date:
        return self.record.effective_on

    @strawberry.field
    def expires_on(self) -> date:
        return self.record.expires_on

    @strawberry.field
    def term_years(self) -> int:
        return self.record.term_years

    @strawberry.field(description="Its status on the day the application was drafted.")
    def status(self) -> AgreementStatus:
        return AgreementStatus(self.record.status)


@strawberry.type(name="FiledMember", description="A member as the application lists it.")
class FiledMemberType:
    record: strawberry.Private[FiledMember]

    @strawberry.field
    def hospital(self) -> FiledHospitalType:
        return FiledHospitalType(record=self.record.hospital)

    @strawberry.field
    def role(self) -> MemberRole:
        return MemberRole(self.record.role)

    @strawberry.field
    def joined_on(self) -> date:
        return self.record.joined_on

    @strawberry.field
    def agreement(self) -> FiledAgreementType | None:
        a = self.record.agreement
        return FiledAgreementType(record=a) if a else None


@strawberry.type
class FiledCharterResolution:
    number: str
    adopted_on: date
    summary: str


@strawberry.type(
    description="A filing application (省级专科联盟申请表, seed 003 Annex 2): the form as drafted, "
    "the registry as it stood then, and its steps."
)
class FilingApplication:
    record: strawberry.Private[FilingApplicationRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(global_ids.encode("FilingApplication", self.record.id))

    @strawberry.field(description="1 for the alliance's first application, then 2, 3 …")
    def attempt(self) -> int:
        return self.record.attempt

    @strawberry.field
    def status(self) -> FilingApplicationStatus:
        return FilingApplicationStatus(self.record.status)

    @strawberry.field(description="The step it awaits; null once decided.")
    def next_step(self) -> FilingStep | None:
        if self.record.status in ("FILED", "REJECTED"):
            return None
        return FilingStep(filing.next_step(self.record).value)

    @strawberry.field(description="拟申请成立的专科联盟名称, checked under the naming rule.")
    def name(self) -> str:
        return self.record.form.name

    @strawberry.field
    def specialty(self) -> str:
        return self.record.form.specialty

    @strawberry.field
    def level(self) -> AllianceLevel:
        return AllianceLevel(self.record.form.level)

    @strawberry.field(description="联盟组建时间.")
    def founded_on(self) -> date:
        return self.record.form.founded_on

    @strawberry.field(description="牵头科室.")
    def lead_department(self) -> str:
        return self.record.form.lead_department

    @strawberry.field(description="负责人 of the lead department.")
    def department_head(self) -> str:
        return self.record.form.department_head

    @strawberry.field(description="学科带头人.")
    def discipline_leader(self) -> str:
        return self.record.form.discipline_leader

    @strawberry.field(description="所属医院, with its grade and type (等级和类别).")
    def lead_hospital(self) -> FiledHospitalType:
        return FiledHospitalType(record=self.record.form.lead_hospital)

    @strawberry.field
    def lead_hospital_affiliation(self) -> LeadHospitalAffiliation:
        return LeadHospitalAffiliation(self.record.form.lead_hospital_affiliation)

    @strawberry.field
    def municipal_opinion_required(self) -> bool:
        return self.record.municipal_opinion_required

    @strawberry.field(
        description="联盟成员单位: the active members and their agreements at drafting."
    )
    def members(self) -> list[FiledMemberType]:
        return [FiledMemberType(record=m) for m in self.record.form.members]

    @strawberry.field(description="联盟章程: its version at drafting.")
    def charter_version(self) -> str:
        return self.record.form.charter_version

    @strawberry.field(description="The council resolutions that adopted or amended the charter.")
    def charter_resolutions(self) -> list[FiledCharterResolution]:
        return [
            FiledCharterResolution(number=r.number, adopted_on=r.adopted_on, summary=r.summary)
            for r in self.record.form.charter_resolutions
        ]

    @strawberry.field(description="牵头专业学科（科室）的学科建设水平.")
    def discipline_building(self) -> str:
        return self.record.form.discipline_building

    @strawberry.field(description="对全省专业学科的带动和发展计划或规划.")
    def development_plan(self) -> str:
        return self.record.form.development_plan

    @strawberry.field
    def drafted_at(self) -> datetime:
        return self.record.drafted_at

    @strawberry.field
    def decided_at(self) -> datetime | None:
        return self.record.decided_at

    @strawberry.field(description="The filing number, once FILED.")
    def number(self) -> str | None:
        return self.record.number

    @strawberry.field(description="Why it was rejected, once REJECTED.")
    def rejection_reason(self) -> str | None:
        return self.record.rejection_reason

    @strawberry.field(description="Its steps, in order.")
    async def history(self, info: Ctx) -> list[FilingHistoryEntry]:
        steps = await filing.history(info.context, self.record.attempt)
        return [FilingHistoryEntry(record=s) for s in steps]


@strawberry.type(description="Filing (备案) with the provincial alliance office.")
class Filing:
    record: strawberry.Private[AllianceRecord]

    @strawberry.field(
        description="The alliance's filing: FILED once an application is filed, and while a "
        "re-filing is under way; else where its application stands."
    )
    def status(self) -> FilingStatus:
        return FilingStatus(self.record.filing_status)

    @strawberry.field(description="The filing number in force, e.g. 豫卫联备〔2026〕001号.")
    def number(self) -> str | None:
        return self.record.filing_number

    @strawberry.field(description="The latest application: the one under way, or the last decided.")
    async def application(self, info: Ctx) -> FilingApplication | None:
        record = await filing.latest(info.context)
        return FilingApplication(record=record) if record else None

    @strawberry.field(description="Every application, newest first.")
    async def applications(self, info: Ctx) -> list[FilingApplication]:
        return [FilingApplication(record=r) for r in await filing.applications(info.context)]

    @strawberry.field(description="Every step of every application, oldest first.")
    async def history(self, info: Ctx) -> list[FilingHistoryEntry]:
        return [FilingHistoryEntry(record=s) for s in await filing.history(info.context)]


@strawberry.input(description="The application form; fields left out take the registry's value.")
class DraftFilingInput:
    department_head: str = strawberry.field(description="负责人 of the lead department.")
    lead_hospital_affiliation: LeadHospitalAffiliation
    discipline_building: str = strawberry.field(description="学科建设水平 (narrative).")
    name: str | None = strawberry.field(
        default=None,
        description="The name to file; the alliance's by default. 「省名+牵头单位+专业类别+专科联盟」.",
    )
    founded_on: date | None = None
    lead_department: str | None = None
    discipline_leader: str | None = None
    development_plan: str | None = strawberry.field(
        default=None, description="带动和发展计划 (narrative); the alliance's plan by default."
    )


@strawberry.input
class RecordFilingOpinionInput:
    step: FilingOpinionStep
    opinion: str
    favourable: bool = strawberry.field(
        default=True,
        description="false: the lead hospital or the municipal commission does not consent, which "
        "ends the application (REJECTED); the office's assessment only advises.",
    )
    authority: str | None = strawberry.field(
        default=None,
        description="MUNICIPAL_OPINION only, required there: the commission, e.g. 洛阳市卫生健康委员会.",
    )


@strawberry.input
class DecideFilingInput:
    decision: FilingDecision
    opinion: str | None = strawberry.field(
        default=None, description="The commission's opinion; required (the reason) to reject."
    )


@strawberry.type
class FilingPayload:
    application: FilingApplication
    filing: Filing


async def _payload(info: Ctx, record: FilingApplicationRecord) -> FilingPayload:
    alliance = await registry.alliance(info.context)
    return FilingPayload(
        application=FilingApplication(record=record), filing=Filing(record=alliance)
    )


@strawberry.type
class FilingMutations:
    @strawberry.mutation(
        description="Draft a filing application (SECRETARIAT, ALLIANCE_ADMIN): when none is under "
        "way, after a rejection, or to file a filed alliance again.",
        extensions=[FanOut()],
    )
    async def draft_filing(self, info: Ctx, input: DraftFilingInput) -> FilingPayload:
        record = await filing.draft(
            info.context,
            filing.FilingDraft(
                department_head=input.department_head,
                lead_hospital_affiliation=filing.LeadHospitalAffiliation[
                    input.lead_hospital_affiliation.name
                ],
                discipline_building=input.discipline_building,
                name=input.name,
                founded_on=input.founded_on,
                lead_department=input.lead_department,
                discipline_leader=input.discipline_leader,
                development_plan=input.development_plan,
            ),
        )
        return await _payload(info, record)

    @strawberry.mutation(
        description="Record the opinion the application awaits: the lead hospital's "
        "(its MEMBER_ADMIN), the municipal commission's and the provincial office's (REGULATOR).",
        extensions=[FanOut()],
    )
    async def record_filing_opinion(
        self, info: Ctx, input: RecordFilingOpinionInput
    ) -> FilingPayload:
        record = await filing.record_opinion(
            info.context,
            filing.Opinion(
                step=filing.FilingStep(input.step.value),
                text=input.opinion,
                favourable=input.favourable,
                authority=input.authority,
            ),
        )
        return await _payload(info, record)

    @strawberry.mutation(
        description="The commission's decision (REGULATOR): FILED, with a filing number, or "
        "REJECTED with the reason.",
        extensions=[FanOut()],
    )
    async def decide_filing(self, info: Ctx, input: DecideFilingInput) -> FilingPayload:
        record = await filing.decide(
            info.context, input.decision is FilingDecision.FILED, input.opinion
        )
        return await _payload(info, record)
