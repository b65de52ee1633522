"""What a field's selection asks for, so a resolver can fetch it in the same call."""

from __future__ import annotations

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
