"""The extensions' on_operation and on_stream_result hooks (gateway/runtime/operation_hooks.py)
run as Strawberry's own runner runs them: entered in order, left in reverse, each seeing the
exception the hooks inside it let through, able to suppress it or raise its own instead; and
only the extensions that have results are asked for them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import OperationContextManager, StreamResultContextManager

from gateway.runtime.operation_hooks import GatewayExtensionsRunner


class Boom(Exception):
    pass


class Other(Exception):
    pass


def _extensions(log: list[str]) -> list[SchemaExtension]:
    class Outer(SchemaExtension):
        async def on_operation(self) -> AsyncIterator[None]:
            log.append("outer in")
            try:
                yield
            except Boom:
                log.append("outer saw boom")
                raise
            finally:
                log.append("outer out")

    class Plain(SchemaExtension):
        def on_operation(self) -> None:  # type: ignore[override]
            log.append("plain")

    class Suppressing(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            log.append("suppressing in")
            try:
                yield
            except Other:
                log.append("suppressing swallowed other")
            log.append("suppressing out")

    class Replacing(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            log.append("replacing in")
            try:
                yield
            except Boom as e:
                log.append("replacing saw boom")
                raise Other from e
            log.append("replacing out")

    class Silent(SchemaExtension):
        pass

    return [Outer(), Plain(), Suppressing(), Replacing(), Silent()]


async def _run(manager: Any, raising: BaseException | None) -> tuple[list[str], str]:
    log: list[str] = []
    context = manager(log)
    try:
        async with context:
            log.append("operation")
            if raising is not None:
                raise raising
    except BaseException as e:
        return log, f"raised {type(e).__name__}"
    return log, "returned"


def _ours(log: list[str]) -> Any:
    return GatewayExtensionsRunner(execution_context=None, extensions=_extensions(log)).operation()  # type: ignore[arg-type]


def _strawberrys(log: list[str]) -> Any:
    return OperationContextManager(_extensions(log))


@pytest.mark.parametrize("raising", [None, Boom(), Other(), ValueError()])
async def test_hooks_run_as_strawberry_runs_them(raising: BaseException | None) -> None:
    ours = await _run(_ours, raising)
    theirs = await _run(_strawberrys, raising)
    assert ours == theirs


async def test_a_replaced_exception_is_what_the_outer_hooks_see() -> None:
    log, outcome = await _run(_ours, Boom())
    # Replacing turns Boom into Other, which Suppressing (outside it) swallows: Outer sees none.
    # The operation's own exception still propagates, as with Strawberry's runner.
    assert outcome == "raised Boom"
    assert log == [
        "outer in",
        "plain",
        "suppressing in",
        "replacing in",
        "operation",
        "replacing saw boom",
        "suppressing swallowed other",
        "suppressing out",
        "outer out",
    ]


async def test_an_exception_a_hook_raises_on_leaving_propagates() -> None:
    class Raising(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            yield
            raise Other

    managers = [
        GatewayExtensionsRunner(execution_context=None, extensions=[Raising()]).operation(),  # type: ignore[arg-type]
        OperationContextManager([Raising()]),
    ]
    for manager in managers:
        with pytest.raises(Other):
            async with manager:
                pass


def _stream_extensions(log: list[str]) -> list[SchemaExtension]:
    class Audited(SchemaExtension):
        async def on_stream_result(self, result: Any) -> AsyncIterator[None]:
            log.append(f"audited in {result}")
            try:
                yield
            finally:
                log.append("audited out")

    class Plain(SchemaExtension):
        def on_stream_result(self, result: Any) -> None:  # type: ignore[override]
            log.append(f"plain {result}")

    class Published(SchemaExtension):
        def on_stream_result(self, result: Any) -> Iterator[None]:
            log.append("published in")
            try:
                yield
            except Boom:
                log.append("published swallowed boom")
            log.append("published out")

    class Silent(SchemaExtension):
        pass

    return [Audited(), Plain(), Published(), Silent()]


@pytest.mark.parametrize("raising", [None, Boom(), ValueError()])
async def test_stream_result_hooks_run_as_strawberry_runs_them(
    raising: BaseException | None,
) -> None:
    def ours(log: list[str]) -> Any:
        runner = GatewayExtensionsRunner(execution_context=None, extensions=_stream_extensions(log))  # type: ignore[arg-type]
        return runner.on_stream_result("result 1")

    def theirs(log: list[str]) -> Any:
        return StreamResultContextManager(_stream_extensions(log), "result 1")  # type: ignore[arg-type]

    assert await _run(ours, raising) == await _run(theirs, raising)


async def test_only_extensions_with_results_are_asked_for_them() -> None:
    asked: list[str] = []

    class Explaining(SchemaExtension):
        def get_results(self) -> dict[str, Any]:
            asked.append("explaining")
            return {"federation": {"calls": []}}

    class Counting(SchemaExtension):
        async def get_results(self) -> dict[str, Any]:
            asked.append("counting")
            return {"count": 1}

    class Quiet(SchemaExtension):
        pass

    class Context:
        def __init__(self) -> None:
            self.extensions_results = {"own": True}

    runner = GatewayExtensionsRunner(
        execution_context=None,  # type: ignore[arg-type]
        extensions=[Explaining(), Quiet(), Counting()],
    )
    results = await runner.get_extensions_results(Context())  # type: ignore[arg-type]
    assert results == {"federation": {"calls": []}, "count": 1, "own": True}
    assert asked == ["explaining", "counting"]
