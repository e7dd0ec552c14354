"""The memory prompt: in one call, what an LLM call needs — a session's context window and the
long-term memories relevant to the query, fitted into one list of messages within a token
budget (services/prompt_fitting.py says how). Transport-neutral: GraphQL and MCP call it alike.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from services.errors import InvalidInput, LimitExceeded, MaasError, NotFound, Unavailable
from services.ltm_limits import check_scope
from services.ltm_model import Category, MemoryHit, MemorySearch, Scope
from services.prompt_fitting import PromptMessage, fit_prompt
from services.stm_limits import check_session_id
from services.stm_model import ContextWindow, Role, SessionInfo

if TYPE_CHECKING:
    from services.ltm import LongTermMemory
    from services.stm import ShortTermMemory
    from services.tokens import TokenCounter

MAX_PROMPT_MEMORIES = 50
DEFAULT_PROMPT_MEMORIES = 5
# A default query is the end of the newest user message: what a long message asks usually
# comes last, and the embedding model reads only its first few hundred tokens anyway.
DEFAULT_QUERY_CHARS = 2_000

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromptRequest:
    """What to build: the session, the memories' scope (a user, an agent, or both), the query
    (None: the newest user message of the context window), the budget (None: the session's
    maxTokens) and how memories are chosen."""

    session_id: str
    scope: Scope
    query: str | None = None
    token_budget: int | None = None
    memory_limit: int = DEFAULT_PROMPT_MEMORIES
    categories: list[Category] | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class MemoryPrompt:
    """A built prompt: `messages` fit `token_budget` (unless `over_budget`); what was found but
    left out is named in `omitted_memories` and counted in `omitted_message_count`."""

    session: SessionInfo
    context: ContextWindow  # the session's whole context window, as its strategy gives it
    query: str | None  # what the memories were searched with; None: nothing to search with
    memories: list[MemoryHit]  # in the system message, best first
    omitted_memories: list[MemoryHit]  # found, left out for the budget, best first
    messages: list[PromptMessage]
    token_count: int
    token_budget: int
    over_budget: bool
    omitted_message_count: int
    # The vector store could not be searched: the prompt is the context alone, and says so.
    memories_unavailable: bool = False

    @property
    def truncated(self) -> bool:
        """Something found (a memory, a message of the context window) was left out."""
        return bool(self.omitted_memories) or self.omitted_message_count > 0


class MemoryPrompts:
    """Builds memory prompts from the STM and LTM services, for one tenant at a time."""

    def __init__(self, stm: ShortTermMemory, ltm: LongTermMemory, tokens: TokenCounter) -> None:
        self._stm = stm
        self._ltm = ltm
        self._tokens = tokens  # the counter the session's messages were counted with

    async def build(self, tenant: str, request: PromptRequest) -> MemoryPrompt:
        """The prompt of `request` in the tenant's session; NotFound when the tenant has no
        such session. With a query, the session and the memories are read concurrently."""
        self._check(request)
        scoped = bool(request.scope.user_id or request.scope.agent_id)
        if request.query is None or not scoped:
            session, context = await self._context(tenant, request.session_id)
            if not scoped:
                request = replace(request, scope=_scope_of(session))
            query = request.query if request.query is not None else default_query(context)
            found = await self._search(tenant, request, query) if query is not None else []
        else:
            query = request.query
            read, found = await asyncio.gather(
                self._context(tenant, request.session_id),
                self._search(tenant, request, query),
                return_exceptions=True,
            )
            if isinstance(read, BaseException) or isinstance(found, BaseException):
                raise _first_error(read, found)
            session, context = read
        hits = found if found is not None else []
        budget = request.token_budget or session.config.max_tokens
        fitted = fit_prompt(context.messages, hits, budget, self._tokens)
        return MemoryPrompt(
            session=session,
            context=context,
            query=query,
            memories=fitted.memories,
            omitted_memories=fitted.omitted_memories,
            messages=fitted.messages,
            token_count=fitted.token_count,
            token_budget=budget,
            over_budget=fitted.over_budget,
            omitted_message_count=fitted.omitted_message_count,
            memories_unavailable=found is None,
        )

    def _check(self, request: PromptRequest) -> None:
        check_session_id(request.session_id)
        check_scope(request.scope, required=False)
        high = self._stm.limits.max_config_tokens
        if request.token_budget is not None and not 1 <= request.token_budget <= high:
            raise InvalidInput(f"tokenBudget must be between 1 and {high}.", field="tokenBudget")
        # The search checks the rest, but without a query it may not run.
        if request.threshold is not None and not 0 <= request.threshold <= 1:
            raise InvalidInput("threshold: between 0 and 1.", field="threshold")
        if not 1 <= request.memory_limit <= MAX_PROMPT_MEMORIES:
            raise LimitExceeded(
                f"memoryLimit: 1 to {MAX_PROMPT_MEMORIES}.",
                field="memoryLimit",
                limit=MAX_PROMPT_MEMORIES,
            )

    async def _context(self, tenant: str, session_id: str) -> tuple[SessionInfo, ContextWindow]:
        session = await self._stm.get_session(tenant, session_id)
        if session is None:
            raise NotFound(f"No session '{session_id}'.", field="sessionId")
        return session, await self._stm.get_context(tenant, session)

    async def _search(
        self, tenant: str, request: PromptRequest, query: str
    ) -> list[MemoryHit] | None:
        """The memories found; None when the vector store cannot be searched: the session's
        context is still worth an answer (as /health/ready calls that state degraded)."""
        search = MemorySearch(
            query=query,
            scope=Scope(request.scope.user_id, request.scope.agent_id),
            categories=request.categories,
            limit=request.memory_limit,
            threshold=request.threshold,
        )
        try:
            return await self._ltm.search(tenant, search)
        except Unavailable:
            log.warning("memory prompt without memories: the vector store is unavailable")
            return None


def _scope_of(session: SessionInfo) -> Scope:
    """The session's own scope (its config's userId/agentId), for a request that names none."""
    config = session.config
    if not (config.user_id or config.agent_id):
        raise InvalidInput(
            "Give userId or agentId (the scope whose memories are searched), or set them in "
            "the session's config.",
            field="userId",
        )
    return Scope(config.user_id, config.agent_id)


def default_query(context: ContextWindow) -> str | None:
    """The end of the newest user message of the context window with any text; None without."""
    for message in reversed(context.messages):
        if message.role is Role.USER and message.content.strip():
            return message.content[-DEFAULT_QUERY_CHARS:]
    return None


def _first_error(*outcomes: object) -> BaseException:
    """Of concurrent reads' errors, the one a client should see: a wrong request first (it
    stays wrong whatever is stored), then the product's errors in the reads' order."""
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    for kinds in ((InvalidInput, LimitExceeded), MaasError, BaseException):
        for error in errors:
            if isinstance(error, kinds):
                return error
    raise AssertionError("no error among the outcomes")
