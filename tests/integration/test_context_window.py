"""Context windows and token-threshold summaries, against real Redis and the fake LLM."""

from __future__ import annotations

import asyncio

import pytest

from services.stm import ShortTermMemory
from services.stm_model import ConfigChange, NewMessage, Role, SessionInfo, Strategy
from tests.support.fake_llm import FakeLLM

pytestmark = pytest.mark.single_and_cluster

TENANT = "local"
WORDS = " ".join(f"word{i}" for i in range(40))  # ~80 tokens


def user(text: str) -> NewMessage:
    return NewMessage(role=Role.USER, content=text)


async def session(stm: ShortTermMemory, sid: str = "s") -> SessionInfo:
    info = await stm.get_session(TENANT, sid)
    assert info is not None
    return info


async def contents(stm: ShortTermMemory, sid: str = "s") -> list[str]:
    page = await stm.get_messages(TENANT, sid, first=500)
    return [m.content for m in page.messages]


async def test_sliding_window_keeps_the_newest_messages(make_stm):
    stm = make_stm(stm_max_messages=3)
    await stm.add_messages(TENANT, "s", [user(f"m{i}") for i in range(10)])
    window = await stm.get_context(TENANT, await session(stm))
    assert [m.content for m in window.messages] == ["m7", "m8", "m9"]
    assert window.truncated
    assert window.strategy is Strategy.SLIDING_WINDOW
    assert window.token_count == sum(m.tokens for m in window.messages)


async def test_a_short_session_is_not_truncated(make_stm):
    stm = make_stm(stm_max_messages=3)
    await stm.add_messages(TENANT, "s", [user("a"), user("b")])
    window = await stm.get_context(TENANT, await session(stm))
    assert [m.content for m in window.messages] == ["a", "b"]
    assert not window.truncated


async def test_without_an_llm_token_threshold_trims_to_the_budget(make_stm, fake_llm: FakeLLM):
    stm = make_stm(
        stm_default_strategy="token_threshold",
        stm_max_tokens=300,
        llm_api_key=None,
        llm_base_url=None,
    )
    await stm.add_messages(TENANT, "s", [user(f"{i} {WORDS}") for i in range(10)])
    await stm.wait_idle()
    window = await stm.get_context(TENANT, await session(stm))
    assert window.truncated
    assert window.token_count <= 300
    assert window.summary is None
    assert [m.content for m in window.messages][-1].startswith("9 ")
    assert len(await contents(stm)) == 10  # nothing was dropped from the buffer
    assert fake_llm.requests == []


async def test_passing_the_budget_summarizes_the_oldest_messages(make_stm, fake_llm: FakeLLM):
    stm = make_stm(stm_default_strategy="token_threshold", stm_max_tokens=400)
    fake_llm.script("The user counted words from 0 upward.")
    await stm.add_messages(TENANT, "s", [user(f"{i} {WORDS}") for i in range(8)])
    await stm.wait_idle()
    info = await session(stm)
    assert info.summary_count == 1
    window = await stm.get_context(TENANT, info)
    assert window.summary is not None
    assert window.summary.content == "The user counted words from 0 upward."
    assert window.messages[0] == window.summary
    assert not window.truncated
    assert window.token_count <= 400
    # The newest messages stay verbatim, and the summary took the place of all the others.
    kept = [m.content for m in window.messages[1:]]
    assert kept[-1].startswith("7 ")
    assert window.summary.metadata["summarizedMessages"] + len(kept) == 8
    assert info.token_count == window.token_count
    # The LLM saw the oldest messages, oldest first.
    transcript = fake_llm.requests[0]["messages"][-1]["content"]
    assert transcript.startswith("user: 0 word0")


async def test_the_next_summary_folds_the_previous_one_in(make_stm, fake_llm: FakeLLM):
    stm = make_stm(stm_default_strategy="token_threshold", stm_max_tokens=400)
    fake_llm.script("first summary", "second summary")
    await stm.add_messages(TENANT, "s", [user(f"{i} {WORDS}") for i in range(8)])
    await stm.wait_idle()
    await stm.add_messages(TENANT, "s", [user(f"{i} {WORDS}") for i in range(8, 16)])
    await stm.wait_idle()
    info = await session(stm)
    assert info.summary_count == 2
    window = await stm.get_context(TENANT, info)
    assert window.summary is not None
    assert window.summary.content == "second summary"
    assert "[earlier summary] first summary" in fake_llm.requests[1]["messages"][-1]["content"]
    assert (
        sum(1 for m in (await stm.get_messages(TENANT, "s", first=500)).messages if m.is_summary)
        == 1
    )


async def test_a_failed_llm_call_changes_nothing(make_stm, fake_llm: FakeLLM):
    stm = make_stm(stm_default_strategy="token_threshold", stm_max_tokens=400)
    fake_llm.fail_next(1)
    await stm.add_messages(TENANT, "s", [user(f"{i} {WORDS}") for i in range(8)])
    await stm.wait_idle()
    assert len(fake_llm.requests) == 1
    info = await session(stm)
    assert info.summary_count == 0
    assert await contents(stm) == [f"{i} {WORDS}" for i in range(8)]
    window = await stm.get_context(TENANT, info)
    assert window.truncated
    assert window.token_count <= 400


async def test_summary_never_drops_messages_written_meanwhile(make_stm, fake_llm: FakeLLM):
    stm = make_stm(stm_default_strategy="token_threshold", stm_max_tokens=400)
    fake_llm.hold()
    fake_llm.script("summary of the early part")
    await stm.add_messages(TENANT, "s", [user(f"{i} {WORDS}") for i in range(8)])
    await fake_llm.until_in_flight(1)
    # While the LLM call runs (held until released), many writers race it.
    await asyncio.gather(
        *(
            stm.add_messages(TENANT, "s", [user(f"late {w}-{i}")])
            for w in range(10)
            for i in range(5)
        )
    )
    # While the summary is pending, the context still keeps to its budget.
    pending = await stm.get_context(TENANT, await session(stm))
    assert pending.token_count <= 400
    assert pending.truncated
    fake_llm.release()
    await stm.wait_idle()
    buffered = (await stm.get_messages(TENANT, "s", first=500)).messages
    summary = buffered[0]
    assert summary.is_summary
    late = sorted(m.content for m in buffered if m.content.startswith("late"))
    assert late == sorted(f"late {w}-{i}" for w in range(10) for i in range(5))
    assert summary.metadata["summarizedMessages"] + len(buffered) - 1 == 8 + 50


async def test_a_slow_llm_changes_nothing_until_its_summary_lands(make_stm, fake_llm: FakeLLM):
    stm = make_stm(stm_default_strategy="token_threshold", stm_max_tokens=400)
    fake_llm.hold()
    await stm.add_messages(TENANT, "s", [user(f"{i} {WORDS}") for i in range(8)])
    await fake_llm.until_in_flight(1)  # the summary's call is out, and held
    assert await contents(stm) == [f"{i} {WORDS}" for i in range(8)]
    assert (await session(stm)).summary_count == 0
    fake_llm.release()
    await stm.wait_idle()
    assert (await session(stm)).summary_count == 1


async def test_two_processes_summarize_a_session_once(make_stm, fake_llm: FakeLLM):
    first = make_stm(stm_default_strategy="token_threshold", stm_max_tokens=400)
    second = make_stm(stm_default_strategy="token_threshold", stm_max_tokens=400)
    fake_llm.hold()
    await first.add_messages(TENANT, "s", [user(f"{i} {WORDS}") for i in range(8)])
    await fake_llm.until_in_flight(1)  # the first one's summary is under way
    await second.add_messages(TENANT, "s", [user("one more")])
    fake_llm.release()
    await asyncio.gather(first.wait_idle(), second.wait_idle())
    assert len(fake_llm.requests) == 1
    assert (await session(first)).summary_count == 1


async def test_switching_a_session_to_token_threshold_applies_its_budget(make_stm):
    stm = make_stm(llm_api_key=None, llm_base_url=None)
    await stm.add_messages(TENANT, "s", [user(f"{i} {WORDS}") for i in range(8)])
    info = await stm.set_config(
        TENANT, "s", ConfigChange(strategy=Strategy.TOKEN_THRESHOLD, max_tokens=200)
    )
    window = await stm.get_context(TENANT, info)
    assert window.strategy is Strategy.TOKEN_THRESHOLD
    assert window.token_count <= 200
    assert window.truncated


async def test_a_huge_newest_message_stays_verbatim_and_the_rest_is_folded(
    make_stm, fake_llm: FakeLLM
):
    stm = make_stm(stm_default_strategy="token_threshold", stm_max_tokens=400)
    fake_llm.script("the small talk")
    huge = " ".join(f"w{i}" for i in range(300))
    await stm.add_messages(TENANT, "s", [user("hi"), user("hello"), user("hey"), user(huge)])
    await stm.wait_idle()
    buffered = (await stm.get_messages(TENANT, "s", first=500)).messages
    assert [m.content for m in buffered] == ["the small talk", huge]
    assert buffered[0].metadata == {"summarizedMessages": 3}
