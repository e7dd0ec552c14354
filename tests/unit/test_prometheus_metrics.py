"""PrometheusMetrics: one registry per app in a single process; in multiprocess mode, every
process's values summed, and the live gauges of exited processes dropped."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from starlette.requests import Request

from maas.metrics import PrometheusMetrics
from tests.support.prometheus_samples import Samples, parse, sample

ROOT = Path(__file__).resolve().parents[2]
SESSIONS = {"operation": "sessions", "type": "query"}
SESSION_EVENTS = {"operation": "sessionEvents"}


async def scrape(metrics: PrometheusMetrics) -> Samples:
    response = await metrics.endpoint(Request({"type": "http", "method": "GET"}))
    return parse(bytes(response.body).decode())


async def test_apps_in_one_process_count_on_their_own() -> None:
    first, second = PrometheusMetrics(), PrometheusMetrics()
    first.operations.labels(*SESSIONS.values()).inc(3)
    second.operations.labels(*SESSIONS.values()).inc()
    first.active_subscriptions.labels(*SESSION_EVENTS.values()).inc(2)

    assert sample(await scrape(first), "maas_graphql_operations_total", **SESSIONS) == 3
    assert sample(await scrape(second), "maas_graphql_operations_total", **SESSIONS) == 1
    assert sample(await scrape(first), "maas_active_subscriptions", **SESSION_EVENTS) == 2
    assert sample(await scrape(second), "maas_active_subscriptions", **SESSION_EVENTS) == 0


def test_a_multiproc_dir_set_after_prometheus_client_was_imported_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prometheus-client chose in-memory values at import: files would stay empty, /metrics
    would report nothing of this process."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with pytest.raises(RuntimeError, match="PROMETHEUS_MULTIPROC_DIR"):
        PrometheusMetrics()


def run_process(multiproc_dir: Path, code: str) -> str:
    """`code` in a new Python process in multiprocess mode; its stdout."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    prelude = "import asyncio\nfrom starlette.requests import Request\n"
    prelude += "from maas.metrics import PrometheusMetrics\nmetrics = PrometheusMetrics()\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_scrape_sums_every_process_and_forgets_the_subscriptions_of_exited_ones(
    tmp_path: Path,
) -> None:
    run_process(
        tmp_path,
        """
        metrics.operations.labels("sessions", "query").inc(3)
        metrics.operation_seconds.labels("sessions", "query").observe(0.01)
        metrics.active_subscriptions.labels("sessionEvents").inc(2)
        """,
    )
    samples = parse(
        run_process(
            tmp_path,
            """
        metrics.operations.labels("sessions", "query").inc(4)
        metrics.operation_seconds.labels("sessions", "query").observe(0.01)
        metrics.active_subscriptions.labels("sessionEvents").inc(1)
        request = Request({"type": "http", "method": "GET"})
        print(bytes(asyncio.run(metrics.endpoint(request)).body).decode())
        """,
        )
    )
    assert sample(samples, "maas_graphql_operations_total", **SESSIONS) == 7
    latency = "maas_graphql_operation_duration_seconds"
    assert sample(samples, f"{latency}_count", **SESSIONS) == 2
    assert sample(samples, f"{latency}_bucket", **SESSIONS, le="0.01") == 2
    # The first process has exited: its subscriptions ended with it, its counts stay.
    assert sample(samples, "maas_active_subscriptions", **SESSION_EVENTS) == 1
    assert len(list(tmp_path.glob("counter_*.db"))) == 2
    assert len(list(tmp_path.glob("gauge_livesum_*.db"))) == 1
