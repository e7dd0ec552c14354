"""A local fake of Cohere's v2 embed API, so tests never call the paid service.

Serves `POST /v2/embed` with the response shape the cohere SDK parses (`EmbedByTypeResponse`),
deterministic vectors from `fake_embedding`, the API's limits (96 texts, a valid input_type,
a bearer token), recorded requests, and injectable failures.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.fake_llm import fake_embedding
from tests.support.threaded_server import FakeService

DEFAULT_DIMENSIONS = 1536  # embed-v4.0's default size
FIXED_DIMENSIONS = 1024  # the v3 models' only size
MAX_TEXTS = 96
INPUT_TYPES = frozenset({"search_document", "search_query", "classification", "clustering"})


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Cohere's error body: an id and a message."""
    body = {"id": str(uuid.uuid4()), "message": message}
    return JSONResponse(body, status_code=status, headers=headers)


class FakeCohere(FakeService):
    """Cohere-compatible embed server on 127.0.0.1; `requests` holds each request's JSON body."""

    url_path = ""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []
        # The test thread scripts while the server thread serves: all state shares one lock.
        self._lock = threading.Lock()
        self._failures: deque[int] = deque()
        self.app = Starlette(routes=[Route("/v2/embed", self._embed, methods=["POST"])])

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """Answer the next `count` calls with a Cohere-style error of `status`."""
        with self._lock:
            self._failures.extend([status] * count)

    def reset(self) -> None:
        """Forget recorded requests and pending failures."""
        with self._lock:
            self.requests.clear()
            self.authorizations.clear()
            self._failures.clear()

    async def _embed(self, request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "invalid request: body must be JSON")
        if not isinstance(body, dict):
            return _error(400, "invalid request: body must be a JSON object")
        with self._lock:
            self.requests.append(body)
            self.authorizations.append(request.headers.get("authorization"))
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            # A short retry-after-ms keeps the SDK's retries (1 s backoff by default) quick.
            headers = {"retry-after-ms": "10"}
            return _error(failure, f"injected failure ({failure})", headers)
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return _error(401, "no api key supplied")
        problem = _validate(body)
        if problem:
            return _error(400, f"invalid request: {problem}")
        texts: list[str] = body["texts"]
        model = str(body["model"])
        dimensions = body.get("output_dimension") or (
            DEFAULT_DIMENSIONS if model.startswith("embed-v") else FIXED_DIMENSIONS
        )
        # The query/document asymmetry is real in Cohere: make it visible here too.
        prefix = "query: " if body["input_type"] == "search_query" else ""
        return JSONResponse(
            {
                "id": str(uuid.uuid4()),
                "embeddings": {"float": [fake_embedding(prefix + t, dimensions) for t in texts]},
                "texts": texts,
                "meta": {
                    "api_version": {"version": "2"},
                    "billed_units": {"input_tokens": sum(len(t.split()) for t in texts)},
                },
                "response_type": "embeddings_by_type",
            }
        )


def _validate(body: dict[str, Any]) -> str | None:
    texts = body.get("texts")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        return "texts must be a list of strings"
    if not texts or len(texts) > MAX_TEXTS:
        return f"total number of texts must be between 1 and {MAX_TEXTS} - received {len(texts)}"
    if not body.get("model"):
        return "model is required"
    if body.get("input_type") not in INPUT_TYPES:
        return f"input_type must be one of {sorted(INPUT_TYPES)}"
    if body.get("embedding_types", ["float"]) != ["float"]:
        return "this fake serves only float embeddings"
    dimension = body.get("output_dimension")
    if dimension is not None and dimension not in (256, 512, 1024, 1536):
        return f"output_dimension must be one of 256, 512, 1024, 1536 - received {dimension}"
    return None
