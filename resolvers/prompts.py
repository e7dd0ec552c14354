"""Resolver of the memory prompt: authenticate, call the service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from resolvers.context import RequestContext, prompts_of, tenant_of

if TYPE_CHECKING:
    from strawberry import Info

    from services.memory_prompt import MemoryPrompt, PromptRequest


async def memory_prompt(info: Info[RequestContext, Any], request: PromptRequest) -> MemoryPrompt:
    return await prompts_of(info).build(tenant_of(info), request)
