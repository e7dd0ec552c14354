"""Each tenant's request rate limit and quotas: the defaults, and overrides per tenant."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class TenantLimits:
    """One tenant's limits; 0 means none."""

    requests_per_second: float = 0.0
    burst: int = 0  # requests allowed at once; 0: one second's worth
    max_messages: int = 0  # messages its sessions may hold in short-term memory
    max_memories: int = 0  # long-term memories it may hold

    @property
    def effective_burst(self) -> int:
        return self.burst or max(1, math.ceil(self.requests_per_second))


class LimitPolicy:
    """The limits of every tenant: the defaults, unless the tenant has its own."""

    def __init__(
        self, defaults: TenantLimits, overrides: Mapping[str, TenantLimits] | None = None
    ) -> None:
        self._defaults = defaults
        self._overrides = dict(overrides or {})

    def for_tenant(self, tenant: str) -> TenantLimits:
        return self._overrides.get(tenant, self._defaults)

    @property
    def limits_requests(self) -> bool:
        """Whether any tenant has a request rate limit (if not, requests are never counted)."""
        return any(
            limits.requests_per_second > 0 for limits in (self._defaults, *self._overrides.values())
        )


NO_LIMITS = LimitPolicy(TenantLimits())
