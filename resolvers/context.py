"""The per-request GraphQL context: who is calling and the services they may use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.errors import Unauthenticated

if TYPE_CHECKING:
    from aiodataloader import DataLoader
    from strawberry import Info

    from services.ltm import LongTermMemory
    from services.ltm_model import HistoryEntry
    from services.stm import ShortTermMemory


@dataclass
class RequestContext:
    """Built once per HTTP request or WebSocket connection by the app."""

    stm: ShortTermMemory
    tenant: str | None
    ltm: LongTermMemory | None = None
    history_loader: DataLoader[str, list[HistoryEntry]] | None = None
    request: Any = None
    response: Any = None
    connection_params: dict[str, Any] | None = None


def tenant_of(info: Info[RequestContext, Any]) -> str:
    """The caller's tenant; UNAUTHENTICATED when the API key is missing or unknown."""
    tenant = info.context.tenant
    if tenant is None:
        raise Unauthenticated(
            "Missing or unknown API key: send 'Authorization: Bearer <key>' "
            '(over WebSocket: connection_init payload {"Authorization": "Bearer <key>"}).'
        )
    return tenant


def stm_of(info: Info[RequestContext, Any]) -> ShortTermMemory:
    return info.context.stm


def ltm_of(info: Info[RequestContext, Any]) -> LongTermMemory:
    ltm = info.context.ltm
    if ltm is None:
        raise RuntimeError("long-term memory is not part of this app")
    return ltm
