"""Fields that graphql-core resolves itself, without Strawberry's wrapping of each call.

A page of 50 referrals resolves about 600 fields. For a field with a resolver, Strawberry builds
an `Info`, converts the (absent) arguments and chains the (absent) field extensions on every call,
which costs several times the resolver itself; for a plain field, it calls two functions to read
one attribute. `install` gives graphql-core the resolver itself, or a plain attribute read:

- plain fields (no resolver, no extension) of every type: read as Strawberry would read them;
- resolvers marked `@direct`: called with graphql-core's own info. They take `self` and `info`
  only, and read nothing of `info` but `info.context` (the same object under both kinds of info).

A field with extensions (permissions, `FanOut`) keeps Strawberry's resolver, so nothing declared
on a field is skipped."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from graphql import GraphQLObjectType, GraphQLSchema
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from adapters.registry.records import HospitalRecord
from schema.types import Ctx, Hospital, hospital_of

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "_alliance_direct"
_ATTRIBUTE = "_alliance_attribute"


def direct(resolver: F) -> F:
    """Marks a field's resolver (`self`, `info`; reads only `info.context`) to be called by
    graphql-core itself. Put it under `@strawberry.field`."""
    setattr(resolver, _MARK, True)
    return resolver


def _attribute(name: str) -> Callable[[Any, Any], Any]:
    def resolve(source: Any, info: Any) -> Any:
        return getattr(source, name)

    # What Strawberry says of its own plain-field resolvers (its tracing skips them).
    resolve._is_default = True  # type: ignore[attr-defined]
    setattr(resolve, _ATTRIBUTE, name)
    return resolve


def is_direct(resolve: Any) -> bool:
    """Whether an installed resolver is a `@direct` one answering at once (not a coroutine)."""
    return bool(getattr(resolve, _MARK, False)) and not inspect.iscoroutinefunction(resolve)


def attribute_of(resolve: Any) -> str | None:
    """The attribute a plain field's installed resolver reads; None for any other resolver."""
    return getattr(resolve, _ATTRIBUTE, None)


def install(schema: GraphQLSchema) -> int:
    """Installs the direct resolvers of `schema`; how many."""
    installed = 0
    for graphql_type in schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType) or graphql_type.name.startswith("__"):
            continue
        for field in graphql_type.fields.values():
            definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if not isinstance(definition, StrawberryField) or definition.extensions:
                continue
            if definition.is_subscription or field.args:
                continue
            resolver = definition.base_resolver
            if resolver is None:
                field.resolve = _attribute(definition.python_name)
                installed += 1
                continue
            wrapped = resolver.wrapped_func
            if isinstance(wrapped, staticmethod | classmethod) or not getattr(
                wrapped, _MARK, False
            ):
                continue
            if list(inspect.signature(wrapped).parameters) != ["self", "info"]:
                raise TypeError(f"{wrapped.__qualname__}: a direct resolver takes self and info")
            field.resolve = wrapped
            installed += 1
    return installed


# The last Hospital node made of each hospital's record: a page names a dozen hospitals on
# hundreds of fields, and each node is an object of twenty fields and three enums. Reused only
# for the very record it was made of (a page's, fetched ahead), so it says what that record says.
_NODES: dict[str, tuple[HospitalRecord, Hospital]] = {}


def hospital(info: Ctx, code: str) -> Hospital:
    """`schema.types.hospital_of`, with the node of a record fetched ahead made once."""
    known = info.context.loaders.known_hospitals.get(code)
    if known is None:
        return hospital_of(info, code)
    made = _NODES.get(code)
    if made is not None and made[0] is known:
        return made[1]
    node = Hospital.of(known)
    _NODES[code] = (known, node)
    return node
