"""Fail when pytest skipped any test of the named modules (read from a JUnit XML report).

Tests that need Docker skip themselves where it is missing; in CI, where Docker is there, a skip
means the tests silently did not run.

    python .github/scripts/assert_not_skipped.py report.xml test_documentdb_local
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def skipped_cases(report: str, modules: list[str]) -> tuple[int, list[str]]:
    """How many test cases of `modules` ran, and the names of those that were skipped."""
    # A test is named by its classname (module) and name; a module skipped as a whole is one
    # case with the module as its name.
    cases = [
        (f"{case.get('classname', '')}::{case.get('name', '')}", case)
        for case in ET.parse(report).iter("testcase")  # noqa: S314 (our own pytest report)
    ]
    cases = [(name, case) for name, case in cases if any(module in name for module in modules)]
    skipped = [
        f"{name}: {skip.text or skip.get('message', '')}"
        for name, case in cases
        if (skip := case.find("skipped")) is not None
    ]
    return len(cases), skipped


def main() -> int:
    report, *modules = sys.argv[1:]
    count, skipped = skipped_cases(report, modules)
    if count == 0:
        print(f"no tests of {', '.join(modules)} in {report}")
        return 1
    if skipped:
        print("skipped, but expected to run here:", *skipped, sep="\n  ")
        return 1
    print(f"{count} tests of {', '.join(modules)} ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
