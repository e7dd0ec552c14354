"""Sessions that teach long-term memory: with longTermExtraction on, a session's messages reach
mem0's extraction by themselves, once each, durably (a killed server's job finishes after a
restart; two servers share the work) and without ever holding up addMessages."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from gql.client import AsyncClientSession

from tests.support.fake_llm import FakeLLM
from tests.support.graphql_client import API_KEYS, KEY_A, add_messages, execute, message
from tests.support.memory_queries import extraction, list_all, search
from tests.support.patience import patience, short

pytestmark = pytest.mark.single_and_cluster

CONFIGURE = """
mutation Configure($input: SetSessionConfigInput!) {
  setSessionConfig(input: $input) {
    session { config { userId agentId longTermExtraction } }
  }
}
"""
PROGRESS = """
query Progress($id: ID!) {
  session(id: $id) { extraction { lastExtractedSeq pendingCount failedAttempts } }
}
"""
DELETE = "mutation Delete($id: String!) { deleteSession(input: {sessionId: $id}) { sessionId } }"
ADD_TURN = """
mutation Add($sessionId: String!, $messages: [MessageInput!]!) {
  addMessages(input: {sessionId: $sessionId, messages: $messages}) { messages { seq } }
}
"""

# Extraction due soon after a write, and retries that come quickly.
QUICK = {
    "stm_extraction_delay_seconds": short(0.2),
    "stm_extraction_retry_max_seconds": short(0.2),
}
QUICK_ENV = {
    "STM_EXTRACTION_DELAY_SECONDS": str(short(0.2)),
    "STM_EXTRACTION_RETRY_MAX_SECONDS": str(short(0.2)),
}


async def teach(api: AsyncClientSession, session_id: str, user_id: str = "alice") -> None:
    """Turns extraction on for the session, into the user's memories."""
    result = await execute(
        api,
        CONFIGURE,
        input={"sessionId": session_id, "userId": user_id, "longTermExtraction": True},
    )
    config = result["setSessionConfig"]["session"]["config"]
    assert config == {"userId": user_id, "agentId": None, "longTermExtraction": True}


async def progress(api: AsyncClientSession, session_id: str) -> dict[str, Any]:
    return (await execute(api, PROGRESS, id=session_id))["session"]["extraction"]


async def until_extracted(api: AsyncClientSession, session_id: str, last_seq: int) -> None:
    """Wait until the session's messages up to last_seq are extracted and none wait."""
    deadline = time.monotonic() + patience()
    while True:
        seen = await progress(api, session_id)
        if seen["pendingCount"] == 0 and seen["lastExtractedSeq"] == last_seq:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"extraction of {session_id} never finished: {seen}")
        await asyncio.sleep(0.05)  # a poll interval, not a wait for something


def extraction_calls(fake_llm: FakeLLM, text: str) -> int:
    """How many of mem0's extraction calls had `text` in their conversation."""
    return sum(
        1
        for request in list(fake_llm.requests)
        if request.get("response_format") == {"type": "json_object"}
        and text in request["messages"][-1]["content"]
    )


@pytest.fixture
def url(module_server, redis) -> str:
    return module_server(api_keys=API_KEYS, **QUICK)


@pytest.fixture
async def api(url: str, connect) -> AsyncClientSession:
    return await connect(url, KEY_A)


async def test_a_conversation_written_turn_by_turn_is_found_later_by_its_user(
    api: AsyncClientSession, fake_llm: FakeLLM
) -> None:
    fake_llm.script(extraction("Prefers window seats", "Lives in Lisbon"))
    await teach(api, "trip")
    await add_messages(api, "trip", "I always pick a window seat.")
    await execute(
        api, ADD_TURN, sessionId="trip", messages=[message("Noted!", role="ASSISTANT")]
    )
    await add_messages(api, "trip", "By the way, I moved to Lisbon.")
    await until_extracted(api, "trip", 3)

    hits = await search(api, "Where does she live?")
    found = {hit["memory"]["text"]: hit["memory"] for hit in hits}
    assert set(found) == {"Prefers window seats", "Lives in Lisbon"}
    lisbon = found["Lives in Lisbon"]
    assert lisbon["userId"] == "alice"
    assert lisbon["metadata"] == {"source": "session", "sessionId": "trip"}
    for text in ("window seat", "Noted!", "moved to Lisbon"):
        assert extraction_calls(fake_llm, text) == 1


async def test_sessions_without_extraction_teach_nothing(
    api: AsyncClientSession, fake_llm: FakeLLM
) -> None:
    await add_messages(api, "private", "My passport number is X123.")
    # Written after it, extracted: when this one is done, the other had every chance.
    fake_llm.script(extraction("Likes tea"))
    await teach(api, "taught", user_id="bea")
    await add_messages(api, "taught", "I like tea.")
    await until_extracted(api, "taught", 1)

    assert await progress(api, "private") == {
        "lastExtractedSeq": None,
        "pendingCount": 0,
        "failedAttempts": 0,
    }
    assert extraction_calls(fake_llm, "passport") == 0
    # The vector store outlives each test's Redis: every test teaches a user of its own.
    assert [m["text"] for m in await list_all(api, userId="bea")] == ["Likes tea"]


async def test_a_failing_llm_is_retried_and_never_holds_up_add_messages(
    api: AsyncClientSession, fake_llm: FakeLLM
) -> None:
    await teach(api, "flaky", user_id="carl")
    fake_llm.hold()
    await add_messages(api, "flaky", "I am allergic to peanuts.")
    await fake_llm.until_in_flight(1)
    # The extraction's LLM call hangs: writes and reads go on.
    for turn in range(3):
        await add_messages(api, "flaky", f"Still here, turn {turn}.")
    assert (await progress(api, "flaky"))["pendingCount"] == 4
    # Then it fails, twice, and is retried.
    fake_llm.fail_next(2)
    fake_llm.script(extraction("Allergic to peanuts"))
    fake_llm.release()
    await until_extracted(api, "flaky", 4)

    assert [m["text"] for m in await list_all(api, userId="carl")] == ["Allergic to peanuts"]
    assert extraction_calls(fake_llm, "allergic to peanuts") == 3  # two failed, one answered


async def test_a_deleted_sessions_messages_are_still_extracted(
    api: AsyncClientSession, fake_llm: FakeLLM, url: str, connect, module_server
) -> None:
    # Extraction would wait for as long as a test may: the delete is what brings it on.
    patient = await connect(
        module_server(api_keys=API_KEYS, stm_extraction_delay_seconds=patience(2)), KEY_A
    )
    fake_llm.script(extraction("Has a cat named Miso"))
    await teach(patient, "gone", user_id="dora")
    await add_messages(patient, "gone", "My cat Miso says hi.")
    assert (await progress(patient, "gone"))["pendingCount"] == 1
    await execute(patient, DELETE, id="gone")

    deadline = time.monotonic() + patience()
    while not await list_all(patient, userId="dora"):
        assert time.monotonic() < deadline, "the deleted session's message was never extracted"
        await asyncio.sleep(0.05)  # a poll interval
    (memory,) = await list_all(patient, userId="dora")
    assert memory["text"] == "Has a cat named Miso"
    assert memory["metadata"] == {"source": "session", "sessionId": "gone"}


def process_env(fake_llm: FakeLLM) -> dict[str, str]:
    """`maas serve` on the fake LLM with every session extracting, soon after each write."""
    return {
        "LLM_BASE_URL": fake_llm.base_url,
        "LLM_API_KEY": "test-key",
        "LLM_MAX_RETRIES": "0",
        # Short: a killed server's lease on its job lasts twice this (plus 10 s).
        "LLM_TIMEOUT_SECONDS": str(short(3)),
        "STM_LONG_TERM_EXTRACTION": "true",
        **QUICK_ENV,
    }


async def test_a_server_killed_mid_extraction_has_the_job_finished_after_a_restart(
    server_processes, redis, fake_llm: FakeLLM, connect
) -> None:
    (server,) = server_processes(1, API_KEYS, **process_env(fake_llm))
    api = await connect(server.url, KEY_A)
    await teach(api, "night", user_id="erin")
    # One reply for the killed server's call (answered to no one), one for the retry.
    fake_llm.script(extraction("Works nights"), extraction("Works nights"))
    fake_llm.hold()
    await add_messages(api, "night", "I work the night shift.")
    await fake_llm.until_in_flight(1)
    assert server.process is not None
    server.process.kill()
    server.process.wait()
    fake_llm.release()

    (restarted,) = server_processes(1, API_KEYS, **process_env(fake_llm))
    again = await connect(restarted.url, KEY_A)
    await until_extracted(again, "night", 1)
    assert extraction_calls(fake_llm, "night shift") == 2  # the one killed, the one after
    assert [m["text"] for m in await list_all(again, userId="erin")] == ["Works nights"]


async def test_two_servers_extract_each_message_once(
    server_processes, redis, fake_llm: FakeLLM, connect
) -> None:
    servers = server_processes(2, API_KEYS, **process_env(fake_llm))
    one, two = [await connect(server.url, KEY_A) for server in servers]
    fake_llm.set_delay(short(0.05))  # extractions overlap across the two
    sessions = [f"chat-{n}" for n in range(6)]
    for session_id in sessions:
        await teach(one, session_id, user_id="finn")
    for turn in range(3):
        for n, session_id in enumerate(sessions):
            writer = (one, two)[(n + turn) % 2]
            await add_messages(writer, session_id, f"Turn {turn} of session {n}.")
    for session_id in sessions:
        await until_extracted(one, session_id, 3)

    for turn in range(3):
        for n in range(len(sessions)):
            assert extraction_calls(fake_llm, f"Turn {turn} of session {n}.") == 1


async def test_without_an_llm_the_users_messages_are_kept_verbatim(
    module_server, redis, connect, fake_llm: FakeLLM
) -> None:
    no_llm = module_server(api_keys=API_KEYS, llm_base_url=None, llm_api_key=None, **QUICK)
    api = await connect(no_llm, KEY_A)
    await teach(api, "plain", user_id="gus")
    await add_messages(api, "plain", "I collect vinyl records.")
    await execute(
        api, ADD_TURN, sessionId="plain", messages=[message("Nice!", role="ASSISTANT")]
    )
    await until_extracted(api, "plain", 2)

    (memory,) = await list_all(api, userId="gus")
    assert memory["text"] == "I collect vinyl records."
    assert memory["metadata"] == {"source": "session", "sessionId": "plain"}
    assert fake_llm.requests == []


async def test_messages_folded_into_a_summary_are_extracted_at_once(
    module_server, redis, connect, fake_llm: FakeLLM
) -> None:
    # Extraction would wait for as long as a test may: the summary is what brings it on.
    api = await connect(
        module_server(api_keys=API_KEYS, stm_extraction_delay_seconds=patience(2)), KEY_A
    )
    await execute(
        api,
        CONFIGURE,
        input={
            "sessionId": "long",
            "userId": "hana",
            "longTermExtraction": True,
            "strategy": "TOKEN_THRESHOLD",
            "maxTokens": 100,
        },
    )
    fake_llm.script("They talked about gardening.", extraction("Grows tomatoes"))
    await add_messages(api, "long", *(f"Gardening note {n}: " + "soil " * 20 for n in range(3)))
    await add_messages(api, "long", "I grow tomatoes.")
    await until_extracted(api, "long", 4)
    assert [m["text"] for m in await list_all(api, userId="hana")] == ["Grows tomatoes"]
