"""The /mcp endpoint end to end: the MCP SDK's own client (streamable HTTP) against a live
server on the embedded store and local embeddings, beside GraphQL on the same server."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2
import pytest
from gql.client import AsyncClientSession
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from tests.e2e.conftest import BURST, KEY_RATE, LIMITED_KEYS, TENANT_LIMITS, ServerProcess
from tests.support.graphql_client import (
    API_KEYS,
    KEY_A,
    KEY_B,
    MESSAGE_FIELDS,
    bearer,
    execute,
    post,
)
from tests.support.jwt_tokens import AUDIENCE, ISSUER, claims, hmac_signed
from tests.support.patience import patience

TOOLS = {
    "add_messages",
    "get_context",
    "memory_prompt",
    "search_memories",
    "add_memory",
    "update_memory",
    "delete_memory",
}
CONTEXT = f"""
query Context($id: ID!) {{
  session(id: $id) {{
    context {{
      messages {{ {MESSAGE_FIELDS} }} tokenCount strategy truncated overBudget
      summary {{ {MESSAGE_FIELDS} }}
    }}
  }}
}}
"""
PROMPT = """
query Prompt($input: MemoryPromptInput!) {
  memoryPrompt(input: $input) {
    messages { role content name tokenCount messageId }
    tokenCount tokenBudget overBudget truncated query
    memories { score memory { id text category } }
    omittedMemoryIds omittedMessageCount memoriesUnavailable
  }
}
"""


@contextlib.asynccontextmanager
async def mcp_session(url: str, key: str | None = KEY_A) -> AsyncIterator[ClientSession]:
    """An initialized MCP client session on `{url}/mcp`, authenticated with `key`. Opened in
    the test itself, not a fixture: the SDK's task groups end in the task they began in."""
    http = httpx2.AsyncClient(headers=bearer(key), timeout=patience())
    async with (
        http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """The structured content of a tool call that must succeed."""
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def call_error(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """`{code, message, ...}` of a tool call that must fail; its text says the same."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    error = result.structured_content
    assert error is not None
    assert [block.text for block in result.content] == [f"{error['code']}: {error['message']}"]
    return error


def unique(prefix: str) -> str:
    # The embedded vector store lives as long as the module's server: ids keep tests apart.
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_the_tools_are_listed_with_descriptions_and_schemas(url: str) -> None:
    async with mcp_session(url) as mcp:
        tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
        assert set(tools) == TOOLS
        for tool in tools.values():
            assert tool.description, tool.name
            assert tool.input_schema["type"] == "object", tool.name
            assert tool.output_schema is not None, tool.name
        add = tools["add_messages"]
        assert add.input_schema["required"] == ["sessionId", "messages"]
        message = add.input_schema["$defs"]["MessageInput"]
        assert message["properties"]["role"]["enum"] == ["SYSTEM", "USER", "ASSISTANT", "TOOL"]
        assert {"tokenCount", "isSummary", "createdAt"} <= set(
            add.output_schema["$defs"]["Message"]["properties"]
        )
        assert set(tools["get_context"].output_schema["properties"]) == {
            "messages",
            "tokenCount",
            "strategy",
            "truncated",
            "overBudget",
            "summary",
        }
        assert tools["get_context"].annotations.read_only_hint is True
        assert tools["delete_memory"].annotations.destructive_hint is True


async def test_a_conversation_written_turn_by_turn_reads_back_as_graphql_shows_it(
    url: str, api: AsyncClientSession
) -> None:
    async with mcp_session(url) as mcp:
        session_id = unique("chat")
        turns = [
            ("USER", "Hi, I'm planning a trip to Lisbon."),
            ("ASSISTANT", "Lovely! When are you going?"),
            ("USER", "In May, for a week."),
            ("ASSISTANT", "May is a great time: warm, not yet crowded."),
        ]
        for role, content in turns:
            added = await call(
                mcp,
                "add_messages",
                sessionId=session_id,
                messages=[{"role": role, "content": content, "metadata": {"turn": content[:5]}}],
            )
            assert added["sessionId"] == session_id
            assert added["duplicateIds"] == []
            [stored] = added["messages"]
            assert (stored["role"], stored["content"]) == (role, content)

        context = await call(mcp, "get_context", sessionId=session_id)
        assert [(m["role"], m["content"]) for m in context["messages"]] == turns
        seqs = [m["seq"] for m in context["messages"]]
        assert seqs == sorted(seqs)
        assert context["tokenCount"] == sum(m["tokenCount"] for m in context["messages"]) > 0
        # The same result GraphQL gives, field for field.
        graphql = await execute(api, CONTEXT, id=session_id)
        assert context == graphql["session"]["context"]


async def test_the_memory_prompt_is_the_one_graphql_builds(
    url: str, api: AsyncClientSession
) -> None:
    async with mcp_session(url) as mcp, mcp_session(url, KEY_B) as mcp_b:
        session_id, user = unique("dinner"), unique("carol")
        for text in ["Carol is allergic to peanuts.", "Carol likes jazz.", "Carol owns a cat."]:
            await call(mcp, "add_memory", text=text, userId=user, infer=False)
        await call(
            mcp,
            "add_messages",
            sessionId=session_id,
            messages=[{"role": "USER", "content": "What should I cook for my dinner party?"}],
        )
        arguments = {"sessionId": session_id, "userId": user, "memoryLimit": 2}

        built = await call(mcp, "memory_prompt", query="food allergies", **arguments)

        graphql = await execute(api, PROMPT, input={"query": "food allergies", **arguments})
        expected = graphql["memoryPrompt"]
        assert {k: v for k, v in built.items() if k != "memories"} == {
            k: v for k, v in expected.items() if k != "memories"
        }
        assert [(h["memory"]["id"], h["memory"]["text"]) for h in built["memories"]] == [
            (h["memory"]["id"], h["memory"]["text"]) for h in expected["memories"]
        ]
        system, newest = built["messages"]
        assert system["role"] == "SYSTEM"
        assert "peanuts" in system["content"]
        assert newest["content"] == "What should I cook for my dinner party?"
        # Another tenant's session looks missing, as a session nobody has.
        theirs = await call_error(mcp_b, "memory_prompt", **arguments)
        nobodys = await call_error(mcp_b, "memory_prompt", **{**arguments, "sessionId": "none"})
        assert theirs["code"] == nobodys["code"] == "NOT_FOUND"


async def test_a_retried_message_is_stored_once(url: str) -> None:
    async with mcp_session(url) as mcp:
        session_id = unique("retry")
        message = {"role": "user", "content": "Once only.", "id": "m-1"}
        await call(mcp, "add_messages", sessionId=session_id, messages=[message])
        again = await call(mcp, "add_messages", sessionId=session_id, messages=[message])
        assert again["duplicateIds"] == ["m-1"]
        context = await call(mcp, "get_context", sessionId=session_id)
        assert [m["id"] for m in context["messages"]] == ["m-1"]


async def test_a_memory_is_added_found_updated_and_deleted(url: str) -> None:
    async with mcp_session(url) as mcp:
        user = unique("alice")
        added = await call(
            mcp,
            "add_memory",
            text="Alice is allergic to peanuts.",
            userId=user,
            category="PREFERENCE",
            metadata={"source": "mcp"},
            infer=False,
        )
        [memory] = added["added"]
        assert (memory["text"], memory["userId"], memory["category"]) == (
            "Alice is allergic to peanuts.",
            user,
            "PREFERENCE",
        )
        assert memory["metadata"] == {"source": "mcp"}
        await call(
            mcp, "add_memory", text="Alice works as a nurse in Berlin.", userId=user, infer=False
        )

        found = await call(mcp, "search_memories", query="Which foods make her ill?", userId=user)
        assert found["hits"][0]["memory"]["id"] == memory["id"]
        assert found["hits"][0]["score"] > 0
        only = await call(
            mcp, "search_memories", query="food", userId=user, categories=["PREFERENCE"], limit=5
        )
        assert [h["memory"]["id"] for h in only["hits"]] == [memory["id"]]

        updated = await call(
            mcp, "update_memory", id=memory["id"], text="Alice is allergic to tree nuts."
        )
        assert updated["memory"]["text"] == "Alice is allergic to tree nuts."
        assert updated["memory"]["id"] == memory["id"]

        assert await call(mcp, "delete_memory", id=memory["id"]) == {"id": memory["id"]}
        gone = await call_error(mcp, "delete_memory", id=memory["id"])
        assert gone["code"] == "NOT_FOUND"
        left = await call(mcp, "search_memories", query="Which foods make her ill?", userId=user)
        assert memory["id"] not in [h["memory"]["id"] for h in left["hits"]]


@pytest.mark.parametrize(
    ("tool", "arguments", "field"),
    [
        # Refused by the tool's input schema.
        (
            "add_messages",
            {"sessionId": "s", "messages": [{"role": "narrator", "content": "x"}]},
            None,
        ),
        ("add_messages", {"sessionId": "s"}, None),
        ("search_memories", {"query": "q", "limit": "many"}, None),
        # Refused by the service, as over GraphQL.
        (
            "add_messages",
            {"sessionId": "no spaces", "messages": [{"role": "USER", "content": "x"}]},
            "sessionId",
        ),
        ("add_messages", {"sessionId": "s", "messages": []}, "messages"),
        ("add_memory", {"text": "No scope."}, "userId"),
        ("update_memory", {"id": "abc"}, "text"),
        ("search_memories", {"query": "q"}, "userId"),
    ],
)
async def test_bad_input_is_a_coded_error(
    url: str, tool: str, arguments: dict[str, Any], field: str | None
) -> None:
    async with mcp_session(url) as mcp:
        error = await call_error(mcp, tool, **arguments)
        assert error["code"] == "BAD_USER_INPUT"
        assert error.get("field") == field
        assert error["message"]


async def test_a_limit_is_limit_exceeded(url: str) -> None:
    async with mcp_session(url) as mcp:
        error = await call_error(mcp, "search_memories", query="q", userId="u", limit=100_000)
        assert error["code"] == "LIMIT_EXCEEDED"


async def test_a_missing_session_is_not_found(url: str) -> None:
    async with mcp_session(url) as mcp:
        error = await call_error(mcp, "get_context", sessionId="never-written")
        assert error == {
            "code": "NOT_FOUND",
            "message": "No session 'never-written'.",
            "field": "sessionId",
        }


@pytest.mark.parametrize("key", [None, "sk-not-a-key"])
async def test_a_wrong_or_missing_key_is_refused_as_graphql_refuses_it(
    url: str, key: str | None
) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }
    headers = {**bearer(key), "Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(base_url=url, timeout=patience()) as client:
        refused = await client.post("/mcp", json=initialize, headers=headers)
    graphql = await post(url, "{ __typename }", key=key)
    assert refused.status_code == graphql.status_code == 401
    assert refused.json() == graphql.json()
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert refused.headers["www-authenticate"] == graphql.headers["www-authenticate"]

    # The SDK's own client gets the same answer, and goes no further.
    statuses: list[int] = []

    async def record(response: httpx2.Response) -> None:
        statuses.append(response.status_code)

    http = httpx2.AsyncClient(
        headers=bearer(key), timeout=patience(), event_hooks={"response": [record]}
    )
    with pytest.raises(ExceptionGroup):
        async with (
            http,
            streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
    assert statuses == [401]


async def test_another_tenants_ids_look_missing(url: str) -> None:
    async with mcp_session(url) as mcp, mcp_session(url, KEY_B) as mcp_b:
        session_id, user = unique("private"), unique("bob")
        await call(
            mcp,
            "add_messages",
            sessionId=session_id,
            messages=[{"role": "USER", "content": "Mine."}],
        )
        [memory] = (await call(mcp, "add_memory", text="Bob's secret.", userId=user, infer=False))[
            "added"
        ]

        theirs = await call_error(mcp_b, "get_context", sessionId=session_id)
        nobodys = await call_error(mcp_b, "get_context", sessionId=unique("none"))
        assert theirs["code"] == nobodys["code"] == "NOT_FOUND"
        assert theirs["message"] == f"No session '{session_id}'."
        for tool, arguments in [
            ("update_memory", {"text": "Changed."}),
            ("delete_memory", {}),
        ]:
            theirs = await call_error(mcp_b, tool, id=memory["id"], **arguments)
            nobodys = await call_error(mcp_b, tool, id=uuid.uuid4().hex, **arguments)
            assert theirs == {**nobodys, "message": theirs["message"]}
            assert theirs == {
                "code": "NOT_FOUND",
                "message": f"No memory '{memory['id']}'.",
                "field": "id",
            }
        found = await call(mcp_b, "search_memories", query="secret", userId=user)
        assert found["hits"] == []

        # Untouched for its owner.
        context = await call(mcp, "get_context", sessionId=session_id)
        assert [m["content"] for m in context["messages"]] == ["Mine."]
        still = await call(mcp, "search_memories", query="secret", userId=user)
        assert [h["memory"]["text"] for h in still["hits"]] == ["Bob's secret."]


async def test_mcp_can_be_turned_off(module_server: Any, redis: Any) -> None:
    url = module_server(mcp_enabled=False)
    async with httpx.AsyncClient(base_url=url, timeout=patience()) as client:
        response = await client.post("/mcp", json={})
    assert response.status_code == 404
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": '
            b'"search_memories", "arguments": {"query": "q", "userId": "u", "threshold": NaN}}}',
            "BAD_USER_INPUT",
        ),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"n": 1e400}}',
            "BAD_USER_INPUT",
        ),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"s": "\\ud800"}}',
            "BAD_USER_INPUT",
        ),
        (b"\xff", "BAD_USER_INPUT"),
        (b"[" * 100 + b"]" * 100, "LIMIT_EXCEEDED"),
    ],
)
async def test_json_graphql_refuses_is_refused_before_the_sdk_reads_it(
    url: str, body: bytes, code: str
) -> None:
    headers = {
        **bearer(KEY_A),
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    async with httpx.AsyncClient(base_url=url, timeout=patience()) as client:
        response = await client.post("/mcp", content=body, headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == -32700
    assert error["data"] == {"code": code}


async def test_a_body_over_the_limit_is_refused_unread(url: str) -> None:
    headers = {**bearer(KEY_A), "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, timeout=patience()) as client:
        response = await client.post("/mcp", content=b" " * (3 * 1024 * 1024), headers=headers)
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"


async def test_tool_calls_count_against_the_tenants_request_rate(
    module_server: Any, redis: Any
) -> None:
    url = module_server(api_keys=LIMITED_KEYS, tenant_limits=TENANT_LIMITS)
    session_id = unique("rate")
    async with mcp_session(url, KEY_RATE) as mcp:
        await mcp.list_tools()  # protocol, not a request of the API: not counted
        for turn in range(BURST):
            await call(
                mcp,
                "add_messages",
                sessionId=session_id,
                messages=[{"role": "USER", "content": f"turn {turn}"}],
            )
        refused = await call_error(mcp, "get_context", sessionId=session_id)
    assert refused["code"] == "LIMIT_EXCEEDED"
    assert refused["retryAfterSeconds"] > 0


async def test_any_replica_serves_any_request(two_processes: list[ServerProcess]) -> None:
    """Two real `maas serve` processes: what one was told, the other reads (stateless MCP)."""
    first, second = two_processes
    session_id = unique("replicas")
    async with mcp_session(first.url) as one, mcp_session(second.url) as two:
        for turn, writer in enumerate([one, two, one]):
            await call(
                writer,
                "add_messages",
                sessionId=session_id,
                messages=[{"role": "USER", "content": f"turn {turn}"}],
            )
        for reader in (one, two):
            context = await call(reader, "get_context", sessionId=session_id)
            contents = [m["content"] for m in context["messages"]]
            assert contents == ["turn 0", "turn 1", "turn 2"]


async def test_the_sdks_client_on_the_newest_protocol_is_served_the_same(url: str) -> None:
    """`mcp.Client` negotiates the newest protocol (server/discover, no initialize handshake):
    its requests take the SDK's other path, with the same authentication and tools."""
    session_id = unique("modern")
    http = httpx2.AsyncClient(headers=bearer(KEY_A), timeout=patience())
    async with http, Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client:
        assert client.session.protocol_version in MODERN_PROTOCOL_VERSIONS
        message = {"role": "USER", "content": "Hello from the newest protocol."}
        await client.call_tool("add_messages", {"sessionId": session_id, "messages": [message]})
        context = await client.call_tool("get_context", {"sessionId": session_id})
        assert [m["content"] for m in context.structured_content["messages"]] == [
            message["content"]
        ]
        missing = await client.call_tool("get_context", {"sessionId": unique("none")})
        assert missing.is_error
        assert missing.structured_content["code"] == "NOT_FOUND"


async def test_no_stream_is_held_open(url: str) -> None:
    """Stateless: a GET for a server-to-client stream is refused at once (MCP lets a server
    answer 405), not held open with nothing to send."""
    headers = {**bearer(KEY_A), "Accept": "text/event-stream"}
    async with httpx.AsyncClient(base_url=url, timeout=patience()) as client:
        response = await client.get("/mcp", headers=headers)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"]["data"] == {"code": "BAD_USER_INPUT"}


async def test_a_jwt_stands_for_its_tenant_as_over_graphql(module_server: Any, redis: Any) -> None:
    secret = b"an-hmac-secret-of-at-least-32-bytes!"
    url = module_server(
        api_keys=API_KEYS,
        jwt_secret=secret.decode(),
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_leeway_seconds=0,
    )
    session_id = unique("jwt")
    message = {"role": "USER", "content": "Written with an API key of tenant A."}
    async with mcp_session(url, KEY_A) as by_key:
        await call(by_key, "add_messages", sessionId=session_id, messages=[message])
    async with mcp_session(url, hmac_signed(claims("tenant-a"), secret)) as by_token:
        context = await call(by_token, "get_context", sessionId=session_id)
        assert [m["content"] for m in context["messages"]] == [message["content"]]
    async with mcp_session(url, hmac_signed(claims("tenant-b"), secret)) as other:
        error = await call_error(other, "get_context", sessionId=session_id)
        assert error["code"] == "NOT_FOUND"

    expired = hmac_signed(claims("tenant-a", lifetime=-60), secret)
    headers = {**bearer(expired), "Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(base_url=url, timeout=patience()) as client:
        refused = await client.post("/mcp", json={}, headers=headers)
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_refusal_reads_the_same_over_mcp_and_graphql(url: str) -> None:
    graphql = await post(
        url,
        'mutation { addMessages(input: {sessionId: "no spaces", '
        'messages: [{role: USER, content: "x"}]}) { sessionId } }',
        key=KEY_A,
    )
    [expected] = graphql.json()["errors"]
    async with mcp_session(url) as mcp:
        error = await call_error(
            mcp,
            "add_messages",
            sessionId="no spaces",
            messages=[{"role": "USER", "content": "x"}],
        )
    assert error == {"message": expected["message"], **expected["extensions"]}
