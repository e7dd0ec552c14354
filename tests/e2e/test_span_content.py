"""What a real `maas serve` exports to a collector (OTLP over HTTP) for long-term memory, with
content capture off (the default): no span attribute carries a memory's text, a query, the
caller's metadata or the user ids; and the span of each mem0 operation is the parent of the work
it names and covers it in time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ServerProcess
from tests.support.fake_llm import FakeLLM
from tests.support.graphql_client import KEY_A
from tests.support.memory_queries import ADD_MEMORY, DELETE, SEARCH, UPDATE, extraction
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.patience import patience

# Each of these reaches the server in a different place of the API.
SECRETS = {
    "user": "patient-7731-jdoe",
    "agent": "triage-bot-secret-4410",
    "metadata": "diagnosis-hypertension-stage-2",
    "text": "takes-lisinopril-20mg-daily",
    "message": "my-ssn-is-078-05-1120",
    "extracted": "allergic-to-penicillin-since-1998",
    "query": "what-does-jdoe-take-for-blood-pressure",
    "update": "now-takes-amlodipine-5mg",
}


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as started:
        yield started


def graphql(client: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    body = client.post("/graphql", json={"query": query, "variables": variables}).json()
    assert body.get("errors") is None, body
    return body["data"]


def below(root: ReceivedSpan, spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    found: list[ReceivedSpan] = []
    frontier = {root.span_id}
    while frontier:
        children = [s for s in spans if s.parent_span_id in frontier]
        found.extend(children)
        frontier = {s.span_id for s in children}
    return found


def test_memory_spans_carry_no_user_content_and_cover_their_work(
    server_processes: Callable[..., list[ServerProcess]],
    receiver: OtlpReceiver,
    fake_llm: FakeLLM,
) -> None:
    (server,) = server_processes(
        1,
        {KEY_A: "tenant-a"},
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.base_url,
        LLM_BASE_URL=fake_llm.base_url,
        LLM_API_KEY="test-key",
        LLM_MAX_RETRIES="0",
    )
    scope = {"userId": SECRETS["user"], "agentId": SECRETS["agent"]}
    headers = {"Authorization": f"Bearer {KEY_A}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=patience()) as client:
        added = graphql(
            client,
            ADD_MEMORY,
            input={
                **scope,
                "text": SECRETS["text"],
                "metadata": {"diagnosis": SECRETS["metadata"]},
                "infer": False,
            },
        )
        memory_id = added["addMemory"]["added"][0]["id"]
        fake_llm.script(extraction(SECRETS["extracted"]))
        graphql(
            client,
            ADD_MEMORY,
            input={**scope, "messages": [{"role": "USER", "content": SECRETS["message"]}]},
        )
        search = {
            **scope,
            "query": SECRETS["query"],
            "metadata": {"diagnosis": SECRETS["metadata"]},
        }
        graphql(client, SEARCH, input=search)
        graphql(client, UPDATE, input={"id": memory_id, "text": SECRETS["update"]})
        graphql(client, DELETE, id=memory_id)
    server.stop()  # flushes every span to the receiver

    spans = receiver.spans
    operations = {s.attributes.get("gen_ai.operation.name"): s for s in spans}
    memory_operations = {"create_memory", "upsert_memory", "search_memory", "update_memory"}
    assert memory_operations | {"delete_memory"} <= set(operations), sorted(
        str(name) for name in operations
    )
    leaks = [
        (span.name, key, what)
        for span in spans
        for key, value in [("name", span.name), *span.attributes.items()]
        for what, secret in SECRETS.items()
        if secret in str(value)
    ]
    assert leaks == []

    for name in sorted(memory_operations):
        memory = operations[name]
        work = below(memory, spans)
        assert any(s.name.startswith("vector_store ") for s in work), name
        assert any(s.attributes.get("gen_ai.operation.name") == "embeddings" for s in work), name
        assert all(memory.covers(s) for s in work), name
    upsert = below(operations["upsert_memory"], spans)
    assert any(s.attributes.get("gen_ai.operation.name") == "chat" for s in upsert)
