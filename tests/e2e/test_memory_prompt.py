"""The memory prompt end to end: GraphQL over HTTP, the embedded store, real local embeddings,
a session in Redis; its budget at the edges, its default query, tenancy and bad input."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from gql.client import AsyncClientSession

from tests.e2e.conftest import Connect
from tests.support.graphql_client import (
    ADD_MESSAGES,
    KEY_B,
    SET_MAX_MESSAGES,
    codes,
    execute,
    execute_error,
    message,
)
from tests.support.memory_queries import remember

MEMORY_PROMPT = """
query Prompt($input: MemoryPromptInput!) {
  memoryPrompt(input: $input) {
    messages { role content name tokenCount messageId }
    tokenCount tokenBudget overBudget truncated query
    memories { score scores { semantic keyword } memory { id text category userId } }
    omittedMemoryIds omittedMessageCount
    context { tokenCount messages { id tokenCount } }
    session { id messageCount config { maxTokens } }
  }
}
"""
CONVERSATION = [
    message("I'm planning dinner for my friends on Saturday."),
    message("Nice! What kind of food are you thinking about?", "ASSISTANT"),
    message("Which dishes should I avoid cooking?"),
]


@pytest.fixture
def user() -> str:
    """A user of this test's own: the module's server keeps its vector store between tests."""
    return f"alice-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def memories(api: AsyncClientSession, user: str) -> dict[str, dict[str, Any]]:
    texts = {
        "allergy": "Is allergic to peanuts and shellfish.",
        "job": "Works as a nurse in Berlin.",
        "car": "Drives an old green car.",
    }
    return {name: await remember(api, text, user) for name, text in texts.items()}


async def conversation(api: AsyncClientSession, session_id: str) -> list[dict[str, Any]]:
    result = await execute(api, ADD_MESSAGES, sessionId=session_id, messages=CONVERSATION)
    return result["addMessages"]["messages"]


async def prompt(api: AsyncClientSession, **fields: Any) -> dict[str, Any]:
    return (await execute(api, MEMORY_PROMPT, input=fields))["memoryPrompt"]


async def test_the_prompt_is_the_memories_in_a_system_message_then_the_context(
    api: AsyncClientSession, user: str, memories: dict[str, dict[str, Any]]
) -> None:
    stored = await conversation(api, "dinner")

    result = await prompt(
        api, sessionId="dinner", userId=user, query="food allergies", memoryLimit=2
    )

    system, *context = result["messages"]
    assert system["role"] == "SYSTEM"
    assert system["messageId"] is None
    best = result["memories"][0]
    assert best["memory"]["id"] == memories["allergy"]["id"]
    assert best["memory"]["category"] == "SEMANTIC"
    assert best["memory"]["userId"] == user
    assert best["score"] > 0
    assert best["scores"]["semantic"] is not None
    lines = system["content"].splitlines()
    assert lines[1:] == [f"- {hit['memory']['text']}" for hit in result["memories"]]
    assert len(result["memories"]) == 2
    assert [(m["role"], m["content"], m["messageId"]) for m in context] == [
        (m["role"], m["content"], m["id"]) for m in stored
    ]
    assert [m["tokenCount"] for m in context] == [m["tokenCount"] for m in stored]
    assert result["tokenCount"] == sum(m["tokenCount"] for m in result["messages"])
    assert result["context"]["messages"] == [
        {"id": m["id"], "tokenCount": m["tokenCount"]} for m in stored
    ]
    # No budget given: the session's maxTokens, which all of this fits.
    assert result["tokenBudget"] == result["session"]["config"]["maxTokens"]
    assert result["session"] == {
        "id": "dinner", "messageCount": 3, "config": {"maxTokens": result["tokenBudget"]}
    }  # fmt: skip
    assert (result["truncated"], result["overBudget"]) == (False, False)
    assert (result["omittedMemoryIds"], result["omittedMessageCount"]) == ([], 0)
    assert result["query"] == "food allergies"


async def test_without_a_query_the_newest_user_message_is_searched(
    api: AsyncClientSession, user: str, memories: dict[str, dict[str, Any]]
) -> None:
    await conversation(api, "dinner")
    await execute(
        api, ADD_MESSAGES, sessionId="dinner", messages=[message("Happy to help!", "ASSISTANT")]
    )

    result = await prompt(api, sessionId="dinner", userId=user, memoryLimit=1)

    assert result["query"] == "Which dishes should I avoid cooking?"
    assert [h["memory"]["id"] for h in result["memories"]] == [memories["allergy"]["id"]]


async def test_a_budget_exactly_met_leaves_nothing_out_and_one_less_drops_the_oldest_message(
    api: AsyncClientSession, user: str, memories: dict[str, dict[str, Any]]
) -> None:
    stored = await conversation(api, "dinner")
    fields = {"sessionId": "dinner", "userId": user, "query": "allergies", "memoryLimit": 3}
    whole = await prompt(api, **fields, tokenBudget=100_000)

    exact = await prompt(api, **fields, tokenBudget=whole["tokenCount"])
    assert exact["messages"] == whole["messages"]
    assert (exact["tokenCount"], exact["truncated"]) == (whole["tokenCount"], False)

    short = await prompt(api, **fields, tokenBudget=whole["tokenCount"] - 1)
    # Older messages yield before memories: every memory stays, the oldest message goes.
    assert short["messages"][0] == whole["messages"][0]
    assert [m["messageId"] for m in short["messages"][1:]] == [m["id"] for m in stored[1:]]
    assert (short["omittedMessageCount"], short["omittedMemoryIds"]) == (1, [])
    assert short["truncated"]
    assert not short["overBudget"]
    assert short["tokenCount"] == whole["tokenCount"] - stored[0]["tokenCount"]


async def test_a_budget_below_the_newest_message_gives_it_alone_and_says_so(
    api: AsyncClientSession, user: str, memories: dict[str, dict[str, Any]]
) -> None:
    stored = await conversation(api, "dinner")
    newest = stored[-1]

    result = await prompt(
        api, sessionId="dinner", userId=user, query="allergies", memoryLimit=3, tokenBudget=1
    )

    assert [m["messageId"] for m in result["messages"]] == [newest["id"]]
    assert result["tokenCount"] == newest["tokenCount"] > result["tokenBudget"] == 1
    assert result["overBudget"]
    assert result["truncated"]
    assert result["memories"] == []
    assert sorted(result["omittedMemoryIds"]) == sorted(m["id"] for m in memories.values())
    assert result["omittedMessageCount"] == 2


async def test_memories_yield_lowest_score_first(
    api: AsyncClientSession, user: str, memories: dict[str, dict[str, Any]]
) -> None:
    stored = await conversation(api, "dinner")
    fields = {"sessionId": "dinner", "userId": user, "query": "allergies", "memoryLimit": 3}
    whole = await prompt(api, **fields, tokenBudget=100_000)
    ranked = [h["memory"]["id"] for h in whole["memories"]]
    best = await prompt(api, **{**fields, "memoryLimit": 1}, tokenBudget=100_000)
    # Room for the newest message and a system message of the best memory alone.
    budget = stored[-1]["tokenCount"] + best["messages"][0]["tokenCount"]
    one = await prompt(api, **fields, tokenBudget=budget)

    assert [h["memory"]["id"] for h in one["memories"]] == ranked[:1]
    assert one["omittedMemoryIds"] == ranked[1:]
    assert [m["role"] for m in one["messages"]] == ["SYSTEM", "USER"]
    assert one["tokenCount"] == budget
    assert one["omittedMessageCount"] == 2


async def test_a_session_without_messages_gives_memories_only_and_no_query_no_search(
    api: AsyncClientSession, user: str, memories: dict[str, dict[str, Any]]
) -> None:
    await execute(api, SET_MAX_MESSAGES, id="empty", max=10)

    asked = await prompt(api, sessionId="empty", userId=user, query="Where does she work?")
    assert [m["role"] for m in asked["messages"]] == ["SYSTEM"]
    assert asked["memories"][0]["memory"]["id"] == memories["job"]["id"]
    assert asked["context"]["messages"] == []

    unasked = await prompt(api, sessionId="empty", userId=user)
    assert (unasked["query"], unasked["messages"], unasked["memories"]) == (None, [], [])
    assert unasked["tokenCount"] == 0


async def test_no_memories_in_the_scope_means_no_system_message(
    api: AsyncClientSession, user: str
) -> None:
    stored = await conversation(api, "dinner")

    result = await prompt(api, sessionId="dinner", userId=user)

    assert [m["messageId"] for m in result["messages"]] == [m["id"] for m in stored]
    assert result["memories"] == []
    assert not result["truncated"]


async def test_a_missing_session_and_another_tenants_are_not_found_alike(
    url: str, api: AsyncClientSession, connect: Connect, user: str
) -> None:
    await conversation(api, "private")
    tenant_b = await connect(url, KEY_B)
    for query in (None, "anything"):
        fields = {"userId": user, "query": query}
        theirs = await execute_error(
            tenant_b, MEMORY_PROMPT, input={"sessionId": "private", **fields}
        )
        missing = await execute_error(
            tenant_b, MEMORY_PROMPT, input={"sessionId": "no-such", **fields}
        )
        assert codes(theirs) == codes(missing) == ["NOT_FOUND"]
        assert theirs[0]["message"].replace("private", "<id>") == missing[0]["message"].replace(
            "no-such", "<id>"
        )


async def test_memories_of_another_tenant_are_not_in_the_prompt(
    url: str, api: AsyncClientSession, connect: Connect, user: str
) -> None:
    await remember(api, "Is allergic to peanuts.", user)
    tenant_b = await connect(url, KEY_B)
    await execute(tenant_b, ADD_MESSAGES, sessionId="dinner", messages=CONVERSATION)

    result = await prompt(tenant_b, sessionId="dinner", userId=user, query="allergies")

    assert result["memories"] == []
    assert result["session"]["messageCount"] == 3


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"userId": "a b"}, "BAD_USER_INPUT"),
        ({"userId": "u", "tokenBudget": 0}, "BAD_USER_INPUT"),
        ({"userId": "u", "memoryLimit": 0}, "LIMIT_EXCEEDED"),
        ({"userId": "u", "memoryLimit": 51}, "LIMIT_EXCEEDED"),
        ({"userId": "u", "query": "  "}, "BAD_USER_INPUT"),
        ({"userId": "u", "threshold": 2.0}, "BAD_USER_INPUT"),
        ({"userId": "u", "sessionId": "bad id"}, "BAD_USER_INPUT"),
    ],
)
async def test_bad_input_is_refused_before_the_session_is_looked_for(
    api: AsyncClientSession, fields: dict[str, Any], code: str
) -> None:
    errors = await execute_error(api, MEMORY_PROMPT, input={"sessionId": "no-such", **fields})
    assert codes(errors) == [code]


SET_SCOPE = """
mutation($input: SetSessionConfigInput!) { setSessionConfig(input: $input) { session { id } } }
"""


async def test_without_a_scope_the_sessions_own_is_searched(
    api: AsyncClientSession, user: str, memories: dict[str, dict[str, Any]]
) -> None:
    await conversation(api, "dinner")
    # The session names no owner yet: the prompt cannot know whose memories to search.
    errors = await execute_error(api, MEMORY_PROMPT, input={"sessionId": "dinner"})
    assert codes(errors) == ["BAD_USER_INPUT"]

    await execute(api, SET_SCOPE, input={"sessionId": "dinner", "userId": user})
    result = await prompt(api, sessionId="dinner", query="food allergies")

    assert memories["allergy"]["id"] in [h["memory"]["id"] for h in result["memories"]]
    assert {h["memory"]["userId"] for h in result["memories"]} == {user}


async def test_categories_and_threshold_choose_the_memories_as_in_a_search(
    api: AsyncClientSession, user: str, memories: dict[str, dict[str, Any]]
) -> None:
    liked = await remember(api, "Loves spicy Thai food.", user, category="PREFERENCE")
    await conversation(api, "dinner")

    preferred = await prompt(
        api, sessionId="dinner", userId=user, query="food", categories=["PREFERENCE"]
    )
    assert [h["memory"]["id"] for h in preferred["memories"]] == [liked["id"]]
    assert preferred["memories"][0]["memory"]["category"] == "PREFERENCE"

    strict = await prompt(api, sessionId="dinner", userId=user, query="food", threshold=1.0)
    assert strict["memories"] == []
    assert [m["role"] for m in strict["messages"]] == ["USER", "ASSISTANT", "USER"]
