"""On the embedded defaults, start-up imports only what those defaults use: no client library of
a provider that is not configured, and never Qdrant (which mem0 would pull in on its own, see
stores/mem0_qdrant_stand_in.py). Each check runs in a fresh interpreter and reads sys.modules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Client libraries of providers the embedded defaults do not use, and what only they bring.
NOT_ON_THE_DEFAULTS = ("qdrant_client", "grpc", "openai", "pymongo", "bson", "cohere")

STARTED_APP = """
import asyncio, json, sys
from maas.app import create_app
from maas.settings import Settings

async def main():
    settings = Settings(
        redis_url=sys.argv[1],
        data_dir=sys.argv[2],
        otel_sdk_disabled=sys.argv[3] == "off",
        otel_exporter_otlp_endpoint="http://127.0.0.1:9",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pass
    print(json.dumps(sorted(sys.modules)))

asyncio.run(main())
"""


def modules_after(code: str, *args: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `code`."""
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("tracing", ["off", "on"])
def test_the_embedded_defaults_start_without_clients_of_other_providers(
    redis_url: str, tmp_path: Path, tracing: str
) -> None:
    """Tracing on too: OpenLIT instruments each GenAI SDK when it is imported, not at start-up."""
    loaded = modules_after(STARTED_APP, redis_url, str(tmp_path / "data"), tracing)
    # Long-term memory was built (these load only then), so mem0 and its factories ran.
    assert {"mem0.memory.main", "services.embeddings.local", "services.mem0_llm"} <= loaded
    assert not {name for name in loaded if name.split(".")[0] in NOT_ON_THE_DEFAULTS}


@pytest.mark.parametrize("enabled", [True, False])
def test_the_mcp_sdk_loads_only_when_mcp_is_enabled(
    redis_url: str, tmp_path: Path, enabled: bool
) -> None:
    code = """
import json, sys
from maas.app import create_app
from maas.settings import Settings
create_app(Settings(redis_url=sys.argv[1], data_dir=sys.argv[2], mcp_enabled=sys.argv[3] == "on"))
print(json.dumps(sorted(sys.modules)))
"""
    loaded = modules_after(code, redis_url, str(tmp_path / "data"), "on" if enabled else "off")
    assert bool({name for name in loaded if name.split(".")[0] in ("mcp", "mcp_types")}) is enabled


def test_a_configured_llm_loads_its_client_when_the_gateway_is_built() -> None:
    code = """
import json, sys
from services.llm import LLMConfig, LLMGateway
config = LLMConfig("openai", "http://127.0.0.1:9/v1", None, "m", 0.1, 10, 1.0, 0)
before = "openai" in sys.modules
gateway = LLMGateway(config)
print(json.dumps([before, "openai" in sys.modules, gateway.configured]))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == [False, True, True]


def test_mem0_still_needs_the_qdrant_stand_in() -> None:
    """mem0 2.2 imports qdrant_client when imported on its own. When this fails, a mem0 release
    stopped doing so: remove stores/mem0_qdrant_stand_in.py."""
    loaded = modules_after("import json, sys, mem0; print(json.dumps(sorted(sys.modules)))")
    assert "qdrant_client" in loaded
