"""When a session's messages go to long-term extraction: the write path's side of the jobs.

A write with extraction on has already put its new messages in the session's backlog (in the
same atomic step as the messages, see stores/extraction_jobs.py); here the session is put on
the queue before the write is acknowledged, due at most `delay` after its oldest waiting
message was written, or at once when a batch is waiting. A summary that folds messages and a
delete bring the job forward to now. The worker (services/session_extraction_worker.py) on
any server process does the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from stores.extraction_jobs import ExtractionJobs, ExtractionProgress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractionTiming:
    delay_ms: int  # longest a message waits for extraction
    batch: int  # messages waiting that start an extraction at once; most per LLM call
    backlog_ttl: int  # seconds a backlog (and its progress) outlives its last change


class ExtractionScheduler:
    """Puts sessions with messages to extract on the queue; reads their progress."""

    def __init__(
        self,
        jobs: ExtractionJobs,
        timing: ExtractionTiming,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._jobs = jobs
        self.timing = timing
        self._wake = wake  # tells this process's worker a job is due now

    async def after_write(
        self, tenant: str, session_id: str, pending: int, *, started: bool, retried: bool
    ) -> None:
        """The write left `pending` messages in the session's backlog: make sure a worker
        comes for them. A backlog that was not empty already has its session on the queue
        (put there by the write that started it, or kept there by the worker that found it
        non-empty), so most writes of a busy session cost nothing more. A failure here fails
        the write; its retry (`retried`: it found its messages stored) comes back here, as
        does every write once a batch is waiting."""
        if pending <= 0:
            return
        now = pending >= self.timing.batch
        if not (started or retried or now):
            return
        await self._jobs.schedule(tenant, session_id, 0 if now else self.timing.delay_ms)
        if now:
            self._wake()

    async def soon(self, tenant: str, session_id: str) -> None:
        """Bring the session's extraction forward to now, if it has messages waiting (after a
        summary folded some, or a delete). Best effort: the job is due by its delay anyway."""
        try:
            if await self._jobs.pending(tenant, session_id) > 0:
                await self._jobs.schedule(tenant, session_id, 0)
                self._wake()
        except Exception:
            log.warning("could not bring a session's extraction forward", exc_info=True)

    async def progress(self, tenant: str, session_id: str) -> ExtractionProgress:
        return await self._jobs.progress(tenant, session_id)
