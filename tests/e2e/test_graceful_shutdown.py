"""`maas serve` stops on SIGTERM within SHUTDOWN_GRACE_SECONDS even while a request waits on a
dependency that never answers: an orchestrator's rolling update must not hang on one call."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Callable

import httpx

from tests.e2e.conftest import ServerProcess
from tests.support.fake_llm import FakeLLM
from tests.support.patience import patience, short

KEY = "sk-test-shutdown-5e1d0c7a"
ADD_MEMORY = "mutation($input: AddMemoryInput!) { addMemory(input: $input) { added { id } } }"


async def test_sigterm_ends_a_request_stuck_on_the_llm_after_the_grace(
    server_processes: Callable[..., list[ServerProcess]], fake_llm: FakeLLM
) -> None:
    (server,) = server_processes(
        1,
        {KEY: "tenant-a"},
        LLM_BASE_URL=fake_llm.base_url,
        LLM_API_KEY="test-key",
        LLM_MAX_RETRIES="0",
        # Only the grace can end the held call: the LLM timeout is far beyond the test.
        LLM_TIMEOUT_SECONDS="3600",
        SHUTDOWN_GRACE_SECONDS=str(short(1)),
    )
    assert server.process is not None
    fake_llm.hold()
    try:
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=patience()
        ) as client:
            stuck = asyncio.create_task(
                client.post(
                    "/graphql",
                    json={
                        "query": ADD_MEMORY,
                        "variables": {"input": {"userId": "u", "text": "I live in Lisbon."}},
                    },
                )
            )
            await fake_llm.until_in_flight(1)
            server.process.send_signal(signal.SIGTERM)
            try:
                code = await asyncio.to_thread(server.process.wait, patience())
            except subprocess.TimeoutExpired:
                raise AssertionError("maas serve still runs: the held request blocks it") from None
            # uvicorn re-raises the SIGTERM once it has shut down.
            assert code in (0, -signal.SIGTERM)
            # The client is not left hanging either: its connection ends with the process.
            try:
                response = await stuck
            except httpx.TransportError:
                pass
            else:
                assert response.status_code >= 500 or "errors" in response.json()
    finally:
        fake_llm.release()
