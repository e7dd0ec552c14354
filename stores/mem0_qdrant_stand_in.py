"""A stand-in for mem0's Qdrant config module, so importing mem0 does not import qdrant_client.

mem0 2.2 builds a default `MemoryConfig()` when `mem0.memory.main` is imported (it is the
default argument of `Memory.__init__` and `AsyncMemory.__init__`). That config's vector store
defaults to Qdrant, whose config module (`mem0.configs.vector_stores.qdrant`) imports
`qdrant_client` at class definition: gRPC, protobuf and numpy-backed models, about 1.6 s of CPU
and tens of MB at every start — for a store MaaS never runs (its providers are the embedded
store, Azure DocumentDB and MongoDB Atlas). mem0 resolves that module by name through
`sys.modules` (`VectorStoreConfig.validate_and_create_config`), so a module registered under the
name first is what it gets; nothing inside mem0 is patched. The default config built with it
is never used: the engine is built from our own config (services/mem0_engine.py).

tests/unit/test_lean_imports.py fails when mem0 reaches qdrant_client another way, and tells
when a mem0 release no longer needs this.
"""

from __future__ import annotations

import sys
import types

from pydantic import BaseModel, ConfigDict

MODULE = "mem0.configs.vector_stores.qdrant"


class QdrantConfig(BaseModel):
    """Accepts only the empty config of mem0's import-time default; Qdrant is never built."""

    model_config = ConfigDict(extra="forbid")


def install() -> None:
    """Register the stand-in unless the real module is already loaded (idempotent)."""
    if MODULE in sys.modules:
        return
    module = types.ModuleType(MODULE, __doc__)
    module.QdrantConfig = QdrantConfig  # type: ignore[attr-defined]
    sys.modules[MODULE] = module
