"""Building the /mcp endpoint leaves the process's logging as the app configured it (the SDK
would otherwise give the root logger a handler at INFO: every library's INFO records, printed
in another format)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BUILD = """
import json, logging
from maas.mcp_server import McpEndpoint
from services.json_values import JsonLimits
McpEndpoint(1024 * 1024, JsonLimits())
root = logging.getLogger()
print(json.dumps([len(root.handlers), logging.getLevelName(root.level)]))
"""


def test_building_the_endpoint_configures_no_logging() -> None:
    # A fresh interpreter: pytest's own handlers on the root logger would hide the change.
    result = subprocess.run(
        [sys.executable, "-c", BUILD], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == [0, "WARNING"]
