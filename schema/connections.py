"""Relay pagination in the contract: one generic `Connection` / `Edge` for every paginated list.
Strawberry names a specialisation after its node: `Connection[AuditEvent]` is `AuditEventConnection`,
`Edge[Referral]` is `ReferralEdge`. A list with fields of its own subclasses `Connection[Node]`
under that same name, or `CountedConnection[Node]` for the federated lists' `totalCount`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import strawberry

from resolvers.pagination import Page

T = TypeVar("T")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None
    has_previous_page: bool = False
    start_cursor: str | None = None

    @classmethod
    def of(cls, page: Page[Any]) -> PageInfo:
        return cls.of_items(page.items, page.has_next_page)

    @classmethod
    def of_items(cls, items: Sequence[tuple[Any, ...]], has_next_page: bool) -> PageInfo:
        """From a page's items, each starting with its cursor."""
        return cls(
            has_next_page=has_next_page,
            end_cursor=items[-1][0] if items else None,
            start_cursor=items[0][0] if items else None,
        )


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo


@strawberry.type
class CountedConnection(Connection[T], Generic[T]):
    """A federated list's connection with `totalCount`. Subclassed under the list's own name:
    `class ReferralConnection(CountedConnection[Referral])`."""

    total: strawberry.Private[int | None]

    @strawberry.field(description="Over the members that answered.")
    def total_count(self) -> int:
        return self.total or 0
