"""The retrieval benchmark's recall arithmetic and its constructed corpus's invariants."""

from __future__ import annotations

import math
import re

import pytest

from bench.recall_corpus import (
    KEYWORD,
    MULTI_HOP,
    QUESTION_TYPES,
    TEMPORAL,
    build_corpus,
    format_day,
)
from bench.recall_metrics import Outcome, recall, recall_at, recall_by_kind

QUESTION_WORDS = {"Who", "What", "Which", "Where", "Street"}
SMALL = {"users": 3, "sessions": 8, "turns": 20}


def test_recall_at_all_and_any() -> None:
    found = ["D1:1", "D2:5", "D3:7", "D4:2"]
    assert recall_at(found, ["D2:5"], 1) == (False, False)
    assert recall_at(found, ["D2:5"], 2) == (True, True)
    assert recall_at(found, ["D1:1", "D4:2"], 3) == (False, True)
    assert recall_at(found, ["D1:1", "D4:2"], 10) == (True, True)
    assert recall_at([], ["D1:1"], 10) == (False, False)
    with pytest.raises(ValueError, match="needs evidence"):
        recall_at(found, [], 5)


def test_recall_averages_per_question_and_per_kind() -> None:
    outcomes = [
        Outcome("a", ["x", "y"], ["x"]),  # found at rank 1
        Outcome("a", ["y", "x"], ["x"]),  # rank 2
        Outcome("b", ["p", "q", "r"], ["p", "z"]),  # half its evidence, at rank 1
    ]
    r = recall(outcomes, cutoffs=(1, 5))
    assert r.questions == 3
    assert r.all == {1: pytest.approx(1 / 3), 5: pytest.approx(2 / 3)}
    assert r.any == {1: pytest.approx(2 / 3), 5: pytest.approx(1.0)}
    by_kind = recall_by_kind(outcomes, ["b", "a", "missing"])
    assert list(by_kind) == ["b", "a", "all types"]
    assert by_kind["a"].all[1] == pytest.approx(0.5)
    assert by_kind["b"].all[10] == 0.0
    assert by_kind["b"].any[10] == 1.0
    assert math.isnan(recall([]).all[1])


def test_corpus_is_deterministic_and_seeded() -> None:
    assert build_corpus(**SMALL) == build_corpus(**SMALL)
    assert build_corpus(**SMALL) != build_corpus(**SMALL, seed=13)


def test_corpus_shape_and_evidence() -> None:
    corpus = build_corpus(**SMALL)
    assert corpus.turn_count == 3 * 8 * 20
    assert {q.kind for q in corpus.questions} == set(QUESTION_TYPES)
    turns = {c.user: {t.dia_id: t for t in c.turns} for c in corpus.conversations}
    for conversation in corpus.conversations:
        assert len(turns[conversation.user]) == len(conversation.turns)  # dialog ids unique
    for q in corpus.questions:
        assert q.evidence, q
        evidence = [turns[q.user][dia] for dia in q.evidence]  # every evidence id exists
        assert all(t.text.startswith(f"[{format_day(t.day)}] {t.speaker}: ") for t in evidence)
        if q.kind == MULTI_HOP:
            first, second = evidence
            assert first.session < second.session
        if q.kind == TEMPORAL:
            (turn,) = evidence
            assert f"{turn.day:%B %Y}" in q.text
        if q.kind == KEYWORD:
            (turn,) = evidence
            speakers = next(c.speakers for c in corpus.conversations if c.user == q.user)
            names = [
                w
                for w in re.findall(r"[A-Z][A-Za-z0-9]+", q.text)
                if w not in {*speakers, *QUESTION_WORDS}
            ]
            assert len(names) == 1, q.text
            # Its siblings share the template but not the name: only the name points to it.
            word = re.compile(rf"\b{names[0]}\b")
            holders = [t for t in turns[q.user].values() if word.search(t.utterance)]
            assert holders == [turn]
