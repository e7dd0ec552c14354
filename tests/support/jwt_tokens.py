"""Signing keys made in the test and the tokens they sign, well-formed or deliberately not."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://id.example.test/"
AUDIENCE = "maas-tests"


@dataclass(frozen=True)
class SigningKey:
    """A private key with its kid and algorithm, and what a JWKS publishes of it."""

    kid: str
    alg: str
    private: Any

    @property
    def public_jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        convert = RSAAlgorithm if self.alg.startswith(("RS", "PS")) else ECAlgorithm
        jwk = convert.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}

    @property
    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(
            claims, self.private, algorithm=self.alg, headers={"kid": self.kid, **header}
        )


def rsa_key(kid: str, alg: str = "RS256") -> SigningKey:
    return SigningKey(kid, alg, rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


def claims(tenant: Any = "tenant-a", lifetime: float = 300, **overrides: Any) -> dict[str, Any]:
    """Claims the tests' servers accept (issuer, audience, a future exp), with overrides; an
    override of None leaves the claim out."""
    now = int(time.time())
    values = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": now,
        "exp": int(now + lifetime),
        "tenant": tenant,
        **overrides,
    }
    return {name: value for name, value in values.items() if value is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _compact(header: dict[str, Any], payload: dict[str, Any], signature: bytes) -> str:
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(payload).encode())
    return f"{head}.{body}.{_b64(signature)}"


def unsigned(payload: dict[str, Any], kid: str) -> str:
    """An `alg: none` token: no signature at all."""
    return _compact({"alg": "none", "typ": "JWT", "kid": kid}, payload, b"")


def hmac_signed(payload: dict[str, Any], secret: bytes, kid: str | None = None) -> str:
    """An HS256 token signed with any bytes as the secret: with a public key's PEM, the
    classic algorithm-confusion attack (PyJWT itself refuses to sign one)."""
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(payload).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"
