"""mem0 embedder for EMBEDDING_PROVIDER=cohere (mem0 has none), on the official SDK's v2 API.

Queries and documents are embedded differently (Cohere's input_type): memory searches send
"search_query", everything stored sends "search_document". Errors from the API propagate as the
SDK's exceptions (`cohere.core.api_error.ApiError` and subclasses).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

import cohere
import httpx
from mem0.configs.embeddings.base import BaseEmbedderConfig
from mem0.embeddings.base import EmbeddingBase

from services.embeddings.providers import COHERE_DEFAULT_MODEL, EmbeddingConfigError

MAX_TEXTS_PER_CALL = 96  # the API's limit per request
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_RETRIES = 2
# output_dimension exists from Embed v4 on ("embed-v4.0", "embed-v5.0-fast", ...); earlier
# models ("embed-english-v3.0") have one fixed size.
_VERSIONED_MODEL = re.compile(r"^embed-v(\d+)")


def supports_output_dimension(model: str) -> bool:
    """Whether the model accepts `output_dimension` (Embed v4 and newer)."""
    match = _VERSIONED_MODEL.match(model)
    return match is not None and int(match.group(1)) >= 4


class CohereEmbedding(EmbeddingBase):
    """Cohere embeddings; `config.model_kwargs` may hold base_url, timeout and max_retries."""

    def __init__(
        self, config: BaseEmbedderConfig | None = None, client: cohere.ClientV2 | None = None
    ) -> None:
        super().__init__(config)
        self.config.model = self.config.model or COHERE_DEFAULT_MODEL
        extras: dict[str, Any] = self.config.model_kwargs or {}
        self._http: httpx.Client | None = None
        if client is None:
            if not self.config.api_key:
                raise EmbeddingConfigError("EMBEDDING_PROVIDER=cohere needs EMBEDDING_API_KEY")
            # Our own HTTP client, so close() can release its connections.
            self._http = httpx.Client()
            client = cohere.ClientV2(
                api_key=self.config.api_key,
                # Passed even when None: the SDK's own default reads CO_API_URL at import.
                base_url=extras.get("base_url"),
                timeout=float(extras.get("timeout", DEFAULT_TIMEOUT_SECONDS)),
                max_retries=int(extras.get("max_retries", DEFAULT_MAX_RETRIES)),
                httpx_client=self._http,
            )
        self.client = client

    def close(self) -> None:
        """Release the HTTP connections (of a client this embedder created)."""
        if self._http is not None:
            self._http.close()

    def embed(
        self, text: str, memory_action: Literal["add", "search", "update"] | None = None
    ) -> list[float]:
        """The embedding of one text: a query when memory_action is "search"."""
        return self._embed_chunk([text], memory_action)[0]

    def embed_batch(
        self, texts: Sequence[str], memory_action: Literal["add", "search", "update"] = "add"
    ) -> list[list[float]]:
        """Embeddings of many texts, in calls of at most 96 texts, in input order."""
        texts = list(texts)
        vectors: list[list[float]] = []
        for start in range(0, len(texts), MAX_TEXTS_PER_CALL):
            vectors.extend(
                self._embed_chunk(texts[start : start + MAX_TEXTS_PER_CALL], memory_action)
            )
        return vectors

    def _embed_chunk(self, texts: list[str], memory_action: str | None) -> list[list[float]]:
        extra: dict[str, Any] = {}
        if self.config.embedding_dims and supports_output_dimension(self.config.model):
            extra["output_dimension"] = self.config.embedding_dims
        response = self.client.embed(
            texts=texts,
            model=self.config.model,
            input_type="search_query" if memory_action == "search" else "search_document",
            embedding_types=["float"],
            **extra,
        )
        vectors = response.embeddings.float_
        if vectors is None or len(vectors) != len(texts):
            got = "no float embeddings" if vectors is None else f"{len(vectors)} embeddings"
            raise ValueError(
                f"Cohere returned {got} for {len(texts)} texts (model {self.config.model!r})"
            )
        return [list(vector) for vector in vectors]
