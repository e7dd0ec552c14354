"""Latency statistics and the figures one load case produces."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """One line of a benchmark's final summary."""

    name: str
    measured: str
    met: bool


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile of values (pct in 0..100); NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class LoadResult:
    """One closed-loop load case: completed requests in the measured window and their cost."""

    name: str
    concurrency: int
    duration_s: float
    latencies_s: list[float]
    errors: int
    client_cpu_s: float  # CPU the load generator spent in the measured window
    server_cpu_s: float | None = None  # CPU the server process spent (HTTP cases)
    redis_cpu_s: float | None = None  # CPU redis-server spent

    @property
    def count(self) -> int:
        return len(self.latencies_s)

    @property
    def rps(self) -> float:
        return self.count / self.duration_s if self.duration_s else math.nan

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_s, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_s, 99) * 1000

    @property
    def max_ms(self) -> float:
        return max(self.latencies_s, default=math.nan) * 1000

    def per_request_us(self, cpu_s: float | None) -> float:
        """CPU microseconds per completed request (NaN when unknown)."""
        if cpu_s is None or not self.count:
            return math.nan
        return cpu_s / self.count * 1e6

    @property
    def client_us(self) -> float:
        return self.per_request_us(self.client_cpu_s)

    @property
    def server_us(self) -> float:
        return self.per_request_us(self.server_cpu_s)

    @property
    def redis_us(self) -> float:
        return self.per_request_us(self.redis_cpu_s)


def fmt(value: float, digits: int = 1) -> str:
    """A number for a table cell ('-' for NaN)."""
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])
