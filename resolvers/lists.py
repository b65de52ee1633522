"""Federated lists: the same page asked of every member, merged into one alliance-wide page."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, TypeVar

from adapters.sources.port import PageRequest, RecordFilter, RecordKind
from adapters.sources.records import ListQuery
from resolvers import global_ids
from resolvers.context import RequestContext
from resolvers.errors import bad_input
from resolvers.federation import Merged, Owned, bounds, page_in_rounds
from resolvers.member_loaders import MemberLoader
from resolvers.pagination import page_size

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class FederatedPage(Merged[R]):
    # Over the members that answered (the others are named in `errors`); None unless asked for.
    total: int | None = None


async def federated_page(
    ctx: RequestContext,
    kind: RecordKind[R],
    id_kind: str,
    query: ListQuery,
    filters: RecordFilter,
    first: int | None,
    after: str | None,
    *,
    with_total: bool = False,
    hospitals_of: Callable[[R], Iterable[str]] | None = None,
    default_size: int | None = None,
    fields: frozenset[str] | None = None,
) -> FederatedPage[R]:
    """One page over every member, and with `with_total` the count of every matching record, in
    the first round's call to each member (`page_in_rounds`). `hospitals_of` names the hospitals
    a record refers to: the page's are fetched in one registry round trip before its
    fields are resolved. `fields`: the record fields read of the page (None: all), the others
    possibly None; they must include those `hospitals_of` reads."""
    limit = page_size(first) if default_size is None else page_size(first, default_size)
    bound_of = bounds(after, id_kind, ctx.federation)
    merged, opening = await page_in_rounds(
        ctx.federation,
        kind,
        id_kind,
        limit,
        bound_of,
        lambda code, bound, size, first_round: PageRequest(
            kind,
            replace(query, bound=bound, limit=size),
            filters,
            with_total=with_total and first_round,
            fields=fields,
        ),
        ctx.sources,
    )
    named = {member for _, member, _ in merged.items}
    if hospitals_of is not None:
        named.update(code for _, _, row in merged.items for code in hospitals_of(row))
    await ctx.loaders.prefetch_hospitals(named)
    total = sum(page.total or 0 for page in opening.values()) if with_total else None
    return FederatedPage(merged.items, merged.has_next_page, total)


def year_window(year: int | None) -> tuple[date | None, date | None]:
    """A list's `year` filter as its window, [1 January, next 1 January); none without one."""
    if year is None:
        return None, None
    if not 1900 <= year <= 2999:
        raise bad_input("year must be between 1900 and 2999.", field="year")
    return date(year, 1, 1), date(year + 1, 1, 1)


OwnedT = TypeVar("OwnedT", bound=Owned[Any])


def member_key(ctx: RequestContext, global_id: str, id_kind: str) -> tuple[str, str] | None:
    """The (member, key) a global id names; None when no configured member could hold it."""
    member, key = global_ids.decode_member_key(global_id, id_kind)
    return (member, key) if ctx.federation.holds(member, key) else None


async def load_owned(
    ctx: RequestContext, global_id: str, owned: type[OwnedT], loader: MemberLoader[Any]
) -> OwnedT | None:
    """The record a global id names, read through its member's loader; None when the member is
    not configured here or holds no such record."""
    found = member_key(ctx, global_id, owned.kind)
    if found is None:
        return None
    rows = await loader.load(found)
    return owned(found[0], rows[0]) if rows else None
