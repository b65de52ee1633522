"""Filing (备案) with the provincial alliance office: the application of seed 003 Annex 2 as a
workflow.

The alliance office drafts it (the form, with the registry's members, agreements and charter as
they stand then), then, in the form's order: the lead hospital's opinion (its MEMBER_ADMIN: the form
asks for the opinion and stamp of the hospital the lead department belongs to, and seed 003 三(二)
needs the hospital's consent, which is not the alliance office's to give); the municipal
commission's opinion when the form requires it (a municipal hospital leads, or the alliance is
municipal or regional), transcribed by the provincial office, which receives the stamped form and
has the account the commission has not; the provincial office's assessment opinion and the
commission's decision (REGULATOR). An unfavourable opinion of the lead hospital or the commission
ends the application, rejected: both must consent. A rejected application may be drafted again,
and a filed alliance may file again when it changes: its filing in force stays until the new
application is decided FILED."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from adapters.registry.filings import FilingStore
from adapters.registry.records import (
    AllianceRecord,
    FiledAgreement,
    FiledHospital,
    FiledMember,
    FiledResolution,
    FilingApplicationRecord,
    FilingForm,
    FilingStepRecord,
    HospitalRecord,
)
from adapters.registry.store import RegistryStore
from resolvers import agreements, clock
from resolvers.context import RequestContext
from resolvers.errors import (
    GatewayError,
    bad_input,
    forbidden,
    invalid_transition,
    optional_text,
    required_text,
)
from resolvers.filing_name import check_name, province_of
from resolvers.principal import Principal, Role
from resolvers.rules import AllianceRules


class FilingStep(StrEnum):
    DRAFTED = "DRAFTED"
    LEAD_HOSPITAL_OPINION = "LEAD_HOSPITAL_OPINION"
    MUNICIPAL_OPINION = "MUNICIPAL_OPINION"
    ASSESSMENT_OPINION = "ASSESSMENT_OPINION"
    DECISION = "DECISION"


class FilingApplicationStatus(StrEnum):
    AWAITING_LEAD_HOSPITAL_OPINION = "AWAITING_LEAD_HOSPITAL_OPINION"
    AWAITING_MUNICIPAL_OPINION = "AWAITING_MUNICIPAL_OPINION"
    AWAITING_ASSESSMENT = "AWAITING_ASSESSMENT"
    AWAITING_DECISION = "AWAITING_DECISION"
    FILED = "FILED"
    REJECTED = "REJECTED"


class LeadHospitalAffiliation(StrEnum):
    """Whom the lead hospital answers to (隶属关系): the form's municipal opinion depends on it."""

    PROVINCIAL = "PROVINCIAL"  # 委直委管 / 省直省管: no municipal opinion
    MUNICIPAL = "MUNICIPAL"  # 市属: the municipal commission must support and consent


_S = FilingApplicationStatus
AWAITED_STEP = {
    _S.AWAITING_LEAD_HOSPITAL_OPINION: FilingStep.LEAD_HOSPITAL_OPINION,
    _S.AWAITING_MUNICIPAL_OPINION: FilingStep.MUNICIPAL_OPINION,
    _S.AWAITING_ASSESSMENT: FilingStep.ASSESSMENT_OPINION,
    _S.AWAITING_DECISION: FilingStep.DECISION,
}
OFFICE = (Role.SECRETARIAT, Role.ALLIANCE_ADMIN)
STEP_ROLES: dict[FilingStep, tuple[Role, ...]] = {
    FilingStep.DRAFTED: OFFICE,
    FilingStep.LEAD_HOSPITAL_OPINION: (Role.MEMBER_ADMIN,),
    FilingStep.MUNICIPAL_OPINION: (Role.REGULATOR,),
    FilingStep.ASSESSMENT_OPINION: (Role.REGULATOR,),
    FilingStep.DECISION: (Role.REGULATOR,),
}
_MUTATION = {
    FilingStep.DRAFTED: "draftFiling",
    FilingStep.LEAD_HOSPITAL_OPINION: "recordFilingOpinion",
    FilingStep.MUNICIPAL_OPINION: "recordFilingOpinion",
    FilingStep.ASSESSMENT_OPINION: "recordFilingOpinion",
    FilingStep.DECISION: "decideFiling",
}
# The alliance's filing status while an application is under way and it has none in force.
_ALLIANCE_STATUS = {
    _S.AWAITING_LEAD_HOSPITAL_OPINION: "APPLIED",
    _S.AWAITING_MUNICIPAL_OPINION: "APPLIED",
    _S.AWAITING_ASSESSMENT: "UNDER_REVIEW",
    _S.AWAITING_DECISION: "UNDER_REVIEW",
    _S.FILED: "FILED",
    _S.REJECTED: "REJECTED",
}
ASSESSING_OFFICE = "省专科联盟管理办公室"
_NUMBER_LOCK = "〔filing numbers〕"
_SHORT_TEXT = 50
_LONG_TEXT = 4000


@dataclass(frozen=True, slots=True)
class FilingDraft:
    """The form's fields as the office gives them; None takes the registry's value."""

    department_head: str
    lead_hospital_affiliation: LeadHospitalAffiliation
    discipline_building: str
    name: str | None = None
    founded_on: date | None = None
    lead_department: str | None = None
    discipline_leader: str | None = None
    development_plan: str | None = None


@dataclass(frozen=True, slots=True)
class Opinion:
    step: FilingStep
    text: str
    favourable: bool = True
    authority: str | None = None


# -- reads ----------------------------------------------------------------------------------


def store_of(ctx: RequestContext) -> FilingStore:
    return FilingStore(ctx.registry)


async def applications(ctx: RequestContext) -> list[FilingApplicationRecord]:
    ctx.who  # noqa: B018 - the filing is the alliance's public record: no patient data
    return await store_of(ctx).applications(ctx.alliance_id)


async def latest(ctx: RequestContext) -> FilingApplicationRecord | None:
    ctx.who  # noqa: B018
    return await store_of(ctx).latest(ctx.alliance_id)


async def history(ctx: RequestContext, attempt: int | None = None) -> list[FilingStepRecord]:
    ctx.who  # noqa: B018
    steps = await store_of(ctx).steps(ctx.alliance_id)
    return [s for s in steps if attempt is None or s.attempt == attempt]


def next_step(application: FilingApplicationRecord | None) -> FilingStep:
    """The step the application awaits; DRAFTED when none is under way."""
    if application is None:
        return FilingStep.DRAFTED
    return AWAITED_STEP.get(_S(application.status), FilingStep.DRAFTED)


def who_takes(step: FilingStep, lead_hospital: str) -> str:
    if step is FilingStep.LEAD_HOSPITAL_OPINION:
        return f"MEMBER_ADMIN of the lead hospital {lead_hospital}"
    return " or ".join(STEP_ROLES[step])


# -- drafting -------------------------------------------------------------------------------


def _filed_hospital(h: HospitalRecord) -> FiledHospital:
    return FiledHospital(
        code=h.code,
        name=h.name,
        grade=h.grade,
        type=h.type,
        ownership=h.ownership,
        division_code=h.division_code,
    )


async def snapshot(
    store: RegistryStore,
    alliance: AllianceRecord,
    draft: FilingDraft,
    rules: AllianceRules,
    today: date,
) -> FilingForm:
    """The form as drafted today: the draft's fields checked, the registry's members (with their
    agreements' terms) and charter as they stand. Hospitals by code, name and kind: no patient."""
    (lead,) = await store.hospitals([alliance.lead_hospital_code])
    name = check_name(
        draft.name if draft.name is not None else alliance.name,
        level=alliance.level,
        specialty=alliance.specialty,
        division_code=lead.division_code,
    )
    founded_on = draft.founded_on or alliance.founded_on
    if founded_on > today:
        raise bad_input("input.foundedOn cannot be in the future.", field="input.foundedOn")
    rows = await store.members_page(alliance.id, ["ACTIVE"], None, None, 100_000)
    members = [m for _, m in rows if m.role != "LEAD" and m.joined_on <= today]
    codes = [m.hospital_code for m in members]
    hospitals = {h.code: h for h in await store.hospitals(codes)}
    latest_agreements = {
        a.party_b_code: a for a in await store.latest_agreements(alliance.id, codes)
    }

    def agreement_of(code: str) -> FiledAgreement | None:
        a = latest_agreements.get(code)
        if a is None or a.signed_on > today:
            return None
        return FiledAgreement(
            signed_on=a.signed_on,
            effective_on=a.effective_on,
            expires_on=a.expires_on,
            term_years=a.term_years,
            status=agreements.status_of(a, today, rules).value,
        )

    return FilingForm(
        name=name,
        specialty=alliance.specialty,
        level=alliance.level,
        founded_on=founded_on,
        lead_department=required_text(
            draft.lead_department or alliance.lead_department, "input.leadDepartment", _SHORT_TEXT
        ),
        department_head=required_text(draft.department_head, "input.departmentHead", _SHORT_TEXT),
        discipline_leader=required_text(
            draft.discipline_leader or alliance.discipline_leader,
            "input.disciplineLeader",
            _SHORT_TEXT,
        ),
        lead_hospital=_filed_hospital(lead),
        lead_hospital_affiliation=draft.lead_hospital_affiliation.value,
        members=tuple(
            FiledMember(
                hospital=_filed_hospital(hospitals[m.hospital_code]),
                role=m.role,
                joined_on=m.joined_on,
                agreement=agreement_of(m.hospital_code),
            )
            for m in members
        ),
        charter_version=alliance.charter_version,
        charter_resolutions=tuple(
            FiledResolution(number=r.number, adopted_on=r.adopted_on, summary=r.summary)
            for r in await store.resolutions(alliance.id)
            if r.subject == "AMEND_CHARTER"
        ),
        discipline_building=required_text(
            draft.discipline_building, "input.disciplineBuilding", _LONG_TEXT
        ),
        development_plan=required_text(
            draft.development_plan or alliance.development_plan,
            "input.developmentPlan",
            _LONG_TEXT,
        ),
    )


def municipal_opinion_required(form: FilingForm) -> bool:
    """Annex 2: a municipal hospital's department leading a provincial alliance needs its city's
    commission; 三(三): so does a municipal or regional alliance."""
    return form.lead_hospital_affiliation == LeadHospitalAffiliation.MUNICIPAL or form.level in (
        "MUNICIPAL",
        "REGIONAL",
    )


def _acting_role(principal: Principal, step: FilingStep) -> Role:
    return next(r for r in STEP_ROLES[step] if principal.has_any(r))


def _require(ctx: RequestContext, step: FilingStep, lead_hospital: str) -> Role:
    """FORBIDDEN unless the principal may take `step`; the role it takes it in."""
    who = ctx.who
    allowed = who.has_any(*STEP_ROLES[step])
    if step is FilingStep.LEAD_HOSPITAL_OPINION:
        allowed = allowed and who.hospital_code == lead_hospital
    if not allowed:
        raise forbidden(f"Only {who_takes(step, lead_hospital)} may take the step {step}.")
    return _acting_role(who, step)


def _out_of_order(
    attempted: FilingStep, application: FilingApplicationRecord | None, lead_hospital: str
) -> GatewayError:
    expected = next_step(application)
    if application is None:
        where = "no filing application has been drafted"
    elif application.status in (_S.FILED, _S.REJECTED):
        where = (
            f"the last filing application (attempt {application.attempt}) is {application.status}"
        )
    else:
        where = f"the filing application (attempt {application.attempt}) is {application.status}"
    error = invalid_transition(
        f"Cannot take the step {attempted}: {where}; the next step is {expected} "
        f"({_MUTATION[expected]}, by {who_takes(expected, lead_hospital)}).",
        status=application.status if application else "NONE",
    )
    error.extensions["expected"] = expected.value
    return error


async def _alliance(tx: RegistryStore, ctx: RequestContext) -> AllianceRecord:
    alliance = await tx.alliance(ctx.alliance_id)
    assert alliance is not None
    return alliance


async def draft(ctx: RequestContext, fields: FilingDraft) -> FilingApplicationRecord:
    async with ctx.registry.transaction() as tx:
        alliance = await _alliance(tx, ctx)
        role = _require(ctx, FilingStep.DRAFTED, alliance.lead_hospital_code)
        filings = FilingStore(tx)
        await filings.lock(ctx.alliance_id)
        current = await filings.latest(ctx.alliance_id)
        if next_step(current) is not FilingStep.DRAFTED:
            raise _out_of_order(FilingStep.DRAFTED, current, alliance.lead_hospital_code)
        form = await snapshot(tx, alliance, fields, ctx.rules, clock.today())
        application = await start(filings, alliance, form, ctx.who.subject, role, clock.now())
    ctx.audit.wrote("draftFiling", None)
    return application


async def start(
    filings: FilingStore,
    alliance: AllianceRecord,
    form: FilingForm,
    subject: str,
    role: Role,
    at: datetime,
) -> FilingApplicationRecord:
    """A drafted application, inside the caller's transaction (the demo seeds through it too)."""
    application = await filings.insert_application(
        alliance.id,
        _S.AWAITING_LEAD_HOSPITAL_OPINION.value,
        municipal_opinion_required(form),
        form,
        at,
    )
    await filings.insert_step(
        application.id, FilingStep.DRAFTED.value, role=role.value, subject=subject, at=at
    )
    await _follow(filings, alliance, application)
    return application


async def _follow(
    filings: FilingStore, alliance: AllianceRecord, application: FilingApplicationRecord
) -> None:
    """The alliance's filing as the application leaves it: a filing in force stays until a
    new application is FILED."""
    if alliance.filing_status == "FILED" and application.status != _S.FILED:
        return
    await filings.set_alliance_filing(
        alliance.id, _ALLIANCE_STATUS[_S(application.status)], application.number
    )


# -- opinions and the decision --------------------------------------------------------------


def _authority(opinion: Opinion, form: FilingForm) -> str:
    if opinion.step is FilingStep.MUNICIPAL_OPINION:
        return required_text(opinion.authority, "input.authority", _SHORT_TEXT)
    if opinion.authority is not None:
        raise bad_input(
            "input.authority names the municipal commission: give it with MUNICIPAL_OPINION only.",
            field="input.authority",
        )
    if opinion.step is FilingStep.LEAD_HOSPITAL_OPINION:
        return form.lead_hospital.name
    return ASSESSING_OFFICE


@asynccontextmanager
async def _awaiting(
    ctx: RequestContext, step: FilingStep
) -> AsyncIterator[tuple[FilingStore, AllianceRecord, FilingApplicationRecord, Role]]:
    """Inside one transaction, with the alliance's filings locked: the application awaiting
    `step` and the role the reader takes it in; refused when the reader may not, or it awaits
    another step."""
    async with ctx.registry.transaction() as tx:
        alliance = await _alliance(tx, ctx)
        role = _require(ctx, step, alliance.lead_hospital_code)
        filings = FilingStore(tx)
        await filings.lock(ctx.alliance_id)
        application = await filings.latest(ctx.alliance_id)
        if application is None or next_step(application) is not step:
            raise _out_of_order(step, application, alliance.lead_hospital_code)
        yield filings, alliance, application, role


async def record_opinion(ctx: RequestContext, opinion: Opinion) -> FilingApplicationRecord:
    if opinion.step in (FilingStep.DRAFTED, FilingStep.DECISION):
        raise bad_input(
            f"{opinion.step} is not an opinion: use {_MUTATION[opinion.step]}.", field="input.step"
        )
    async with _awaiting(ctx, opinion.step) as (filings, alliance, application, role):
        application = await take_opinion(
            filings,
            alliance,
            application,
            opinion,
            role=role,
            subject=ctx.who.subject,
            hospital_code=ctx.who.hospital_code,
            at=clock.now(),
        )
    ctx.audit.wrote("recordFilingOpinion", None)
    return application


async def take_opinion(
    filings: FilingStore,
    alliance: AllianceRecord,
    application: FilingApplicationRecord,
    opinion: Opinion,
    *,
    role: Role,
    subject: str,
    hospital_code: str | None,
    at: datetime,
) -> FilingApplicationRecord:
    """The opinion the application awaits, inside the caller's transaction."""
    text = required_text(opinion.text, "input.opinion", _LONG_TEXT)
    authority = _authority(opinion, application.form)
    await filings.insert_step(
        application.id,
        opinion.step.value,
        role=role.value,
        subject=subject,
        at=at,
        hospital_code=hospital_code,
        authority=authority,
        favourable=opinion.favourable,
        opinion=text,
    )
    status = _after(opinion, application)
    refused = status is _S.REJECTED
    application = await filings.set_status(
        application.id,
        status.value,
        decided_at=at if refused else None,
        rejection_reason=f"{authority}不同意：{text}" if refused else None,
    )
    await _follow(filings, alliance, application)
    return application


def _after(opinion: Opinion, application: FilingApplicationRecord) -> FilingApplicationStatus:
    if opinion.step is FilingStep.ASSESSMENT_OPINION:
        # The office's assessment advises the commission, which decides either way.
        return _S.AWAITING_DECISION
    if not opinion.favourable:
        return _S.REJECTED
    if opinion.step is FilingStep.LEAD_HOSPITAL_OPINION and application.municipal_opinion_required:
        return _S.AWAITING_MUNICIPAL_OPINION
    return _S.AWAITING_ASSESSMENT


def filing_number_prefix(form: FilingForm, year: int) -> str:
    """「豫卫联备〔2026〕」: the province's abbreviation (the lead hospital's), the commission (卫),
    alliance filing (联备) and the year; the serial and 号 follow."""
    province = province_of(form.lead_hospital.division_code)
    return f"{province.abbreviation if province else ''}卫联备〔{year}〕"


async def decide(ctx: RequestContext, filed: bool, text: str | None) -> FilingApplicationRecord:
    # A refusal says why; a filing may.
    check = optional_text if filed else required_text
    reason = check(text, "input.opinion", _LONG_TEXT)
    async with _awaiting(ctx, FilingStep.DECISION) as (filings, alliance, application, role):
        application = await conclude(
            filings,
            alliance,
            application,
            filed=filed,
            reason=reason,
            subject=ctx.who.subject,
            role=role,
            at=clock.now(),
        )
    ctx.audit.wrote("decideFiling", None)
    return application


async def conclude(
    filings: FilingStore,
    alliance: AllianceRecord,
    application: FilingApplicationRecord,
    *,
    filed: bool,
    reason: str | None,
    subject: str,
    role: Role,
    at: datetime,
    number: str | None = None,
) -> FilingApplicationRecord:
    """The commission's decision, inside the caller's transaction; a FILED one takes the next
    number of its province and year unless given one (the demo's, filed before)."""
    if filed and number is None:
        await filings.lock(_NUMBER_LOCK)
        prefix = filing_number_prefix(
            application.form, at.astimezone(clock.CHINA_STANDARD_TIME).year
        )
        number = f"{prefix}{await filings.next_number_in(prefix):03d}号"
    province = province_of(application.form.lead_hospital.division_code)
    await filings.insert_step(
        application.id,
        FilingStep.DECISION.value,
        role=role.value,
        subject=subject,
        at=at,
        authority=f"{province.full if province else '省'}卫生健康委员会",
        favourable=filed,
        opinion=reason,
    )
    application = await filings.set_status(
        application.id,
        (_S.FILED if filed else _S.REJECTED).value,
        decided_at=at,
        number=number if filed else None,
        rejection_reason=None if filed else reason,
    )
    await _follow(filings, alliance, application)
    return application
