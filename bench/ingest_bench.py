"""Ingestion benchmark: verbatim memories/s through `add_many` in batches of 50, and a batch of
50 extraction adds against an LLM that takes 200 ms, each as main does it and as it is now.

    uv run python -m bench.ingest_bench [--memories 2000]

Three paths, on the same engine, switched per batch, their batches taking turns so all see
the same machine:
- "main": as main has it: a batch's texts primed in one encode on one core, then each item
  mem0's own add (two write transactions per memory), mem0's concurrent embeds (extraction)
  each a provider call of its own;
- "merged": concurrent embeds merged into batched calls (services/embeddings/micro_batch.py)
  and the priming split into one encode per core, each verbatim add still mem0's own;
- "now": as it is now: verbatim adds of one text also written together, in one insert and
  one history write (services/verbatim_batch.py).
Not switchable here: the SQLite writer lock (stores/sqlite_files.py), the extraction gate
(services/ltm.py) and single-threaded BLAS.

Built as the app builds it (`build_ltm`: embedded store, local MiniLM) on a throwaway
redis-server and the test suite's FakeLLM; data in a temporary directory removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from statistics import mean
from typing import Any

import uvloop
from redis.asyncio import Redis

from bench.ltm_corpus import memory_sentences
from bench.processes import BenchRedis, embedded_ltm_settings
from bench.stats import table
from maas.app import WORKER_THREADS, llm_config
from maas.ltm_wiring import build_ltm
from maas.settings import Settings
from services.llm import LLMGateway
from services.ltm import ItemResult, LongTermMemory
from services.ltm_model import AddResult, NewMemory, Scope
from services.mem0_engine import GuardedEmbedder
from stores.event_bus import RedisEventBus
from tests.support.fake_llm import FakeLLM

TENANT = "bench"
BATCH = 50
VERBATIM_TARGET = 150.0  # memories/s
INFER_TARGET_S = 2.0
LLM_DELAY_S = 0.2
INFER_RUNS = 3
# main: as main has it; merged: with concurrent embeds merged and priming on every core, but
# each verbatim add still mem0's own; now: as it is now.
PATHS = ("main", "merged", "now")


class CountingEncoder:
    """The MiniLM encoder, counting its encode calls and the texts they carried."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0
        self.texts = 0

    def encode(self, texts: list[str]) -> Any:
        self.calls += 1
        self.texts += len(texts)
        return self.inner.encode(texts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class Tally:
    memories: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    encodes: int = 0
    batches: int = 0
    infer_walls: list[float] = field(default_factory=list)

    def rate(self) -> float:
        return self.memories / self.wall_s if self.wall_s else 0.0


class Variants:
    """Switches the engine's embedder, and the add path, between main's behaviour and now's."""

    def __init__(self, embedder: GuardedEmbedder) -> None:
        self.embedder = embedder
        self.now = (embedder.batcher, embedder.cores)

    async def add_many(
        self, path: str, ltm: LongTermMemory, items: list[NewMemory]
    ) -> list[ItemResult[AddResult]]:
        self.embedder.batcher, self.embedder.cores = (None, 1) if path == "main" else self.now
        if path == "now":
            return await ltm.add_many(TENANT, items)
        return await main_add_many(ltm, items)


async def main_add_many(ltm: LongTermMemory, items: list[NewMemory]) -> list[ItemResult[AddResult]]:
    """add_many as main has it: the texts primed, then each item mem0's own `add`."""
    plans = [ltm._plan_add(TENANT, item) for item in items]
    async with ltm._primed([key for plan in plans for key in plan.embeds]):
        return await ltm._each(plans, lambda plan: ltm._add(TENANT, plan))


class Bench:
    def __init__(self, settings: Settings, fake: FakeLLM, memories: int) -> None:
        self.settings = settings
        self.fake = fake
        self.memories = memories
        self.tallies = {path: Tally() for path in PATHS}

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="maas"))
        assert self.settings.redis_url is not None
        redis = Redis.from_url(self.settings.redis_url)
        events = RedisEventBus(redis)
        llm = LLMGateway(llm_config(self.settings))
        ltm, engine = build_ltm(self.settings, events, llm, loop)
        try:
            await engine.start()
            guarded = (await engine.get()).embedding_model
            self.variants = Variants(guarded)
            embedder = guarded.inner
            self.counter = CountingEncoder(embedder.encoder)
            embedder.encoder = self.counter
            texts = memory_sentences(self.memories + len(PATHS) * BATCH * (INFER_RUNS + 1))
            await self.verbatim(ltm, texts[: self.memories])
            await self.infer(ltm, texts[self.memories :])
        finally:
            await events.close()
            await asyncio.to_thread(engine.close)
            await llm.close()
            await redis.aclose()

    async def run(
        self, path: str, ltm: LongTermMemory, items: list[NewMemory]
    ) -> tuple[float, float, int]:
        """Add one batch by `path`; its wall and CPU seconds (this process, FakeLLM included)
        and the encodes it made."""
        tally = self.tallies[path]
        encodes, cpu, began = self.counter.calls, time.process_time(), time.perf_counter()
        results = await self.variants.add_many(path, ltm, items)
        wall = time.perf_counter() - began
        errors = [r.error for r in results if r.error is not None]
        if errors:
            raise RuntimeError(f"{path}: {len(errors)} items failed, e.g. {errors[0]}")
        cpu = time.process_time() - cpu
        tally.memories += sum(len(r.value.added) for r in results if r.value)
        tally.wall_s += wall
        tally.cpu_s += cpu
        tally.encodes += self.counter.calls - encodes
        tally.batches += 1
        return wall, cpu, self.counter.calls - encodes

    async def verbatim(self, ltm: LongTermMemory, texts: list[str]) -> None:
        print(f"== Verbatim: {len(texts):,} memories, batches of {BATCH}, the paths taking turns")
        for n, start in enumerate(range(0, len(texts), BATCH)):
            items = [
                NewMemory(scope=Scope(user_id=f"u{k % 7}"), text=t, infer=False)
                for k, t in enumerate(texts[start : start + BATCH])
            ]
            await self.run(PATHS[n % len(PATHS)], ltm, items)
        rows = []
        for path, t in self.tallies.items():
            rows.append(
                [
                    path,
                    f"{t.memories:,}",
                    f"{t.rate():.0f}",
                    f"{t.cpu_s / max(t.memories, 1) * 1000:.1f}",
                    f"{t.encodes / max(t.batches, 1):.1f}",
                ]
            )
        print(table(["path", "memories", "memories/s", "CPU ms/memory", "encodes/batch"], rows))
        before, after = self.tallies["main"], self.tallies["now"]
        print(f"  now/main: {after.rate() / max(before.rate(), 1e-9):.2f}x the throughput")
        self.verbatim_rates = (before.rate(), after.rate())
        print()

    async def infer(self, ltm: LongTermMemory, texts: list[str]) -> None:
        print(
            f"== Extraction: a batch of {BATCH} adds (infer=True, a new user each run), FakeLLM "
            f"answering after {LLM_DELAY_S * 1000:.0f} ms; LTM_BATCH_CONCURRENCY="
            f"{self.settings.ltm_batch_concurrency}"
        )
        walls: dict[str, list[tuple[float, float, int]]] = {path: [] for path in PATHS}
        for run in range(INFER_RUNS + 1):  # the first pair warms the LLM client up
            for path in PATHS[::-1] if run % 2 else PATHS:
                facts = texts[:BATCH]
                texts = texts[BATCH:]
                self.fake.reset()
                self.fake.set_delay(LLM_DELAY_S)
                self.fake.script(*(json.dumps({"memory": [{"text": f}]}) for f in facts))
                items = [
                    NewMemory(
                        scope=Scope(user_id=f"{path}-{run}"), text=f"Note about me: {f}", infer=True
                    )
                    for f in facts
                ]
                measured = await self.run(path, ltm, items)
                if run:
                    walls[path].append(measured)
        rows = [
            [p, *(f"{w:.2f} ({c:.2f})" for w, c, _ in ws), f"{mean(e for *_, e in ws):.0f}"]
            for p, ws in walls.items()
        ]
        headers = [f"run {i + 1} s (CPU s)" for i in range(INFER_RUNS)]
        print(table(["path", *headers, "encodes/batch"], rows))
        print("  CPU: this process, FakeLLM's server thread included")
        self.infer_worst = {p: max(w for w, *_ in ws) for p, ws in walls.items()}
        print()

    def summary(self) -> None:
        before, after = self.verbatim_rates
        rows = [
            [
                "verbatim memories/s (add_many, batches of 50)",
                f"{before:.0f}",
                f"{after:.0f}",
                f">= {VERBATIM_TARGET:.0f}",
                "yes" if after >= VERBATIM_TARGET else "NO",
            ],
            [
                f"batch of {BATCH} extraction adds, worst of {INFER_RUNS}",
                f"{self.infer_worst['main']:.2f} s",
                f"{self.infer_worst['now']:.2f} s",
                f"< {INFER_TARGET_S:g} s",
                "yes" if self.infer_worst["now"] < INFER_TARGET_S else "NO",
            ],
        ]
        print("== Summary")
        print(table(["measure", "main", "now", "target", "met?"], rows))
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"  load average after the run: {load} on {os.cpu_count()} cores")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=2000)
    args = parser.parse_args()
    redis, fake = BenchRedis(), FakeLLM()
    try:
        with tempfile.TemporaryDirectory(prefix="maas-ingest-bench-") as data_dir:
            url = redis.start()
            fake.start()
            load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"load average before the run: {load} on {os.cpu_count()} cores\n")
            settings = embedded_ltm_settings(
                data_dir, url, fake.base_url, embedding_provider="local"
            )
            bench = Bench(settings, fake, args.memories)
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(bench.main())
            bench.summary()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        fake.stop()
        redis.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
