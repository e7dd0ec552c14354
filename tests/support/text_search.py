"""`$text` as the DocumentDB engine evaluates it, for the stand-in (mongo_documents.py).

The engine (pg_documentdb: opclass/bson_text_gin.c) analyses indexed strings with PostgreSQL's
text search configuration for the index's language (English here): the default parser splits
words, the Snowball English stemmer reduces them after dropping English stop words. A `$text`
query goes through websearch_to_tsquery with its ANDs turned into ORs: a document matches when it
holds any of the query's lexemes. `{"$meta": "textScore"}` is ts_rank_cd with every weight 1.0,
which for an OR of lexemes is the number of their occurrences in the document.

Emulated: words of letters and digits, lower-cased; English stop words (PostgreSQL's english.stop,
Snowball's list) dropped; Snowball English stems for words of letters; words with digits kept as
they are (PostgreSQL's `simple` dictionary for numbers and mixed words); a hyphenated word gives
the whole compound and its parts (hword, hword_part), as the parser does; scores count
occurrences. Not emulated: e-mail addresses, URLs, host names, file paths and version numbers
(the parser keeps each as one token; here they split into words), phrases and negations in the
query (the service sends plain words), languages other than English, weights other than 1, the
256-positions-per-lexeme cap of a tsvector.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

import snowballstemmer

from stores.documentdb_keywords import ENGINE_STOP_WORDS as STOP_WORDS

# A word, or a hyphenated compound of words. Apostrophes and other punctuation split words
# ("Caroline's" -> "caroline", "s"), as the parser does.
_TOKEN = re.compile(r"[^\W_]+(?:-[^\W_]+)*", re.UNICODE)
_STEMMER = snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def _lexeme(word: str) -> str | None:
    """The lexeme of one lower-cased word, or None for a stop word."""
    if any(c.isdigit() for c in word):
        return word  # int, numword: the `simple` dictionary keeps them as they are
    if word in STOP_WORDS:
        return None
    return str(_STEMMER.stemWord(word))


def lexemes(text: str) -> list[str]:
    """The lexemes of `text`, one per occurrence, in order (what to_tsvector keeps)."""
    found: list[str] = []
    for token in _TOKEN.findall(text.lower()):
        parts = token.split("-")
        words = [token, *parts] if len(parts) > 1 else parts
        found.extend(lexeme for word in words if (lexeme := _lexeme(word)) is not None)
    return found


def query_lexemes(search: str) -> set[str]:
    """The distinct lexemes of a `$text` `$search` string of plain words (OR'ed by the engine)."""
    return set(lexemes(search))


def text_score(text: str, query: set[str]) -> float:
    """ts_rank_cd of an OR query with every weight 1.0: occurrences of the query's lexemes."""
    counts = Counter(lexemes(text))
    return float(sum(counts[lexeme] for lexeme in query))
