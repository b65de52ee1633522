"""Plain leaf fields completed in one step.

A page of 50 referrals completes about 400 scalar and enum fields that are plain attributes of
their object. graphql-core runs each through the general path: a response path, a resolve info,
the resolver, then `complete_value`'s checks for non-null, list, leaf, abstract and object. For
a field whose resolver reads an attribute (schema/direct.py), has no arguments and whose type is
a scalar or an enum, the answer is the attribute coerced by its type: `LeafPlan` says which
fields of a selection are such, once per selection and operation, and `complete` gives their
values. Anything else (a null for a non-null type, a value the type refuses, a missing
attribute) is left to the general path, which then raises or collects the very error it always
did: reading an attribute has no effects, so reading it twice changes nothing."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
)
from graphql.pyutils import Undefined

from schema.direct import attribute_of

# What collect_subfields gives per response name: the field's nodes and their fragment variables.
GroupedFields = Mapping[str, Sequence[Any]]


@dataclass(frozen=True, slots=True)
class Leaf:
    attribute: str
    coerce: Callable[[Any], Any]
    non_null: bool


@dataclass(frozen=True, slots=True)
class LeafPlan:
    # Per response name, in the selection's order: a plain leaf, the type's name (`__typename`),
    # or None (the general path).
    fields: tuple[tuple[str, Leaf | str | None], ...]

    @classmethod
    def of(
        cls, schema: GraphQLSchema, parent: GraphQLObjectType, grouped: GroupedFields
    ) -> LeafPlan | None:
        """The plan of `grouped` under `parent`; None when no field of it is a plain leaf."""
        fields: list[tuple[str, Leaf | str | None]] = []
        for response_name, details in grouped.items():
            node = details[0].node
            name = node.name.value
            if name == "__typename":
                fields.append((response_name, parent.name))
                continue
            fields.append((response_name, _leaf(schema, parent, name, node)))
        if not any(part is not None for _, part in fields):
            return None
        return cls(tuple(fields))


def _leaf(schema: GraphQLSchema, parent: GraphQLObjectType, name: str, node: Any) -> Leaf | None:
    field = schema.get_field(parent, name)
    if field is None or field.args or node.arguments:
        return None
    attribute = attribute_of(field.resolve)
    if attribute is None:
        return None
    field_type, non_null = field.type, False
    if isinstance(field_type, GraphQLNonNull):
        field_type, non_null = field_type.of_type, True
    if not isinstance(field_type, GraphQLScalarType | GraphQLEnumType):
        return None
    return Leaf(attribute, field_type.coerce_output_value, non_null)


def complete(leaf: Leaf, source: Any) -> Any:
    """The field's completed value, or `Undefined` when the general path must decide."""
    try:
        value = getattr(source, leaf.attribute)
        if value is None:
            return Undefined if leaf.non_null else None
        coerced = leaf.coerce(value)
    except Exception:  # the general path raises it again, located and handled
        return Undefined
    return Undefined if coerced is None else coerced
