"""Values for the schema fuzzer: a plain palette (what a real client sends: ids that exist,
short text, small numbers), a hostile one (lone surrogates, huge integers, NaN and Infinity,
numbers no float holds, deep and wide JSON, long strings, strings aimed at key names and at
another tenant's ids), and a mixed one (plain ids and text, hostile numbers and JSON), and
GraphQL literals of them all."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

import graphql
import hypothesis_graphql as hg
from hypothesis import strategies as st

SURROGATES = ("\ud800", "\udfff", "a\udc00b", "\udbff\udbff", "\ud83d")
# Around the service's limits: metadata 8 KiB, memory text 20 000 chars, message content
# 100 000, request body 2 MiB.
LONG_LENGTHS = (8_193, 20_000, 20_001, 100_000, 100_001, 2 * 1024 * 1024 + 1)
TRICKY_TEXT = (
    "",
    " ",
    "\x00",
    "\u2028",
    "\ufeff",
    "\u202e",
    "NaN",
    "Infinity",
    "-0",
    "1e400",
    "null",
    "__proto__",
    "__typename",
    "*",
    "?",
    "[",
    "{",
    "}",
    "a}:msgs",
    "x:{y}",
    "../../etc/passwd",
    "' OR 1=1 --",
    '{"$where": "1"}',
    "tenant-b",
    "maas:tenant:{tenant-b}:sessions",
    "🙂🙂🙂",
)


class RawNumber(str):
    """A number token no float or int holds (1e400, 5000 digits). In a document it is a bare
    number (the parser makes it inf, -inf, 0.0 or NaN); in variables only a string."""


HUGE_NUMBERS = tuple(map(RawNumber, ("1e400", "-1e400", "1e-400", "123456789e999", "9" * 5000)))
NAN_ISH = (math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324)
EDGE_INTS = (0, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**400)
# GraphQL names: the only keys an object literal can have.
NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")
NAMES = st.from_regex(r"[_A-Za-z][_0-9A-Za-z]{0,6}", fullmatch=True)
# Ids the service accepts (sessions, users, agents, messages): 1-128 of these characters.
VALID_IDS = st.from_regex(r"[a-z0-9][a-z0-9_.:@-]{0,11}", fullmatch=True)


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"k": value}
    return value


def nested_lists(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def long_text() -> st.SearchStrategy[str]:
    return st.builds(
        lambda char, length: char * length,
        st.sampled_from(("x", "é", "\x00")),
        st.sampled_from(LONG_LENGTHS),
    )


def hostile_text(tricky: tuple[str, ...], *, small: bool = False) -> st.SearchStrategy[str]:
    options = [
        st.text(max_size=20),
        st.sampled_from(tricky),
        st.sampled_from(SURROGATES),
        # Any code point, lone surrogates included.
        st.text(st.characters(exclude_categories=()), max_size=20),
    ]
    if not small:
        options.append(long_text())
    return st.one_of(options)


HOSTILE_INTS = st.one_of(
    st.integers(-1, 600), st.sampled_from(EDGE_INTS), st.integers(), st.sampled_from(NAN_ISH)
)
HOSTILE_FLOATS = st.one_of(
    st.floats(),
    st.sampled_from(NAN_ISH),
    st.sampled_from(EDGE_INTS),
    st.sampled_from(HUGE_NUMBERS),
)


def hostile_json(text: st.SearchStrategy[str], keys: st.SearchStrategy[str]) -> Any:
    """Any JSON and then some (NaN, 10**400, 1e400 in documents, surrogates), nested deep or
    wide around MAX_JSON_DEPTH (32) and MAX_METADATA_BYTES (8192)."""
    leaves = st.one_of(st.none(), st.booleans(), HOSTILE_INTS, HOSTILE_FLOATS, text)
    trees = st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4)
        ),
        max_leaves=12,
    )
    depths = st.sampled_from((31, 32, 33, 100, 400))
    return st.one_of(
        st.dictionaries(keys, leaves, max_size=4),
        trees,
        depths.map(nested),
        depths.map(nested_lists),
        long_text().map(lambda s: {"k": s}),
        st.integers(1000, 3000).map(lambda n: {f"k{i}": i for i in range(n)}),
    )


@dataclass(frozen=True)
class Palette:
    """What one request's values are drawn from. `ids` go where the schema takes an id
    (`id`, `sessionId`, `userId`...), `text` everywhere else a string goes. A `hostile`
    palette's literals also hold floats too big for a float (1e400)."""

    ids: st.SearchStrategy[str]
    text: st.SearchStrategy[str]
    short_text: st.SearchStrategy[str]  # for values repeated hundreds of times
    ints: st.SearchStrategy[Any]
    floats: st.SearchStrategy[Any]
    json: st.SearchStrategy[Any]
    json_literal_keys: st.SearchStrategy[Any]  # JSON whose object keys are GraphQL names
    huge_literals: bool = False

    @classmethod
    def plain(cls, known_ids: tuple[str, ...]) -> Palette:
        ids = st.sampled_from(known_ids) | VALID_IDS
        keys = st.from_regex(r"[a-z_]{1,8}", fullmatch=True)
        leaves = st.booleans() | st.integers(-1000, 1000) | st.text(max_size=10)
        json = st.dictionaries(keys, leaves, max_size=3)
        return cls(
            ids=ids,
            text=st.text(max_size=40),
            short_text=st.text(max_size=10),
            ints=st.sampled_from((0, 1, 2, 20, 50, 100, 500)) | st.integers(0, 60),
            floats=st.floats(0, 1),
            json=json,
            json_literal_keys=json,
        )

    @classmethod
    def hostile(cls, tricky: tuple[str, ...]) -> Palette:
        text = hostile_text(tricky)
        small = hostile_text(tricky, small=True)
        return cls(
            ids=text,
            text=text,
            short_text=small,
            ints=HOSTILE_INTS,
            floats=HOSTILE_FLOATS,
            json=hostile_json(small, small),
            json_literal_keys=hostile_json(small, NAMES),
            huge_literals=True,
        )

    @classmethod
    def mixed(cls, known_ids: tuple[str, ...], tricky: tuple[str, ...]) -> Palette:
        """Plain ids and text, so that requests get past the id checks, with hostile numbers
        and JSON: most often a small object holding one number JSON has no room for."""
        plain, hostile = cls.plain(known_ids), cls.hostile(tricky)
        numbers = st.sampled_from((*HUGE_NUMBERS, *NAN_ISH, *EDGE_INTS))
        keys = st.from_regex(r"[a-z_]{1,8}", fullmatch=True)
        one_bad = st.dictionaries(keys, numbers, min_size=1, max_size=2)
        return dataclasses.replace(
            plain,
            ints=hostile.ints,
            floats=hostile.floats,
            json=one_bad | hostile.json,
            json_literal_keys=one_bad | hostile.json_literal_keys,
            huge_literals=True,
        )

    def literal_scalars(self) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
        """Literals for hypothesis-graphql's documents, which type scalars, not fields: ids
        and text both go where String goes."""
        scalars = {
            "String": (self.ids | self.text).map(hg.nodes.String),
            "ID": self.ids.map(hg.nodes.String),
            "JSON": self.json_literal_keys.map(literal),
        }
        if self.huge_literals:
            scalars["Float"] = self.floats.map(literal)
        return scalars


def literal(value: Any) -> graphql.ValueNode:
    """A GraphQL literal of a JSON-like value. Floats print as Python prints them, so NaN
    and inf become bare names (which the parser reads as enum values). NotALiteral when an
    object key is not a GraphQL name."""
    if isinstance(value, RawNumber):
        return graphql.FloatValueNode(value=value) if "e" in value else hg.nodes.Int(value)
    if value is None:
        return hg.nodes.Null
    if isinstance(value, bool):
        return hg.nodes.Boolean(value)
    if isinstance(value, int):
        return hg.nodes.Int(value)
    if isinstance(value, float):
        return graphql.FloatValueNode(value=repr(value))
    if isinstance(value, str):
        return hg.nodes.String(value)
    if isinstance(value, list):
        return hg.nodes.List([literal(v) for v in value])
    if not all(NAME.fullmatch(key) for key in value):
        raise NotALiteral(value)
    return hg.nodes.Object(
        [
            graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=literal(v))
            for k, v in value.items()
        ]
    )


class NotALiteral(ValueError):
    """A value no GraphQL literal can spell (an object key that is not a name)."""
