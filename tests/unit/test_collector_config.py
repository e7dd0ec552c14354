"""otel/collector.yaml: every component it defines is used and every one it uses is defined;
traces go to Langfuse's OTLP endpoint with the project keys; the environment it reads is the
environment docker-compose.yml gives it.

(The collector binary cannot run here, so its own `validate` command is not run.)"""

from __future__ import annotations

import re
from typing import Any

from tests.support.deploy_files import COLLECTOR_CONFIG, COMPOSE_FILE, env_example, load_yaml

CONFIG: dict[str, Any] = load_yaml(COLLECTOR_CONFIG)
PIPELINES: dict[str, dict[str, list[str]]] = CONFIG["service"]["pipelines"]
KINDS = ("receivers", "processors", "exporters", "connectors")


def used(kind: str) -> set[str]:
    return {name for pipeline in PIPELINES.values() for name in pipeline.get(kind, [])}


def env_references() -> set[str]:
    return set(re.findall(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)", COLLECTOR_CONFIG.read_text()))


def test_every_component_a_pipeline_uses_is_defined():
    for kind in KINDS:
        assert sorted(used(kind) - set(CONFIG.get(kind) or {})) == [], kind
    assert sorted(set(CONFIG["service"]["extensions"]) - set(CONFIG["extensions"])) == []


def test_every_defined_component_is_used():
    for kind in KINDS:
        assert sorted(set(CONFIG.get(kind) or {}) - used(kind)) == [], kind
    assert sorted(set(CONFIG["extensions"]) - set(CONFIG["service"]["extensions"])) == []


def test_traces_are_received_over_otlp_on_both_ports_from_other_containers():
    protocols = CONFIG["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    assert PIPELINES["traces"]["receivers"] == ["otlp"]


def test_the_memory_limiter_comes_first_then_batching():
    assert PIPELINES["traces"]["processors"] == ["memory_limiter", "batch"]


def test_traces_go_to_langfuse_otlp_endpoint_with_basic_auth_from_the_project_keys():
    (exporter,) = PIPELINES["traces"]["exporters"]
    assert exporter.split("/")[0] == "otlp_http"  # Langfuse takes OTLP over HTTP, not gRPC
    settings = CONFIG["exporters"][exporter]
    assert settings["endpoint"] == "${env:LANGFUSE_BASE_URL}/api/public/otel"
    authenticator = settings["auth"]["authenticator"]
    assert authenticator.split("/")[0] == "basicauth"
    assert CONFIG["extensions"][authenticator]["client_auth"] == {
        "username": "${env:LANGFUSE_PUBLIC_KEY}",
        "password": "${env:LANGFUSE_SECRET_KEY}",
    }


def test_the_health_check_extension_answers_from_outside_the_container():
    assert CONFIG["extensions"]["health_check"]["endpoint"] == "0.0.0.0:13133"


def test_compose_gives_the_collector_every_variable_it_reads():
    collector = load_yaml(COMPOSE_FILE)["services"]["otel-collector"]
    assert env_references() == set(collector["environment"])


def test_every_variable_it_reads_is_documented_in_env_example():
    _, compose_only = env_example()
    assert sorted(env_references() - set(compose_only)) == []
