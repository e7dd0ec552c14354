"""/health/ready of a running server checks the vector store too: a store that is gone or hangs
makes the server "degraded" (200: short-term memory still serves), said once the readiness
timeout is up (not when the store gives up), and "ok" again once the store is back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.graphql_client import ADD_MESSAGES, message, post
from tests.support.patience import patience, short
from tests.support.silent_server import silent_server

# Short, to call the hung store unavailable soon; Redis and the event bus must still answer
# within it, on a loaded machine too.
TIMEOUT = short(1.0)


async def ready(url: str) -> tuple[int, dict[str, object], float]:
    async with httpx.AsyncClient(timeout=patience()) as client:
        started = time.monotonic()
        response = await client.get(f"{url}/health/ready")
        return response.status_code, response.json(), time.monotonic() - started


async def test_the_embedded_store_is_checked_and_its_loss_is_degraded_not_down(
    live_server: Callable[..., str], tmp_path: Path
) -> None:
    # Nothing hangs here: a missing file fails at once, so the limit need not be short.
    url = live_server(readiness_timeout_seconds=patience())
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
    # The store never answers, so each answer (within the patience, again and again: the hung
    # probe does not stack up) came from the readiness time limit, not from the store.
    for _ in range(3):
        status, body, _ = await ready(url)
        assert (status, body) == (
            200,
            {
                "status": "degraded",
                "checks": {"redis": "ok", "events": "ok", "vector_store": "unavailable"},
            },
        )
    # Degraded, not down: short-term memory serves.
    written = await post(url, ADD_MESSAGES, {"sessionId": "s", "messages": [message("hi")]})
    assert written.json().get("errors") is None
