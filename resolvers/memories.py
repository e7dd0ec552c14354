"""Resolvers of long-term memory: authenticate, turn arguments into service calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from resolvers.context import RequestContext, ltm_of, tenant_of
from resolvers.credential_expiry import until_credential_expires
from services.ltm_model import Category, Scope

if TYPE_CHECKING:
    from strawberry import Info

    from services.ltm import ItemResult
    from services.ltm_model import (
        AddResult,
        HistoryEntry,
        MemoryEvent,
        MemoryHit,
        MemoryRecord,
        MemorySearch,
        NewMemory,
    )

Context = RequestContext


async def add(info: Info[Context, Any], new: NewMemory) -> AddResult:
    return await ltm_of(info).add(tenant_of(info), new)


async def add_many(info: Info[Context, Any], items: list[NewMemory]) -> list[ItemResult[AddResult]]:
    return await ltm_of(info).add_many(tenant_of(info), items)


async def search(info: Info[Context, Any], search: MemorySearch) -> list[MemoryHit]:
    return await ltm_of(info).search(tenant_of(info), search)


async def search_many(
    info: Info[Context, Any], items: list[MemorySearch]
) -> list[ItemResult[list[MemoryHit]]]:
    return await ltm_of(info).search_many(tenant_of(info), items)


async def memory(info: Info[Context, Any], memory_id: str) -> MemoryRecord | None:
    return await ltm_of(info).get(tenant_of(info), memory_id)


async def memories(
    info: Info[Context, Any],
    scope: Scope,
    categories: list[Category] | None,
    metadata: dict[str, Any] | None,
    first: int,
    after: str | None,
) -> tuple[list[tuple[MemoryRecord, str]], bool]:
    return await ltm_of(info).list(tenant_of(info), scope, categories, metadata, first, after)


async def history(info: Info[Context, Any], memory_id: str) -> list[HistoryEntry]:
    return await info.context.histories().load(memory_id)


async def update(
    info: Info[Context, Any],
    memory_id: str,
    *,
    text: str | None,
    metadata: dict[str, Any] | None,
    ttl_seconds: int | None,
) -> MemoryRecord:
    return await ltm_of(info).update(
        tenant_of(info), memory_id, text=text, metadata=metadata, ttl_seconds=ttl_seconds
    )


async def delete(info: Info[Context, Any], memory_id: str) -> None:
    await ltm_of(info).delete(tenant_of(info), memory_id)


async def delete_many(info: Info[Context, Any], memory_ids: list[str]) -> list[ItemResult[str]]:
    return await ltm_of(info).delete_many(tenant_of(info), memory_ids)


async def delete_expired(info: Info[Context, Any]) -> int:
    return await ltm_of(info).delete_expired(tenant_of(info))


def events(info: Info[Context, Any], scope: Scope, after: str | None) -> AsyncIterator[MemoryEvent]:
    return until_credential_expires(info, ltm_of(info).events(tenant_of(info), scope, after))
