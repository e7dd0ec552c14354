"""Which pymongo errors mean "the backend is unavailable" (turned into StoreUnavailable); clients.

Shared by the DocumentDB vector store and the MongoDB history store. Everything else (a malformed
command, a duplicate key, a bad filter) is a programming or data error and surfaces unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pymongo import MongoClient
from pymongo.errors import (
    ConnectionFailure,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WriteConcernError,
)

from stores.vector_hits import StoreUnavailable

# Server codes that say "try again later" rather than "your command is wrong": host unreachable
# or not found, network timeout, shutdown in progress, primary stepped down, time limit exceeded,
# socket exception, not writable primary, interrupted at shutdown / by a replica-set change,
# not primary (no secondary ok / or recovering).
UNAVAILABLE_CODES = frozenset({6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})

_URI_CREDENTIALS = re.compile(r"(?<=://)([^:@/]+):[^@/]*@")


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` says the server cannot be reached or cannot serve right now."""
    if isinstance(exc, ConnectionFailure | ExecutionTimeout | WriteConcernError):
        return True
    if isinstance(exc, OperationFailure) and exc.code in UNAVAILABLE_CODES:
        return True
    # Client-side operation timeouts (timeoutMS) mark themselves with .timeout.
    return isinstance(exc, PyMongoError) and bool(getattr(exc, "timeout", False))


@contextmanager
def unavailable_on_outage(what: str) -> Iterator[None]:
    """Re-raise outage errors inside the block as StoreUnavailable (chained), others unchanged."""
    try:
        yield
    except PyMongoError as exc:
        if is_unavailable(exc):
            raise StoreUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc
        raise


def redact_uri(uri: str) -> str:
    """The URI with its password replaced by ***, fit for a log line."""
    return _URI_CREDENTIALS.sub(r"\1:***@", uri)


def connect(uri: str, timeout_ms: int) -> MongoClient[Any]:
    """A client on `uri`; its own serverSelectionTimeoutMS wins over our default."""
    options: dict[str, Any] = {"appname": "maas"}
    if "serverselectiontimeoutms" not in uri.lower():
        options["serverSelectionTimeoutMS"] = timeout_ms
    return MongoClient(uri, **options)
