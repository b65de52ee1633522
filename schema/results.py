"""Examination and test results across the alliance and their mutual recognition (检查检验结果互认)
in the public contract."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from resolvers import recognition, results
from resolvers.results import RecognitionDecision as DecisionRecord
from resolvers.results import TestResult as ResultRecord
from schema.connections import Connection, Edge, PageInfo
from schema.fan_out import FanOut
from schema.types import Ctx, Hospital, Node, hospital_of

# strawberry.enum registers each class in place and returns it: the names stay types.
TestCategory = results.Category
strawberry.enum(
    TestCategory, description="LAB: a laboratory test (检验); EXAM: an examination (检查)."
)
RecognitionReason = recognition.RecognitionReason
strawberry.enum(
    RecognitionReason,
    description="Why a result is not recognisable at the reader's hospital: the first check that "
    "fails, in the order catalogue, agreements in force (NO_AGREEMENT_IN_FORCE: the performing "
    "hospital or the reader's has no cooperation agreement in force, seed 000 §15, §19), quality "
    "control, validity window, level.",
)
RecognitionDecisionKind = recognition.Decision
strawberry.enum(RecognitionDecisionKind, name="RecognitionDecisionKind")
DeclineReason = recognition.DeclineReason
strawberry.enum(
    DeclineReason,
    description="Why a clinician declines a result and re-tests: the six national reasons "
    "(国卫医发〔2022〕6号; OTHER needs a note) and the provincial PATIENT_REQUEST, "
    "LAB_FAILED_EQA and INTERVAL_TOO_LONG.",
)


@strawberry.type(description="What was tested or examined.")
class TestItem:
    code: str = strawberry.field(description="The performing hospital's own item code.")
    name: str
    loinc: str | None
    category: TestCategory


@strawberry.type(description="The HR label (互认标识) of a recognised item.")
class HrLabel:
    scope: str = strawberry.field(
        description="Where it is recognised: NATIONAL, PROVINCIAL, CITY or ALLIANCE."
    )


@strawberry.type(description="Whether the reader's hospital may recognise the result.")
class Recognition:
    recognizable: bool
    valid_until: datetime | None = strawberry.field(
        description="Performed at plus the catalogue's window (互认时限); null if not in the "
        "catalogue."
    )
    reason: RecognitionReason | None = strawberry.field(description="Null when recognizable.")


@strawberry.type(
    description="A clinician's decision on another hospital's result, stored at the deciding "
    "hospital."
)
class RecognitionDecision(Node):
    record: strawberry.Private[DecisionRecord]

    @classmethod
    def of(cls, record: DecisionRecord) -> RecognitionDecision:
        return cls(id=strawberry.ID(record.global_id), record=record)

    @strawberry.field
    def decision(self) -> RecognitionDecisionKind:
        return recognition.Decision(self.record.row.decision)

    @strawberry.field(description="Null when RECOGNIZED.")
    def reason(self) -> DeclineReason | None:
        reason = self.record.row.reason
        return recognition.DeclineReason(reason) if reason else None

    @strawberry.field
    def note(self) -> str | None:
        return self.record.row.note

    @strawberry.field
    def decided_at(self) -> datetime:
        return self.record.row.decided_at

    @strawberry.field(description="The deciding clinician, as their token names them.")
    def decided_by(self) -> str:
        return self.record.row.decided_by

    @strawberry.field(description="The deciding hospital, which stores the decision.")
    def hospital(self, info: Ctx) -> Hospital:
        return hospital_of(info, self.record.member)

    @strawberry.field(
        description="What recognising the result saved (the catalogue's re-test price, in fen); "
        "null when declined."
    )
    def retest_cost_avoided_fen(self) -> int | None:
        return self.record.row.retest_cost_fen

    @strawberry.field(description="Null if its hospital does not answer now.")
    async def result(self, info: Ctx) -> TestResult | None:
        record = await results.result_of(info.context, self.record)
        return TestResult.of(record) if record else None


@strawberry.type(
    description="An examination or test result, read live from the member that performed it."
)
class TestResult(Node):
    record: strawberry.Private[ResultRecord]

    @classmethod
    def of(cls, record: ResultRecord) -> TestResult:
        return cls(id=strawberry.ID(record.global_id), record=record)

    @strawberry.field(description="The alliance pseudonym of the patient.")
    def patient_pseudonym(self) -> str:
        return self.record.row.patient_pseudonym

    @strawberry.field
    def item(self) -> TestItem:
        row = self.record.row
        return TestItem(
            code=row.item_code,
            name=row.item_name,
            loinc=row.loinc,
            category=results.Category(row.category),
        )

    @strawberry.field
    def value(self) -> str:
        return self.record.row.value

    @strawberry.field
    def unit(self) -> str | None:
        return self.record.row.unit

    @strawberry.field
    def reference_range(self) -> str | None:
        return self.record.row.reference_range

    @strawberry.field
    def performed_at(self) -> datetime:
        return self.record.row.performed_at

    @strawberry.field(description="The member that performed the test and holds the result.")
    def performer(self, info: Ctx) -> Hospital:
        return hospital_of(info, self.record.member)

    @strawberry.field(
        description="The HR label: set when the item is in the alliance's recognition catalogue "
        "and the performing lab's quality control was valid on the day it was performed."
    )
    async def hr(self) -> HrLabel | None:
        assessed = await self.record.assessment()
        return HrLabel(scope=assessed.hr_scope) if assessed and assessed.hr_scope else None

    @strawberry.field(
        description="Recognition at the reader's hospital; null only when the performing "
        "member's quality control could not be read (see errors)."
    )
    async def recognition(self) -> Recognition | None:
        assessed = await self.record.assessment()
        if assessed is None:
            return None
        return Recognition(
            recognizable=assessed.recognizable,
            valid_until=assessed.valid_until,
            reason=assessed.reason,
        )

    @strawberry.field(
        description="Decisions recorded about this result at the reader's own hospital, newest "
        "first; null when that hospital's source does not answer."
    )
    async def decisions(self) -> list[RecognitionDecision] | None:
        found = await self.record.decisions()
        return None if found is None else [RecognitionDecision.of(d) for d in found]


@strawberry.type
class TestResultConnection(Connection[TestResult]):
    patient_pseudonym: str = strawberry.field(
        description="The pseudonym the patient was looked up by: use it for the next queries."
    )


@strawberry.input(
    description="A patient, by exactly one of: the resident ID (checked against GB 11643, turned "
    "into the pseudonym in memory, never stored or logged) or the alliance pseudonym."
)
class PatientLookupInput:
    resident_id: str | None = None
    pseudonym: str | None = None


@strawberry.type(description="Decisions declined for one reason.")
class DeclineCount:
    reason: DeclineReason
    count: int


@strawberry.type(description="The alliance's mutual-recognition figures for one year.")
class RecognitionStatistics:
    year: int
    decisions: int
    recognised: int
    declined: int
    declined_by_reason: list[DeclineCount]
    retests_avoided: int = strawberry.field(description="Each recognised result is one.")
    retest_cost_avoided_fen: int
    members: list[str] = strawberry.field(description="The members whose figures are included.")

    @classmethod
    def of(cls, s: results.Statistics) -> RecognitionStatistics:
        by_reason = sorted(s.declined_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
        return cls(
            year=s.year,
            decisions=s.decisions,
            recognised=s.recognised,
            declined=s.declined,
            declined_by_reason=[
                DeclineCount(reason=recognition.DeclineReason(r), count=n) for r, n in by_reason
            ],
            retests_avoided=s.recognised,
            retest_cost_avoided_fen=s.retest_cost_avoided_fen,
            members=s.members,
        )


@strawberry.input
class RecordRecognitionDecisionInput:
    result_id: strawberry.ID
    decision: RecognitionDecisionKind
    reason: DeclineReason | None = strawberry.field(
        default=None, description="Required when DECLINED; none when RECOGNIZED."
    )
    note: str | None = strawberry.field(default=None, description="Required for OTHER.")


@strawberry.type
class RecognitionDecisionPayload:
    decision: RecognitionDecision


@strawberry.type
class ResultQueries:
    @strawberry.field(
        description="Every result of one patient at every member, newest first, each marked "
        "recognisable at your hospital or not and why. CLINICIAN with purpose TREATMENT only; "
        "every read is audited.",
        extensions=[FanOut()],
    )
    async def test_results(
        self,
        info: Ctx,
        patient: PatientLookupInput,
        within_days: Annotated[
            int, strawberry.argument(description="Performed in the last 1 to 3650 days.")
        ] = results.DEFAULT_WITHIN_DAYS,
        item_codes: Annotated[
            list[str] | None,
            strawberry.argument(description="Only these items: local codes or LOINC codes."),
        ] = None,
        first: Annotated[int | None, strawberry.argument(description="At most 100.")] = (
            results.DEFAULT_PAGE_SIZE
        ),
        after: str | None = None,
    ) -> TestResultConnection | None:
        page = await results.page(
            info.context,
            results.PatientKey(resident_id=patient.resident_id, pseudonym=patient.pseudonym),
            within_days,
            item_codes,
            first,
            after,
        )
        return TestResultConnection(
            edges=[Edge(cursor=c, node=TestResult.of(r)) for c, r in page.items],
            page_info=PageInfo.of_items(page.items, page.has_next_page),
            patient_pseudonym=page.pseudonym,
        )

    @strawberry.field(
        description="Recognition decisions taken in one year (China Standard Time): at one "
        "member or all. SECRETARIAT and ALLIANCE_ADMIN for any; a MEMBER_ADMIN for its own.",
        extensions=[FanOut()],
    )
    async def recognition_statistics(
        self, info: Ctx, year: int, hospital: str | None = None
    ) -> RecognitionStatistics | None:
        return RecognitionStatistics.of(await results.statistics(info.context, year, hospital))


@strawberry.type
class ResultMutations:
    @strawberry.mutation(
        description="Recognise another hospital's result, or decline it (with a reason) and "
        "re-test. Stored at your hospital. CLINICIAN with purpose TREATMENT only.",
        extensions=[FanOut()],
    )
    async def record_recognition_decision(
        self, info: Ctx, input: RecordRecognitionDecisionInput
    ) -> RecognitionDecisionPayload:
        record = await results.record_decision(
            info.context,
            results.DecisionInput(
                result_id=input.result_id,
                decision=recognition.Decision(input.decision.value),
                reason=recognition.DeclineReason(input.reason.value) if input.reason else None,
                note=input.note,
            ),
        )
        return RecognitionDecisionPayload(decision=RecognitionDecision.of(record))


async def result_node(info: Ctx, type_name: str, id: strawberry.ID) -> Node | None:
    """`node(id:)` for the types of this module."""
    if type_name == results.KIND:
        found = await results.get(info.context, id)
        return TestResult.of(found) if found else None
    decision = await results.get_decision(info.context, id)
    return RecognitionDecision.of(decision) if decision else None
