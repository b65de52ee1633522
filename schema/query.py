"""The root Query."""

from __future__ import annotations

from typing import Annotated

import strawberry

from resolvers import capacity, consultations, global_ids, referrals, registry, training
from schema.assessment import AssessmentQueries
from schema.audit import AuditQueries
from schema.capacity import CapacityActivity, CapacityQueries
from schema.connections import Edge, PageInfo
from schema.consultations import Consultation, ConsultationQueries
from schema.enums import ApplicationStatus
from schema.fan_out import FanOut
from schema.health import HealthQueries
from schema.referrals import Referral, ReferralQueries
from schema.results import ResultQueries, result_node
from schema.training import Placement, TrainingEvent, TrainingQueries
from schema.types import (
    Agreement,
    Alliance,
    Ctx,
    Hospital,
    Member,
    MembershipApplication,
    MembershipApplicationConnection,
    Node,
)
from schema.work_report import WorkReportQueries


async def node_by_id(info: Ctx, id: strawberry.ID) -> Node | None:
    ctx = info.context
    type_name, key = global_ids.decode(id)
    match type_name:
        case "Alliance":
            record = await registry.alliance(ctx)
            return Alliance.of(record) if key == [record.id] else None
        case "Hospital":
            hospital = await registry.hospital(ctx, key[0])
            return Hospital.of(hospital) if hospital else None
        case "Member":
            ctx.who  # noqa: B018
            membership = await registry.membership(ctx, key[0])
            return Member(record=membership) if membership else None
        case "Agreement":
            agreement = await registry.agreement(ctx, global_ids.decode_int(id, "Agreement"))
            return Agreement.of(agreement) if agreement else None
        case "Referral":
            referral = await referrals.get(ctx, id)
            return Referral.of(referral) if referral else None
        case "Consultation":
            consultation = await consultations.get(ctx, id)
            return Consultation.of(consultation) if consultation else None
        case "TrainingEvent":
            event = await training.get_event(ctx, id)
            return TrainingEvent.of(event) if event else None
        case "Placement":
            placement = await training.get_placement(ctx, id)
            return Placement.of(placement) if placement else None
        case "CapacityActivity":
            activity = await capacity.get_activity(ctx, id)
            return CapacityActivity.of(activity) if activity else None
        case "TestResult" | "RecognitionDecision":
            return await result_node(info, type_name, id)
        case "MembershipApplication":
            app = await registry.application(ctx, global_ids.decode_int(id, type_name))
            return MembershipApplication.of(app) if app else None
    return None


@strawberry.type
class Query(
    ReferralQueries,
    AuditQueries,
    ConsultationQueries,
    TrainingQueries,
    CapacityQueries,
    ResultQueries,
    HealthQueries,
    WorkReportQueries,
    AssessmentQueries,
):
    @strawberry.field(description="The alliance this gateway serves.")
    async def alliance(self, info: Ctx) -> Alliance:
        return Alliance.of(await registry.alliance(info.context))

    @strawberry.field(description="A hospital known to the registry, by its code.")
    async def hospital(self, info: Ctx, code: str) -> Hospital | None:
        record = await registry.hospital(info.context, code)
        return Hospital.of(record) if record else None

    @strawberry.field(
        description="Any object by its global id; null if none or not visible to you.",
        extensions=[FanOut()],
    )
    async def node(self, info: Ctx, id: strawberry.ID) -> Node | None:
        return await node_by_id(info, id)

    @strawberry.field(
        description="Membership applications, newest first. SECRETARIAT, ALLIANCE_ADMIN and "
        "REGULATOR see all; a MEMBER_ADMIN sees its own hospital's."
    )
    async def membership_applications(
        self,
        info: Ctx,
        statuses: list[ApplicationStatus] | None = None,
        first: Annotated[int | None, strawberry.argument(description="At most 100.")] = 20,
        after: str | None = None,
    ) -> MembershipApplicationConnection | None:
        wanted = [s.value for s in statuses] if statuses else None
        page = await registry.applications_page(info.context, wanted, first, after)
        return MembershipApplicationConnection(
            edges=[Edge(cursor=c, node=MembershipApplication.of(a)) for c, a in page.items],
            page_info=PageInfo.of(page),
            statuses=wanted,
        )
