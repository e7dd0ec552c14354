"""Short-term memory: session message buffers, context windows, config and live events."""

from __future__ import annotations

import asyncio
import base64
import functools
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from services.compaction import Compactor
from services.errors import InvalidInput, NotFound, unavailable_on
from services.event_feed import follow
from services.metrics import NO_METRICS, ServiceMetrics
from services.quotas import UNLIMITED, Admission, MessageQuota
from services.session_events import (
    SessionEvent,
    SessionEventType,
    config_changed_prefix,
    decode_event,
    encode_event,
    messages_added_prefix,
)
from services.session_extraction import ExtractionScheduler
from services.stm_config import effective_config, meta_fields, session_info
from services.stm_limits import (
    SESSION_ID,
    StmLimits,
    check_config,
    check_messages,
    check_page_size,
    check_session_id,
)
from services.stm_model import (
    AddResult,
    ConfigChange,
    ContextWindow,
    Message,
    MessagePage,
    NewMessage,
    SessionConfig,
    SessionInfo,
    SessionPage,
    Strategy,
    ms_to_datetime,
)
from services.tokens import TokenCounter
from stores.event_bus import RedisEventBus
from stores.extraction_jobs import ExtractionProgress
from stores.redis_client import is_redis_down
from stores.redis_messages import AppendResult, RedisMessageStore

DEFAULT_PAGE_SIZE = 50
# Writes with more content than this are prepared (token counts, JSON) in a worker thread.
OFFLOAD_CHARS = 64 * 1024

_storage = unavailable_on(is_redis_down, "Short-term memory storage", "redis")


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class ShortTermMemory:
    """The STM service. Every method is scoped to the caller's tenant."""

    def __init__(
        self,
        store: RedisMessageStore,
        events: RedisEventBus,
        tokens: TokenCounter,
        compactor: Compactor,
        defaults: SessionConfig,
        limits: StmLimits,
        metrics: ServiceMetrics = NO_METRICS,
        clock: Callable[[], int] = wall_clock_ms,
        quota: MessageQuota | None = None,
        extraction: ExtractionScheduler | None = None,
    ) -> None:
        self._store = store
        self._extraction = extraction
        self._quota = quota
        self._clock = clock
        self.metrics = metrics
        self._events = events
        self._tokens = tokens
        self._compactor = compactor
        self._defaults = defaults
        self.limits = limits

    @_storage
    async def add_messages(
        self, tenant: str, session_id: str, messages: list[NewMessage]
    ) -> AddResult:
        """Append messages in order; a message whose id is already stored is not stored again.
        LimitExceeded, and nothing stored, when the new ones do not fit the tenant's quota."""
        check_session_id(session_id)
        check_messages(messages, self.limits)
        now_ms = self._clock()
        if sum(len(new.content) for new in messages) > OFFLOAD_CHARS:
            # Counting the tokens of megabytes takes a good part of a second: not on the loop.
            items = await asyncio.to_thread(self._records, messages, now_ms)
        else:
            items = self._records(messages, now_ms)

        extraction = self._extraction

        def append(admission: Admission = UNLIMITED) -> Awaitable[AppendResult]:
            return self._store.append(
                tenant,
                session_id,
                items,
                default_ttl=self._defaults.ttl_seconds,
                now_ms=now_ms,
                event_prefix=messages_added_prefix(session_id, now_ms),
                lease=admission.lease,
                max_new=admission.max_new,
                extraction_default=extraction is not None and self._defaults.long_term_extraction,
                backlog_ttl=extraction.timing.backlog_ttl if extraction is not None else 0,
            )

        if self._quota is None:
            result = await append()
        else:
            ids = [message_id for message_id, _ in items]
            result = await self._quota.write(tenant, session_id, ids, append)
        if extraction is not None:
            # Before the write is acknowledged: its messages are in the session's backlog
            # already; the session must be on the queue too.
            await extraction.after_write(
                tenant,
                session_id,
                result.backlog,
                started=result.backlog_started,
                retried=any(result.duplicate),
            )
        config = effective_config(self._defaults, result.meta)
        self._compactor.after_write(tenant, session_id, int(result.meta["tokens"]), config)
        return AddResult(
            messages=[Message.from_record(r) for r in result.stored if r is not None],
            duplicate_ids=[
                item[0] for item, dup in zip(items, result.duplicate, strict=True) if dup
            ],
        )

    def _records(self, messages: list[NewMessage], now_ms: int) -> list[tuple[str, str]]:
        """(id, stored record) of each new message, its tokens counted once, here."""
        created_at = ms_to_datetime(now_ms)
        items = []
        for new in messages:
            message = Message(
                id=new.id or uuid.uuid4().hex,
                seq=0,
                role=new.role,
                content=new.content,
                tokens=self._tokens.count_message(new.role.value, new.content, new.name),
                created_at=created_at,
                name=new.name,
                metadata=new.metadata,
            )
            items.append((message.id, message.to_record()))
        return items

    @_storage
    async def get_session(self, tenant: str, session_id: str) -> SessionInfo | None:
        """The session, or None when it does not exist for this tenant."""
        check_session_id(session_id)
        meta = await self._store.read_meta(tenant, session_id)
        return session_info(session_id, meta, self._defaults) if meta else None

    @_storage
    async def list_sessions(self, tenant: str, *, first: int, after: str | None) -> SessionPage:
        """The tenant's sessions by last activity, newest first, each with its cursor."""
        check_page_size(first, "first", self.limits)
        before = _decode_session_cursor(after) if after else None
        # Read before the page: resuming tenant-wide events after it misses no change the page
        # does not show.
        last_event_id = await self._events.newest_id(self._store.tenant_stream(tenant))
        found = await self._store.list_sessions(tenant, limit=first + 1, before=before)
        page = [
            (session_info(sid, meta, self._defaults), _encode_cursor(f"{score}:{sid}"))
            for sid, score, meta in found[:first]
        ]
        return SessionPage(page, len(found) > first, last_event_id)

    @_storage
    async def get_messages(
        self,
        tenant: str,
        session_id: str,
        *,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> MessagePage:
        """A page of messages, oldest first: first/after pages forward from the oldest,
        last/before backward from the newest (the default: the newest 50)."""
        check_page_size(first, "first", self.limits)
        check_page_size(last, "last", self.limits)
        if first is not None and last is not None:
            raise InvalidInput("Give first or last, not both.")
        if first is not None or after is not None:
            limit = DEFAULT_PAGE_SIZE if first is None else first
            bound = _decode_message_cursor(after) if after else None
            records = await self._store.read_page(
                tenant, session_id, newest_first=False, bound=bound, limit=limit
            )
            messages = [Message.from_record(r) for r in records[:limit]]
            return MessagePage(
                messages, has_older=after is not None, has_newer=len(records) > limit
            )
        limit = DEFAULT_PAGE_SIZE if last is None else last
        bound = _decode_message_cursor(before) if before else None
        records = await self._store.read_page(
            tenant, session_id, newest_first=True, bound=bound, limit=limit
        )
        messages = [Message.from_record(r) for r in reversed(records[:limit])]
        return MessagePage(messages, has_older=len(records) > limit, has_newer=before is not None)

    @_storage
    async def get_context(self, tenant: str, session: SessionInfo) -> ContextWindow:
        """The context window the session's strategy allows now."""
        config = session.config
        if config.strategy is Strategy.SLIDING_WINDOW:
            max_count, budget = config.max_messages, None
        else:
            # Until a summary lands (or with no LLM at all) the budget still holds: the oldest
            # messages are left out and the window says it is truncated.
            max_count, budget = self.limits.max_window_messages, config.max_tokens
        window = await self._store.read_window(
            tenant,
            session.id,
            max_count=max_count,
            token_budget=budget,
            keep_summary=budget is not None,
        )
        messages = [Message.from_record(r) for r in window.records]
        summary = messages[0] if messages and messages[0].is_summary else None
        # Only the newest message, alone over the budget, takes a window past it.
        over_budget = budget is not None and window.tokens > budget
        return ContextWindow(
            messages, window.tokens, config.strategy, window.truncated, summary, over_budget
        )

    @_storage
    async def set_config(self, tenant: str, session_id: str, change: ConfigChange) -> SessionInfo:
        """Change the session's config (creating the session if new) and tell subscribers."""
        check_session_id(session_id)
        check_config(change, self.limits)
        now_ms = self._clock()
        meta = await self._store.set_config(
            tenant,
            session_id,
            meta_fields(change),
            default_ttl=self._defaults.ttl_seconds,
            now_ms=now_ms,
            event_prefix=config_changed_prefix(session_id, now_ms),
        )
        info = session_info(session_id, meta, self._defaults)
        self._compactor.after_write(tenant, session_id, info.token_count, info.config)
        return info

    @_storage
    async def delete_session(self, tenant: str, session_id: str) -> None:
        """Delete the session and everything in it; NotFound when there was none."""
        check_session_id(session_id)
        now_ms = self._clock()
        event = encode_event(SessionEventType.SESSION_DELETED, session_id, now_ms)
        if not await self._store.delete(tenant, session_id, now_ms=now_ms, event=event):
            raise NotFound(f"No session '{session_id}'.", field="sessionId")
        if self._extraction is not None:
            # Its messages not yet extracted outlive it in its backlog: extract them now.
            await self._extraction.soon(tenant, session_id)

    @_storage
    async def extraction_progress(self, tenant: str, session_id: str) -> ExtractionProgress:
        """How far long-term extraction of the session's messages got."""
        check_session_id(session_id)
        if self._extraction is None:
            return ExtractionProgress(None, 0, 0)
        return await self._extraction.progress(tenant, session_id)

    def session_events(
        self, tenant: str, session_id: str | None, after: str | None = None
    ) -> AsyncIterator[SessionEvent]:
        """Events of one session (or of all the tenant's sessions): those after the event id
        `after` first, when given, then live ones."""
        if session_id is not None:
            check_session_id(session_id)
            stream = self._store.session_stream(tenant, session_id)
        else:
            stream = self._store.tenant_stream(tenant)
        defaults = self._defaults
        return follow(
            self._events,
            stream,
            after,
            lambda stored: _decode_shared(stored.id, stored.payload, defaults),
            self.metrics,
            "session events",
        )

    async def wait_idle(self) -> None:
        """Wait for the summaries this process started."""
        await self._compactor.wait_idle()

    async def close(self) -> None:
        """Stop background work; an unfinished summary changes nothing, so cancelling is safe."""
        await self._compactor.cancel()


# Every local subscriber of a stream receives the same event at about the same moment: decode
# it once for all of them, as one object (str caches its hash, so a hit costs little).
_decode_shared = functools.lru_cache(maxsize=16)(decode_event)


# ASCII digits only (str.isdigit() also takes "²", which int() refuses), and few enough that
# the number fits in 64 bits.
_POSITION = re.compile(r"[0-9]{1,18}")


def _encode_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _decode(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("Invalid cursor.", field="cursor") from None


def encode_message_cursor(message: Message) -> str:
    return _encode_cursor(f"m:{message.seq}")


def _decode_message_cursor(cursor: str) -> int:
    kind, _, seq = _decode(cursor).partition(":")
    if kind != "m" or not _POSITION.fullmatch(seq):
        raise InvalidInput("Invalid cursor.", field="cursor")
    return int(seq)


def _decode_session_cursor(cursor: str) -> tuple[int, str]:
    score, _, session_id = _decode(cursor).partition(":")
    if not _POSITION.fullmatch(score) or not SESSION_ID.fullmatch(session_id):
        raise InvalidInput("Invalid cursor.", field="cursor")
    return int(score), session_id
