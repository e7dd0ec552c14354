"""API keys → tenants. Keys are kept only as SHA-256 digests and never logged."""

from __future__ import annotations

import hashlib

LOCAL_TENANT = "local"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeyAuth:
    """Finds the tenant of an `Authorization: Bearer <key>` value."""

    def __init__(self, keys: dict[str, str]) -> None:
        # Looking up a digest leaks nothing about the key through timing.
        self._tenants = {_digest(key): tenant for key, tenant in keys.items()}

    @property
    def open(self) -> bool:
        """No keys configured: local-development mode, everyone is tenant 'local'."""
        return not self._tenants

    def tenant_for(self, authorization: str | None) -> str | None:
        if self.open:
            return LOCAL_TENANT
        if not authorization:
            return None
        scheme, _, key = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return None
        return self._tenants.get(_digest(key.strip()))
