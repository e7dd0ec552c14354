"""Which fusion of semantic and keyword results ranks best: recall@10 (all / any evidence) of
several fusions over the SAME candidate lists, on bench/recall_corpus.py's corpus, in one run.

    uv run python -m bench.fusion_check [--quick | --users N]

It needs bench/recall_corpus.py, recall_metrics.py and retrieval_bench.py (the recall branch).

Every turn is stored as bench/retrieval_bench.py stores it; then for each question the embedded
store's semantic and keyword top DEPTH (200) within the question's user are fetched once, and
each fusion ranks them — from the top 60 of each (the service's over-fetch) unless it says
otherwise:
- semantic / keyword: one list alone;
- mem0 boost: mem0's own hybrid (`score_and_rank`): only semantic candidates, boosted by BM25;
- ours (services/search_fusion.py, HYBRID): reciprocal-rank fusion over the union with its
  RRF_K; "@200": the same from the top 200 of each;
- blend w=x: the union, x * semantic + (1 - x) * sigmoid BM25, keyword-only hits with their
  exact similarity (w=0.5, the mean, was HYBRID until RRF measured better);
- max: the union, max(semantic, sigmoid BM25);
- rrf k=K: reciprocal-rank fusion over the union, 1/(K + rank) summed (the classic K is 60);
  "x0.5": one list's terms weighted by half;
- max-norm blend: the union, BM25 divided by the list's best, then the mean;
- min-max blend: the union, each score min-max normalised over the candidates, then the mean.
Figures per question type, and for two halves of the conversations (even / odd users): a fusion
chosen on one half should hold on the other, or it was fitted to these questions.
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
from bench.recall_corpus import QUESTION_TYPES, build_corpus
from bench.recall_metrics import Outcome, recall, recall_by_kind
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
DEPTH = 200
LIMIT = 10
Lists = tuple[list[Found], list[Found], dict[str, float], int]


def ours(mode: SearchMode, depth: int = FETCH) -> Callable[[Lists], list[str]]:
    def fuse(lists: Lists) -> list[str]:
        sem, kw, sim, n = lists
        found = rank(mode, sem[:depth], kw[:depth], n, limit=LIMIT, similarity=sim)
        return [r.id for r in found]

    return fuse


def _parts(lists: Lists) -> tuple[dict[str, float], dict[str, float]]:
    """(semantic, sigmoid keyword) of the union of the top FETCH of each list; 0 where absent."""
    sem, kw, sim, n = lists
    s = {h.id: max(0.0, h.score) for h in sem[:FETCH]}
    k = {h.id: keyword_score(h.score, n) for h in kw[:FETCH]}
    for id_ in k:
        s.setdefault(id_, sim.get(id_, 0.0))
    return s, k


def _best(score: dict[str, float]) -> list[str]:
    return sorted(score, key=lambda i: (-score[i], i))[:LIMIT]


def weighted(w: float) -> Callable[[Lists], list[str]]:
    def fuse(lists: Lists) -> list[str]:
        s, k = _parts(lists)
        return _best({i: w * s[i] + (1 - w) * k.get(i, 0.0) for i in s})

    return fuse


def maximum(lists: Lists) -> list[str]:
    s, k = _parts(lists)
    return _best({i: max(s[i], k.get(i, 0.0)) for i in s})


def min_max(lists: Lists) -> list[str]:
    s, k = _parts(lists)

    def scaled(part: dict[str, float]) -> dict[str, float]:
        low, high = min(part.values(), default=0.0), max(part.values(), default=0.0)
        span = (high - low) or 1.0
        return {i: (v - low) / span for i, v in part.items()}

    s, k = scaled(s), scaled(k)
    return _best({i: (s[i] + k.get(i, 0.0)) / 2 for i in s})


def mem0_boost(lists: Lists) -> list[str]:
    sem, kw, _, n = lists
    sem, kw = sem[:FETCH], kw[:FETCH]
    bm25 = {h.id: keyword_score(h.score, n) for h in kw}
    candidates = [{"id": h.id, "score": h.score, "payload": {}} for h in sem]
    return [r["id"] for r in score_and_rank(candidates, bm25, {}, 0.0, LIMIT)]


def rrf(
    k: int, depth: int = FETCH, weights: tuple[float, float] = (1.0, 1.0)
) -> Callable[[Lists], list[str]]:
    def fuse(lists: Lists) -> list[str]:
        sem, kw, _, _ = lists
        score: dict[str, float] = {}
        for hits, weight in zip((sem[:depth], kw[:depth]), weights, strict=True):
            for r, h in enumerate(hits, 1):
                score[h.id] = score.get(h.id, 0.0) + weight / (k + r)
        return _best(score)

    return fuse


def max_norm(lists: Lists) -> list[str]:
    sem, kw, sim, _ = lists
    sem, kw = sem[:FETCH], kw[:FETCH]
    best = max((h.score for h in kw), default=1.0) or 1.0
    s = {**sim, **{h.id: h.score for h in sem}}
    k = {h.id: h.score / best for h in kw}
    ids = set(s) | set(k)
    return sorted(ids, key=lambda i: -(s.get(i, 0.0) + k.get(i, 0.0)))[:LIMIT]


FUSIONS: dict[str, Callable[[Lists], list[str]]] = {
    "semantic": ours(SearchMode.SEMANTIC),
    "keyword": ours(SearchMode.KEYWORD),
    "mem0 boost": mem0_boost,
    "ours (rrf k=3)": ours(SearchMode.HYBRID),
    "ours @200": ours(SearchMode.HYBRID, DEPTH),
    "blend w=0.5": weighted(0.5),
    "blend w=0.3": weighted(0.3),
    "blend w=0.7": weighted(0.7),
    "max": maximum,
    "rrf k=60": rrf(60),
    "rrf k=30": rrf(30),
    "rrf k=10": rrf(10),
    "rrf k=1": rrf(1),
    "rrf k=10 @200": rrf(10, DEPTH),
    "rrf k=3 kw x0.5": rrf(3, weights=(1.0, 0.5)),
    "rrf k=3 sem x0.5": rrf(3, weights=(0.5, 1.0)),
    "max-norm blend": max_norm,
    "min-max blend": min_max,
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
                    sem_hits = store.search(q.text, vector, top_k=DEPTH, filters=filters)
                    kw_hits = store.keyword_search(q.text, top_k=DEPTH, filters=filters)
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
                report(outcomes, corpus.questions)
            finally:
                await events.close()
                await asyncio.to_thread(engine.close)
                await llm.close()
                await client.aclose()
    finally:
        fake.stop()
        redis.stop()


def report(outcomes: dict[str, list[Outcome]], questions: list[Any]) -> None:
    """Recall@10 (all evidence) per fusion: overall (and any evidence), per question type, and
    for the even and odd users' questions apart."""
    users = sorted({q.user for q in questions})
    half = {q.qid: users.index(q.user) % 2 for q in questions}
    ids = [q.qid for q in questions]
    kinds = [k for k in QUESTION_TYPES if any(q.kind == k for q in questions)]
    print(f"{len(questions)} questions; recall@{LIMIT}, all evidence (% of questions)")
    columns = ["all", "any", *kinds, "even", "odd"]
    print(f"  {'fusion':<16}" + "".join(f"{c:>11}" for c in columns))
    for name, done in outcomes.items():
        overall = recall(done)
        by_kind = recall_by_kind(done, kinds)
        halves = [recall(o for o, i in zip(done, ids, strict=True) if half[i] == h) for h in (0, 1)]
        figures = [overall.all[LIMIT], overall.any[LIMIT]]
        figures += [by_kind[k].all[LIMIT] for k in kinds] + [h.all[LIMIT] for h in halves]
        print(f"  {name:<16}" + "".join(f"{f * 100:>11.1f}" for f in figures))


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
