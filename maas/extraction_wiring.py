"""Sessions that teach long-term memory, from settings: the write path's scheduler and the
background worker every server process runs."""

from __future__ import annotations

import asyncio

from maas.settings import Settings
from services.llm import LLMGateway
from services.ltm import LongTermMemory
from services.session_extraction import ExtractionScheduler, ExtractionTiming
from services.session_extraction_worker import ExtractionWorker, WorkerOptions
from stores.extraction_jobs import ExtractionJobs
from stores.redis_client import RedisClient

# Messages waiting for extraction (and a session's progress) are kept this long after their
# session's last change, whatever happens to the session: long enough to outlast any outage.
BACKLOG_TTL_SECONDS = 30 * 86_400


def extraction_timing(settings: Settings) -> ExtractionTiming:
    return ExtractionTiming(
        delay_ms=int(settings.stm_extraction_delay_seconds * 1000),
        batch=settings.stm_extraction_batch_messages,
        backlog_ttl=BACKLOG_TTL_SECONDS,
    )


def build_extraction_scheduler(
    settings: Settings, redis: RedisClient, wake: asyncio.Event | None = None
) -> ExtractionScheduler:
    jobs = ExtractionJobs(redis, settings.redis_key_prefix)
    return ExtractionScheduler(
        jobs, extraction_timing(settings), wake.set if wake is not None else lambda: None
    )


def build_extraction_worker(
    settings: Settings,
    redis: RedisClient,
    ltm: LongTermMemory,
    llm: LLMGateway,
    wake: asyncio.Event,
) -> ExtractionWorker:
    # A job's add makes one LLM call with its retries (mem0 may make a second, to decide
    # updates, in other versions): its lease outlasts two.
    llm_ms = settings.llm_timeout_seconds * (settings.llm_max_retries + 1) * 1000
    options = WorkerOptions(
        timing=extraction_timing(settings),
        lease_ms=int(2 * llm_ms) + 10_000,
        retry_max_ms=int(settings.stm_extraction_retry_max_seconds * 1000),
        llm_configured=llm.configured,
        max_text_chars=settings.ltm_max_text_chars,
    )
    return ExtractionWorker(ExtractionJobs(redis, settings.redis_key_prefix), ltm, options, wake)
