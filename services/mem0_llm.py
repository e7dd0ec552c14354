"""mem0's LLM, served by our LLM gateway: one client, one place for timeouts and retries.

mem0 calls `generate_response` from a worker thread; the gateway is async and lives on the
server's event loop, so the call is handed to that loop and the thread waits for the answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mem0.configs.llms.base import BaseLlmConfig
from mem0.llms.base import LLMBase

from services.llm import LLMGateway


class GatewayLlmConfig(BaseLlmConfig):
    """mem0's LLM config plus the gateway and the loop it runs on."""

    def __init__(
        self,
        gateway: LLMGateway | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.gateway = gateway
        self.loop = loop


class GatewayLLM(LLMBase):
    """mem0's LLM interface over LLMGateway."""

    config: GatewayLlmConfig

    def generate_response(
        self,
        messages: list[dict[str, str]],
        response_format: dict[str, str] | None = None,
        tools: list[dict] | None = None,
        tool_choice: str = "auto",
        **kwargs: Any,
    ) -> str:
        gateway, loop = self.config.gateway, self.config.loop
        if gateway is None or loop is None:
            raise RuntimeError("GatewayLLM needs the gateway and its event loop")
        answer = asyncio.run_coroutine_threadsafe(
            gateway.complete(messages, response_format=response_format), loop
        )
        return answer.result()
