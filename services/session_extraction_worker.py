"""The background worker that sends sessions' messages to long-term memory.

Every server process runs one. It claims due sessions from the queue (a claim is a lease: a
worker that dies leaves the job due again), takes the session's lock (one extraction per
session at a time, across processes), reads the oldest messages of its backlog and hands them
to LongTermMemory.add, so they are extracted by mem0 (or, without an LLM, the user's messages
stored verbatim), counted in the quota and announced in memoryEvents like any other add. After
each add succeeds, the messages it covered leave the backlog in one atomic step: a message is
extracted once, unless the process dies between the add and that step (at least once).

A failing add (the LLM or the vector store down) leaves the backlog as it was and retries
after a backoff that doubles up to a limit. Short-term memory never waits for any of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from services.errors import InvalidInput
from services.ltm import LongTermMemory
from services.ltm_model import NewMemory, Scope
from services.session_extraction import ExtractionTiming
from services.stm_model import Message, Role
from stores.extraction_jobs import BacklogEntry, ExtractionJobs

log = logging.getLogger(__name__)

SOURCE = "session"  # metadata.source of the memories a session taught
FIRST_RETRY_MS = 1_000


@dataclass(frozen=True)
class WorkerOptions:
    timing: ExtractionTiming
    lease_ms: int  # longer than one job can take (its LLM calls with their retries)
    retry_max_ms: int
    llm_configured: bool  # False: the user's messages are stored verbatim instead
    max_text_chars: int  # longest message content long-term memory takes
    jobs_in_flight: int = 8
    shutdown_grace_s: float = 5.0


class ExtractionWorker:
    """Runs due extraction jobs of every tenant, a bounded number at a time."""

    def __init__(
        self,
        jobs: ExtractionJobs,
        ltm: LongTermMemory,
        options: WorkerOptions,
        wake: asyncio.Event | None = None,
    ) -> None:
        self._jobs = jobs
        self._ltm = ltm
        self._options = options
        self._wake = wake or asyncio.Event()  # set: a job is due now, look at once
        self._running: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        # Poll often enough that a job is never much later than its delay.
        self._poll_s = min(1.0, max(0.05, options.timing.delay_ms / 4000))

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._claim_forever(), name="extraction-worker")

    async def close(self) -> None:
        """Stop claiming; give running jobs a moment, then cancel them (their sessions are
        handed back to the queue, due now, for another process)."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._running:
            await asyncio.wait(set(self._running), timeout=self._options.shutdown_grace_s)
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    async def wait_idle(self) -> None:
        """Wait for the jobs running now (tests)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _claim_forever(self) -> None:
        while True:
            free = self._options.jobs_in_flight - len(self._running)
            claimed: list[tuple[str, str]] = []
            if free > 0:
                try:
                    claimed = await self._jobs.claim(free, self._options.lease_ms)
                except Exception:
                    log.warning("could not claim extraction jobs", exc_info=True)
            for tenant, session_id in claimed:
                task = asyncio.create_task(self._run(tenant, session_id), name="extract")
                self._running.add(task)
                task.add_done_callback(self._running.discard)
            if claimed and len(claimed) == free:
                continue  # more may be due: claim again as soon as a job ends
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_s)
            self._wake.clear()

    async def _run(self, tenant: str, session_id: str) -> None:
        token = uuid.uuid4().hex
        jobs, options = self._jobs, self._options
        try:
            if not await jobs.lock(tenant, session_id, token, options.lease_ms):
                # Another process extracts it now; its end puts the session back if needed
                # (and our claim's lease is the fallback).
                return
        except Exception:
            log.warning("could not lock a session for extraction", exc_info=True)
            return
        holding = asyncio.create_task(self._hold(tenant, session_id, token), name="hold")
        try:
            entries = await jobs.read_backlog(tenant, session_id, options.timing.batch)
            remaining = 0
            for run in _runs_by_scope(entries):
                await self._extract(tenant, session_id, run)
                last_seq = Message.from_record(run[-1].record).seq
                remaining = await jobs.commit(
                    tenant, session_id, run, last_seq, options.timing.backlog_ttl
                )
                if remaining < 0:
                    log.warning("an extraction was committed by another worker first")
                    break
            if remaining <= 0:
                remaining = await jobs.finish(tenant, session_id)
            if remaining > 0:
                delay = 0 if remaining >= options.timing.batch else options.timing.delay_ms
                await jobs.schedule(tenant, session_id, delay, sooner_only=False)
        except asyncio.CancelledError:
            # Shutting down: hand the session to another process now.
            with contextlib.suppress(Exception):
                await jobs.schedule(tenant, session_id, 0, sooner_only=False)
            raise
        except Exception as exc:
            await self._retry_later(tenant, session_id, exc)
        finally:
            holding.cancel()
            with contextlib.suppress(Exception):
                await jobs.unlock(tenant, session_id, token)

    async def _hold(self, tenant: str, session_id: str, token: str) -> None:
        """Renew the lock and the claim while the job runs: however slow its LLM calls (or
        the CPU it gets), no other worker takes the job while this one lives."""
        lease_ms = self._options.lease_ms
        while True:
            await asyncio.sleep(lease_ms / 3000)
            try:
                await self._jobs.renew(tenant, session_id, token, lease_ms)
            except Exception:
                log.warning("could not renew an extraction's lease", exc_info=True)

    async def _extract(self, tenant: str, session_id: str, run: list[BacklogEntry]) -> None:
        """One add of consecutive messages written under one scope."""
        new = self._new_memory(session_id, run)
        if new is None:
            return  # nothing in it to learn from (system or tool messages, blank content)
        try:
            await self._ltm.add(tenant, new)
        except InvalidInput as exc:
            # Never going to pass: skip these messages rather than retry them forever.
            log.warning("messages of a session skipped by extraction: %s", exc.message)

    def _new_memory(self, session_id: str, run: list[BacklogEntry]) -> NewMemory | None:
        # With an LLM, the conversation (both sides) for mem0 to extract facts from; without
        # one, the user's own messages, verbatim.
        roles = (Role.USER, Role.ASSISTANT) if self._options.llm_configured else (Role.USER,)
        limit = self._options.max_text_chars
        messages = []
        for entry in run:
            message = Message.from_record(entry.record)
            if message.role in roles and message.content.strip():
                messages.append((message.role.value, message.content[:limit], message.name))
        if not messages:
            return None
        first = run[0]
        scope = (
            Scope(user_id=first.user_id, agent_id=first.agent_id)
            if first.user_id or first.agent_id
            else Scope(session_id=session_id)
        )
        return NewMemory(
            scope=scope,
            messages=messages,
            metadata={"source": SOURCE, "sessionId": session_id},
        )

    async def _retry_later(self, tenant: str, session_id: str, error: Exception) -> None:
        log.warning(
            "extraction of a session failed (%s); retrying after a backoff", type(error).__name__
        )
        options = self._options
        try:
            failures = await self._jobs.record_failure(
                tenant, session_id, options.timing.backlog_ttl
            )
            delay = min(FIRST_RETRY_MS * 2 ** min(failures - 1, 20), options.retry_max_ms)
            await self._jobs.schedule(tenant, session_id, delay, sooner_only=False)
        except Exception:
            # The claim's lease brings the job back.
            log.warning("could not schedule a session's extraction retry", exc_info=True)


def _runs_by_scope(entries: list[BacklogEntry]) -> Iterator[list[BacklogEntry]]:
    """Consecutive entries written under the same scope, oldest first."""
    run: list[BacklogEntry] = []
    for entry in entries:
        if run and (entry.user_id, entry.agent_id) != (run[0].user_id, run[0].agent_id):
            yield run
            run = []
        run.append(entry)
    if run:
        yield run
