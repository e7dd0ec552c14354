"""Which fusion of semantic and keyword results ranks best: recall@10 (all / any evidence) of
several fusions over the SAME candidate lists, on bench/recall_corpus.py's corpus, in one run.

    uv run python -m bench.fusion_check [--quick | --users N]

It needs bench/recall_corpus.py, recall_metrics.py and retrieval_bench.py (the recall branch).

Every turn is stored as bench/retrieval_bench.py stores it; then for each question the embedded
store's semantic top 60 and keyword top 60 (the service's over-fetch) within the question's user
are fetched once, and each fusion ranks them:
- semantic / keyword: one list alone;
- mem0 boost: mem0's own hybrid (`score_and_rank`): only semantic candidates, boosted by BM25;
- blend (ours, services/search_fusion.py): the union, (semantic + sigmoid BM25) / 2, keyword-only
  hits with their exact similarity;
- rrf: reciprocal-rank fusion over the union, 1/(60 + rank) summed;
- max-norm blend: the union, BM25 divided by the list's best, then the mean.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from collections.abc import Callable
from typing import Any

from mem0.utils.scoring import score_and_rank

from bench.processes import BenchRedis, embedded_ltm_settings
from bench.recall_corpus import build_corpus
from bench.recall_metrics import Outcome, recall
from bench.retrieval_bench import FULL, QUICK, ingest
from maas.app import llm_config
from maas.ltm_wiring import build_ltm
from services.llm import LLMGateway
from services.ltm_model import Scope, SearchMode
from services.search_fusion import Found, keyword_score, rank
from stores.event_bus import RedisEventBus
from stores.keyword_terms import terms
from tests.support.fake_llm import FakeLLM

os.environ.setdefault("MEM0_TELEMETRY", "False")
FETCH = 60
LIMIT = 10
Lists = tuple[list[Found], list[Found], dict[str, float], int]


def ours(mode: SearchMode) -> Callable[[Lists], list[str]]:
    def fuse(lists: Lists) -> list[str]:
        sem, kw, sim, n = lists
        return [r.id for r in rank(mode, sem, kw, n, limit=LIMIT, similarity=sim)]

    return fuse


def mem0_boost(lists: Lists) -> list[str]:
    sem, kw, _, n = lists
    bm25 = {h.id: keyword_score(h.score, n) for h in kw}
    candidates = [{"id": h.id, "score": h.score, "payload": {}} for h in sem]
    return [r["id"] for r in score_and_rank(candidates, bm25, {}, 0.0, LIMIT)]


def rrf(lists: Lists) -> list[str]:
    sem, kw, _, _ = lists
    score: dict[str, float] = {}
    for hits in (sem, kw):
        for r, h in enumerate(hits, 1):
            score[h.id] = score.get(h.id, 0.0) + 1 / (60 + r)
    return sorted(score, key=lambda i: -score[i])[:LIMIT]


def max_norm(lists: Lists) -> list[str]:
    sem, kw, sim, _ = lists
    best = max((h.score for h in kw), default=1.0) or 1.0
    s = {**sim, **{h.id: h.score for h in sem}}
    k = {h.id: h.score / best for h in kw}
    ids = set(s) | set(k)
    return sorted(ids, key=lambda i: -(s.get(i, 0.0) + k.get(i, 0.0)))[:LIMIT]


FUSIONS: dict[str, Callable[[Lists], list[str]]] = {
    "semantic": ours(SearchMode.SEMANTIC),
    "keyword": ours(SearchMode.KEYWORD),
    "mem0 boost": mem0_boost,
    "blend (ours)": ours(SearchMode.HYBRID),
    "rrf": rrf,
    "max-norm blend": max_norm,
}


async def run(size: dict[str, int]) -> None:
    corpus = build_corpus(**size)
    redis, fake = BenchRedis(), FakeLLM()
    url = redis.start()
    fake.start()
    try:
        with tempfile.TemporaryDirectory(prefix="maas-fusion-check-") as data_dir:
            settings = embedded_ltm_settings(data_dir, url, fake.base_url)
            from redis.asyncio import Redis

            client = Redis.from_url(url)
            events = RedisEventBus(client)
            llm = LLMGateway(llm_config(settings))
            ltm, engine = build_ltm(settings, events, llm, asyncio.get_running_loop())
            try:
                await engine.start()
                memory = await engine.get()
                stored, took = await ingest(ltm, "fusion", corpus, "local")
                print(f"{stored:,} memories ingested in {took:.0f} s")
                store = memory.vector_store
                dia: dict[str, str] = {}
                outcomes: dict[str, list[Outcome]] = {name: [] for name in FUSIONS}
                for q in corpus.questions:
                    scope = Scope(user_id=q.user)
                    filters: dict[str, Any] = ltm._filters("fusion", scope, None, None)
                    vector = memory.embedding_model.embed(q.text, "search")
                    sem_hits = store.search(q.text, vector, top_k=FETCH, filters=filters)
                    kw_hits = store.keyword_search(q.text, top_k=FETCH, filters=filters)
                    for h in (*sem_hits, *kw_hits):
                        dia[h.id] = str(h.payload.get("metadata", {}).get("dia_id"))
                    sem = [Found(h.id, h.payload, h.score or 0.0) for h in sem_hits]
                    kw = [Found(h.id, h.payload, h.score or 0.0) for h in kw_hits]
                    seen = {h.id for h in sem}
                    sim = store.similarities(vector, [h.id for h in kw if h.id not in seen])
                    lists = (sem, kw, sim, len(terms(q.text)))
                    for name, fuse in FUSIONS.items():
                        found = [dia[i] for i in fuse(lists)]
                        outcomes[name].append(Outcome(q.kind, found, q.evidence))
                print(f"{len(corpus.questions)} questions; recall@{LIMIT} (% of questions)")
                print(f"  {'fusion':<16} {'all evidence':>12} {'any evidence':>12}")
                for name, done in outcomes.items():
                    r = recall(done)
                    print(f"  {name:<16} {r.all[LIMIT] * 100:>12.1f} {r.any[LIMIT] * 100:>12.1f}")
            finally:
                await events.close()
                await asyncio.to_thread(engine.close)
                await llm.close()
                await client.aclose()
    finally:
        fake.stop()
        redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 short conversations")
    parser.add_argument("--users", type=int, help="conversations of the full size (16)")
    args = parser.parse_args()
    size = dict(QUICK if args.quick else FULL)
    if args.users:
        size["users"] = args.users
    asyncio.run(run(size))


if __name__ == "__main__":
    main()
