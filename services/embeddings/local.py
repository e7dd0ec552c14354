"""mem0 embedder for EMBEDDING_PROVIDER=local: all-MiniLM-L6-v2 on the CPU, offline, no torch."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from mem0.configs.embeddings.base import BaseEmbedderConfig
from mem0.embeddings.base import EmbeddingBase

from services.embeddings.minilm import MiniLMEncoder, default_model_dir

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"

# mem0 builds embedders itself, from a class path and a config, so an encoder cannot be handed
# in; this cache is what keeps the weights (90 MB, mapped) loaded once per process. Sharing is
# safe: an encoder's weights are read-only and encode() keeps its state in locals.
_encoders: dict[Path, MiniLMEncoder] = {}
_encoders_lock = threading.Lock()


def shared_encoder(model_dir: Path | None = None) -> MiniLMEncoder:
    """The process's encoder for a model folder (default: the bundled one), loaded on first use."""
    key = Path(model_dir or default_model_dir()).resolve()
    with _encoders_lock:
        encoder = _encoders.get(key)
        if encoder is None:
            encoder = _encoders[key] = MiniLMEncoder.load(key)
    return encoder


class LocalEmbedding(EmbeddingBase):
    """Embeds with the numpy MiniLM encoder; `config.model` may name a model folder."""

    # A text's vector is the same for every memory action (no query/document distinction).
    same_for_every_action = True

    def __init__(self, config: BaseEmbedderConfig | None = None) -> None:
        super().__init__(config)
        model = self.config.model
        model_dir = Path(model) if model and Path(model).is_dir() else None
        self.encoder = shared_encoder(model_dir)
        self.config.model = model or DEFAULT_MODEL_NAME
        self.config.embedding_dims = self.encoder.dimensions

    def embed(
        self, text: str, memory_action: Literal["add", "search", "update"] | None = None
    ) -> list[float]:
        """The embedding of one text (the same for every memory_action)."""
        return self.encoder.encode([text])[0].tolist()

    def embed_batch(
        self, texts: Sequence[str], memory_action: Literal["add", "search", "update"] = "add"
    ) -> list[list[float]]:
        """Embeddings of many texts in one pass, in input order."""
        if not texts:
            return []
        return self.encoder.encode(list(texts)).tolist()
