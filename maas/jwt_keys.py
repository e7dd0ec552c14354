"""The keys that may sign a bearer token, each bound to the algorithms it may verify.

A key verifies only with the algorithms of its own type (an RSA key never with HS256, so a
public key can never be taken for an HMAC secret), and only with those the operator allows;
`none` is never among them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import ECAlgorithm, HMACAlgorithm, OKPAlgorithm, RSAAlgorithm

HMAC = frozenset({"HS256", "HS384", "HS512"})
RSA = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_CURVES = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
ASYMMETRIC = RSA | frozenset({*_EC_CURVES.values(), "EdDSA"})
SUPPORTED = HMAC | ASYMMETRIC
# The digest size of each HMAC algorithm: its shortest acceptable secret (RFC 7518, 3.2).
HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}


def algorithms_of(jwk: Mapping[str, Any]) -> frozenset[str]:
    """The algorithms a JSON Web Key's type can verify."""
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "RSA":
        return RSA
    if kty == "EC" and crv in _EC_CURVES:
        return frozenset({_EC_CURVES[crv]})
    if kty == "OKP" and crv == "Ed25519":
        return frozenset({"EdDSA"})
    if kty == "oct":
        return HMAC
    return frozenset()


def verifiers(jwk: Mapping[str, Any], allowed: Iterable[str]) -> dict[str, jwt.PyJWK]:
    """The key bound to each algorithm it may verify: those of its type that are allowed,
    narrowed to its own `alg` when it names one."""
    algorithms = algorithms_of(jwk) & set(allowed)
    if "alg" in jwk:
        algorithms &= {jwk["alg"]}
    return {alg: jwt.PyJWK(dict(jwk), alg) for alg in sorted(algorithms)}


def check_algorithms(algorithms: Iterable[str]) -> None:
    """ValueError unless every name is a supported signature algorithm."""
    for name in algorithms:
        if name.lower() == "none":
            raise ValueError("JWT_ALGORITHMS: 'none' is never accepted (an unsigned token)")
        if name not in SUPPORTED:
            raise ValueError(f"JWT_ALGORITHMS: unknown algorithm {name!r}; use {sorted(SUPPORTED)}")


def public_key_jwk(pem: str) -> dict[str, Any]:
    """The JWK of a PEM public key (RSA, EC or Ed25519); ValueError for anything else.
    Literal `\\n` sequences count as line breaks, as an environment variable often has them."""
    text = pem.replace("\\n", "\n") if "\n" not in pem else pem
    try:
        key = load_pem_public_key(text.strip().encode())
    except ValueError:
        raise ValueError("JWT_PUBLIC_KEY: not a PEM public key") from None
    if isinstance(key, rsa.RSAPublicKey):
        return RSAAlgorithm.to_jwk(key, as_dict=True)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ECAlgorithm.to_jwk(key, as_dict=True)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return OKPAlgorithm.to_jwk(key, as_dict=True)
    raise ValueError("JWT_PUBLIC_KEY: an RSA, EC or Ed25519 public key is needed")


def secret_jwk(secret: str, algorithms: Iterable[str]) -> dict[str, Any]:
    """The JWK of an HMAC secret; ValueError when it is too short for one of the algorithms."""
    raw = secret.encode()
    for alg in algorithms:
        if len(raw) < HMAC_MIN_BYTES.get(alg, 0):
            raise ValueError(f"JWT_SECRET: {alg} needs at least {HMAC_MIN_BYTES[alg]} bytes")
    return HMACAlgorithm.to_jwk(raw, as_dict=True)


class StaticKey:
    """One configured key (JWT_PUBLIC_KEY or JWT_SECRET): it verifies whatever the token's kid."""

    def __init__(self, jwk: Mapping[str, Any], allowed: Iterable[str]) -> None:
        self._verifiers = verifiers(jwk, allowed)
        if not self._verifiers:
            raise ValueError("JWT_ALGORITHMS allows no algorithm this key can verify")

    @property
    def algorithms(self) -> frozenset[str]:
        return frozenset(self._verifiers)

    async def key_for(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        return self._verifiers.get(alg)

    async def aclose(self) -> None:
        return None
