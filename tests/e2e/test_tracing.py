"""Traces of real operations through the running app, read from the in-memory exporter that the
test process installs (tests/conftest.py): names, attributes, parent/child links, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from gql.client import AsyncClientSession
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from tests.conftest import Spans
from tests.e2e.conftest import Connect
from tests.support.fake_llm import FakeLLM
from tests.support.graphql_client import ADD_MESSAGES, execute, message, post, subscribed
from tests.support.memory_queries import ADD_MEMORY, SEARCH, extraction
from tests.support.patience import patience

SECRET_CONTENT = "the-launch-code-is-7731-alpha"


@pytest.fixture
def url(live_server: Callable[..., str]) -> str:
    return live_server()


def only(spans: list[ReadableSpan]) -> ReadableSpan:
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def descendants(root: ReadableSpan, spans: list[ReadableSpan]) -> list[ReadableSpan]:
    """Every span below `root`, following parent links."""
    below: list[ReadableSpan] = []
    frontier = {root.context.span_id}
    while frontier:
        children = [s for s in spans if s.parent and s.parent.span_id in frontier]
        below.extend(children)
        frontier = {s.context.span_id for s in children}
    return below


async def add_message(url: str, content: str, **kwargs: object) -> None:
    response = await post(
        url, ADD_MESSAGES, {"sessionId": "s1", "messages": [message(content)]}, **kwargs
    )
    assert response.json().get("errors") is None


async def test_a_mutation_is_one_server_span_with_its_redis_calls_below_it(
    url: str, spans: Spans
) -> None:
    """Over HTTP, the request's span is the operation's: one span per request, named after
    its operation, with the HTTP attributes and the GraphQL ones."""
    await add_message(url, "hello")

    finished = spans.finished()
    operation = only([s for s in finished if s.name == "mutation Add"])
    assert operation.kind is SpanKind.SERVER
    assert operation.parent is None
    assert not [s for s in finished if s.name == "POST /graphql"]
    assert operation.attributes is not None
    assert operation.attributes["http.request.method"] == "POST"
    assert operation.attributes["http.response.status_code"] == 200
    assert operation.attributes["graphql.operation.type"] == "mutation"
    assert operation.attributes["graphql.operation.name"] == "Add"
    assert operation.attributes["maas.graphql.fields"] == "addMessages"
    assert operation.attributes["maas.tenant"] == "local"
    assert operation.status.status_code is StatusCode.UNSET
    # One span per store call (not per Redis command): appending the messages, which also
    # copies their event into the tenant's stream.
    redis_calls = [
        s for s in descendants(operation, finished) if s.attributes.get("db.system.name") == "redis"
    ]
    assert [s.name for s in redis_calls] == ["message_store append"]
    assert all(s.kind is SpanKind.CLIENT for s in redis_calls)
    assert all(s.parent.span_id == operation.context.span_id for s in redis_calls)  # type: ignore[union-attr]
    assert all(s.context.trace_id == operation.context.trace_id for s in redis_calls)


async def test_a_request_without_an_operation_is_a_post_span(url: str, spans: Spans) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        response = await client.post(
            "/graphql", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400

    request = only(spans.named("POST /graphql"))
    assert request.kind is SpanKind.SERVER
    assert request.attributes is not None
    assert request.attributes["http.response.status_code"] == 400


async def test_an_unnamed_operation_is_named_by_the_fields_it_selects(
    url: str, spans: Spans
) -> None:
    await post(url, "{ sessions(first: 5) { nodes { id } } }")

    operation = only(spans.named("query sessions"))
    assert "graphql.operation.name" not in (operation.attributes or {})


async def test_errors_mark_the_span_with_their_codes(url: str, spans: Spans) -> None:
    response = await post(url, ADD_MESSAGES, {"sessionId": "", "messages": [message("x")]})
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    operation = only(spans.named("mutation Add"))
    assert operation.status.status_code is StatusCode.ERROR
    assert operation.attributes is not None
    assert operation.attributes["graphql.error.codes"] == ("BAD_USER_INPUT",)


async def test_a_document_that_does_not_parse_is_an_invalid_operation(
    url: str, spans: Spans
) -> None:
    await post(url, "{ sessions(")

    operation = only(spans.named("unknown invalid"))
    assert operation.status.status_code is StatusCode.ERROR


async def test_a_callers_traceparent_continues_its_trace(url: str, spans: Spans) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    await add_message(url, "hi", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})

    operation = only(spans.named("mutation Add"))
    assert format(operation.context.trace_id, "032x") == trace_id
    assert operation.parent is not None
    assert format(operation.parent.span_id, "016x") == parent_id


async def test_spans_never_carry_message_contents(url: str, spans: Spans) -> None:
    await add_message(url, SECRET_CONTENT)

    finished = spans.finished()
    assert finished
    for span in finished:
        for value in (span.attributes or {}).values():
            assert SECRET_CONTENT not in str(value), span.name


async def test_memory_add_traces_mem0_the_vector_store_the_embedder_and_the_llm(
    url: str, connect: Connect, fake_llm: FakeLLM, spans: Spans
) -> None:
    api: AsyncClientSession = await connect(url)
    fake_llm.script(extraction("Prefers window seats"))
    await execute(
        api,
        ADD_MEMORY,
        input={"userId": "alice", "messages": [{"role": "USER", "content": "Window seat!"}]},
    )

    finished = spans.finished()
    operation = only([s for s in finished if s.name == "mutation Add"])
    below = descendants(operation, finished)
    names = {s.name for s in below}
    assert "vector_store insert" in names
    assert "vector_store search" in names
    assert "history_store add_history" in names or "history_store batch_add_history" in names
    vector = next(s for s in below if s.name == "vector_store insert")
    assert vector.kind is SpanKind.CLIENT
    assert vector.attributes is not None
    assert vector.attributes["db.system.name"] == "sqlite"

    embeddings = genai(below, "embeddings")
    assert embeddings, names
    assert embeddings[0].attributes is not None
    assert embeddings[0].attributes["gen_ai.provider.name"] == "local"
    assert embeddings[0].attributes["gen_ai.request.model"] == "all-MiniLM-L6-v2"

    chats = genai(below, "chat")
    assert chats, names
    chat = chats[0]
    assert chat.attributes is not None
    assert chat.attributes["gen_ai.request.model"] == "gpt-4.1-mini"
    assert chat.attributes["gen_ai.usage.input_tokens"] > 0
    assert not any("gen_ai.input.messages" in (s.attributes or {}) for s in chats)

    (memory,) = [s for s in below if s.name == "upsert_memory embedded"]
    assert memory.parent is not None
    assert memory.parent.span_id == operation.context.span_id


def covers(outer: ReadableSpan, inner: ReadableSpan) -> bool:
    assert None not in (outer.start_time, outer.end_time, inner.start_time, inner.end_time)
    return outer.start_time <= inner.start_time and inner.end_time <= outer.end_time  # type: ignore[operator]


async def test_a_memory_operation_span_is_above_its_embedding_store_and_llm_spans(
    url: str, connect: Connect, fake_llm: FakeLLM, spans: Spans
) -> None:
    """The span of mem0's add is the parent of the work it names and lasts as long: not a
    0.2 ms span beside it."""
    api: AsyncClientSession = await connect(url)
    fake_llm.script(extraction("Prefers aisle seats"))
    await execute(
        api,
        ADD_MEMORY,
        input={"userId": "bob", "messages": [{"role": "USER", "content": "Aisle, please."}]},
    )

    finished = spans.finished()
    (memory,) = [s for s in finished if s.name == "upsert_memory embedded"]
    assert memory.kind is SpanKind.INTERNAL
    assert memory.attributes is not None
    assert memory.attributes["gen_ai.operation.name"] == "upsert_memory"
    assert memory.attributes["gen_ai.provider.name"] == "mem0"
    assert memory.attributes["maas.memory.infer"] is True
    work = descendants(memory, finished)
    names = {s.name for s in work}
    assert {"vector_store search", "vector_store insert"} <= names, names
    assert genai(work, "embeddings"), names
    assert genai(work, "chat"), names
    assert all(covers(memory, s) for s in work)
    # Every store, embedding and LLM span of the request is below an operation's span, except
    # the reads of the records the service makes after mem0 is done (vector_store get).
    operation = only([s for s in finished if s.name == "mutation Add"])
    elsewhere = [
        s.name
        for s in descendants(operation, finished)
        if s not in work
        and s is not memory
        and (s.name.startswith(("vector_store", "history_store")) or genai([s], "chat"))
        and s.name != "vector_store get"
    ]
    assert elsewhere == []
    assert not [s for s in finished if s.name.startswith("memory ")], "OpenLIT's mem0 spans"


async def test_a_search_span_covers_the_query_embedding_and_the_store_search(
    url: str, connect: Connect, spans: Spans
) -> None:
    api: AsyncClientSession = await connect(url)
    await execute(api, ADD_MEMORY, input={"text": "Likes tea", "userId": "carol", "infer": False})
    spans.finished()
    await execute(api, SEARCH, input={"query": "drinks", "userId": "carol", "limit": 3})

    finished = spans.finished()
    (search,) = [s for s in finished if s.name == "search_memory embedded"]
    operation = only([s for s in finished if s.name == "query Search"])
    assert search.parent is not None
    assert search.parent.span_id == operation.context.span_id
    work = descendants(search, finished)
    assert "vector_store search" in {s.name for s in work}
    assert genai(work, "embeddings")
    assert all(covers(search, s) for s in work)
    assert search.attributes is not None
    assert search.attributes["maas.memory.search.limit"] == 3
    assert search.attributes["maas.memory.result_count"] == 1


def genai(spans: list[ReadableSpan], operation: str) -> list[ReadableSpan]:
    return [s for s in spans if (s.attributes or {}).get("gen_ai.operation.name") == operation]


async def test_a_subscription_is_one_span_that_ends_with_it(
    url: str, connect: Connect, spans: Spans
) -> None:
    writer = await connect(url)
    socket = await connect(url, ws=True)
    async with subscribed(socket, writer, "s1"):
        assert spans.named("subscription Events") == []

    deadline = asyncio.get_running_loop().time() + patience()
    while asyncio.get_running_loop().time() < deadline:
        if spans.named("subscription Events"):
            break
        await asyncio.sleep(0.05)
    subscription = only(spans.named("subscription Events"))
    assert subscription.kind is SpanKind.SERVER
    assert subscription.attributes is not None
    assert subscription.attributes["maas.graphql.fields"] == "sessionEvents"
    assert subscription.status.status_code is StatusCode.UNSET, "stopping is no error"


async def test_with_content_capture_on_a_search_span_records_its_query_and_scope(
    live_server: Callable[..., str], connect: Connect, spans: Spans
) -> None:
    api: AsyncClientSession = await connect(live_server(otel_capture_message_content=True))
    await execute(api, SEARCH, input={"query": "what she drinks", "userId": "dana"})

    (search,) = spans.named("search_memory embedded")
    assert search.attributes is not None
    assert search.attributes["gen_ai.memory.query.text"] == "what she drinks"
    assert "dana" in str(search.attributes["gen_ai.memory.scope"])
