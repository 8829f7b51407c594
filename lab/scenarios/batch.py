"""`safeq-lab scenarios run`: the scenarios in a few labs side by side (`catalog-N`), each lab reset
to its baseline between scenarios; with --fresh each scenario in a lab of its own (`sc-ID`), made anew.

Each scenario is a child `safeq-lab --lab LAB scenarios run-one ID` process writing its outcome as
JSON; its own output goes to build/scenarios/ID.log. Labs are removed at the end (with --fresh when
their scenario ends), and all of them on Ctrl-C or any failure of the run itself.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from certkit.fsio import atomic_write

from .. import docker, labstate, project
from ..errors import LabError
from . import actions, runner
from .catalog import Scenario

FIRST_PORT = 2600
CHILD_MARGIN = 300  # past `up`'s own timeout: the break, the observations, the solution


def lab_name(scenario_id: str) -> str:
    return f"sc-{scenario_id}"[:40]


def slot_name(slot: int) -> str:
    """A lab that runs one scenario after another (`scenarios run` without --fresh)."""
    return f"catalog-{slot}"


def log_dir() -> Path:
    return project.root() / "build" / "scenarios"


def _ports(count: int) -> list[int]:
    """Distinct free ports, none another lab publishes."""
    taken = {labstate.current(lab).port for lab in labstate.names()}
    out, port = [], FIRST_PORT
    while len(out) < count and port < 65000:
        if port not in taken and labstate.bindable(port):
            out.append(port)
        port += 1
    return out


def by_shape(scenarios: Sequence[Scenario]) -> list[Scenario]:
    """Scenarios whose labs are built alike next to each other, the smallest groups first: a lab reset
    between scenarios serves the next one of its shape; a lab of another shape is made anew. In a group,
    those that change the image's files go last: no scenario follows them in their lab then."""
    groups: dict[tuple, list[Scenario]] = {}
    for scenario in scenarios:
        groups.setdefault((scenario.lab.intermediates, scenario.lab.policy), []).append(scenario)
    return [s for group in sorted(groups.values(), key=len)
            for s in sorted(group, key=lambda s: any(a.do in actions.IMAGE_CHANGES for a in s.breaks))]


@dataclass
class Child:
    scenario: Scenario
    proc: subprocess.Popen
    result: Path
    began: float
    lab: str = ""
    port: int = 0


def _spawn(scenario: Scenario, lab: str, port: int, solve: bool, timeout: int, reuse: bool) -> Child:
    folder = log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    result = folder / f"{scenario.id}.json"
    result.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "lab.cli", "--lab", lab, "scenarios", "run-one", scenario.id,
            "--port", str(port), "--timeout", str(timeout), "--result", str(result),
            *(["--solve"] if solve else []), *(["--reuse"] if reuse else [])]
    with open(folder / f"{scenario.id}.log", "w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=project.root(),
                                env={k: v for k, v in os.environ.items() if k not in ("SAFEQ_LAB", "SAFEQ_PKI_DIR")},
                                start_new_session=True)
    return Child(scenario, proc, result, time.monotonic(), lab, port)


def _collect(child: Child) -> dict:
    try:
        return json.loads(child.result.read_text())
    except (OSError, ValueError):
        tail = (log_dir() / f"{child.scenario.id}.log").read_text(errors="replace").strip().splitlines()[-3:]
        return {"id": child.scenario.id, "title": child.scenario.title, "ok": False, "phases": {},
                "seconds": round(time.monotonic() - child.began, 1),
                "error": f"the scenario's run ended without a result (exit {child.proc.returncode}): "
                         + " | ".join(tail)}


def _stop_all(children: list[Child]) -> None:
    for child in children:
        if child.proc.poll() is None:
            os.killpg(child.proc.pid, signal.SIGTERM)  # the child removes its lab on SIGTERM
    _wait_all(children)


def _wait_all(children: list[Child]) -> None:
    """Children that are removing their labs: given the time to (a removal is a few engine calls)."""
    for child in children:
        try:
            child.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(child.proc.pid, signal.SIGKILL)
            child.proc.wait(timeout=10)


def run_all(scenarios: Sequence[Scenario], *, jobs: int, solve: bool, timeout: int,
            progress: Callable[[dict], None], reuse: bool = False) -> list[dict]:
    """Every scenario's outcome (runner.Outcome.to_json), in the order given. ``reuse``: ``jobs`` labs,
    each reset between its scenarios (lab.scenarios.recycle) and removed at the end; else a lab per
    scenario, removed once its scenario ended."""
    docker.preflight()
    waiting = by_shape(scenarios) if reuse else list(scenarios)
    ports = _ports(min(jobs, len(waiting)) if reuse else len(waiting))
    if len(ports) < (min(jobs, len(waiting)) if reuse else len(waiting)):
        raise LabError(f"not enough free ports from {FIRST_PORT} up on 127.0.0.1 for the labs")
    slots = [(slot_name(i + 1), port) for i, port in enumerate(ports)] if reuse else []
    used = [lab for lab, _ in slots]
    running: list[Child] = []
    leaving: list[Child] = []  # outcome written, the child now ending (removing its lab, without reuse)
    done: dict[str, dict] = {}
    try:
        while waiting or running:
            while waiting and len(running) < jobs and (slots or not reuse):
                scenario = waiting.pop(0)
                lab, port = slots.pop(0) if reuse else (lab_name(scenario.id), ports.pop(0))
                running.append(_spawn(scenario, lab, port, solve, timeout, reuse))
            # A child whose outcome is written frees its place: its lab's removal overlaps the next scenario.
            for child in [c for c in running if c.result.exists() or c.proc.poll() is not None]:
                running.remove(child)
                leaving.append(child)
                done[child.scenario.id] = _collect(child)
                progress(done[child.scenario.id])
            # A reused lab takes its next scenario once the last one's process ended.
            for child in [c for c in leaving if reuse and c.proc.poll() is not None]:
                leaving.remove(child)
                slots.append((child.lab, child.port))
            for child in running:
                if time.monotonic() - child.began > timeout + CHILD_MARGIN:
                    raise LabError(f"scenario {child.scenario.id} took more than {timeout + CHILD_MARGIN} s; "
                                   f"see {log_dir() / (child.scenario.id + '.log')}")
            time.sleep(0.2)
    finally:
        _stop_all(running)
        _wait_all(leaving)
        # Reused labs all; else those of scenarios not done (a finished child removed its own).
        left = used if reuse else [lab_name(s.id) for s in scenarios if s.id not in done]
        with ThreadPoolExecutor(max(1, min(4, len(left)))) as pool:
            list(pool.map(runner.remove, left))
    return [done[s.id] for s in scenarios]


# -- reports ----------------------------------------------------------------------------------

def rows(outcome: dict) -> list[tuple[str, str, str, str]]:
    """(phase, expected, observed, ok) per check; one row for a run that broke off."""
    out = []
    for phase, results in outcome["phases"].items():
        # Before the fix ("broken") one failing check is enough to show that the fix is needed.
        still_broken = not all(r["ok"] for r in results)
        out += [(phase, r["check"], r["observed"],
                 "ok" if (still_broken if phase == "broken" else r["ok"]) else "MISMATCH") for r in results]
    if outcome.get("error"):
        out.append(("error", "the run", outcome["error"], "MISMATCH"))
    return out


def junit(outcomes: list[dict], path: Path) -> None:
    """One testcase per scenario, the observed reasons in its output."""
    suite = ET.Element("testsuite", name="scenarios", tests=str(len(outcomes)),
                       failures=str(sum(not o["ok"] for o in outcomes)),
                       time=f"{sum(o['seconds'] for o in outcomes):.1f}")
    for outcome in outcomes:
        case = ET.SubElement(suite, "testcase", classname="scenarios", name=outcome["id"], time=str(outcome["seconds"]))
        lines = [f"[{phase}] {expected} -> {observed} ({verdict})" for phase, expected, observed, verdict in rows(outcome)]
        if not outcome["ok"]:
            bad = [line for line in lines if line.endswith("(MISMATCH)")]
            ET.SubElement(case, "failure", message=(bad[0] if bad else "mismatch")[:500]).text = "\n".join(bad)
        ET.SubElement(case, "system-out").text = f"{outcome['title']}\n" + "\n".join(lines)
    atomic_write(path, ET.tostring(suite, encoding="utf-8", xml_declaration=True) + b"\n", 0o644)


def write_json(outcomes: list[dict], path: Path) -> None:
    atomic_write(path, json.dumps(outcomes, indent=2).encode() + b"\n", 0o644)
