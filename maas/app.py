"""The app factory: builds stores and services once, in the lifespan, from settings."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from maas import log_redaction
from maas.auth import ApiKeyAuth
from maas.graphiql import graphiql_routes
from maas.graphql_view import MaasGraphQL
from maas.limits_middleware import BodySizeLimit
from maas.ltm_wiring import build_ltm
from maas.metrics import PrometheusMetrics
from maas.operation_telemetry import OperationTelemetry
from maas.request_scope import RequestScope
from maas.settings import Settings
from maas.telemetry import install_tracing
from schema import QueryLimits, build_schema
from schema.shared_execution import SharedEventResults
from services.compaction import Compactor
from services.llm import LLMConfig, LLMGateway
from services.metrics import NO_METRICS, ServiceMetrics
from services.stm import ShortTermMemory
from services.stm_limits import StmLimits
from services.stm_model import SessionConfig, Strategy
from services.summarizer import Summarizer
from services.tokens import token_counter_for
from stores.event_bus import RedisEventBus
from stores.redis_messages import RedisMessageStore

log = logging.getLogger("maas")
WORKER_THREADS = 32


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


def build_stm(
    settings: Settings,
    redis: Redis,
    events: RedisEventBus,
    llm: LLMGateway,
    metrics: ServiceMetrics = NO_METRICS,
) -> ShortTermMemory:
    """The short-term-memory service and everything it stands on."""
    store = RedisMessageStore(redis, settings.redis_key_prefix)
    defaults = SessionConfig(
        strategy=Strategy(settings.stm_default_strategy),
        max_messages=settings.stm_max_messages,
        max_tokens=settings.stm_max_tokens,
        ttl_seconds=settings.stm_session_ttl_seconds,
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
    )
    limits = StmLimits(
        max_messages_per_call=settings.max_messages_per_call,
        max_content_chars=settings.max_content_chars,
        max_metadata_bytes=settings.max_metadata_bytes,
    )
    return ShortTermMemory(store, events, tokens, compactor, defaults, limits, metrics)


def create_app(settings: Settings | None = None) -> Starlette:
    """The ASGI app; needs REDIS_URL (`maas serve` provides an embedded Redis when unset)."""
    settings = settings or Settings()
    if not settings.redis_url:
        raise RuntimeError("REDIS_URL is not set: use `maas serve`, which starts Redis for you.")
    tracing = install_tracing(settings)
    metrics = PrometheusMetrics()
    auth = ApiKeyAuth(settings.api_keys)
    log_redaction.install(list(settings.api_keys))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if auth.open:
            log.warning(
                "NO API KEYS CONFIGURED: authentication is OFF and every caller is "
                "tenant 'local'. Set API_KEYS for anything but local development."
            )
        loop = asyncio.get_running_loop()
        # mem0 runs every store, embedding and LLM call in a worker thread; the default pool
        # (cores + 4) would cap a batch of adds at a handful of LLM calls in flight.
        loop.set_default_executor(ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="maas"))
        redis = Redis.from_url(settings.redis_url, health_check_interval=30)
        events = RedisEventBus(redis)
        llm = LLMGateway(llm_config(settings), metrics=metrics)
        # Token encodings take a moment to build: do it now, not on the first request.
        await asyncio.to_thread(token_counter_for(settings.llm_model).count_text, "warm up")
        app.state.stm = build_stm(settings, redis, events, llm, metrics)
        app.state.ltm, engine = build_ltm(settings, events, llm, loop, metrics)
        await engine.start()
        app.state.redis = redis
        # What start-up built lives as long as the process: keep it out of every later
        # collection, whose full passes otherwise pause the event loop for tens of ms.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await app.state.stm.close()
            await events.close()
            await asyncio.to_thread(engine.close)
            await llm.close()
            await redis.aclose()
            if tracing is not None:
                await asyncio.to_thread(tracing.shutdown)

    graphql = MaasGraphQL(
        build_schema(
            QueryLimits(
                max_depth=settings.max_query_depth,
                max_aliases=settings.max_query_aliases,
                max_tokens=settings.max_query_tokens,
                introspection=settings.introspection_enabled,
            ),
            observers=[lambda: OperationTelemetry(metrics)],
            shared_results=SharedEventResults(
                share=settings.shared_subscription_execution,
                on_result=metrics.subscription_result,
            ),
        ),
        auth=auth,
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
    )
    return Starlette(
        routes=[
            Route("/health", health),
            *graphiql_routes(settings),
            Route("/health/ready", ready),
            *([Route("/metrics", metrics.endpoint)] if settings.metrics_enabled else []),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
        ],
        middleware=[
            Middleware(RequestScope),
            Middleware(BodySizeLimit, max_bytes=settings.max_request_bytes),
        ],
        lifespan=lifespan,
    )


async def health(_: Request) -> JSONResponse:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> JSONResponse:
    """Readiness: each dependency, 503 when one is down."""
    try:
        redis_ok = await asyncio.wait_for(request.app.state.redis.ping(), timeout=2)
    except (RedisError, OSError, TimeoutError):
        redis_ok = False
    status = "ok" if redis_ok else "unavailable"
    return JSONResponse(
        {"status": status, "checks": {"redis": "ok" if redis_ok else "unavailable"}},
        status_code=200 if redis_ok else 503,
    )
