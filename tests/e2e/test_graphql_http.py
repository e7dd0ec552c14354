"""The GraphQL API over HTTP, through the real gql client against a live server."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import httpx
import pytest
from gql.client import AsyncClientSession

from tests.support.fake_llm import FakeLLM
from tests.support.graphql_client import (
    KEY_A,
    MESSAGE_FIELDS,
    add_messages,
    bearer,
    codes,
    execute,
    execute_error,
    message,
    subscribed,
)
from tests.support.patience import patience

pytestmark = pytest.mark.single_and_cluster

PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"

LAST = f"""
query Last($id: ID!, $last: Int) {{
  session(id: $id) {{
    messages(last: $last) {{ nodes {{ content }} {PAGE_INFO} }}
  }}
}}
"""
FORWARD = f"""
query Forward($id: ID!, $first: Int, $after: String) {{
  session(id: $id) {{
    messages(first: $first, after: $after) {{
      edges {{ cursor node {{ seq content }} }}
      {PAGE_INFO}
    }}
  }}
}}
"""
CONTEXT = f"""
query Context($id: ID!) {{
  session(id: $id) {{
    messageCount
    context {{
      messages {{ {MESSAGE_FIELDS} }}
      tokenCount strategy truncated
      summary {{ id }}
    }}
  }}
}}
"""
CONTEXT_BUDGET = """
query Context($id: ID!) {
  session(id: $id) {
    context { messages { content } tokenCount strategy truncated overBudget summary { id } }
  }
}
"""
SESSIONS = f"""
query Sessions($first: Int!, $after: String) {{
  sessions(first: $first, after: $after) {{
    edges {{ cursor node {{ id messageCount lastActivityAt }} }}
    {PAGE_INFO}
  }}
}}
"""
SET_CONFIG = """
mutation Set($input: SetSessionConfigInput!) {
  setSessionConfig(input: $input) {
    session { id config { strategy maxMessages maxTokens ttlSeconds } }
  }
}
"""
DELETE = """
mutation Delete($id: String!) { deleteSession(input: {sessionId: $id}) { sessionId } }
"""
ADD = """
mutation Add($sessionId: String!, $messages: [MessageInput!]!) {
  addMessages(input: {sessionId: $sessionId, messages: $messages}) {
    duplicateIds messages { id seq content }
  }
}
"""


SESSION = "query One($id: ID!) { session(id: $id) { id messageCount } }"


async def contents_of(api: AsyncClientSession, session_id: str) -> list[str]:
    result = await execute(api, LAST, id=session_id, last=500)
    return [m["content"] for m in result["session"]["messages"]["nodes"]]


async def test_added_messages_come_back_with_ids_seq_token_counts_and_times(api):
    before = datetime.now().astimezone()
    payload = await add_messages(api, "chat-1", "hello", "how are you?")
    assert payload["sessionId"] == "chat-1"
    assert payload["duplicateIds"] == []
    stored = payload["messages"]
    assert [m["content"] for m in stored] == ["hello", "how are you?"]
    assert [m["seq"] for m in stored] == [1, 2]
    assert all(m["id"] for m in stored)
    assert len({m["id"] for m in stored}) == 2
    assert all(m["tokenCount"] > 0 for m in stored)
    assert all(m["role"] == "USER" and m["isSummary"] is False for m in stored)
    for m in stored:
        created = datetime.fromisoformat(m["createdAt"])
        assert created.tzinfo is not None
        assert abs((created - before).total_seconds()) < 60

    more = await execute(
        api,
        """mutation($m: [MessageInput!]!) {
             addMessages(input: {sessionId: "chat-1", messages: $m}) {
               messages { id seq role name metadata }
             }
           }""",
        m=[message("a tool said", "TOOL", id="tool-1", name="search", metadata={"k": [1, 2]})],
    )
    assert more["addMessages"]["messages"] == [
        {"id": "tool-1", "seq": 3, "role": "TOOL", "name": "search", "metadata": {"k": [1, 2]}}
    ]


async def test_last_n_messages_are_the_newest_oldest_first(api):
    await add_messages(api, "chat", *[f"m{i}" for i in range(1, 6)])
    result = await execute(api, LAST, id="chat", last=2)
    connection = result["session"]["messages"]
    assert [m["content"] for m in connection["nodes"]] == ["m4", "m5"]
    assert connection["pageInfo"]["hasPreviousPage"] is True
    assert connection["pageInfo"]["hasNextPage"] is False


async def test_messages_page_forward_with_first_and_after(api):
    await add_messages(api, "chat", *[f"m{i}" for i in range(1, 6)])
    seen, after, pages = [], None, []
    while True:
        result = await execute(api, FORWARD, id="chat", first=2, after=after)
        connection = result["session"]["messages"]
        page = [edge["node"]["content"] for edge in connection["edges"]]
        pages.append(page)
        seen += page
        info = connection["pageInfo"]
        assert info["endCursor"] == connection["edges"][-1]["cursor"]
        assert info["startCursor"] == connection["edges"][0]["cursor"]
        assert info["hasPreviousPage"] is (after is not None)
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert pages == [["m1", "m2"], ["m3", "m4"], ["m5"]]
    assert seen == [f"m{i}" for i in range(1, 6)]


async def test_context_holds_every_message_while_under_the_window(api):
    await add_messages(api, "chat", "one", "two", "three")
    context = (await execute(api, CONTEXT, id="chat"))["session"]["context"]
    assert [m["content"] for m in context["messages"]] == ["one", "two", "three"]
    assert context["strategy"] == "SLIDING_WINDOW"
    assert context["truncated"] is False
    assert context["summary"] is None
    assert context["tokenCount"] == sum(m["tokenCount"] for m in context["messages"])


async def test_after_a_summary_the_context_holds_the_newest_message_over_the_budget(
    api, url, connect, fake_llm: FakeLLM
):
    # Issue 13 §4: once the summary lands, the newest message (alone over the budget) is what
    # the context holds, whole and flagged; the summary yields to it.
    fake_llm.script("the small talk")
    budget = {"sessionId": "big", "strategy": "TOKEN_THRESHOLD", "maxTokens": 100}
    await execute(api, SET_CONFIG, input=budget)
    big = " ".join(["a"] * 151)  # 155 tokens as a USER message
    socket = await connect(url, KEY_A, ws=True)
    async with subscribed(socket, api, None, probe_session="probe") as events:
        stored = (await add_messages(api, "big", "hello world", big))["messages"]
        assert [m["tokenCount"] for m in stored] == [6, 155]
        while (await events.next(within=10))["type"] != "SESSION_SUMMARIZED":
            pass
    context = (await execute(api, CONTEXT_BUDGET, id="big"))["session"]["context"]
    assert [m["content"] for m in context["messages"]] == [big]
    assert context["tokenCount"] == 155
    assert context["overBudget"] is True
    assert context["truncated"] is True
    assert context["summary"] is None
    # The summary stays in the session, ready for when the budget has room for it.
    nodes = (await execute(api, LAST, id="big", last=10))["session"]["messages"]["nodes"]
    assert [m["content"] for m in nodes] == ["the small talk", big]


async def test_sessions_are_listed_by_last_activity_newest_first(api):
    for session_id in ("first", "second", "third"):
        await add_messages(api, session_id, "hi")
        await asyncio.sleep(0.003)  # activity times have millisecond resolution
    await add_messages(api, "first", "back again")
    result = await execute(api, SESSIONS, first=10)
    nodes = [edge["node"] for edge in result["sessions"]["edges"]]
    assert [n["id"] for n in nodes] == ["first", "third", "second"]
    assert [n["messageCount"] for n in nodes] == [2, 1, 1]
    activity = [datetime.fromisoformat(n["lastActivityAt"]) for n in nodes]
    assert activity == sorted(activity, reverse=True)
    info = result["sessions"]["pageInfo"]
    assert info["hasNextPage"] is False
    assert info["hasPreviousPage"] is False


async def test_sessions_page_with_first_and_after(api):
    ids = [f"s{i}" for i in range(5)]
    for session_id in ids:
        await add_messages(api, session_id, "hi")
        await asyncio.sleep(0.003)
    pages, after = [], None
    while True:
        connection = (await execute(api, SESSIONS, first=2, after=after))["sessions"]
        pages.append([edge["node"]["id"] for edge in connection["edges"]])
        assert connection["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert pages == [["s4", "s3"], ["s2", "s1"], ["s0"]]


async def test_a_sliding_window_of_three_keeps_the_newest_three(api):
    await add_messages(api, "chat", *[f"m{i}" for i in range(1, 6)])
    result = await execute(
        api,
        SET_CONFIG,
        input={"sessionId": "chat", "strategy": "SLIDING_WINDOW", "maxMessages": 3},
    )
    config = result["setSessionConfig"]["session"]["config"]
    assert config["strategy"] == "SLIDING_WINDOW"
    assert config["maxMessages"] == 3

    session = (await execute(api, CONTEXT, id="chat"))["session"]
    context = session["context"]
    assert [m["content"] for m in context["messages"]] == ["m3", "m4", "m5"]
    assert context["truncated"] is True
    assert context["tokenCount"] == sum(m["tokenCount"] for m in context["messages"])
    # The window leaves messages out of the context, not out of the session.
    assert session["messageCount"] == 5
    assert await contents_of(api, "chat") == [f"m{i}" for i in range(1, 6)]


async def test_reset_returns_a_setting_to_its_default(api):
    await add_messages(api, "chat", *[f"m{i}" for i in range(1, 6)])
    await execute(api, SET_CONFIG, input={"sessionId": "chat", "maxMessages": 3})
    result = await execute(api, SET_CONFIG, input={"sessionId": "chat", "reset": ["MAX_MESSAGES"]})
    assert result["setSessionConfig"]["session"]["config"]["maxMessages"] == 50  # the default
    context = (await execute(api, CONTEXT, id="chat"))["session"]["context"]
    assert len(context["messages"]) == 5
    assert context["truncated"] is False


async def test_leaving_a_setting_out_keeps_its_value(api):
    await execute(api, SET_CONFIG, input={"sessionId": "chat", "maxMessages": 7})
    result = await execute(api, SET_CONFIG, input={"sessionId": "chat", "ttlSeconds": 600})
    config = result["setSessionConfig"]["session"]["config"]
    assert config["maxMessages"] == 7
    assert config["ttlSeconds"] == 600


async def test_a_deleted_session_is_gone_and_deleting_it_again_is_not_found(api):
    await add_messages(api, "doomed", "bye")
    await add_messages(api, "kept", "stay")
    result = await execute(api, DELETE, id="doomed")
    assert result == {"deleteSession": {"sessionId": "doomed"}}
    assert (await execute(api, SESSION, id="doomed")) == {"session": None}
    listed = await execute(api, SESSIONS, first=10)
    assert [e["node"]["id"] for e in listed["sessions"]["edges"]] == ["kept"]

    errors = await execute_error(api, DELETE, id="doomed")
    assert codes(errors) == ["NOT_FOUND"]


async def test_a_retried_write_with_the_same_ids_is_stored_once(api):
    batch = [message("first", id="msg-1"), message("second", id="msg-2")]
    first = (await execute(api, ADD, sessionId="chat", messages=batch))["addMessages"]
    again = (await execute(api, ADD, sessionId="chat", messages=batch))["addMessages"]
    assert first["duplicateIds"] == []
    assert again["duplicateIds"] == ["msg-1", "msg-2"]
    # The retry answers with what is stored, so the client sees the same ids and seqs.
    assert [(m["id"], m["seq"]) for m in again["messages"]] == [("msg-1", 1), ("msg-2", 2)]
    assert (await execute(api, SESSION, id="chat"))["session"]["messageCount"] == 2
    assert await contents_of(api, "chat") == ["first", "second"]


async def test_a_partly_retried_batch_stores_only_the_new_messages(api):
    await execute(api, ADD, sessionId="chat", messages=[message("one", id="msg-1")])
    batch = [message("one", id="msg-1"), message("two", id="msg-2")]
    again = (await execute(api, ADD, sessionId="chat", messages=batch))["addMessages"]
    assert again["duplicateIds"] == ["msg-1"]
    assert [(m["id"], m["seq"]) for m in again["messages"]] == [("msg-1", 1), ("msg-2", 2)]
    assert await contents_of(api, "chat") == ["one", "two"]


async def test_queries_work_over_get(url, api):
    await add_messages(api, "chat", "over get")
    async with httpx.AsyncClient(base_url=url, headers=bearer(KEY_A), timeout=patience()) as client:
        reply = await client.get(
            "/graphql",
            params={
                "query": "query($id: ID!) { session(id: $id) { messages { nodes { content } } } }",
                "variables": json.dumps({"id": "chat"}),
            },
        )
    assert reply.status_code == 200
    assert reply.json() == {"data": {"session": {"messages": {"nodes": [{"content": "over get"}]}}}}


async def test_mutations_over_get_are_refused(url, api):
    mutation = (
        'mutation { addMessages(input: {sessionId: "via-get", '
        'messages: [{role: USER, content: "x"}]}) { sessionId } }'
    )
    async with httpx.AsyncClient(base_url=url, headers=bearer(KEY_A), timeout=patience()) as client:
        reply = await client.get("/graphql", params={"query": mutation})
    assert reply.status_code in (400, 405)
    assert (await execute(api, SESSION, id="via-get")) == {"session": None}
