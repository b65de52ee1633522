"""What a field's selection asks for, so a resolver can fetch it in the same call, and no more."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from strawberry.types import Info
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection


def selects(info: Info, name: str) -> bool:
    """Whether the field being resolved selects `name` directly (through fragments too)."""
    return any(_selects(field.selections, name) for field in info.selected_fields)


def _selects(selections: list[Selection], name: str) -> bool:
    for selection in selections:
        if isinstance(selection, SelectedField) and selection.name == name:
            return True
        if isinstance(selection, FragmentSpread | InlineFragment) and _selects(
            selection.selections, name
        ):
            return True
    return False


def _fields(selections: Iterable[Selection]) -> Iterable[SelectedField]:
    """The fields of a selection set, those of its fragments included."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        else:
            yield from _fields(selection.selections)


def node_reads(info: Info, reads: Mapping[str, tuple[str, ...]]) -> frozenset[str] | None:
    """The record fields the nodes of the connection being resolved read (`edges { node { … } }`),
    by `reads`: each field of the node type, the record fields it reads. None (the whole record)
    when a node field is not in `reads`. Fields under @skip or @include count as selected."""
    wanted: set[str] = set()
    for connection in info.selected_fields:
        for edges in _fields(connection.selections):
            if edges.name != "edges":
                continue
            for node in _fields(edges.selections):
                if node.name != "node":
                    continue
                for field in _fields(node.selections):
                    if field.name == "__typename":
                        continue
                    read = reads.get(field.name)
                    if read is None:
                        return None
                    wanted.update(read)
    return frozenset(wanted)
