"""The JWKS cache: one fetch at a time, cached, refetched for an unknown kid at most once per
interval, keys held kept through an outage, and only keys that may sign."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from maas.jwks import MAX_JWKS_BYTES, JwksKeys
from maas.jwt_keys import ASYMMETRIC
from services.errors import Unavailable
from tests.support.jwt_tokens import ec_key, rsa_key

URL = "https://id.example.test/jwks.json"
RSA = rsa_key("rsa-1")
EC = ec_key("ec-1")
ROTATED = rsa_key("rsa-2")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Provider:
    """The identity provider behind a MockTransport: what it serves, and how often it was asked."""

    def __init__(self, *keys: Any) -> None:
        self.body: Any = {"keys": [key.public_jwk for key in keys]}
        self.status = 200
        self.down = False
        self.fetches = 0
        self.gate: asyncio.Event | None = None

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if isinstance(self.body, bytes):
            return httpx.Response(self.status, content=self.body)
        return httpx.Response(self.status, json=self.body)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make(clock: Clock):
    made: list[JwksKeys] = []

    def build(provider: Provider, **options: float) -> JwksKeys:
        values = {"max_age_s": 300.0, "min_interval_s": 30.0, "timeout_s": 5.0, **options}
        keys = JwksKeys(
            URL, ASYMMETRIC, transport=httpx.MockTransport(provider.handle), clock=clock, **values
        )
        made.append(keys)
        return keys

    yield build
    for keys in made:
        await keys.aclose()


async def test_keys_are_fetched_once_and_cached(make, clock):
    provider = Provider(RSA, EC)
    keys = make(provider)
    assert (await keys.key_for("rsa-1", "RS256")) is not None
    clock.now += 299
    assert (await keys.key_for("ec-1", "ES256")) is not None
    assert provider.fetches == 1


async def test_a_key_verifies_only_with_algorithms_of_its_type(make):
    keys = make(Provider(RSA, EC))
    assert await keys.key_for("rsa-1", "ES256") is None
    assert await keys.key_for("ec-1", "RS256") is None
    assert await keys.key_for("rsa-1", "HS256") is None
    # The JWK names RS256: PS256 is of its type, but not its algorithm.
    assert await keys.key_for("rsa-1", "PS256") is None


async def test_an_unknown_kid_fetches_again_at_most_once_per_interval(make, clock):
    provider = Provider(RSA)
    keys = make(provider, min_interval_s=30)
    assert await keys.key_for("rsa-1", "RS256") is not None
    provider.body = {"keys": [RSA.public_jwk, ROTATED.public_jwk]}
    clock.now += 10
    # Too soon after the last fetch: made-up kids cannot make the service hammer the provider.
    assert await keys.key_for("rsa-2", "RS256") is None
    assert await keys.key_for("made-up", "RS256") is None
    assert provider.fetches == 1
    clock.now += 20
    assert await keys.key_for("rsa-2", "RS256") is not None
    assert provider.fetches == 2


async def test_a_key_rotated_out_is_no_longer_accepted(make, clock):
    provider = Provider(RSA)
    keys = make(provider, min_interval_s=0)
    assert await keys.key_for("rsa-1", "RS256") is not None
    provider.body = {"keys": [ROTATED.public_jwk]}
    assert await keys.key_for("rsa-2", "RS256") is not None
    assert await keys.key_for("rsa-1", "RS256") is None


async def test_concurrent_requests_share_one_fetch(make):
    provider = Provider(RSA)
    provider.gate = asyncio.Event()
    keys = make(provider)
    waiting = [asyncio.create_task(keys.key_for("rsa-1", "RS256")) for _ in range(20)]
    await asyncio.sleep(0)
    provider.gate.set()
    assert all(key is not None for key in await asyncio.gather(*waiting))
    assert provider.fetches == 1


async def test_a_caller_that_goes_away_does_not_cancel_the_fetch_of_the_others(make):
    provider = Provider(RSA)
    provider.gate = asyncio.Event()
    keys = make(provider)
    impatient = asyncio.create_task(keys.key_for("rsa-1", "RS256"))
    patient = asyncio.create_task(keys.key_for("rsa-1", "RS256"))
    await asyncio.sleep(0)
    impatient.cancel()
    provider.gate.set()
    assert await patient is not None


async def test_a_provider_that_is_down_is_unavailable_and_not_hammered(make, clock):
    provider = Provider(RSA)
    provider.down = True
    keys = make(provider, min_interval_s=30)
    with pytest.raises(Unavailable):
        await keys.key_for("rsa-1", "RS256")
    clock.now += 5
    with pytest.raises(Unavailable):
        await keys.key_for("rsa-1", "RS256")
    assert provider.fetches == 1
    provider.down = False
    clock.now += 30
    assert await keys.key_for("rsa-1", "RS256") is not None


@pytest.mark.parametrize(
    "answer",
    [
        (500, {"error": "oops"}),
        (200, {"not": "a jwks"}),
        (200, b"<html>login</html>"),
        (200, b"{" + b" " * MAX_JWKS_BYTES + b"}"),
    ],
    ids=["error-status", "not-a-jwks", "not-json", "too-large"],
)
async def test_anything_but_a_key_set_counts_as_the_provider_down(make, answer):
    provider = Provider()
    provider.status, provider.body = answer
    keys = make(provider)
    with pytest.raises(Unavailable):
        await keys.key_for("rsa-1", "RS256")


async def test_keys_held_keep_working_through_an_outage(make, clock):
    provider = Provider(RSA)
    keys = make(provider, max_age_s=60, min_interval_s=0)
    assert await keys.key_for("rsa-1", "RS256") is not None
    provider.down = True
    clock.now += 120  # stale: a refresh is attempted, and fails
    assert await keys.key_for("rsa-1", "RS256") is not None
    await _settled(keys)
    assert await keys.key_for("rsa-1", "RS256") is not None
    # A key not held cannot be told apart from one that does not exist while the set
    # cannot be fetched.
    with pytest.raises(Unavailable):
        await keys.key_for("rsa-2", "RS256")


async def test_stale_keys_answer_at_once_while_a_fresh_copy_is_fetched(make, clock):
    provider = Provider(RSA)
    keys = make(provider, max_age_s=60)
    assert await keys.key_for("rsa-1", "RS256") is not None
    provider.gate = asyncio.Event()
    clock.now += 120
    # Answered from the held keys, though the provider has not answered the refresh.
    assert await keys.key_for("rsa-1", "RS256") is not None
    assert keys._refresh is not None  # the refresh is under way, held at the provider
    provider.gate.set()
    await _settled(keys)
    assert provider.fetches == 2


async def test_only_keys_that_may_sign_are_kept(make):
    hmac_key = {"kty": "oct", "kid": "sym", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}
    encryption = {**EC.public_jwk, "kid": "enc", "use": "enc"}
    broken = {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"}
    provider = Provider(RSA)
    provider.body["keys"] += [hmac_key, encryption, broken, "not a key", {"kid": 7, "kty": "RSA"}]
    keys = make(provider)
    assert await keys.key_for("rsa-1", "RS256") is not None
    for kid in ("sym", "enc", "broken"):
        for alg in ("HS256", "ES256", "RS256"):
            assert await keys.key_for(kid, alg) is None


async def test_a_token_without_a_kid_needs_a_set_with_one_key_for_its_algorithm(make):
    single = make(Provider(RSA))
    assert await single.key_for(None, "RS256") is not None
    several = make(Provider(RSA, ROTATED))
    assert await several.key_for(None, "RS256") is None


async def _settled(keys: JwksKeys) -> None:
    """Let a background refresh finish (it never waits on anything but the mock provider)."""
    for _ in range(1000):
        if keys._refresh is None:
            return
        await asyncio.sleep(0)
    raise AssertionError("the refresh never finished")


async def test_a_provider_that_never_answers_is_down_after_the_timeout(make):
    provider = Provider(RSA)
    provider.gate = asyncio.Event()  # never set
    keys = make(provider, timeout_s=0.05)
    with pytest.raises(Unavailable):
        await keys.key_for("rsa-1", "RS256")
