"""JWT bearer tokens through the real app, against a local identity provider's JWKS serving keys
made here: over HTTP and both WebSocket protocols, key rotation, a provider that is down or
slow, API keys as digests, and subscriptions that end when their token expires."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from gql.transport.exceptions import TransportError, TransportQueryError
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from maas.api_keys import hash_key
from tests.support.fake_jwks import FakeJwks
from tests.support.graphql_client import (
    API_KEYS,
    GRAPHQL_TRANSPORT_WS,
    KEY_A,
    LEGACY_GRAPHQL_WS,
    EventReader,
    FrameReader,
    add_messages,
    bearer,
    codes,
    execute,
    post,
    subscribed,
    ws_url,
)
from tests.support.jwt_tokens import (
    AUDIENCE,
    ISSUER,
    claims,
    ec_key,
    hmac_signed,
    rsa_key,
    unsigned,
)
from tests.support.patience import PATIENCE_S, patience
from tests.support.server_log import leaked_fragments, server_log

RSA_KEY = rsa_key("rsa-1")
EC_KEY = ec_key("ec-1")
ROTATED = rsa_key("rsa-2")
FORGER = rsa_key("rsa-1")  # same kid as RSA_KEY, another key
STRANGER = rsa_key("nobody")  # a key the provider never published
PROTOCOLS = [GRAPHQL_TRANSPORT_WS, LEGACY_GRAPHQL_WS]
JWT_SETTINGS: dict[str, Any] = {
    "jwt_issuer": ISSUER,
    "jwt_audience": AUDIENCE,
    "jwt_leeway_seconds": 0,
    # Every unknown kid may fetch again (the rate limit has unit tests of its own).
    "jwt_jwks_min_refresh_seconds": 0,
}
SESSION = "query One($id: ID!) { session(id: $id) { id messageCount } }"
SESSIONS = "{ sessions(first: 5) { nodes { id } } }"
EVENTS = """
subscription Events($sessionId: String) {
  sessionEvents(sessionId: $sessionId) { type messages { content } }
}
"""


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeJwks]:
    with FakeJwks(RSA_KEY, EC_KEY) as jwks:
        yield jwks


@pytest.fixture
def identity(provider: FakeJwks) -> FakeJwks:
    """The provider publishing the usual keys, answering at once."""
    provider.publish(RSA_KEY, EC_KEY)
    provider.release()
    return provider


@pytest.fixture
def url(module_server: Callable[..., str], redis: Any, identity: FakeJwks) -> str:
    """A server taking API keys (API_KEYS) and tokens signed by the provider's keys."""
    return module_server(api_keys=API_KEYS, jwt_jwks_url=identity.base_url, **JWT_SETTINGS)


def token(key: Any = RSA_KEY, tenant: Any = "tenant-a", **overrides: Any) -> str:
    return key.sign(claims(tenant, **overrides))


async def ws_refusal(url: str, credential: str, protocol: str) -> Any:
    """How the server refuses a WebSocket's connection_init: the close code (graphql-transport-ws)
    or the connection_error payload (graphql-ws)."""
    async with ws_connect(ws_url(url), subprotocols=[protocol], open_timeout=patience()) as ws:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": bearer(credential)}
        await ws.send(json.dumps(init))
        if protocol == LEGACY_GRAPHQL_WS:
            reply = json.loads(await ws.recv())
            assert reply["type"] == "connection_error", reply
            return reply["payload"]
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None
        return closed.value.rcvd.code


async def test_a_valid_token_is_its_tenant_over_http_and_graphql_transport_ws(url, connect):
    api = await connect(url, KEY_A)
    await add_messages(api, "mine", "hello")
    for ws in (False, True):
        for key in (RSA_KEY, EC_KEY):
            tenant_a = await connect(url, token(key), ws=ws)
            assert (await execute(tenant_a, SESSION, id="mine"))["session"]["messageCount"] == 1
        tenant_b = await connect(url, token(tenant="tenant-b"), ws=ws)
        assert await execute(tenant_b, SESSION, id="mine") == {"session": None}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_valid_token_subscribes_to_its_own_tenants_events(url, connect, protocol):
    """(graphql-ws runs subscriptions only, so tenants show in whose events arrive.)"""
    api = await connect(url, KEY_A)
    tenant_b = await connect(url, token(EC_KEY, tenant="tenant-b"))
    socket_a = await connect(url, token(), ws=True, protocol=protocol)
    socket_b = await connect(url, token(tenant="tenant-b"), ws=True, protocol=protocol)
    async with (
        subscribed(socket_a, api, "mine") as events_a,
        subscribed(socket_b, tenant_b, "mine") as events_b,
    ):
        await add_messages(api, "mine", "for a")
        await add_messages(tenant_b, "mine", "for b")
        assert [m["content"] for m in (await events_a.next())["messages"]] == ["for a"]
        # Events arrive in order: had tenant a's leaked, it would come first.
        assert [m["content"] for m in (await events_b.next())["messages"]] == ["for b"]


def refused_tokens() -> dict[str, str]:
    """Tokens the server must refuse as UNAUTHENTICATED, by why (made when asked: lifetimes
    count from now)."""
    return {
        "wrong-issuer": token(iss="https://evil.example/"),
        "wrong-audience": token(aud="another-service"),
        "expired": token(lifetime=-1),
        "not-yet-valid": token(nbf=int(time.time()) + 300),
        "bad-signature": token(FORGER),
        "alg-none": unsigned(claims(), RSA_KEY.kid),
        "hs256-signed-with-the-public-key": hmac_signed(
            claims(), RSA_KEY.public_pem.encode(), RSA_KEY.kid
        ),
        "unknown-kid": token(STRANGER),
        "missing-tenant-claim": token(tenant=None),
        "invalid-tenant": token(tenant="tenant a/../b"),
    }


@pytest.mark.parametrize("why", sorted(refused_tokens()))
async def test_a_token_failing_any_check_is_unauthenticated_everywhere(url, why):
    bad = refused_tokens()[why]
    reply = await post(url, SESSIONS, key=bad)
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"].startswith("Bearer")
    assert codes(reply.json()["errors"]) == ["UNAUTHENTICATED"]
    assert await ws_refusal(url, bad, GRAPHQL_TRANSPORT_WS) == 4403
    assert await ws_refusal(url, bad, LEGACY_GRAPHQL_WS) == {"code": "UNAUTHENTICATED"}


async def test_a_rotated_key_is_picked_up_and_the_retired_one_refused(url, identity):
    assert (await post(url, SESSIONS, key=token(RSA_KEY))).status_code == 200
    identity.publish(ROTATED, EC_KEY)
    # rsa-2 is not held: the set is fetched again, and it is there.
    assert (await post(url, SESSIONS, key=token(ROTATED))).status_code == 200
    assert (await post(url, SESSIONS, key=token(RSA_KEY))).status_code == 401


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_a_provider_that_is_down_makes_tokens_unavailable_not_unauthenticated(
    module_server, redis
):
    down = f"http://127.0.0.1:{_closed_port()}/.well-known/jwks.json"
    url = module_server(api_keys=API_KEYS, jwt_jwks_url=down, **JWT_SETTINGS)
    reply = await post(url, SESSIONS, key=token())
    assert reply.status_code == 503
    assert codes(reply.json()["errors"]) == ["UNAVAILABLE"]
    assert await ws_refusal(url, token(), LEGACY_GRAPHQL_WS) == {"code": "UNAVAILABLE"}
    assert await ws_refusal(url, token(), GRAPHQL_TRANSPORT_WS) == 4403
    # API keys need no provider.
    assert (await post(url, SESSIONS, key=KEY_A)).status_code == 200


@pytest.fixture
def slow_provider() -> Iterator[FakeJwks]:
    jwks = FakeJwks(RSA_KEY)
    with jwks:
        yield jwks
        jwks.release()


async def test_a_slow_provider_stalls_only_the_tokens_that_need_it(
    module_server, redis, slow_provider, http
):
    url = module_server(
        api_keys=API_KEYS,
        jwt_jwks_url=slow_provider.base_url,
        **{**JWT_SETTINGS, "jwt_jwks_timeout_seconds": PATIENCE_S},
    )
    client = http(url)
    assert (await post(url, SESSIONS, key=token(RSA_KEY))).status_code == 200  # rsa-1 held
    slow_provider.hold()
    needs_a_fetch = asyncio.create_task(
        client.post("/graphql", json={"query": SESSIONS}, headers=bearer(token(ROTATED)))
    )
    assert await asyncio.to_thread(slow_provider.asked.wait, PATIENCE_S)
    # While the fetch hangs: API keys and tokens whose key is held are answered.
    assert (await post(url, SESSIONS, key=KEY_A)).status_code == 200
    assert (await post(url, SESSIONS, key=token(RSA_KEY))).status_code == 200
    assert not needs_a_fetch.done()
    slow_provider.fail(503)
    slow_provider.release()
    reply = await needs_a_fetch
    assert reply.status_code == 503
    assert codes(reply.json()["errors"]) == ["UNAVAILABLE"]


async def test_an_unauthenticated_large_post_is_refused_before_its_body_is_sent(url):
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    declared = 10 * 1024 * 1024
    head = (
        "POST /graphql HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    sent = b'{"query": "' + b"x" * 16 * 1024
    writer.write(head.encode() + sent)
    await writer.drain()
    try:
        # The whole answer, while almost all of the declared body is still unsent.
        async with asyncio.timeout(PATIENCE_S):
            head_part = await reader.readuntil(b"\r\n\r\n")
            lines = head_part.decode().strip().split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
            body = await reader.readexactly(int(headers["content-length"]))
        assert lines[0].startswith("HTTP/1.1 401")
        assert headers["www-authenticate"] == "Bearer"
        errors = json.loads(body)["errors"]
        assert [error["extensions"] for error in errors] == [{"code": "UNAUTHENTICATED"}]
        assert errors[0]["message"]
        # The rest of the body is taken in and dropped, unread, with no reset: a client that
        # reads its answer only once it has sent everything still gets it.
        chunk = b"x" * (1024 * 1024)
        for _ in range(declared // len(chunk)):
            writer.write(chunk)
            await writer.drain()
    finally:
        writer.close()


async def test_what_needs_no_credential_still_needs_none(url, http):
    client = http(url)
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    for path in ("/health", "/health/ready", "/metrics"):
        assert (await client.get(path)).status_code == 200, path
    # A GET that runs an operation is no page request: it needs a credential.
    operation = await client.get(
        "/graphql", params={"query": SESSIONS}, headers={"Accept": "text/html"}
    )
    assert operation.status_code == 401


# A key that exists only as its digest in the server's settings.
DIGEST_ONLY_KEY = "sk-test-digest-3f9a0c1e"


async def test_keys_given_as_digests_work_and_no_credential_is_ever_logged(
    module_server, redis, identity, connect, caplog
):
    url = module_server(
        api_keys={hash_key(DIGEST_ONLY_KEY): "tenant-a"},
        jwt_jwks_url=identity.base_url,
        **JWT_SETTINGS,
    )
    good, expired = token(), token(lifetime=-1)
    with server_log(caplog) as log:
        by_key = await connect(url, DIGEST_ONLY_KEY)
        await add_messages(by_key, "chat", "via a digest")
        by_token = await connect(url, good, ws=True)
        assert (await execute(by_token, SESSION, id="chat"))["session"]["messageCount"] == 1
        legacy = await connect(url, DIGEST_ONLY_KEY, ws=True, protocol=LEGACY_GRAPHQL_WS)
        async with subscribed(legacy, by_key, "chat") as events:
            await add_messages(by_key, "chat", "live")
            assert [m["content"] for m in (await events.next())["messages"]] == ["live"]
        assert (await post(url, SESSIONS, key=expired)).status_code == 401
        assert (await post(url, SESSIONS, key=DIGEST_ONLY_KEY + "x")).status_code == 401
        assert await ws_refusal(url, expired, LEGACY_GRAPHQL_WS) == {"code": "UNAUTHENTICATED"}
    assert log.text, "the server logged nothing: the capture is not working"
    for secret in (DIGEST_ONLY_KEY, good, expired):
        assert not leaked_fragments(secret, log.text)


# ----- a token that expires during a subscription -----


def _result(frame: str) -> dict[str, Any]:
    message = json.loads(frame)
    assert message["type"] in ("next", "data"), message
    return message["payload"]


@contextlib.asynccontextmanager
async def expiring_subscriber(
    url: str, writer: Any, protocol: str, others: list[FrameReader]
) -> AsyncIterator[tuple[FrameReader, int]]:
    """A `sessionEvents("chat")` subscription on a WebSocket opened with a token that expires
    soon, proven live (it and `others` received an event) before its token expired; and that
    expiry. The token lives 2 s; on a machine too slow to go live within that, the lifetime
    doubles and the subscriber is opened again."""
    lifetime = 2
    while lifetime <= PATIENCE_S:
        expires_at = int(time.time()) + lifetime
        credential = token(exp=expires_at)
        reader = FrameReader(url, credential, EVENTS, {"sessionId": "chat"}, protocol=protocol)
        try:
            await reader.__aenter__()
        except ConnectionClosed:  # expired before its connection_init was read
            lifetime *= 2
            continue
        try:
            live = await _live(writer, [reader, *others], within=expires_at - time.time())
            if live and time.time() < expires_at:
                yield reader, expires_at
                return
        finally:
            await reader.__aexit__(None, None, None)
        lifetime *= 2
    raise AssertionError("no subscription went live within its token's lifetime")


async def _live(writer: Any, readers: list[FrameReader], within: float | None = None) -> bool:
    """Write probes until every reader has a frame (for `within` seconds, default the
    patience); False when none came or one's first frame is an error (its token expired)."""
    deadline = asyncio.get_running_loop().time() + (patience() if within is None else within)
    while True:
        await add_messages(writer, "chat", "probe")
        await asyncio.sleep(0.05)
        if all(reader.waiting for reader in readers):
            break
        if asyncio.get_running_loop().time() > deadline:
            return False
    frames = [await reader.frame() for reader in readers]
    return all("errors" not in _result(frame) for frame in frames)


async def _error_result(reader: FrameReader, within: float) -> tuple[dict[str, Any], float]:
    """The subscription's first result with errors (skipping its events), and when it came."""
    async with asyncio.timeout(within):
        while True:
            frame = await reader.frame(within)
            if "errors" in _result(frame):
                return _result(frame), time.time()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_subscription_ends_unauthenticated_when_its_token_expires(url, connect, protocol):
    writer = await connect(url, KEY_A)
    # The same operation on a connection that does not expire: it shares each event's
    # execution with the expiring one, and must outlive it.
    async with FrameReader(url, KEY_A, EVENTS, {"sessionId": "chat"}, protocol=protocol) as lasting:
        async with expiring_subscriber(url, writer, protocol, [lasting]) as (ending, expires_at):
            result, at = await _error_result(ending, expires_at - time.time() + PATIENCE_S)
            assert at >= expires_at, "ended before its token expired"
            assert result["data"] is None
            assert codes(result["errors"]) == ["UNAUTHENTICATED"]
            assert json.loads(await ending.frame(PATIENCE_S)) == {"type": "complete", "id": "1"}

            # New operations on the expired connection are refused too (graphql-ws runs
            # subscriptions only).
            if protocol == GRAPHQL_TRANSPORT_WS:
                await ending.start("2", SESSIONS)
                refused = json.loads(await ending.frame(PATIENCE_S))
                assert refused["id"] == "2"
                assert codes(refused["payload"]["errors"]) == ["UNAUTHENTICATED"]
            await ending.start("3", EVENTS, {"sessionId": "chat"})
            refused = json.loads(await ending.frame(PATIENCE_S))
            while refused["id"] != "3":
                refused = json.loads(await ending.frame(PATIENCE_S))
            # An error result like the expiry's, then complete: the subscription never starts.
            assert codes(_result(json.dumps(refused))["errors"]) == ["UNAUTHENTICATED"]
            assert json.loads(await ending.frame(PATIENCE_S)) == {"type": "complete", "id": "3"}

        await add_messages(writer, "chat", "after the expiry")
        async with asyncio.timeout(PATIENCE_S):
            while True:
                event = _result(await lasting.frame(PATIENCE_S))["data"]["sessionEvents"]
                if [m["content"] for m in event["messages"]] == ["after the expiry"]:
                    break


async def test_a_gql_client_sees_its_subscription_fail_unauthenticated_at_expiry(url, connect):
    writer = await connect(url, KEY_A)
    error, expires_at = await _gql_subscription_until_it_fails(url, connect, writer)
    assert time.time() >= expires_at
    assert codes(error.errors or []) == ["UNAUTHENTICATED"]


async def _gql_subscription_until_it_fails(
    url: str, connect: Any, writer: Any
) -> tuple[TransportQueryError, int]:
    """How a gql subscription opened with a short-lived token fails, once it was live before
    its token expired (the lifetime doubles on a machine too slow for that); and the expiry."""
    lifetime = 2
    while lifetime <= PATIENCE_S:
        expires_at = int(time.time()) + lifetime
        try:
            session = await connect(url, token(exp=expires_at), ws=True)
            async with subscribed(session, writer, "chat") as events:
                if time.time() < expires_at:
                    return await _failure(events, expires_at), expires_at
        except (TransportError, TransportQueryError):
            pass  # it expired before it went live
        lifetime *= 2
    raise AssertionError("no subscription went live within its token's lifetime")


async def _failure(events: EventReader, expires_at: int) -> TransportQueryError:
    async with asyncio.timeout(expires_at - time.time() + PATIENCE_S):
        while True:
            try:
                await events.next(within=PATIENCE_S)
            except TransportQueryError as error:
                return error
