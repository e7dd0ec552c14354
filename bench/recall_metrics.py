"""Recall@k of a ranked search against a question's evidence, "all" and "any" of it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CUTOFFS = (1, 5, 10)


@dataclass(frozen=True)
class Outcome:
    """One question's search: its type, the dialog ids found (best first), its evidence."""

    kind: str
    found: Sequence[str]
    evidence: Sequence[str]


def recall_at(found: Sequence[str], evidence: Sequence[str], k: int) -> tuple[bool, bool]:
    """(every evidence id is in the top k, at least one is)."""
    if not evidence:
        raise ValueError("a question needs evidence")
    top = set(found[:k])
    hits = [e in top for e in evidence]
    return all(hits), any(hits)


@dataclass(frozen=True)
class Recall:
    """Fractions of questions, per cutoff: all their evidence found, any of it found."""

    questions: int
    all: dict[int, float]
    any: dict[int, float]


def recall(outcomes: Iterable[Outcome], cutoffs: Sequence[int] = CUTOFFS) -> Recall:
    """Recall over the outcomes, each question counting once."""
    done = list(outcomes)
    n = len(done)
    every: dict[int, float] = {}
    some: dict[int, float] = {}
    for k in cutoffs:
        marks = [recall_at(o.found, o.evidence, k) for o in done]
        every[k] = sum(a for a, _ in marks) / n if n else float("nan")
        some[k] = sum(b for _, b in marks) / n if n else float("nan")
    return Recall(n, every, some)


def recall_by_kind(outcomes: Sequence[Outcome], kinds: Sequence[str]) -> dict[str, Recall]:
    """Recall per question type (in `kinds` order, those present), then "all types"."""
    result = {
        kind: recall(o for o in outcomes if o.kind == kind)
        for kind in kinds
        if any(o.kind == kind for o in outcomes)
    }
    result["all types"] = recall(outcomes)
    return result
