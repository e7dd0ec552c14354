"""The words of a keyword query, the same on every store.

mem0 lemmatizes for BM25 with spaCy's en_core_web_sm, which is not on PyPI (it comes from
GitHub releases, out of reach here), so mem0's `lemmatize_for_bm25` returns the text unchanged.
Ours is simpler and needs nothing: lower-cased unicode words, English stop words dropped. The
stores stem both sides alike (SQLite FTS5's porter tokenizer; DocumentDB's text index), so
"flights" finds "flight".
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
MAX_TERMS = 32  # a query is a few words; a pasted page should not become a 10,000-term OR

# Function words that match almost every memory and only dilute BM25.
STOP_WORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have he her
    him his how i if in into is it its me my no not of on or our she so than that the their
    them then there these they this those to too us was we were what when where which who
    whom why will with would you your""".split()  # noqa: SIM905
)


def words_of(text: str) -> list[str]:
    """The lower-cased unicode words of `text`, in order, stop words included."""
    return [w.casefold() for w in _WORD.findall(text)]


def terms(text: str) -> list[str]:
    """The distinct searchable words of `text`, in order (stop words only when nothing else)."""
    words = words_of(text)
    kept = [w for w in words if w not in STOP_WORDS] or words
    return list(dict.fromkeys(kept))[:MAX_TERMS]


def fts5_query(text: str) -> str | None:
    """An FTS5 MATCH expression: any of the words (each quoted: no operators); None: no words."""
    found = terms(text)
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in found) if found else None
