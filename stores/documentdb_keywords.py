"""Keyword search on DocumentDB: `$text` on the memory's text, exact within the caller's filter,
ranked by BM25 as the embedded store ranks (SQLite FTS5's bm25()).

What the engine does (pg_documentdb: opclass/bson_text_gin.c, metadata_cache.c): the text index
analyses `payload.data` with PostgreSQL's English configuration (default parser, English stop
words, Snowball English stemmer); a `$text` query becomes websearch_to_tsquery with its ANDs
turned into ORs (any word matches); `{"$meta": "textScore"}` is ts_rank_cd with every weight
1.0 — for an OR of words, the number of occurrences of the query's words in the text. It has no
inverse document frequency: ranked by it, a memory with a common word of the query ("recommend")
ties one with its rare word (a name), and a pile of the former buries the latter.

So one `$text` query per word of the query (the engine's stop words left out): its text score is
that word's frequency in each memory (tf), and how many memories within the scope hold it is its
document frequency (df) — the number returned when fewer than `fetch` match, else a `$count`.
With N = the memories within the scope, each candidate's score is the Okapi BM25 sum that FTS5
computes (k1 = 1.2, b = 0.75), so a keyword score (BM25 squashed by services/search_fusion.py)
means the same on both stores, and KEYWORD's ranks and thresholds with it. One difference on
purpose: FTS5 takes N and df over the whole file (all users), where these are the scope's, and in
a small scope a word in half the memories would get FTS5's idf ln((N - df + 0.5) / (df + 0.5))
= 0 — so idf = ln(1 + (N - df + 0.5) / (df + 0.5)) (Lucene's), positive always and the same as
FTS5's within a few percent where df is small against N. Approximations: the length of a memory
is its count of non-stop words and the average length is taken over the candidates (the engine
reports neither); a candidate beyond the first `fetch` matches of a common word misses that
word's small share; two query words with one stem are counted twice.

Scope: every query is one `$match` — the `$text` condition and the whole filter (tenant,
user/agent/run, categories, metadata, expiry) — as the pipeline's first stage, so the engine
limits after filtering and other users' matches never take this user's places.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from stores.documentdb_commands import count_pipeline, keyword_pipeline
from stores.keyword_terms import STOP_WORDS, terms, words_of
from stores.memory_filters import Condition, to_mongo

Documents = list[dict[str, Any]]
Aggregate = Callable[[Documents], Documents]

K1 = 1.2  # FTS5's bm25() parameters
B = 0.75

# PostgreSQL's share/tsearch_data/english.stop (Snowball's English list): the engine drops these
# from a `$text` query, so a query for one of them alone would match nothing.
ENGINE_STOP_WORDS = frozenset(
    """i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
    she her hers herself it its itself they them their theirs themselves what which who whom this
    that these those am is are was were be been being have has had having do does did doing a an
    the and but if or because as until while of at by for with about against between into through
    during before after above below to from up down in out on off over under again further then
    once here there when where why how all any both each few more most other some such no nor not
    only own same so than too very s t can will just don should now""".split()  # noqa: SIM905
)


def keyword_documents(
    query: str, top_k: int, condition: Condition, *, fetch: int, aggregate: Aggregate
) -> Documents:
    """The top_k documents ({"_id", "payload", "score"}) within `condition` whose text holds any
    word of the query, best BM25 first; `fetch` memories at most are read per word."""
    words = [word for word in terms(query) if word not in ENGINE_STOP_WORDS]
    if not words or top_k < 1:
        return []
    scope = to_mongo(condition)
    payloads: dict[Any, Mapping[str, Any]] = {}
    per_word: list[tuple[int, dict[Any, float]]] = []  # (df, {id: tf})
    for word in words:
        found = aggregate(keyword_pipeline([word], fetch, scope))
        if not found:
            continue
        df = len(found) if len(found) < fetch else _count(aggregate, [word], scope)
        per_word.append((df, {d["_id"]: float(d.get("score") or 0.0) for d in found}))
        for document in found:
            payloads.setdefault(document["_id"], document.get("payload") or {})
    if not per_word:
        return []
    total = max(_count(aggregate, None, scope), max(df for df, _ in per_word))
    lengths = {id_: _length(payload) for id_, payload in payloads.items()}
    average = sum(lengths.values()) / len(lengths) or 1.0
    scores = dict.fromkeys(payloads, 0.0)
    for df, frequencies in per_word:
        idf = math.log(1 + (total - df + 0.5) / (df + 0.5))
        for id_, tf in frequencies.items():
            norm = K1 * (1 - B + B * lengths[id_] / average)
            scores[id_] += idf * tf * (K1 + 1) / (tf + norm)
    best = sorted(scores, key=lambda id_: (-scores[id_], str(id_)))[:top_k]
    return [{"_id": id_, "payload": payloads[id_], "score": scores[id_]} for id_ in best]


def _count(aggregate: Aggregate, words: list[str] | None, scope: Mapping[str, Any]) -> int:
    (row,) = aggregate(count_pipeline(words, scope)) or [{"n": 0}]
    return int(row.get("n", 0))


def _length(payload: Mapping[str, Any]) -> int:
    text = payload.get("data")
    if not isinstance(text, str):
        return 1
    return max(1, sum(1 for word in words_of(text) if word not in STOP_WORDS))
