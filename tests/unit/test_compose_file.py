"""docker-compose.yml: valid by the Compose Specification, wired the way MaaS expects, every
variable it reads documented in .env.example with the same default, no secret with a default,
ports published on 127.0.0.1 unless told otherwise, and readiness as maas's healthcheck.

No Docker engine is needed: the schema ships inside check-jsonschema (a dev dependency)."""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from pymongo.uri_parser import parse_uri

from maas.settings import Settings
from scripts.compose_secrets import COMPOSE_SECRETS
from tests.support.deploy_files import (
    COLLECTOR_CONFIG,
    COMPOSE_FILE,
    ROOT,
    compose_variables,
    env_example,
    interpolate,
    load_yaml,
    schema_errors,
)
from tests.support.patience import patience

COMPOSE = load_yaml(COMPOSE_FILE)
SERVICES: dict[str, Any] = COMPOSE["services"]
# Images whose publishers offer no version tags (DocumentDB Local's tests use :latest too;
# Chainguard's free tier publishes only latest).
LATEST_ALLOWED = {
    "ghcr.io/documentdb/documentdb/documentdb-local:latest",
    "cgr.dev/chainguard/minio:latest",
}


# A .env as scripts/compose_secrets.py writes it.
GENERATED = {name: make() for name, make in COMPOSE_SECRETS.items()}


def environment(service: str) -> dict[str, str]:
    """A service's environment as compose sets it, with the generated secrets in .env."""
    values = SERVICES[service]["environment"]
    return {name: interpolate(str(value), GENERATED) for name, value in values.items()}


def maas_environment() -> dict[str, str]:
    return environment("maas")


def test_the_compose_file_is_valid_by_the_compose_specification():
    assert schema_errors("vendor.compose-spec", COMPOSE_FILE) == ""


def test_the_stack_has_maas_its_stores_the_collector_and_langfuse():
    assert set(SERVICES) == {
        "maas",
        "redis",
        "documentdb",
        "otel-collector",
        "langfuse",
        "langfuse-worker",
        "langfuse-db",
        "langfuse-redis",
        "langfuse-clickhouse",
        "langfuse-minio",
    }
    assert SERVICES["maas"]["build"] == "."


def test_maas_runs_in_production_on_redis_documentdb_and_the_collector():
    env = maas_environment()
    assert env["ENVIRONMENT"] == "production"
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["VECTOR_STORE_PROVIDER"] == "azure_documentdb"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert env["HOST"] == "0.0.0.0"  # noqa: S104 (inside its container)


def test_maas_environment_is_valid_settings():
    env = maas_environment()
    fields = {
        name.lower(): value for name, value in env.items() if name.lower() in Settings.model_fields
    }
    assert len(fields) == len(env), "every variable set for maas is a setting"
    # Production: the API keys come from .env (the maas service reads it whole).
    with pytest.raises(ValueError, match="needs authentication"):
        Settings(_env_file=None, **fields)  # type: ignore[call-arg]
    Settings(_env_file=None, **fields, api_keys={"sk-1": "acme"})  # type: ignore[call-arg]


def test_the_mongodb_uri_reaches_documentdb_local_over_tls_with_its_user():
    uri = parse_uri(maas_environment()["MONGODB_URI"])
    documentdb = environment("documentdb")
    assert uri["nodelist"] == [("documentdb", 10260)]
    assert (uri["username"], uri["password"]) == (documentdb["USERNAME"], documentdb["PASSWORD"])
    # DocumentDB Local serves TLS with a self-signed certificate.
    assert uri["options"]["tls"] is True
    assert uri["options"]["tlsAllowInvalidCertificates"] is True


def test_services_wait_for_the_health_of_what_they_need():
    def healthy(name: str) -> bool:
        return "healthcheck" in SERVICES[name]

    for name, service in SERVICES.items():
        for dependency, condition in service.get("depends_on", {}).items():
            expected = "service_healthy" if healthy(dependency) else "service_started"
            assert condition["condition"] == expected, f"{name} -> {dependency}"
    maas = SERVICES["maas"]["depends_on"]
    assert {"redis", "documentdb", "otel-collector"} <= set(maas)


def test_every_image_names_a_version():
    for name, service in SERVICES.items():
        image = service.get("image")
        if image is None:
            continue
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert tag, f"{name}: {image} has no tag"
        assert tag != "latest" or image in LATEST_ALLOWED, f"{name}: {image}"


def test_every_variable_is_documented_in_env_example_with_the_same_default():
    """A variable the compose file demands (no default) is shown empty."""
    _, compose_only = env_example()
    used = compose_variables(COMPOSE)
    assert sorted(set(used) - set(compose_only)) == []
    differing = {
        name: defaults
        for name, defaults in used.items()
        if defaults != {compose_only[name] or None}
    }
    assert differing == {}


def test_no_secret_has_a_default_and_the_generator_makes_each_one():
    used = compose_variables(COMPOSE)
    demanded = {name for name, defaults in used.items() if defaults == {None}}
    assert demanded == set(COMPOSE_SECRETS)
    secret_like = {
        name for name in used if re.search("PASSWORD|SECRET|SALT|ENCRYPTION|TOKEN", name)
    }
    assert secret_like <= demanded
    with pytest.raises(KeyError, match="LANGFUSE_ENCRYPTION_KEY"):
        interpolate(SERVICES["langfuse"]["environment"]["ENCRYPTION_KEY"])


def test_langfuse_gets_a_64_hex_encryption_key_and_a_first_password_it_accepts():
    langfuse = environment("langfuse")
    assert re.fullmatch(r"[0-9a-f]{64}", langfuse["ENCRYPTION_KEY"])
    assert set(langfuse["ENCRYPTION_KEY"]) != {"0"}
    password = langfuse["LANGFUSE_INIT_USER_PASSWORD"]
    assert len(password) >= 8
    assert re.search("[A-Za-z]", password)
    assert re.search("[0-9]", password)
    assert re.search("[^A-Za-z0-9]", password)


@pytest.mark.parametrize("service", ["maas", "langfuse"])
def test_published_ports_listen_on_this_machine_only_unless_maas_bind_says_otherwise(
    service: str,
):
    for port in SERVICES[service]["ports"]:
        assert interpolate(port).startswith("127.0.0.1:"), port
        assert interpolate(port, {"MAAS_BIND": "0.0.0.0"}).startswith("0.0.0.0:"), port  # noqa: S104


def test_every_published_port_names_its_host_address():
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert interpolate(port).count(":") == 2, f"{name}: {port}"


def test_env_example_documents_no_compose_variable_the_compose_file_does_not_read():
    _, compose_only = env_example()
    used = compose_variables(COMPOSE)
    assert sorted(set(compose_only) - set(used)) == []


def test_langfuse_creates_the_project_keys_the_collector_sends():
    langfuse = SERVICES["langfuse"]["environment"]
    collector = SERVICES["otel-collector"]["environment"]
    assert langfuse["LANGFUSE_INIT_PROJECT_PUBLIC_KEY"] == collector["LANGFUSE_PUBLIC_KEY"]
    assert langfuse["LANGFUSE_INIT_PROJECT_SECRET_KEY"] == collector["LANGFUSE_SECRET_KEY"]
    # Headless initialization creates keys only together with their organization and project.
    assert langfuse["LANGFUSE_INIT_ORG_ID"]
    assert langfuse["LANGFUSE_INIT_PROJECT_ID"]
    assert interpolate(collector["LANGFUSE_BASE_URL"]) == "http://langfuse:3000"


def test_langfuse_web_and_worker_share_their_stores():
    web, worker = SERVICES["langfuse"]["environment"], SERVICES["langfuse-worker"]["environment"]
    assert {name: web[name] for name in worker} == worker
    assert SERVICES["langfuse"]["depends_on"] == SERVICES["langfuse-worker"]["depends_on"]


def test_the_collector_runs_the_config_in_otel():
    collector = SERVICES["otel-collector"]
    (config,) = [arg.removeprefix("--config=") for arg in collector["command"]]
    mounts = {target: source for source, target, *_ in (v.split(":") for v in collector["volumes"])}
    assert (ROOT / mounts[config]).resolve() == COLLECTOR_CONFIG


@pytest.mark.parametrize("service", ["maas", "otel-collector"])
def test_published_ports_are_the_ones_the_services_listen_on(service: str):
    ports = [interpolate(port) for port in SERVICES[service]["ports"]]
    container_ports = {port.rsplit(":", 1)[-1] for port in ports}
    assert container_ports == {"maas": {"8000"}, "otel-collector": {"4317", "4318"}}[service]


class _Endpoints(http.server.BaseHTTPRequestHandler):
    statuses: ClassVar[dict[str, int]] = {}

    def do_GET(self) -> None:
        self.send_response(self.statuses.get(self.path, 404))
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoints() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Endpoints)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("ready", "healthy"), [(200, True), (503, False)], ids=["ready", "not-ready"]
)
def test_maas_is_healthy_in_the_stack_when_it_is_ready(
    endpoints: http.server.HTTPServer, ready: int, healthy: bool
):
    """compose never restarts an unhealthy container; `up --wait` waits for readiness."""
    _Endpoints.statuses = {"/health": 200, "/health/ready": ready}
    check = SERVICES["maas"]["healthcheck"]
    command = check["test"]
    assert command[:2] == ["CMD", "python"]
    env = {**os.environ, "PORT": str(endpoints.server_port)}
    done = subprocess.run([sys.executable, *command[2:]], env=env, timeout=patience(), check=False)
    assert (done.returncode == 0) is healthy
