"""The app factory: builds stores and services once, in the lifespan, from settings."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from maas import cancellation_safe_wait_for, log_redaction, rate_limit
from maas.api_keys import plaintext_keys
from maas.auth import authenticator_for
from maas.authenticate import Authenticate
from maas.error_responses import graphql_error_response
from maas.extraction_wiring import build_extraction_scheduler, build_extraction_worker
from maas.graphiql import graphiql_routes
from maas.graphql_view import MaasGraphQL
from maas.limits_middleware import BodySizeLimit
from maas.ltm_wiring import build_ltm, vector_store_probe
from maas.metrics import PrometheusMetrics
from maas.operation_telemetry import OperationTelemetry
from maas.rate_limit import RequestRateLimit
from maas.readiness import Readiness, dependency_checks
from maas.request_scope import RequestScope
from maas.settings import Settings
from maas.telemetry import install_tracing
from schema import QueryLimits, build_schema
from schema.shared_execution import SharedEventResults
from services.compaction import Compactor
from services.json_values import JsonLimits
from services.llm import LLMConfig, LLMGateway
from services.memory_prompt import MemoryPrompts
from services.metrics import NO_METRICS, ServiceMetrics
from services.quotas import MemoryQuota, MessageQuota
from services.rate_limit import RequestRateLimiter
from services.stm import ShortTermMemory, wall_clock_ms
from services.stm_limits import StmLimits
from services.stm_model import SessionConfig, Strategy
from services.summarizer import Summarizer
from services.tenant_limits import LimitPolicy, TenantLimits
from services.tokens import token_counter_for
from stores.event_bus import EventRetention, RedisEventBus
from stores.message_ledger import MessageLedger
from stores.redis_client import RedisClient, connect, prepare
from stores.redis_limits import RedisLimitStore
from stores.redis_messages import RedisMessageStore

if TYPE_CHECKING:
    from maas.mcp_server import McpEndpoint

log = logging.getLogger("maas")
WORKER_THREADS = 32
# Before any request runs: every process that serves the app (uvicorn's factory, its workers,
# tests) imports this module first.
cancellation_safe_wait_for.install()
MCP_PATH = "/mcp"
GC_THRESHOLD = 10_000  # new objects between collections of the youngest generation


def llm_config(settings: Settings) -> LLMConfig:
    return LLMConfig(
        provider=settings.llm_provider,
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
        model=settings.llm_model,
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,
        timeout_seconds=settings.llm_timeout_seconds,
        max_retries=settings.llm_max_retries,
    )


def json_limits(settings: Settings) -> JsonLimits:
    return JsonLimits(
        max_depth=settings.max_json_depth,
        max_items=settings.max_json_items,
        max_values=settings.max_json_values,
    )


def event_retention(settings: Settings) -> EventRetention:
    return EventRetention(
        max_len=settings.events_max_per_stream, max_age_ms=settings.events_max_age_seconds * 1000
    )


def build_redis(settings: Settings) -> RedisClient:
    assert settings.redis_url is not None
    return connect(
        settings.redis_url,
        cluster=settings.redis_cluster,
        timeout_seconds=settings.redis_timeout_seconds,
        max_connections=settings.redis_max_connections,
    )


def build_events(settings: Settings, redis: RedisClient) -> RedisEventBus:
    return RedisEventBus(
        redis,
        retention=event_retention(settings),
        reconnect_grace_s=settings.events_outage_grace_seconds,
    )


# Each limit setting (also a key of a TENANT_LIMITS entry) and the field it sets.
_LIMIT_FIELDS = {
    "rate_limit_requests_per_second": "requests_per_second",
    "rate_limit_burst": "burst",
    "quota_max_messages": "max_messages",
    "quota_max_memories": "max_memories",
}


def limit_policy(settings: Settings) -> LimitPolicy:
    """Every tenant's request rate limit and quotas, from the settings."""
    defaults = TenantLimits(
        **{field: getattr(settings, name) for name, field in _LIMIT_FIELDS.items()}
    )
    overrides = {
        tenant: dataclasses.replace(
            defaults,
            **{
                _LIMIT_FIELDS[name]: value
                for name, value in own.model_dump().items()
                if value is not None
            },
        )
        for tenant, own in settings.tenant_limits.items()
    }
    return LimitPolicy(defaults, overrides)


def quota_lease_ms(settings: Settings) -> int:
    """How long a write's quota reservation lasts: longer than the write can take (its
    reservation, append and copy, each retried by the client at REDIS_TIMEOUT_SECONDS)."""
    return int(max(60.0, 20 * settings.redis_timeout_seconds) * 1000)


def build_stm(
    settings: Settings,
    redis: RedisClient,
    events: RedisEventBus,
    llm: LLMGateway,
    metrics: ServiceMetrics = NO_METRICS,
    clock: Callable[[], int] = wall_clock_ms,
    extraction_wake: asyncio.Event | None = None,
) -> ShortTermMemory:
    """The short-term-memory service and everything it stands on (`extraction_wake` is set
    when a session's long-term extraction is due now)."""
    extraction = build_extraction_scheduler(settings, redis, extraction_wake)
    store = RedisMessageStore(redis, settings.redis_key_prefix, event_retention(settings))
    ledger = MessageLedger(
        redis, store, settings.redis_key_prefix, lease_ms=quota_lease_ms(settings)
    )
    quota = MessageQuota(ledger, limit_policy(settings), metrics)
    defaults = SessionConfig(
        strategy=Strategy(settings.stm_default_strategy),
        max_messages=settings.stm_max_messages,
        max_tokens=settings.stm_max_tokens,
        ttl_seconds=settings.stm_session_ttl_seconds,
        long_term_extraction=settings.stm_long_term_extraction,
    )
    tokens = token_counter_for(settings.llm_model)
    summary_model = settings.stm_summarization_model or settings.llm_model
    compactor = Compactor(
        store,
        Summarizer(llm, summary_model),
        tokens,
        default_ttl=defaults.ttl_seconds,
        # Long enough for every retry of the LLM call; a crashed holder frees it by expiry.
        lock_ttl_ms=int(settings.llm_timeout_seconds * (settings.llm_max_retries + 1) * 1000)
        + 30_000,
        metrics=metrics,
        extraction=extraction,
    )
    limits = StmLimits(
        max_messages_per_call=settings.max_messages_per_call,
        max_content_chars=settings.max_content_chars,
        max_metadata_bytes=settings.max_metadata_bytes,
    )
    return ShortTermMemory(
        store, events, tokens, compactor, defaults, limits, metrics, clock, quota, extraction
    )


def build_rate_limiter(
    settings: Settings, redis: RedisClient, metrics: ServiceMetrics = NO_METRICS
) -> RequestRateLimiter:
    limits = RedisLimitStore(redis, settings.redis_key_prefix)
    return RequestRateLimiter(limits, limit_policy(settings), metrics)


def build_memory_quota(
    settings: Settings, redis: RedisClient, metrics: ServiceMetrics = NO_METRICS
) -> MemoryQuota:
    limits = RedisLimitStore(redis, settings.redis_key_prefix)
    return MemoryQuota(limits, limit_policy(settings), metrics)


def mcp_endpoint(settings: Settings) -> McpEndpoint | None:
    """/mcp when enabled; only then is the MCP SDK imported (it costs start-up CPU and memory)."""
    if not settings.mcp_enabled:
        return None
    from maas.mcp_server import McpEndpoint

    return McpEndpoint(settings.max_request_bytes, json_limits(settings))


def create_app(settings: Settings | None = None) -> Starlette:
    """The ASGI app; needs REDIS_URL (`maas serve` provides an embedded Redis when unset)."""
    settings = settings or Settings()
    if not settings.redis_url:
        raise RuntimeError("REDIS_URL is not set: use `maas serve`, which starts Redis for you.")
    tracing = install_tracing(settings)
    metrics = PrometheusMetrics(
        token=settings.metrics_token.get_secret_value() if settings.metrics_token else None
    )
    auth = authenticator_for(settings)
    log_redaction.install(plaintext_keys(settings.api_keys))
    mcp = mcp_endpoint(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if auth.open:
            log.warning(
                "NO API KEYS OR JWT CONFIGURED: authentication is OFF and every caller is "
                "tenant 'local'. Set API_KEYS or JWT_* for anything but local development."
            )
        auth.start()
        if settings.metrics_enabled and not settings.metrics_served:
            log.warning("/metrics is not served: in production it needs METRICS_TOKEN")
        loop = asyncio.get_running_loop()
        # mem0 runs every store, embedding and LLM call in a worker thread; the default pool
        # (cores + 4) would cap a batch of adds at a handful of LLM calls in flight.
        loop.set_default_executor(ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="maas"))
        redis = build_redis(settings)
        await prepare(redis)
        events = build_events(settings, redis)
        llm = LLMGateway(llm_config(settings), metrics=metrics)
        # Token encodings take a moment to build: do it now, not on the first request.
        await asyncio.to_thread(token_counter_for(settings.llm_model).count_text, "warm up")
        extraction_due = asyncio.Event()
        app.state.stm = build_stm(
            settings, redis, events, llm, metrics, extraction_wake=extraction_due
        )
        memory_quota = build_memory_quota(settings, redis, metrics)
        app.state.ltm, engine = build_ltm(settings, events, llm, loop, metrics, quota=memory_quota)
        app.state.prompts = MemoryPrompts(
            app.state.stm, app.state.ltm, token_counter_for(settings.llm_model)
        )
        setattr(app.state, rate_limit.STATE_ATTRIBUTE, build_rate_limiter(settings, redis, metrics))
        await engine.start()
        extraction = None
        if settings.stm_extraction_worker == "server":
            extraction = build_extraction_worker(
                settings, redis, app.state.ltm, llm, extraction_due
            )
            extraction.start()
        app.state.redis = redis
        app.state.events = events
        store_probe = vector_store_probe(settings)
        timeout = settings.readiness_timeout_seconds
        app.state.readiness = Readiness(
            dependency_checks(redis, events, store_probe, timeout), timeout
        )
        # What start-up built lives as long as the process: keep it out of every later
        # collection, whose full passes otherwise pause the event loop for tens of ms.
        gc.collect()
        gc.freeze()
        # At the default threshold of 700 new objects a collection ran every few requests,
        # each walking the young objects of every request in flight. Fewer, larger
        # collections cost less CPU in all.
        gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
        runtime_metrics = asyncio.create_task(metrics.sample_runtime())
        try:
            # MCP tool calls run in the SDK's task group: ended before the services close.
            async with mcp.run() if mcp is not None else contextlib.nullcontext():
                yield
        finally:
            runtime_metrics.cancel()
            await app.state.readiness.close()
            if extraction is not None:
                await extraction.close()
            await store_probe.close()
            await app.state.stm.close()
            await events.close()
            await asyncio.to_thread(engine.close)
            await llm.close()
            await redis.aclose()
            await auth.aclose()
            if tracing is not None:
                await asyncio.to_thread(tracing.shutdown)

    graphql = MaasGraphQL(
        build_schema(
            QueryLimits(
                max_depth=settings.max_query_depth,
                max_aliases=settings.max_query_aliases,
                max_tokens=settings.max_query_tokens,
                introspection=settings.introspection_enabled,
                json=json_limits(settings),
            ),
            observers=[OperationTelemetry(metrics)],
            # Without a rate limit for any tenant, operations pass no hook at all.
            extensions=[RequestRateLimit] if limit_policy(settings).limits_requests else [],
            shared_results=SharedEventResults(
                share=settings.shared_subscription_execution,
                on_result=metrics.subscription_result,
            ),
        ),
        auth=auth,
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
        json_limits=json_limits(settings),
        max_document_chars=settings.max_document_chars,
    )
    return Starlette(
        routes=[
            # First: Starlette tries the routes in order, and nearly every request is here.
            # Every method: the view answers the ones GraphQL has no use for (405, coded).
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
            Route("/health", health),
            *graphiql_routes(settings),
            Route("/health/ready", ready),
            *([Route("/metrics", metrics.endpoint)] if settings.metrics_served else []),
            *([Route(MCP_PATH, mcp)] if mcp is not None else []),
        ],
        middleware=[
            Middleware(RequestScope),
            # Before the body limit: an unauthenticated body is never read, whatever its size.
            Middleware(
                Authenticate,
                authenticator=auth,
                paths=("/graphql", MCP_PATH) if mcp is not None else ("/graphql",),
            ),
            Middleware(BodySizeLimit, max_bytes=settings.max_request_bytes),
        ],
        exception_handlers={HTTPException: http_error, Exception: internal_error},
        lifespan=lifespan,
    )


async def http_error(_: Request, error: Exception) -> Response:
    """Routing's refusals (404, 405) in the shape of every other error."""
    assert isinstance(error, HTTPException)
    return graphql_error_response(error.status_code, error.detail, headers=error.headers)


async def internal_error(_: Request, error: Exception) -> Response:
    """The last resort for an exception nothing else caught: masked, logged with an id."""
    error_id = uuid.uuid4().hex[:16]
    log.error("internal error %s outside GraphQL", error_id, exc_info=error)
    return graphql_error_response(
        500, f"Internal error (id {error_id}).", "INTERNAL", errorId=error_id
    )


async def health(_: Request) -> JSONResponse:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> JSONResponse:
    """Readiness: each dependency, bounded in time (maas/readiness.py). 503 when Redis is
    unreachable or live events are cut off; 200 with "degraded" while some cluster masters or
    the vector store are down (the rest still serves)."""
    return await request.app.state.readiness.endpoint(request)
