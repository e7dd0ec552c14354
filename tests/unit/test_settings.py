import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from maas.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = [n.upper() for n in Settings.model_fields if f"| `{n.upper()}` |" not in readme]
    assert missing == []


def test_the_readme_documents_no_setting_that_does_not_exist():
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", readme, flags=re.MULTILINE)
    assert rows, "the README's settings table is where this test looks"
    assert sorted(set(rows) - {n.upper() for n in Settings.model_fields}) == []


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STM_MAX_MESSAGES", "7")
    monkeypatch.setenv("API_KEYS", '{"k1": "acme"}')
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.stm_max_messages == 7
    assert settings.api_keys == {"k1": "acme"}


def test_tenant_names_cannot_break_key_names():
    with pytest.raises(ValidationError):
        Settings(_env_file=None, api_keys={"k": "a:b"})  # type: ignore[call-arg]


def test_production_turns_graphiql_and_introspection_off():
    prod = Settings(_env_file=None, environment="production", api_keys={"k": "acme"})  # type: ignore[call-arg]
    assert not prod.graphiql_enabled
    assert not prod.introspection_enabled
    dev = Settings(_env_file=None)  # type: ignore[call-arg]
    assert dev.graphiql_enabled
    assert dev.introspection_enabled


def test_an_empty_value_means_unset(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GRAPHIQL", "")
    monkeypatch.setenv("STM_MAX_MESSAGES", "")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.graphiql is None
    assert settings.stm_max_messages == 50


def test_production_without_authentication_refuses_to_start():
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, environment="production")  # type: ignore[call-arg]
    (error,) = refused.value.errors()
    assert "ENVIRONMENT=production needs authentication" in error["msg"]
    assert "API_KEYS" in error["msg"]
    assert "ALLOW_UNAUTHENTICATED=true" in error["msg"]


def test_production_starts_with_api_keys_or_when_explicitly_allowed_unauthenticated():
    keyed = Settings(_env_file=None, environment="production", api_keys={"k": "acme"})  # type: ignore[call-arg]
    assert keyed.authentication_configured
    open_ = Settings(_env_file=None, environment="production", allow_unauthenticated=True)  # type: ignore[call-arg]
    assert not open_.authentication_configured


def test_development_runs_without_authentication():
    assert not Settings(_env_file=None).authentication_configured  # type: ignore[call-arg]


def test_production_serves_metrics_only_behind_a_token():
    def served(**values: object) -> bool:
        return Settings(_env_file=None, api_keys={"k": "acme"}, **values).metrics_served  # type: ignore[call-arg]

    assert served()
    assert not served(environment="production")
    assert served(environment="production", metrics_token="s3cret")
    assert not served(environment="production", metrics_token="s3cret", metrics_enabled=False)


def test_json_items_must_hold_the_largest_write():
    # The edge would refuse a write the per-call limit allows.
    with pytest.raises(ValidationError, match="MAX_JSON_ITEMS"):
        Settings(_env_file=None, max_messages_per_call=2000, max_json_items=1000)
    assert Settings(_env_file=None, max_messages_per_call=2000, max_json_items=2000)


def test_indexed_metadata_keys_come_as_json_and_must_be_metadata_keys(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("DOCUMENTDB_INDEXED_METADATA_KEYS", '["topic", "project-id"]')
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.documentdb_indexed_metadata_keys == ["topic", "project-id"]
    with pytest.raises(ValidationError, match=r"metadata key 'a\.b'"):
        Settings(_env_file=None, documentdb_indexed_metadata_keys=["a.b"])  # type: ignore[call-arg]
