"""Writes a finished operation's audit entries to the gateway's database, and starts the next
operation on the same connection with a clean record of which members were asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from strawberry.extensions import SchemaExtension

from adapters.registry.audit import AuditStore
from resolvers import audit
from resolvers.context import RequestContext


def audit_extension(store: dict[str, Any]) -> type[SchemaExtension]:
    class AuditFlush(SchemaExtension):
        async def on_operation(self) -> AsyncIterator[None]:  # type: ignore[override]
            yield
            context = self.execution_context.context
            if not isinstance(context, RequestContext):
                return
            audit_store: AuditStore = store["audit"]
            await audit.flush(audit_store, context.audit, context.principal, context.sources)
            context.sources.asked.clear()
            context.sources.failures.clear()

    return AuditFlush
