"""The doctor's tests' fixtures (no tests here): ``corp`` (support.handover's Corp, once per module)
and ``doctor``, the CLI run in-process."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from lab import cli
from support.handover import Case, Corp  # noqa: F401  (Case: re-exported for the doctor's tests)


@pytest.fixture(scope="module")
def corp(tmp_path_factory) -> Corp:
    return Corp(tmp_path_factory.mktemp("corp"))


@dataclass
class Outcome:
    exit_code: int
    report: dict
    stderr: str

    def codes(self, *severities: str) -> set[str]:
        return {f["code"] for f in self.report.get("findings", []) if not severities or f["severity"] in severities}

    def messages(self, code: str) -> list[str]:
        return [f["message"] for f in self.report["findings"] if f["code"] == code]


def doctor(*args: str, env: dict | None = None) -> Outcome:
    """``safeq-lab doctor ... --json`` in-process (one JRE validator for the whole run of tests)."""
    result = CliRunner().invoke(cli.main, ["doctor", *args, "--json"], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    report = json.loads(result.stdout) if result.stdout.strip() else {}
    return Outcome(result.exit_code, report, result.stderr)
