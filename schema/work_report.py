"""The semi-annual work report (每半年报送工作情况总结) to the provincial office: its counts (seed 003
Annex 1), narrative, submission and deadline."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum

import strawberry

from resolvers import clock
from resolvers.work_report import report
from resolvers.work_report.counts import MemberCounts
from schema.fan_out import FanOut
from schema.types import Ctx, Hospital, hospital_of


@strawberry.enum(description="DRAFT while the office writes it; SUBMITTED once sent, then fixed.")
class WorkReportStatus(Enum):
    DRAFT = "DRAFT"
    SUBMITTED = "SUBMITTED"


@strawberry.interface(description="The counts of seed 003 Annex 1 (近一年内联盟工作开展情况).")
class AnnexCounts:
    academic_events: int = strawberry.field(
        description="举办学术活动次数: training events of every kind but free clinics (义诊)."
    )
    on_site_tours: int = strawberry.field(
        description="赴联盟单位巡诊次数: capacity-building activities ON_SITE_TOUR."
    )
    remote_consultations: int = strawberry.field(
        description="开展远程会诊次数: remote consultations requested, less those declined or "
        "cancelled (on-site consultations are not remote)."
    )
    people_trained: int = strawberry.field(
        description="为联盟单位培训人员数: participants of those events from hospitals other than "
        "the host, plus further-training placements (进修) begun."
    )
    referrals_up: int = strawberry.field(
        description="通过专科联盟上转病例数: referrals to the lead (between members: sent UP), "
        "less those rejected or cancelled."
    )
    referrals_down: int = strawberry.field(
        description="通过专科联盟下转病例数: the lead's referrals to members (between members: "
        "sent DOWN), less those rejected or cancelled."
    )
    new_techniques: int = strawberry.field(
        description="新技术、新业务: capacity-building activities NEW_TECHNIQUE begun."
    )


@strawberry.type(description="One member's part of the counts: what its own source holds.")
class WorkReportMember(AnnexCounts):
    code: strawberry.Private[str]
    complete: bool = strawberry.field(
        description="False: part of its source could not be read, so these counts are too low."
    )

    @strawberry.field
    def hospital(self, info: Ctx) -> Hospital:
        return hospital_of(info, self.code)

    @classmethod
    def of(cls, m: MemberCounts) -> WorkReportMember:
        c = m.counts
        return cls(
            code=m.hospital,
            complete=m.complete,
            academic_events=c.academic_events,
            on_site_tours=c.on_site_tours,
            remote_consultations=c.remote_consultations,
            people_trained=c.people_trained,
            referrals_up=c.referrals_up,
            referrals_down=c.referrals_down,
            new_techniques=c.new_techniques,
        )


@strawberry.type(description="A half year's report as filed: its state and deadline.")
class WorkReportSummary:
    year: int
    half: int = strawberry.field(description="1: January–June; 2: July–December.")
    status: WorkReportStatus
    due_on: date = strawberry.field(
        description="The deadline ([rules.reporting] due_days_after_half after the half year; "
        "default 15 days: 15 July, 15 January)."
    )
    submitted_at: datetime | None
    submitted_by: str | None = strawberry.field(description="The subject who submitted it.")
    late: bool = strawberry.field(
        description="Submitted after the deadline, or not submitted and the deadline passed."
    )

    @classmethod
    def of(cls, f: report.Filed) -> WorkReportSummary:
        return cls(
            year=f.period.year,
            half=f.period.half,
            status=WorkReportStatus(f.status.value),
            due_on=f.due_on,
            submitted_at=f.submitted_at,
            submitted_by=f.submitted_by,
            late=f.late(clock.today()),
        )


@strawberry.type(
    description="The semi-annual work report: the alliance's counts in total and per member, "
    "and the office's narrative. A submitted report reads as it was sent."
)
class WorkReport(WorkReportSummary, AnnexCounts):
    narrative: str = strawberry.field(description="The office's summary (工作情况总结).")
    computed_at: datetime = strawberry.field(
        description="When the counts were read from the members' sources (for a submitted "
        "report: when it was submitted)."
    )
    provisional: bool = strawberry.field(
        description="Some member could not be read: the counts are too low by its part."
    )
    members: list[WorkReportMember]
    unread_members: list[str] = strawberry.field(
        description="The codes of the members that could not be read."
    )

    @classmethod
    def of_report(cls, r: report.WorkReport) -> WorkReport:
        f, t = r.filed, r.tally
        c = t.total
        return cls(
            year=f.period.year,
            half=f.period.half,
            status=WorkReportStatus(f.status.value),
            due_on=f.due_on,
            submitted_at=f.submitted_at,
            submitted_by=f.submitted_by,
            late=f.late(clock.today()),
            academic_events=c.academic_events,
            on_site_tours=c.on_site_tours,
            remote_consultations=c.remote_consultations,
            people_trained=c.people_trained,
            referrals_up=c.referrals_up,
            referrals_down=c.referrals_down,
            new_techniques=c.new_techniques,
            narrative=r.narrative,
            computed_at=r.computed_at,
            provisional=t.provisional,
            members=[WorkReportMember.of(m) for m in t.members],
            unread_members=t.unread,
        )


@strawberry.type
class WorkReportPayload:
    work_report: WorkReport


@strawberry.type
class WorkReportQueries:
    @strawberry.field(
        description="The half year's work report (half 1: January–June, 2: July–December, China "
        "Standard Time). SECRETARIAT and ALLIANCE_ADMIN read it at any time, a draft's counts "
        "read now from the members; REGULATOR reads it once submitted (null before).",
        extensions=[FanOut()],
    )
    async def work_report(self, info: Ctx, year: int, half: int) -> WorkReport | None:
        found = await report.get(info.context, year, half)
        return WorkReport.of_report(found) if found else None

    @strawberry.field(
        description="Every half year since the alliance was founded, newest first: submitted, "
        "due, late or missing. SECRETARIAT, ALLIANCE_ADMIN and REGULATOR.",
        extensions=[FanOut()],
    )
    async def work_reports(self, info: Ctx) -> list[WorkReportSummary]:
        return [WorkReportSummary.of(f) for f in await report.reports(info.context)]


@strawberry.type
class WorkReportMutations:
    @strawberry.mutation(
        description="Writes the narrative of a half year's report, until it is submitted. "
        "SECRETARIAT and ALLIANCE_ADMIN.",
        extensions=[FanOut()],
    )
    async def save_work_report_narrative(
        self, info: Ctx, year: int, half: int, narrative: str
    ) -> WorkReportPayload:
        saved = await report.save_narrative(info.context, year, half, narrative)
        return WorkReportPayload(work_report=WorkReport.of_report(saved))

    @strawberry.mutation(
        description="Submits a half year's report once it has ended, with its counts read now "
        "and kept as sent; once only (else INVALID_TRANSITION). SECRETARIAT and ALLIANCE_ADMIN.",
        extensions=[FanOut()],
    )
    async def submit_work_report(self, info: Ctx, year: int, half: int) -> WorkReportPayload:
        submitted = await report.submit(info.context, year, half)
        return WorkReportPayload(work_report=WorkReport.of_report(submitted))
