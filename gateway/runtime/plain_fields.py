"""Plain fields executed without graphql-core's general path.

A page of 50 referrals executes about 600 fields. graphql-core runs each through the same steps:
a response path, a resolve info, the resolver, then `complete_value`'s checks for non-null, list,
leaf, abstract and object. Most of them need none of it: a field with no arguments whose value
is an attribute of its object or comes from a `@direct` resolver (schema/direct.py), and whose
type is a scalar, an enum, an object type or a list of one of those. `Plan` says which fields of
a selection are such, once per selection and operation, and `execute_fields` runs them in one
step each: a leaf's value coerced by its type, an object's selection (planned once, with the
plan that names it) executed directly, a list's items so, one after the other.

Anything unusual is handed to graphql-core for the value already read, so nothing is resolved
twice and every error is the one graphql-core gives, at the same path: a resolver's exception
(`handle_field_error`), a null for a non-null type, a value its type refuses, an object its type
does not recognise (`complete_value`). A list is looked over before any item is executed, and
handed to graphql-core whole if any item is unusual."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from graphql import (
    GraphQLEnumType,
    GraphQLList,
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
    # What the value is, or for a list what each item is: a leaf (its coercion) or an object.
    coerce: Callable[[Any], Any] | None
    object_type: GraphQLObjectType | None
    non_null: bool
    item_type: GraphQLOutputType | None  # a list's, as declared; None for a single value
    item_non_null: bool
    # The attribute of a single scalar or enum value: the commonest field, executed inline.
    leaf_attribute: str | None


# A selection collected once per object field of a plan, and that selection's own plan; None
# for a deferred one (graphql-core's general path).
Selection = tuple[GroupedFieldSet, "Plan | None"] | None


@dataclass(frozen=True, slots=True)
class Plan:
    # Per response name, in the selection's order: a plain field, the type's name (`__typename`),
    # or None (graphql-core's general path).
    fields: tuple[tuple[str, Plain | str | None], ...]
    selections: dict[str, Selection] = dataclasses.field(default_factory=dict, compare=False)

    @classmethod
    def of(
        cls, schema: GraphQLSchema, parent: GraphQLObjectType, grouped: GroupedFieldSet
    ) -> Plan | None:
        """The plan of `grouped` under `parent`; None when no field of it is plain."""
        fields: list[tuple[str, Plain | str | None]] = []
        for response_name, details in grouped.items():
            name = details[0].node.name.value
            if name == "__typename":
                fields.append((response_name, parent.name))
                continue
            fields.append((response_name, _plain(schema, parent, name, details)))
        if not any(part is not None for _, part in fields):
            return None
        return cls(tuple(fields))

    def selection(
        self, executor: GatewayExecutor, response_name: str, part: Plain, details: FieldDetailsList
    ) -> Selection:
        try:
            return self.selections[response_name]
        except KeyError:
            assert part.object_type is not None
            grouped, deferred, _ = executor.collect_subfields(part.object_type, details)
            known = self.selections[response_name] = (
                None if deferred else (grouped, Plan.of(executor.schema, part.object_type, grouped))
            )
            return known


def _plain(
    schema: GraphQLSchema, parent: GraphQLObjectType, name: str, details: FieldDetailsList
) -> Plain | None:
    field = schema.get_field(parent, name)
    node = details[0].node
    if field is None or field.args or node.arguments:
        return None
    attribute = attribute_of(field.resolve)
    if attribute is None and not is_direct(field.resolve):
        return None
    inner, non_null = field.type, False
    if isinstance(inner, GraphQLNonNull):
        inner, non_null = inner.of_type, True
    item_type, item_non_null = None, False
    if isinstance(inner, GraphQLList):
        # A directive on a list (@stream) asks graphql-core for more than its items.
        if any(d.node.directives for d in details):
            return None
        item_type = inner = inner.of_type
        if isinstance(inner, GraphQLNonNull):
            inner, item_non_null = inner.of_type, True
    if isinstance(inner, GraphQLScalarType):
        coerce, object_type = inner.coerce_output_value, None
    elif isinstance(inner, GraphQLEnumType):
        coerce, object_type = _remembered(inner.coerce_output_value), None
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
        item_type,
        item_non_null,
        attribute if coerce is not None and item_type is None else None,
    )


def _remembered(coerce: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """An enum's coercion, remembered per value (and its class: a StrEnum member equals its
    text). An enum has few names, and each costs Strawberry a type check and graphql-core a
    lookup, on every node of a page. Only names are remembered: a refused value raises again."""
    known: dict[tuple[type, Any], Any] = {}

    def coerced(value: Any) -> Any:
        key = (value.__class__, value)
        try:
            return known[key]
        except KeyError:
            name = known[key] = coerce(value)
            return name
        except TypeError:  # unhashable: never a name
            return coerce(value)

    return coerced


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
            elif (attribute := part.leaf_attribute) is not None:
                try:
                    value = getattr(source, attribute)
                    if value is None:
                        if not part.non_null:
                            results[response_name] = None
                            continue
                    else:
                        coerced = part.coerce(value)  # type: ignore[misc]
                        if coerced is not None and coerced is not Undefined:
                            results[response_name] = coerced
                            continue
                    results[response_name] = _general(
                        executor, parent_type, path, response_name, grouped, part, value
                    )
                except Exception as raw:
                    _handle(executor, raw, parent_type, path, response_name, grouped, part)
                    results[response_name] = None
                continue
            else:
                result = _execute_plain(
                    executor,
                    parent_type,
                    source,
                    path,
                    response_name,
                    grouped,
                    part,
                    info,
                    plan,
                )
            results[response_name] = result
            if result.__class__ is not dict and is_awaitable(result):
                pending.append(response_name)
    except Exception:
        _abandoned(executor, results, pending)
        raise
    return _settled(results, pending)


def _execute_plain(
    executor: GatewayExecutor,
    parent_type: GraphQLObjectType,
    source: Any,
    parent_path: Path | None,
    response_name: str,
    grouped: GroupedFieldSet,
    part: Plain,
    info: ContextOnly,
    plan: Plan,
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
        if value is None:
            if not part.non_null:
                return None
        elif part.item_type is not None:
            if isinstance(value, list | tuple):
                path = Path(parent_path, response_name, parent_type.name)
                completed = _list(executor, value, path, details, part, info, plan, response_name)
                if completed is not _UNUSUAL:
                    return completed
        elif part.coerce is not None:
            coerced = part.coerce(value)
            if coerced is not None and coerced is not Undefined:
                return coerced
        elif _is_type_of(part.object_type, value, info):
            selection = plan.selection(executor, response_name, part, details)
            if selection is not None:
                path = Path(parent_path, response_name, parent_type.name)
                return _handled(
                    executor,
                    _object(executor, part.object_type, value, path, selection, info),  # type: ignore[arg-type]
                    part.field_type,
                    details,
                    path,
                )
        return _general(executor, parent_type, parent_path, response_name, grouped, part, value)
    except Exception as raw:
        _handle(executor, raw, parent_type, parent_path, response_name, grouped, part)
        return None


_UNUSUAL = object()


def _list(
    executor: GatewayExecutor,
    values: Sequence[Any],
    path: Path,
    details: FieldDetailsList,
    part: Plain,
    info: ContextOnly,
    plan: Plan,
    response_name: str,
) -> Any:
    """A list's items, each as graphql-core completes it; `_UNUSUAL` when any item is unusual,
    before any item is executed."""
    object_type, item_non_null = part.object_type, part.item_non_null
    if object_type is None:
        coerce = cast(Callable[[Any], Any], part.coerce)
        leaves: list[Any] = []
        for value in values:
            if value is None:
                if item_non_null:
                    return _UNUSUAL
                leaves.append(None)
                continue
            try:
                coerced = coerce(value)
            except Exception:
                return _UNUSUAL
            if coerced is None or coerced is Undefined:
                return _UNUSUAL
            leaves.append(coerced)
        return leaves
    for value in values:
        if value is None:
            if item_non_null:
                return _UNUSUAL
        elif not _is_type_of(object_type, value, info):
            return _UNUSUAL
    selection = plan.selection(executor, response_name, part, details)
    if selection is None:
        return _UNUSUAL
    item_type = cast(GraphQLOutputType, part.item_type)
    completed: list[Any] = []
    awaited: list[int] = []
    try:
        for index, value in enumerate(values):
            if value is None:
                completed.append(None)
                continue
            item_path = Path(path, index, None)
            try:
                item = _object(executor, object_type, value, item_path, selection, info)
            except Exception as raw:
                executor.handle_field_error(raw, item_type, details, item_path)
                item = None
            else:
                if item.__class__ is not dict and executor.is_awaitable(item):
                    item = _handled(executor, item, item_type, details, item_path)
                    awaited.append(index)
            completed.append(item)
    except Exception:
        _abandoned(executor, completed, awaited)
        raise
    return _settled(completed, awaited)


def _settled(values: Any, awaiting: list[Any]) -> Any:
    """`values` (an object's results by name, or a list's items) once each of those at
    `awaiting` is awaited in its place: `values` itself when none is."""
    if not awaiting:
        return values

    async def settled() -> Any:
        results = await gather_with_cancel(*(values[key] for key in awaiting))
        for key, result in zip(awaiting, results, strict=True):
            values[key] = result
        return values

    return settled()


def _abandoned(executor: GatewayExecutor, values: Any, awaiting: list[Any]) -> None:
    """The values at `awaiting` of a selection or list that failed part-way, each still awaited
    (its errors handled) rather than left unawaited."""
    if awaiting:
        executor.settle_in_background([values[key] for key in awaiting])


def _is_type_of(object_type: GraphQLObjectType | None, value: Any, info: ContextOnly) -> bool:
    if object_type is None:
        return False
    is_type_of = object_type.is_type_of
    # Strawberry's type checks read no info; this schema declares none of its own.
    return is_type_of is None or is_type_of(value, info) is True  # type: ignore[arg-type]


def _object(
    executor: GatewayExecutor,
    object_type: GraphQLObjectType,
    value: Any,
    path: Path,
    selection: tuple[GroupedFieldSet, Plan | None],
    info: ContextOnly,
) -> Any:
    grouped, plan = selection
    if plan is None:
        return executor.execute_fields(object_type, value, path, grouped, None)
    return execute_fields(executor, object_type, value, path, grouped, plan, info)


def _general(
    executor: GatewayExecutor,
    parent_type: GraphQLObjectType,
    parent_path: Path | None,
    response_name: str,
    grouped: GroupedFieldSet,
    part: Plain,
    value: Any,
) -> Any:
    """graphql-core completes the value read, and raises what it always raises."""
    details = grouped[response_name]
    path = Path(parent_path, response_name, parent_type.name)
    full_info = _full_info(executor, parent_type, part, path, details)
    return _handled(
        executor,
        executor.complete_value(part.field_type, details, full_info, path, value, None),
        part.field_type,
        details,
        path,
    )


def _handle(
    executor: GatewayExecutor,
    raw: Exception,
    parent_type: GraphQLObjectType,
    parent_path: Path | None,
    response_name: str,
    grouped: GroupedFieldSet,
    part: Plain,
) -> None:
    executor.handle_field_error(
        raw,
        part.field_type,
        grouped[response_name],
        Path(parent_path, response_name, parent_type.name),
    )


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
    executor: GatewayExecutor,
    completed: Any,
    field_type: GraphQLOutputType,
    details: FieldDetailsList,
    path: Path,
) -> Any:
    """`completed`, with an error raised while awaiting it handled as graphql-core handles it."""
    if completed.__class__ is dict or not executor.is_awaitable(completed):
        return completed

    async def awaited() -> Any:
        try:
            return await completed
        except Exception as raw:
            executor.handle_field_error(raw, field_type, details, path)
            return None

    return awaited()
