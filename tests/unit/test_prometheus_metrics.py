"""PrometheusMetrics: one registry per app in a single process; in multiprocess mode, every
process's values summed, and the live gauges of exited processes dropped; the runtime's own
process_* and python_* metrics in both modes; a token, when set, required."""

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


def get(authorization: str | None = None) -> Request:
    headers = [(b"authorization", authorization.encode())] if authorization else []
    return Request({"type": "http", "method": "GET", "headers": headers})


async def scrape(metrics: PrometheusMetrics) -> Samples:
    response = await metrics.endpoint(get())
    return parse(bytes(response.body).decode())


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


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


PRINT_SCRAPE = """
request = Request({"type": "http", "method": "GET", "headers": []})
print(bytes(asyncio.run(metrics.endpoint(request)).body).decode())
"""


def run_process(multiproc_dir: Path, code: str, *, scrape: bool = False) -> str:
    """`code` in a new Python process in multiprocess mode; its stdout (with `scrape`, ending
    with what /metrics answered then)."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    prelude = "import asyncio\nfrom starlette.requests import Request\n"
    prelude += "from maas.metrics import PrometheusMetrics\nmetrics = PrometheusMetrics()\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code) + (PRINT_SCRAPE if scrape else "")],
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
        """,
            scrape=True,
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


RUNTIME = {
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_open_fds",
    "python_info",
    "python_gc_collections_total",
    "python_gc_objects_collected_total",
}


async def test_one_process_reports_its_process_and_python_metrics() -> None:
    samples = await scrape(PrometheusMetrics())
    assert RUNTIME - names(samples) == set()
    assert sample(samples, "process_resident_memory_bytes") > 0
    assert sample(samples, "python_gc_collections_total", generation="0") > 0


def test_in_multiprocess_mode_each_worker_reports_its_process_and_gc_counts_add_up(
    tmp_path: Path,
) -> None:
    output = run_process(
        tmp_path,
        """
        import gc, os
        gc.collect()
        collections = sum(s["collections"] for s in gc.get_stats())
        print(os.getpid(), collections)
        """,
        scrape=True,
    )
    first_line, text = output.split("\n", 1)
    pid, collections = (int(word) for word in first_line.split())
    samples = parse(text)
    assert RUNTIME - names(samples) == set()
    assert sample(samples, "process_resident_memory_bytes", pid=str(pid)) > 0
    assert sample(samples, "process_cpu_seconds_total", pid=str(pid)) > 0
    # The process has exited: its process_* are gone, its collections stay in the totals.
    samples = parse(run_process(tmp_path, "", scrape=True))
    assert sample(samples, "process_resident_memory_bytes", pid=str(pid)) == 0
    gc_total = sum(
        value for (name, _), value in samples.items() if name == "python_gc_collections_total"
    )
    assert gc_total >= collections


async def test_with_a_token_metrics_need_it_as_a_bearer_token() -> None:
    metrics = PrometheusMetrics(token="s3cret-token")
    for authorization in (None, "Bearer wrong", "Basic s3cret-token", "s3cret-token"):
        refused = await metrics.endpoint(get(authorization))
        assert refused.status_code == 401, authorization
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert b"maas_" not in bytes(refused.body)
    allowed = await metrics.endpoint(get("Bearer s3cret-token"))
    assert allowed.status_code == 200
    assert "process_cpu_seconds_total" in names(parse(bytes(allowed.body).decode()))
