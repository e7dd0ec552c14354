"""How a search ranks: semantic similarity, keyword (BM25) relevance, or both, optionally
weighted toward recent memories. Pure functions: the service fetches, this ranks.

Per hit, each part is in [0, 1]:
- semantic = cosine similarity of query and memory (clamped at 0), as the store scores it;
- keyword  = the store's BM25, squashed by mem0's own sigmoid (`normalize_bm25`, midpoint and
  steepness by query length, `get_bm25_params`), so one score means the same on every query;
- relevance = semantic (SEMANTIC), keyword (KEYWORD), or (HYBRID) reciprocal-rank fusion over
  the UNION of both candidate lists: sum over the lists a memory is in of 1 / (RRF_K + its rank
  there), scaled by (RRF_K + 1) / 2 into [0, 1] (1: first in both lists; 0.5: first in one), so
  a memory found only by its words, or only by its meaning, competes with the rest. The parts
  are still reported: one the store did not report counts 0 (a semantic hit with none of the
  query's words has keyword 0; a keyword hit beyond the semantic candidates gets its exact
  similarity where the store can give it, else 0).
- recency = 0.5 ** (age / half_life), age = now - updated_at in seconds, only when a half-life
  is asked for; score = relevance * recency. Without one, score = relevance.
`threshold` gates relevance (before the recency factor), so recency reorders but never hides;
in HYBRID it gates the parts, not the fused rank: a hit is kept when its semantic or its keyword
score reaches it. A rank says nothing of how close a memory is (the best of unrelated memories
is still first), and a threshold is there to leave out what is not close.

Why not mem0's own hybrid (AsyncMemory._search_vector_store): it only boosts the semantic
candidates, so keyword evidence outside the semantic top k is never found; the union is what
finds it. Why ranks, not scores: cosine similarity and squashed BM25 live on different scales,
and their mean let common-word BM25 noise push memories past the semantic ones; ranks with a
small RRF_K let the top of either list through. On bench/fusion_check.py's corpus (10,000 turns,
352 questions) all evidence in the top 10: 65.1 % with RRF_K = 3 (1 to 10 within 1.2 points;
the classic 60: 40.6 %), against 52.6 % for the mean and 50.6 % semantic alone; K chosen on half
the conversations, the other half measured 63.6 % (mean: 52.8 %).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mem0.utils.scoring import get_bm25_params, normalize_bm25

from services.ltm_model import HitScores, SearchMode

RRF_K = 3  # small: the top of either list counts; 60, the textbook value, drowns it (see above)


@dataclass(frozen=True)
class Found:
    """A store hit: id, payload and the store's own score (cosine, or BM25 higher-is-better)."""

    id: str
    payload: Mapping[str, Any]
    score: float


@dataclass(frozen=True)
class Ranked:
    id: str
    payload: Mapping[str, Any]
    score: float
    scores: HitScores


def keyword_score(raw_bm25: float, n_terms: int) -> float:
    """A BM25 score (higher: better) in [0, 1], by mem0's query-length-aware sigmoid."""
    midpoint, steepness = get_bm25_params("", lemmatized=" ".join(["w"] * max(n_terms, 1)))
    return normalize_bm25(raw_bm25, midpoint, steepness) if raw_bm25 > 0 else 0.0


def recency_factor(updated_at: datetime, now: datetime, half_life_seconds: float) -> float:
    """0.5 ** (age / half_life): 1 for a memory changed now, 0.5 at one half-life old."""
    age = max(0.0, (now - updated_at).total_seconds())
    return 0.5 ** (age / half_life_seconds)


def rank(
    mode: SearchMode,
    semantic: Sequence[Found],
    keyword: Sequence[Found],
    n_terms: int,
    *,
    limit: int,
    threshold: float = 0.0,
    similarity: Mapping[str, float] | None = None,
    updated_at: Mapping[str, datetime] | None = None,
    now: datetime | None = None,
    half_life_seconds: float | None = None,
) -> list[Ranked]:
    """The best `limit` hits, best first. `similarity`: exact semantic scores of keyword hits
    not among the semantic ones; `updated_at` and `now`: for the recency factor."""
    payloads: dict[str, Mapping[str, Any]] = {}
    sem: dict[str, float] = {}
    kw: dict[str, float] = {}
    if mode is not SearchMode.KEYWORD:
        for hit in semantic:
            payloads.setdefault(hit.id, hit.payload)
            sem[hit.id] = max(0.0, hit.score)
    if mode is not SearchMode.SEMANTIC:
        for hit in keyword:
            payloads.setdefault(hit.id, hit.payload)
            kw[hit.id] = keyword_score(hit.score, n_terms)
    fused = _reciprocal_ranks(semantic, keyword) if mode is SearchMode.HYBRID else {}
    ranked: list[Ranked] = []
    for id_, payload in payloads.items():
        if mode is SearchMode.SEMANTIC:
            parts = HitScores(semantic=sem[id_])
            relevance = sem[id_]
        elif mode is SearchMode.KEYWORD:
            parts = HitScores(keyword=kw[id_])
            relevance = kw[id_]
        else:
            s = sem.get(id_, (similarity or {}).get(id_, 0.0))
            k = kw.get(id_, 0.0)
            parts = HitScores(semantic=s, keyword=k)
            relevance = fused[id_]
        if max(parts.semantic or 0.0, parts.keyword or 0.0) < threshold:
            continue
        score = relevance
        if half_life_seconds and updated_at is not None and now is not None and id_ in updated_at:
            factor = recency_factor(updated_at[id_], now, half_life_seconds)
            parts = HitScores(parts.semantic, parts.keyword, factor)
            score = relevance * factor
        ranked.append(Ranked(id_, payload, score, parts))
    # Ties (equal scores) keep a stable order: by id, so a search answers the same every time.
    ranked.sort(key=lambda r: (-r.score, r.id))
    return ranked[:limit]


def _reciprocal_ranks(semantic: Sequence[Found], keyword: Sequence[Found]) -> dict[str, float]:
    """Each memory's reciprocal-rank fusion over both lists, each ranked by its own score,
    scaled into [0, 1]."""
    fused: dict[str, float] = {}
    for hits in (semantic, keyword):
        ordered = sorted(hits, key=lambda h: -h.score)  # stable: the store's order on ties
        for position, hit in enumerate(ordered, 1):
            fused[hit.id] = fused.get(hit.id, 0.0) + (RRF_K + 1) / (2 * (RRF_K + position))
    return fused
