"""JWT bearer tokens → principals: signature, issuer, audience, lifetime and the tenant claim."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import NoReturn, Protocol

import jwt

from maas.principal import Principal
from services.errors import Unauthenticated
from services.stm_limits import TENANT_ID

log = logging.getLogger("maas.auth")
# Three base64url parts: what a compact JWS looks like (the signature is empty for alg none).
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# Far beyond any real token; a longer one is refused before anything parses it.
MAX_TOKEN_CHARS = 16 * 1024
INVALID = "Invalid bearer token."


def looks_like_jwt(value: str) -> bool:
    return _COMPACT_JWS.fullmatch(value) is not None


class SigningKeys(Protocol):
    """Where the key of a token comes from: a JWKS URL or one configured key."""

    async def key_for(self, kid: str | None, alg: str) -> jwt.PyJWK | None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class JwtRules:
    """What a token must satisfy besides its signature."""

    issuer: str
    audience: str
    algorithms: frozenset[str]
    leeway_s: float = 0.0
    tenant_claim: str = "tenant"


class JwtVerifier:
    """Verifies a token and returns its principal; raises Unauthenticated (or, from a JWKS
    that cannot be fetched, Unavailable)."""

    def __init__(self, keys: SigningKeys, rules: JwtRules) -> None:
        self.keys = keys
        self.rules = rules
        # exp is required: a token without one would be good forever.
        self._jwt = jwt.PyJWT(
            {"require": ["exp", "iss", "aud"], "enforce_minimum_key_length": True}
        )

    async def principal(self, token: str) -> Principal:
        rules = self.rules
        if len(token) > MAX_TOKEN_CHARS:
            raise Unauthenticated(INVALID)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated(INVALID) from None
        alg, kid = header.get("alg"), header.get("kid")
        # The allow-list decides before any key is looked up: `none`, or HS256 against a
        # public key, never reach a verifier.
        if not isinstance(alg, str) or alg not in rules.algorithms:
            _refused(f"algorithm {alg!r} not allowed")
        if not (kid is None or isinstance(kid, str)):
            _refused("kid is not a string")
        key = await self.keys.key_for(kid, alg)
        if key is None:
            _refused(f"no key {kid!r} for {alg}")
        try:
            claims = self._jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=rules.audience,
                issuer=rules.issuer,
                leeway=rules.leeway_s,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The bearer token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("The bearer token is not valid yet.") from None
        except Exception as exc:  # whatever fails verification, from PyJWT or beneath it
            _refused(f"{type(exc).__name__}: {exc}")
        tenant = claims.get(rules.tenant_claim)
        if not isinstance(tenant, str) or not TENANT_ID.fullmatch(tenant):
            _refused(f"claim {rules.tenant_claim!r} is not a tenant id")
        # PyJWT compares exp as a whole number of seconds; so does the expiry it leads to.
        return Principal(tenant, expires_at=int(claims["exp"]) + rules.leeway_s)


def _refused(reason: str) -> NoReturn:
    # Why a token was refused helps whoever runs the service, not whoever sent it; the
    # reason never includes the token.
    log.debug("bearer token refused: %s", reason)
    raise Unauthenticated(INVALID)
