"""How a memory prompt fits its token budget: which memories and context messages go in.

The rule, in order of precedence (what comes later yields first):
1. the newest message of the context window, always, whole: it is what the model must answer
   (as the context window itself keeps it). Alone over the budget, it is the whole prompt and
   the prompt says `over_budget`;
2. the memories, best score first, in one system message: each while it fits, and the first
   that does not ends them (lower scores are dropped first, never a better one for a worse);
3. the rest of the context window in its own precedence: the summary, then older messages
   newest first while they fit (never with a gap, as in the window).

Why memories before older messages: the memories were chosen for this very query and their
cost is bounded by the caller (memoryLimit, threshold), while older turns are what the session
already condenses (summary, sliding window); a caller who wants more conversation asks for
fewer memories. What is left out is reported (omitted memories, omitted message count),
never silently cut. Tokens are counted as the context window counts them: OpenAI's chat
accounting per message (services/tokens.py), messages' counts as stored when written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.ltm_model import MemoryHit
from services.stm_model import Message, Role
from services.tokens import TokenCounter

MEMORY_HEADER = "Long-term memories relevant to this conversation, most relevant first:"


def memory_text(hits: Sequence[MemoryHit]) -> str:
    """The system message's content: a header, then one line per memory, best first."""
    return "\n".join([MEMORY_HEADER, *(f"- {hit.memory.text}" for hit in hits)])


@dataclass(frozen=True)
class PromptMessage:
    """One message of the prompt, ready for a chat model; `message` is the session message it
    comes from (None for the system message carrying the memories)."""

    role: Role
    content: str
    tokens: int
    name: str | None = None
    message: Message | None = None


@dataclass(frozen=True)
class FittedPrompt:
    messages: list[PromptMessage]  # the system message (if any memory fits), then the context
    token_count: int
    over_budget: bool  # the newest message alone exceeds the budget
    memories: list[MemoryHit]  # those in the system message, best first
    omitted_memories: list[MemoryHit]  # found but left out, best first
    omitted_message_count: int  # messages of the context window left out (summary counted)


def _memories_that_fit(
    hits: Sequence[MemoryHit], room: int, tokens: TokenCounter
) -> tuple[int, int]:
    """How many of the best hits fit in `room` tokens as the system message (each while it
    fits), and the message's tokens (0 without a memory)."""

    def cost(count: int) -> int:
        if count == 0:
            return 0
        return tokens.count_message(Role.SYSTEM.value, memory_text(hits[:count]))

    # A joined text's tokens are its lines' tokens give or take a few at the joins (a line's
    # last piece may merge with the newline): estimate from the lines, counted once each, then
    # settle on the exact count from there. Counting the whole text for each memory in turn
    # grew with the square of the memories (16 ms for 50 on a loaded machine); this is about
    # two whole counts (0.25 ms).
    count, total = 0, tokens.count_message(Role.SYSTEM.value, MEMORY_HEADER)
    for hit in hits:
        total += tokens.count_text(f"\n- {hit.memory.text}")
        if total > room:
            break
        count += 1
    exact = cost(count)
    while count > 0 and exact > room:  # the estimate went too far
        count -= 1
        exact = cost(count)
    while count < len(hits) and (after := cost(count + 1)) <= room:
        count, exact = count + 1, after
    return count, exact


def fit_prompt(
    context: Sequence[Message], hits: Sequence[MemoryHit], budget: int, tokens: TokenCounter
) -> FittedPrompt:
    """The prompt of `hits` (best first) and `context` (a context window, oldest first, its
    summary first when it has one) within `budget` tokens, by the rule above."""
    newest = context[-1] if context else None
    used = newest.tokens if newest is not None else 0
    over_budget = used > budget

    kept_hits, system_tokens = _memories_that_fit(hits, budget - used, tokens)
    used += system_tokens

    older = list(context[:-1])
    summary = older.pop(0) if older and older[0].is_summary else None
    kept_summary = None
    if summary is not None and used + summary.tokens <= budget:
        kept_summary = summary
        used += summary.tokens
    kept_older: list[Message] = []
    for message in reversed(older):
        if used + message.tokens > budget:
            break
        kept_older.append(message)
        used += message.tokens
    kept_older.reverse()

    messages = []
    if kept_hits:
        messages.append(PromptMessage(Role.SYSTEM, memory_text(hits[:kept_hits]), system_tokens))
    kept_context = [
        *([kept_summary] if kept_summary is not None else []),
        *kept_older,
        *([newest] if newest is not None else []),
    ]
    messages.extend(PromptMessage(m.role, m.content, m.tokens, m.name, m) for m in kept_context)
    return FittedPrompt(
        messages=messages,
        token_count=used,
        over_budget=over_budget,
        memories=list(hits[:kept_hits]),
        omitted_memories=list(hits[kept_hits:]),
        omitted_message_count=len(context) - len(kept_context),
    )
