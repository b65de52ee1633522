"""The root Mutation: each step of the membership workflow, returning what changed."""

from __future__ import annotations

from dataclasses import fields
from datetime import date

import strawberry

from adapters.registry.records import HospitalRecord
from resolvers import agreements, membership, registry
from schema.assessment import AssessmentMutations
from schema.capacity import CapacityMutations
from schema.consultations import ConsultationMutations
from schema.enums import (
    ApprovalDecision,
    DueDiligenceItem,
    ExitReason,
    ReviewDecision,
    TerminationReason,
)
from schema.fan_out import FanOut
from schema.filing import FilingMutations
from schema.inputs import SignAgreementInput, SubmitMembershipApplicationInput
from schema.referrals import ReferralMutations
from schema.results import ResultMutations
from schema.training import TrainingMutations
from schema.types import Agreement, Ctx, Member, MembershipApplication
from schema.work_report import WorkReportMutations


@strawberry.type
class MembershipApplicationPayload:
    application: MembershipApplication


@strawberry.type
class SignAgreementPayload:
    agreement: Agreement
    member: Member
    application: MembershipApplication


@strawberry.type
class RenewAgreementPayload:
    agreement: Agreement = strawberry.field(description="The new agreement.")
    previous: Agreement = strawberry.field(description="The agreement it renews, now RENEWED.")
    application: MembershipApplication = strawberry.field(
        description="The approved RENEWAL application, now SIGNED."
    )


@strawberry.type
class AgreementPayload:
    agreement: Agreement


@strawberry.type
class MemberPayload:
    member: Member


def _hospital_record(data: SubmitMembershipApplicationInput) -> HospitalRecord:
    h = data.hospital
    values = {f.name: getattr(h, f.name) for f in fields(HospitalRecord)}
    values.update(
        grade=h.grade.value, ownership=h.ownership.value, type=h.type.value, code=h.code or ""
    )
    return HospitalRecord(**values)


async def _member(info: Ctx, code: str) -> Member:
    record = await registry.membership(info.context, code)
    assert record is not None
    return Member(record=record)


@strawberry.type
class Mutation(
    ReferralMutations,
    ConsultationMutations,
    TrainingMutations,
    CapacityMutations,
    ResultMutations,
    WorkReportMutations,
    FilingMutations,
    AssessmentMutations,
):
    @strawberry.mutation(
        description="A hospital applies to join; checked against the inclusion criteria.",
        extensions=[FanOut()],
    )
    async def submit_membership_application(
        self, info: Ctx, input: SubmitMembershipApplicationInput
    ) -> MembershipApplicationPayload:
        record = await membership.submit_application(info.context, _hospital_record(input))
        return MembershipApplicationPayload(application=MembershipApplication.of(record))

    @strawberry.mutation(
        description="The secretariat's initial review (初审), with due diligence.",
        extensions=[FanOut()],
    )
    async def review_membership_application(
        self,
        info: Ctx,
        id: strawberry.ID,
        decision: ReviewDecision,
        note: str | None = None,
        due_diligence: list[DueDiligenceItem] | None = None,
    ) -> MembershipApplicationPayload:
        record = await membership.review_application(
            info.context,
            id,
            decision is ReviewDecision.PASS,
            note,
            [membership.DueDiligenceItem(i.value) for i in due_diligence or []],
        )
        return MembershipApplicationPayload(application=MembershipApplication.of(record))

    @strawberry.mutation(
        description="The chair institution's approval (理事长单位审批).", extensions=[FanOut()]
    )
    async def approve_membership_application(
        self, info: Ctx, id: strawberry.ID, decision: ApprovalDecision, note: str | None = None
    ) -> MembershipApplicationPayload:
        record = await membership.approve_application(
            info.context, id, decision is ApprovalDecision.APPROVE, note
        )
        return MembershipApplicationPayload(application=MembershipApplication.of(record))

    @strawberry.mutation(
        description="Sign the cooperation agreement: the hospital becomes a member.",
        extensions=[FanOut()],
    )
    async def sign_agreement(self, info: Ctx, input: SignAgreementInput) -> SignAgreementPayload:
        signed = await membership.sign_agreement(
            info.context, input.application_id, input.signed_on, input.term_years
        )
        return SignAgreementPayload(
            agreement=Agreement.of(signed.agreement),
            member=await _member(info, signed.application.hospital_code),
            application=MembershipApplication.of(signed.application),
        )

    @strawberry.mutation(
        description="Ask to continue after an agreement's term (EXPIRING or EXPIRED): a RENEWAL "
        "application, reviewed and approved like a new member's (seed 000 §19: 再评估).",
        extensions=[FanOut()],
    )
    async def request_agreement_renewal(
        self, info: Ctx, id: strawberry.ID
    ) -> MembershipApplicationPayload:
        record = await membership.request_renewal(info.context, id)
        return MembershipApplicationPayload(application=MembershipApplication.of(record))

    @strawberry.mutation(
        description="Sign the renewal of an EXPIRING or EXPIRED agreement whose RENEWAL "
        "application was approved.",
        extensions=[FanOut()],
    )
    async def renew_agreement(
        self, info: Ctx, id: strawberry.ID, signed_on: date, term_years: int
    ) -> RenewAgreementPayload:
        new = await agreements.renew_agreement(info.context, id, signed_on, term_years)
        previous = await registry.agreement(info.context, new.renews_id or 0)
        application = await registry.application(info.context, new.application_id or 0)
        assert previous is not None and application is not None
        return RenewAgreementPayload(
            agreement=Agreement.of(new),
            previous=Agreement.of(previous),
            application=MembershipApplication.of(application),
        )

    @strawberry.mutation(extensions=[FanOut()])
    async def terminate_agreement(
        self, info: Ctx, id: strawberry.ID, reason: TerminationReason, note: str | None = None
    ) -> AgreementPayload:
        record = await agreements.terminate_agreement(
            info.context, id, agreements.TerminationReason(reason.value), note
        )
        return AgreementPayload(agreement=Agreement.of(record))

    @strawberry.mutation(
        description="A member leaves (VOLUNTARY) or is expelled (any other reason).",
        extensions=[FanOut()],
    )
    async def withdraw_member(
        self, info: Ctx, hospital: str, reason: ExitReason, note: str | None = None
    ) -> MemberPayload:
        code = await membership.withdraw_member(
            info.context, hospital, membership.ExitReason(reason.value), note
        )
        info.context.loaders.membership.clear(code)
        return MemberPayload(member=await _member(info, code))
