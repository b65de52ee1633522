"""The extensions' `on_operation` hooks run around an operation, and their `on_stream_result`
hooks around each result a subscription sends, as Strawberry runs them, but holding only the
hooks' own generators while the operation runs.

A subscription's operation lasts as long as its subscriber: Strawberry's runner keeps, for each
hook and for that whole time, a function made by contextlib.contextmanager, its context manager,
the exit stack's callback and the stack's deque, about 7 KiB per subscriber with the gateway's
six hooks. Driving the generators directly keeps one generator each; around each result sent,
it skips inspecting and wrapping every extension's hook again. The order is Strawberry's:
entered in the extensions' order, left in reverse, each seeing the exception the one inside it
let through (and able to suppress it, or replace it with its own), as contextlib's ExitStack
passes it on; and, as Strawberry's, the operation's own exception propagates even if suppressed."""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Generator
from types import TracebackType
from typing import Any, cast

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import OperationContextManager
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext
from strawberry.utils.await_maybe import await_maybe

_Hook = Generator[None, None, None] | AsyncGenerator[None, None]


class _Hooks:
    """One kind of hook of every extension that has it (`name`: `on_operation`, or
    `on_stream_result` around each result a subscription yields), called with `args`."""

    __slots__ = ("_args", "_extensions", "_name", "_running", "_sync")

    def __init__(self, extensions: list[SchemaExtension], name: str, *args: Any) -> None:
        self._extensions = extensions
        self._name = name
        self._args = args
        self._running: list[_Hook] = []
        self._sync: OperationContextManager | None = None

    # A synchronous execution (none in the gateway, which serves asynchronously) is left to
    # Strawberry's own runner: it holds nothing for long.
    def __enter__(self) -> None:
        assert self._name == "on_operation", "results are streamed only asynchronously"
        self._sync = OperationContextManager(self._extensions)
        self._sync.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._sync is not None
        self._sync.__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> None:
        default = getattr(SchemaExtension, self._name)
        for extension in self._extensions:
            hook = getattr(type(extension), self._name)
            if hook is default:
                continue
            started = hook(extension, *self._args)
            try:
                if inspect.isgenerator(started):
                    try:
                        next(started)
                    except StopIteration:
                        raise RuntimeError("generator didn't yield") from None
                elif inspect.isasyncgen(started):
                    try:
                        await started.__anext__()
                    except StopAsyncIteration:
                        raise RuntimeError("generator didn't yield") from None
                else:
                    # A plain hook runs once, before the operation (Strawberry's from_callable).
                    if inspect.isawaitable(started):
                        await started
                    continue
            except BaseException as e:
                # The hooks already entered are left as if the operation had raised it.
                await self.__aexit__(type(e), e, e.__traceback__)
                raise
            self._running.append(cast("_Hook", started))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pending = exc
        running, self._running = self._running, []
        for hook in reversed(running):
            try:
                pending = await _leave(hook, pending)
            except BaseException as e:
                # The hook's own exception replaces the pending one for the hooks outside it.
                pending = e
        # As Strawberry's runner: a hook may replace the operation's exception with its own, but
        # suppressing it does not keep the operation's from propagating.
        if pending is not None and pending is not exc:
            raise pending


async def _leave(hook: _Hook, exc: BaseException | None) -> BaseException | None:
    """Resumes the hook after its `yield`: the exception still pending after it, or None; raises
    the hook's own exception if it raised another (contextlib's _GeneratorContextManager)."""
    if isinstance(hook, Generator):
        if exc is None:
            try:
                next(hook)
            except StopIteration:
                return None
            raise RuntimeError("generator didn't stop")
        try:
            hook.throw(exc)
        except StopIteration as stop:
            return None if stop is not exc else exc
        except BaseException as e:
            if e is exc:
                return exc
            raise
        raise RuntimeError("generator didn't stop after throw()")
    if exc is None:
        try:
            await hook.__anext__()
        except StopAsyncIteration:
            return None
        raise RuntimeError("generator didn't stop")
    try:
        await hook.athrow(exc)
    except StopAsyncIteration as stop:
        return None if stop is not exc else exc
    except BaseException as e:
        if e is exc:
            return exc
        raise
    raise RuntimeError("generator didn't stop after athrow()")


class GatewayExtensionsRunner(SchemaExtensionsRunner):
    def operation(self) -> Any:
        return _Hooks(self.extensions, "on_operation")

    def on_stream_result(self, result: Any) -> Any:
        # Around every result a subscriber is sent: Strawberry's manager inspects and wraps every
        # extension's hook each time, a sixth of the cost of a delivery.
        return _Hooks(self.extensions, "on_stream_result", result)

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        # Called for every result a subscriber is sent: only the extensions that have results.
        data: dict[str, Any] = {}
        for extension in self.extensions:
            if type(extension).get_results is not SchemaExtension.get_results:
                data.update(await await_maybe(extension.get_results()))
        data.update(ctx.extensions_results)
        return data
