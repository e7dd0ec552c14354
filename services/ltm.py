"""Long-term memory: mem0 for extraction, embedding, adding and search; tenancy and TTL on top.

Every read is scoped to the caller's tenant and hides expired memories (the filter goes into the
store's query, so a search still returns its best unexpired hits). Updates, deletes and the
expiry sweep are not mem0's (which reads, then writes: a concurrent delete slips in between) but
the store's conditional writes (stores/memory_changes.py): the store decides whether the memory
is still there, changes it and records its history in one step, and returns the change only if
it made it. Every change returned is published as one memory event, nothing else is.

With a quota (services/quotas.py), an add first reserves room for one memory and settles for
what it added; an extraction past the quota is undone (with the same conditional deletes,
before any event) and fails LIMIT_EXCEEDED.

All input is checked (services/ltm_limits.py) before anything is embedded or stored. A dependency
that is down (vector store, embedding provider, LLM) surfaces as Unavailable from these methods
only; short-term memory does not depend on any of them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

from services.embeddings.primed import Key
from services.errors import InvalidInput, LimitExceeded, MaasError, NotFound, Unavailable
from services.event_feed import follow
from services.ltm_limits import (
    LtmLimits,
    check_batch,
    check_memory_id,
    check_metadata,
    check_metadata_filter,
    check_new_memory,
    check_page_size,
    check_scope,
    check_search,
    check_text,
    check_ttl,
)
from services.ltm_model import (
    NEVER,
    AddResult,
    Category,
    ChangeKind,
    HistoryEntry,
    MemoryEvent,
    MemoryEventType,
    MemoryHit,
    MemoryRecord,
    MemorySearch,
    NewMemory,
    Scope,
    SearchMode,
    record_from_payload,
)
from services.mem0_engine import (
    LLM_DOWN,
    DependencyDown,
    EngineHandle,
    GuardedEmbedder,
    dependency_down,
    forget_entities,
    relink_entities,
    text_fields,
)
from services.memory_events import decode_memory_event, encode_memory_event
from services.memory_spans import operation_span, search_span, verbatim_span
from services.metrics import NO_METRICS, ServiceMetrics
from services.quotas import MemoryQuota
from services.search_fusion import Found, Ranked, rank
from services.verbatim_batch import VerbatimRow, new_row, write_rows
from stores.event_bus import RedisEventBus, StoredEvent
from stores.history_base import HistoryStore
from stores.keyword_terms import terms
from stores.memory_changes import ConditionalWrites, Edit, HistoryNotRecorded, Live, Sweep
from stores.vector_hits import VectorHit

log = logging.getLogger(__name__)
T = TypeVar("T")
Item = TypeVar("Item")


@dataclass(frozen=True)
class ItemResult(Generic[T]):
    """One item of a batch: its value, or the error that item alone met."""

    value: T | None = None
    error: MaasError | None = None


@dataclass(frozen=True)
class _AddPlan:
    """One checked add: mem0's arguments, and the texts mem0 will embed for it."""

    messages: list[dict[str, str]]
    ids: dict[str, str]
    metadata: dict[str, Any]
    infer: bool

    @property
    def embeds(self) -> list[Key]:
        """The (memory action, text) pairs to embed up front: each non-system message of a
        verbatim add, which mem0 embeds one by one. Not an extraction's: its LLM call, not
        the CPU, bounds it, and a batched encode before the first call only delays them all
        (measured: no faster, often slower)."""
        if self.infer:
            return []
        return [("add", m["content"]) for m in self.messages if m["role"] != "system"]

    @property
    def one_verbatim(self) -> dict[str, str] | None:
        """The one message a verbatim add stores (None: extraction, or several messages)."""
        stored = [m for m in self.messages if m["role"] != "system"]
        return stored[0] if not self.infer and len(stored) == 1 else None


@dataclass(frozen=True)
class LtmOptions:
    limits: LtmLimits
    default_ttl_seconds: int = 0
    llm_configured: bool = False
    batch_concurrency: int = 10
    # mem0 waits for each extraction's LLM call in a worker thread. Extractions in flight,
    # over all requests, stay below the app's worker threads (maas/app.py, 32), so the rest
    # of the service, and the LLM client itself (which may need a thread to connect), always
    # finds one: with every thread waiting on an LLM call that needs a thread, the process hung.
    extractions_in_flight: int = 24


class LongTermMemory:
    """The LTM operations of one tenant at a time; the tenant comes from the caller's key."""

    def __init__(
        self,
        engine: EngineHandle,
        events: RedisEventBus,
        stream: Callable[[str], str],
        options: LtmOptions,
        clock: Callable[[], float] = time.time,
        metrics: ServiceMetrics = NO_METRICS,
        quota: MemoryQuota | None = None,
    ) -> None:
        self._engine = engine
        self._quota = quota
        self.metrics = metrics
        self._events = events
        self._stream = stream
        self._options = options
        self._limits = options.limits
        self._clock = clock
        self._extractions = asyncio.Semaphore(options.extractions_in_flight)
        self._said_semantic_only = False  # warned once that HYBRID is semantic only here

    # ---- add --------------------------------------------------------------------------------

    async def add(self, tenant: str, new: NewMemory) -> AddResult:
        """Remember a text verbatim, or have mem0's LLM extract facts from it or from messages.
        LimitExceeded, and nothing kept, when what it adds does not fit the tenant's quota."""
        plan = self._plan_add(tenant, new)
        async with self._primed(plan.embeds):
            return await self._add(tenant, plan)

    def _plan_add(self, tenant: str, new: NewMemory) -> _AddPlan:
        """What mem0 is to be asked to add, checked (InvalidInput) before anything is done."""
        check_new_memory(new, self._limits)
        infer = self._options.llm_configured if new.infer is None else new.infer
        if infer and not self._options.llm_configured:
            raise InvalidInput(
                "infer needs an LLM and none is configured (set LLM_API_KEY or LLM_BASE_URL); "
                "send infer: false to store the text as it is.",
                field="infer",
            )
        messages = (
            [{"role": "user", "content": new.text}]
            if new.text is not None
            else [
                {"role": role, "content": content, **({"name": name} if name else {})}
                for role, content, name in new.messages or ()
            ]
        )
        ttl = self._options.default_ttl_seconds if new.ttl_seconds is None else new.ttl_seconds
        metadata = {
            "tenant": tenant,
            "category": new.category.value,
            "expires_at": self._expiry(ttl),
            "metadata": new.metadata or {},
        }
        return _AddPlan(messages, new.scope.mem0_ids(tenant), metadata, infer)

    async def _add(self, tenant: str, plan: _AddPlan) -> AddResult:
        # Room for one before anything is written (a verbatim add is one memory; extraction
        # may find none or several, counted once known).
        counted = await self._reserve(tenant, 1)
        with self._dependencies():
            engine = await self._engine.get()
            try:
                async with self._extractions if plan.infer else contextlib.nullcontext():
                    result = await engine.add(
                        plan.messages, **plan.ids, metadata=plan.metadata, infer=plan.infer
                    )
            except Exception:
                if counted:
                    await self._release(tenant, 1)
                raise
            changes = result.get("results", [])
            added_ids = [c["id"] for c in changes if c.get("event") == "ADD"]
            deleted = [c["id"] for c in changes if c.get("event") == "DELETE"]
            if counted:
                await self._count_added(tenant, engine, added_ids, deleted)
            added = await self._records(added_ids)
            updated = await self._records([c["id"] for c in changes if c.get("event") == "UPDATE"])
        for memory in added:
            await self._publish(tenant, MemoryEventType.ADDED, memory)
        for memory in updated:
            await self._publish(tenant, MemoryEventType.UPDATED, memory)
        return AddResult(added=added, updated=updated, deleted=deleted)

    # ---- read -------------------------------------------------------------------------------

    async def search(self, tenant: str, search: MemorySearch) -> list[MemoryHit]:
        """The memories that best match the query within a scope, best first: by meaning, by
        its words, or both (search.mode; ranking in services/search_fusion.py)."""
        check_search(search, self._limits)
        filters = self._filters(tenant, search.scope, search.categories, search.metadata)
        with self._dependencies():
            engine = await self._engine.get()
            limit, threshold = search.limit, search.threshold
            with search_span(engine, search.query, filters, limit, threshold, search.mode) as span:
                hits = []
                for r in await self._rank(engine, search, filters):
                    payload = dict(r.payload)
                    if self._visible(tenant, payload):
                        hits.append(
                            MemoryHit(record_from_payload(r.id, payload), r.score, r.scores)
                        )
                if span is not None:
                    span.set_attribute("maas.memory.result_count", len(hits))
        return hits

    async def _rank(
        self, engine: Any, search: MemorySearch, filters: dict[str, Any]
    ) -> list[Ranked]:
        """Fetch the candidate lists the mode needs and rank them."""
        store = engine.vector_store
        mode = search.mode
        # Over-fetch as mem0 does when the final order is not one list's own (fusion, or
        # recency reordering beyond the first `limit`), so `limit` hits still remain.
        reordered = mode is SearchMode.HYBRID or bool(search.recency_half_life_seconds)
        fetch = max(search.limit * 4, 60) if reordered else search.limit

        def by_meaning() -> tuple[list[float], list[Found]]:
            vector = engine.embedding_model.embed(search.query, "search")
            hits = store.search(search.query, vector, top_k=fetch, filters=filters)
            return vector, [Found(h.id, h.payload, h.score or 0.0) for h in hits]

        def by_words() -> list[Found] | None:
            hits = store.keyword_search(search.query, top_k=fetch, filters=filters)
            if hits is None:  # mem0's answer for "this store has no keyword search"
                return None
            return [Found(h.id, h.payload, h.score or 0.0) for h in hits]

        vector: list[float] | None = None
        semantic: list[Found] = []
        words: list[Found] | None = []
        if mode is SearchMode.HYBRID:
            # Two threads: the query embedding (BLAS) and the keyword query (SQLite) both
            # release the GIL, so they overlap.
            (vector, semantic), words = await asyncio.gather(
                asyncio.to_thread(by_meaning), asyncio.to_thread(by_words)
            )
        elif mode is SearchMode.SEMANTIC:
            vector, semantic = await asyncio.to_thread(by_meaning)
        else:
            words = await asyncio.to_thread(by_words)
        if words is None:  # the store has no keyword search
            mode = self._semantic_only(mode, store)
        keyword = words or []
        similarity: dict[str, float] = {}
        seen = {h.id for h in semantic}
        missing = [h.id for h in keyword if h.id not in seen]
        if vector is not None and missing and hasattr(store, "similarities"):
            similarity = await asyncio.to_thread(store.similarities, vector, missing)
        updated_at = None
        if search.recency_half_life_seconds:
            updated_at = {
                h.id: record_from_payload(h.id, dict(h.payload)).updated_at
                for h in (*semantic, *keyword)
            }
        return rank(
            mode,
            semantic,
            keyword,
            len(terms(search.query)),
            limit=search.limit,
            threshold=search.threshold or 0.0,
            similarity=similarity,
            updated_at=updated_at,
            now=datetime.fromtimestamp(self._clock(), UTC),
            half_life_seconds=search.recency_half_life_seconds,
        )

    def _semantic_only(self, mode: SearchMode, store: Any) -> SearchMode:
        """The mode a store without keyword search ranks by: KEYWORD is refused, HYBRID ranks
        by meaning alone (SEMANTIC), said once in the log (and in the README)."""
        backend = type(store).__name__
        if mode is SearchMode.KEYWORD:
            raise InvalidInput(
                f"keyword search is not available on this server's vector store ({backend}); "
                "search with mode SEMANTIC",
                field="mode",
            )
        if not self._said_semantic_only:
            self._said_semantic_only = True
            log.warning(
                "the vector store (%s) has no keyword search: HYBRID searches rank by meaning "
                "alone (semantic only)",
                backend,
            )
        return SearchMode.SEMANTIC

    async def get(self, tenant: str, memory_id: str) -> MemoryRecord | None:
        """One of the tenant's memories; None when missing, expired or another tenant's."""
        check_memory_id(memory_id)
        hit = await self._stored(tenant, memory_id)
        return record_from_payload(hit.id, hit.payload) if hit else None

    async def list(
        self,
        tenant: str,
        scope: Scope,
        categories: list[Category] | None,
        metadata: dict[str, Any] | None,
        first: int,
        after: str | None,
    ) -> tuple[list[tuple[MemoryRecord, str]], bool]:
        """A page of memories, newest first, with a cursor for each; and whether more follow."""
        check_scope(scope, required=False)
        check_metadata_filter(metadata, self._limits)
        check_page_size(first, self._limits)
        position = _decode_cursor(after) if after else None
        filters = self._filters(tenant, scope, categories, metadata)
        with self._dependencies():
            store = (await self._engine.get()).vector_store
            rows: list[VectorHit] = await asyncio.to_thread(
                store.page, filters, first + 1, position
            )
        page = [
            (record_from_payload(row.id, row.payload), _encode_cursor(row)) for row in rows[:first]
        ]
        return page, len(rows) > first

    async def histories(self, memory_ids: list[str]) -> list[list[HistoryEntry]]:
        """The change history of each memory, in one read (a DataLoader batches the calls).

        Only called with ids of memories already returned to this tenant."""
        with self._dependencies():
            history = (await self._engine.get()).db
            rows = await asyncio.to_thread(history.get_histories, memory_ids)
        return [[_history_entry(r) for r in rows.get(memory_id, [])] for memory_id in memory_ids]

    # ---- change -----------------------------------------------------------------------------

    async def update(
        self,
        tenant: str,
        memory_id: str,
        *,
        text: str | None = None,
        metadata: dict[str, Any] | None = None,
        ttl_seconds: int | None = None,
    ) -> MemoryRecord:
        """Change a memory's text, metadata or TTL; NotFound when it is gone, expired or another
        tenant's — also when a concurrent delete wins the race (the store decides)."""
        check_memory_id(memory_id)
        if text is None and metadata is None and ttl_seconds is None:
            raise InvalidInput("Give text, metadata or ttlSeconds to change.", field="text")
        if text is not None:
            check_text(text, self._limits, "text")
        check_metadata(metadata, self._limits)
        check_ttl(ttl_seconds, self._limits)
        fields: dict[str, Any] = {}
        if metadata is not None:
            fields["metadata"] = metadata
        if ttl_seconds is not None:
            fields["expires_at"] = self._expiry(ttl_seconds)
        with self._dependencies():
            engine = await self._engine.get()
            with operation_span(engine, "update_memory", memory_id):
                vector = None
                if text is not None:
                    vector, derived = await asyncio.to_thread(_embed_text, engine, text)
                    fields.update(derived)
                target = Live(memory_id, tenant, self._clock())
                change = await self._decide(
                    lambda history: _writes(engine).update_live(
                        target, Edit(fields, vector), history
                    )
                )
        if change is None:
            raise NotFound(f"No memory '{memory_id}'.", field="id")
        assert change.after is not None
        if text is not None and text != change.before.get("data"):
            await relink_entities(engine, memory_id, change.after)
        memory = record_from_payload(memory_id, change.after)
        await self._publish(tenant, MemoryEventType.UPDATED, memory, at=change.at)
        return memory

    async def delete(self, tenant: str, memory_id: str) -> None:
        """Delete a memory; NotFound when it is gone, expired or another tenant's. Of concurrent
        deletes of one memory exactly one succeeds (the store decides)."""
        check_memory_id(memory_id)
        with self._dependencies():
            engine = await self._engine.get()
            target = Live(memory_id, tenant, self._clock())
            with operation_span(engine, "delete_memory", memory_id):
                change = await self._decide(
                    lambda history: _writes(engine).delete_live(target, history)
                )
        if change is None:
            raise NotFound(f"No memory '{memory_id}'.", field="id")
        await self._release(tenant, 1)
        await forget_entities(engine, memory_id, change.before)
        memory = record_from_payload(memory_id, change.before)
        await self._publish(
            tenant, MemoryEventType.DELETED, memory, with_memory=False, at=change.at
        )

    async def delete_expired(self, tenant: str, chunk: int = 500) -> int:
        """Delete the tenant's expired memories (recorded in their history); how many.

        Each memory is deleted by a conditional delete, so concurrent sweeps (several server
        processes) and deletes record each memory once, and a memory whose TTL an update has
        just extended is spared."""
        deleted = 0
        with self._dependencies():
            engine = await self._engine.get()
            more = True
            while more:
                now = self._clock()
                sweep: Sweep = await self._decide(
                    lambda history, now=now: _writes(engine).delete_expired(
                        tenant, now, chunk, history
                    )
                )
                deleted += len(sweep.changes)
                await self._release(tenant, len(sweep.changes))
                for change in sweep.changes:
                    memory = record_from_payload(change.id, change.before)
                    await self._publish(
                        tenant, MemoryEventType.EXPIRED, memory, with_memory=False, at=change.at
                    )
                more = sweep.more
        return deleted

    async def _decide(self, write: Callable[[HistoryStore], T]) -> T:
        """Run one of the store's conditional writes (blocking) with mem0's history store.

        A change whose history could not be written after it (DocumentDB) still stands: it is
        reported as made, and the lost history is logged and counted."""
        engine = await self._engine.get()
        try:
            return await asyncio.to_thread(write, engine.db)
        except HistoryNotRecorded as exc:
            self._count_dependency_error("The vector store")
            log.error(
                "history of %d change(s) not recorded: %s",
                len(exc.changes),
                [change.history_record() for change in exc.changes],
                exc_info=exc.__cause__,
            )
            return exc.result  # type: ignore[no-any-return]

    # ---- batches ----------------------------------------------------------------------------

    async def add_many(self, tenant: str, items: list[NewMemory]) -> list[ItemResult[AddResult]]:
        """Each item added as `add` would; the texts mem0 will embed, of every item that passed
        its checks, are embedded up front in one batched call (see _primed)."""
        check_batch(items, self._limits)
        plans: list[_AddPlan | MaasError] = []
        for item in items:
            try:
                plans.append(self._plan_add(tenant, item))
            except MaasError as exc:
                plans.append(exc)

        async def add_one(plan: _AddPlan | MaasError) -> AddResult:
            if isinstance(plan, MaasError):
                raise plan
            return await self._add(tenant, plan)

        # Verbatim adds of one text each are written together (services/verbatim_batch.py);
        # the others go one by one, beside them.
        together = [
            i for i, plan in enumerate(plans) if isinstance(plan, _AddPlan) and plan.one_verbatim
        ]
        alone = [plan for i, plan in enumerate(plans) if i not in set(together)]
        embeds = [key for plan in plans if isinstance(plan, _AddPlan) for key in plan.embeds]
        async with self._primed(embeds):
            written, each = await asyncio.gather(
                self._add_verbatim(tenant, [cast(_AddPlan, plans[i]) for i in together]),
                self._each(alone, add_one),
            )
        results = iter(each)
        by_index = dict(zip(together, written, strict=True))
        return [by_index[i] if i in by_index else next(results) for i in range(len(plans))]

    async def _add_verbatim(
        self, tenant: str, plans: list[_AddPlan]
    ) -> list[ItemResult[AddResult]]:
        """Verbatim adds of one text each, as `add` would make them one by one, written in one
        insert and one history write; a failure (quota, embedding, write) stays its item's."""
        if not plans:
            return []
        outcomes: list[Any] = list(
            await asyncio.gather(*(self._reserve(tenant, 1) for _ in plans), return_exceptions=True)
        )
        counted = [outcome is True for outcome in outcomes]
        live = [i for i, outcome in enumerate(outcomes) if not isinstance(outcome, BaseException)]
        try:
            with self._dependencies():
                engine = await self._engine.get()
        except Exception as exc:
            for i in live:
                outcomes[i] = exc
            live = []
        if live:
            for i, outcome in (await self._write_verbatim(engine, plans, live)).items():
                outcomes[i] = outcome
        results: list[ItemResult[AddResult]] = []
        added: list[MemoryRecord] = []
        for i, outcome in enumerate(outcomes):
            if isinstance(outcome, VerbatimRow):
                memory = record_from_payload(outcome.memory_id, outcome.payload)
                added.append(memory)
                results.append(ItemResult(value=AddResult(added=[memory], updated=[], deleted=[])))
                continue
            if counted[i]:
                await self._release(tenant, 1)
            results.append(ItemResult(error=self._item_error(outcome)))
        # As many events under way at once as items of a batch (a Redis connection each).
        gate = asyncio.Semaphore(self._options.batch_concurrency)

        async def publish(memory: MemoryRecord) -> None:
            async with gate:
                await self._publish(tenant, MemoryEventType.ADDED, memory)

        await asyncio.gather(*(publish(memory) for memory in added))
        return results

    async def _write_verbatim(
        self, engine: Any, plans: list[_AddPlan], indices: list[int]
    ) -> dict[int, VerbatimRow | Exception]:
        """Embed (from the batch's priming) and write these plans' memories together; per
        index, its written row or what failed it (Unavailable when a dependency is down)."""

        def write() -> dict[int, VerbatimRow | Exception]:
            built: dict[int, VerbatimRow | Exception] = {}
            for i in indices:
                message = cast(dict[str, str], plans[i].one_verbatim)
                try:
                    vector = engine.embedding_model.embed(message["content"], "add")
                    built[i] = new_row(message, plans[i].ids, plans[i].metadata, vector)
                except Exception as exc:
                    built[i] = exc
            rows = [row for row in built.values() if isinstance(row, VerbatimRow)]
            if rows:
                write_rows(engine.vector_store, engine.db, rows)
            return built

        with verbatim_span(engine, len(indices)) as span:
            built = await asyncio.to_thread(write)
            outcomes: dict[int, VerbatimRow | Exception] = {}
            for i, row in built.items():
                failure = row if isinstance(row, Exception) else row.error
                outcomes[i] = row if failure is None else self._as_dependency_error(failure)
            if span is not None:
                stored = sum(isinstance(outcome, VerbatimRow) for outcome in outcomes.values())
                span.set_attribute("maas.memory.result_count", stored)
        return outcomes

    async def search_many(
        self, tenant: str, items: list[MemorySearch]
    ) -> list[ItemResult[list[MemoryHit]]]:
        check_batch(items, self._limits)
        return await self._each(items, lambda item: self.search(tenant, item))

    async def delete_many(self, tenant: str, memory_ids: list[str]) -> list[ItemResult[str]]:
        check_batch(memory_ids, self._limits)

        async def delete_one(memory_id: str) -> str:
            await self.delete(tenant, memory_id)
            return memory_id

        return await self._each(memory_ids, delete_one)

    async def _each(
        self, items: list[Item], run: Callable[[Item], Awaitable[T]]
    ) -> list[ItemResult[T]]:
        """Runs every item, a bounded number at a time; an item's failure stays its own."""
        gate = asyncio.Semaphore(self._options.batch_concurrency)

        async def one(item: Item) -> ItemResult[T]:
            async with gate:
                try:
                    return ItemResult(value=await run(item))
                except Exception as exc:
                    return ItemResult(error=self._item_error(exc))

        return list(await asyncio.gather(*(one(item) for item in items)))

    @staticmethod
    def _item_error(exc: BaseException) -> MaasError:
        """What a batch item that raised `exc` reports: its MaasError, else an internal error
        masked as the schema masks whole-request errors (same message, same id)."""
        if isinstance(exc, MaasError):
            return exc
        error_id = uuid.uuid4().hex[:16]
        log.error("batch item failed (errorId=%s)", error_id, exc_info=exc)
        return MaasError(f"Internal error (id {error_id}).", errorId=error_id)

    def _as_dependency_error(self, exc: Exception) -> Exception:
        """`exc` as `_dependencies` turns it: Unavailable (counted) when a dependency is down."""
        try:
            with self._dependencies():
                raise exc
        except Exception as converted:
            return converted

    # ---- events -----------------------------------------------------------------------------

    def events(
        self, tenant: str, scope: Scope, after: str | None = None
    ) -> AsyncIterator[MemoryEvent]:
        """Changes to the tenant's memories within scope (all of them when scope is empty):
        those after the event id `after` first, when given, then live ones."""
        check_scope(scope, required=False)

        def within_scope(stored: StoredEvent) -> MemoryEvent | None:
            event = _decode_shared(stored.id, stored.payload)
            return event if scope.covers(event.scope) else None

        return follow(
            self._events, self._stream(tenant), after, within_scope, self.metrics, "memory events"
        )

    async def _publish(
        self,
        tenant: str,
        type_: MemoryEventType,
        memory: MemoryRecord,
        *,
        with_memory: bool = True,
        at: str | None = None,
    ) -> None:
        payload = _payload_of(memory) if with_memory else None
        try:
            await self._events.append(
                self._stream(tenant),
                encode_memory_event(type_, memory.id, memory.scope, payload, at),
                kind="M",
                at_ms=int(self._clock() * 1000),
            )
        except Exception:
            # The change is stored (in the vector store, which Redis cannot join in one atomic
            # step); a dashboard missing one event must not fail the write.
            self.metrics.dependency_error("redis")
            log.warning("could not record a memory event", exc_info=True)

    # ---- quota ------------------------------------------------------------------------------

    async def _reserve(self, tenant: str, n: int, *, already: int = 0) -> bool:
        """Count n memories about to be added (LimitExceeded when over the tenant's quota,
        after deleting its expired memories); whether they were counted."""
        if self._quota is None:
            return False
        return await self._quota.reserve(
            tenant, n, sweep=lambda: self.delete_expired(tenant), already=already
        )

    async def _release(self, tenant: str, n: int) -> None:
        """Uncount n memories: reserved and not added, or removed (the store's conditional
        deletes report each removal once)."""
        if self._quota is not None:
            await self._quota.release(tenant, n)

    async def _count_added(
        self, tenant: str, engine: Any, added: list[str], deleted: list[str]
    ) -> None:
        """Settle an add that reserved one memory: count what it added beyond that, or undo
        it when that does not fit (before anyone was told of it), and uncount what it
        deleted."""
        if len(added) > 1:
            try:
                await self._reserve(tenant, len(added) - 1, already=1)
            except LimitExceeded:
                # If an undo fails the add fails UNAVAILABLE and its memories beyond the
                # first stay uncounted: the rarest of cases (extraction past the quota and
                # the vector store failing within one add).
                for memory_id in added:
                    await self._undo_add(engine, tenant, memory_id)
                await self._release(tenant, 1)
                raise
        elif not added:
            await self._release(tenant, 1)
        await self._release(tenant, len(deleted))

    async def _undo_add(self, engine: Any, tenant: str, memory_id: str) -> None:
        target = Live(memory_id, tenant, self._clock())
        change = await self._decide(lambda history: _writes(engine).delete_live(target, history))
        if change is not None:  # None: someone who found it deleted it first
            await forget_entities(engine, memory_id, change.before)

    # ---- helpers ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _primed(self, embeds: list[Key]) -> AsyncIterator[None]:
        """Within the block, mem0's embed() of these texts is answered from one batched
        embedding made up front (services/embeddings/primed.py). Best effort: an engine that
        cannot be had now, or a priming that fails, leaves each text to be embedded alone."""
        embedder = None
        if len(set(embeds)) > 1:
            try:
                embedder = (await self._engine.get()).embedding_model
            except Exception:  # each item meets the engine's state itself
                embedder = None
        if isinstance(embedder, GuardedEmbedder):
            async with embedder.priming(embeds):
                yield
        else:
            yield

    def _expiry(self, ttl_seconds: int) -> float:
        return self._clock() + ttl_seconds if ttl_seconds > 0 else NEVER

    def _filters(
        self,
        tenant: str,
        scope: Scope,
        categories: list[Category] | None,
        metadata: dict[str, Any] | None,
    ) -> dict[str, Any]:
        filters: dict[str, Any] = {
            **scope.mem0_ids(tenant),
            "tenant": tenant,
            "expires_at": {"gt": self._clock()},
        }
        if categories:
            filters["category"] = {"in": sorted({c.value for c in categories})}
        for key, value in (metadata or {}).items():
            filters[f"metadata.{key}"] = value
        return filters

    def _visible(self, tenant: str, payload: dict[str, Any]) -> bool:
        return payload.get("tenant") == tenant and payload.get("expires_at", NEVER) > self._clock()

    async def _stored(self, tenant: str, memory_id: str) -> VectorHit | None:
        with self._dependencies():
            store = (await self._engine.get()).vector_store
            hit: VectorHit | None = await asyncio.to_thread(store.get, memory_id)
        return hit if hit is not None and self._visible(tenant, hit.payload) else None

    async def _records(self, memory_ids: list[str]) -> list[MemoryRecord]:
        store = (await self._engine.get()).vector_store
        hits = [await asyncio.to_thread(store.get, memory_id) for memory_id in memory_ids]
        return [record_from_payload(h.id, h.payload) for h in hits if h is not None]

    @contextlib.contextmanager
    def _dependencies(self) -> Iterator[None]:
        try:
            yield
        except DependencyDown as exc:
            self._count_dependency_error(exc.what)
            raise Unavailable(f"{exc.what} is unavailable; try again shortly.") from exc
        except Exception as exc:
            what = dependency_down(exc)
            if what is None:
                raise
            log.warning("%s is unavailable: %s", what, type(exc).__name__)
            self._count_dependency_error(what)
            raise Unavailable(f"{what} is unavailable; try again shortly.") from exc

    def _count_dependency_error(self, what: str) -> None:
        # "The vector store" -> vector_store. The LLM gateway counts its own failures.
        if what != LLM_DOWN:
            self.metrics.dependency_error(what.lower().removeprefix("the ").replace(" ", "_"))


def _writes(engine: Any) -> ConditionalWrites:
    """The engine's vector store, as the conditional writes every store of ours has."""
    return cast(ConditionalWrites, engine.vector_store)


def _embed_text(engine: Any, text: str) -> tuple[list[float], dict[str, Any]]:
    """The vector of a memory's new text and the payload fields derived from it (blocking)."""
    return engine.embedding_model.embed(text, "update"), text_fields(text)


def _payload_of(memory: MemoryRecord) -> dict[str, Any]:
    """Enough of a payload to rebuild the record on the other side of the bus."""
    return {
        "data": memory.text,
        "category": memory.category.value,
        "metadata": memory.metadata,
        "created_at": memory.created_at.isoformat(),
        "updated_at": memory.updated_at.isoformat(),
        "expires_at": memory.expires_at.timestamp() if memory.expires_at else NEVER,
        **memory.scope.mem0_ids("_"),  # the receiver drops the qualifier again
    }


def _history_entry(row: dict[str, Any]) -> HistoryEntry:
    at = row.get("updated_at") or row.get("created_at")
    when = datetime.fromisoformat(at) if at else datetime.fromtimestamp(0, UTC)
    return HistoryEntry(
        event=ChangeKind(row["event"]),
        previous_text=row.get("old_memory"),
        new_text=row.get("new_memory"),
        at=when if when.tzinfo else when.replace(tzinfo=UTC),
    )


def _encode_cursor(row: VectorHit) -> str:
    text = f"{row.payload.get('created_at', '')}|{row.id}"
    return base64.urlsafe_b64encode(text.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        created_at, separator, memory_id = base64.urlsafe_b64decode(cursor).decode().rpartition("|")
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("Invalid cursor.", field="after") from None
    if not separator:
        raise InvalidInput("Invalid cursor.", field="after")
    return created_at, memory_id


# Every local subscriber of a tenant's stream receives the same event at about the same moment:
# decode it once for all of them, as one object.
_decode_shared = functools.lru_cache(maxsize=16)(decode_memory_event)
