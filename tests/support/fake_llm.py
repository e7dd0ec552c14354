"""A local, scripted OpenAI-compatible server so tests never call a paid LLM API."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import random
import struct
import threading
import time
import uuid
from collections import deque
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.patience import TEST_TIMEOUT_S, patience
from tests.support.threaded_server import FakeService

MODEL_ID = "fake-llm"
DEFAULT_DIMENSIONS = 384
DEFAULT_REPLY_CHARS = 200


def _error(status: int, message: str, err_type: str = "invalid_request_error") -> JSONResponse:
    """An OpenAI-style error body, which the openai client turns into a typed exception."""
    body = {"error": {"message": message, "type": err_type, "param": None, "code": None}}
    return JSONResponse(body, status_code=status)


def _content_text(content: Any) -> str:
    """Text of a message's content, which may be a string, a list of parts, or None."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _words(text: str) -> int:
    return len(text.split())


def fake_embedding(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """Deterministic unit-length vector derived from a SHA-256 of ``text``."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest(), "big")
    rng = random.Random(seed)
    vector = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class FakeLLM(FakeService):
    """OpenAI-compatible chat/embeddings server on 127.0.0.1, scripted and deterministic."""

    url_path = "/v1"

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        # The test thread scripts while the server thread serves, so all state shares one lock.
        self._lock = threading.Lock()
        self._replies: deque[str] = deque()
        self._delay = 0.0
        self._failures: deque[int] = deque()
        self._in_flight = 0
        self.max_in_flight = 0  # most chat calls waiting on their delay at the same time
        self._open = threading.Event()  # cleared by hold(): calls wait until release()
        self._open.set()
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    # -- control (test thread) -------------------------------------------------------------

    def script(self, *replies: str) -> None:
        """Queue chat replies, served first in, first out."""
        with self._lock:
            self._replies.extend(replies)

    def set_delay(self, seconds: float) -> None:
        """Make every chat/embedding call wait ``seconds`` before answering."""
        with self._lock:
            self._delay = seconds

    def hold(self) -> None:
        """Make every chat/embedding call wait, once it arrived, until `release()`: a test
        holds a call in flight for as long as it needs, however slow the machine."""
        self._open.clear()

    def release(self) -> None:
        """Let held calls (and later ones) answer."""
        self._open.set()

    async def until_in_flight(self, count: int) -> None:
        """Wait until `count` chat calls are in flight (arrived, not answered yet)."""
        deadline = time.monotonic() + patience()
        while True:
            with self._lock:
                if self._in_flight >= count:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {count} LLM calls ever were in flight at once")
            await asyncio.sleep(0.01)

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """Answer the next ``count`` chat calls with an OpenAI-style error of ``status``."""
        with self._lock:
            self._failures.extend([status] * count)

    def reset(self) -> None:
        """Clear scripted replies, delay, pending failures and recorded requests."""
        with self._lock:
            self._replies.clear()
            self._delay = 0.0
            self._failures.clear()
            self.requests.clear()
            self.max_in_flight = 0
        self._open.set()

    # -- handlers (server thread) ----------------------------------------------------------

    async def _wait(self, counted: bool = False) -> None:
        with self._lock:
            delay = self._delay
            if counted:
                self._in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if delay > 0:
                # asyncio.sleep, not time.sleep, so concurrent calls overlap.
                await asyncio.sleep(delay)
            # Polled: the test's thread sets it. The limit only keeps a call from leaking.
            held_until = time.monotonic() + TEST_TIMEOUT_S
            while not self._open.is_set() and time.monotonic() < held_until:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        finally:
            if counted:
                with self._lock:
                    self._in_flight -= 1

    @staticmethod
    async def _json(request: Request) -> dict[str, Any] | None:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        return body if isinstance(body, dict) else None

    async def _chat(self, request: Request) -> JSONResponse:
        body = await self._json(request)
        if body is None:
            return _error(400, "request body must be a JSON object")
        with self._lock:
            self.requests.append(body)
        await self._wait(counted=True)
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            return _error(failure, f"injected failure ({failure})", "server_error")
        if body.get("stream"):
            return _error(400, "FakeLLM does not support streaming")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "'messages' must be a non-empty list")
        with self._lock:
            scripted = self._replies.popleft() if self._replies else None
        if scripted is None:
            last = _content_text(messages[-1].get("content"))
            reply = f"SUMMARY({len(messages)}): {last[:DEFAULT_REPLY_CHARS]}"
        else:
            reply = scripted
        prompt_tokens = sum(_words(_content_text(m.get("content"))) for m in messages)
        completion_tokens = _words(reply)
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", MODEL_ID),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    async def _embeddings(self, request: Request) -> JSONResponse:
        body = await self._json(request)
        if body is None:
            return _error(400, "request body must be a JSON object")
        await self._wait()
        raw = body.get("input")
        # A list of ints is one tokenized input; a list of anything else is a batch.
        if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
            raw = [raw]
        if not isinstance(raw, list) or not raw:
            return _error(400, "'input' must be a string or a non-empty list")
        dimensions = body.get("dimensions") or DEFAULT_DIMENSIONS
        if not isinstance(dimensions, int) or dimensions < 1:
            return _error(400, "'dimensions' must be a positive integer")
        texts = [item if isinstance(item, str) else json.dumps(item) for item in raw]
        base64_format = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            vector = fake_embedding(text, dimensions)
            embedding: list[float] | str = vector
            if base64_format:
                # OpenAI's base64 format is little-endian float32.
                packed = struct.pack(f"<{dimensions}f", *vector)
                embedding = base64.b64encode(packed).decode("ascii")
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(_words(text) for text in texts)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body.get("model", MODEL_ID),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _models(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "object": "list",
                "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "maas"}],
            }
        )
