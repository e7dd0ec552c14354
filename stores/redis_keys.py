"""Redis key names. All keys of one session share a hash tag, so multi-key scripts run on
Redis Cluster; so do all keys of one tenant's own (session index, tenant-wide event streams).
Tenant ids contain no ':' so `{tenant:session}` is never ambiguous."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SessionKeys:
    """The keys that hold one session."""

    meta: str
    order: str
    msgs: str
    folded: str
    events: str
    lock: str
    # Long-term extraction (stores/extraction_jobs.py): the session's messages not yet
    # extracted, kept apart from its buffer so they outlive a summary, a delete or an expiry;
    # the progress made; and the lock of the one extraction running.
    backlog: str
    extraction: str
    extraction_lock: str

    @classmethod
    def of(cls, prefix: str, tenant: str, session_id: str) -> SessionKeys:
        tag = f"{prefix}:{{{tenant}:{session_id}}}"
        return cls(
            meta=f"{tag}:meta",
            order=f"{tag}:order",
            msgs=f"{tag}:msgs",
            folded=f"{tag}:folded",
            events=f"{tag}:events",
            lock=f"{tag}:lock",
            backlog=f"{tag}:ltm-backlog",
            extraction=f"{tag}:ltm-progress",
            extraction_lock=f"{tag}:ltm-lock",
        )

    @property
    def data(self) -> list[str]:
        """The keys a write touches (meta first: the scripts read the TTL from it; the event
        stream last)."""
        return [self.meta, self.order, self.msgs, self.folded, self.events]


@dataclass(frozen=True)
class TenantKeys:
    """The keys of one tenant that span its sessions; all in the tenant's own slot."""

    sessions: str  # sorted set of session ids by last activity (ms)
    session_events: str  # stream: every session event of the tenant, in one order
    memory_events: str  # stream: every memory event of the tenant
    request_rate: str  # the request rate limiter's state (GCRA's theoretical arrival time)
    message_ledger: str  # hash: messages each session holds, their sum, reservations
    message_leases: str  # sorted set: reservations of writes in flight, by expiry
    message_sweep: str  # throttles the search for expired sessions when over quota
    memory_count: str  # memories held plus those being added
    memory_sweep: str  # throttles deleting expired memories when over quota
    _fan_in_prefix: str

    @classmethod
    def of(cls, prefix: str, tenant: str) -> TenantKeys:
        tag = f"{prefix}:tenant:{{{tenant}}}"
        return cls(
            sessions=f"{tag}:sessions",
            session_events=f"{tag}:session-events",
            memory_events=f"{tag}:memory-events",
            request_rate=f"{tag}:rate",
            message_ledger=f"{tag}:quota:messages",
            message_leases=f"{tag}:quota:message-leases",
            message_sweep=f"{tag}:quota:message-sweep",
            memory_count=f"{tag}:quota:memories",
            memory_sweep=f"{tag}:quota:memory-sweep",
            _fan_in_prefix=f"{tag}:fan-in:",
        )

    def fan_in_mark(self, session_id: str) -> str:
        """The id of the session's newest event already copied into `session_events`."""
        return self._fan_in_prefix + session_id


def extraction_queue(prefix: str) -> str:
    """Sorted set of every tenant's sessions with messages to extract ("tenant:session"), by
    when a worker should next look at them (ms). One key for all tenants: any server process
    finds any job; a job's data stays in its session's slot."""
    return f"{prefix}:ltm-extraction-queue"
