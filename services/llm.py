"""The LLM gateway: every call speaks OpenAI Chat Completions, whichever provider serves it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.errors import Unavailable
from services.metrics import NO_METRICS, ServiceMetrics

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)

# OpenAI-compatible endpoints of the providers we name; LLM_BASE_URL overrides any of them.
PROVIDER_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "grok": "https://api.x.ai/v1",
    "anthropic": "https://api.anthropic.com/v1/",
    "openrouter": "https://openrouter.ai/api/v1",
    "kimi": "https://api.moonshot.ai/v1",
    "glm": "https://api.z.ai/api/paas/v4/",
    "minimax": "https://api.minimax.io/v1",
    "together": "https://api.together.xyz/v1",
    "deepseek": "https://api.deepseek.com/v1",
}


@dataclass(frozen=True)
class LLMConfig:
    provider: str
    base_url: str | None
    api_key: str | None
    model: str
    temperature: float
    max_tokens: int
    timeout_seconds: float
    max_retries: int

    @property
    def configured(self) -> bool:
        """A key, or a base URL of a server that needs none (a local model)."""
        return bool(self.api_key or self.base_url)


class LLMGateway:
    """Chat completions with timeouts and bounded retries; failures become Unavailable."""

    def __init__(
        self,
        config: LLMConfig,
        client: openai.AsyncOpenAI | None = None,
        *,
        metrics: ServiceMetrics = NO_METRICS,
    ) -> None:
        self.config = config
        self._client = client
        self._metrics = metrics
        if client is None and config.configured:
            # Imported only when an LLM is configured: the client library costs about a second
            # of start-up CPU and tens of MB, for nothing on the embedded defaults.
            import openai

            self._client = openai.AsyncOpenAI(
                base_url=config.base_url or PROVIDER_BASE_URLS[config.provider],
                api_key=config.api_key or "not-needed",
                timeout=config.timeout_seconds,
                max_retries=config.max_retries,
            )

    @property
    def configured(self) -> bool:
        return self._client is not None

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        response_format: dict[str, str] | None = None,
    ) -> str:
        """The assistant's reply to messages; raises Unavailable when the LLM cannot answer."""
        if self._client is None:
            raise Unavailable("No LLM is configured (set LLM_API_KEY or LLM_BASE_URL).")
        model = model or self.config.model
        import openai  # loaded with the client: a dictionary lookup

        try:
            response = await self._client.chat.completions.create(
                model=model,
                messages=messages,  # type: ignore[arg-type]
                temperature=self.config.temperature,
                max_tokens=max_tokens or self.config.max_tokens,
                **({"response_format": response_format} if response_format else {}),  # type: ignore[arg-type]
            )
        except openai.OpenAIError as exc:
            log.warning("LLM call failed: %s", type(exc).__name__)
            self._metrics.dependency_error("llm")
            raise Unavailable("The LLM is unavailable.") from exc
        if response.usage is not None:
            self._metrics.llm_tokens(
                model, response.usage.prompt_tokens, response.usage.completion_tokens
            )
        content = response.choices[0].message.content if response.choices else None
        if not content:
            raise Unavailable("The LLM returned an empty reply.")
        return content

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
