"""Authentication settings: a mistake stops the server at start-up, saying which setting is
wrong, and never repeats a key or secret."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from maas.api_keys import hash_key
from maas.settings import Settings
from tests.support.jwt_tokens import AUDIENCE, ISSUER, rsa_key

PEM = rsa_key("k").public_pem
JWT = {"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def refused(**values: Any) -> str:
    with pytest.raises(ValidationError) as error:
        settings(**values)
    return str(error.value)


def test_digests_and_plain_keys_may_be_mixed():
    keys = {hash_key("sk-a"): "acme", "sk-b": "globex", "SHA256:" + "AB" * 32: "x"}
    assert settings(api_keys=keys).api_keys == keys


@pytest.mark.parametrize(
    "entry",
    [
        "sha256:",
        "sha256:abc",
        "sha256:" + "0" * 63,
        "sha256:" + "g" * 64,
        "sha256:" + "0" * 65,
        "SHA256:" + "0" * 63,
    ],
)
def test_a_malformed_digest_is_a_settings_error(entry):
    message = refused(api_keys={entry: "acme", "sk-plain-secret-key": "globex"})
    assert "64 hex digits" in message
    assert "maas hash-key" in message
    # Neither the entry nor any other key is repeated.
    assert "sk-plain-secret-key" not in message
    assert entry.lower() not in message.lower() or entry == "sha256:"


def test_a_bad_tenant_is_refused_without_repeating_the_keys():
    message = refused(api_keys={"sk-plain-secret-key": "a:b"})
    assert "sk-plain-secret-key" not in message


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_never_accepted(alg):
    assert "never accepted" in refused(jwt_public_key=PEM, jwt_algorithms=[alg], **JWT)


def test_unknown_algorithms_are_refused():
    assert "unknown algorithm" in refused(jwt_public_key=PEM, jwt_algorithms=["RS1"], **JWT)


@pytest.mark.parametrize("source", ["jwt_public_key", "jwt_jwks_url"])
def test_hmac_algorithms_need_the_secret_never_a_public_key(source):
    value = PEM if source == "jwt_public_key" else "https://id.example/jwks.json"
    message = refused(**{source: value}, jwt_algorithms=["RS256", "HS256"], **JWT)
    assert "JWT_SECRET" in message


def test_the_secret_verifies_hmac_only():
    message = refused(jwt_secret="s" * 32, jwt_algorithms=["RS256"], **JWT)
    assert "HS256/HS384/HS512 only" in message


@pytest.mark.parametrize(("alg", "size"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_a_secret_too_short_for_its_algorithm_is_refused(alg, size):
    assert settings(jwt_secret="s" * size, jwt_algorithms=[alg], **JWT).jwt_enabled
    message = refused(jwt_secret="s" * (size - 1), jwt_algorithms=[alg], **JWT)
    assert f"at least {size} bytes" in message
    assert "s" * (size - 1) not in message


def test_one_key_source_only():
    message = refused(jwt_public_key=PEM, jwt_secret="s" * 32, **JWT)
    assert "JWT_PUBLIC_KEY and JWT_SECRET" in message


@pytest.mark.parametrize("missing", ["jwt_issuer", "jwt_audience"])
def test_jwt_needs_issuer_and_audience(missing):
    values = {**JWT, missing: None}
    assert "JWT_ISSUER and JWT_AUDIENCE" in refused(jwt_public_key=PEM, **values)


def test_jwt_rules_without_a_key_are_a_mistake():
    assert "no key to verify" in refused(**JWT)


def test_a_public_key_must_be_a_pem_public_key():
    assert "not a PEM public key" in refused(jwt_public_key="not a key", **JWT)


def test_a_public_key_needs_an_algorithm_it_can_verify():
    message = refused(jwt_public_key=PEM, jwt_algorithms=["ES256"], **JWT)
    assert "no algorithm this key can verify" in message


def test_the_jwks_url_is_http():
    assert "http(s) URL" in refused(jwt_jwks_url="file:///etc/keys.json", **JWT)


def test_default_algorithms_follow_the_key():
    assert settings(jwt_secret="s" * 32, **JWT).jwt_accepted_algorithms == ["HS256"]
    asymmetric = settings(jwt_public_key=PEM, **JWT).jwt_accepted_algorithms
    assert "RS256" in asymmetric
    assert "ES256" in asymmetric
    assert not [alg for alg in asymmetric if alg.startswith("HS") or alg.lower() == "none"]


def test_jwt_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("JWT_JWKS_URL", "https://id.example/jwks.json")
    monkeypatch.setenv("JWT_ISSUER", ISSUER)
    monkeypatch.setenv("JWT_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("JWT_ALGORITHMS", '["RS256", "ES256"]')
    loaded = settings()
    assert loaded.jwt_enabled
    assert loaded.jwt_accepted_algorithms == ["RS256", "ES256"]
