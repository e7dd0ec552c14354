"""Start-up work for a DocumentDB vector collection: the collection, its ordinary indexes and
text index, the vector index (DiskANN where the server has it, HNSW where it does not), and
waiting until the vector index answers searches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from pymongo.database import Database
from pymongo.errors import OperationFailure

from stores.documentdb_commands import (
    VECTOR_INDEX_NAME,
    VectorIndexSpec,
    create_filter_indexes_command,
    create_vector_index_command,
    find_vector_index,
    search_pipeline,
    vector_index_differences,
)

logger = logging.getLogger(__name__)

_NAMESPACE_EXISTS = 48
_CONFLICT_CODES = frozenset({68, 85, 86})  # IndexAlreadyExists, IndexOptionsConflict, KeySpecs
_NOT_READY = "similarity index was not found"


class VectorIndexConflict(RuntimeError):
    """The collection already has a vector index on "embedding" with another definition."""


def is_index_not_ready(exc: BaseException) -> bool:
    """True for the error a vector search gets before its index exists or finished building."""
    return isinstance(exc, OperationFailure) and _NOT_READY in str(exc).lower()


def is_diskann_unavailable(exc: BaseException) -> bool:
    """True when createIndexes refused DiskANN as a kind (open-source engine, or a tier without
    it) rather than refusing the command for another reason."""
    if not isinstance(exc, OperationFailure):
        return False
    message = str(exc).lower()
    if "invalid search index kind" in message:
        return True
    return "diskann" in message and ("not supported" in message or "unsupported" in message)


def ensure_collection(db: Database[Any], name: str) -> None:
    """Create the collection unless it exists; a concurrent creator is not an error."""
    if name in db.list_collection_names(filter={"name": name}):
        return
    try:
        db.command({"create": name})
    except OperationFailure as exc:
        if exc.code != _NAMESPACE_EXISTS:
            raise


def ensure_filter_indexes(db: Database[Any], name: str, metadata_paths: Sequence[str] = ()) -> bool:
    """The ordinary indexes (and one per declared metadata path) and the text index;
    createIndexes with the same definitions again is a no-op. False (logged) when the server
    refused the command and takes it without the text index — a collection may have only one,
    and it may be someone else's: keyword search is then off for the collection. An error of
    the other indexes surfaces from that second command."""
    try:
        db.command(create_filter_indexes_command(name, metadata_paths))
        return True
    except OperationFailure as exc:
        refusal = exc
    db.command(create_filter_indexes_command(name, metadata_paths, text=False))
    logger.warning("no text index on %r (%s): keyword search is off for it", name, refusal)
    return False


def ensure_vector_index(db: Database[Any], name: str, spec: VectorIndexSpec) -> VectorIndexSpec:
    """Create the vector index if needed and return the spec in force (HNSW after a fallback).

    Raises VectorIndexConflict when an index on "embedding" exists with another definition.
    """
    existing = find_vector_index(db[name].list_indexes())
    if existing is not None:
        differences = vector_index_differences(existing, spec)
        if not differences:
            return spec
        if not _maybe_our_fallback(existing, spec):
            raise _conflict(name, existing, differences)
    try:
        _create(db, name, spec)
    except OperationFailure as exc:
        if spec.kind != "diskann" or not is_diskann_unavailable(exc):
            if existing is not None:  # the server refused to replace the index we found
                raise _conflict(name, existing, vector_index_differences(existing, spec)) from exc
            raise
        logger.warning(
            "DiskANN is unavailable on this server (%s); using an HNSW vector index for %r instead",
            exc.details.get("errmsg", str(exc)) if exc.details else str(exc),
            name,
        )
        spec = spec.with_kind("hnsw")
        if existing is not None and not vector_index_differences(existing, spec):
            return spec
        _create(db, name, spec)
    # Some servers answer "ok" for a same-named index without comparing options: check.
    existing = find_vector_index(db[name].list_indexes())
    if existing is not None and (differences := vector_index_differences(existing, spec)):
        raise _conflict(name, existing, differences)
    return spec


def _maybe_our_fallback(existing: Any, spec: VectorIndexSpec) -> bool:
    # An HNSW index where DiskANN is configured is what the fallback leaves behind on a server
    # without DiskANN; asking for DiskANN again tells whether this server has it.
    return spec.kind == "diskann" and not vector_index_differences(existing, spec.with_kind("hnsw"))


def _create(db: Database[Any], name: str, spec: VectorIndexSpec) -> None:
    try:
        db.command(create_vector_index_command(name, spec))
    except OperationFailure as exc:
        if exc.code not in _CONFLICT_CODES:
            raise
        existing = find_vector_index(db[name].list_indexes()) or {}
        differences = vector_index_differences(existing, spec) or [str(exc)]
        raise _conflict(name, existing, differences) from exc


def _conflict(name: str, existing: Any, differences: list[str]) -> VectorIndexConflict:
    index_name = existing.get("name", VECTOR_INDEX_NAME)
    return VectorIndexConflict(
        f"collection {name!r} already has a vector index {index_name!r} on 'embedding' that "
        f"differs from the configuration: {'; '.join(differences)}. Drop it "
        f"(db.{name}.dropIndex({index_name!r})) to have it rebuilt at the next start, or change "
        "the configuration (embedding dimensions, index type and options) to match it."
    )


def wait_until_searchable(
    db: Database[Any],
    name: str,
    spec: VectorIndexSpec,
    *,
    exact: bool,
    timeout: float,
    poll_seconds: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Probe with a one-result search until the vector index answers; False after `timeout`.

    Azure builds vector indexes in the background, and a search before the build has finished
    fails with "Similarity index was not found": a fresh start-up must not turn into failed
    searches.
    """
    probe = [1.0] + [0.0] * (spec.dimensions - 1)
    pipeline = search_pipeline(probe, 1, spec, exact=exact)
    deadline = clock() + timeout
    while True:
        try:
            list(db[name].aggregate(pipeline))
            return True
        except OperationFailure as exc:
            if not is_index_not_ready(exc):
                raise
        if clock() >= deadline:
            logger.warning(
                "the vector index of %r is not usable after %.0f s (still building?); "
                "searches will retry briefly and then report the store unavailable",
                name,
                timeout,
            )
            return False
        sleep(poll_seconds)
