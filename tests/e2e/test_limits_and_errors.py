"""Every limit and every failure reaches the client as a GraphQL error with `extensions.code`;
a failed operation changes nothing; internal details never reach the client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from gql.transport.exceptions import TransportQueryError

from tests.support.graphql_client import (
    ADD_MESSAGES,
    API_KEYS,
    KEY_A,
    SESSION_EVENTS,
    add_messages,
    bearer,
    codes,
    execute,
    execute_error,
    message,
    post,
    request,
)
from tests.support.patience import patience

LIMITS = {
    "max_query_depth": 5,
    "max_query_aliases": 3,
    "max_query_tokens": 120,
    "max_messages_per_call": 3,
    "max_content_chars": 20,
    "max_metadata_bytes": 32,
    "max_request_bytes": 2048,
}
SESSION = "query One($id: ID!) { session(id: $id) { messageCount } }"
CONTENTS = "query C($id: ID!) { session(id: $id) { messages { nodes { content } } } }"


@pytest.fixture
def limited(module_server, redis) -> str:
    """A live server with small limits, on an empty database; its base URL."""
    return module_server(api_keys=API_KEYS, **LIMITS)


@pytest.fixture
async def api(limited, connect):
    return await connect(limited, KEY_A)


async def error_of(url: str, query: str, variables: dict | None = None) -> dict:
    """The one error of a request that must fail, checked to be a well-formed answer."""
    reply = await post(url, query, variables, key=KEY_A)
    assert reply.status_code == 200, reply.text
    errors = reply.json()["errors"]
    assert len(errors) == 1, errors
    return errors[0]


def code(error: dict) -> str | None:
    return (error.get("extensions") or {}).get("code")


async def test_a_query_deeper_than_the_limit_is_limit_exceeded(limited):
    # Depth counts levels below the root field, as graphql-depth-limit does.
    at_limit = "{ sessions { edges { node { messages { nodes { id } } } } } }"
    reply = await post(limited, at_limit, key=KEY_A)
    assert reply.json() == {"data": {"sessions": {"edges": []}}}
    deeper = "{ sessions { edges { node { messages { edges { node { id } } } } } } }"
    assert code(await error_of(limited, deeper)) == "LIMIT_EXCEEDED"


async def test_more_aliases_than_the_limit_is_limit_exceeded(limited):
    three = (
        "{ a: sessions { nodes { id } } b: sessions { nodes { id } } c: sessions { nodes { id } } }"
    )
    assert "errors" not in (await post(limited, three, key=KEY_A)).json()
    four = three[:-1] + "d: sessions { nodes { id } } }"
    assert code(await error_of(limited, four)) == "LIMIT_EXCEEDED"


async def test_a_document_with_more_tokens_than_the_limit_is_limit_exceeded(limited):
    fields = " ".join(["id"] * 120)
    error = await error_of(limited, f"{{ sessions {{ nodes {{ {fields} }} }} }}")
    assert code(error) == "LIMIT_EXCEEDED"


async def test_more_messages_than_allowed_per_call_is_limit_exceeded_and_stores_none(api):
    four = [message(f"m{i}") for i in range(4)]
    errors = await execute_error(api, ADD_MESSAGES, sessionId="chat", messages=four)
    assert codes(errors) == ["LIMIT_EXCEEDED"]
    assert errors[0]["extensions"]["limit"] == 3
    assert await execute(api, SESSION, id="chat") == {"session": None}
    # The limit itself is allowed.
    await execute(api, ADD_MESSAGES, sessionId="chat", messages=four[:3])
    assert (await execute(api, SESSION, id="chat"))["session"]["messageCount"] == 3


async def test_content_longer_than_the_limit_is_limit_exceeded(api):
    await add_messages(api, "chat", "x" * 20)
    errors = await execute_error(api, ADD_MESSAGES, sessionId="chat", messages=[message("x" * 21)])
    assert codes(errors) == ["LIMIT_EXCEEDED"]
    assert errors[0]["extensions"]["field"] == "messages[0].content"


async def test_metadata_larger_than_the_limit_is_limit_exceeded(api):
    errors = await execute_error(
        api,
        ADD_MESSAGES,
        sessionId="chat",
        messages=[message("hi", metadata={"note": "y" * 40})],
    )
    assert codes(errors) == ["LIMIT_EXCEEDED"]
    assert errors[0]["extensions"]["field"] == "messages[0].metadata"
    assert await execute(api, SESSION, id="chat") == {"session": None}


@pytest.mark.parametrize("bad_id", ["", "has space", "-leading-dash", "x" * 129, "emoji🙂"])
async def test_a_malformed_session_id_is_bad_user_input(api, bad_id):
    operations = [
        (SESSION, {"id": bad_id}),
        (ADD_MESSAGES, {"sessionId": bad_id, "messages": [message("hi")]}),
        (
            "mutation($id: String!) { setSessionConfig(input: {sessionId: $id, maxMessages: 3})"
            " { session { id } } }",
            {"id": bad_id},
        ),
        (
            "mutation($id: String!) { deleteSession(input: {sessionId: $id}) { sessionId } }",
            {"id": bad_id},
        ),
    ]
    for query, variables in operations:
        errors = await execute_error(api, query, **variables)
        assert codes(errors) == ["BAD_USER_INPUT"], query


@pytest.mark.parametrize("cursor", ["zzz", "bTpub3QtYS1udW1iZXI=", "!!!", "c2Vzc2lvbg=="])
async def test_an_invalid_cursor_is_bad_user_input(api, cursor):
    await add_messages(api, "chat", "hi")
    messages = 'query($c: String) { session(id: "chat") { messages(after: $c) { nodes { id } } } }'
    assert codes(await execute_error(api, messages, c=cursor)) == ["BAD_USER_INPUT"]
    sessions = "query($c: String) { sessions(after: $c) { nodes { id } } }"
    assert codes(await execute_error(api, sessions, c=cursor)) == ["BAD_USER_INPUT"]


async def test_out_of_range_settings_and_page_sizes_are_bad_user_input(api):
    config = (
        'mutation($n: Int!) { setSessionConfig(input: {sessionId: "chat", maxMessages: $n})'
        " { session { id } } }"
    )
    assert codes(await execute_error(api, config, n=0)) == ["BAD_USER_INPUT"]
    assert await execute(api, SESSION, id="chat") == {"session": None}
    page = "query($n: Int!) { sessions(first: $n) { nodes { id } } }"
    assert codes(await execute_error(api, page, n=-1)) == ["BAD_USER_INPUT"]


async def test_an_unknown_field_is_bad_user_input(limited):
    error = await error_of(limited, "{ sessions { nodes { id nonsense } } }")
    assert code(error) == "BAD_USER_INPUT"
    assert "nonsense" in error["message"]


async def test_a_syntax_error_is_bad_user_input(limited):
    assert code(await error_of(limited, "{ sessions { ")) == "BAD_USER_INPUT"


async def test_a_variable_of_the_wrong_type_is_bad_user_input(limited):
    query = "query($n: Int!) { sessions(first: $n) { nodes { id } } }"
    assert code(await error_of(limited, query, {"n": "abc"})) == "BAD_USER_INPUT"


async def test_a_subscription_over_plain_http_is_bad_user_input(limited):
    assert code(await error_of(limited, SESSION_EVENTS)) == "BAD_USER_INPUT"


async def test_a_body_above_the_limit_is_413_limit_exceeded(limited):
    big = [message("x" * 20, metadata={"pad": "p" * 20}) for _ in range(3)] * 20
    async with httpx.AsyncClient(
        base_url=limited, headers=bearer(KEY_A), timeout=patience()
    ) as client:
        reply = await client.post(
            "/graphql",
            json={"query": ADD_MESSAGES, "variables": {"sessionId": "chat", "messages": big}},
        )
    assert reply.status_code == 413
    assert codes(reply.json()["errors"]) == ["LIMIT_EXCEEDED"]
    assert (await post(limited, SESSION, {"id": "chat"}, key=KEY_A)).json() == {
        "data": {"session": None}
    }


async def test_a_streamed_body_above_the_limit_is_413_limit_exceeded(limited):
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ sessions { nodes { id } } }", "padding": "'
        for _ in range(10):
            yield b"x" * 512
        yield b'"}'

    async with httpx.AsyncClient(
        base_url=limited, headers=bearer(KEY_A), timeout=patience()
    ) as client:
        reply = await client.post(
            "/graphql", content=chunks(), headers={"content-type": "application/json"}
        )
    assert "content-length" not in reply.request.headers
    assert reply.status_code == 413
    assert codes(reply.json()["errors"]) == ["LIMIT_EXCEEDED"]


async def test_a_batch_with_one_bad_message_stores_none_of_it(api):
    await add_messages(api, "chat", "before")
    before = await execute(api, CONTENTS, id="chat")
    batch = [message("fine"), message("also fine"), message("x" * 21)]
    errors = await execute_error(api, ADD_MESSAGES, sessionId="chat", messages=batch)
    assert codes(errors) == ["LIMIT_EXCEEDED"]
    assert errors[0]["extensions"]["field"] == "messages[2].content"
    assert await execute(api, CONTENTS, id="chat") == before
    assert (await execute(api, SESSION, id="chat"))["session"]["messageCount"] == 1


async def test_a_failed_retry_does_not_disturb_the_stored_messages(api):
    await execute(api, ADD_MESSAGES, sessionId="chat", messages=[message("one", id="m-1")])
    batch = [message("one", id="m-1"), message("two", id="bad id")]
    assert codes(await execute_error(api, ADD_MESSAGES, sessionId="chat", messages=batch)) == [
        "BAD_USER_INPUT"
    ]
    assert await execute(api, CONTENTS, id="chat") == {
        "session": {"messages": {"nodes": [{"content": "one"}]}}
    }


# -- Redis down --------------------------------------------------------------------------------

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def redis_down(module_server) -> str:
    """A live server whose Redis does not answer; its base URL."""
    return module_server(api_keys=API_KEYS, redis_url=DEAD_REDIS)


def assert_masked(error: dict) -> None:
    """No internals: no traceback, exception class, Redis address or URL."""
    text = str(error)
    for leak in ("Traceback", 'File "', "ConnectionError", "redis://", "127.0.0.1", "Errno"):
        assert leak not in text, (leak, error)
    assert not re.search(r":1\b", error["message"])


async def test_a_redis_outage_is_unavailable_with_no_internals(redis_down, connect):
    api = await connect(redis_down, KEY_A)
    for query, variables in [
        (SESSION, {"id": "chat"}),
        ("{ sessions { nodes { id } } }", {}),
        (ADD_MESSAGES, {"sessionId": "chat", "messages": [message("hi")]}),
        ('mutation { deleteSession(input: {sessionId: "chat"}) { sessionId } }', {}),
    ]:
        errors = await execute_error(api, query, **variables)
        assert codes(errors) == ["UNAVAILABLE"], query
        assert_masked(errors[0])


async def test_subscribing_during_a_redis_outage_is_unavailable(redis_down, connect):
    socket = await connect(redis_down, KEY_A, ws=True)
    with pytest.raises(TransportQueryError) as failure:
        async for _ in socket.subscribe(request(SESSION_EVENTS, sessionId="chat")):
            pass
    errors = failure.value.errors
    assert errors
    assert codes(errors) == ["UNAVAILABLE"]
    assert_masked(errors[0])


async def test_readiness_fails_while_liveness_holds_during_a_redis_outage(redis_down):
    async with httpx.AsyncClient(base_url=redis_down, timeout=patience()) as client:
        live = await client.get("/health")
        ready = await client.get("/health/ready")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        # No subscriber is waiting on events; the embedded vector store needs no Redis.
        "checks": {"redis": "unavailable", "events": "ok", "vector_store": "ok"},
    }


async def test_readiness_is_ok_with_redis_up(limited):
    async with httpx.AsyncClient(base_url=limited, timeout=patience()) as client:
        ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "checks": {"redis": "ok", "events": "ok", "vector_store": "ok"},
    }
