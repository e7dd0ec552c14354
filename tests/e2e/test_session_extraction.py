"""Sessions that teach long-term memory: with longTermExtraction on, a session's messages reach
mem0's extraction by themselves, once each, without ever holding up addMessages; they are
still extracted after a summary folds them or the session is deleted. (Across real `maas
serve` processes: test_session_extraction_processes.py.)"""

from __future__ import annotations

import asyncio
import time

import pytest
from gql.client import AsyncClientSession

from tests.support.extraction_queries import (
    ADD_TURN,
    CONFIGURE,
    DELETE,
    QUICK,
    extraction_calls,
    progress,
    teach,
    until_extracted,
)
from tests.support.fake_llm import FakeLLM
from tests.support.graphql_client import API_KEYS, KEY_A, add_messages, execute, message
from tests.support.memory_queries import extraction, list_all, search
from tests.support.patience import patience

pytestmark = pytest.mark.single_and_cluster


PROMPT = """
query($input: MemoryPromptInput!) {
  memoryPrompt(input: $input) { messages { content } memories { memory { text } } }
}
"""


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
    await execute(api, ADD_TURN, sessionId="trip", messages=[message("Noted!", role="ASSISTANT")])
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

    # Later, a new session of the same user: its memory prompt brings back what "trip" taught.
    owner = {"sessionId": "next-trip", "userId": "alice", "longTermExtraction": False}
    await execute(api, CONFIGURE, input=owner)
    await add_messages(api, "next-trip", "Booking my flight: which seat should I choose?")
    built = (await execute(api, PROMPT, input={"sessionId": "next-trip"}))["memoryPrompt"]
    assert "Prefers window seats" in [h["memory"]["text"] for h in built["memories"]]
    system, newest = built["messages"]
    assert "Prefers window seats" in system["content"]
    assert newest["content"] == "Booking my flight: which seat should I choose?"


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
        module_server(api_keys=API_KEYS, **{**QUICK, "stm_extraction_delay_seconds": patience(2)}),
        KEY_A,
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


async def test_without_an_llm_the_users_messages_are_kept_verbatim(
    module_server, redis, connect, fake_llm: FakeLLM
) -> None:
    # A queue of its own: the other servers of this module have an LLM.
    no_llm = module_server(
        api_keys=API_KEYS,
        llm_base_url=None,
        llm_api_key=None,
        **{**QUICK, "redis_key_prefix": "verbatim"},
    )
    api = await connect(no_llm, KEY_A)
    await teach(api, "plain", user_id="gus")
    await add_messages(api, "plain", "I collect vinyl records.")
    await execute(api, ADD_TURN, sessionId="plain", messages=[message("Nice!", role="ASSISTANT")])
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
        module_server(api_keys=API_KEYS, **{**QUICK, "stm_extraction_delay_seconds": patience(2)}),
        KEY_A,
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
