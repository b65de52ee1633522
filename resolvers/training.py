"""Training and capacity building (培训, 进修, 学术): events a member hosts (courses, lecture tours,
remote teaching, …) with participants per hospital, and further-training placements (进修) of one
member's staff at another. Each record lives in the host hospital's exchange database. There are no
patients here: events are open to every reader of the alliance, placements to their two hospitals
and the alliance office."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from adapters.sources import port
from adapters.sources.port import Children, CreateRequest
from adapters.sources.records import (
    ChangeRow,
    ListQuery,
    ParticipationRow,
    PlacementRow,
    TrainingEventRow,
    TrainingFilter,
)
from resolvers import agreements, events
from resolvers.access import OFFICE_ROLES, PARTY_ROLES, record_scope
from resolvers.context import RequestContext
from resolvers.errors import bad_input, forbidden
from resolvers.federation import Owned, on_member
from resolvers.lists import FederatedPage, federated_page, load_owned, year_window
from resolvers.principal import Role

EVENT = "TrainingEvent"
PLACEMENT = "Placement"


class TrainingKind(StrEnum):
    TRAINING_COURSE = "TRAINING_COURSE"
    LECTURE_TOUR = "LECTURE_TOUR"
    SURGERY_DEMONSTRATION = "SURGERY_DEMONSTRATION"
    CLINICAL_TEACHING = "CLINICAL_TEACHING"
    TEACHING_ROUND = "TEACHING_ROUND"
    REMOTE_TEACHING = "REMOTE_TEACHING"
    CASE_DISCUSSION = "CASE_DISCUSSION"
    ACADEMIC_CONFERENCE = "ACADEMIC_CONFERENCE"
    FREE_CLINIC = "FREE_CLINIC"


class TrainingMode(StrEnum):
    ON_SITE = "ON_SITE"
    ONLINE = "ONLINE"


class Profession(StrEnum):
    DOCTOR = "DOCTOR"
    NURSE = "NURSE"
    TECHNICIAN = "TECHNICIAN"


@dataclass(frozen=True, slots=True)
class TrainingQuery:
    kinds: tuple[str, ...] | None = None
    modes: tuple[str, ...] | None = None
    hospital: str | None = None
    year: int | None = None


@dataclass(frozen=True, slots=True)
class PlacementQuery:
    hospital: str | None = None
    year: int | None = None


@dataclass(frozen=True, slots=True)
class NewTrainingEvent:
    kind: TrainingKind
    mode: TrainingMode
    held_on: date
    topic: str
    place: str | None = None
    lecturers: tuple[str, ...] = ()
    credits: float | None = None
    participants: tuple[tuple[str, int], ...] = ()  # (hospital, count)
    host: str | None = None


@dataclass(frozen=True, slots=True)
class NewPlacement:
    home_hospital: str
    trainee_name: str
    profession: Profession
    department: str
    starts_on: date
    ends_on: date
    supervisor: str | None = None
    fee_waived: bool = True
    evaluation: str | None = None
    host: str | None = None


class TrainingEvent(Owned[TrainingEventRow]):
    """A training event, held by its host."""

    kind = EVENT


class Placement(Owned[PlacementRow]):
    """A further-training placement (进修), held by its host."""

    kind = PLACEMENT


# -- reading -----------------------------------------------------------------------------------


def _require_event_reader(ctx: RequestContext) -> None:
    """Training data holds no patients: every alliance role reads every event."""
    who = ctx.who
    if not who.has_any(*PARTY_ROLES, *OFFICE_ROLES, Role.OPS):
        raise forbidden(f"{', '.join(who.roles)} may not read training events.")


async def events_page(
    ctx: RequestContext,
    q: TrainingQuery,
    first: int | None,
    after: str | None,
    *,
    with_total: bool = False,
) -> FederatedPage[TrainingEventRow]:
    _require_event_reader(ctx)
    since, until = year_window(q.year)
    query = ListQuery(parties=None, with_party=q.hospital, since=since, until=until)
    filters = TrainingFilter(kinds=q.kinds, modes=q.modes)
    return await federated_page(
        ctx,
        port.TRAINING_EVENT,
        EVENT,
        query,
        filters,
        first,
        after,
        with_total=with_total,
        hospitals_of=lambda r: (r.host_hospital,),
    )


async def participation(ctx: RequestContext, event: TrainingEvent) -> list[ParticipationRow]:
    """Participants per hospital: one query per member for a whole page of events."""
    rows = await ctx.member_loaders.participation.load((event.member, event.row.id))
    return sorted(rows, key=lambda r: r.hospital)


async def placements_page(
    ctx: RequestContext,
    q: PlacementQuery,
    first: int | None,
    after: str | None,
    *,
    with_total: bool = False,
) -> FederatedPage[PlacementRow]:
    scope = record_scope(ctx.who, "placements")
    since, until = year_window(q.year)
    query = ListQuery(parties=scope.parties, with_party=q.hospital, since=since, until=until)
    return await federated_page(
        ctx,
        port.PLACEMENT,
        PLACEMENT,
        query,
        None,
        first,
        after,
        with_total=with_total,
        hospitals_of=lambda r: (r.host_hospital, r.home_hospital),
    )


async def get_event(ctx: RequestContext, global_id: str) -> TrainingEvent | None:
    _require_event_reader(ctx)
    return await load_owned(ctx, global_id, TrainingEvent, ctx.member_loaders.training_event)


async def get_placement(ctx: RequestContext, global_id: str) -> Placement | None:
    scope = record_scope(ctx.who, "placements")
    placement = await load_owned(ctx, global_id, Placement, ctx.member_loaders.placement)
    if placement is None or (
        scope.parties is not None
        and not set(scope.parties) & {placement.row.host_hospital, placement.row.home_hospital}
    ):
        return None
    return placement


# -- recording ---------------------------------------------------------------------------------


def _recording_host(ctx: RequestContext, host: str | None, what: str) -> str:
    """MEMBER_ADMIN records for its own hospital; the alliance office for any member it names."""
    who = ctx.who
    if who.has_any(*OFFICE_ROLES):
        code = host or who.hospital_code
        if not code:
            raise bad_input(f"Name the host hospital of the {what}.", field="host")
        return code
    if who.has_any(Role.MEMBER_ADMIN) and who.hospital_code:
        if host is not None and host != who.hospital_code:
            raise forbidden(f"A MEMBER_ADMIN records a {what} hosted by its own hospital only.")
        return who.hospital_code
    raise forbidden(
        f"Only MEMBER_ADMIN of the host hospital, SECRETARIAT or ALLIANCE_ADMIN may record a {what}."
    )


def _required(value: str, field: str) -> str:
    if not value.strip():
        raise bad_input(f"{field} is required.", field=field)
    return value.strip()


def _credits(value: float | None) -> Decimal | None:
    if value is None:
        return None
    try:
        credits = Decimal(str(value)).quantize(Decimal("0.1"))
    except InvalidOperation:
        raise bad_input("credits must be a number.", field="credits") from None
    if not Decimal(0) <= credits <= Decimal("999.9"):
        raise bad_input("credits must be between 0 and 999.9.", field="credits")
    return credits


async def record_event(ctx: RequestContext, new: NewTrainingEvent) -> TrainingEvent:
    host = _recording_host(ctx, new.host, "training event")
    # Seed 000 §9, §12(六): training is collaboration under the alliance's agreements, so the
    # host and every participating hospital need one in force (§15, §19), as placements do.
    await agreements.active_party(ctx, host, "host")
    topic = _required(new.topic, "topic")
    lecturers = [name.strip() for name in new.lecturers]
    if any(not name for name in lecturers):
        raise bad_input("lecturers must not hold empty names.", field="lecturers")
    participants: dict[str, int] = {}
    for hospital, count in new.participants:
        if hospital in participants:
            raise bad_input(f"{hospital} is listed twice among participants.", field="participants")
        if count < 0:
            raise bad_input("A participant count must not be negative.", field="participants")
        await agreements.active_party(ctx, hospital, "participants")
        participants[hospital] = count
    values = {
        "kind": new.kind.value,
        "host_hospital": host,
        "mode": new.mode.value,
        "place": new.place.strip() if new.place and new.place.strip() else None,
        "held_on": new.held_on,
        "topic": topic,
        "lecturers": lecturers,
        "credits": _credits(new.credits),
    }
    attendance = tuple(
        {"hospital": hospital, "participants": count} for hospital, count in participants.items()
    )
    request = CreateRequest(
        port.TRAINING_EVENT,
        values,
        Children(port.TRAINING_PARTICIPATION, "event_id", attendance),
    )
    row = (await on_member(ctx.federation, host, request, ctx.sources)).record
    await events.record(
        ctx,
        host,
        ChangeRow("training_event", row.id, row.version, row.updated_at, (row.host_hospital,)),
    )
    return TrainingEvent(host, row)


async def record_placement(ctx: RequestContext, new: NewPlacement) -> Placement:
    host = _recording_host(ctx, new.host, "placement")
    await agreements.active_party(ctx, host, "host")
    if new.home_hospital == host:
        raise bad_input(
            "A placement is at another hospital than the home one.", field="homeHospital"
        )
    # Seed 000 §12(五): placements are a member's right under its agreement, so one in force.
    await agreements.active_party(ctx, new.home_hospital, "homeHospital")
    if new.ends_on < new.starts_on:
        raise bad_input("endsOn must not be before startsOn.", field="endsOn")
    values = {
        "host_hospital": host,
        "home_hospital": new.home_hospital,
        "trainee_name": _required(new.trainee_name, "traineeName"),
        "profession": new.profession.value,
        "department": _required(new.department, "department"),
        "supervisor": new.supervisor.strip() if new.supervisor and new.supervisor.strip() else None,
        "starts_on": new.starts_on,
        "ends_on": new.ends_on,
        "fee_waived": new.fee_waived,
        "evaluation": new.evaluation,
    }
    request = CreateRequest(port.PLACEMENT, values)
    row = (await on_member(ctx.federation, host, request, ctx.sources)).record
    return Placement(host, row)
