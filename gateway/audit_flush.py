"""Writes a finished operation's audit entries to the gateway's database, and starts the next
operation on the same connection with a clean record of which members were asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from strawberry.extensions import SchemaExtension

from resolvers import audit
from resolvers.context import RequestContext


class AuditFlush(SchemaExtension):
    async def on_operation(self) -> AsyncIterator[None]:  # type: ignore[override]
        yield
        await self._flush()

    async def on_stream_result(self, result: Any) -> AsyncIterator[None]:  # type: ignore[override]
        # A subscription's events each read records live: each is audited once sent, and the
        # next starts with fresh loaders, not with the rows the previous event read.
        yield
        await self._flush()

    async def _flush(self) -> None:
        context = self.execution_context.context
        if not isinstance(context, RequestContext):
            return
        await audit.flush(context.audit_store, context.audit, context.principal, context.sources)
        context.next_operation()
