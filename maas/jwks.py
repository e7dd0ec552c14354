"""The signing keys of a JSON Web Key Set URL, fetched without blocking the event loop.

Keys are cached for `max_age_s`; once that has passed, tokens are still checked against the keys
held while a fresh copy is fetched behind them. A token whose kid is not held fetches the set again
(key rotation), but never sooner than `min_interval_s` after the last attempt, so tokens with
made-up kids cannot turn the service into a load generator against the identity provider. One
fetch at a time: every request that needs it waits on the same one, bounded by `timeout_s`, and
requests whose key is held never wait at all.

When the set cannot be fetched (the server down, an error status, not a JWKS), the keys already
held stay in use; a token that needs a key not held is answered UNAVAILABLE, since the service
cannot tell whether that key exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx
import jwt

from maas.jwt_keys import verifiers
from services.errors import Unavailable

log = logging.getLogger("maas.auth")
MAX_JWKS_BYTES = 1024 * 1024  # an identity provider's key set is a few kB
# kid -> algorithm -> the key bound to it; kid None for keys that name none.
KeyTable = dict[str | None, dict[str, jwt.PyJWK]]


class JwksKeys:
    """The keys of one JWKS URL; `key_for(kid, alg)` is what token verification asks."""

    def __init__(
        self,
        url: str,
        allowed: Iterable[str],
        *,
        max_age_s: float,
        min_interval_s: float,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._allowed = frozenset(allowed)
        self._max_age_s = max_age_s
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._timeout_s = timeout_s
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout_s)
        self._keys: KeyTable = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._tried_at: float | None = None  # last attempt, successful or not
        self._failed = False  # whether the last attempt failed
        self._refresh: asyncio.Task[None] | None = None

    async def key_for(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        """The key for a token's kid and algorithm; None when the set has no such key;
        Unavailable when the set cannot be fetched and the key is not held."""
        now = self._clock()
        fresh = self._fetched_at is not None and now - self._fetched_at < self._max_age_s
        key = self._find(kid, alg)
        if not fresh or key is None:
            self.refresh(now)
        if key is not None:
            return key
        if self._refresh is not None:
            # shield: a caller that goes away must not cancel the fetch the others wait on.
            await asyncio.shield(self._refresh)
            key = self._find(kid, alg)
            if key is not None:
                return key
        if self._failed or self._fetched_at is None:
            raise Unavailable("The token's signing keys cannot be fetched; try again shortly.")
        return None

    def refresh(self, now: float | None = None) -> None:
        """Start fetching the set, unless a fetch is running or the last began too recently."""
        now = self._clock() if now is None else now
        if self._refresh is not None:
            return
        if self._tried_at is not None and now - self._tried_at < self._min_interval_s:
            return
        self._tried_at = now
        self._refresh = asyncio.create_task(self._fetch(), name="jwks-fetch")
        self._refresh.add_done_callback(self._fetched)

    def _fetched(self, task: asyncio.Task[None]) -> None:
        self._refresh = None

    async def aclose(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh
        await self._client.aclose()

    def _find(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        if kid is not None:
            return self._keys.get(kid, {}).get(alg)
        # A token that names no key: only a set with a single key for its algorithm can say
        # which key was meant.
        candidates = [keys[alg] for keys in self._keys.values() if alg in keys]
        return candidates[0] if len(candidates) == 1 else None

    async def _fetch(self) -> None:
        try:
            # httpx bounds each step; this bounds them all (a provider that drips its answer).
            async with asyncio.timeout(self._timeout_s):
                document = await self._download()
            keys = _key_table(document, self._allowed)
        except Exception as exc:  # any failure is the same outage to a caller
            self._failed = True
            log.warning("JWKS %s could not be fetched: %s", self.url, _reason(exc))
            return
        if not keys:
            log.warning("JWKS %s holds no key this service can use", self.url)
        self._keys, self._fetched_at, self._failed = keys, self._clock(), False

    async def _download(self) -> Any:
        async with self._client.stream("GET", self.url) as response:
            response.raise_for_status()
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError(f"larger than {MAX_JWKS_BYTES} bytes")
        return json.loads(body)


def _key_table(document: Any, allowed: frozenset[str]) -> KeyTable:
    """The usable signing keys of a JWKS document; ValueError when it is not one."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JSON Web Key Set")
    table: KeyTable = {}
    for jwk in document["keys"]:
        # Symmetric keys never come from a URL; keys for encryption do not sign.
        if not isinstance(jwk, Mapping) or jwk.get("kty") == "oct":
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        kid = jwk.get("kid")
        if kid is not None and not isinstance(kid, str):
            continue
        try:
            found = verifiers(jwk, allowed)
        except Exception as exc:  # a malformed key spoils only itself, not the whole set
            log.warning("JWKS key %r skipped: %s", kid, _reason(exc))
            continue
        if found:
            table.setdefault(kid, {}).update(found)
    return table


def _reason(exc: BaseException) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
