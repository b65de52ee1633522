"""An operation's state (registry loaders, member loaders, what was asked, the audit) is made when
a resolver first asks for it: a subscription starts a fresh state for every event it delivers, and
an event whose selection reads nothing must neither pay for loaders nor be audited."""

from __future__ import annotations

import asyncio
from typing import Any

from resolvers.context import RequestContext
from resolvers.federation import Federation
from resolvers.rules import AllianceRules


def _context() -> RequestContext:
    # The stores are never reached here: nothing is loaded or flushed. (Loaders are made inside
    # a running event loop, as in a request.)
    unused: Any = object()
    return RequestContext(
        registry=unused,
        alliance_id="demo",
        rules=AllianceRules(),
        federation=Federation([]),
        audit_store=unused,
    )


async def test_a_fresh_operation_is_untouched_until_something_is_read() -> None:
    ctx = _context()
    ctx.next_operation()
    assert ctx.operation_untouched
    loaders = ctx.loaders
    assert ctx.operation_untouched, "registry lookups alone leave nothing to audit"
    assert ctx.loaders is loaders, "one set of loaders per operation"
    ctx.sources.asked.add("LYZG")
    touched = not ctx.operation_untouched
    assert touched
    ctx.next_operation()
    assert ctx.operation_untouched and not ctx.sources.asked
    assert ctx.loaders is not loaders, "the next operation does not read the last one's rows"


async def test_the_audit_touched_is_something_to_flush() -> None:
    ctx = _context()
    ctx.next_operation()
    assert ctx.member_loaders is ctx.member_loaders
    after_loaders = ctx.operation_untouched
    assert not after_loaders, "member loaders report what they ask"
    ctx.next_operation()
    ctx.audit  # noqa: B018
    after_audit = ctx.operation_untouched
    assert not after_audit


async def test_each_task_has_its_own_operation() -> None:
    ctx = _context()
    ctx.next_operation()
    ctx.sources.asked.add("LYZG")

    async def other() -> bool:
        ctx.next_operation()
        return ctx.operation_untouched

    assert await asyncio.create_task(other())
    assert ctx.sources.asked == {"LYZG"}, "another task's next operation left this one alone"
