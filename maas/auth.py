"""Who is calling: an `Authorization: Bearer <credential>` value → a principal.

The credential is an API key (API_KEYS) or, when JWT is configured, a JWT: a value shaped like
a compact JWT (three base64url parts) goes to JWT verification, anything else to the key table.
With neither configured (local development) everyone is tenant `local`.

    MaasError (services.errors)
     ├── Unauthenticated   no credential, an unknown key, a token that fails any check
     └── Unavailable       the token's signing keys cannot be fetched (JWKS down)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from maas.api_keys import ApiKeyAuth
from maas.jwks import JwksKeys
from maas.jwt_auth import INVALID, JwtRules, JwtVerifier, SigningKeys, looks_like_jwt
from maas.jwt_keys import StaticKey, public_key_jwk, secret_jwk
from maas.principal import LOCAL, LOCAL_TENANT, Principal
from services.errors import Unauthenticated

if TYPE_CHECKING:
    from maas.settings import Settings

__all__ = ["LOCAL_TENANT", "Authenticator", "Principal", "authenticator_for"]

MISSING = (
    "Missing credentials: send 'Authorization: Bearer <API key or token>' (over WebSocket: "
    'connection_init payload {"Authorization": "Bearer <API key or token>"}).'
)
UNKNOWN_KEY = "Unknown API key."


class Authenticator:
    """The one place that decides who a caller is, over HTTP and WebSocket alike."""

    def __init__(self, api_keys: ApiKeyAuth, jwt: JwtVerifier | None = None) -> None:
        self.api_keys = api_keys
        self.jwt = jwt

    @property
    def open(self) -> bool:
        """No API keys and no JWT: local-development mode, everyone is tenant 'local'."""
        return not self.api_keys and self.jwt is None

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller of an Authorization value; raises Unauthenticated or Unavailable."""
        if self.open:
            return LOCAL
        scheme, _, credential = (authorization or "").strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise Unauthenticated(MISSING)
        if self.jwt is not None and looks_like_jwt(credential):
            return await self.jwt.principal(credential)
        tenant = self.api_keys.tenant_of(credential)
        if tenant is None:
            raise Unauthenticated(UNKNOWN_KEY if self.api_keys else INVALID)
        return Principal(tenant)

    def start(self) -> None:
        """Begin fetching a JWKS now, so the first token does not wait for it."""
        if self.jwt is not None and isinstance(self.jwt.keys, JwksKeys):
            self.jwt.keys.refresh()

    async def aclose(self) -> None:
        if self.jwt is not None:
            await self.jwt.keys.aclose()


def authenticator_for(settings: Settings) -> Authenticator:
    """The authenticator the settings describe (they were validated as they were read)."""
    return Authenticator(ApiKeyAuth(settings.api_keys), _jwt_verifier(settings))


def _jwt_verifier(settings: Settings) -> JwtVerifier | None:
    if not settings.jwt_enabled:
        return None
    algorithms = settings.jwt_accepted_algorithms
    keys: SigningKeys
    if settings.jwt_jwks_url:
        keys = JwksKeys(
            settings.jwt_jwks_url,
            algorithms,
            max_age_s=settings.jwt_jwks_cache_seconds,
            min_interval_s=settings.jwt_jwks_min_refresh_seconds,
            timeout_s=settings.jwt_jwks_timeout_seconds,
        )
    elif settings.jwt_public_key:
        keys = StaticKey(public_key_jwk(settings.jwt_public_key), algorithms)
    else:
        assert settings.jwt_secret is not None
        keys = StaticKey(secret_jwk(settings.jwt_secret.get_secret_value(), algorithms), algorithms)
    assert settings.jwt_issuer is not None
    assert settings.jwt_audience is not None
    rules = JwtRules(
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        algorithms=frozenset(algorithms),
        leeway_s=settings.jwt_leeway_seconds,
        tenant_claim=settings.jwt_tenant_claim,
    )
    return JwtVerifier(keys, rules)
