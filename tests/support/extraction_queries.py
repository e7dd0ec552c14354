"""GraphQL documents and helpers of sessions that teach long-term memory (end-to-end tests)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gql.client import AsyncClientSession

from tests.support.fake_llm import FakeLLM
from tests.support.graphql_client import execute
from tests.support.patience import patience, short

# The extraction queue of these tests' servers is their own: servers other test modules leave
# running on the same Redis (their extraction workers among them) never take their jobs.
KEY_PREFIX = "learn"

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
    # Servers of this process (not `maas serve`) run extraction themselves.
    "stm_extraction_worker": "server",
    "redis_key_prefix": KEY_PREFIX,
    "stm_extraction_delay_seconds": short(0.2),
    "stm_extraction_retry_max_seconds": short(0.2),
}
QUICK_ENV = {
    "REDIS_KEY_PREFIX": KEY_PREFIX,
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
