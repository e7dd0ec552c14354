"""What the services count, as an interface: the app plugs in Prometheus, tests and tools the
no-op. Services never know where their numbers go."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class SummaryOutcome(StrEnum):
    SUMMARIZED = "summarized"
    FAILED = "failed"
    DISCARDED = "discarded"  # the session changed during the LLM call: retried later


class ServiceMetrics(Protocol):
    """Counters the services report to."""

    def summarization(self, outcome: SummaryOutcome) -> None:
        """One summarization attempt ended."""

    def llm_tokens(self, model: str, prompt: int, completion: int) -> None:
        """Tokens one LLM call used, as the provider reported them."""

    def dependency_error(self, dependency: str) -> None:
        """A call to a store or provider failed because it is down (Redis, vector store, ...)."""

    def limit_rejected(self, limit: str) -> None:
        """A request was refused by a tenant's limit: requests (rate), messages, memories."""


class NoMetrics:
    """Counts nothing."""

    def summarization(self, outcome: SummaryOutcome) -> None:
        pass

    def llm_tokens(self, model: str, prompt: int, completion: int) -> None:
        pass

    def dependency_error(self, dependency: str) -> None:
        pass

    def limit_rejected(self, limit: str) -> None:
        pass


NO_METRICS: ServiceMetrics = NoMetrics()
