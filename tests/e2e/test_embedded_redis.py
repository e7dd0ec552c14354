"""The README's first command: `maas serve` with REDIS_URL unset runs its own Redis."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from tests.e2e.conftest import REPO_ROOT, ServerProcess
from tests.support.patience import patience

ADD = """mutation($c: String!) { addMessages(input: {sessionId: "kept",
  messages: [{role: USER, content: $c}]}) { messages { seq } } }"""
READ = '{ session(id: "kept") { messages { nodes { content } } } }'


def embedded_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "API_KEYS", "LLM_"))}
    env.update(
        HOST="127.0.0.1", DATA_DIR=str(data_dir), LOG_LEVEL="WARNING", PYTHONPATH=str(REPO_ROOT)
    )
    return env


def graphql(url: str, query: str, **variables: str) -> dict:
    reply = httpx.post(
        f"{url}/graphql", json={"query": query, "variables": variables}, timeout=patience()
    )
    body = reply.json()
    assert "errors" not in body, body
    return body["data"]


def test_serve_keeps_its_data_across_restarts_and_stops_its_redis(tmp_path: Path):
    data_dir = tmp_path / "data"
    first = ServerProcess(embedded_env(data_dir), tmp_path).start().wait_ready()
    try:
        graphql(first.url, ADD, c="remember me")
        pid = int((data_dir / "redis" / "redis.pid").read_text())
    finally:
        first.stop()
    assert not _running(pid), "the embedded redis-server outlived `maas serve`"

    second = ServerProcess(embedded_env(data_dir), tmp_path).start().wait_ready()
    try:
        data = graphql(second.url, READ)
        assert data == {"session": {"messages": {"nodes": [{"content": "remember me"}]}}}
    finally:
        second.stop()


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited child this sandbox's init has not reaped yet)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status
