"""The authentication middleware decides from the headers alone: a refused request's body is
never read and the app never runs; an accepted one carries its principal to the app."""

from __future__ import annotations

import json
from typing import Any

import pytest

from maas.api_keys import ApiKeyAuth
from maas.auth import Authenticator
from maas.authenticate import Authenticate, principal_of
from maas.principal import Principal
from services.errors import Unavailable


class App:
    """The app behind the middleware: records the scopes it was called with."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)


class ProviderDown(Authenticator):
    async def authenticate(self, authorization: str | None) -> Principal:
        raise Unavailable("The token's signing keys cannot be fetched; try again shortly.")


async def never_receive() -> dict[str, Any]:
    raise AssertionError("the body was read")


def http_scope(
    path: str = "/graphql",
    method: str = "POST",
    headers: dict[str, str] | None = None,
    query: str = "",
) -> dict[str, Any]:
    given = {"content-length": str(10 * 1024 * 1024), **(headers or {})}
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": [(k.encode(), v.encode()) for k, v in given.items() if v is not None],
    }


async def call(
    scope: dict[str, Any],
    authenticator: Authenticator | None = None,
    paths: tuple[str, ...] = ("/graphql", "/mcp"),
) -> tuple[App, list[dict[str, Any]]]:
    app = App()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    auth = authenticator or Authenticator(ApiKeyAuth({"sk-a": "acme"}))
    await Authenticate(app, auth, paths)(scope, never_receive, send)
    return app, sent


def response(sent: list[dict[str, Any]]) -> tuple[int, dict[str, str], Any]:
    start, body = sent
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, json.loads(body["body"])


@pytest.mark.parametrize("authorization", [None, "Bearer sk-wrong", "Basic sk-a"])
async def test_an_unauthenticated_post_is_refused_unread(authorization):
    app, sent = await call(http_scope(headers={"authorization": authorization}))
    assert app.scopes == []
    status, headers, body = response(sent)
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer")
    # Not closed: a client still sending would be reset and lose this answer (uvicorn drops
    # the unread body instead).
    assert "connection" not in headers
    assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}


async def test_a_refusal_without_a_body_keeps_the_connection():
    _, sent = await call(http_scope(method="GET", headers={"content-length": "0"}))
    status, headers, _ = response(sent)
    assert status == 401
    assert headers["www-authenticate"] == "Bearer"
    assert "connection" not in headers


async def test_an_accepted_request_carries_its_principal_to_the_app():
    app, sent = await call(http_scope(headers={"authorization": "Bearer sk-a"}))
    assert sent == []
    assert principal_of(app.scopes[0]) == Principal("acme")


async def test_signing_keys_out_of_reach_are_503_unavailable():
    _, sent = await call(http_scope(), ProviderDown(ApiKeyAuth({})))
    status, headers, body = response(sent)
    assert status == 503
    assert "www-authenticate" not in headers
    assert body["errors"][0]["extensions"] == {"code": "UNAVAILABLE"}


@pytest.mark.parametrize(
    "scope",
    [
        http_scope(path="/health", method="GET"),
        http_scope(path="/metrics", method="GET"),
        http_scope(path="/graphiql/assets/react.js", method="GET"),
        http_scope(method="GET", headers={"accept": "text/html"}),
        {**http_scope(), "type": "websocket"},
    ],
    ids=["health", "metrics", "assets", "graphiql-page", "websocket"],
)
async def test_what_needs_no_credential_passes_untouched(scope):
    app, sent = await call(scope)
    assert sent == []
    assert app.scopes == [scope]
    assert principal_of(scope) is None


async def test_a_get_that_runs_an_operation_needs_a_credential():
    scope = http_scope(method="GET", headers={"accept": "text/html"}, query="query=%7Bx%7D")
    app, sent = await call(scope)
    assert app.scopes == []
    assert response(sent)[0] == 401


async def test_behind_a_root_path_the_route_is_still_guarded():
    scope = {**http_scope(path="/api/graphql"), "root_path": "/api"}
    app, sent = await call(scope)
    assert app.scopes == []
    assert response(sent)[0] == 401


async def test_local_development_lets_everyone_in_as_local():
    app, _ = await call(http_scope(), Authenticator(ApiKeyAuth({})))
    assert principal_of(app.scopes[0]) == Principal("local")


@pytest.mark.parametrize(
    "scope",
    [
        http_scope(path="/mcp"),
        # No page to serve there: a GET that accepts HTML is not let through as GraphiQL's is.
        http_scope(path="/mcp", method="GET", headers={"accept": "text/html"}),
        http_scope(path="/mcp", method="GET", headers={"accept": "*/*"}),
    ],
    ids=["post", "get-html", "get-any"],
)
async def test_every_request_to_mcp_needs_a_credential(scope):
    app, sent = await call(scope)
    assert app.scopes == []
    assert response(sent)[0] == 401


async def test_only_the_paths_given_are_guarded():
    app, sent = await call(http_scope(path="/mcp"), paths=("/graphql",))
    assert sent == []
    assert len(app.scopes) == 1
