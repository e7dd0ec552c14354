"""Readers for the deployment files (.env.example, docker-compose.yml, the collector config, the CI
workflow), shared by the tests that keep them consistent with each other and with Settings."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.patience import patience

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE_FILE = ROOT / "docker-compose.yml"
COLLECTOR_CONFIG = ROOT / "otel" / "collector.yaml"
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
DOCKERFILE = ROOT / "Dockerfile"

# The line that opens .env.example's section of variables MaaS does not read.
COMPOSE_ONLY_MARKER = "# ===== docker compose only"
# `# NAME=value` (commented out: shows the default) or `NAME=value`.
_ENV_LINE = re.compile(r"^(#\s?)?([A-Z][A-Z0-9_]*)=(.*)$")
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}
_COMPOSE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def env_example() -> tuple[dict[str, str], dict[str, str]]:
    """The variables of .env.example with the values shown: (settings section, compose-only
    section)."""
    settings: dict[str, str] = {}
    compose_only: dict[str, str] = {}
    current = settings
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.startswith(COMPOSE_ONLY_MARKER):
            current = compose_only
        elif match := _ENV_LINE.match(line):
            current[match[2]] = match[3]
    return settings, compose_only


def active_env_example_lines() -> list[str]:
    """Lines of .env.example that set a variable (not commented out)."""
    return [
        line
        for line in ENV_EXAMPLE.read_text().splitlines()
        if (match := _ENV_LINE.match(line)) and not match[1]
    ]


def compose_variables(compose: Any) -> dict[str, set[str | None]]:
    """Every ${VAR...} in the values of a loaded compose file (comments are not read), with the
    defaults it is given there (None: no default)."""
    found: dict[str, set[str | None]] = {}
    for text in _strings(compose):
        for name, operator, operand in _COMPOSE_VAR.findall(text.replace("$$", "")):
            found.setdefault(name, set()).add(operand if operator in {"-", ":-"} else None)
    return found


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in _strings(key) + _strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return []


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's interpolation of one string, with `env` as the environment (default: empty,
    so every default applies)."""
    env = env or {}

    def substitute(match: re.Match[str]) -> str:
        name, operator, operand = match[1], match[2], match[3]
        if name in env and (env[name] or not operator or not operator.startswith(":")):
            return env[name]
        if operator in {"-", ":-"}:
            return operand
        raise KeyError(f"{name} is not set and has no default")

    return _COMPOSE_VAR.sub(substitute, value).replace("$$", "$")


def env_text(value: Any) -> str:
    """How a Settings default is written in an environment file: None as nothing, booleans in
    lower case, collections as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def schema_errors(builtin_schema: str, path: Path) -> str:
    """What check-jsonschema (a dev dependency) finds wrong in `path`; empty when it is valid."""
    check = shutil.which("check-jsonschema")
    assert check, "check-jsonschema is a dev dependency: run the tests with `uv run`"
    result = subprocess.run(
        [check, "--builtin-schema", builtin_schema, str(path)],
        capture_output=True,
        text=True,
        timeout=patience(),
    )
    return "" if result.returncode == 0 else result.stdout + result.stderr
