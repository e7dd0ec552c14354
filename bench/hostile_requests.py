"""The hostile requests of bench.hostile_bench, as bytes on the wire: bodies at the size limit
(tiny messages, one huge string literal, the largest legal write), bodies past it (declared or
streamed), the bad-input corpus of the end-to-end tests, distinct large documents, and a
document that names a subscription."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from bench.raw_sender import chunked_encoding, chunks

HOST = "127.0.0.1"
ADD_MESSAGES = (
    "mutation Add($input: AddMessagesInput!) { addMessages(input: $input) "
    "{ sessionId messages { id seq tokenCount } } }"
)
# Realistic prose for the largest legal write: what a token counter meets in practice.
PROSE = (
    "the deployment window moves to Thursday at 14:00 UTC and the on-call engineer confirms "
    "that the database migration finished without errors while customers reported latency "
    "in region eu-west-1 during the rollout of version 3.2.7"
)


@dataclass(frozen=True)
class Hostile:
    """One request: its head (request line and headers) and a fresh iterator of body pieces."""

    name: str
    head: bytes
    body: Callable[[], Iterable[bytes]]
    size: int  # body bytes sent (a declared length may claim more)


def head(
    method: str, path: str, headers: dict[str, str], *, key: str | None, length: int | None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def post(name: str, body: bytes, *, key: str | None, declared: int | None = None) -> Hostile:
    """A JSON POST to /graphql; `declared` claims another Content-Length than the body's."""
    length = len(body) if declared is None else declared
    raw = head("POST", "/graphql", {"Content-Type": "application/json"}, key=key, length=length)
    return Hostile(name, raw, lambda: chunks(body), len(body))


def compact(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def fill(prefix: bytes, item: bytes, suffix: bytes, limit: int, sep: bytes = b"") -> bytes:
    """prefix + as many items (joined by sep) as fit in `limit` bytes + suffix."""
    count = (limit - len(prefix) - len(suffix) + len(sep)) // (len(item) + len(sep))
    return prefix + sep.join([item] * count) + suffix


# --- bodies at the limit --------------------------------------------------------------------


def tiny_messages(limit: int, session_id: str) -> bytes:
    """addMessages with as many one-character messages as fit in `limit` bytes (~67,000 in
    2 MiB, where 500 are allowed)."""
    start = compact({"query": ADD_MESSAGES, "variables": {"input": {"sessionId": session_id}}})
    prefix = start[: -len(b"}}}")] + b',"messages":['
    return fill(prefix, compact({"role": "USER", "content": "x"}), b"]}}}", limit, b",")


def string_literal(limit: int, session_id: str) -> bytes:
    """A document with one string literal as long as fits (content is checked after the
    document is parsed)."""
    document = (
        f'mutation {{ addMessages(input: {{sessionId: "{session_id}", messages: '
        '[{role: USER, content: "@"}]}) { sessionId } }'
    )
    before, after = compact({"query": document}).split(b"@")
    return fill(before, b"a", after, limit)


def largest_write(limit: int, content_chars: int, session_id: str) -> tuple[bytes, int]:
    """addMessages of as many `content_chars`-long messages of prose as fit in `limit`
    bytes; the body and the number of messages."""
    text = " ".join(itertools.islice(itertools.cycle(PROSE.split()), content_chars))[:content_chars]
    message = {"role": "USER", "content": text}
    one = len(compact(message)) + 1
    base = len(compact({"query": ADD_MESSAGES, "variables": {"input": {"sessionId": session_id}}}))
    count = max(1, (limit - base - len(b',"messages":[]')) // one)
    body = compact(
        {
            "query": ADD_MESSAGES,
            "variables": {"input": {"sessionId": session_id, "messages": [message] * count}},
        }
    )
    return body, count


def subscription_document(limit: int) -> bytes:
    """A document of ~a million tokens that also names a subscription: the check that a
    subscription is not sent over plain HTTP parses it before the token limit applies."""
    document = "subscription S { sessionEvents { type } } query Q { a @ }"
    before, after = compact({"query": document}).split(b"@")
    return fill(before, b"b", after, limit, b" ")


def distinct_document(index: int, chars: int) -> bytes:
    """A ~`chars`-long document no other index produces (one string literal)."""
    prefix = f"{index:08d}-"
    literal = prefix + "d" * max(0, chars - len(prefix))
    return compact({"query": f'{{ session(id: "{literal}") {{ id }} }}'})


# --- bodies past the limit ------------------------------------------------------------------


def declared_oversize(total: int) -> Hostile:
    """A POST that claims `total` bytes in its Content-Length, and sends them."""
    piece = b" " * 65536
    pieces = -(-total // len(piece))
    raw = head("POST", "/graphql", {"Content-Type": "application/json"}, key=None, length=total)
    return Hostile(
        f"no key, Content-Length {total / 2**20:g} MiB",
        raw,
        lambda: itertools.repeat(piece, pieces),
        total,
    )


def chunked_oversize(total: int) -> Hostile:
    """A POST without Content-Length that streams `total` bytes in chunks."""
    piece = b" " * 65536
    pieces = -(-total // len(piece))
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    raw = head("POST", "/graphql", headers, key=None, length=None)
    return Hostile(
        f"no key, chunked {total / 2**20:g} MiB, no length",
        raw,
        lambda: chunked_encoding(itertools.repeat(piece, pieces)),
        total,
    )


def auth_probe(limit: int) -> Hostile:
    """A POST without a key that announces a body and sends none: a server that authenticates
    before reading the body answers it; one that reads first waits for the body."""
    raw = head(
        "POST", "/graphql", {"Content-Type": "application/json"}, key=None, length=limit // 2
    )
    return Hostile("auth probe", raw, lambda: (), 0)


# --- the bad-input corpus -------------------------------------------------------------------


def corpus(key: str) -> list[Hostile]:
    """Every case of tests/e2e/test_bad_input_corpus.py, sent as that test sends it."""
    from tests.e2e.test_bad_input_corpus import CORPUS

    requests = []
    for case in CORPUS:
        content = case.content()
        headers = {"content-type": "application/json", **case.headers}
        headers = {name: value for name, value in headers.items() if value}
        path = "/graphql" + (f"?{urlencode(case.params)}" if case.params else "")
        length = len(content) if content is not None else (0 if case.method != "GET" else None)
        raw = head(case.method, path, headers, key=key, length=length)
        body = content or b""
        requests.append(Hostile(case.name, raw, lambda body=body: chunks(body), len(body)))
    return requests


def distinct_documents(count: int, chars: int, key: str | None, first: int) -> Iterator[Hostile]:
    """`count` distinct documents, built one at a time as they are sent."""
    label = f"{'key' if key else 'no key'}, distinct {chars / 2**20:.1f} MiB documents"
    for index in range(first, first + count):
        yield post(label, distinct_document(index, chars), key=key)
