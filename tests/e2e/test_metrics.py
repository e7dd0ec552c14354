"""/metrics after real traffic: every count matches what the test did."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from tests.e2e.conftest import Connect
from tests.support.fake_llm import FakeLLM
from tests.support.graphql_client import (
    ADD_MESSAGES,
    API_KEYS,
    KEY_A,
    add_messages,
    execute_error,
    message,
    post,
    subscribed,
)
from tests.support.memory_queries import ADD_MEMORY, EMBEDDING_PROVIDER_DOWN
from tests.support.patience import patience
from tests.support.prometheus_samples import sample, scrape

LONG = " ".join(f"word{i}" for i in range(40))  # ~80 tokens


async def eventually(url: str, name: str, value: float, **labels: str) -> None:
    """Background work (summaries) is counted when it ends; wait for it (the patience)."""
    deadline = asyncio.get_running_loop().time() + patience()
    while asyncio.get_running_loop().time() < deadline:
        if sample(await scrape(url), name, **labels) == value:
            return
        await asyncio.sleep(0.05)
    assert sample(await scrape(url), name, **labels) == value


async def test_operations_errors_and_latency_are_counted_by_root_field(
    live_server: Callable[..., str],
) -> None:
    url = live_server()
    for n in range(3):
        await post(url, ADD_MESSAGES, {"sessionId": f"s{n}", "messages": [message("hi")]})
    await post(url, ADD_MESSAGES, {"sessionId": "", "messages": [message("bad id")]})
    await post(url, "{ sessions(first: 5) { nodes { id } } }")
    await post(url, "{ sessions(")

    samples = await scrape(url)
    mutation = {"operation": "addMessages", "type": "mutation"}
    assert sample(samples, "maas_graphql_operations_total", **mutation) == 4
    errors = "maas_graphql_operation_errors_total"
    assert sample(samples, errors, **mutation, code="BAD_USER_INPUT") == 1
    assert sample(samples, "maas_graphql_operation_duration_seconds_count", **mutation) == 4
    query = {"operation": "sessions", "type": "query"}
    assert sample(samples, "maas_graphql_operations_total", **query) == 1
    assert sample(samples, errors, **query, code="BAD_USER_INPUT") == 0
    invalid = {"operation": "invalid", "type": "unknown"}
    assert sample(samples, errors, **invalid, code="BAD_USER_INPUT") == 1


async def test_active_subscriptions_rise_and_fall(
    live_server: Callable[..., str], connect: Connect
) -> None:
    url = live_server()
    writer = await connect(url)
    socket = await connect(url, ws=True)
    gauge = "maas_active_subscriptions"
    async with subscribed(socket, writer, "s1"):
        assert sample(await scrape(url), gauge, operation="sessionEvents") == 1
    await eventually(url, gauge, 0, operation="sessionEvents")
    samples = await scrape(url)
    subscription = {"operation": "sessionEvents", "type": "subscription"}
    assert sample(samples, "maas_graphql_operations_total", **subscription) == 1
    errors = "maas_graphql_operation_errors_total"
    assert not [key for key in samples if key[0] == errors], "stopping is no error"
    # A subscription's lifetime is no latency.
    assert sample(samples, "maas_graphql_operation_duration_seconds_count", **subscription) == 0


async def test_summaries_and_the_tokens_they_used_are_counted(
    live_server: Callable[..., str], connect: Connect, fake_llm: FakeLLM
) -> None:
    url = live_server(stm_default_strategy="token_threshold", stm_max_tokens=400)
    api = await connect(url)
    fake_llm.script("the early part, summarized")
    await add_messages(api, "ok", *(f"{i} {LONG}" for i in range(8)))
    await eventually(url, "maas_summarizations_total", 1, outcome="summarized")
    samples = await scrape(url)
    tokens = "maas_llm_tokens_total"
    assert sample(samples, tokens, model="gpt-4.1-mini", kind="prompt") > 0
    assert sample(samples, tokens, model="gpt-4.1-mini", kind="completion") > 0

    fake_llm.fail_next(1, status=500)
    await add_messages(api, "failing", *(f"{i} {LONG}" for i in range(8)))
    await eventually(url, "maas_summarizations_total", 1, outcome="failed")
    samples = await scrape(url)
    assert sample(samples, "maas_summarizations_total", outcome="summarized") == 1
    assert sample(samples, "maas_dependency_errors_total", dependency="llm") == 1


async def test_a_provider_that_is_down_is_counted_as_a_dependency_error(
    live_server: Callable[..., str], connect: Connect
) -> None:
    url = live_server(**EMBEDDING_PROVIDER_DOWN)
    api = await connect(url)
    for _ in range(2):
        await execute_error(api, ADD_MEMORY, input={"text": "x", "userId": "a"})

    samples = await scrape(url)
    down = "maas_dependency_errors_total"
    assert sample(samples, down, dependency="embedding_provider") == 2
    mutation = {"operation": "addMemory", "type": "mutation", "code": "UNAVAILABLE"}
    assert sample(samples, "maas_graphql_operation_errors_total", **mutation) == 2


async def test_metrics_can_be_turned_off(live_server: Callable[..., str]) -> None:
    url = live_server(metrics_enabled=False)
    async with httpx.AsyncClient(timeout=patience()) as client:
        assert (await client.get(f"{url}/metrics")).status_code == 404


async def test_the_runtimes_process_and_python_metrics_are_exported(
    live_server: Callable[..., str],
) -> None:
    samples = await scrape(live_server())
    assert sample(samples, "process_resident_memory_bytes") > 0
    assert sample(samples, "process_cpu_seconds_total") > 0
    assert sample(samples, "python_gc_collections_total", generation="0") > 0
    assert any(name == "python_info" for name, _ in samples)


async def test_in_production_metrics_are_served_only_behind_their_token(
    live_server: Callable[..., str],
) -> None:
    production = {"environment": "production", "api_keys": API_KEYS}
    async with httpx.AsyncClient(timeout=patience()) as client:
        closed = live_server(**production)
        assert (await client.get(f"{closed}/metrics")).status_code == 404

        guarded = live_server(**production, metrics_token="scrape-token-1")
        refused = await client.get(f"{guarded}/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        wrong = await client.get(f"{guarded}/metrics", headers={"Authorization": "Bearer x"})
        assert wrong.status_code == 401
        # An API key is no metrics token.
        as_tenant = await client.get(
            f"{guarded}/metrics", headers={"Authorization": f"Bearer {KEY_A}"}
        )
        assert as_tenant.status_code == 401
        allowed = await client.get(
            f"{guarded}/metrics", headers={"Authorization": "Bearer scrape-token-1"}
        )
        assert allowed.status_code == 200
        assert "process_cpu_seconds_total" in allowed.text
