"""The memory prompt in GraphQL: its input, its result and the `memoryPrompt` query field."""

from __future__ import annotations

import strawberry

from resolvers import prompts as resolve
from schema.enums import MemoryCategory, MessageRole
from schema.memory_types import MemoryHit
from schema.types import ContextWindow, Session
from services import memory_prompt
from services.ltm_model import Category, Scope
from services.memory_prompt import DEFAULT_PROMPT_MEMORIES, MAX_PROMPT_MEMORIES, PromptRequest
from services.prompt_fitting import MEMORY_HEADER
from services.prompt_fitting import PromptMessage as FittedMessage


@strawberry.input(
    description="A memory prompt: a session of yours, and the scope (userId, agentId or both) "
    "whose long-term memories are searched; without either, the session config's userId and "
    "agentId (BAD_USER_INPUT when it has neither)."
)
class MemoryPromptInput:
    session_id: str
    query: str | None = strawberry.field(
        default=None,
        description="What to search the memories for; default: the newest user message of the "
        "session's context window (its last 2,000 characters). Without either, no memories.",
    )
    user_id: str | None = None
    agent_id: str | None = None
    token_budget: int | None = strawberry.field(
        default=None,
        description="Most tokens the messages may take (counted as the context window counts "
        "them); default: the session's maxTokens.",
    )
    memory_limit: int = strawberry.field(
        default=DEFAULT_PROMPT_MEMORIES,
        description=f"Most memories to search for, 1 to {MAX_PROMPT_MEMORIES}.",
    )
    categories: list[MemoryCategory] | None = None
    threshold: float | None = strawberry.field(
        default=None, description="Lowest relevance of a memory, 0 to 1 (as in searchMemories)."
    )

    def to_request(self) -> PromptRequest:
        return PromptRequest(
            session_id=self.session_id,
            scope=Scope(self.user_id, self.agent_id),
            query=self.query,
            token_budget=self.token_budget,
            memory_limit=self.memory_limit,
            categories=[Category(c) for c in self.categories] if self.categories else None,
            threshold=self.threshold,
        )


@strawberry.type(description="One message of a memory prompt, ready for a chat model.")
class PromptMessage:
    role: MessageRole
    content: str
    name: str | None
    token_count: int
    message_id: str | None = strawberry.field(
        description="The session message it is; null for the system message of memories."
    )

    @classmethod
    def of(cls, m: FittedMessage) -> PromptMessage:
        return cls(
            role=m.role,
            content=m.content,
            name=m.name,
            token_count=m.tokens,
            message_id=m.message.id if m.message is not None else None,
        )


@strawberry.type(
    description="What an LLM call needs, fitted to tokenBudget. `messages` are: a system message "
    f'carrying the memories ("{MEMORY_HEADER}", then "- <text>" per memory, best first; left '
    "out when no memory fits), then the context window's messages that fit, oldest first. "
    "Precedence (what comes later yields first): the newest message, always and whole; the "
    "memories by score (the lowest dropped first); the summary; older messages newest first "
    "(never with a gap). What was found but left out is in omittedMemoryIds and "
    "omittedMessageCount."
)
class MemoryPrompt:
    prompt: strawberry.Private[memory_prompt.MemoryPrompt]

    @strawberry.field(description="The prompt: the memories' system message, then the context.")
    def messages(self) -> list[PromptMessage]:
        return [PromptMessage.of(m) for m in self.prompt.messages]

    @strawberry.field(description="Tokens of messages: at most tokenBudget unless overBudget.")
    def token_count(self) -> int:
        return self.prompt.token_count

    @strawberry.field(description="The budget applied: the input's, or the session's maxTokens.")
    def token_budget(self) -> int:
        return self.prompt.token_budget

    @strawberry.field(
        description="True when the newest message alone exceeds tokenBudget: it is then the "
        "only message, whole, and tokenCount is over the budget."
    )
    def over_budget(self) -> bool:
        return self.prompt.over_budget

    @strawberry.field(description="True when a memory or a context message was left out.")
    def truncated(self) -> bool:
        return self.prompt.truncated

    @strawberry.field(description="What the memories were searched for; null: no search.")
    def query(self) -> str | None:
        return self.prompt.query

    @strawberry.field(description="The memories in the system message, best first.")
    def memories(self) -> list[MemoryHit]:
        return [MemoryHit.of(h) for h in self.prompt.memories]

    @strawberry.field(description="Memories found but left out for the budget, best first.")
    def omitted_memory_ids(self) -> list[strawberry.ID]:
        return [strawberry.ID(h.memory.id) for h in self.prompt.omitted_memories]

    @strawberry.field(
        description="Messages of the context window left out for the budget (the summary counts)."
    )
    def omitted_message_count(self) -> int:
        return self.prompt.omitted_message_count

    @strawberry.field(
        description="True when the long-term memories could not be searched (the vector store "
        "is unavailable): the prompt is the context alone. Ask again later for the memories."
    )
    def memories_unavailable(self) -> bool:
        return self.prompt.memories_unavailable

    @strawberry.field(description="The session's whole context window, as its strategy gives it.")
    def context(self) -> ContextWindow:
        return ContextWindow.of(self.prompt.context)

    @strawberry.field(description="The session, as session(id) reads it.")
    def session(self) -> Session:
        return Session.of(self.prompt.session)


@strawberry.type
class PromptQuery:
    @strawberry.field(
        description="In one call, what an LLM call needs: the session's context and the "
        "long-term memories relevant to the query, as messages within a token budget. "
        "NOT_FOUND when you have no such session."
    )
    async def memory_prompt(self, info: strawberry.Info, input: MemoryPromptInput) -> MemoryPrompt:
        return MemoryPrompt(prompt=await resolve.memory_prompt(info, input.to_request()))
