"""Token-threshold compaction: when a session passes its token budget, the oldest messages
(and any earlier summary) are folded by the LLM into one summary message.

Runs in the background after a write. The swap is a compare-and-set in Redis, so messages
written during the LLM call are never lost, and a failed or slow call changes nothing. A Redis
lock keeps server processes from summarizing one session twice at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from services.errors import Unavailable
from services.metrics import NO_METRICS, ServiceMetrics, SummaryOutcome
from services.session_events import SessionEventType, encode_event
from services.session_extraction import ExtractionScheduler
from services.stm_model import Message, Role, SessionConfig, Strategy, ms_to_datetime
from services.summarizer import Summarizer
from services.tokens import TokenCounter
from stores.redis_messages import RedisMessageStore

log = logging.getLogger(__name__)

# After a failed LLM call the session waits this long before the next attempt.
FAILURE_COOL_DOWN_MS = 10_000


class Compactor:
    """Schedules and runs summaries, at most one per session across all server processes."""

    def __init__(
        self,
        store: RedisMessageStore,
        summarizer: Summarizer,
        tokens: TokenCounter,
        *,
        default_ttl: int,
        lock_ttl_ms: int,
        max_messages_per_summary: int = 2_000,
        metrics: ServiceMetrics = NO_METRICS,
        extraction: ExtractionScheduler | None = None,
    ) -> None:
        self._store = store
        self._extraction = extraction
        self._summarizer = summarizer
        self._tokens = tokens
        self._default_ttl = default_ttl
        self._lock_ttl_ms = lock_ttl_ms
        self._max_messages = max_messages_per_summary
        self._metrics = metrics
        self._running: dict[tuple[str, str], asyncio.Task[None]] = {}

    @property
    def available(self) -> bool:
        return self._summarizer.available

    def after_write(
        self, tenant: str, session_id: str, token_count: int, config: SessionConfig
    ) -> None:
        """Start a summary in the background if the session passed its budget."""
        if config.strategy is not Strategy.TOKEN_THRESHOLD or token_count <= config.max_tokens:
            return
        key = (tenant, session_id)
        if not self.available or key in self._running:
            return
        task = asyncio.create_task(self._run(tenant, session_id, config), name="summarize")
        self._running[key] = task
        task.add_done_callback(lambda _: self._running.pop(key, None))

    async def wait_idle(self) -> None:
        """Wait for every summary this process started (tests, shutdown)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def cancel(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def _run(self, tenant: str, session_id: str, config: SessionConfig) -> None:
        lock = uuid.uuid4().hex
        if not await self._store.try_lock(tenant, session_id, lock, self._lock_ttl_ms):
            return
        try:
            replaced = await self.summarize_now(tenant, session_id, config)
        except Unavailable:
            log.warning("summary of a session failed; retrying after a cool-down")
            await self._store.hold_lock(tenant, session_id, lock, FAILURE_COOL_DOWN_MS)
            return
        except Exception:
            log.exception("summary of a session failed unexpectedly")
            await self._store.hold_lock(tenant, session_id, lock, FAILURE_COOL_DOWN_MS)
            return
        await self._store.release_lock(tenant, session_id, lock)
        if not replaced:
            log.info("summary discarded: the session changed under it")
        elif self._extraction is not None and config.long_term_extraction:
            # Folded messages leave the context: what they teach goes to long-term memory now.
            await self._extraction.soon(tenant, session_id)

    async def summarize_now(self, tenant: str, session_id: str, config: SessionConfig) -> bool:
        """Summarize the oldest part of the session; False when there was nothing to do or the
        range changed meanwhile (then nothing is written)."""
        oldest = await self._oldest_to_fold(tenant, session_id, config)
        if not oldest or (len(oldest) == 1 and oldest[0].is_summary):
            return False
        try:
            text = await self._summarizer.summarize(
                oldest, max_tokens=max(64, config.max_tokens // 4)
            )
            replaced = await self._replace_with_summary(tenant, session_id, oldest, text)
        except Exception:
            self._metrics.summarization(SummaryOutcome.FAILED)
            raise
        outcome = SummaryOutcome.SUMMARIZED if replaced else SummaryOutcome.DISCARDED
        self._metrics.summarization(outcome)
        return replaced

    async def _replace_with_summary(
        self, tenant: str, session_id: str, oldest: list[Message], text: str
    ) -> bool:
        """Swap `oldest` for one summary message, unless the range changed meanwhile."""
        now_ms = int(time.time() * 1000)
        last = oldest[-1]
        summary = Message(
            id=f"summary-{uuid.uuid4().hex}",
            seq=last.seq,
            role=Role.SYSTEM,
            content=text,
            tokens=self._tokens.count_message(Role.SYSTEM.value, text),
            created_at=ms_to_datetime(now_ms),
            metadata={"summarizedMessages": sum(1 for m in oldest if not m.is_summary)},
            is_summary=True,
        )
        record = summary.to_record()
        return await self._store.replace_range(
            tenant,
            session_id,
            expected_ids=[m.id for m in oldest],
            last_seq=last.seq,
            summary_id=summary.id,
            summary_record=record,
            default_ttl=self._default_ttl,
            now_ms=now_ms,
            event=encode_event(
                SessionEventType.SESSION_SUMMARIZED, session_id, now_ms, summary_record=record
            ),
        )

    async def _oldest_to_fold(
        self, tenant: str, session_id: str, config: SessionConfig
    ) -> list[Message]:
        """Everything older than the newest messages that fill half the budget; the newest
        message always stays verbatim (the window holds it even alone over the budget)."""
        keep = await self._store.read_window(
            tenant,
            session_id,
            max_count=self._max_messages,
            token_budget=config.max_tokens // 2,
            keep_summary=False,
        )
        if not keep.records:
            return []
        boundary = Message.from_record(keep.records[0]).seq
        records = await self._store.read_page(
            tenant, session_id, newest_first=False, bound=None, limit=self._max_messages
        )
        oldest = (Message.from_record(r) for r in records[: self._max_messages])
        return [m for m in oldest if m.seq < boundary]
