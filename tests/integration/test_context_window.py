"""Context windows and token-threshold summaries, against real Redis and the fake LLM."""

from __future__ import annotations

import asyncio

import pytest

from services.session_events import SessionEventType, encode_event
from services.stm import ShortTermMemory
from services.stm_model import (
    ConfigChange,
    Message,
    NewMessage,
    Role,
    SessionInfo,
    Strategy,
    ms_to_datetime,
)
from stores.redis_client import RedisClient
from stores.redis_messages import RedisMessageStore
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


# The context rule: the newest message is always in the context, whole, even alone over the
# budget (overBudget then says so). The summary comes next, if it fits beside it; if not, it is
# what yields. Older messages follow while they fit, and the first that does not ends them: the
# messages are always the newest ones, without a gap.


def of_tokens(count: int, letter: str = "a") -> str:
    """Content that makes a message exactly `count` tokens: 3 per message, 1 for the role
    (user or system) and 1 per repeat of a lowercase letter."""
    return " ".join([letter] * (count - 4))


def summary_of_tokens(count: int) -> str:
    """A summary's content that makes the summary message (role system) exactly `count` tokens."""
    return of_tokens(count, "s")


async def test_a_message_over_the_budget_after_a_small_one_is_the_context(make_stm):
    # Issue 13 §4, as a user met it: maxTokens 100, no LLM, a 6-token then a 155-token message.
    stm = make_stm(
        stm_default_strategy="token_threshold",
        stm_max_tokens=100,
        llm_api_key=None,
        llm_base_url=None,
    )
    big = of_tokens(155)
    stored = await stm.add_messages(TENANT, "s", [user("hello world"), user(big)])
    assert [m.tokens for m in stored.messages] == [6, 155]
    window = await stm.get_context(TENANT, await session(stm))
    assert [m.content for m in window.messages] == [big]  # whole, never cut
    assert window.token_count == 155
    assert window.over_budget
    assert window.truncated  # "hello world" was left out
    assert window.summary is None


async def test_a_lone_message_over_the_budget_is_whole_and_flagged(make_stm):
    stm = make_stm(
        stm_default_strategy="token_threshold",
        stm_max_tokens=100,
        llm_api_key=None,
        llm_base_url=None,
    )
    big = of_tokens(101)
    await stm.add_messages(TENANT, "s", [user(big)])
    window = await stm.get_context(TENANT, await session(stm))
    assert [m.content for m in window.messages] == [big]
    assert window.token_count == 101
    assert window.over_budget
    assert not window.truncated  # nothing older was left out


async def test_a_budget_exactly_met_holds_every_message_and_one_token_more_does_not(make_stm):
    stm = make_stm(
        stm_default_strategy="token_threshold",
        stm_max_tokens=100,
        llm_api_key=None,
        llm_base_url=None,
    )
    await stm.add_messages(TENANT, "s", [user(of_tokens(40, w)) for w in ("x", "y", "z")])
    await stm.add_messages(TENANT, "s", [user(of_tokens(20, "w"))])
    # 20 + 40 + 40 = 100: exactly the budget, "x" is the one that does not fit.
    window = await stm.get_context(TENANT, await session(stm))
    assert [m.content[0] for m in window.messages] == ["y", "z", "w"]
    assert window.token_count == 100
    assert window.truncated
    assert not window.over_budget

    await stm.add_messages(TENANT, "exact", [user(of_tokens(50, w)) for w in ("x", "y")])
    await stm.add_messages(TENANT, "over", [user(of_tokens(51, "x")), user(of_tokens(50, "y"))])
    exact = await stm.get_context(TENANT, await session(stm, "exact"))
    assert [m.content[0] for m in exact.messages] == ["x", "y"]
    assert (exact.token_count, exact.truncated, exact.over_budget) == (100, False, False)
    over = await stm.get_context(TENANT, await session(stm, "over"))
    assert [m.content[0] for m in over.messages] == ["y"]
    assert (over.token_count, over.truncated, over.over_budget) == (50, True, False)


async def test_after_a_summary_the_huge_newest_message_is_the_context(make_stm, fake_llm: FakeLLM):
    # Issue 13 §4 with an LLM: the summary lands, and the newest message must not go missing.
    stm = make_stm(stm_default_strategy="token_threshold", stm_max_tokens=100)
    fake_llm.script("the small talk")
    huge = of_tokens(155)
    await stm.add_messages(TENANT, "s", [user("hi"), user("hello"), user(huge)])
    await stm.wait_idle()
    info = await session(stm)
    assert info.summary_count == 1
    window = await stm.get_context(TENANT, info)
    # The summary yields to the newest message: there is no room for both.
    assert [m.content for m in window.messages] == [huge]
    assert window.summary is None
    assert window.truncated
    assert window.over_budget
    assert window.token_count == 155


async def test_a_summary_exactly_filling_the_budget_is_kept(make_stm, fake_llm: FakeLLM):
    stm = make_stm(stm_default_strategy="token_threshold", stm_max_tokens=100)
    # Six 20-token messages pass the budget; the newest two (40 tokens) fill half of it and
    # stay, the four before them become a 60-token summary: 100 tokens, exactly the budget.
    fake_llm.script(summary_of_tokens(60))
    await stm.add_messages(TENANT, "s", [user(of_tokens(20, w)) for w in "bcdefg"])
    await stm.wait_idle()
    window = await stm.get_context(TENANT, await session(stm))
    assert window.summary is not None
    assert window.summary.tokens == 60
    assert [m.content.split()[0] for m in window.messages[1:]] == ["f", "g"]
    assert (window.token_count, window.truncated, window.over_budget) == (100, False, False)


async def test_the_summary_keeps_its_place_before_messages_older_than_the_newest(
    make_stm, fake_llm: FakeLLM
):
    stm = make_stm(stm_default_strategy="token_threshold", stm_max_tokens=100)
    fake_llm.script(summary_of_tokens(61))  # with the two kept messages, one token too many
    await stm.add_messages(TENANT, "s", [user(of_tokens(20, w)) for w in "bcdefg"])
    await stm.wait_idle()
    info = await session(stm)
    assert info.summary_count == 1
    window = await stm.get_context(TENANT, info)
    assert window.summary is not None
    assert [m.content.split()[0] for m in window.messages[1:]] == ["g"]
    assert (window.token_count, window.truncated, window.over_budget) == (81, True, False)


async def test_a_summary_larger_than_the_budget_never_pushes_out_a_message(
    make_stm, fake_llm: FakeLLM
):
    stm = make_stm(stm_default_strategy="token_threshold", stm_max_tokens=100)
    fake_llm.script(summary_of_tokens(150))  # an LLM that ignored the summary's length limit
    await stm.add_messages(TENANT, "s", [user(of_tokens(20, w)) for w in "bcdefg"])
    await stm.wait_idle()
    buffered = (await stm.get_messages(TENANT, "s", first=500)).messages
    assert buffered[0].is_summary
    assert buffered[0].tokens == 150
    window = await stm.get_context(TENANT, await session(stm))
    assert window.summary is None
    assert [m.content.split()[0] for m in window.messages] == ["f", "g"]
    assert (window.token_count, window.truncated, window.over_budget) == (40, True, False)


async def test_while_the_next_summary_is_pending_the_summary_stays_with_the_newest_messages(
    make_stm, fake_llm: FakeLLM
):
    # A summary lands; then the session grows past the budget and the next summary fails.
    # The context keeps the summary and the newest messages that fit beside it; the messages
    # in between are left out, never the newest.
    stm = make_stm(stm_default_strategy="token_threshold", stm_max_tokens=100)
    fake_llm.script(summary_of_tokens(10))
    await stm.add_messages(TENANT, "s", [user(of_tokens(20, w)) for w in "bcdefg"])
    await stm.wait_idle()
    fake_llm.fail_next(1)
    await stm.add_messages(TENANT, "s", [user(of_tokens(20, w)) for w in "pqrt"])
    await stm.wait_idle()
    info = await session(stm)
    assert info.summary_count == 1  # the second summary failed
    buffered = [m.content.split()[0] for m in (await stm.get_messages(TENANT, "s")).messages]
    assert buffered == ["s", "f", "g", "p", "q", "r", "t"]
    window = await stm.get_context(TENANT, info)
    assert window.summary is not None
    assert [m.content.split()[0] for m in window.messages] == ["s", "p", "q", "r", "t"]
    assert (window.token_count, window.truncated, window.over_budget) == (90, True, False)


async def test_a_session_of_nothing_but_an_oversized_summary_has_it_as_its_context(
    make_stm, redis: RedisClient
):
    # The compactor always keeps the newest message, so only the store can fold them all; the
    # window must still never be empty.
    stm = make_stm(
        stm_default_strategy="token_threshold",
        stm_max_tokens=100,
        llm_api_key=None,
        llm_base_url=None,
    )
    stored = (await stm.add_messages(TENANT, "s", [user("a"), user("b")])).messages
    summary = Message(
        id="summary-1",
        seq=stored[-1].seq,
        role=Role.SYSTEM,
        content=summary_of_tokens(150),
        tokens=150,
        created_at=ms_to_datetime(0),
        metadata={"summarizedMessages": 2},
        is_summary=True,
    )
    record = summary.to_record()
    assert await RedisMessageStore(redis).replace_range(
        TENANT,
        "s",
        expected_ids=[m.id for m in stored],
        last_seq=summary.seq,
        summary_id=summary.id,
        summary_record=record,
        default_ttl=3600,
        now_ms=0,
        event=encode_event(SessionEventType.SESSION_SUMMARIZED, "s", 0, summary_record=record),
    )
    window = await stm.get_context(TENANT, await session(stm))
    assert window.messages == [summary]
    assert window.summary == summary
    assert (window.token_count, window.truncated, window.over_budget) == (150, False, True)


async def test_a_sliding_window_of_one_holds_the_newest_message_whatever_its_size(make_stm):
    stm = make_stm(stm_max_messages=1, stm_max_tokens=100)
    big = of_tokens(500)
    await stm.add_messages(TENANT, "s", [user("a"), user(big)])
    window = await stm.get_context(TENANT, await session(stm))
    assert [m.content for m in window.messages] == [big]
    assert window.truncated
    assert not window.over_budget  # a sliding window has no token budget
