"""The scenario catalog in `make test`, run as a trainer runs it: `safeq-lab scenarios run --all`
(two labs side by side, each reset to how `up` left it between scenarios, exercises fixed by their typed
solution), then one test per scenario with what it expected and what its lab showed."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lab.scenarios import batch, catalog

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "build" / "scenarios"
IDS = list(catalog.load())


@pytest.fixture(scope="session")
def run():
    REPORTS.mkdir(parents=True, exist_ok=True)
    junit, report = REPORTS / "report.xml", REPORTS / "report.json"
    for path in (junit, report):
        path.unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, "-m", "lab.cli", "scenarios", "run", "--all", "--junit", str(junit),
                           "--json", str(report)], cwd=ROOT, capture_output=True, text=True, timeout=3600)
    # 0: all as expected, 1: a mismatch (the scenario's own test says which); 2 would be a broken run.
    assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc, {o["id"]: o for o in json.loads(report.read_text())}, ET.parse(junit).getroot()


@pytest.mark.parametrize("scenario_id", IDS)
def test_scenario(run, scenario_id):
    outcome = run[1][scenario_id]
    shown = "\n".join(f"[{phase}] expected {want}\n        observed {seen}  ({verdict})"
                      for phase, want, seen, verdict in batch.rows(outcome))
    assert outcome["ok"], f"{scenario_id}:\n{shown}\nlog: {REPORTS / (scenario_id + '.log')}"
    if catalog.load()[scenario_id].exercise:  # the fix was proven both ways
        assert {"broken", "fixed"} <= set(outcome["phases"]), outcome["phases"].keys()


def test_exit_status_and_junit_report_match_the_outcomes(run):
    proc, outcomes, suite = run
    assert proc.returncode == (0 if all(o["ok"] for o in outcomes.values()) else 1)
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == IDS
    assert int(suite.get("failures")) == sum(not o["ok"] for o in outcomes.values())
    for case in cases:
        out = case.find("system-out").text
        for result in outcomes[case.get("name")]["phases"]["expect"]:
            assert result["observed"] in out  # the observed reason, in the product's words


def test_labs_are_reset_between_scenarios_and_a_lab_made_anew_says_why(run):
    made = {scenario_id: outcome["lab"] for scenario_id, outcome in run[1].items()}
    assert all(how == "recycled" or how.startswith("fresh: ") for how in made.values()), made
    # Each lab's first scenario, and those of another shape, are made anew; most are reset.
    assert sum(how == "recycled" for how in made.values()) >= len(made) // 2, made
