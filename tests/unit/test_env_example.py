""".env.example documents every setting with its default, and nothing that is not one except in
its docker-compose section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maas.settings import Settings
from tests.support.deploy_files import active_env_example_lines, env_example, env_text

SETTINGS = {name.upper(): field for name, field in Settings.model_fields.items()}


def test_every_setting_is_in_env_example():
    shown, _ = env_example()
    assert sorted(set(SETTINGS) - set(shown)) == []


def test_env_example_names_no_variable_that_is_not_a_setting_outside_its_compose_section():
    shown, _ = env_example()
    assert sorted(set(shown) - set(SETTINGS)) == []


def test_the_compose_section_names_no_setting():
    _, compose_only = env_example()
    assert sorted(set(compose_only) & set(SETTINGS)) == []


def test_each_value_shown_is_the_settings_default():
    shown, _ = env_example()
    wrong = {}
    for name, field in SETTINGS.items():
        default = field.get_default(call_default_factory=True)
        text = shown.get(name)
        if isinstance(default, dict | list):
            matches = text is not None and json.loads(text) == default
        else:
            matches = text == env_text(default)
        if not matches:
            wrong[name] = (text, env_text(default))
    assert wrong == {}


def test_an_unchanged_copy_changes_nothing():
    """Every variable is commented out, so `cp .env.example .env` configures nothing."""
    assert active_env_example_lines() == []


def test_uncommenting_a_value_shown_keeps_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The values are written as Settings reads them (empty ones mean "unset" and stay
    commented)."""
    shown, _ = env_example()
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in shown.items() if value))
    assert Settings(_env_file=env_file) == Settings(_env_file=None)  # type: ignore[call-arg]
