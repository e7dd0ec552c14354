"""`maas serve`'s metrics directory: several workers share a fresh one, removed at exit; one
worker keeps its metrics in memory; an operator's own directory is used as it is."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from maas.api_keys import hash_key
from maas.cli import main, shared_metrics_dir

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


@pytest.fixture(autouse=True)
def _no_multiproc_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_DIR, raising=False)


def test_several_workers_share_a_fresh_private_directory_removed_at_exit() -> None:
    with shared_metrics_dir(workers=2) as path:
        assert path is not None
        assert os.environ[MULTIPROC_DIR] == path
        assert list(Path(path).iterdir()) == []
        assert stat.S_IMODE(Path(path).stat().st_mode) == 0o700
        (Path(path) / "counter_1.db").write_bytes(b"")
    assert not Path(path).exists()
    assert MULTIPROC_DIR not in os.environ


def test_each_run_gets_a_new_directory() -> None:
    with shared_metrics_dir(workers=2) as first, shared_metrics_dir(workers=2) as second:
        assert first == second, "the variable already set is honoured"
    with shared_metrics_dir(workers=2) as third:
        assert third != first


def test_one_worker_keeps_its_metrics_in_memory() -> None:
    with shared_metrics_dir(workers=1) as path:
        assert path is None
        assert MULTIPROC_DIR not in os.environ


def test_an_operators_directory_is_used_and_neither_wiped_nor_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MULTIPROC_DIR, str(tmp_path))
    (tmp_path / "counter_1.db").write_bytes(b"")
    with shared_metrics_dir(workers=2) as path:
        assert path == str(tmp_path)
        assert (tmp_path / "counter_1.db").exists()
    assert (tmp_path / "counter_1.db").exists()
    assert os.environ[MULTIPROC_DIR] == str(tmp_path)


def test_hash_key_prints_the_api_keys_entry_of_a_key_read_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("sk-abc\n"))
    main(["hash-key"])
    printed = capsys.readouterr().out.strip()
    assert printed == hash_key("sk-abc")
    assert "sk-abc" not in printed


def test_hash_key_refuses_an_empty_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    with pytest.raises(SystemExit, match="no key"):
        main(["hash-key"])
