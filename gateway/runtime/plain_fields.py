"""Plain fields executed without graphql-core's general path.

A page of 50 referrals executes about 600 fields. graphql-core runs each through the same steps:
a response path, a resolve info, the resolver, then `complete_value`'s checks for non-null, list,
leaf, abstract and object. Most of them need none of it: a field with no arguments whose value
is an attribute of its object or comes from a `@direct` resolver (schema/direct.py), and whose
type is a scalar, an enum or an object type. `Plan` says which fields of a selection are such,
once per selection and operation, and `execute_fields` runs them in one step each: a leaf's value
coerced by its type, an object's selection executed directly.

Anything unusual is handed to graphql-core for the value already read, so nothing is resolved
twice and every error is the one graphql-core gives, at the same path: a resolver's exception
(`handle_field_error`), a null for a non-null type, a value its type refuses, an object its type
does not recognise (`complete_value`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from graphql import (
    GraphQLEnumType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import Path, Undefined, gather_with_cancel

from schema.direct import attribute_of, is_direct

if TYPE_CHECKING:
    from gateway.runtime.execution import GatewayExecutor


@dataclass(frozen=True, slots=True)
class Plain:
    name: str
    field_type: GraphQLOutputType  # as declared, NonNull included: for errors and completion
    attribute: str | None  # read as an attribute, or else
    resolve: Callable[[Any, Any], Any] | None  # a @direct resolver's answer
    coerce: Callable[[Any], Any] | None  # a leaf's coercion; None for an object
    object_type: GraphQLObjectType | None
    non_null: bool


@dataclass(frozen=True, slots=True)
class Plan:
    # Per response name, in the selection's order: a plain field, the type's name (`__typename`),
    # or None (graphql-core's general path).
    fields: tuple[tuple[str, Plain | str | None], ...]

    @classmethod
    def of(
        cls, schema: GraphQLSchema, parent: GraphQLObjectType, grouped: GroupedFieldSet
    ) -> Plan | None:
        """The plan of `grouped` under `parent`; None when no field of it is plain."""
        fields: list[tuple[str, Plain | str | None]] = []
        for response_name, details in grouped.items():
            node = details[0].node
            name = node.name.value
            if name == "__typename":
                fields.append((response_name, parent.name))
                continue
            fields.append((response_name, _plain(schema, parent, name, node)))
        if not any(part is not None for _, part in fields):
            return None
        return cls(tuple(fields))


def _plain(schema: GraphQLSchema, parent: GraphQLObjectType, name: str, node: Any) -> Plain | None:
    field = schema.get_field(parent, name)
    if field is None or field.args or node.arguments:
        return None
    attribute = attribute_of(field.resolve)
    if attribute is None and not is_direct(field.resolve):
        return None
    inner, non_null = field.type, False
    if isinstance(inner, GraphQLNonNull):
        inner, non_null = inner.of_type, True
    if isinstance(inner, GraphQLScalarType | GraphQLEnumType):
        coerce, object_type = inner.coerce_output_value, None
    elif isinstance(inner, GraphQLObjectType):
        coerce, object_type = None, inner
    else:
        return None
    return Plain(
        name,
        field.type,
        attribute,
        None if attribute is not None else field.resolve,
        coerce,
        object_type,
        non_null,
    )


class ContextOnly:
    """What a `@direct` resolver is given for `info`: it reads `info.context` and nothing else
    (schema/direct.py), the same object under graphql-core's info."""

    __slots__ = ("context",)

    def __init__(self, context: Any) -> None:
        self.context = context


def execute_fields(
    executor: GatewayExecutor,
    parent_type: GraphQLObjectType,
    source: Any,
    path: Path | None,
    grouped: GroupedFieldSet,
    plan: Plan,
    info: ContextOnly,
) -> Any:
    """graphql-core's `execute_fields` for a planned selection: the same result or awaitable."""
    results: dict[str, Any] = {}
    pending: list[str] = []
    is_awaitable = executor.is_awaitable
    try:
        for response_name, part in plan.fields:
            if part is None:
                result = executor.execute_field(
                    parent_type,
                    source,
                    grouped[response_name],
                    Path(path, response_name, parent_type.name),
                    None,
                )
                if result is Undefined:
                    continue
            elif isinstance(part, str):
                results[response_name] = part
                continue
            else:
                result = _execute_plain(
                    executor, parent_type, source, path, response_name, grouped, part, info
                )
            results[response_name] = result
            if is_awaitable(result):
                pending.append(response_name)
    except Exception:
        if pending:
            executor.settle_in_background([results[name] for name in pending])
        raise
    if not pending:
        return results

    async def settled() -> dict[str, Any]:
        values = await gather_with_cancel(*(results[name] for name in pending))
        results.update(zip(pending, values, strict=True))
        return results

    return settled()


def _execute_plain(
    executor: GatewayExecutor,
    parent_type: GraphQLObjectType,
    source: Any,
    parent_path: Path | None,
    response_name: str,
    grouped: GroupedFieldSet,
    part: Plain,
    info: ContextOnly,
) -> Any:
    details = grouped[response_name]
    try:
        if part.attribute is not None:
            value = getattr(source, part.attribute)
        else:
            value = part.resolve(source, info)  # type: ignore[misc]
            if executor.is_awaitable(value):
                # A direct resolver that had to load something: graphql-core awaits it.
                path = Path(parent_path, response_name, parent_type.name)
                return executor.complete_awaitable_value(
                    part.field_type,
                    details,
                    _full_info(executor, parent_type, part, path, details),
                    path,
                    value,
                    None,
                )
        if part.coerce is not None and value is not None:
            coerced = part.coerce(value)
            if coerced is not None and coerced is not Undefined:
                return coerced
        elif value is None and not part.non_null:
            return None
        elif part.object_type is not None and value is not None:
            object_type = part.object_type
            is_type_of = object_type.is_type_of
            # Strawberry's type checks read no info; this schema declares none of its own.
            if is_type_of is None or is_type_of(value, cast(Any, info)) is True:
                collected, deferred, _ = executor.collect_subfields(object_type, details)
                if not deferred:
                    path = Path(parent_path, response_name, parent_type.name)
                    return _handled(
                        executor,
                        executor.execute_fields(object_type, value, path, collected, None),
                        part,
                        details,
                        path,
                    )
        # Unusual: graphql-core completes the value read, and raises what it always raises.
        path = Path(parent_path, response_name, parent_type.name)
        full_info = _full_info(executor, parent_type, part, path, details)
        return _handled(
            executor,
            executor.complete_value(part.field_type, details, full_info, path, value, None),
            part,
            details,
            path,
        )
    except Exception as raw:
        executor.handle_field_error(
            raw, part.field_type, details, Path(parent_path, response_name, parent_type.name)
        )
        return None


def _full_info(
    executor: GatewayExecutor,
    parent_type: GraphQLObjectType,
    part: Plain,
    path: Path,
    details: FieldDetailsList,
) -> Any:
    """The resolve info graphql-core would have made for the field."""
    field = executor.schema.get_field(parent_type, part.name)
    assert field is not None
    return executor.build_resolve_info(field, [d.node for d in details], parent_type, path)


def _handled(
    executor: GatewayExecutor, completed: Any, part: Plain, details: FieldDetailsList, path: Path
) -> Any:
    """`completed`, with an error raised while awaiting it handled as graphql-core handles it."""
    if not executor.is_awaitable(completed):
        return completed

    async def awaited() -> Any:
        try:
            return await completed
        except Exception as raw:
            executor.handle_field_error(raw, part.field_type, details, path)
            return None

    return awaited()
