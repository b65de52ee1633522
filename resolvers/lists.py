"""Federated lists: the same page asked of every member, merged into one alliance-wide page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import date, datetime
from typing import Any, TypeVar

from adapters.exchange.postgres import ExchangeDatabase
from adapters.exchange.records import ListQuery
from resolvers import global_ids
from resolvers.context import RequestContext
from resolvers.federation import Merged, Owned, bounds, fan_out, merge_pages
from resolvers.member_loaders import MemberLoader
from resolvers.pagination import page_size

R = TypeVar("R")


async def federated_page(
    ctx: RequestContext,
    kind: str,
    query: ListQuery,
    fetch: Callable[[ExchangeDatabase, ListQuery], Awaitable[list[R]]],
    sort_value: Callable[[R], datetime | date],
    first: int | None,
    after: str | None,
    hospitals_of: Callable[[R], Iterable[str]] | None = None,
) -> Merged[R]:
    """`hospitals_of` names the hospitals a row refers to: the page's are fetched in one
    registry round trip before its fields are resolved."""
    limit = page_size(first)
    bound_of = bounds(after, kind)
    # One more row than the page from each member tells whether another page follows.
    result = await fan_out(
        ctx.federation,
        ctx.federation.codes(),
        lambda source: fetch(
            source, replace(query, bound=bound_of(source.member), limit=limit + 1)
        ),
        ctx.sources,
    )
    merged = merge_pages(kind, result.results, sort_value, lambda r: r.id, limit)  # type: ignore[attr-defined]
    codes = {member for _, member, _ in merged.items}
    if hospitals_of is not None:
        codes.update(code for _, _, row in merged.items for code in hospitals_of(row))
    await ctx.loaders.prefetch_hospitals(codes)
    return merged


async def federated_count(
    ctx: RequestContext,
    query: ListQuery,
    count: Callable[[ExchangeDatabase, ListQuery], Awaitable[int]],
) -> int:
    """The total over the members that answered; the others are reported in `errors`."""
    result = await fan_out(
        ctx.federation, ctx.federation.codes(), lambda source: count(source, query), ctx.sources
    )
    return sum(result.results.values())


OwnedT = TypeVar("OwnedT", bound=Owned)  # type: ignore[type-arg]


async def load_owned(
    ctx: RequestContext, global_id: str, owned: type[OwnedT], loader: MemberLoader[int, Any]
) -> OwnedT | None:
    """The record a global id names, read through its member's loader; None when the member is
    not configured here or holds no such row."""
    member, row_id = global_ids.decode_member_key(global_id, owned.kind)
    if member not in ctx.federation.members:
        return None
    rows = await loader.load((member, row_id))
    return owned(member, rows[0]) if rows else None
