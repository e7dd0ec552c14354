"""Writers racing a summary, end to end: through uvicorn, over HTTP and WebSocket."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.fake_llm import FakeLLM
from tests.support.graphql_client import add_messages, execute, subscribed

pytestmark = pytest.mark.single_and_cluster

WORDS = " ".join(f"word{i}" for i in range(40))  # ~80 tokens a message
SESSION = """{ session(id: "race") {
  summaryCount messageCount
  messages(first: 500) { nodes { content isSummary metadata } }
  context { truncated tokenCount summary { content } messages { content } }
} }"""


async def test_writers_racing_a_summary_lose_nothing(live_server, connect, fake_llm: FakeLLM):
    url = live_server(stm_default_strategy="token_threshold", stm_max_tokens=400)
    fake_llm.hold()
    fake_llm.script("the early part, summarized")
    writers = [await connect(url) for _ in range(4)]
    socket = await connect(url, ws=True)
    async with subscribed(socket, writers[0], None, probe_session="probe") as events:
        # Passing the budget starts the summary; its LLM call is held until released.
        await add_messages(writers[0], "race", *(f"{i} {WORDS}" for i in range(8)))
        await fake_llm.until_in_flight(1)
        late = [f"late {w}-{i}" for w in range(4) for i in range(10)]
        await asyncio.gather(
            *(add_messages(writers[n % 4], "race", text) for n, text in enumerate(late))
        )
        # Until the summary lands, the context keeps to its budget by leaving messages out.
        pending = (await execute(writers[1], SESSION))["session"]["context"]
        assert pending["tokenCount"] <= 400
        assert pending["truncated"]
        fake_llm.release()
        while (event := await events.next())["type"] != "SESSION_SUMMARIZED":
            pass
    assert event["summary"]["content"] == "the early part, summarized"

    session = (await execute(writers[2], SESSION))["session"]
    assert session["summaryCount"] == 1
    nodes = session["messages"]["nodes"]
    summary, rest = nodes[0], nodes[1:]
    assert summary["isSummary"]
    assert sorted(m["content"] for m in rest if m["content"].startswith("late")) == sorted(late)
    assert summary["metadata"]["summarizedMessages"] + len(rest) == 8 + len(late)
    assert session["messageCount"] == len(nodes)
    assert session["context"]["summary"] == {"content": "the early part, summarized"}
    assert len(fake_llm.requests) == 1
