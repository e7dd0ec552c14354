"""Settings, read once from the environment (and `.env`). Each is documented here; the README's
table repeats them (a test checks that none is missing)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from maas import jwt_keys
from maas.api_keys import check_entry
from services.ltm_limits import METADATA_KEY
from services.stm_limits import TENANT_ID

Provider = Literal[
    "openai", "grok", "anthropic", "openrouter", "kimi", "glm", "minimax", "together", "deepseek"
]


class TenantLimitOverrides(BaseModel):
    """One tenant's own limits in TENANT_LIMITS: any of the four limit settings, by their
    lower-case names; those left out keep the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_limit_requests_per_second: float | None = Field(None, ge=0)
    rate_limit_burst: int | None = Field(None, ge=0)
    quota_max_messages: int | None = Field(None, ge=0)
    quota_max_memories: int | None = Field(None, ge=0)


class Settings(BaseSettings):
    """The service's configuration."""

    # An empty value (`GRAPHIQL=` in .env) means unset, as in .env.example's commented lines.
    # Errors never repeat the value: API_KEYS may hold keys, JWT_SECRET a secret.
    model_config = SettingsConfigDict(
        env_file=".env",
        extra="ignore",
        frozen=True,
        env_ignore_empty=True,
        hide_input_in_errors=True,
    )

    # Server
    host: str = Field("127.0.0.1", description="Address the server listens on.")
    port: int = Field(8000, description="Port the server listens on.")
    data_dir: Path = Field(
        Path(".data"), description="Where the embedded Redis and vector store keep their data."
    )
    environment: Literal["development", "production"] = Field(
        "development",
        description="production turns GraphiQL and introspection off by default, refuses to "
        "start without authentication and serves /metrics only with METRICS_TOKEN.",
    )
    graphiql: bool | None = Field(
        None, description="Serve GraphiQL at /graphql (default: on in development only)."
    )
    introspection: bool | None = Field(
        None, description="Allow schema introspection (default: on in development only)."
    )
    log_level: str = Field("INFO", description="Logging level.")
    log_format: Literal["json", "text"] = Field(
        "json", description="json: one JSON object per line, with request and trace ids."
    )
    log_flush_seconds: float = Field(
        0.2,
        ge=0,
        description="Log lines below WARNING go out in batches, at most this late (0: at once).",
    )

    # Telemetry
    otel_sdk_disabled: bool = Field(False, description="true turns tracing off entirely.")
    otel_exporter_otlp_endpoint: str = Field(
        "http://localhost:4318",
        description="OTLP/HTTP collector that receives traces (spans go to /v1/traces).",
    )
    otel_service_name: str = Field("my-maas", description="service.name of every span.")
    otel_capture_message_content: bool = Field(
        False,
        description="Put user content on spans: prompts and completions on LLM spans, the query "
        "and the user/agent/session ids on memory spans (they may hold personal data).",
    )
    metrics_enabled: bool = Field(True, description="Serve Prometheus metrics at /metrics.")
    mcp_enabled: bool = Field(
        True, description="Serve the MCP endpoint at /mcp (false: the MCP SDK is not even loaded)."
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token that /metrics requires (Authorization: Bearer <token>). "
        "Unset: /metrics is open in development and not served in production.",
    )
    readiness_timeout_seconds: float = Field(
        2.0,
        gt=0,
        description="Longest /health/ready waits for one dependency before calling it unavailable.",
    )
    shutdown_grace_seconds: float = Field(
        10.0,
        gt=0,
        description="On SIGTERM, longest `maas serve` waits for open requests and WebSockets "
        "before cancelling them.",
    )

    # Access
    api_keys: dict[str, str] = Field(
        default_factory=dict,
        description='API keys and their tenants as JSON, e.g. {"sk-123": "acme"}; a key may be '
        'given as its SHA-256 digest, {"sha256:<64 hex digits>": "acme"} (`maas hash-key`). '
        "Empty, and no JWT = local-development mode: no authentication, every caller is "
        "tenant 'local'.",
    )
    jwt_jwks_url: str | None = Field(
        None,
        description="URL of the JSON Web Key Set whose keys sign bearer tokens (JWT); turns "
        "JWT on. One of JWT_JWKS_URL, JWT_PUBLIC_KEY, JWT_SECRET.",
    )
    jwt_public_key: str | None = Field(
        None, description="PEM public key (RSA, EC or Ed25519) that signs bearer tokens."
    )
    jwt_secret: SecretStr | None = Field(
        None,
        description="Shared HMAC secret that signs bearer tokens (HS256 unless JWT_ALGORITHMS "
        "says otherwise); at least 32 bytes.",
    )
    jwt_issuer: str | None = Field(
        None, description="The `iss` every token must have; required with JWT."
    )
    jwt_audience: str | None = Field(
        None, description="The `aud` every token must include; required with JWT."
    )
    jwt_algorithms: list[str] = Field(
        default_factory=list,
        description="Accepted signature algorithms, as JSON. Empty: HS256 with JWT_SECRET, "
        "every RS/PS/ES/EdDSA algorithm otherwise. Each key verifies only with algorithms of "
        "its own type; none is never accepted.",
    )
    jwt_tenant_claim: str = Field("tenant", description="The claim that holds the caller's tenant.")
    jwt_leeway_seconds: float = Field(
        30.0, ge=0, le=300, description="Clock skew allowed when checking exp, nbf and iat."
    )
    jwt_jwks_cache_seconds: float = Field(
        300.0, gt=0, description="How long fetched JWKS keys are used before fetching again."
    )
    jwt_jwks_min_refresh_seconds: float = Field(
        30.0,
        ge=0,
        description="Fewest seconds between two fetches of the JWKS (a token with an unknown "
        "kid fetches it again, at most this often).",
    )
    jwt_jwks_timeout_seconds: float = Field(5.0, gt=0, description="Longest wait for the JWKS.")
    allow_unauthenticated: bool = Field(
        False,
        description="true lets ENVIRONMENT=production start without authentication (no "
        "API_KEYS): every caller is tenant 'local'. Without it, production refuses to start.",
    )

    # Redis
    redis_url: str | None = Field(
        None,
        description="redis:// or rediss:// URL (password in the URL). Unset: `maas serve` "
        "starts an embedded redis-server with its data under DATA_DIR.",
    )
    redis_cluster: bool = Field(
        False,
        description="true: REDIS_URL names one node of a Redis Cluster (the others are found "
        "from it).",
    )
    redis_key_prefix: str = Field("maas", description="Prefix of every Redis key and channel.")
    redis_timeout_seconds: float = Field(
        5.0, gt=0, description="Longest wait to connect to Redis or for one reply."
    )
    redis_max_connections: int = Field(
        1000, ge=10, description="Most connections from one server process to each Redis node."
    )

    # Live events
    events_max_per_stream: int = Field(
        1000,
        ge=1,
        description="Events kept per stream (a session's; a tenant's sessions'; a tenant's "
        "memories') for subscribers resuming with `after`.",
    )
    events_max_age_seconds: int = Field(
        3600,
        ge=1,
        description="Oldest event kept for resuming; a deleted session's events go after this.",
    )
    events_outage_grace_seconds: float = Field(
        5.0,
        ge=0,
        description="How long subscriptions wait for Redis to come back before ending with "
        "UNAVAILABLE (then resume with `after`).",
    )

    # Short-term memory
    stm_default_strategy: Literal["sliding_window", "token_threshold"] = Field(
        "sliding_window", description="Context strategy of sessions without their own."
    )
    stm_max_messages: int = Field(50, ge=1, description="sliding_window: messages kept.")
    stm_max_tokens: int = Field(8000, ge=100, description="token_threshold: token budget.")
    stm_summarization_model: str | None = Field(
        None, description="Model that writes summaries (default: LLM_MODEL)."
    )
    stm_session_ttl_seconds: int = Field(
        86400,
        ge=0,
        description="Idle seconds before a session expires; every write renews it; 0 = never.",
    )
    stm_long_term_extraction: bool = Field(
        False,
        description="Sessions without their own longTermExtraction: true sends their messages "
        "to long-term memory by themselves.",
    )
    stm_extraction_delay_seconds: float = Field(
        60.0,
        gt=0,
        description="Longest a message of such a session waits for extraction (so, at the "
        "latest, once the session has been idle this long).",
    )
    stm_extraction_batch_messages: int = Field(
        20,
        ge=1,
        le=100,
        description="Messages pending that start an extraction at once; most in one LLM call.",
    )
    stm_extraction_worker: Literal["process", "server"] = Field(
        "process",
        description="Where extraction runs: process = a low-priority process `maas serve` "
        "starts once jobs wait "
        "(or `maas extract`), so it never takes CPU from requests; server = inside "
        "each server process.",
    )
    stm_extraction_niceness: int = Field(
        19,
        ge=0,
        le=19,
        description="CPU niceness of the extraction process (STM_EXTRACTION_WORKER=process): "
        "19 takes only the CPU requests leave; lower it when other busy processes share the "
        "machine and would starve extraction.",
    )
    stm_extraction_retry_max_seconds: float = Field(
        300.0, gt=0, description="Longest wait between retries of a failing extraction."
    )

    # LLM gateway (OpenAI Chat Completions protocol)
    llm_provider: Provider = Field("openai", description="Selects the provider's base URL.")
    llm_base_url: str | None = Field(None, description="Overrides the provider's base URL.")
    llm_api_key: SecretStr | None = Field(
        None,
        description="API key. Without a key or base URL no LLM is configured: "
        "token_threshold then trims instead of summarizing.",
    )
    llm_model: str = Field("gpt-4.1-mini", description="Model for LLM calls.")
    llm_temperature: float = Field(0.1, ge=0, le=2, description="Sampling temperature.")
    llm_max_tokens: int = Field(4096, ge=1, description="Most tokens an LLM reply may have.")
    llm_timeout_seconds: float = Field(60.0, gt=0, description="Timeout of one LLM call.")
    llm_max_retries: int = Field(2, ge=0, le=10, description="Retries of a failed LLM call.")

    # Long-term memory: the vector store
    vector_store_provider: Literal["embedded", "azure_documentdb", "mongodb"] = Field(
        "embedded",
        description="embedded: a local file under DATA_DIR, no server. azure_documentdb: Azure "
        "DocumentDB or DocumentDB Local. mongodb: MongoDB Atlas (mem0's own store).",
    )
    mongodb_uri: SecretStr | None = Field(
        None, description="Connection string of DocumentDB / MongoDB (with its credentials)."
    )
    mongodb_db_name: str = Field("maas", description="Database of memories and their history.")
    mongodb_collection_name: str = Field("memories", description="Collection of memories.")
    vector_index_type: Literal["diskann", "hnsw", "ivf"] = Field(
        "diskann",
        description="azure_documentdb: vector index kind (HNSW where DiskANN is not offered).",
    )
    documentdb_indexed_metadata_keys: list[str] = Field(
        default_factory=list,
        description="azure_documentdb: metadata keys searched on, as JSON, e.g. "
        '["project", "topic"]. Each gets its own index at start-up, so a search filtered on it '
        "is one pre-filtered vector search.",
    )

    # Long-term memory: embeddings
    embedding_provider: Literal[
        "local", "openai", "azure_openai", "cohere", "huggingface", "fastembed", "ollama"
    ] = Field(
        "local",
        description="local: all-MiniLM-L6-v2 on the CPU, shipped with MaaS, no key needed.",
    )
    embedding_api_key: SecretStr | None = Field(None, description="Embedding provider's API key.")
    embedding_model: str | None = Field(None, description="Model (default: the provider's).")
    embedding_base_url: str | None = Field(
        None, description="Provider endpoint (Azure: the resource endpoint; TEI for huggingface)."
    )
    embedding_dims: int | None = Field(
        None, ge=1, description="Vector size; checked against the model at start-up."
    )
    embedding_api_version: str | None = Field(None, description="azure_openai: API version.")

    # Long-term memory: behaviour and limits
    ltm_default_ttl_seconds: int = Field(
        0, ge=0, description="Lifetime of memories added without ttlSeconds; 0 = never expire."
    )
    ltm_max_batch_size: int = Field(50, ge=1, description="Most items in one batch operation.")
    ltm_batch_concurrency: int = Field(
        10, ge=1, description="Items of one batch processed at the same time."
    )
    ltm_max_text_chars: int = Field(20_000, ge=1, description="Longest memory text or query.")

    # Request limits
    max_query_depth: int = Field(10, ge=1, description="Deepest GraphQL selection allowed.")
    max_query_aliases: int = Field(15, ge=0, description="Most aliases in one operation.")
    max_query_tokens: int = Field(2000, ge=10, description="Most tokens in one GraphQL document.")
    max_request_bytes: int = Field(
        2 * 1024 * 1024, ge=1024, description="Largest HTTP body or WebSocket message."
    )
    max_json_depth: int = Field(
        32, ge=4, le=256, description="Deepest nesting of JSON in a request (metadata included)."
    )
    max_json_items: int = Field(
        1000,
        ge=10,
        description="Most items of one JSON array or members of one object in a request (at "
        "least MAX_MESSAGES_PER_CALL).",
    )
    max_json_values: int = Field(
        20_000, ge=100, description="Most JSON values in one request, all nesting levels counted."
    )
    max_document_chars: int = Field(
        100_000, ge=1000, description="Longest GraphQL document, in characters."
    )
    max_messages_per_call: int = Field(500, ge=1, description="Most messages in one addMessages.")
    max_content_chars: int = Field(100_000, ge=1, description="Longest message content.")
    max_metadata_bytes: int = Field(8192, ge=2, description="Largest metadata, as JSON.")
    max_subscriptions_per_connection: int = Field(
        100, ge=1, description="Most subscriptions on one WebSocket."
    )
    # Per-tenant rate limit and quotas (enforced through Redis, across every server process)
    rate_limit_requests_per_second: float = Field(
        0.0,
        ge=0,
        description="GraphQL operations per second each tenant may run (each WebSocket "
        "subscribe counts, not its events); 0 = no limit.",
    )
    rate_limit_burst: int = Field(
        0, ge=0, description="Operations a tenant may run at once; 0 = one second's worth."
    )
    quota_max_messages: int = Field(
        0,
        ge=0,
        description="Messages (summaries included) a tenant's sessions may hold in short-term "
        "memory; 0 = no quota.",
    )
    quota_max_memories: int = Field(
        0, ge=0, description="Long-term memories a tenant may hold; 0 = no quota."
    )
    tenant_limits: dict[str, TenantLimitOverrides] = Field(
        default_factory=dict,
        description='Limits of particular tenants, as JSON, e.g. {"acme": '
        '{"rate_limit_requests_per_second": 50, "quota_max_messages": 100000}}; the four '
        "settings above, by their lower-case names; the others keep the defaults.",
    )

    shared_subscription_execution: bool = Field(
        True,
        description="Subscribers of the same operation share each event's execution and JSON "
        "encoding; false executes it for each subscriber.",
    )

    @field_validator("api_keys")
    @classmethod
    def _keys_and_tenants_are_valid(cls, keys: dict[str, str]) -> dict[str, str]:
        for entry, tenant in keys.items():
            check_entry(entry)
            _check_tenant(tenant)
        return keys

    @field_validator("tenant_limits")
    @classmethod
    def _limited_tenants_are_valid(
        cls, limits: dict[str, TenantLimitOverrides]
    ) -> dict[str, TenantLimitOverrides]:
        for tenant in limits:
            _check_tenant(tenant)
        return limits

    @field_validator("documentdb_indexed_metadata_keys")
    @classmethod
    def _indexed_keys_are_metadata_keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if not METADATA_KEY.fullmatch(key):
                raise ValueError(f"metadata key {key!r}: 1-64 letters, digits, _ or -")
        return keys

    @field_validator("jwt_algorithms")
    @classmethod
    def _algorithms_are_known(cls, algorithms: list[str]) -> list[str]:
        jwt_keys.check_algorithms(algorithms)
        return algorithms

    @model_validator(mode="after")
    def _jwt_is_complete(self) -> Settings:
        sources = [
            name
            for name, value in (
                ("JWT_JWKS_URL", self.jwt_jwks_url),
                ("JWT_PUBLIC_KEY", self.jwt_public_key),
                ("JWT_SECRET", self.jwt_secret),
            )
            if value
        ]
        if not sources:
            if self.jwt_issuer or self.jwt_audience or self.jwt_algorithms:
                raise ValueError(
                    "JWT_ISSUER, JWT_AUDIENCE or JWT_ALGORITHMS is set, but no key to verify "
                    "tokens with: set JWT_JWKS_URL, JWT_PUBLIC_KEY or JWT_SECRET"
                )
            return self
        if len(sources) > 1:
            raise ValueError(f"JWT: set one of {' and '.join(sources)}, not both")
        if not (self.jwt_issuer and self.jwt_audience):
            # Without them, any token the same identity provider signs for another
            # application would be accepted here.
            raise ValueError("JWT needs JWT_ISSUER and JWT_AUDIENCE")
        algorithms = set(self.jwt_accepted_algorithms)
        if self.jwt_secret is not None:
            if algorithms - jwt_keys.HMAC:
                raise ValueError("JWT_SECRET verifies HS256/HS384/HS512 only: fix JWT_ALGORITHMS")
            jwt_keys.secret_jwk(self.jwt_secret.get_secret_value(), algorithms)
            return self
        if algorithms & jwt_keys.HMAC:
            raise ValueError(
                "JWT_ALGORITHMS: HS256/HS384/HS512 need JWT_SECRET; with a public key or JWKS "
                "they would let a public key serve as an HMAC secret"
            )
        if self.jwt_jwks_url and not self.jwt_jwks_url.startswith(("https://", "http://")):
            raise ValueError("JWT_JWKS_URL: an http(s) URL is needed")
        if self.jwt_public_key:
            jwt_keys.StaticKey(jwt_keys.public_key_jwk(self.jwt_public_key), algorithms)
        return self

    @property
    def jwt_enabled(self) -> bool:
        return bool(self.jwt_jwks_url or self.jwt_public_key or self.jwt_secret)

    @property
    def jwt_accepted_algorithms(self) -> list[str]:
        if self.jwt_algorithms:
            return list(self.jwt_algorithms)
        return ["HS256"] if self.jwt_secret is not None else sorted(jwt_keys.ASYMMETRIC)

    @model_validator(mode="after")
    def _json_items_hold_a_write(self) -> Settings:
        if self.max_json_items < self.max_messages_per_call:
            raise ValueError("MAX_JSON_ITEMS must be at least MAX_MESSAGES_PER_CALL")
        return self

    @model_validator(mode="after")
    def _production_is_authenticated(self) -> Settings:
        if (
            self.environment == "production"
            and not self.authentication_configured
            and not self.allow_unauthenticated
        ):
            raise ValueError(
                "ENVIRONMENT=production needs authentication: set API_KEYS (e.g. "
                'API_KEYS=\'{"<key>": "<tenant>"}\') or JWT (JWT_JWKS_URL...), or set '
                "ALLOW_UNAUTHENTICATED=true to serve every caller as tenant 'local' without a key."
            )
        return self

    @property
    def authentication_configured(self) -> bool:
        """Callers must authenticate (an API key or a JWT). False: everyone is tenant 'local'."""
        return bool(self.api_keys) or self.jwt_enabled

    @property
    def metrics_served(self) -> bool:
        """/metrics exists: enabled, and in production only behind METRICS_TOKEN."""
        return self.metrics_enabled and (self.development or self.metrics_token is not None)

    @property
    def development(self) -> bool:
        return self.environment == "development"

    @property
    def graphiql_enabled(self) -> bool:
        return self.development if self.graphiql is None else self.graphiql

    @property
    def introspection_enabled(self) -> bool:
        return self.development if self.introspection is None else self.introspection


def _check_tenant(tenant: str) -> None:
    if not TENANT_ID.fullmatch(tenant):
        raise ValueError(f"tenant {tenant!r}: letters, digits, _ . - (at most 64)")
