"""/health/ready of a running server checks the vector store too: a store that is gone or hangs
makes the server "degraded" (200: short-term memory still serves), said within the readiness
timeout, and "ok" again once the store is back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.graphql_client import ADD_MESSAGES, message, post
from tests.support.silent_server import silent_server

TIMEOUT = 0.5
# Generous for a loaded machine; a stalled endpoint would wait for the store's own timeouts.
ANSWER_WITHIN_S = TIMEOUT + 4


async def ready(url: str) -> tuple[int, dict[str, object], float]:
    async with httpx.AsyncClient(timeout=60) as client:
        started = time.monotonic()
        response = await client.get(f"{url}/health/ready")
        return response.status_code, response.json(), time.monotonic() - started


async def test_the_embedded_store_is_checked_and_its_loss_is_degraded_not_down(
    live_server: Callable[..., str], tmp_path: Path
) -> None:
    url = live_server(readiness_timeout_seconds=TIMEOUT)
    assert (await ready(url))[:2] == (
        200,
        {"status": "ok", "checks": {"redis": "ok", "events": "ok", "vector_store": "ok"}},
    )

    store_dir = tmp_path / "data" / "ltm"
    store_dir.rename(store_dir.with_name("ltm-elsewhere"))  # an unmounted volume, say
    try:
        status, body, _ = await ready(url)
        assert (status, body) == (
            200,
            {
                "status": "degraded",
                "checks": {"redis": "ok", "events": "ok", "vector_store": "unavailable"},
            },
        )
    finally:
        store_dir.with_name("ltm-elsewhere").rename(store_dir)
    assert (await ready(url))[1]["status"] == "ok"


@pytest.fixture
def hung_documentdb() -> Iterator[str]:
    with silent_server() as port:
        yield f"mongodb://127.0.0.1:{port}/"


async def test_a_documentdb_that_hangs_is_unavailable_within_the_timeout(
    live_server: Callable[..., str], hung_documentdb: str
) -> None:
    url = live_server(
        vector_store_provider="azure_documentdb",
        mongodb_uri=hung_documentdb,
        readiness_timeout_seconds=TIMEOUT,
    )
    for _ in range(3):
        status, body, elapsed = await ready(url)
        assert (status, body) == (
            200,
            {
                "status": "degraded",
                "checks": {"redis": "ok", "events": "ok", "vector_store": "unavailable"},
            },
        )
        assert elapsed < ANSWER_WITHIN_S
    # Degraded, not down: short-term memory serves.
    written = await post(url, ADD_MESSAGES, {"sessionId": "s", "messages": [message("hi")]})
    assert written.json().get("errors") is None
