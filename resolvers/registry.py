"""Reads of the alliance registry: the alliance, its council, its members, applications."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.registry.records import (
    AgreementRecord,
    AllianceRecord,
    ApplicationRecord,
    CouncilSeatRecord,
    HospitalRecord,
    MembershipRecord,
    ResolutionRecord,
)
from resolvers.authorization import require_role
from resolvers.context import RequestContext
from resolvers.errors import ErrorCode, GatewayError, bad_input, forbidden
from resolvers.pagination import Page, decode_cursor, encode_cursor, page_size
from resolvers.principal import Role


async def alliance(ctx: RequestContext) -> AllianceRecord:
    ctx.who  # noqa: B018 - any authenticated principal may read the alliance
    record = await ctx.registry.alliance(ctx.alliance_id)
    if record is None:
        raise GatewayError(
            ErrorCode.INTERNAL_SERVER_ERROR,
            "The alliance this gateway serves is not registered yet.",
        )
    return record


async def council(ctx: RequestContext) -> list[CouncilSeatRecord]:
    return await ctx.registry.council(ctx.alliance_id)


async def resolutions(ctx: RequestContext) -> list[ResolutionRecord]:
    return await ctx.registry.resolutions(ctx.alliance_id)


async def hospital(ctx: RequestContext, code: str) -> HospitalRecord | None:
    ctx.who  # noqa: B018
    known = ctx.loaders.known_hospitals.get(code)
    return known if known is not None else await ctx.loaders.hospital.load(code)


async def membership(ctx: RequestContext, code: str) -> MembershipRecord | None:
    return await ctx.loaders.membership.load(code)


async def latest_agreement(ctx: RequestContext, member_code: str) -> AgreementRecord | None:
    return await ctx.loaders.latest_agreement.load(member_code)


async def agreement_history(ctx: RequestContext, member_code: str) -> list[AgreementRecord]:
    return await ctx.loaders.agreements.load(member_code)


async def agreement(ctx: RequestContext, agreement_id: int) -> AgreementRecord | None:
    ctx.who  # noqa: B018
    record = await ctx.registry.agreement(agreement_id)
    return record if record and record.alliance_id == ctx.alliance_id else None


_MEMBER_CURSOR = "member"


async def members_page(
    ctx: RequestContext,
    statuses: Sequence[str] | None,
    roles: Sequence[str] | None,
    first: int | None,
    after: str | None,
) -> Page[MembershipRecord]:
    limit = page_size(first, default=50)
    position = None
    if after is not None:
        rank, code = decode_cursor(after, _MEMBER_CURSOR)
        position = (int(rank), str(code))
    rows = await ctx.registry.members_page(ctx.alliance_id, statuses, roles, position, limit + 1)
    items = [(encode_cursor(_MEMBER_CURSOR, [rank, m.hospital_code]), m) for rank, m in rows]
    for _, m in items:
        ctx.loaders.membership.prime(m.hospital_code, m)
    return Page(items=items[:limit], has_next_page=len(items) > limit)


async def count_members(
    ctx: RequestContext, statuses: Sequence[str] | None, roles: Sequence[str] | None
) -> int:
    return await ctx.registry.count_members(ctx.alliance_id, statuses, roles)


_APPLICATION_CURSOR = "application"


def _applications_scope(ctx: RequestContext) -> str | None:
    """The hospital whose applications the principal may see, or None for all of them."""
    who = ctx.who
    # The provincial office oversees admissions (seed 003 三(四)): it reads, never decides.
    if who.has_any(Role.SECRETARIAT, Role.ALLIANCE_ADMIN, Role.REGULATOR):
        return None
    require_role(
        who,
        Role.SECRETARIAT,
        Role.ALLIANCE_ADMIN,
        Role.MEMBER_ADMIN,
        action="read membership applications",
    )
    if who.hospital_code is None:
        # Never every application for want of a hospital: authentication refuses such tokens,
        # and this refuses them again should one get here.
        raise forbidden("A MEMBER_ADMIN token must name its hospital to read its applications.")
    return who.hospital_code


async def applications_page(
    ctx: RequestContext, statuses: Sequence[str] | None, first: int | None, after: str | None
) -> Page[ApplicationRecord]:
    scope = _applications_scope(ctx)
    limit = page_size(first)
    before = int(decode_cursor(after, _APPLICATION_CURSOR)) if after is not None else None
    rows = await ctx.registry.applications_page(ctx.alliance_id, statuses, scope, before, limit + 1)
    items = [(encode_cursor(_APPLICATION_CURSOR, a.id), a) for a in rows]
    return Page(items=items[:limit], has_next_page=len(items) > limit)


async def count_applications(ctx: RequestContext, statuses: Sequence[str] | None) -> int:
    return await ctx.registry.count_applications(
        ctx.alliance_id, statuses, _applications_scope(ctx)
    )


async def application(ctx: RequestContext, application_id: int) -> ApplicationRecord | None:
    scope = _applications_scope(ctx)
    record = await ctx.registry.application(application_id)
    if record is None or record.alliance_id != ctx.alliance_id:
        return None
    if scope is not None and record.hospital_code != scope:
        return None
    return record


async def active_member(ctx: RequestContext, code: str, field: str) -> HospitalRecord:
    """The hospital, if it is an active member; BAD_USER_INPUT naming `field` otherwise."""
    membership = await ctx.loaders.membership.load(code)
    hospital = await ctx.loaders.hospital.load(code)
    if membership is None or membership.status != "ACTIVE" or hospital is None:
        raise bad_input(f"{code} is not an active member of the alliance.", field=field)
    return hospital
