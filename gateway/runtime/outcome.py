"""An operation's result with what executing it recorded for the audit, so that others served
the same result are audited as if they had executed it (gateway/runtime/fanout.py,
gateway/runtime/shared_queries.py)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Hashable, MutableMapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from graphql import ExecutionResult, GraphQLError

from adapters.sources.errors import SourceError
from gateway.request_checks import dumps_json
from resolvers.audit import AuditLog
from resolvers.context import RequestContext


class SharedData(dict[str, Any]):
    """A result's `data`, the same object for everyone served it: serialized once."""

    __slots__ = ("_text",)

    def text(self) -> str:
        try:
            return self._text
        except AttributeError:
            self._text: str = dumps_json(self)
            return self._text


@dataclass(frozen=True, slots=True)
class Outcome:
    """One execution, and what it recorded for the audit."""

    data: SharedData | None
    errors: list[GraphQLError] | None
    audit: AuditLog
    asked: frozenset[str]
    failures: tuple[SourceError, ...]

    @classmethod
    def of(cls, result: ExecutionResult, context: RequestContext) -> Outcome:
        return cls(
            data=SharedData(result.data) if result.data is not None else None,
            errors=result.errors,
            audit=_copy(context.audit),
            asked=frozenset(context.sources.asked),
            failures=tuple(context.sources.failures),
        )

    def pure_text(self) -> str | None:
        """The data's JSON text when the same text serves every reader of the result with nothing
        to record for any of them: no errors, nothing read to audit, no member asked."""
        if self.data is None or self.errors or self.audit.entries or self.asked or self.failures:
            return None
        return self.data.text()

    def result(self) -> ExecutionResult:
        return ExecutionResult(self.data, list(self.errors) if self.errors else None)

    def replay(self, context: RequestContext) -> None:
        context.audit.entries.update(_copy(self.audit).entries)
        context.sources.asked.update(self.asked)
        context.sources.failures.extend(self.failures)


def _copy(log: AuditLog) -> AuditLog:
    return AuditLog(
        {op: replace(entry, patients=set(entry.patients)) for op, entry in log.entries.items()}
    )


K = TypeVar("K", bound=Hashable)


async def once(
    flights: MutableMapping[K, asyncio.Future[Outcome | None]],
    key: K,
    context: RequestContext,
    run: Callable[[], ExecutionResult | Awaitable[ExecutionResult]],
    *,
    keep: bool,
) -> tuple[Outcome, bool]:
    """The one execution of `key`: the one under way (or done, while `flights` keeps it), or else
    `run` now under `context`, registered for the others meanwhile; and whether another made it.
    If the one under way failed, each of its waiters runs its own (its own errors and audit).
    `keep`: the entry stays once done, for later arrivals; otherwise it goes as the run ends."""
    pending = flights.get(key)
    if pending is not None:
        # Shielded: one waiter giving up must not cancel the execution the others wait for.
        outcome = await asyncio.shield(pending)
        if outcome is not None:
            return outcome, True
        return Outcome.of(await run_operation(run), context), False
    mine: asyncio.Future[Outcome | None] = asyncio.get_running_loop().create_future()
    flights[key] = mine
    try:
        result = await run_operation(run)
    except BaseException:
        mine.set_result(None)
        if flights.get(key) is mine:
            del flights[key]
        raise
    if not keep and flights.get(key) is mine:
        del flights[key]
    outcome = Outcome.of(result, context)
    mine.set_result(outcome)
    return outcome, False


async def run_operation(
    run: Callable[[], ExecutionResult | Awaitable[ExecutionResult]],
) -> ExecutionResult:
    result = run()
    return await result if inspect.isawaitable(result) else result
