"""Folds the oldest messages of a session, and any earlier summary, into one summary text."""

from __future__ import annotations

from services.llm import LLMGateway
from services.stm_model import Message

INSTRUCTIONS = (
    "You maintain the running memory of a conversation between a user and an AI assistant. "
    "Write a concise summary of the conversation below that keeps every fact, decision, "
    "preference, open question and name the assistant will need later. If it starts with an "
    "earlier summary, fold that summary in. Write plain prose in the conversation's language; "
    "do not address the user."
)


class Summarizer:
    """Summarizes messages with the LLM gateway."""

    def __init__(self, llm: LLMGateway, model: str) -> None:
        self._llm = llm
        self._model = model

    @property
    def available(self) -> bool:
        return self._llm.configured

    async def summarize(self, messages: list[Message], *, max_tokens: int) -> str:
        transcript = "\n".join(_line(m) for m in messages)
        return await self._llm.complete(
            [
                {"role": "system", "content": INSTRUCTIONS},
                {"role": "user", "content": transcript},
            ],
            model=self._model,
            max_tokens=max_tokens,
        )


def _line(message: Message) -> str:
    if message.is_summary:
        return f"[earlier summary] {message.content}"
    speaker = f"{message.role.value} ({message.name})" if message.name else message.role.value
    return f"{speaker}: {message.content}"
