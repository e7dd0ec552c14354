"""GraphQL enums: the product's own enums, exposed under their GraphQL names."""

from __future__ import annotations

import strawberry

from services.ltm_model import Category as _Category
from services.ltm_model import ChangeKind as _ChangeKind
from services.ltm_model import MemoryEventType as _MemoryEventType
from services.ltm_model import SearchMode as _SearchMode
from services.session_events import SessionEventType as _SessionEventType
from services.stm_model import ConfigField, Strategy
from services.stm_model import Role as _Role

MessageRole = strawberry.enum(_Role, name="MessageRole", description="Who wrote a message.")
ContextStrategy = strawberry.enum(
    Strategy, name="ContextStrategy", description="How a session's context window is built."
)
SessionConfigField = strawberry.enum(
    ConfigField, name="SessionConfigField", description="A setting that can return to its default."
)
SessionEventType = strawberry.enum(
    _SessionEventType, name="SessionEventType", description="What happened to a session."
)

MemoryCategory = strawberry.enum(
    _Category, name="MemoryCategory", description="Kind of memory (metadata on one store)."
)
MemoryChangeKind = strawberry.enum(
    _ChangeKind, name="MemoryChangeKind", description="A change in a memory's history."
)
MemoryEventType = strawberry.enum(
    _MemoryEventType, name="MemoryEventType", description="What happened to a memory."
)
SearchMode = strawberry.enum(
    _SearchMode,
    name="SearchMode",
    description="How a search matches: by meaning (SEMANTIC), by words (KEYWORD, BM25), "
    "or both (HYBRID).",
)
