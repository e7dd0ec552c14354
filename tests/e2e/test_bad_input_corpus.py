"""A corpus of hostile and malformed requests, sent as an attacker would over real HTTP. For
every one: never a 500, a strictly valid JSON body (RFC 8259: no NaN or Infinity), a code on
every error and never INTERNAL; and after the whole corpus nothing stored has changed and the
server still answers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.support.fuzz_values import nested
from tests.support.graphql_client import ADD_MESSAGES, API_KEYS, KEY_A, bearer
from tests.support.memory_queries import ADD_MEMORY, LIST, SEARCH, UPDATE
from tests.support.patience import patience
from tests.support.reply_checks import assert_coded_json_reply, error_codes

pytestmark = pytest.mark.timeout(300)

SESSIONS = "query($after: String) { sessions(after: $after) { nodes { id } } }"
MESSAGES = (
    'query($after: String) { session(id: "canary") { messages(after: $after) '
    "{ nodes { id content name metadata } } } }"
)
SET_CONFIG = (
    'mutation($n: Int) { setSessionConfig(input: {sessionId: "c2", maxMessages: $n}) '
    "{ session { id } } }"
)
DEEP = 100_000


def nested_text(depth: int) -> str:
    """JSON nested `depth` deep, as text (json.dumps itself would recurse too deep)."""
    return '{"k":' * depth + "1" + "}" * depth


@dataclass
class Case:
    """One request: a body (bytes, sent as is) or a GraphQL operation (JSON-encoded here)."""

    name: str
    body: bytes | None = None
    query: str | None = None
    variables: dict[str, Any] | None = None
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] | None = None

    def content(self) -> bytes | None:
        if self.body is not None:
            return self.body
        if self.query is None:
            return None
        payload: dict[str, Any] = {"query": self.query}
        if self.variables is not None:
            payload["variables"] = self.variables
        # allow_nan: the attacker sends the bare tokens NaN / Infinity, which are not JSON.
        return json.dumps(payload, allow_nan=True).encode()


def op(name: str, query: str, **variables: Any) -> Case:
    return Case(name, query=query, variables=variables)


def raw(name: str, body: bytes | str, **kwargs: Any) -> Case:
    return Case(name, body=body.encode() if isinstance(body, str) else body, **kwargs)


def add(content: str = "hi", **fields: Any) -> dict[str, Any]:
    return {"sessionId": "canary", "messages": [{"role": "USER", "content": content, **fields}]}


def memory(text: str = "likes tea", **fields: Any) -> dict[str, Any]:
    return {"input": {"text": text, "userId": "u1", "infer": False, **fields}}


def with_token(query: str, variables: dict[str, Any], token: str) -> str:
    """A request body whose "TOKEN" string is replaced by a bare token (NaN, 1e400...)."""
    return json.dumps({"query": query, "variables": variables}).replace('"TOKEN"', token)


SURROGATE = "\ud800"
Q = "{ sessions { nodes { id } } }"

CORPUS = [
    # The body is not a GraphQL request object.
    *[raw(f"body {text}", text) for text in ("null", '"text"', "42", "true", "[]", "[1]", "{}")],
    raw("batch", f'[{{"query": "{Q}"}}]'),
    raw("not json", "{"),
    raw("invalid utf-8", b'{"query": "{ sessions { nodes { id } } }", "x": "\xff\xfe"}'),
    raw("utf-16 body", json.dumps({"query": Q}).encode("utf-16")),
    raw("query not a string", '{"query": 5}'),
    raw("variables a list", f'{{"query": "{Q}", "variables": []}}'),
    raw("extensions a string", f'{{"query": "{Q}", "extensions": "x"}}'),
    raw("operationName a number", f'{{"query": "{Q}", "operationName": 5}}'),
    raw("text/plain", json.dumps({"query": Q}), headers={"content-type": "text/plain"}),
    raw("no content type", json.dumps({"query": Q}), headers={"content-type": ""}),
    # Nesting.
    raw("variables nested deep", f'{{"query": "{Q}", "variables": {{"v": {nested_text(DEEP)}}}}}'),
    raw("lists nested deep", f'{{"query": "{Q}", "variables": {{"v": {"[" * DEEP}{"]" * DEEP}}}}}'),
    op("metadata nested 500 deep", ADD_MESSAGES, **add(metadata=nested(500))),
    op("memory metadata nested 500 deep", ADD_MEMORY, **memory(metadata=nested(500))),
    # Sizes that would hold the event loop: what Strawberry converts one by one, what
    # graphql-core lexes in Python.
    op(
        "5,000 messages",
        ADD_MESSAGES,
        sessionId="canary",
        messages=[{"role": "USER", "content": "x"}] * 5000,
    ),
    op("metadata of 2,000 keys", ADD_MESSAGES, **add(metadata={f"k{i}": i for i in range(2000)})),
    op("25,000 values", ADD_MESSAGES, **add(metadata={"x": [[0] * 500] * 50})),
    raw(
        "a 150,000-character document",
        json.dumps({"query": '{ session(id: "%s") { id } }' % ("x" * 150_000)}),
    ),
    # Numbers JSON has no room for.
    *[
        raw(
            f"metadata {token}",
            with_token(ADD_MESSAGES, add(metadata={"x": "TOKEN"}), token),
        )
        for token in ("NaN", "Infinity", "-Infinity", "1e400", "-1e400")
    ],
    raw(
        "memory metadata Infinity",
        with_token(ADD_MEMORY, memory(metadata={"x": "TOKEN"}), "Infinity"),
    ),
    raw("a 5000-digit integer", f'{{"query": "{Q}", "variables": {{"v": {"9" * 5000}}}}}'),
    op("metadata 2**70", ADD_MESSAGES, **add(metadata={"x": 2**70})),
    op("memory metadata 2**70", ADD_MEMORY, **memory(metadata={"x": 2**70})),
    op("page size 2**70", "query($n: Int!) { sessions(first: $n) { nodes { id } } }", n=2**70),
    op("memories page 2**64", LIST, userId="u1", first=2**64),
    raw(
        "page size literal 2**70",
        json.dumps({"query": f"{{ sessions(first: {2**70}) {{ nodes {{ id }} }} }}"}),
    ),
    op("maxMessages 2**40", SET_CONFIG, n=2**40),
    # Lone surrogates, wherever text goes.
    op("surrogate content", ADD_MESSAGES, **add(SURROGATE)),
    op("surrogate name", ADD_MESSAGES, **add(name=SURROGATE)),
    op("surrogate metadata value", ADD_MESSAGES, **add(metadata={"x": SURROGATE})),
    op("surrogate metadata key", ADD_MESSAGES, **add(metadata={SURROGATE: 1})),
    op("surrogate message id", ADD_MESSAGES, **add(id=SURROGATE)),
    op(
        "surrogate session id",
        ADD_MESSAGES,
        sessionId=SURROGATE,
        messages=[{"role": "USER", "content": "x"}],
    ),
    op("surrogate memory text", ADD_MEMORY, **memory(SURROGATE)),
    op("surrogate memory user", ADD_MEMORY, **memory(userId=SURROGATE)),
    op("surrogate memory metadata", ADD_MEMORY, **memory(metadata={"x": SURROGATE})),
    op(
        "surrogate in a message name of addMemory",
        ADD_MEMORY,
        input={
            "messages": [{"role": "USER", "content": "hi", "name": SURROGATE}],
            "userId": "u1",
            "infer": False,
        },
    ),
    op("surrogate search", SEARCH, input={"query": SURROGATE, "userId": "u1"}),
    op(
        "surrogate update",
        UPDATE,
        input={"id": "00000000-0000-0000-0000-000000000000", "text": SURROGATE},
    ),
    op("surrogate list filter", LIST, userId="u1", metadata={"x": SURROGATE}),
    raw("surrogate in a query literal", json.dumps({"query": '{ session(id: "\\ud800") { id } }'})),
    raw(
        "escaped surrogate in the body",
        '{"query": "{ sessions { nodes { id } } }", "variables": {"x": "\\udfff"}}',
    ),
    # The same values written as GraphQL literals in the document, where no JSON decoder sees
    # them.
    *[
        raw(f"literal {name}", json.dumps({"query": query}))
        for name, query in {
            "filter 2**70": f"{{ memories(metadata: {{x: {2**70}}}) {{ nodes {{ id }} }} }}",
            "filter 1e400": "{ memories(metadata: {x: 1e400}) { nodes { id } } }",
            "filter surrogate": '{ memories(metadata: {x: "\\ud800"}) { nodes { id } } }',
            "metadata 1e400": 'mutation { addMessages(input: {sessionId: "canary", messages: '
            '[{role: USER, content: "x", metadata: {x: 1e400}}]}) { duplicateIds } }',
            "metadata 2**70": 'mutation { addMessages(input: {sessionId: "canary", messages: '
            '[{role: USER, content: "x", metadata: {x: HUGE}}]}) { duplicateIds } }'.replace(
                "HUGE", str(2**70)
            ),
            "content surrogate": 'mutation { addMessages(input: {sessionId: "canary", messages: '
            '[{role: USER, content: "\\udc00"}]}) { duplicateIds } }',
            "memory metadata 1e400": 'mutation { addMemory(input: {text: "t", userId: "u1", '
            "infer: false, metadata: {x: 1e400}}) { deleted } }",
            "search surrogate": '{ searchMemories(input: {query: "\\ud800", userId: "u1"}) '
            "{ score } }",
            "prompt surrogate": '{ memoryPrompt(input: {sessionId: "canary", query: "\\ud800", '
            'userId: "u1"}) { tokenCount } }',
            "prompt budget 2**40": '{ memoryPrompt(input: {sessionId: "canary", userId: "u1", '
            f"tokenBudget: {2**40}}}) {{ tokenCount }} }}",
        }.items()
    ],
    # Cursors.
    *[
        op(f"messages cursor {c!r}", MESSAGES, after=c)
        for c in ("²", "٣", "🙂", "bTrCsg==", "=" * 9)
    ],
    *[op(f"sessions cursor {c!r}", SESSIONS, after=c) for c in ("²", "٣", "bTrCsg==")],
    *[op(f"memories cursor {c!r}", LIST, userId="u1", after=c) for c in ("²", "٣", "bTrCsg==")],
    # Documents that are valid JSON but not one runnable operation.
    raw(
        "several operations, no name",
        json.dumps(
            {
                "query": "subscription S { sessionEvents { type } } "
                "query Q { sessions { nodes { id } } }"
            }
        ),
    ),
    raw(
        "two queries, no name",
        json.dumps(
            {"query": "query A { sessions { nodes { id } } } query B { sessions { nodes { id } } }"}
        ),
    ),
    raw("unknown operation name", json.dumps({"query": Q, "operationName": "Nope"})),
    raw("no query", json.dumps({"variables": {}})),
    raw("unknown fragment", json.dumps({"query": "query { ...Nope }"})),
    raw("fragment cycle", json.dumps({"query": "query { ...A } fragment A on Query { ...A }"})),
    # Other methods and transports.
    Case(
        "mutation over GET",
        method="GET",
        params={"query": 'mutation { deleteSession(input: {sessionId: "canary"}) { sessionId } }'},
    ),
    Case("GET variables not JSON", method="GET", params={"query": Q, "variables": "{"}),
    Case("GET variables NaN", method="GET", params={"query": Q, "variables": '{"x": NaN}'}),
    Case(
        "GET no query",
        method="GET",
        params={"variables": "{}"},
        headers={"accept": "application/json"},
    ),
    Case("PUT", body=json.dumps({"query": Q}).encode(), method="PUT"),
    Case("DELETE", method="DELETE"),
]


# The client's mistake, never a dependency's failure or ours.
CLIENT_CODES = ("BAD_USER_INPUT", "LIMIT_EXCEEDED", "NOT_FOUND")


async def snapshot(client: httpx.AsyncClient) -> Any:
    state = []
    for query, variables in (
        (MESSAGES, {}),
        (SESSIONS, {}),
        (LIST, {"userId": "u1"}),
        (LIST, {}),
    ):
        reply = await client.post("/graphql", json={"query": query, "variables": variables})
        state.append(reply.json())
    return state


@pytest.fixture
async def client(module_server, redis):
    url = module_server(api_keys=API_KEYS)
    async with httpx.AsyncClient(
        base_url=url, headers=bearer(KEY_A), timeout=patience(2)
    ) as client:
        await client.post(
            "/graphql",
            json={"query": ADD_MESSAGES, "variables": add("canary message", metadata={"a": 1})},
        )
        await client.post(
            "/graphql", json={"query": ADD_MEMORY, "variables": memory("u1 likes tea")}
        )
        yield client


async def send(client: httpx.AsyncClient, case: Case) -> httpx.Response:
    headers = {"content-type": "application/json", **case.headers}
    headers = {name: value for name, value in headers.items() if value}
    return await client.request(
        case.method, "/graphql", content=case.content(), params=case.params, headers=headers
    )


async def test_every_bad_request_is_a_coded_json_error_and_changes_nothing(client):
    before = await snapshot(client)
    failures = []
    for case in CORPUS:
        try:
            body = assert_coded_json_reply(await send(client, case), case.name)
            codes = error_codes(body)
            assert all(code in CLIENT_CODES for code in codes), (case.name, body)
        except (AssertionError, ValueError, httpx.TransportError) as error:
            failures.append(f"{case.name}: {error!r}"[:400])
    assert not failures, "\n".join(failures)
    assert await snapshot(client) == before
    assert (await client.get("/health")).json() == {"status": "ok"}
