"""Request rate limits per tenant, shared by every server process through Redis."""

from __future__ import annotations

import logging
import math

from services.errors import LimitExceeded
from services.metrics import NO_METRICS, ServiceMetrics
from services.tenant_limits import LimitPolicy
from stores.redis_client import is_redis_down
from stores.redis_limits import RedisLimitStore

log = logging.getLogger(__name__)


class RequestRateLimiter:
    """Admits a tenant's requests at its rate, with its burst; one Redis round trip each."""

    def __init__(
        self, store: RedisLimitStore, policy: LimitPolicy, metrics: ServiceMetrics = NO_METRICS
    ) -> None:
        self._store = store
        self._policy = policy
        self.metrics = metrics

    @property
    def enabled(self) -> bool:
        return self._policy.limits_requests

    async def admit(self, tenant: str) -> None:
        """Count one request of the tenant; LimitExceeded, with retryAfterSeconds, when it
        comes too soon. When Redis cannot answer the request goes ahead: the limiter protects
        the service, and what else the request needs from Redis fails on its own."""
        limits = self._policy.for_tenant(tenant)
        rate = limits.requests_per_second
        if rate <= 0:
            return
        # Rounded up: the limit is never more generous than configured.
        interval_us = math.ceil(1_000_000 / rate)
        burst = limits.effective_burst
        try:
            wait_us = await self._store.take_request(tenant, interval_us, burst)
        except Exception as exc:
            if not is_redis_down(exc):
                raise
            log.warning("rate limiter unavailable, request admitted: %s", type(exc).__name__)
            self.metrics.dependency_error("redis")
            return
        if wait_us:
            self.metrics.limit_rejected("requests")
            retry_after = math.ceil(wait_us / 1000) / 1000
            raise LimitExceeded(
                f"Too many requests: at most {rate:g} per second ({burst} at once). "
                f"Retry after {retry_after:g} s.",
                retryAfterSeconds=retry_after,
                requestsPerSecond=rate,
                burst=burst,
            )
