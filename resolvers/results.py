"""Examination and test results across the alliance, their recognition (互认) and the decisions
clinicians record about them.

A result lives in the exchange database of the hospital that performed it. Reading a patient's
results fans out to every member; each page's recognition flags cost one quality-control lookup
per member involved, one registry lookup, and one registry read of the agreements of each hospital
involved, and the decisions shown cost one call to the reader's own hospital per member on the
page. A decision is stored at the deciding clinician's hospital."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from adapters.sources import port
from adapters.sources.errors import SourceError
from adapters.sources.port import AggregateRequest, CreateRequest, LookupRequest
from adapters.sources.records import ChangeRow, DecisionRow, ListQuery, ResultFilter, ResultRow
from resolvers import agreements, clock, events, global_ids, patients, recognition
from resolvers.access import require_treatment_purpose
from resolvers.authorization import require_role
from resolvers.context import RequestContext
from resolvers.errors import ErrorCode, GatewayError, bad_input, forbidden, not_found
from resolvers.federation import Owned, fan_out, on_member
from resolvers.lists import federated_page, member_key
from resolvers.membership import GRADE_LEVEL
from resolvers.principal import Role
from resolvers.recognition import Assessment, Decision, DeclineReason, Party

KIND = "TestResult"
DECISION_KIND = "RecognitionDecision"
OPERATION = "testResults"
RECORD_OPERATION = "recordRecognitionDecision"
DEFAULT_WITHIN_DAYS = 90
MAX_WITHIN_DAYS = 3650
DEFAULT_PAGE_SIZE = 50
MAX_ITEM_CODES = 50

T = TypeVar("T")


class Category(StrEnum):
    LAB = "LAB"  # 检验
    EXAM = "EXAM"  # 检查


@dataclass(frozen=True, slots=True)
class PatientKey:
    """Exactly one of the two."""

    resident_id: str | None = None
    pseudonym: str | None = None


@dataclass(frozen=True, slots=True)
class TestResult(Owned[ResultRow]):
    """A result, held by the member that performed it."""

    __test__ = False  # not a pytest test class
    kind = KIND

    batch: ResultBatch = field(compare=False, repr=False)

    async def assessment(self) -> Assessment | None:
        """None when the performing member's quality control could not be read (see errors)."""
        return (await self.batch.assessments()).get((self.member, self.row.id))

    async def decisions(self) -> list[RecognitionDecision] | None:
        """Decisions recorded at the reader's hospital; None when its source failed."""
        found = await self.batch.decisions()
        if found is None:
            return None
        return [
            RecognitionDecision(self.batch.reader, row, self)
            for row in found.get((self.member, self.row.id), [])
        ]


@dataclass(frozen=True, slots=True)
class RecognitionDecision(Owned[DecisionRow]):
    """A decision, held by the deciding hospital."""

    kind = DECISION_KIND

    known_result: TestResult | None = field(default=None, compare=False, repr=False)


@dataclass
class ResultBatch:
    """The results read together (a page, or one node): their recognition flags and decisions are
    looked up once for all of them, on first use."""

    ctx: RequestContext
    reader: str
    items: list[tuple[str, ResultRow]]
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    _tasks: dict[str, asyncio.Future[object]] = field(default_factory=dict)

    def _once(self, name: str, make: Callable[[], Awaitable[T]]) -> Awaitable[T]:
        if name not in self._tasks:
            self._tasks[name] = asyncio.ensure_future(make())
        return self._tasks[name]  # type: ignore[return-value]

    def assessments(self) -> Awaitable[dict[tuple[str, str], Assessment]]:
        return self._once("assessments", self._assess)

    def decisions(self) -> Awaitable[dict[tuple[str, str], list[DecisionRow]] | None]:
        return self._once("decisions", self._decisions)

    async def _assess(self) -> dict[tuple[str, str], Assessment]:
        ctx, rules = self.ctx, self.ctx.rules.recognition
        # Quality control matters only for catalogue items: one lookup per member, via the loader.
        qc_keys = sorted(
            {(m, r.loinc) for m, r in self.items if r.loinc and rules.item(r.loinc) is not None}
        )
        codes = sorted({self.reader, *(m for m, _ in self.items)})
        qc_rows, hospitals, standing = await asyncio.gather(
            asyncio.gather(*(ctx.member_loaders.quality_control.load(k) for k in qc_keys)),
            ctx.loaders.hospital.load_many(codes),
            asyncio.gather(*(_agreement_in_force(ctx, code) for code in codes)),
        )
        quality = dict(zip(qc_keys, qc_rows, strict=True))
        in_force = dict(zip(codes, standing, strict=True))
        levels = {
            code: GRADE_LEVEL.get(h.grade, 0) if h is not None else 0
            for code, h in zip(codes, hospitals, strict=True)
        }
        # The loader answers [] for a member that failed: then its standing is unknown, not
        # invalid, and the result gets no assessment (its member is named in `errors`).
        failed = ctx.sources.failed
        reader = Party(self.reader, levels[self.reader])
        assessed: dict[tuple[str, str], Assessment] = {}
        for member, row in self.items:
            key = (member, row.loinc or "")
            if key in quality and not quality[key] and member in failed:
                continue
            assessed[(member, row.id)] = recognition.assess(
                rules.item(row.loinc),
                quality.get(key, []),
                row.performed_at,
                reader=reader,
                performer=Party(member, levels[member]),
                alliance_wide=rules.alliance_wide,
                # One's own result needs no agreement; another's, both hospitals' in force, as
                # record_decision requires (seed 000 §15, §19).
                in_force=member == self.reader or (in_force[member] and in_force[self.reader]),
                now=self.now,
            )
        return assessed

    async def _decisions(self) -> dict[tuple[str, str], list[DecisionRow]] | None:
        ctx = self.ctx
        if self.reader not in ctx.federation.members:
            return {}  # no source of its own: nothing can have been decided there
        wanted: dict[str, list[str]] = defaultdict(list)
        for member, row in self.items:
            wanted[member].append(row.id)

        async def one(result_member: str) -> list[DecisionRow]:
            request = LookupRequest(
                port.RECOGNITION_DECISION,
                tuple(wanted[result_member]),
                "result_id",
                (("result_member", result_member),),
            )
            return await on_member(ctx.federation, self.reader, request, ctx.sources)

        answers = await asyncio.gather(*(one(m) for m in sorted(wanted)), return_exceptions=True)
        found: dict[tuple[str, str], list[DecisionRow]] = defaultdict(list)
        for answer in answers:
            if isinstance(answer, SourceError):
                # The decisions are missing, the results are not: `errors` names the member.
                ctx.sources.failures.append(answer)
                return None
            if isinstance(answer, BaseException):
                raise answer
            for decision in answer:
                found[(decision.result_member, decision.result_id)].append(decision)
        return found


async def _agreement_in_force(ctx: RequestContext, code: str) -> bool:
    """Whether the hospital may take part in recognition now: the very rule record_decision
    applies (agreements.active_party), so a result is never marked recognisable while a decision
    on it would be refused."""
    try:
        await agreements.active_party(ctx, code, "hospital")
    except GatewayError as e:
        if e.code is ErrorCode.BAD_USER_INPUT:
            return False
        raise
    return True


# -- reading ------------------------------------------------------------------------------------


def _pseudonym_of(ctx: RequestContext, key: PatientKey) -> str:
    if (key.resident_id is None) == (key.pseudonym is None):
        raise bad_input("patient takes exactly one of residentId and pseudonym.", field="patient")
    if key.pseudonym is not None:
        return patients.check_pseudonym(key.pseudonym)
    assert key.resident_id is not None
    return patients.linked_pseudonym(key.resident_id, ctx.linkage_key)


def _reader(ctx: RequestContext, patient: str | None) -> str:
    """The clinician's hospital; any other reader is refused, and the refusal audited."""
    try:
        return require_treatment_purpose(ctx.who, "Reading test results")
    except GatewayError:
        ctx.audit.denied(OPERATION, patient)
        raise


def _item_codes(codes: list[str] | None) -> tuple[str, ...] | None:
    if codes is None:
        return None
    cleaned = tuple(dict.fromkeys(c.strip() for c in codes))
    if not cleaned or len(cleaned) > MAX_ITEM_CODES or any(not c or len(c) > 64 for c in cleaned):
        raise bad_input(
            f"itemCodes, when given, names 1 to {MAX_ITEM_CODES} local codes or LOINC codes.",
            argument="itemCodes",
        )
    return cleaned


@dataclass(frozen=True, slots=True)
class ResultPage:
    pseudonym: str
    items: list[tuple[str, TestResult]]  # (cursor, result)
    has_next_page: bool


async def page(
    ctx: RequestContext,
    patient: PatientKey,
    within_days: int,
    item_codes: list[str] | None,
    first: int | None,
    after: str | None,
) -> ResultPage:
    """Every result of one patient at every member, newest first (performed at, member, id)."""
    # The reader is checked first, so that a refused caller is audited (with the patient when
    # the input named one validly); only then is a bad patient input reported.
    try:
        pseudonym = _pseudonym_of(ctx, patient)
    except GatewayError as bad_patient:
        _reader(ctx, None)
        raise bad_patient from None
    reader = _reader(ctx, pseudonym)
    if not 1 <= within_days <= MAX_WITHIN_DAYS:
        raise bad_input(
            f"withinDays must be between 1 and {MAX_WITHIN_DAYS}.", argument="withinDays"
        )
    codes = _item_codes(item_codes)
    since = datetime.now(UTC) - timedelta(days=within_days)
    merged = await federated_page(
        ctx,
        port.TEST_RESULT,
        KIND,
        ListQuery(parties=None, since=since),
        ResultFilter(pseudonym, codes),
        first,
        after,
        default_size=DEFAULT_PAGE_SIZE,
    )
    ctx.audit.read(OPERATION, [pseudonym])
    batch = ResultBatch(ctx, reader, [(m, r) for _, m, r in merged.items])
    return ResultPage(
        pseudonym=pseudonym,
        items=[(c, TestResult(m, r, batch)) for c, m, r in merged.items],
        has_next_page=merged.has_next_page,
    )


async def _load(ctx: RequestContext, reader: str, member: str, key: str) -> TestResult | None:
    if not ctx.federation.holds(member, key):
        return None
    rows = await ctx.member_loaders.result.load((member, key))
    if not rows:
        return None
    return TestResult(member, rows[0], ResultBatch(ctx, reader, [(member, rows[0])]))


async def get(ctx: RequestContext, global_id: str) -> TestResult | None:
    """A result by its id, for a clinician treating the patient (audited as a read)."""
    member, row_id = global_ids.decode_member_key(global_id, KIND)
    reader = _reader(ctx, None)
    result = await _load(ctx, reader, member, row_id)
    if result is not None:
        ctx.audit.read(OPERATION, [result.row.patient_pseudonym])
    return result


async def result_of(ctx: RequestContext, decision: RecognitionDecision) -> TestResult | None:
    """The result a decision is about; None if it is gone or its member did not answer."""
    if decision.known_result is not None:
        return decision.known_result
    reader = _reader(ctx, decision.row.patient_pseudonym)
    result = await _load(ctx, reader, decision.row.result_member, decision.row.result_id)
    if result is not None:
        ctx.audit.read(OPERATION, [result.row.patient_pseudonym])
    return result


async def get_decision(ctx: RequestContext, global_id: str) -> RecognitionDecision | None:
    """A decision by its id: visible to the clinicians of the hospital that took it."""
    found = member_key(ctx, global_id, DECISION_KIND)
    reader = _reader(ctx, None)
    if found is None or found[0] != reader:
        return None
    member, key = found
    rows = await on_member(
        ctx.federation, member, LookupRequest(port.RECOGNITION_DECISION, (key,)), ctx.sources
    )
    if not rows:
        return None
    ctx.audit.read(OPERATION, [rows[0].patient_pseudonym])
    return RecognitionDecision(member, rows[0])


# -- deciding -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecisionInput:
    result_id: str
    decision: Decision
    reason: DeclineReason | None = None
    note: str | None = None


async def record_decision(ctx: RequestContext, new: DecisionInput) -> RecognitionDecision:
    """A clinician recognises another hospital's result, or declines it and re-tests. Stored at the
    clinician's own hospital; a recognised result counts as a re-test avoided."""
    try:
        decider = require_treatment_purpose(ctx.who, "Recording a recognition decision")
    except GatewayError:
        ctx.audit.wrote(RECORD_OPERATION, None, outcome="DENIED")
        raise
    note = recognition.check_decision(new.decision, new.reason, new.note)
    member, key = global_ids.decode_member_key(new.result_id, KIND)
    if member == decider:
        raise bad_input(
            "Recognition decisions are about another hospital's results; this one is your own.",
            field="resultId",
        )
    if not ctx.federation.holds(member, key):
        raise not_found("test result", new.result_id)
    # Seed 000 §15, §19: recognition between two hospitals is alliance collaboration, so both
    # need an agreement in force.
    await agreements.active_party(ctx, decider, "hospital")
    await agreements.active_party(ctx, member, "resultId")
    rows = await on_member(
        ctx.federation, member, LookupRequest(port.TEST_RESULT, (key,)), ctx.sources
    )
    if not rows:
        raise not_found("test result", new.result_id)
    result = TestResult(member, rows[0], ResultBatch(ctx, decider, [(member, rows[0])]))
    row = result.row
    item = ctx.rules.recognition.item(row.loinc)
    if new.decision is Decision.RECOGNIZED:
        assessed = await result.assessment()
        if assessed is None:
            raise bad_input(
                f"Member {member} did not answer for its quality control; this result cannot be "
                "recognised now.",
                field="decision",
            )
        if assessed.reason is not None:
            raise bad_input(
                f"This result is not recognisable at your hospital ({assessed.reason}); record "
                "DECLINED with a reason, or re-test.",
                field="decision",
                recognitionReason=assessed.reason.value,
            )
    values = {
        "result_member": member,
        "result_id": row.id,
        "patient_pseudonym": row.patient_pseudonym,
        "loinc": row.loinc,
        "decided_by": ctx.who.subject,
        "decision": new.decision.value,
        "reason": new.reason.value if new.reason else None,
        "note": note,
        "retest_cost_fen": recognition.retest_cost_avoided(new.decision, item),
    }
    created = await on_member(
        ctx.federation, decider, CreateRequest(port.RECOGNITION_DECISION, values), ctx.sources
    )
    stored = created.record
    ctx.audit.wrote(RECORD_OPERATION, row.patient_pseudonym)
    await events.record(
        ctx,
        decider,
        ChangeRow(
            "recognition_decision",
            stored.id,
            stored.version,
            stored.decided_at,
            (stored.result_member,),
        ),
    )
    return RecognitionDecision(decider, stored, result)


# -- statistics ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Statistics:
    year: int
    recognised: int
    declined_by_reason: dict[str, int]
    retest_cost_avoided_fen: int
    members: list[str]

    @property
    def declined(self) -> int:
        return sum(self.declined_by_reason.values())

    @property
    def decisions(self) -> int:
        return self.recognised + self.declined


def _statistics_scope(ctx: RequestContext, hospital: str | None) -> list[str]:
    who = ctx.who
    require_role(
        who,
        Role.SECRETARIAT,
        Role.ALLIANCE_ADMIN,
        Role.REGULATOR,
        Role.MEMBER_ADMIN,
        action="read the recognition statistics",
    )
    if not who.has_any(Role.SECRETARIAT, Role.ALLIANCE_ADMIN, Role.REGULATOR):
        own = who.hospital_code
        if own is None or hospital not in (None, own):
            raise forbidden("A MEMBER_ADMIN reads its own hospital's recognition statistics only.")
        hospital = own
    if hospital is None:
        return ctx.federation.codes()
    ctx.federation.get(hospital)  # BAD_USER_INPUT when the alliance has no source for it
    return [hospital]


async def statistics(ctx: RequestContext, year: int, hospital: str | None) -> Statistics:
    """Decisions taken in `year` (China Standard Time) at one member or all; partial when a
    member does not answer."""
    codes = _statistics_scope(ctx, hospital)
    if not 2000 <= year <= clock.today().year:
        raise bad_input("year must be between 2000 and this year.", argument="year")
    since = datetime(year, 1, 1, tzinfo=clock.CHINA_STANDARD_TIME)
    until = datetime(year + 1, 1, 1, tzinfo=clock.CHINA_STANDARD_TIME)
    tally = AggregateRequest(
        port.RECOGNITION_DECISION,
        ListQuery(parties=None, since=since, until=until),
        group_by=("decision", "reason"),
        sums=("retest_cost_fen",),
    )
    answered = await fan_out(ctx.federation, codes, lambda _: tally, ctx.sources)
    recognised, cost = 0, 0
    declined: dict[str, int] = defaultdict(int)
    for rows in answered.results.values():
        for row in rows:
            decision, reason = row.group
            if decision == Decision.RECOGNIZED:
                recognised += row.count
                cost += row.sums[0]
            else:
                declined[reason] += row.count
    return Statistics(
        year=year,
        recognised=recognised,
        declined_by_reason=dict(declined),
        retest_cost_avoided_fen=cost,
        members=sorted(answered.results),
    )
