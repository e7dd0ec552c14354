"""Telemetry of a real `maas serve` process: spans reach a collector through the real OTLP/HTTP
exporter and the last ones are flushed at shutdown; without a collector the service serves
every request and stops promptly; logs are JSON lines with request and trace ids, and never
hold message contents or keys."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from maas.telemetry import SHUTDOWN_TIMEOUT_SECONDS
from tests.e2e.conftest import ServerProcess, _free_port
from tests.support.graphql_client import ADD_MESSAGES, KEY_A, message
from tests.support.memory_queries import ADD_MEMORY, UPDATE
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.patience import PROCESS_START_S, patience, short

SECRET_CONTENT = "my-bank-pin-is-99231"
SERVICE_NAME = "maas-under-test"


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as started:
        yield started


@pytest.fixture(scope="module")
def nowhere() -> str:
    """An OTLP endpoint where nothing listens."""
    return f"http://127.0.0.1:{_free_port()}"


@pytest.fixture(scope="module")
def servers(
    server_processes: Callable[..., list[ServerProcess]], receiver: OtlpReceiver, nowhere: str
) -> dict[str, ServerProcess]:
    """Both tests' processes, booted side by side: one exporting to the receiver, one to a
    port where nothing listens. Each test stops its own."""
    exporting, unheard = server_processes(
        2,
        {KEY_A: "tenant-a"},
        each=[
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.base_url,
                "OTEL_SERVICE_NAME": SERVICE_NAME,
                "LOG_LEVEL": "INFO",
                # Longer than the test: only the flush at shutdown can write the log lines.
                "LOG_FLUSH_SECONDS": "600",
            },
            {"OTEL_EXPORTER_OTLP_ENDPOINT": nowhere},
        ],
    )
    return {"exporting": exporting, "unheard": unheard}


def add_message(server: ServerProcess, content: str, **headers: str) -> httpx.Response:
    body = {"query": ADD_MESSAGES, "variables": {"sessionId": "s1", "messages": [message(content)]}}
    response = httpx.post(
        f"{server.url}/graphql",
        json=body,
        headers={"Authorization": f"Bearer {KEY_A}", **headers},
        timeout=patience(),
    )
    assert response.status_code == 200
    assert response.json().get("errors") is None
    return response


def remember_and_rewrite(server: ServerProcess, text: str) -> None:
    """Adds a memory and updates it: mem0 logs both texts at INFO unless kept quiet."""
    headers = {"Authorization": f"Bearer {KEY_A}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=patience()) as client:
        added = client.post(
            "/graphql",
            json={"query": ADD_MEMORY, "variables": {"input": {"text": text, "userId": "u"}}},
        ).json()
        memory_id = added["data"]["addMemory"]["added"][0]["id"]
        update = {"input": {"id": memory_id, "text": f"{text} (updated)"}}
        updated = client.post("/graphql", json={"query": UPDATE, "variables": update}).json()
        assert updated.get("errors") is None


def json_lines(server: ServerProcess) -> list[dict[str, str]]:
    lines = server.log_path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_spans_reach_the_collector_and_shutdown_flushes_the_last_ones(
    servers: dict[str, ServerProcess], receiver: OtlpReceiver
) -> None:
    server = servers["exporting"]
    response = add_message(server, SECRET_CONTENT, **{"X-Request-ID": "req-7f3a"})
    remember_and_rewrite(server, f"memory {SECRET_CONTENT}")
    assert response.headers["x-request-id"] == "req-7f3a"
    # Stop at once: the batch is still buffered (the exporter sends every 5 s), so only the
    # flush at shutdown can deliver it.
    server.stop()

    (operation,) = [
        s
        for s in receiver.named("mutation Add")
        if s.attributes["maas.graphql.fields"] == "addMessages"
    ]
    assert operation.service_name == SERVICE_NAME
    assert operation.attributes["maas.tenant"] == "tenant-a"
    assert operation.attributes["http.response.status_code"] == 200
    assert operation.parent_span_id == ""  # the request's span: a root
    in_trace = [s for s in receiver.spans if s.trace_id == operation.trace_id]
    assert any(s.attributes.get("db.system.name") == "redis" for s in in_trace)
    assert receiver.content_types == {"application/x-protobuf"}

    records = json_lines(server)
    access = [
        r for r in records if r["logger"] == "uvicorn.access" and "/graphql" in str(r["message"])
    ]
    assert access[0]["request_id"] == "req-7f3a"
    assert access[0]["trace_id"] == operation.trace_id
    assert len({r["request_id"] for r in access}) == len(access) == 3
    log_text = server.log_path.read_text()
    assert SECRET_CONTENT not in log_text
    assert KEY_A not in log_text


def test_without_a_collector_every_request_is_served_quietly_and_shutdown_is_prompt(
    servers: dict[str, ServerProcess], nowhere: str
) -> None:
    server = servers["unheard"]
    body = {"query": ADD_MESSAGES, "variables": {"sessionId": "s", "messages": [message("m")]}}
    headers = {"Authorization": f"Bearer {KEY_A}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=patience()) as client:
        # More than a batch of spans, were they recorded.
        for _ in range(600):
            response = client.post("/graphql", json=body)
            assert response.status_code == 200
            assert response.json().get("errors") is None

    assert server.process is not None
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    exit_code = server.process.wait(timeout=PROCESS_START_S)
    stopped_after = time.monotonic() - started
    server.stop()
    # uvicorn re-raises the SIGTERM it handled once shut down: -15, not a kill (-9).
    assert exit_code in (0, -signal.SIGTERM)
    # A liveness bound (the whole shutdown, on a busy machine); tracing's own share is at most
    # SHUTDOWN_TIMEOUT_SECONDS, and bench/telemetry_bench.py measures it.
    assert stopped_after < SHUTDOWN_TIMEOUT_SECONDS + short(2.5)
    records = json_lines(server)
    telemetry = [r["message"] for r in records if r["logger"] == "maas.telemetry"]
    # Said once (at start-up: nothing listens there), and nothing else: no retries, no
    # exporter's own lines, no giving up at shutdown.
    assert len(telemetry) == 1, telemetry
    assert "cannot export traces" in telemetry[0]
    assert nowhere in telemetry[0]
    assert not [r for r in records if r["logger"].startswith("opentelemetry")]
