"""How a search ranks (services/search_fusion.py) and which words it looks for
(stores/keyword_terms.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.ltm_model import HitScores, SearchMode
from services.search_fusion import RRF_K, Found, keyword_score, rank, recency_factor
from stores.keyword_terms import MAX_TERMS, fts5_query, terms

SEM = [Found("a", {}, 0.8), Found("b", {}, 0.6)]
KW = [Found("c", {}, 9.0), Found("b", {}, 5.0)]


def ids(ranked: list) -> list[str]:
    return [r.id for r in ranked]


def test_semantic_and_keyword_modes_rank_by_their_own_list_only() -> None:
    assert ids(rank(SearchMode.SEMANTIC, SEM, KW, 2, limit=10)) == ["a", "b"]
    assert ids(rank(SearchMode.KEYWORD, SEM, KW, 2, limit=10)) == ["c", "b"]
    (a, _) = rank(SearchMode.SEMANTIC, SEM, KW, 2, limit=10)
    assert a.scores == HitScores(semantic=0.8)
    assert a.score == 0.8


def test_hybrid_ranks_the_union_by_reciprocal_ranks_and_reports_both_parts() -> None:
    ranked = rank(SearchMode.HYBRID, SEM, KW, 2, limit=10, similarity={"c": 0.5})
    by_id = {r.id: r for r in ranked}
    assert set(by_id) == {"a", "b", "c"}  # c: found by its words only, still a candidate
    assert by_id["c"].scores == HitScores(semantic=0.5, keyword=keyword_score(9.0, 2))
    assert by_id["a"].scores == HitScores(semantic=0.8, keyword=0.0)
    k = RRF_K
    assert by_id["b"].score == pytest.approx(2 * (k + 1) / (2 * (k + 2)))  # second in both
    assert by_id["a"].score == pytest.approx(0.5)  # first in one list only
    assert by_id["c"].score == pytest.approx(0.5)
    assert ids(ranked) == ["b", "a", "c"]  # ties by id


def test_hybrid_scores_are_one_for_first_in_both_lists() -> None:
    (top,) = rank(SearchMode.HYBRID, [Found("a", {}, 0.3)], [Found("a", {}, 1.0)], 1, limit=1)
    assert top.score == pytest.approx(1.0)


def test_hybrid_ranks_each_list_by_its_own_score_not_its_order() -> None:
    shuffled = [Found("b", {}, 0.6), Found("a", {}, 0.8)]
    assert ids(rank(SearchMode.HYBRID, shuffled, [], 1, limit=2)) == ["a", "b"]


def test_a_keyword_hit_without_a_known_similarity_counts_semantic_zero() -> None:
    (c,) = [r for r in rank(SearchMode.HYBRID, SEM, KW, 2, limit=10) if r.id == "c"]
    assert c.scores.semantic == 0.0


def test_keyword_score_is_mem0s_sigmoid_and_grows_with_bm25() -> None:
    assert keyword_score(0.0, 1) == 0.0
    assert keyword_score(5.0, 2) == pytest.approx(0.5)  # mem0's midpoint for <= 3 terms
    assert keyword_score(7.0, 5) == pytest.approx(0.5)  # ... and for 4 to 6
    assert 0 < keyword_score(2.0, 2) < keyword_score(8.0, 2) < 1


def test_threshold_gates_relevance_and_limit_cuts() -> None:
    assert ids(rank(SearchMode.SEMANTIC, SEM, KW, 2, limit=10, threshold=0.7)) == ["a"]
    assert ids(rank(SearchMode.SEMANTIC, SEM, KW, 2, limit=1)) == ["a"]


def test_hybrid_threshold_keeps_what_is_close_by_meaning_or_words_not_by_rank() -> None:
    unrelated = [Found("x", {}, 0.12), Found("y", {}, 0.10)]
    # First in the semantic list (fused 0.5), yet nothing is close: none is kept.
    assert rank(SearchMode.HYBRID, unrelated, [], 3, limit=10, threshold=0.3) == []
    # b (semantic 0.6, keyword 0.5) ranks first, second in both lists, yet is not close.
    kept = rank(SearchMode.HYBRID, SEM, KW, 2, limit=10, threshold=0.7, similarity={"c": 0.1})
    assert ids(kept) == ["a", "c"]  # a by its meaning (0.8), c by its words (0.94)
    by_words = rank(SearchMode.HYBRID, SEM, KW, 2, limit=10, threshold=0.9, similarity={"c": 0.1})
    assert ids(by_words) == ["c"]


def test_recency_multiplies_relevance_by_half_per_half_life_but_never_gates() -> None:
    now = datetime(2026, 1, 10, tzinfo=UTC)
    updated = {"a": now - timedelta(days=2), "b": now}
    ranked = rank(
        SearchMode.SEMANTIC,
        SEM,
        KW,
        2,
        limit=10,
        threshold=0.7,
        updated_at=updated,
        now=now,
        half_life_seconds=86400,
    )
    (a,) = ranked  # b's relevance 0.6 is under the threshold; a's 0.8 is not, whatever its age
    assert a.scores.recency == pytest.approx(0.25)
    assert a.score == pytest.approx(0.8 * 0.25)
    newer_first = rank(
        SearchMode.SEMANTIC, SEM, KW, 2, limit=10, updated_at=updated, now=now,
        half_life_seconds=86400,
    )  # fmt: skip
    assert ids(newer_first) == ["b", "a"]


def test_recency_factor() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert recency_factor(now, now, 60) == 1.0
    assert recency_factor(now - timedelta(seconds=60), now, 60) == pytest.approx(0.5)
    assert recency_factor(now + timedelta(seconds=60), now, 60) == 1.0  # clock skew: not > 1


def test_terms_drop_stop_words_and_repeats_and_keep_unicode_words() -> None:
    assert terms("What did Zbigniew recommend to Zbigniew?") == ["zbigniew", "recommend"]
    assert terms("Où est Łódź?") == ["où", "est", "łódź"]
    assert terms("what is it") == ["what", "is", "it"]  # only stop words: keep them
    assert terms("?!") == []
    assert len(terms(" ".join(f"w{i}" for i in range(100)))) == MAX_TERMS


def test_fts5_query_quotes_every_word_so_none_is_an_operator() -> None:
    assert fts5_query('NEAR(c b) OR "x" AND -y*') == '"near" OR "c" OR "b" OR "x" OR "y"'
    assert fts5_query("...") is None
