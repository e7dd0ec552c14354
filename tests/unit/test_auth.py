"""The authenticator: API keys (plain or as digests), JWTs against a configured key, and which
of the two a bearer value goes to."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from maas.api_keys import ApiKeyAuth, hash_key
from maas.auth import LOCAL_TENANT, Authenticator, authenticator_for
from maas.settings import Settings
from services.errors import Unauthenticated
from tests.support.jwt_tokens import (
    AUDIENCE,
    ISSUER,
    claims,
    ec_key,
    hmac_signed,
    rsa_key,
    unsigned,
)

SECRET = "s" * 32
RSA = rsa_key("rsa-1")
OTHER_RSA = rsa_key("rsa-1")  # same kid, another key: a forged signature
EC = ec_key("ec-1")


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def with_jwt(**values: Any) -> Authenticator:
    defaults = {"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE, "jwt_leeway_seconds": 0}
    return authenticator_for(settings(**{**defaults, **values}))


async def tenant(auth: Authenticator, authorization: str | None) -> str | None:
    try:
        return (await auth.authenticate(authorization)).tenant
    except Unauthenticated:
        return None


async def test_keys_map_to_their_tenants():
    auth = Authenticator(ApiKeyAuth({"key-a": "acme", "key-b": "globex"}))
    assert await tenant(auth, "Bearer key-a") == "acme"
    assert await tenant(auth, "bearer  key-b ") == "globex"


async def test_a_key_may_be_given_as_its_digest_mixed_with_plain_ones():
    auth = Authenticator(ApiKeyAuth({hash_key("key-a"): "acme", "key-b": "globex"}))
    assert await tenant(auth, "Bearer key-a") == "acme"
    assert await tenant(auth, "Bearer key-b") == "globex"
    # The digest is what is stored, not a key one can present.
    assert await tenant(auth, f"Bearer {hash_key('key-a')}") is None


def test_a_digest_in_upper_case_is_the_same_digest():
    upper = hash_key("key-a").upper()
    assert upper.startswith("SHA256:")
    assert ApiKeyAuth({upper: "acme"}).tenant_of("key-a") == "acme"


def test_hash_key_matches_sha256sum():
    # printf %s sk-abc | sha256sum
    expected = "1460db1b6902f8b1fc2a40d9381a24d0fd22c3bc1b2c6f999c521da73776fbe0"
    assert hash_key("sk-abc") == f"sha256:{expected}"


async def test_missing_malformed_or_unknown_keys_have_no_tenant():
    auth = Authenticator(ApiKeyAuth({"key-a": "acme"}))
    for header in (None, "", "Bearer", "Bearer ", "Basic key-a", "key-a", "Bearer key-b"):
        assert await tenant(auth, header) is None


async def test_without_keys_or_jwt_everyone_is_the_local_tenant():
    auth = Authenticator(ApiKeyAuth({}))
    assert auth.open
    principal = await auth.authenticate(None)
    assert principal.tenant == LOCAL_TENANT
    assert principal.expires_at is None


async def test_jwt_alone_is_not_open_and_knows_no_keys():
    auth = with_jwt(jwt_secret=SECRET)
    assert not auth.open
    assert await tenant(auth, None) is None
    assert await tenant(auth, "Bearer sk-some-key") is None


async def test_a_token_signed_with_the_secret_names_its_tenant_and_expiry():
    auth = with_jwt(jwt_secret=SECRET)
    payload = claims(lifetime=60)
    principal = await auth.authenticate(f"Bearer {hmac_signed(payload, SECRET.encode())}")
    assert principal.tenant == "tenant-a"
    assert principal.expires_at == payload["exp"]


async def test_the_leeway_extends_the_expiry_it_carries():
    auth = with_jwt(jwt_secret=SECRET, jwt_leeway_seconds=10)
    payload = claims(lifetime=-5)  # expired 5 s ago, within the leeway
    principal = await auth.authenticate(f"Bearer {hmac_signed(payload, SECRET.encode())}")
    assert principal.expires_at == payload["exp"] + 10
    assert not principal.expired()


@pytest.mark.parametrize("key", [RSA, EC], ids=["rsa", "ec"])
async def test_a_token_signed_by_the_configured_public_key_is_accepted(key):
    auth = with_jwt(jwt_public_key=key.public_pem)
    assert await tenant(auth, f"Bearer {key.sign(claims())}") == "tenant-a"


async def test_a_pem_with_escaped_line_breaks_is_read():
    escaped = RSA.public_pem.replace("\n", "\\n")
    auth = with_jwt(jwt_public_key=escaped)
    assert await tenant(auth, f"Bearer {RSA.sign(claims())}") == "tenant-a"


def refused_tokens() -> dict[str, str]:
    """Tokens the RSA public key's verifier must refuse, by why."""
    return {
        "wrong-issuer": RSA.sign(claims(iss="https://evil.example/")),
        "wrong-audience": RSA.sign(claims(aud="another-service")),
        "expired": RSA.sign(claims(lifetime=-1)),
        "not-yet-valid": RSA.sign(claims(nbf=int(time.time()) + 300)),
        "no-exp": RSA.sign(claims(exp=None)),
        "bad-signature": OTHER_RSA.sign(claims()),
        "alg-none": unsigned(claims(), RSA.kid),
        "hs256-with-the-public-key": hmac_signed(claims(), RSA.public_pem.encode(), RSA.kid),
        "missing-tenant": RSA.sign(claims(tenant=None)),
        "tenant-not-a-tenant-id": RSA.sign(claims(tenant="a:b")),
        "tenant-not-a-string": RSA.sign(claims(tenant=["tenant-a"])),
        "tampered-payload": _tampered(RSA.sign(claims(tenant="tenant-b"))),
    }


def _tampered(token: str) -> str:
    head, _, signature = token.split(".")
    other = RSA.sign(claims(tenant="tenant-a")).split(".")[1]
    return f"{head}.{other}.{signature}"


@pytest.mark.parametrize("why", sorted(refused_tokens()))
async def test_a_token_failing_any_check_is_unauthenticated(why):
    auth = with_jwt(jwt_public_key=RSA.public_pem)
    token = refused_tokens()[why]
    with pytest.raises(Unauthenticated):
        await auth.authenticate(f"Bearer {token}")


async def test_expired_and_early_tokens_say_so():
    auth = with_jwt(jwt_public_key=RSA.public_pem)
    with pytest.raises(Unauthenticated, match="expired"):
        await auth.authenticate(f"Bearer {RSA.sign(claims(lifetime=-1))}")
    with pytest.raises(Unauthenticated, match="not valid yet"):
        await auth.authenticate(f"Bearer {RSA.sign(claims(nbf=int(time.time()) + 300))}")


async def test_the_tenant_claim_is_configurable():
    auth = with_jwt(jwt_public_key=RSA.public_pem, jwt_tenant_claim="https://maas/tenant")
    token = RSA.sign(claims(tenant=None, **{"https://maas/tenant": "acme"}))
    assert await tenant(auth, f"Bearer {token}") == "acme"
    assert await tenant(auth, f"Bearer {RSA.sign(claims())}") is None


async def test_only_the_allowed_algorithms_verify():
    ps = rsa_key("ps", alg="PS256")
    only_rs = with_jwt(jwt_public_key=ps.public_pem, jwt_algorithms=["RS256"])
    assert await tenant(only_rs, f"Bearer {ps.sign(claims())}") is None
    any_rsa = with_jwt(jwt_public_key=ps.public_pem)
    assert await tenant(any_rsa, f"Bearer {ps.sign(claims())}") == "tenant-a"


async def test_keys_and_tokens_work_side_by_side():
    auth = with_jwt(jwt_public_key=RSA.public_pem, api_keys={"key-a": "acme"})
    assert await tenant(auth, "Bearer key-a") == "acme"
    assert await tenant(auth, f"Bearer {RSA.sign(claims())}") == "tenant-a"
    # Shaped like a JWT: verified as one, never looked up as a key.
    assert await tenant(auth, "Bearer a.b.c") is None


async def test_an_oversized_token_is_refused_unparsed():
    auth = with_jwt(jwt_public_key=RSA.public_pem)
    huge = RSA.sign(claims(padding="x" * 20_000))
    assert await tenant(auth, f"Bearer {huge}") is None


def _forged(header: Any, payload: Any = None) -> str:
    def part(value: Any) -> str:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part(header)}.{part(payload if payload is not None else claims())}.c2ln"


@pytest.mark.parametrize(
    "bearer",
    [
        _forged({"alg": ["RS256"], "kid": "rsa-1"}),
        _forged({"alg": {"x": 1}}),
        _forged({"alg": "RS256", "kid": ["rsa-1"]}),
        _forged({"alg": "RS256", "kid": {"a": 1}}),
        _forged(["not", "an", "object"]),
        _forged(b"\xff\xfe not json"),
        _forged({"alg": "RS256"}, payload=["a list"]),
        _forged({"alg": "RS256"}, payload=b"not json"),
        _forged({"alg": "ES256", "kid": "ec-1"}),
        "a.b.c",
        "e30.e30.",
        "....",
    ],
)
async def test_malformed_tokens_are_unauthenticated_never_an_internal_error(bearer):
    auth = with_jwt(jwt_public_key=EC.public_pem)
    with pytest.raises(Unauthenticated):
        await auth.authenticate(f"Bearer {bearer}")
