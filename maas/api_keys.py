"""API keys → tenants. Keys are held only as SHA-256 digests, and API_KEYS may give the digests
themselves (`sha256:<64 hex digits>`), so that no plaintext key sits in the configuration."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

DIGEST_PREFIX = "sha256:"
_DIGEST = re.compile(r"(?i)sha256:[0-9a-f]{64}")


def hash_key(key: str) -> str:
    """The entry to put in API_KEYS instead of the key itself."""
    return DIGEST_PREFIX + hashlib.sha256(key.encode()).hexdigest()


def is_digest(entry: str) -> bool:
    """Whether an API_KEYS entry is a digest (anything starting `sha256:`, in any case, claims
    to be one)."""
    return entry[: len(DIGEST_PREFIX)].lower() == DIGEST_PREFIX


def check_entry(entry: str) -> None:
    """ValueError for an entry that claims to be a digest and is not one. The message never
    repeats the entry: it may be a key."""
    if is_digest(entry) and not _DIGEST.fullmatch(entry):
        raise ValueError(
            f"an API_KEYS entry starts with {DIGEST_PREFIX!r} but is not followed by exactly 64 "
            "hex digits (compute one with `maas hash-key`)"
        )


def _stored(entry: str) -> bytes:
    if is_digest(entry):
        return bytes.fromhex(entry[len(DIGEST_PREFIX) :])
    return hashlib.sha256(entry.encode()).digest()


class ApiKeyAuth:
    """Finds the tenant of an API key."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        for entry in keys:
            check_entry(entry)
        # Looking up a digest leaks nothing about the key through timing.
        self._tenants = {_stored(entry): tenant for entry, tenant in keys.items()}

    def __bool__(self) -> bool:
        return bool(self._tenants)

    def tenant_of(self, key: str) -> str | None:
        return self._tenants.get(hashlib.sha256(key.encode()).digest())


def plaintext_keys(keys: Mapping[str, str]) -> list[str]:
    """The entries that are keys themselves (the ones a log must never show)."""
    return [entry for entry in keys if not is_digest(entry)]
