"""Capacity building (帮扶): staff dispatched to a member (派驻/下沉), one-to-one mentoring, new
techniques and projects started at a member with help, on-site tours (巡诊). Each record lives in
the exchange database of the hospital that recorded it, one of its two parties.

There are no patients here, only hospitals, dates, head counts and titles: the alliance office,
the provincial regulator (which assesses the alliance on exactly these counts, seed 001 Annex 4)
and the two hospitals read them; they are not clinical records, so resolvers.access, the
allow-list for those, is not what admits the regulator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from adapters.sources import port
from adapters.sources.port import CreateRequest
from adapters.sources.records import CapacityActivityRow, CapacityFilter, ListQuery
from resolvers import clock, registry
from resolvers.access import OFFICE_ROLES, PARTY_ROLES
from resolvers.context import RequestContext
from resolvers.errors import bad_input, forbidden
from resolvers.federation import Owned, on_member
from resolvers.lists import FederatedPage, federated_page, load_owned, year_window
from resolvers.member_loaders import MemberLoader
from resolvers.principal import Role

KIND = "CapacityActivity"
MAX_TITLE = 200
MAX_PEOPLE = 10_000


class CapacityKind(StrEnum):
    DISPATCH = "DISPATCH"  # 派驻/下沉
    MENTORING = "MENTORING"  # 一对一带教
    NEW_TECHNIQUE = "NEW_TECHNIQUE"  # 新技术新项目
    ON_SITE_TOUR = "ON_SITE_TOUR"  # 巡诊


class CapacityActivity(Owned[CapacityActivityRow]):
    """A capacity-building activity, held by the hospital that recorded it."""

    kind = KIND


@dataclass(frozen=True, slots=True)
class CapacityQuery:
    kind: CapacityKind | None = None
    hospital: str | None = None
    year: int | None = None


@dataclass(frozen=True, slots=True)
class NewCapacityActivity:
    kind: CapacityKind
    helping_hospital: str
    helped_hospital: str
    title: str
    started_on: date
    ended_on: date | None = None
    people: int = 1
    idempotency_key: str | None = None


def reader_parties(ctx: RequestContext) -> tuple[str, ...] | None:
    """Whose activities the reader sees: None for all (the office, the regulator), else its own
    hospital's, as helping or helped."""
    who = ctx.who
    if who.has_any(*OFFICE_ROLES, Role.REGULATOR):
        return None
    if who.has_any(*PARTY_ROLES):
        if not who.hospital_code:
            raise forbidden("Reading capacity activities needs a token that names your hospital.")
        return (who.hospital_code,)
    raise forbidden(f"{', '.join(who.roles)} may not read capacity activities.")


async def activities_page(
    ctx: RequestContext,
    q: CapacityQuery,
    first: int | None,
    after: str | None,
    *,
    with_total: bool = False,
) -> FederatedPage[CapacityActivityRow]:
    since, until = year_window(q.year)
    query = ListQuery(parties=reader_parties(ctx), with_party=q.hospital, since=since, until=until)
    return await federated_page(
        ctx,
        port.CAPACITY_ACTIVITY,
        KIND,
        query,
        CapacityFilter((q.kind.value,)) if q.kind else None,
        first,
        after,
        with_total=with_total,
        hospitals_of=lambda r: (r.helping_hospital, r.helped_hospital),
    )


async def get_activity(ctx: RequestContext, global_id: str) -> CapacityActivity | None:
    """The activity a global id names, if the reader may see it: as in the list, the office and
    the regulator any, a hospital those it gives or receives."""
    parties = reader_parties(ctx)
    loader = MemberLoader(ctx.federation, ctx.sources, port.CAPACITY_ACTIVITY)
    found = await load_owned(ctx, global_id, CapacityActivity, loader)
    if found is None or (
        parties is not None
        and not set(parties) & {found.row.helping_hospital, found.row.helped_hospital}
    ):
        return None
    return found


def _holder(ctx: RequestContext, new: NewCapacityActivity) -> str:
    """The recording MEMBER_ADMIN's hospital, which must be one of the two parties."""
    who = ctx.who
    if not who.has_any(Role.MEMBER_ADMIN) or not who.hospital_code:
        raise forbidden(
            "Only MEMBER_ADMIN of the helping or the helped hospital records a capacity activity: "
            "the record lives in its hospital's exchange database."
        )
    if who.hospital_code not in (new.helping_hospital, new.helped_hospital):
        raise forbidden("A MEMBER_ADMIN records capacity activities its own hospital is part of.")
    return who.hospital_code


def _values(ctx: RequestContext, new: NewCapacityActivity) -> dict[str, object]:
    if new.helping_hospital == new.helped_hospital:
        raise bad_input("A hospital does not help itself.", field="helpedHospital")
    title = new.title.strip()
    if not title or len(title) > MAX_TITLE:
        raise bad_input(f"title must hold 1 to {MAX_TITLE} characters.", field="title")
    if new.started_on > clock.today():
        raise bad_input("startedOn must not be in the future.", field="startedOn")
    if new.ended_on is not None and new.ended_on < new.started_on:
        raise bad_input("endedOn must not be before startedOn.", field="endedOn")
    if not 0 <= new.people <= MAX_PEOPLE:
        raise bad_input(f"people must be between 0 and {MAX_PEOPLE}.", field="people")
    key = new.idempotency_key
    if key is not None and not 8 <= len(key) <= 128:
        raise bad_input("idempotencyKey must hold 8 to 128 characters.", field="idempotencyKey")
    return {
        "kind": new.kind.value,
        "helping_hospital": new.helping_hospital,
        "helped_hospital": new.helped_hospital,
        "title": title,
        "started_on": new.started_on,
        "ended_on": new.ended_on,
        "people": new.people,
        "idempotency_key": key,
        "created_by": ctx.who.subject,
    }


async def record_activity(ctx: RequestContext, new: NewCapacityActivity) -> CapacityActivity:
    holder = _holder(ctx, new)
    values = _values(ctx, new)
    await registry.active_member(ctx, new.helping_hospital, "helpingHospital")
    await registry.active_member(ctx, new.helped_hospital, "helpedHospital")
    created = await on_member(
        ctx.federation, holder, CreateRequest(port.CAPACITY_ACTIVITY, values), ctx.sources
    )
    row = created.record
    if not created.created and (row.kind, row.helped_hospital, row.started_on) != (
        new.kind.value,
        new.helped_hospital,
        new.started_on,
    ):
        raise bad_input(
            "This idempotencyKey was already used for another capacity activity.",
            field="idempotencyKey",
        )
    return CapacityActivity(holder, row)
