"""Federated lists: the same page asked of every member, merged into one alliance-wide page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import date, datetime
from typing import TypeVar

from adapters.exchange.postgres import ExchangeDatabase
from adapters.exchange.records import ListQuery
from resolvers.context import RequestContext
from resolvers.federation import Merged, bounds, fan_out, merge_pages
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
