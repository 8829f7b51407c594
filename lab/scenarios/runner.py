"""One scenario in this process's lab: bring it up broken, observe, and (for a run) fix it as typed.

A scenario's lab is always a named one (`--lab NAME`) with a PKI of its own, made fresh for the
scenario, or put back to how `up` left it for a scenario before (a catalog run's lab, an exercise's;
lab.scenarios.recycle): the default lab and its PKI are never touched. ``exercise.json`` in the lab's folder
records which scenario the lab runs, so that `exercise hint|check|reset` know it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pki
from certkit.fsio import StateError, read_json, write_json

from .. import docker, engine, labstate, project, up as lab_up
from ..errors import LabError
from ..views import say
from . import actions, observe, recycle
from .catalog import Scenario
from .checks import Result

STATE_FILE = "exercise.json"
START_LOG = "exercise-start.log"  # `up`'s progress at `exercise start`
EXERCISE_FILES = (STATE_FILE, START_LOG)
EXPECT_TIMEOUT = 60   # seconds for a break to show (reconnect backoff, OCSP cache, a restart)
FIXED_TIMEOUT = 60
COMMAND_TIMEOUT = 300


@dataclass
class Outcome:
    """What a run saw: each phase's check results; ``error`` when the run itself could not go on."""
    scenario: str
    title: str
    phases: dict[str, list[Result]] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per part of the run, in order
    lab: str | None = None  # how its lab was made: "recycled", or "fresh: why"

    @property
    def ok(self) -> bool:
        if self.error is not None or not self.phases.get("expect"):
            return False
        # "broken" holds the fixed checks seen before the fix: at least one must fail there.
        broken = self.phases.get("broken")
        return (all(r.ok for name, rs in self.phases.items() if name != "broken" for r in rs)
                and (broken is None or not all(r.ok for r in broken)))

    def to_json(self) -> dict:
        return {"id": self.scenario, "title": self.title, "ok": self.ok, "error": self.error, "lab": self.lab,
                "seconds": round(self.seconds, 1), "timings": {k: round(v, 1) for k, v in self.timings.items()},
                "phases": {name: [{"check": r.check.describe(), "ok": r.ok, "observed": r.observed} for r in rs]
                           for name, rs in self.phases.items()}}


def require_named_lab() -> str:
    lab = labstate.name()
    if lab == labstate.DEFAULT:
        raise LabError("scenarios and exercises run in a lab of their own, never the default one: "
                       "`safeq-lab --lab student-01 exercise start ID`")
    return lab


def state_path() -> Path:
    return labstate.folder() / STATE_FILE


def current_id() -> str:
    try:
        data = read_json(state_path())
    except StateError:
        raise LabError(f"{state_path()} is damaged: delete it, or start the exercise again with "
                       f"`safeq-lab --lab {labstate.name()} exercise start ID`") from None
    if not isinstance(data, dict) or "id" not in data:
        raise LabError(f"lab {labstate.name()} runs no exercise: start one with "
                       f"`safeq-lab --lab {labstate.name()} exercise start ID`")
    return data["id"]


def check_replaceable(force: bool) -> None:
    """A lab whose PKI no exercise made (a student's own `up`) is kept, volumes and all, unless forced."""
    pki_dir = project.pki_dir()
    if pki.exists(pki_dir) and not state_path().exists() and not force:
        raise LabError(f"lab {labstate.name()} has a PKI of its own in {pki_dir} that no exercise made: "
                       "an exercise replaces it and the lab's volumes; pick another --lab name, or add --force")


def exercise_of(lab: str) -> str | None:
    """The exercise a lab runs, for `safeq-lab labs` (None: none)."""
    try:
        data = read_json(labstate.folder(lab) / STATE_FILE)
    except StateError:
        return "(exercise.json damaged)"
    return data.get("id") if isinstance(data, dict) else None


def fresh_pki(scenario: Scenario, force: bool) -> Path:
    """The lab's PKI made anew in the scenario's shape."""
    check_replaceable(force)
    pki_dir = project.pki_dir()
    pki.init_pki(pki_dir, intermediates=scenario.lab.intermediates, force=True)
    return pki_dir


def start(scenario: Scenario, *, timeout: float, port: int | None = None, force: bool = False,
          build: bool = False, lean: bool = False, timings: dict[str, float] | None = None,
          reuse: bool = False, made: list[str] | None = None) -> list[Result]:
    """Fresh volumes and PKI, the doc's steps, every service healthy, then the break; the expected
    outcome observed (returned; a break that does not show within the time is the caller's to judge).
    ``lean``: a catalog run's lab, which no trainee looks at (lab.up.run). ``timings``: each part's seconds.
    ``reuse``: a lab that ran a scenario of the same shape before is put back to its baseline instead
    (lab.scenarios.recycle); what ``made`` the lab, "recycled" or "fresh: why", is appended to it."""
    clock = _Clock(timings if timings is not None else {})
    require_named_lab()
    check_replaceable(force)
    docker.preflight()
    shape = {"intermediates": scenario.lab.intermediates, "policy": scenario.lab.policy, "port": port}
    if build and reuse:  # images made anew first: a baseline of older images is not come back to
        from .. import images
        from ..deadline import Deadline
        from ..views import Phases
        images.build_all(Phases(False), Deadline(timeout, what="image build"))
        build = False
    why = recycle.restore(shape, timeout) if reuse else "a fresh lab asked for"
    say(f"lab {labstate.name()}: " + ("reset to how `up` left it" if why is None else f"made anew ({why})"))
    if why is None:
        write_json(state_path(), {"id": scenario.id})
        clock.lap("recycle")
    else:
        recycle.forget()
        engine.discard(engine.project())  # what this lab ran before: replaced, not stopped with grace
        fresh_pki(scenario, force)
        write_json(state_path(), {"id": scenario.id})
        clock.lap("fresh PKI")
        lab_up.run(scenario.lab.policy, build, timeout, port=port, lean=lean)
        clock.lap("up")
        if reuse:
            recycle.save(shape)
            clock.lap("save")
    if made is not None:
        made.append("recycled" if why is None else f"fresh: {why}")
    for action in scenario.breaks:
        actions.apply(action)
    clock.lap("break")
    seen = observe.wait(scenario.expect, EXPECT_TIMEOUT)
    clock.lap("expect")
    return seen


class _Clock:
    """Seconds since the last lap, recorded under each lap's name."""

    def __init__(self, into: dict[str, float]):
        self.into, self.last = into, time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.into[name] = now - self.last
        self.last = now


def check(scenario: Scenario, timeout: float = 0) -> list[Result]:
    """The fixed checks against the lab as it is (``timeout``: wait for them that long)."""
    return observe.wait(scenario.fixed, timeout) if timeout else observe.look(scenario.fixed)


def solve(scenario: Scenario) -> list[tuple[str, int, str]]:
    """The solution's commands typed in a shell on the host, in this lab; (command, exit, output) each."""
    env = {k: v for k, v in os.environ.items() if k != "SAFEQ_PKI_DIR"}  # as a trainee's shell: the lab name only
    env[labstate.NAME_VAR] = labstate.name()
    bindir = str(Path(sys.executable).parent)  # safeq-lab of this installation first
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    done = []
    for command in scenario.solution:
        proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=project.root(), env=env,
                              timeout=COMMAND_TIMEOUT)
        done.append((command, proc.returncode, (proc.stdout + proc.stderr).strip()))
        if proc.returncode != 0:
            break
    return done


def run(scenario: Scenario, *, timeout: float, port: int | None, solve_it: bool, reuse: bool = False) -> Outcome:
    """The whole scenario, judged: expect after the break; with ``solve_it`` the fixed checks fail
    first, then hold after the solution was typed. ``reuse``: see start()."""
    outcome = Outcome(scenario.id, scenario.title)
    began = time.monotonic()
    made: list[str] = []
    try:
        outcome.phases["expect"] = start(scenario, timeout=timeout, port=port, force=True, lean=True,
                                         timings=outcome.timings, reuse=reuse, made=made)
        if solve_it and scenario.exercise:
            clock = _Clock(outcome.timings)
            outcome.phases["broken"] = check(scenario)
            for command, code, output in solve(scenario):
                if code != 0:
                    raise LabError(f"solution step `{command}` failed (exit {code}): {output[-300:]}")
            clock.lap("solution")
            outcome.phases["fixed"] = check(scenario, FIXED_TIMEOUT)
            clock.lap("fixed")
    except LabError as exc:
        outcome.error = str(exc)
    outcome.lab = made[0] if made else None
    outcome.seconds = time.monotonic() - began
    return outcome


def remove(lab: str | None = None) -> None:
    """A scenario's lab gone (this process's, or ``lab``, whose compose project is its name): containers,
    network, volumes, its folder (PKI included). Runs in `finally`: a lab the engine cannot remove is
    said, not raised over the scenario's own outcome or error."""
    try:
        engine.discard(lab or engine.project())
    except LabError as exc:
        print(f"warning: lab {lab or labstate.name()} was not all removed ({exc}): "
              f"`safeq-lab --lab {lab or labstate.name()} down --volumes` removes it", file=sys.stderr)
    shutil.rmtree(labstate.folder(lab), ignore_errors=True)
