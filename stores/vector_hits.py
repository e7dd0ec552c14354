"""What a vector store hands back to mem0: an id, a score (search only) and the payload."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class VectorHit:
    """mem0 reads `.id`, `.score` and `.payload` from every row a store returns."""

    id: str
    payload: dict[str, Any] = field(default_factory=dict)
    score: float | None = None


class StoreUnavailable(Exception):
    """The store's backend cannot be reached or refused to work; the caller may retry later."""
