"""The GraphQL-over-HTTP edges: which operation runs, how the transport refuses, what error
messages reveal."""

from __future__ import annotations

import httpx
import pytest

from tests.support.graphql_client import API_KEYS, KEY_A, add_messages, bearer, codes, post
from tests.support.patience import patience

MIXED = (
    'subscription S { sessionEvents(sessionId: "s") { type } } '
    'mutation M { deleteSession(input: {sessionId: "s"}) { sessionId } }'
)


@pytest.fixture
def url(module_server, redis) -> str:
    return module_server(api_keys=API_KEYS)


async def test_a_document_of_several_operations_needs_an_operation_name(url):
    reply = await post(url, MIXED, key=KEY_A)
    assert reply.status_code == 200
    body = reply.json()
    assert body["data"] is None
    assert codes(body["errors"]) == ["BAD_USER_INPUT"]
    assert "operationName" in body["errors"][0]["message"]


async def test_naming_the_subscription_of_a_mixed_document_over_http_is_refused(url):
    async with httpx.AsyncClient(base_url=url, headers=bearer(KEY_A), timeout=patience()) as client:
        reply = await client.post("/graphql", json={"query": MIXED, "operationName": "S"})
        assert codes(reply.json()["errors"]) == ["BAD_USER_INPUT"]
        reply = await client.post("/graphql", json={"query": MIXED, "operationName": "Nope"})
        assert codes(reply.json()["errors"]) == ["BAD_USER_INPUT"]


async def test_methods_graphql_has_no_use_for_are_405_with_allow_and_a_code(url):
    async with httpx.AsyncClient(base_url=url, headers=bearer(KEY_A), timeout=patience()) as client:
        for method in ("PUT", "DELETE", "PATCH"):
            reply = await client.request(method, "/graphql")
            assert reply.status_code == 405
            assert reply.headers["allow"] == "GET, POST"
            assert codes(reply.json()["errors"]) == ["BAD_USER_INPUT"]
        reply = await client.get("/nowhere")
        assert reply.status_code == 404
        assert codes(reply.json()["errors"]) == ["NOT_FOUND"]


@pytest.mark.parametrize(("introspection", "suggested"), [(True, True), (False, False)])
async def test_suggestions_of_field_names_go_with_introspection(
    module_server, redis, introspection, suggested
):
    url = module_server(api_keys=API_KEYS, introspection=introspection)
    reply = await post(url, '{ sesion(id: "s") { id } }', key=KEY_A)
    [error] = reply.json()["errors"]
    assert codes([error]) == ["BAD_USER_INPUT"]
    assert ("Did you mean" in error["message"]) is suggested
    assert ("'session'" in error["message"]) is suggested


async def test_two_operations_without_a_name_run_neither(url, connect):
    api = await connect(url, KEY_A)
    await add_messages(api, "s", "kept")
    document = (
        'mutation A { deleteSession(input: {sessionId: "s"}) { sessionId } } '
        "query B { sessions { nodes { id } } }"
    )
    body = (await post(url, document, key=KEY_A)).json()
    assert body["data"] is None
    assert codes(body["errors"]) == ["BAD_USER_INPUT"]
    assert (await post(url, '{ session(id: "s") { id } }', key=KEY_A)).json() == {
        "data": {"session": {"id": "s"}}
    }
