"""Reading the audit trail: for the chair institution and operations only."""

from __future__ import annotations

from datetime import datetime

from adapters.registry.records import AuditRecord
from resolvers import patients
from resolvers.authorization import require_role
from resolvers.context import RequestContext
from resolvers.errors import bad_input
from resolvers.pagination import Page, decode_cursor, encode_cursor, page_size
from resolvers.principal import Role

_CURSOR = "audit"


async def page(
    ctx: RequestContext,
    *,
    pseudonym: str | None,
    subject: str | None,
    since: datetime | None,
    first: int | None,
    after: str | None,
) -> Page[AuditRecord]:
    require_role(ctx.who, Role.ALLIANCE_ADMIN, Role.OPS, action="read the audit trail")
    if pseudonym is not None:
        patients.check_pseudonym(pseudonym)
    limit = page_size(first)
    before = None
    if after is not None:
        position = decode_cursor(after, _CURSOR)
        try:
            at, row_id = position
            before = (datetime.fromisoformat(at), int(row_id))
            if not 0 < before[1] < 2**63:
                raise ValueError
        except (ValueError, TypeError):
            raise bad_input("`after` is not a cursor of this list.", argument="after") from None
    rows = await ctx.audit_store.page(
        patient=pseudonym, subject=subject, since=since, before=before, limit=limit + 1
    )
    items = [(encode_cursor(_CURSOR, [r.occurred_at.isoformat(), r.id]), r) for r in rows]
    return Page(items=items[:limit], has_next_page=len(items) > limit)
