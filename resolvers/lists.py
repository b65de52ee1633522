"""Federated lists: the same page asked of every member, merged into one alliance-wide page."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from adapters.sources.port import Page, PageRequest, RecordFilter, RecordKind
from adapters.sources.records import ListQuery
from resolvers import global_ids
from resolvers.context import RequestContext
from resolvers.federation import Merged, Owned, bounds, fan_out, merge_pages
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
    the same call to each member (so a slow member costs one deadline). `hospitals_of` names the
    hospitals a record refers to: the page's are fetched in one registry round trip before its
    fields are resolved. `fields`: the record fields read of the page (None: all), the others
    possibly None; they must include those `hospitals_of` reads."""
    limit = page_size(first) if default_size is None else page_size(first, default_size)
    bound_of = bounds(after, id_kind, ctx.federation)
    sort = kind.sort_field
    assert sort is not None, f"{kind!r} is not listed"
    # One more record than the page from each member tells whether another page follows.
    result = await fan_out(
        ctx.federation,
        ctx.federation.codes(),
        lambda code: PageRequest(
            kind,
            replace(query, bound=bound_of(code), limit=limit + 1),
            filters,
            with_total=with_total,
            fields=fields,
        ),
        ctx.sources,
    )
    pages: dict[str, Page[R]] = result.results
    merged = merge_pages(
        id_kind,
        {code: page.records for code, page in pages.items()},
        lambda r: getattr(r, sort),
        limit,
    )
    codes = {member for _, member, _ in merged.items}
    if hospitals_of is not None:
        codes.update(code for _, _, row in merged.items for code in hospitals_of(row))
    await ctx.loaders.prefetch_hospitals(codes)
    total = sum(page.total or 0 for page in pages.values()) if with_total else None
    return FederatedPage(merged.items, merged.has_next_page, total)


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
