"""scripts/compose_secrets.py: writes every secret the stack demands, in a form each consumer
accepts, to a file only its owner reads; never changes a value already set; an API key on
request that MaaS accepts in production."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from maas.settings import Settings
from scripts.compose_secrets import COMPOSE_SECRETS, MAAS_SECRETS, main, values_set

ALL = set(COMPOSE_SECRETS) | set(MAAS_SECRETS)


def read_env(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {name: value for name, value in pairs if not name.startswith("#")}


def test_a_new_file_gets_every_secret_and_only_its_owner_reads_it(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    assert main(["--env-file", str(env_file)]) == 0
    values = read_env(env_file)
    assert set(values) == ALL
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}", values["LANGFUSE_ENCRYPTION_KEY"])
    for url_borne in ("DOCUMENTDB_PASSWORD", "LANGFUSE_DB_PASSWORD"):
        assert re.fullmatch(r"[A-Za-z0-9._~-]{16,}", values[url_borne]), url_borne
    password = values["LANGFUSE_INIT_USER_PASSWORD"]
    assert all(re.search(kind, password) for kind in ("[A-Za-z]", "[0-9]", "[^A-Za-z0-9]"))
    assert all(len(value) >= 8 for value in values.values())


def test_two_runs_make_different_secrets(tmp_path: Path) -> None:
    first, second = tmp_path / "a.env", tmp_path / "b.env"
    main(["--env-file", str(first)])
    main(["--env-file", str(second)])
    assert not set(read_env(first).values()) & set(read_env(second).values())


def test_values_already_set_are_kept_and_a_second_run_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "LLM_MODEL=gpt-4.1\nLANGFUSE_SALT=my-own-salt\n# LANGFUSE_DB_PASSWORD=commented\n"
        "DOCUMENTDB_PASSWORD=\n"
    )
    main(["--env-file", str(env_file)])
    text = env_file.read_text()
    assert text.startswith("LLM_MODEL=gpt-4.1\nLANGFUSE_SALT=my-own-salt\n")
    assert text.count("LANGFUSE_SALT=") == 1
    assert values_set(text) >= ALL  # the commented and the empty one are written
    main(["--env-file", str(env_file)])
    assert env_file.read_text() == text
    assert "nothing changed" in capsys.readouterr().out


def test_a_tenant_gets_an_api_key_that_production_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / ".env"
    main(["--env-file", str(env_file), "--tenant", "acme"])
    settings = Settings(_env_file=env_file, environment="production")  # type: ignore[call-arg]
    (key,) = settings.api_keys
    assert settings.api_keys[key] == "acme"
    assert key in capsys.readouterr().out, "the new key is shown once"
    assert settings.metrics_served
    main(["--env-file", str(env_file), "--tenant", "globex"])
    assert env_file.read_text().count("API_KEYS=") == 1, "API_KEYS set already: left alone"


def test_a_tenant_maas_would_refuse_is_refused_here(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--env-file", str(tmp_path / ".env"), "--tenant", "a:b"])
    assert not (tmp_path / ".env").exists()
