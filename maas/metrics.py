"""Prometheus metrics of one app, served at /metrics. Each app has its own registry, so several
apps in one process (tests) never share counts."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from services.metrics import SummaryOutcome

# Operations are labelled by the schema fields they select (bounded by the schema), never by
# the client-chosen operation name.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class PrometheusMetrics:
    """The service's counters, gauges and histograms; implements services.ServiceMetrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.operations = Counter(
            "maas_graphql_operations",
            "GraphQL operations run, by root field(s) and operation type.",
            ["operation", "type"],
            registry=self.registry,
        )
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
            registry=self.registry,
        )
        # Counted for every subscriber of every event, on the event loop: plain integers,
        # read when scraped (a Counter takes a lock per increment).
        self.subscription_results = {"executed": 0, "shared": 0}
        self.registry.register(_SubscriptionResults(self.subscription_results))
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

    def subscription_result(self, shared: bool) -> None:
        self.subscription_results["shared" if shared else "executed"] += 1

    def summarization(self, outcome: SummaryOutcome) -> None:
        self.summarizations.labels(outcome.value).inc()

    def llm_tokens(self, model: str, prompt: int, completion: int) -> None:
        self.llm_token_count.labels(model, "prompt").inc(prompt)
        self.llm_token_count.labels(model, "completion").inc(completion)

    def dependency_error(self, dependency: str) -> None:
        self.dependency_errors.labels(dependency).inc()

    async def endpoint(self, request: Request) -> Response:
        """GET /metrics in Prometheus' text format."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class _SubscriptionResults(Collector):
    """maas_subscription_event_results_total from PrometheusMetrics' counts."""

    def __init__(self, counts: dict[str, int]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "maas_subscription_event_results",
            "Results of subscription events sent, by whether they were executed for the "
            "subscriber or shared from another subscriber's execution of the same operation.",
            labels=["execution"],
        )
        for execution, count in self._counts.items():
            family.add_metric([execution], count)
        yield family
