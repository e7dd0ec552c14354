"""What every reply of /graphql must be, whatever was sent: the checks of the bad-input corpus
and of the schema fuzzer."""

from __future__ import annotations

import json
from typing import Any

import httpx


def strict_json(text: str) -> Any:
    """Parses only RFC 8259 JSON: NaN, Infinity and -Infinity are refused."""

    def refuse(token: str) -> Any:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def error_codes(body: dict[str, Any]) -> list[str | None]:
    return [(error.get("extensions") or {}).get("code") for error in body.get("errors") or []]


def assert_coded_json_reply(reply: httpx.Response, label: str) -> dict[str, Any]:
    """Never a 5xx; a JSON object in strict RFC 8259 JSON; a code on every error, never
    INTERNAL; errors whenever the status says the request failed. Returns the body."""
    assert reply.status_code < 500, (label, reply.status_code, reply.text[:300])
    assert reply.headers.get("content-type", "").startswith("application/"), (
        label,
        reply.headers.get("content-type"),
        reply.text[:300],
    )
    body = strict_json(reply.text)
    assert isinstance(body, dict), (label, reply.text[:300])
    for error, code in zip(body.get("errors") or [], error_codes(body), strict=True):
        assert code not in (None, "INTERNAL"), (label, error)
    if reply.status_code >= 400:
        assert body.get("errors"), (label, body)
    return body
