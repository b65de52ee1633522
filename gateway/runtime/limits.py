"""Limits on what one document may ask: depth, aliases, tokens and an estimated cost. Each refusal
has its own code, so a client can tell which limit it hit and by how much; the HTTP endpoint
answers them like any other request error (400 with application/graphql-response+json).

The validation rules are classes made once per schema (`limit_rules`): Strawberry's validation
cache is keyed by the rule classes, and rules made afresh per request would miss it every time.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    IntValueNode,
    NullValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    get_named_type,
    is_introspection_type,
    parse,
)
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import PreExecutionError

from resolvers.pagination import MAX_PAGE_SIZE

QUERY_TOO_DEEP = "QUERY_TOO_DEEP"
TOO_MANY_ALIASES = "TOO_MANY_ALIASES"
TOO_MANY_TOKENS = "TOO_MANY_TOKENS"
QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
INTROSPECTION_DISABLED = "INTROSPECTION_DISABLED"


@dataclass(frozen=True, slots=True)
class QueryLimits:
    # Levels of fields, the operation's own fields being level 1; introspection fields don't count.
    max_depth: int = 12
    # Aliased fields in the operation, each fragment counted once per spread.
    max_aliases: int = 30
    # Lexical tokens in the document (punctuators, names, values), counted while parsing.
    max_tokens: int = 4000
    # The estimate of `estimate_cost`.
    max_cost: int = 5000


# --- walking a document -----------------------------------------------------------------------
# Every walk follows fragment spreads and memoises per fragment, so a document that spreads the
# same fragment many times at many levels costs the validator linear, not exponential, work.
# The rules run alongside graphql-core's own in one pass over documents that may be invalid:
# unknown fields, types and fragments and fragment cycles are skipped here (and reported by
# graphql-core's rules).


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _operations(document: DocumentNode) -> Iterator[OperationDefinitionNode]:
    return (d for d in document.definitions if isinstance(d, OperationDefinitionNode))


def _is_introspection(field: FieldNode) -> bool:
    return field.name.value.startswith("__")


class _FragmentWalk:
    """A measure over selections that follows fragment spreads, each fragment measured once per
    key (so repeated spreads cost linear work) and cycles counted as nothing (validation refuses
    them anyway)."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self._fragments = fragments
        self._memo: dict[Hashable, int] = {}
        self._open: set[str] = set()

    def _measure_fragment(
        self, name: str, key: Hashable, measure: Callable[[FragmentDefinitionNode], int]
    ) -> int:
        if key not in self._memo:
            fragment = self._fragments.get(name)
            if fragment is None or name in self._open:
                return 0
            self._open.add(name)
            self._memo[key] = measure(fragment)
            self._open.discard(name)
        return self._memo[key]


class _Depth(_FragmentWalk):
    def of(self, selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        deepest = 0
        for s in selection_set.selections:
            if isinstance(s, FieldNode):
                if not _is_introspection(s):
                    deepest = max(deepest, 1 + self.of(s.selection_set))
            elif isinstance(s, InlineFragmentNode):
                deepest = max(deepest, self.of(s.selection_set))
            elif isinstance(s, FragmentSpreadNode):
                deepest = max(deepest, self._fragment(s.name.value))
        return deepest

    def _fragment(self, name: str) -> int:
        return self._measure_fragment(name, name, lambda f: self.of(f.selection_set))


class _Aliases(_FragmentWalk):
    def of(self, selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        count = 0
        for s in selection_set.selections:
            if isinstance(s, FieldNode):
                count += (s.alias is not None) + self.of(s.selection_set)
            elif isinstance(s, InlineFragmentNode):
                count += self.of(s.selection_set)
            elif isinstance(s, FragmentSpreadNode):
                count += self._fragment(s.name.value)
        return count

    def _fragment(self, name: str) -> int:
        return self._measure_fragment(name, name, lambda f: self.of(f.selection_set))


class _Cost(_FragmentWalk):
    """The estimated cost of a selection: every field 1, and everything under a connection's
    `edges` multiplied by the page the connection was asked for (its `first`), nested
    multiplicatively (a page of members each with a page of something costs both pages' product).

    A connection is any field with a `first` argument whose type has `edges`, so a connection
    added to the schema is weighed without a change here. `totalCount` and `pageInfo` are counted
    once: they do not grow with the page. Plain lists without `first` (a council, a result's
    decisions) are small and bounded by the registry, and count as one.

    `first` given as a variable is estimated at the largest page a resolver serves
    (MAX_PAGE_SIZE), not from the request's variable values. Validation runs before variables are
    known, and its result is cached per document and shared by every request sending it: the
    estimate must hold for any variables, and the page cap is the one bound every value obeys.
    (A variable's default in the operation is no bound: the request may override it.) A client
    that wants a large document with small pages writes the page size as a literal.
    """

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]):
        super().__init__(fragments)
        self._schema = schema

    def of(self, selection_set: SelectionSetNode | None, parent: Any, page: int | None) -> int:
        """`page`: the `first` of the connection whose fields these are, if they are."""
        if selection_set is None:
            return 0
        total = 0
        for s in selection_set.selections:
            if isinstance(s, FieldNode):
                total += self._field(s, parent, page)
            elif isinstance(s, InlineFragmentNode):
                condition = s.type_condition
                on = self._schema.get_type(condition.name.value) if condition else parent
                total += self.of(s.selection_set, on, page)
            elif isinstance(s, FragmentSpreadNode):
                total += self._fragment(s.name.value, page)
        return total

    def _field(self, node: FieldNode, parent: Any, page: int | None) -> int:
        definition: GraphQLField | None = None
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            definition = parent.fields.get(node.name.value)
        if definition is None:
            # Introspection (bounded by the schema) or an unknown field (refused by validation).
            return 1 + self.of(node.selection_set, None, None)
        named = get_named_type(definition.type)
        inner_page = None
        if (
            "first" in definition.args
            and isinstance(named, GraphQLObjectType)
            and "edges" in named.fields
        ):
            inner_page = self._first(node, definition)
        weight = page if node.name.value == "edges" and page is not None else 1
        return weight * (1 + self.of(node.selection_set, named, inner_page))

    @staticmethod
    def _first(node: FieldNode, definition: GraphQLField) -> int:
        argument = next((a for a in node.arguments or () if a.name.value == "first"), None)
        if argument is None or isinstance(argument.value, NullValueNode):
            # Omitted or null: the resolver serves the argument's default page.
            default = definition.args["first"].default_value
            value = default if isinstance(default, int) else MAX_PAGE_SIZE
        elif isinstance(argument.value, IntValueNode):
            value = int(argument.value.value)
        else:
            # A variable (or a value validation refuses): the largest page a resolver serves.
            value = MAX_PAGE_SIZE
        return max(0, min(value, MAX_PAGE_SIZE))

    def _fragment(self, name: str, page: int | None) -> int:
        return self._measure_fragment(
            name,
            (name, page),
            lambda f: self.of(
                f.selection_set, self._schema.get_type(f.type_condition.name.value), page
            ),
        )


def estimate_cost(schema: GraphQLSchema, document: DocumentNode) -> dict[str, int]:
    """The estimated cost of each named (or the anonymous, as "") operation of `document`."""
    cost = _Cost(schema, _fragments(document))
    return {
        (op.name.value if op.name else ""): cost.of(
            op.selection_set, schema.get_root_type(op.operation), None
        )
        for op in _operations(document)
    }


def _operation_label(op: OperationDefinitionNode) -> str:
    return f"Operation `{op.name.value}`" if op.name else "The operation"


# --- the rules ----------------------------------------------------------------------------------


def limit_rules(limits: QueryLimits) -> list[type[ValidationRule]]:
    """The validation rules enforcing `limits`: call once per schema and reuse the classes."""

    class DepthLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            depth = _Depth(_fragments(context.document))
            for op in _operations(context.document):
                found = depth.of(op.selection_set)
                if found > limits.max_depth:
                    context.report_error(
                        GraphQLError(
                            f"{_operation_label(op)} nests fields {found} levels deep; at most "
                            f"{limits.max_depth} are allowed. Ask for less nested data, or split "
                            "the query and follow ids with `node(id:)`.",
                            op,
                            extensions={
                                "code": QUERY_TOO_DEEP,
                                "depth": found,
                                "maxDepth": limits.max_depth,
                            },
                        )
                    )

    class AliasLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            aliases = _Aliases(_fragments(context.document))
            for op in _operations(context.document):
                found = aliases.of(op.selection_set)
                if found > limits.max_aliases:
                    context.report_error(
                        GraphQLError(
                            f"{_operation_label(op)} uses {found} aliases; at most "
                            f"{limits.max_aliases} are allowed. Ask for a list with a filter "
                            "instead of one aliased field per item, or split the query.",
                            op,
                            extensions={
                                "code": TOO_MANY_ALIASES,
                                "aliases": found,
                                "maxAliases": limits.max_aliases,
                            },
                        )
                    )

    class CostLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            cost = _Cost(context.schema, _fragments(context.document))
            for op in _operations(context.document):
                root = context.schema.get_root_type(op.operation)
                found = cost.of(op.selection_set, root, None)
                if found > limits.max_cost:
                    context.report_error(
                        GraphQLError(
                            f"{_operation_label(op)} has an estimated cost of {found}; at most "
                            f"{limits.max_cost} is allowed. Each field costs 1 and everything "
                            "under a connection's `edges` is multiplied by its `first` (a "
                            f"variable counts as {MAX_PAGE_SIZE}): ask for smaller pages or "
                            "fewer fields, or split the query.",
                            op,
                            extensions={
                                "code": QUERY_TOO_COSTLY,
                                "cost": found,
                                "maxCost": limits.max_cost,
                            },
                        )
                    )

    return [DepthLimit, AliasLimit, CostLimit]


class IntrospectionDisabled(ValidationRule):
    """Refuses `__schema` and `__type` (not `__typename`) when introspection is off."""

    def enter_field(self, node: FieldNode, *_args: Any) -> None:
        if not node.name.value.startswith("__"):
            return
        named = get_named_type(self.context.get_type())
        if named is not None and is_introspection_type(named):
            self.report_error(
                GraphQLError(
                    f"Introspection is disabled on this gateway; `{node.name.value}` cannot be "
                    "queried. The schema is published with the gateway's documentation.",
                    node,
                    extensions={"code": INTROSPECTION_DISABLED},
                )
            )


# --- tokens, at parse time ------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _parser(maxsize: int) -> Callable[..., DocumentNode]:
    # One bounded cache per size, shared by every request (the extension is made per request).
    # Syntax errors are not cached: lru_cache does not keep exceptions.
    return lru_cache(maxsize=maxsize)(parse)


class LimitedParser(SchemaExtension):
    """Parses through a bounded cache and stops at `max_tokens` (graphql-core's lexer counts them,
    comments included, and aborts, so an oversized document costs no more than the limit to
    refuse). Replaces Strawberry's ParserCache and MaxTokensLimiter: their refusal would be a
    generic syntax error, and a parse failure raised from an extension's hook skips the normal
    error path. A document nested too deeply for the parser is refused as QUERY_TOO_DEEP."""

    def __init__(self, limits: QueryLimits, maxsize: int = 256) -> None:
        super().__init__()
        self.limits = limits
        self._parse = _parser(maxsize)
        self._refusal: GraphQLError | None = None

    def on_operation(self) -> Iterator[None]:
        # Strawberry's own parse (used when ours fails, to report the syntax error) stops there too.
        self.execution_context.parse_options["max_tokens"] = self.limits.max_tokens
        yield
        result = self.execution_context.result
        if self._refusal is not None and isinstance(result, PreExecutionError):
            result.errors = [self._refusal]

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            try:
                context.graphql_document = self._parse(
                    context.query, max_tokens=self.limits.max_tokens
                )
            except GraphQLSyntaxError as e:
                # Left unparsed: Strawberry parses again and reports the error the normal way;
                # on_operation then gives a limit its own code.
                self._refusal = self._limit_error(e.message)
        yield

    def _limit_error(self, message: str) -> GraphQLError | None:
        if "tokens. Parsing aborted" in message:
            return GraphQLError(
                f"The document has more than {self.limits.max_tokens} tokens, the most this "
                "gateway parses. Send a smaller document: fewer fields, or split it.",
                extensions={"code": TOO_MANY_TOKENS, "maxTokens": self.limits.max_tokens},
            )
        if "nested too deeply" in message:
            return GraphQLError(
                "The document nests selections too deeply to parse; at most "
                f"{self.limits.max_depth} levels of fields are allowed.",
                extensions={"code": QUERY_TOO_DEEP, "maxDepth": self.limits.max_depth},
            )
        return None
