"""Redis key names. All keys of one session share a hash tag, so multi-key scripts run on
Redis Cluster; tenant ids contain no ':' so `{tenant:session}` is never ambiguous."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SessionKeys:
    """The keys that hold one session."""

    meta: str
    order: str
    msgs: str
    folded: str
    lock: str

    @classmethod
    def of(cls, prefix: str, tenant: str, session_id: str) -> SessionKeys:
        tag = f"{prefix}:{{{tenant}:{session_id}}}"
        return cls(
            meta=f"{tag}:meta",
            order=f"{tag}:order",
            msgs=f"{tag}:msgs",
            folded=f"{tag}:folded",
            lock=f"{tag}:lock",
        )

    @property
    def data(self) -> list[str]:
        """The keys a write touches (meta first: the scripts read the TTL from it)."""
        return [self.meta, self.order, self.msgs, self.folded]


def session_index_key(prefix: str, tenant: str) -> str:
    """Sorted set of a tenant's sessions, scored by last activity (ms)."""
    return f"{prefix}:tenant:{{{tenant}}}:sessions"


def events_channel(prefix: str, tenant: str) -> str:
    """Pub/sub channel for a tenant's session events."""
    return f"{prefix}:events:{tenant}"
