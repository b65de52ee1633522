"""Execute once, deliver many: an event of a subscription is executed once per group of
subscribers that share what its result depends on (the selection under the subscription field,
the variables it reads, and the subscribers' visibility class), and each subscriber of the group
gets that one result, serialized once.

Each subscriber still runs its own stream (its queue, its order, its resume position, its
cut-off when too slow): only the execution is shared. A subscriber served a shared result is
audited as if it had executed it: what the execution recorded (patients read, members asked and
failed) is replayed into its own operation state, which its own audit flush then writes."""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any
from weakref import WeakKeyDictionary

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    print_ast,
)
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from gateway.request_checks import dumps_json
from gateway.runtime.outcome import Outcome, SharedData, once
from resolvers.context import RequestContext
from resolvers.loaders import RegistryLoaders

meter = metrics.get_meter("alliance_gateway.events")
# Counted here and observed when read rather than added to per execution and delivery: a
# counter's add costs about as much as a delivery.
_counted = {"executions": 0, "shared": 0, "direct": 0}


def _observer(name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
    return lambda options: [Observation(_counted[name])]


meter.create_observable_counter(
    "alliance.subscriptions.executions",
    [_observer("executions")],
    description="Executions of a subscription's selection for an event: one per group of "
    "subscribers sharing document, variables and visibility, not one per subscriber.",
)
meter.create_observable_counter(
    "alliance.subscriptions.shared",
    [_observer("shared")],
    description="Event results a subscriber was sent from its group's execution.",
)
meter.create_observable_counter(
    "alliance.subscriptions.direct",
    [_observer("direct")],
    description="Event results the hub wrote to a caught-up subscriber's socket itself, "
    "without running the subscriber's stream (counted in shared too).",
)

# Results of recent events per group. A subscriber arriving at an event after its entry has
# been dropped (far behind, or more groups than this) executes it again: nothing is lost.
MAX_ENTRIES = 4096
# Events whose registry lookups are kept for the groups still executing them.
REGISTRY_EVENTS = 64


def next_message_prefix(ident: str) -> str:
    """A graphql-transport-ws `next` message of operation `ident`, up to its data: the shared
    text and two closing braces complete it."""
    return f'{{"id":{dumps_json(ident)},"type":"next","payload":{{"data":'


def next_message_text(message: object) -> str | None:
    """The JSON text of a graphql-transport-ws `next` message carrying shared data and nothing
    else: the shared serialization with the subscriber's id spliced in. None for any other."""
    if not isinstance(message, dict) or message.get("type") != "next" or len(message) != 3:
        return None
    payload, ident = message.get("payload"), message.get("id")
    if not isinstance(payload, dict) or len(payload) != 1 or not isinstance(ident, str):
        return None
    data = payload.get("data")
    if not isinstance(data, SharedData):
        return None
    return f"{next_message_prefix(ident)}{data.text()}}}}}"


class SharedResults:
    """The executions of recent events, by (group, event cursor). A subscriber that finds one
    under way waits for it rather than executing the event again."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._max = max_entries
        self._entries: OrderedDict[tuple[Hashable, int], asyncio.Future[Outcome | None]] = (
            OrderedDict()
        )
        # Per recent event: the registry lookups its executions share. A registry row reads the
        # same for every reader (what each may see is decided by the resolvers), so a thousand
        # visibility classes naming the same hospitals cost one registry query, not a thousand.
        self._registry: OrderedDict[int, RegistryLoaders] = OrderedDict()

    def _registry_of(self, cursor: int, context: RequestContext) -> RegistryLoaders:
        loaders = self._registry.get(cursor)
        if loaders is None:
            loaders = self._registry[cursor] = RegistryLoaders(
                context.registry, context.alliance_id
            )
            while len(self._registry) > REGISTRY_EVENTS:
                self._registry.popitem(last=False)
        return loaders

    def __len__(self) -> int:
        return len(self._entries)

    async def outcome(
        self,
        group: Hashable,
        cursor: int,
        context: RequestContext,
        run: Callable[[], ExecutionResult | Awaitable[ExecutionResult]],
    ) -> tuple[Outcome, bool]:
        """The group's execution of the event at `cursor`, and whether another made it: the one
        under way or done, or else `run` now under `context` (and shared with the group)."""
        key = (group, cursor)
        if key not in self._entries:
            while len(self._entries) >= self._max:
                self._entries.popitem(last=False)
            context.share_registry_loaders(self._registry_of(cursor, context))
        outcome, shared = await once(self._entries, key, context, run, keep=True)
        if not shared:
            _counted["executions"] += 1
        return outcome, shared


def count_shared() -> None:
    """An event result a subscriber's stream was sent from its group's execution."""
    _counted["shared"] += 1


def count_direct(deliveries: int) -> None:
    """Event results the hub wrote to subscribers directly, from their group's execution."""
    _counted["shared"] += deliveries
    _counted["direct"] += deliveries


# One cache per replica's hub: a cursor names an event only within its own log (several apps,
# each with its own, may share a process, as in the tests).
_by_hub: WeakKeyDictionary[object, SharedResults] = WeakKeyDictionary()


def results_for(hub: object) -> SharedResults:
    found = _by_hub.get(hub)
    if found is None:
        found = _by_hub[hub] = SharedResults()
    return found


def group_key(
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
    context: RequestContext,
    envelopes: dict[str, frozenset[str]],
) -> Hashable:
    """What a subscription event's result depends on. Not the subscription field's arguments
    (which events reach the subscriber is decided before execution), so that subscribers
    resuming from different cursors still share; the variables only when the selection reads
    any; the visibility class only when the selection reaches past the envelope (`envelopes`:
    per subscription field, the fields of its events that are the same whoever reads them)."""
    selections = operation.selection_set.selections
    used = tuple(sorted(print_ast(f) for f in fragments.values()))
    if all(isinstance(node, FieldNode) for node in selections):
        roots = tuple(
            (
                node.alias.value if node.alias else None,
                node.name.value,
                tuple(print_ast(d) for d in node.directives or ()),
                print_ast(node.selection_set) if node.selection_set else None,
            )
            for node in selections
            if isinstance(node, FieldNode)
        )
        text = repr((roots, used))
        envelope_only = all(
            isinstance(node, FieldNode)
            and node.name.value in envelopes
            and (
                node.selection_set is None
                or _within(node.selection_set, fragments, envelopes[node.name.value], set())
            )
            for node in selections
        )
    else:
        # Fields spread at the root: the whole operation, arguments included.
        text = repr((print_ast(operation), used))
        envelope_only = False
    reads_variables = "$" in text
    principal = context.principal
    return (
        text,
        json.dumps(variables, sort_keys=True, default=repr) if reads_variables else None,
        None
        if envelope_only or principal is None
        else (principal.hospital_code, principal.roles, principal.purpose, context.explain),
    )


def _within(
    selections: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    allowed: frozenset[str],
    seen: set[str],
) -> bool:
    for node in selections.selections:
        if isinstance(node, FieldNode):
            if node.name.value not in allowed or node.selection_set is not None:
                return False
        elif isinstance(node, InlineFragmentNode):
            if not _within(node.selection_set, fragments, allowed, seen):
                return False
        elif isinstance(node, FragmentSpreadNode):
            name = node.name.value
            fragment = fragments.get(name)
            if fragment is None:
                return False
            if name not in seen:
                seen.add(name)
                if not _within(fragment.selection_set, fragments, allowed, seen):
                    return False
    return True
