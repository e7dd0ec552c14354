"""A local identity provider's JWKS endpoint: publishes the test's keys, counts fetches, and can
answer with an error or hold fetches until the test lets them go."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.jwt_tokens import SigningKey
from tests.support.patience import TEST_TIMEOUT_S
from tests.support.threaded_server import FakeService

# A held fetch is let go by the test; this only keeps a thread from leaking.
HOLD_LIMIT_S = TEST_TIMEOUT_S


class FakeJwks(FakeService):
    """`base_url` is the JWKS URL."""

    url_path = "/.well-known/jwks.json"

    def __init__(self, *keys: SigningKey) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._jwks: dict[str, Any] = {"keys": [key.public_jwk for key in keys]}
        self._status = 200
        self._release = threading.Event()
        self._release.set()
        self.asked = threading.Event()  # set on each fetch
        self.fetches = 0
        self.app = Starlette(routes=[Route(self.url_path, self._serve)])

    def publish(self, *keys: SigningKey, extra: list[dict[str, Any]] | None = None) -> None:
        """Serve these keys (and any extra raw JWKs) from now on, with status 200."""
        with self._lock:
            self._jwks = {"keys": [key.public_jwk for key in keys] + (extra or [])}
            self._status = 200

    def fail(self, status: int = 500) -> None:
        with self._lock:
            self._status = status

    def hold(self) -> None:
        """Fetches from now on wait until `release`."""
        self.asked.clear()
        self._release.clear()

    def release(self) -> None:
        self._release.set()

    async def _serve(self, request: Request) -> Response:
        with self._lock:
            self.fetches += 1
        self.asked.set()
        await asyncio.to_thread(self._release.wait, HOLD_LIMIT_S)
        with self._lock:
            status, jwks = self._status, self._jwks
        if status != 200:
            return JSONResponse({"error": "unavailable"}, status_code=status)
        return JSONResponse(jwks)
