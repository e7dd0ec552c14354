"""Prometheus metrics of one app, served at /metrics.

One process (the default): each app has its own registry, so several apps in one process
(tests) never share counts. Several worker processes (`maas serve --workers N`, or gunicorn
with PROMETHEUS_MULTIPROC_DIR set): prometheus-client's multiprocess mode, where every process
writes its values to its own files in that directory and /metrics, whichever worker answers,
reports the aggregate of all the files.

Both modes export the runtime's own metrics too: `process_*` (CPU, memory, file descriptors)
and `python_*` (interpreter, garbage collections). In one process they are prometheus-client's
standard collectors. With several workers, `process_*` are read from /proc for every worker
still running, labelled with its `pid` (summing them gives the server's); `python_gc_*` are
counters that each worker brings up to date every few seconds and at each scrape it answers,
summed over every worker the server has run.

With a token, /metrics answers 401 to a request without `Authorization: Bearer <token>`."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import os
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client import values as prometheus_values
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from services.metrics import SummaryOutcome

# Operations are labelled by the schema fields they select (bounded by the schema), never by
# the client-chosen operation name.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# How often a worker brings its garbage-collection counters up to date (multiprocess mode).
RUNTIME_SAMPLE_SECONDS = 10.0


class PrometheusMetrics:
    """The service's counters, gauges and histograms; implements services.ServiceMetrics."""

    def __init__(self, token: str | None = None) -> None:
        self.registry = CollectorRegistry()
        self._token = token.encode() if token else None
        self._shared_dir = multiprocess_dir()
        # What /metrics reports: this app's registry, or the files of every process.
        self._scraped = (
            _registry_of_all_processes(self._shared_dir) if self._shared_dir else self.registry
        )
        self._gc = _GarbageCollections(self.registry) if self._shared_dir else None
        if not self._shared_dir:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        self.operations = Counter(
            "maas_graphql_operations",
            "GraphQL operations run, by root field(s) and operation type.",
            ["operation", "type"],
            registry=self.registry,
        )
        self._operation_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self.operation_errors = Counter(
            "maas_graphql_operation_errors",
            "GraphQL operations that returned errors, by error code.",
            ["operation", "type", "code"],
            registry=self.registry,
        )
        self.operation_seconds = Histogram(
            "maas_graphql_operation_duration_seconds",
            "Time to run a query or mutation (subscriptions are not timed).",
            ["operation", "type"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.active_subscriptions = Gauge(
            "maas_active_subscriptions",
            "Subscriptions streaming right now, by root field.",
            ["operation"],
            # Across workers: the sum over the processes still running.
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        subscription_results = Counter(
            "maas_subscription_event_results",
            "Results of subscription events sent, by whether they were executed for the "
            "subscriber or shared from another subscriber's execution of the same operation.",
            ["execution"],
            registry=self.registry,
        )
        # Counted for every subscriber of every event: the two children, looked up once.
        self._subscription_results = {
            True: subscription_results.labels("shared"),
            False: subscription_results.labels("executed"),
        }
        self.summarizations = Counter(
            "maas_summarizations",
            "Summarizations of session context, by outcome (summarized, failed, discarded).",
            ["outcome"],
            registry=self.registry,
        )
        self.llm_token_count = Counter(
            "maas_llm_tokens",
            "Tokens used by LLM calls, as the provider reported them.",
            ["model", "kind"],
            registry=self.registry,
        )
        self.dependency_errors = Counter(
            "maas_dependency_errors",
            "Calls that failed because a store or provider was down.",
            ["dependency"],
            registry=self.registry,
        )
        self.limit_rejections = Counter(
            "maas_limit_rejections",
            "Requests refused by a tenant's limit: requests (rate), messages, memories (quotas).",
            ["limit"],
            registry=self.registry,
        )

    def operation_children(self, fields: str, kind: str) -> tuple[Counter, Histogram]:
        """The count and duration children of one operation label pair, looked up once (their
        labels are bounded: schema fields and operation types)."""
        children = self._operation_children.get((fields, kind))
        if children is None:
            children = (
                self.operations.labels(fields, kind),
                self.operation_seconds.labels(fields, kind),
            )
            self._operation_children[(fields, kind)] = children
        return children

    def subscription_result(self, shared: bool) -> None:
        self._subscription_results[shared].inc()

    def summarization(self, outcome: SummaryOutcome) -> None:
        self.summarizations.labels(outcome.value).inc()

    def llm_tokens(self, model: str, prompt: int, completion: int) -> None:
        self.llm_token_count.labels(model, "prompt").inc(prompt)
        self.llm_token_count.labels(model, "completion").inc(completion)

    def dependency_error(self, dependency: str) -> None:
        self.dependency_errors.labels(dependency).inc()

    def limit_rejected(self, limit: str) -> None:
        self.limit_rejections.labels(limit).inc()

    async def endpoint(self, request: Request) -> Response:
        """GET /metrics in Prometheus' text format."""
        if not self._authorized(request.headers.get("authorization")):
            return Response(
                "Unauthorized: /metrics needs Authorization: Bearer <METRICS_TOKEN>\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        if self._shared_dir:
            forget_exited_processes(self._shared_dir)
        if self._gc is not None:
            self._gc.sample()
        return Response(generate_latest(self._scraped), media_type=CONTENT_TYPE_LATEST)

    async def sample_runtime(self, interval_seconds: float = RUNTIME_SAMPLE_SECONDS) -> None:
        """Runs for the life of the worker (a task of the app's lifespan): keeps its garbage
        collection counters current in multiprocess mode; returns at once otherwise."""
        if self._gc is None:
            return
        while True:
            await asyncio.sleep(interval_seconds)
            self._gc.sample()

    def _authorized(self, authorization: str | None) -> bool:
        if self._token is None:
            return True
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        # Constant time: the comparison leaks nothing about the token.
        return hmac.compare_digest(credentials.strip().encode(), self._token)


class _GarbageCollections:
    """python_gc_* as counters that live in the multiprocess files, so a scrape sums every
    worker's. Brought up to date by `sample` (never from a gc callback: prometheus-client's
    multiprocess lock is not reentrant, and a collection can start while it is held)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["generation"]
        self._counters = (
            Counter(
                "python_gc_objects_collected",
                "Objects collected during gc",
                labels,
                registry=registry,
            ),
            Counter(
                "python_gc_objects_uncollectable",
                "Uncollectable objects found during GC",
                labels,
                registry=registry,
            ),
            Counter(
                "python_gc_collections",
                "Number of times this generation was collected",
                labels,
                registry=registry,
            ),
        )
        self._seen = [(0, 0, 0) for _ in gc.get_stats()]
        self.sample()

    def sample(self) -> None:
        for generation, stats in enumerate(gc.get_stats()):
            now = (stats["collected"], stats["uncollectable"], stats["collections"])
            deltas = zip(self._counters, self._seen[generation], now, strict=True)
            for counter, before, after in deltas:
                counter.labels(str(generation)).inc(after - before)
            self._seen[generation] = now


def multiprocess_dir() -> str | None:
    """The directory where every worker keeps its values, or None when they live in this
    process's memory. prometheus-client chooses once, when first imported, from the environment
    (`values.ValueClass`), so PROMETHEUS_MULTIPROC_DIR must be set before the process starts."""
    path = os.environ.get(MULTIPROC_DIR_ENV) or None
    # Set by prometheus-client on both of its value classes (True for the file-backed one).
    in_files = getattr(prometheus_values.ValueClass, "_multiprocess", False)
    if bool(path) != in_files:
        raise RuntimeError(
            f"{MULTIPROC_DIR_ENV} changed after prometheus_client was imported: set it (or not) "
            "before the process starts, or /metrics would report none of this process's values"
        )
    return path


def _registry_of_all_processes(path: str) -> CollectorRegistry:
    """A registry whose only collector reads every process's files at each scrape."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    WorkerProcesses(path, registry=registry)
    PlatformCollector(registry=registry)
    return registry


class WorkerProcesses(Collector):
    """process_* of every worker still running, each labelled with its pid: the workers that
    have files in the directory and share this worker's parent (uvicorn's or gunicorn's
    supervisor), so a recycled pid of an unrelated process is never reported."""

    def __init__(self, path: str, registry: CollectorRegistry | None = None) -> None:
        self._path = path
        if registry is not None:
            registry.register(self)

    def collect(self) -> Iterable[Metric]:
        merged: dict[str, Metric] = {}
        for pid in sorted(self.workers()):
            for family in ProcessCollector(pid=lambda pid=pid: pid, registry=None).collect():
                into = merged.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for found in family.samples:
                    into.add_sample(found.name, {**found.labels, "pid": str(pid)}, found.value)
        return list(merged.values())

    def workers(self) -> set[int]:
        me, parent = os.getpid(), os.getppid()
        pids = {int(file.stem.rsplit("_", 1)[1]) for file in Path(self._path).glob("*_*.db")}
        return {me} | {pid for pid in pids if pid != me and _parent_of(pid) == parent}


def _parent_of(pid: int) -> int | None:
    """The parent pid of a running process (from /proc), or None when it is not running."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return int(stat.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def forget_exited_processes(path: str) -> None:
    """Removes the live gauges of workers that have exited (stopped, killed or replaced): their
    subscriptions ended with them. Their counters and histograms stay in the totals."""
    for file in Path(path).glob("gauge_live*_*.db"):
        pid = int(file.stem.rsplit("_", 1)[1])
        if not _is_running(pid):
            # Another worker's scrape may be removing the same files right now.
            with contextlib.suppress(FileNotFoundError):
                mark_process_dead(pid, path)


def _is_running(pid: int) -> bool:
    if os.name != "posix":
        return True  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a process of another user
    return True
