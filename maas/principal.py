"""Who is calling: the tenant a credential stands for, and until when it stands."""

from __future__ import annotations

import time
from dataclasses import dataclass

LOCAL_TENANT = "local"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. `expires_at` (epoch seconds, clock-skew leeway included) is
    when its credential stops being accepted; None for credentials that do not expire."""

    tenant: str
    expires_at: float | None = None

    def expired(self, now: float | None = None) -> bool:
        if self.expires_at is None:
            return False
        return (time.time() if now is None else now) >= self.expires_at


LOCAL = Principal(LOCAL_TENANT)
