"""Starts every operation (and every event of a subscription) with fresh per-operation state, and
writes its audit entries to the gateway's database once it is done."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from strawberry.extensions import SchemaExtension

from resolvers import audit
from resolvers.context import RequestContext


class AuditFlush(SchemaExtension):
    async def on_operation(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        if isinstance(context, RequestContext):
            context.next_operation()
        yield
        await self._flush()

    async def on_stream_result(self, result: Any) -> AsyncIterator[None]:
        # A subscription's events each read records live: each is audited once sent, and the
        # next starts with fresh loaders, not with the rows the previous event read.
        yield
        await self._flush()
        context = self.execution_context.context
        if isinstance(context, RequestContext):
            context.next_operation()

    async def _flush(self) -> None:
        context = self.execution_context.context
        if not isinstance(context, RequestContext) or context.operation_untouched:
            return
        await audit.flush(context.audit_store, context.audit, context.principal, context.sources)
