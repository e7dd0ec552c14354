"""What the executor works out once per part of a cached document (a selection, an operation),
kept by the identity of that part's syntax nodes: bounded, and holding no document alive."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode

if TYPE_CHECKING:
    from graphql import SelectionSetNode
    from graphql.execution.collect_fields import FragmentDetails

T = TypeVar("T")


class NodeCache(Generic[T]):
    """Values by a key made of node ids; an entry counts only while its nodes live."""

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        # key -> (weak references to the nodes, value)
        self._entries: dict[Any, tuple[tuple[weakref.ref[Any], ...], T]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Any, nodes: Sequence[Any], compute: Callable[[], T]) -> T:
        entry = self._entries.get(key)
        if entry is not None:
            # Identity, not id: a node that died may have left its id to another.
            for ref, node in zip(entry[0], nodes, strict=True):
                if ref() is not node:
                    break
            else:
                return entry[1]
        value = compute()
        if len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (tuple(weakref.ref(node) for node in nodes), value)
        return value


def selection_has_directives(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDetails],
    seen: set[str] | None = None,
) -> bool:
    """Whether any selection below holds a directive (@skip, @include, @defer...) or reaches a
    fragment that is unknown or has variables: then what is collected depends on the
    variables, and graphql-core collects it each time."""
    if selection_set is None:
        return False
    seen = set() if seen is None else seen
    for selection in selection_set.selections:
        if selection.directives:
            return True
        if isinstance(selection, FieldNode | InlineFragmentNode):
            if selection_has_directives(selection.selection_set, fragments, seen):
                return True
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in seen:
                continue
            seen.add(name)
            fragment = fragments.get(name)
            if fragment is None:
                return True
            definition = fragment.definition
            if definition.directives or definition.variable_definitions:
                return True
            if selection_has_directives(definition.selection_set, fragments, seen):
                return True
        else:
            return True
    return False
