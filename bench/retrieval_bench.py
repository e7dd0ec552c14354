"""Retrieval quality: recall@1/5/10 per question type for each search mode and embedder, beside
search p50/p99 and ingestion throughput, in one run.

    uv run python -m bench.retrieval_bench [--quick] [--embedder local [--embedder local:DIR]]

The corpus is bench/recall_corpus.py's (constructed, seeded; its docstring says how and what it
favours): by default 16 conversations of 25 sessions x 25 turns, 10,000 turns, 320 questions.
Every turn is stored verbatim through LongTermMemory.add_many (batches of 50, infer=False, each
conversation its own user, the dialog id in the memory's metadata); then every question is
searched within its conversation's user in each mode (limit 10) and its hits' dialog ids are
compared with its evidence: recall "all" counts a question when every evidence turn is in the
top k, "any" when one is.

The LTM service runs in this process, built as the app builds it (`build_ltm`: the embedded
vector store), on a throwaway redis-server (REDIS_URL when set; only the event bus uses it) and
the test suite's FakeLLM (never called: infer is off). Each embedder gets its own temporary data
directory. Embedders: `local` (the bundled all-MiniLM-L6-v2) and `local:DIR` (another
sentence-transformers BERT model in a local folder); the others need a network or a download.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import uvloop
from redis.asyncio import Redis

from bench.processes import BenchRedis, embedded_ltm_settings
from bench.recall_corpus import QUESTION_TYPES, Corpus, build_corpus
from bench.recall_metrics import CUTOFFS, Outcome, Recall, recall_by_kind
from bench.stats import percentile, table
from bench.stm_bench import cpu_model
from maas.app import WORKER_THREADS, llm_config
from maas.ltm_wiring import build_ltm
from services.llm import LLMGateway
from services.ltm import LongTermMemory
from services.ltm_model import MemorySearch, NewMemory, Scope, SearchMode
from stores.event_bus import RedisEventBus
from tests.support.fake_llm import FakeLLM

BATCH = 50
SEARCH_LIMIT = 10
WARMUP_SEARCHES = 10
MODES = (SearchMode.SEMANTIC, SearchMode.KEYWORD, SearchMode.HYBRID)
HYBRID_TARGET = 1.4  # hybrid recall@10 (all evidence) over semantic-only
P50_TARGET_MS = 25.0  # hybrid search p50 on the embedded store ...
P50_TARGET_AT = 10_000  # ... at this many memories
FULL = {"users": 16, "sessions": 25, "turns": 25}
QUICK = {"users": 2, "sessions": 8, "turns": 16}


@dataclass(frozen=True)
class ModeResult:
    mode: SearchMode
    outcomes: list[Outcome]
    latencies_s: list[float]

    def p_ms(self, pct: float) -> float:
        return percentile(self.latencies_s, pct) * 1000


@dataclass(frozen=True)
class EmbedderResult:
    embedder: str
    memories: int
    ingest_s: float
    modes: list[ModeResult]

    @property
    def throughput(self) -> float:
        return self.memories / self.ingest_s


def embedder_settings(spec: str) -> dict[str, str | None]:
    """Settings fields for an --embedder value."""
    provider, _, model = spec.partition(":")
    if provider != "local":
        raise SystemExit(f"--embedder {spec!r}: only local and local:DIR run offline")
    if model and not Path(model).is_dir():
        raise SystemExit(f"--embedder {spec!r}: {model} is not a folder")
    return {"embedding_provider": "local", "embedding_model": model or None}


async def run_embedder(
    spec: str, corpus: Corpus, redis_url: str, llm_url: str, tenant: str
) -> EmbedderResult:
    with tempfile.TemporaryDirectory(prefix="maas-recall-bench-") as data_dir:
        settings = embedded_ltm_settings(data_dir, redis_url, llm_url, **embedder_settings(spec))
        loop = asyncio.get_running_loop()
        redis = Redis.from_url(redis_url, health_check_interval=30)
        events = RedisEventBus(redis)
        llm = LLMGateway(llm_config(settings))
        ltm, engine = build_ltm(settings, events, llm, loop)
        try:
            began = time.perf_counter()
            await engine.start()
            memory = await engine.get()
            print(
                f"  [{spec}] engine built in {time.perf_counter() - began:.1f} s (store "
                f"{type(memory.vector_store).__name__}, embedder "
                f"{type(memory.embedding_model.inner).__name__})",
                flush=True,
            )
            gc.collect()
            memories, ingest_s = await ingest(ltm, tenant, corpus, spec)
            await warm_up(ltm, tenant, corpus)
            modes = [await search_all(ltm, tenant, corpus, mode) for mode in MODES]
            return EmbedderResult(spec, memories, ingest_s, modes)
        finally:
            await events.close()
            await asyncio.to_thread(engine.close)
            await llm.close()
            await redis.aclose()


async def ingest(ltm: LongTermMemory, tenant: str, corpus: Corpus, spec: str) -> tuple[int, float]:
    """Every turn through add_many, batches of 50 in order; (memories stored, seconds)."""
    items = [
        NewMemory(
            scope=Scope(user_id=c.user), text=t.text, infer=False, metadata={"dia_id": t.dia_id}
        )
        for c in corpus.conversations
        for t in c.turns
    ]
    stored = 0
    began = time.perf_counter()
    for start in range(0, len(items), BATCH):
        results = await ltm.add_many(tenant, items[start : start + BATCH])
        for r in results:
            if r.error is not None:
                raise RuntimeError(f"add failed: {r.error}")
            stored += len(r.value.added)
        if (start // BATCH) % 40 == 39:
            print(f"  [{spec}] ingested {stored:,} / {len(items):,}", flush=True)
    took = time.perf_counter() - began
    if stored != len(items):
        raise RuntimeError(f"stored {stored} memories of {len(items)} turns")
    return stored, took


async def warm_up(ltm: LongTermMemory, tenant: str, corpus: Corpus) -> None:
    for q in corpus.questions[:WARMUP_SEARCHES]:
        for mode in MODES:
            await ltm.search(tenant, _search(q.text, q.user, mode))


async def search_all(
    ltm: LongTermMemory, tenant: str, corpus: Corpus, mode: SearchMode
) -> ModeResult:
    outcomes: list[Outcome] = []
    latencies: list[float] = []
    for q in corpus.questions:
        began = time.perf_counter()
        hits = await ltm.search(tenant, _search(q.text, q.user, mode))
        latencies.append(time.perf_counter() - began)
        if any(h.memory.user_id != q.user for h in hits):
            raise RuntimeError("a search returned another conversation's memory")
        found = [str(h.memory.metadata.get("dia_id")) for h in hits]
        outcomes.append(Outcome(q.kind, found, q.evidence))
    return ModeResult(mode, outcomes, latencies)


def _search(query: str, user: str, mode: SearchMode) -> MemorySearch:
    return MemorySearch(query=query, scope=Scope(user_id=user), limit=SEARCH_LIMIT, mode=mode)


# ---- printing -------------------------------------------------------------------------------


def pct(value: float) -> str:
    return f"{value * 100:.1f}"


def print_embedder(result: EmbedderResult) -> list[tuple[str, str, str, bool]]:
    """The embedder's table; returns its verdicts (measure, figure, target, met)."""
    print(f"== Embedder {result.embedder}")
    print(
        f"  ingestion: {result.memories:,} memories in {result.ingest_s:.1f} s = "
        f"{result.throughput:,.0f} memories/s (add_many, batches of {BATCH}, infer=False)"
    )
    by_mode = {m.mode: recall_by_kind(m.outcomes, QUESTION_TYPES) for m in result.modes}
    headers = ["question type", "mode", "n"]
    headers += [f"R@{k} {which}" for k in CUTOFFS for which in ("all", "any")]
    rows = []
    for kind in by_mode[MODES[0]]:
        for mode in MODES:
            r = by_mode[mode][kind]
            cells = [pct(getattr(r, which)[k]) for k in CUTOFFS for which in ("all", "any")]
            rows.append([kind, mode.value, str(r.questions), *cells])
    print("  recall, % of questions (all: every evidence turn in the top k; any: one of them)")
    print("  " + table(headers, rows).replace("\n", "\n  "))
    print()
    rows = [
        [m.mode.value, str(len(m.latencies_s)), f"{m.p_ms(50):.1f}", f"{m.p_ms(99):.1f}"]
        for m in result.modes
    ]
    print(f"  search latency through LongTermMemory.search ({result.memories:,} memories)")
    print("  " + table(["mode", "searches", "p50 ms", "p99 ms"], rows).replace("\n", "\n  "))
    print()
    return verdicts(result, by_mode)


def verdicts(
    result: EmbedderResult, by_mode: dict[SearchMode, dict[str, Recall]]
) -> list[tuple[str, str, str, bool]]:
    name = result.embedder
    semantic = by_mode[SearchMode.SEMANTIC]["all types"]
    hybrid = by_mode[SearchMode.HYBRID]["all types"]
    out = []
    for which in ("all", "any"):
        base, mixed = getattr(semantic, which)[10], getattr(hybrid, which)[10]
        ratio = mixed / base if base else float("nan")
        out.append(
            (
                f"[{name}] hybrid / semantic recall@10 ({which} evidence)",
                f"{pct(mixed)} / {pct(base)} = {ratio:.2f}x",
                f">= {HYBRID_TARGET}x" if which == "all" else "-",
                ratio >= HYBRID_TARGET,
            )
        )
    p50 = next(m for m in result.modes if m.mode is SearchMode.HYBRID).p_ms(50)
    at_scale = result.memories >= P50_TARGET_AT
    out.append(
        (
            f"[{name}] hybrid search p50 at {result.memories:,} memories",
            f"{p50:.1f} ms",
            f"< {P50_TARGET_MS:g} ms at {P50_TARGET_AT:,}" if at_scale else "- (below 10,000)",
            p50 < P50_TARGET_MS,
        )
    )
    out.append(
        (
            f"[{name}] ingestion throughput",
            f"{result.throughput:,.0f} memories/s",
            "-",
            True,
        )
    )
    return out


def print_summary(rows: list[tuple[str, str, str, bool]]) -> None:
    print("== Summary")
    body = [
        [m, f, t, ("yes" if met else "NO") if t.startswith((">", "<")) else "-"]
        for m, f, t, met in rows
    ]
    print(table(["measure", "figure", "target", "met?"], body))


def print_setup(corpus: Corpus, redis_url: str, size: dict[str, int]) -> None:
    from collections import Counter
    from importlib.metadata import version

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print("== Machine")
    print(f"  {os.cpu_count()} logical cores ({cpu_model()}); load average before: {load}")
    print(f"  mem0ai {version('mem0ai')}; Redis (event bus only) at {redis_url}")
    print()
    counts = Counter(q.kind for q in corpus.questions)
    print("== Corpus (bench/recall_corpus.py, constructed and seeded)")
    print(
        f"  {len(corpus.conversations)} conversations x {size['sessions']} sessions x "
        f"{size['turns']} turns = {corpus.turn_count:,} memories; {len(corpus.questions)} "
        "questions: " + ", ".join(f"{counts[k]} {k}" for k in QUESTION_TYPES)
    )
    print(
        f"  search modes: {', '.join(m.value for m in MODES)}, limit {SEARCH_LIMIT}, "
        "each question within its conversation's user"
    )
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 short conversations, < 1 min")
    parser.add_argument(
        "--embedder",
        action="append",
        help="local (default) or local:DIR; repeat for several",
    )
    args = parser.parse_args(argv)
    specs = args.embedder or ["local"]
    for spec in specs:
        embedder_settings(spec)  # fail before anything starts
    size = QUICK if args.quick else FULL
    corpus = build_corpus(**size)
    started = time.perf_counter()
    redis = BenchRedis()
    fake = FakeLLM()
    summary: list[tuple[str, str, str, bool]] = []
    try:
        url = redis.start()
        fake.start()
        print_setup(corpus, url, size)
        results = []
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            # As the app's lifespan does: mem0 runs every step in a worker thread.
            runner.get_loop().set_default_executor(
                ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="maas")
            )
            for i, spec in enumerate(specs):
                results.append(
                    runner.run(run_embedder(spec, corpus, url, fake.base_url, f"recall{i}"))
                )
        print()
        for result in results:
            summary.extend(print_embedder(result))
        print_summary(summary)
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"\ntotal run time {time.perf_counter() - started:.0f} s; load average after: {load}")
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        fake.stop()
        redis.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
