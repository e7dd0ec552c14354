"""Long-term-memory benchmark: search latency at 1,000 / 10,000 / 100,000 memories (query
embedding included) with a breakdown of what it is made of, and a batch of 50 adds against an
LLM that takes 200 ms, printed beside their targets.

    uv run python -m bench.ltm_bench [--sizes 10000]

Each measured search runs in all three modes, in turn (SEMANTIC, KEYWORD, HYBRID: the default,
whose figures are "search"), so the modes' p50/p99 print side by side from the same machine.

The LTM service runs in this process, built as the app builds it (`build_ltm`: the embedded
vector store and the local MiniLM embedder), on a throwaway redis-server (REDIS_URL when set; only
the event bus uses it) and the test suite's OpenAI-compatible FakeLLM. Data lives in a temporary
directory that is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import math
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psutil
import uvloop
from redis.asyncio import Redis

from bench.ltm_corpus import MEMORY_TEMPLATES, QUESTION_TEMPLATES, memory_sentences, questions
from bench.processes import BenchRedis, embedded_ltm_settings
from bench.stats import fmt, percentile, table
from bench.stm_bench import cpu_model
from maas.app import WORKER_THREADS, llm_config
from maas.ltm_wiring import build_ltm
from maas.settings import Settings
from services.embeddings.local import shared_encoder
from services.llm import LLMGateway
from services.ltm import LongTermMemory
from services.ltm_model import NEVER, Category, MemorySearch, NewMemory, Scope, SearchMode, qualify
from stores.event_bus import RedisEventBus
from tests.support.fake_llm import FakeLLM

TENANT = "bench"
FAKE_LLM_THREAD = "test-server"  # the name tests.support.threaded_server gives its thread
USERS = 100
SIZES = (1_000, 10_000, 100_000)
SEARCH_TARGETS_MS = {10_000: 25.0, 100_000: 100.0}  # p50, query embedding included
CORPUS_SENTENCES = 3_000
QUESTIONS = 300
NOISE = 0.25  # norm of the Gaussian noise added to a corpus vector (before re-normalising)
INSERT_CHUNK = 10_000
WARMUP_SEARCHES = 20
SEARCHES = 400
BREAKDOWN_EVERY = 2  # every 2nd measured search is followed by its breakdown
SEARCH_LIMIT = 10
# mem0 over-fetches from the store before its own scoring: top_k = max(limit * 4, 60).
STORE_TOP_K = max(SEARCH_LIMIT * 4, 60)
# Before extracting, mem0 looks up the user's closest existing memories: top_k 10, filtered by
# the scope ids alone (no tenant, no expiry).
ADD_LOOKUP_TOP_K = 10
ADD_LOOKUP_SAMPLES = 20
LLM_DELAY_S = 0.2
BATCH = 50
BATCH_RUNS = 3
BATCH_AT = (SIZES[0], SIZES[-1])  # store sizes the batch add runs at
BATCH_TARGET_S = 2.0
RUN_BUDGET_S = 300.0


@dataclass(frozen=True)
class Verdict:
    """One row of the final table; met is None where there is no target."""

    measure: str
    figure: str
    target: str = "-"
    met: bool | None = None


@dataclass(frozen=True)
class SizeResult:
    size: int
    service_s: list[float]
    cpu_s: float  # this process's CPU over the measured searches
    embed_s: list[float]
    store_s: list[float]
    hits: tuple[int, int]  # fewest and most hits of one search
    by_mode: dict[SearchMode, list[float]]  # the same searches in each mode


@dataclass(frozen=True)
class BatchRun:
    size: int
    wall_s: float
    cpu_s: float  # this process's CPU during the batch, FakeLLM's server thread included
    llm_cpu_s: float  # FakeLLM's server thread alone (in production the LLM runs elsewhere)
    added: int  # items whose add stored exactly one memory
    errors: list[str]
    llm_calls: int
    most_in_flight: int
    single_s: float


def ms(values: Sequence[float], pct: float) -> float:
    return percentile(values, pct) * 1000


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def thread_cpu_s(name: str) -> float:
    """CPU seconds used so far by this process's threads of that name."""
    ids = {t.native_id for t in threading.enumerate() if t.name == name}
    return sum(t.user_time + t.system_time for t in psutil.Process().threads() if t.id in ids)


def user_of(index: int) -> str:
    """The user a memory belongs to: memories are dealt round-robin over the users."""
    return f"u{index % USERS:03d}"


def search_filters(user: str) -> dict[str, Any]:
    """The filters LongTermMemory.search passes for a search scoped to one user."""
    return {"user_id": qualify(TENANT, user), "tenant": TENANT, "expires_at": {"gt": time.time()}}


def extraction_reply(fact: str) -> str:
    """What mem0's extraction prompt gets back from an LLM: the facts it found."""
    return json.dumps({"memory": [{"text": fact}]})


class Corpus:
    """Distinct memory sentences, their MiniLM vectors, and mem0's lemmatised form of each."""

    def __init__(self, texts: list[str], vectors: np.ndarray, lemmatized: list[str]) -> None:
        self.texts = texts
        self.vectors = vectors
        self.lemmatized = lemmatized
        self.hashes = [hashlib.md5(t.encode(), usedforsecurity=False).hexdigest() for t in texts]


def payload(corpus: Corpus, sentence: int, user: str, created_at: str) -> dict[str, Any]:
    """A payload as `LongTermMemory.add` (infer=False, no TTL, no metadata) has mem0 write it."""
    return {
        "tenant": TENANT,
        "category": Category.SEMANTIC.value,
        "expires_at": NEVER,
        "metadata": {},
        "user_id": qualify(TENANT, user),
        "role": "user",
        "data": corpus.texts[sentence],
        "hash": corpus.hashes[sentence],
        "created_at": created_at,
        "updated_at": created_at,
        "text_lemmatized": corpus.lemmatized[sentence],
    }


class Bench:
    def __init__(self, settings: Settings, fake: FakeLLM) -> None:
        self.settings = settings
        self.fake = fake
        self.rng = np.random.default_rng(7)
        self.verdicts: list[Verdict] = []
        self.rss: list[tuple[str, float]] = []
        self.populated = 0  # memories inserted directly
        self.added = 0  # memories the batch runs stored through the service
        self.batch_number = 0
        self.searches: list[SizeResult] = []
        self.batches: list[BatchRun] = []
        self.lookups: dict[int, list[float]] = {}
        self.batch_texts: list[str] = []
        self.embedding_cpu = (math.nan, math.nan)
        self.ltm: LongTermMemory | None = None
        self.memory: Any = None  # mem0's AsyncMemory

    # ---- set-up -----------------------------------------------------------------------------

    async def main(self) -> None:
        settings = self.settings
        loop = asyncio.get_running_loop()
        # As the app's lifespan does: mem0 runs every step in a worker thread.
        loop.set_default_executor(ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="maas"))
        assert settings.redis_url is not None
        redis = Redis.from_url(settings.redis_url, health_check_interval=30)
        events = RedisEventBus(redis)
        llm = LLMGateway(llm_config(settings))
        self.ltm, engine = build_ltm(settings, events, llm, loop)
        try:
            print("== Set-up")
            began = time.perf_counter()
            await engine.start()
            self.memory = await engine.get()
            took = time.perf_counter() - began
            gc.collect()
            gc.freeze()  # as the app does after start-up
            self.note_rss("after loading (engine built, MiniLM loaded)")
            print(
                f"  LTM engine built with build_ltm in {took:.1f} s "
                f"(store {type(self.memory.vector_store).__name__}, embedder "
                f"{type(self.memory.embedding_model.inner).__name__}); RSS {self.rss[-1][1]:.0f} MB"
            )
            corpus = await self.make_corpus()
            await self.check_payload_shape(corpus)
            await self.run_sizes(corpus)
            self.note_rss(f"after {SIZES[-1]:,} memories, searches and adds")
            self.print_search()
            self.print_batches()
        finally:
            await events.close()
            await asyncio.to_thread(engine.close)
            await llm.close()
            await redis.aclose()

    def note_rss(self, label: str) -> None:
        self.rss.append((label, rss_mb()))

    async def make_corpus(self) -> Corpus:
        from mem0.utils.lemmatization import lemmatize_for_bm25

        texts = memory_sentences(CORPUS_SENTENCES)
        began = time.perf_counter()
        vectors = await asyncio.to_thread(shared_encoder().encode, texts)
        took = time.perf_counter() - began
        corpus = Corpus(texts, vectors, [lemmatize_for_bm25(t) for t in texts])
        print(
            f"  corpus: {len(texts):,} distinct memory sentences from {len(MEMORY_TEMPLATES)} "
            f"templates (bench/ltm_corpus.py, e.g. {texts[0]!r}),\n"
            f"    batch-encoded with the real MiniLM encoder in {took:.1f} s "
            f"({took / len(texts) * 1000:.1f} ms/sentence). Each stored memory is one of them "
            f"(uniformly at\n    random) with Gaussian noise of norm {NOISE} added to its vector "
            "and re-normalised; its text is the sentence's."
        )
        return corpus

    async def check_payload_shape(self, corpus: Corpus) -> None:
        """A memory written by the service has exactly the fields the synthetic ones get."""
        assert self.ltm is not None
        result = await self.ltm.add(
            TENANT, NewMemory(scope=Scope(user_id="probe"), text=corpus.texts[0], infer=False)
        )
        (record,) = result.added
        store = self.memory.vector_store
        stored = await asyncio.to_thread(store.get, record.id)
        await asyncio.to_thread(store.delete, record.id)
        made = payload(corpus, 0, "probe", datetime.now(UTC).isoformat())
        if set(stored.payload) != set(made) or stored.payload["data"] != made["data"]:
            raise RuntimeError(
                f"synthetic payload differs from the service's: {sorted(stored.payload)} "
                f"vs {sorted(made)}"
            )
        print(
            "  payload check: a memory added through LongTermMemory.add has the same fields as "
            f"the inserted ones:\n    {', '.join(sorted(made))}"
        )

    # ---- the run ----------------------------------------------------------------------------

    async def run_sizes(self, corpus: Corpus) -> None:
        queries = questions(QUESTIONS)
        print(
            f"  queries: {len(queries)} distinct questions from {len(QUESTION_TEMPLATES)} "
            f"templates (e.g. {queries[0]!r}), embedded at query time"
        )
        print()
        print(
            "== Running (sizes grow cumulatively; batch adds at "
            + ", ".join(f"{s:,}" for s in BATCH_AT)
            + " memories)"
        )
        began = time.perf_counter()
        for size in SIZES:
            await self.populate(corpus, size, began)
            result = await self.measure_searches(queries, size)
            self.searches.append(result)
            print(
                f"  {size:>7,} memories: search p50 {ms(result.service_s, 50):.1f} ms "
                f"(embed {ms(result.embed_s, 50):.1f} + store {ms(result.store_s, 50):.1f})"
                f"  [{time.perf_counter() - began:.0f} s]",
                flush=True,
            )
            if size in BATCH_AT:
                await self.measure_batches(corpus, size)
                worst = max(r.wall_s for r in self.batches if r.size == size)
                print(
                    f"  {size:>7,} memories: batch add of {BATCH}, worst of {BATCH_RUNS} "
                    f"{worst:.2f} s  [{time.perf_counter() - began:.0f} s]",
                    flush=True,
                )
        print()

    async def populate(self, corpus: Corpus, size: int, began: float) -> None:
        """Grow the store to `size` memories, inserting straight into it in chunks."""
        store = self.memory.vector_store
        dims = corpus.vectors.shape[1]
        now = datetime.now(UTC)
        while self.populated < size:
            start, stop = self.populated, min(size, self.populated + INSERT_CHUNK)
            count = stop - start
            picks = self.rng.integers(len(corpus.texts), size=count)
            noise = self.rng.standard_normal((count, dims), dtype=np.float32)
            vectors = corpus.vectors[picks] + noise * np.float32(NOISE / math.sqrt(dims))
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            ages = self.rng.integers(0, 365 * 86_400, size=count)
            payloads = [
                payload(
                    corpus,
                    int(p),
                    user_of(start + k),
                    (now - timedelta(seconds=int(age))).isoformat(),
                )
                for k, (p, age) in enumerate(zip(picks, ages, strict=True))
            ]
            ids = [f"bench-{i:07d}" for i in range(start, stop)]
            await asyncio.to_thread(store.insert, vectors.tolist(), payloads, ids)
            self.populated = stop
            print(
                f"  populating: {stop:>7,} / {SIZES[-1]:,} memories "
                f"[{time.perf_counter() - began:.0f} s]",
                flush=True,
            )
        count = (await asyncio.to_thread(store.col_info))["count"]
        if count != size + self.added:
            raise RuntimeError(f"the store holds {count:,} memories, expected {size:,}")

    async def measure_searches(self, queries: list[str], size: int) -> SizeResult:
        """Sequential searches through LongTermMemory.search, every BREAKDOWN_EVERY-th followed
        by its parts alone (same query, same user), so both see the same machine."""
        assert self.ltm is not None
        service_s: list[float] = []
        embed_s: list[float] = []
        store_s: list[float] = []
        counts: list[int] = []
        by_mode: dict[SearchMode, list[float]] = {mode: [] for mode in SearchMode}
        cpu_s = 0.0
        for i in range(WARMUP_SEARCHES + SEARCHES):
            user = user_of(i * 37)
            query = queries[(i + size) % len(queries)]
            search = MemorySearch(query=query, scope=Scope(user_id=user), limit=SEARCH_LIMIT)
            for mode in (SearchMode.SEMANTIC, SearchMode.KEYWORD):
                other = MemorySearch(query, Scope(user_id=user), limit=SEARCH_LIMIT, mode=mode)
                began = time.perf_counter()
                await self.ltm.search(TENANT, other)
                if i >= WARMUP_SEARCHES:
                    by_mode[mode].append(time.perf_counter() - began)
            cpu = time.process_time()
            began = time.perf_counter()
            hits = await self.ltm.search(TENANT, search)
            took = time.perf_counter() - began
            cpu = time.process_time() - cpu
            if any(h.memory.user_id != user for h in hits):
                raise RuntimeError("a search returned another user's memory")
            if i < WARMUP_SEARCHES:
                continue
            service_s.append(took)
            by_mode[SearchMode.HYBRID].append(took)
            cpu_s += cpu
            counts.append(len(hits))
            if i % BREAKDOWN_EVERY == 0:
                embed, store = await asyncio.to_thread(self.time_parts, query, user)
                embed_s.append(embed)
                store_s.append(store)
        hits = (min(counts), max(counts))
        return SizeResult(size, service_s, cpu_s, embed_s, store_s, hits, by_mode)

    def time_parts(self, query: str, user: str) -> tuple[float, float]:
        """In a worker thread, as mem0 runs them: the query embedding alone, then the store
        search alone with that vector and the service's filters (top_k as mem0 asks)."""
        began = time.perf_counter()
        vector = self.memory.embedding_model.embed(query, "search")
        embed = time.perf_counter() - began
        filters = search_filters(user)
        began = time.perf_counter()
        self.memory.vector_store.search(
            query=query, vectors=vector, top_k=STORE_TOP_K, filters=filters
        )
        return embed, time.perf_counter() - began

    def script_llm(self, facts: Sequence[str]) -> None:
        self.fake.reset()
        self.fake.set_delay(LLM_DELAY_S)
        self.fake.script(*(extraction_reply(f) for f in facts))

    async def measure_batches(self, corpus: Corpus, size: int) -> None:
        for _ in range(BATCH_RUNS):
            self.batch_number += 1
            run = self.batch_number
            offset = 1 + (run - 1) * (BATCH + 1)
            facts = corpus.texts[offset : offset + BATCH]
            self.batches.append(
                await self.batch_run(size, run, facts, corpus.texts[offset + BATCH])
            )
        user = qualify(TENANT, f"batch-{self.batch_number}")
        self.lookups[size] = await asyncio.to_thread(self.time_add_lookup, corpus, user)
        if size == BATCH_AT[-1]:
            self.embedding_cpu = await asyncio.to_thread(self.time_batch_embeddings)

    async def batch_run(self, size: int, run: int, facts: list[str], single_fact: str) -> BatchRun:
        assert self.ltm is not None
        items = [
            NewMemory(scope=Scope(user_id=f"batch-{run}"), text=f"Note about me: {f}", infer=True)
            for f in facts
        ]
        self.script_llm(facts)
        cpu, llm_cpu = time.process_time(), thread_cpu_s(FAKE_LLM_THREAD)
        began = time.perf_counter()
        results = await self.ltm.add_many(TENANT, items)
        wall = time.perf_counter() - began
        cpu, llm_cpu = time.process_time() - cpu, thread_cpu_s(FAKE_LLM_THREAD) - llm_cpu
        calls, most = len(self.fake.requests), self.fake.max_in_flight
        added = sum(1 for r in results if r.value is not None and len(r.value.added) == 1)
        errors = [str(r.error) for r in results if r.error is not None]

        self.script_llm([single_fact])
        one = NewMemory(
            scope=Scope(user_id=f"single-{run}"), text=f"Note about me: {single_fact}", infer=True
        )
        began = time.perf_counter()
        result = await self.ltm.add(TENANT, one)
        single = time.perf_counter() - began
        if len(result.added) != 1:
            errors.append(f"single add stored {len(result.added)} memories")
        self.added += sum(len(r.value.added) for r in results if r.value) + len(result.added)
        self.batch_texts = [i.text or "" for i in items] + facts
        return BatchRun(size, wall, cpu, llm_cpu, added, errors, calls, most, single)

    def time_batch_embeddings(self) -> tuple[float, float]:
        """CPU to embed one batch's texts (message and extracted fact of each item) one at a
        time, as mem0's adds do, and in one batched call."""
        embedder = self.memory.embedding_model
        cpu = time.process_time()
        for text in self.batch_texts:
            embedder.embed(text, "add")
        one_by_one = time.process_time() - cpu
        cpu = time.process_time()
        embedder.embed_batch(self.batch_texts, "add")
        return one_by_one, time.process_time() - cpu

    def time_add_lookup(self, corpus: Corpus, user: str) -> list[float]:
        """mem0's look-up of a user's existing memories before extraction, alone."""
        times = []
        for i in range(ADD_LOOKUP_SAMPLES):
            vector = corpus.vectors[i].tolist()
            began = time.perf_counter()
            self.memory.vector_store.search(
                query=corpus.texts[i], vectors=vector, top_k=ADD_LOOKUP_TOP_K,
                filters={"user_id": user},
            )  # fmt: skip
            times.append(time.perf_counter() - began)
        return times

    # ---- report -----------------------------------------------------------------------------

    def query_plan(self, filters: dict[str, Any]) -> str:
        """SQLite's plan for the store's ranking read under these filters."""
        store = self.memory.vector_store
        where, params = store._where(filters)  # the store's own SQL for them
        rows = (
            store.file.connection()
            .execute(f"EXPLAIN QUERY PLAN SELECT id, vector FROM vectors WHERE {where}", params)  # noqa: S608
            .fetchall()
        )
        return "; ".join(row[-1] for row in rows)

    def print_search(self) -> None:
        print(
            f"== 1. Search latency: one client, sequential; per size {WARMUP_SEARCHES} warm-up + "
            f"{SEARCHES} measured searches\n   through LongTermMemory.search (limit "
            f"{SEARCH_LIMIT}, scoped to one of {USERS} users: user_id + tenant + not expired).\n"
            f"   Breakdown after 1 in {BREAKDOWN_EVERY} searches, same query and user: mem0's "
            "query embedding alone, then\n   EmbeddedVectorStore.search alone with that vector "
            f"(top_k {STORE_TOP_K}, as mem0 over-fetches)"
        )
        rows = []
        for r in self.searches:
            rest = ms(r.service_s, 50) - ms(r.embed_s, 50) - ms(r.store_s, 50)
            target = SEARCH_TARGETS_MS.get(r.size)
            rows.append(
                [
                    f"{r.size:,}",
                    f"{r.size // USERS:,}",
                    fmt(ms(r.service_s, 50)),
                    fmt(ms(r.service_s, 99)),
                    fmt(r.cpu_s / len(r.service_s) * 1000),
                    fmt(ms(r.embed_s, 50)),
                    fmt(ms(r.embed_s, 99)),
                    fmt(ms(r.store_s, 50)),
                    fmt(ms(r.store_s, 99)),
                    fmt(rest),
                    f"{r.hits[0]}-{r.hits[1]}",
                    f"p50 < {target:g}" if target else "-",
                ]
            )
        headers = [
            "memories", "per user", "search p50", "p99", "CPU/search", "embed p50", "p99",
            "store p50", "p99", "rest p50", "hits", "target",
        ]  # fmt: skip
        print(table(headers, rows))
        print(
            "  all in ms. search = LongTermMemory.search end to end; CPU/search = this "
            "process's CPU per search\n  (all threads); embed = mem0's embedder on the query; "
            "store = the store search with that vector;\n  rest = search p50 - embed p50 - "
            "store p50 (mem0's other steps and thread hand-offs, approx.)"
        )
        modes = list(SearchMode)
        print(
            "  The same searches in each mode (each measured search ran SEMANTIC, KEYWORD, then "
            "HYBRID = the\n  default, the search above), LongTermMemory.search end to end, ms:"
        )
        mode_rows = [
            [f"{r.size:,}"] + [fmt(ms(r.by_mode[m], pct)) for m in modes for pct in (50, 99)]
            for r in self.searches
        ]
        mode_headers = ["memories"] + [f"{m.value} {p}" for m in modes for p in ("p50", "p99")]
        print(table(mode_headers, mode_rows))
        plan = self.query_plan(search_filters(user_of(0)))
        print(f"  SQLite plan of the store's ranking read for a search: {plan}")
        print()
        for r in self.searches:
            target = SEARCH_TARGETS_MS.get(r.size)
            p50, p99 = ms(r.service_s, 50), ms(r.service_s, 99)
            self.verdicts.append(
                Verdict(
                    f"search p50, {r.size:,} memories ({r.size // USERS:,}/user)",
                    f"{p50:.1f} ms (p99 {p99:.1f})",
                    f"< {target:g} ms" if target else "-",
                    p50 < target if target else None,
                )
            )

    def print_batches(self) -> None:
        concurrency = self.settings.ltm_batch_concurrency
        waves = math.ceil(BATCH / concurrency)
        print(
            f"== 2. Batch add: LongTermMemory.add_many of {BATCH} texts (infer=True, a new user "
            f"per run), FakeLLM\n   answering each extraction call after "
            f"{LLM_DELAY_S * 1000:.0f} ms; LTM_BATCH_CONCURRENCY={concurrency}, so the floor is "
            f"{waves} waves x {LLM_DELAY_S:g} s\n   = {waves * LLM_DELAY_S:.1f} s. Then one "
            "single add (a new user) for comparison."
        )
        rows = [
            [
                f"{r.size:,}",
                str(i),
                fmt(r.wall_s, 2),
                fmt(r.cpu_s, 2),
                fmt(r.llm_cpu_s, 2),
                f"{r.added}/{BATCH}",
                str(len(r.errors)),
                str(r.llm_calls),
                str(r.most_in_flight),
                fmt(r.single_s, 3),
            ]
            for i, r in enumerate(self.batches, 1)
        ]
        headers = [
            "memories in store", "run", f"batch of {BATCH} s", "CPU s", "of which LLM server",
            "items added", "errors",
            "LLM calls", "most in flight", "single add s",
        ]  # fmt: skip
        print(table(headers, rows))
        for r in self.batches:
            for error in r.errors[:3]:
                print(f"  error: {error}")
        lookups = ", ".join(
            f"{ms(times, 50):.1f} ms at {size:,}" for size, times in self.lookups.items()
        )
        print(
            "  mem0's look-up of the user's existing memories before each extraction "
            f"(store search filtered\n  by user_id alone, top_k {ADD_LOOKUP_TOP_K}), p50: "
            f"{lookups} memories"
        )
        plan = self.query_plan({"user_id": qualify(TENANT, "batch-1")})
        print(f"  SQLite plan of that look-up: {plan}")
        one_by_one, batched = self.embedding_cpu
        print(
            f"  MiniLM CPU for one batch's {len(self.batch_texts)} texts (each add embeds its "
            f"message, then the extracted fact),\n  in one thread: {one_by_one:.2f} s one at a "
            f"time (as mem0 does), {batched:.2f} s as one embed_batch call"
        )
        print(
            "  CPU s = this process's CPU during the batch (all threads); LLM server = FakeLLM's "
            "thread, which\n  runs in this process here but elsewhere in production"
        )
        print()
        for size in BATCH_AT:
            runs = [r for r in self.batches if r.size == size]
            worst = max(r.wall_s for r in runs)
            complete = all(r.added == BATCH and not r.errors for r in runs)
            self.verdicts.append(
                Verdict(
                    f"batch add of {BATCH}, {size:,} memories in store (worst of {len(runs)})",
                    f"{worst:.2f} s",
                    f"< {BATCH_TARGET_S:g} s",
                    complete and worst < BATCH_TARGET_S,
                )
            )
        singles = " / ".join(
            f"{sorted(r.single_s for r in self.batches if r.size == s)[BATCH_RUNS // 2]:.2f}"
            for s in BATCH_AT
        )
        self.verdicts.append(
            Verdict(
                "single add, " + " / ".join(f"{s:,}" for s in BATCH_AT) + " memories (median)",
                f"{singles} s",
            )
        )

    def print_process(self, total_s: float) -> None:
        print("== 3. This process")
        for label, mb in self.rss:
            print(f"  RSS {label:<48} {mb:7.1f} MB")
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"  total run time {total_s:.0f} s; load average after the run: {load}")
        print()
        for label, mb in self.rss:
            self.verdicts.append(Verdict(f"RSS {label}", f"{mb:.0f} MB"))
        self.verdicts.append(
            Verdict(
                "total run time",
                f"{total_s:.0f} s",
                f"< {RUN_BUDGET_S / 60:g} min (budget)",
                total_s < RUN_BUDGET_S,
            )
        )

    def print_summary(self) -> None:
        print("== Summary")
        marks: dict[bool | None, str] = {True: "yes", False: "NO", None: "-"}
        rows = [[v.measure, v.figure, v.target, marks[v.met]] for v in self.verdicts]
        print(table(["measure", "figure", "target", "met?"], rows))


def print_machine(redis_url: str) -> None:
    from importlib.metadata import version

    print("== Machine")
    print(
        f"  cores: {os.cpu_count()} logical / {psutil.cpu_count(logical=False)} physical "
        f"({cpu_model()}), RAM {psutil.virtual_memory().total / 2**30:.1f} GiB"
    )
    print(
        f"  Python {platform.python_version()}, numpy {np.__version__}, mem0ai "
        f"{version('mem0ai')}, SQLite {__import__('sqlite3').sqlite_version}"
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"  load average before the run: {load}")
    print(f"  Redis (event bus only) at {redis_url}; LLM: FakeLLM in this process")
    print()


def main() -> int:
    global SIZES, BATCH_AT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=lambda text: tuple(sorted(int(n) for n in text.split(","))),
        default=SIZES,
        help="store sizes, comma-separated (default 1000,10000,100000)",
    )
    SIZES = parser.parse_args().sizes
    BATCH_AT = tuple(sorted({SIZES[0], SIZES[-1]}))
    started = time.perf_counter()
    redis = BenchRedis()
    fake = FakeLLM()
    try:
        with tempfile.TemporaryDirectory(prefix="maas-ltm-bench-") as data_dir:
            url = redis.start()
            fake.start()
            print_machine(url)
            settings = embedded_ltm_settings(
                data_dir, url, fake.base_url, embedding_provider="local"
            )
            bench = Bench(settings, fake)
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(bench.main())
            bench.print_process(time.perf_counter() - started)
            bench.print_summary()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        fake.stop()
        redis.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
