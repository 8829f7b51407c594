"""`safeq-lab scenarios ...` and `safeq-lab exercise ...`: thin commands over the catalog and runner."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path

import click

from pki.cli import reports_errors as _reports_errors

from .. import labstate
from ..errors import LabError
from . import batch, catalog, runner

EXERCISE_TIMEOUT = 600


def reports_errors(func):
    return _reports_errors(func, LabError)


def _interrupted(signum, frame):
    raise KeyboardInterrupt  # SIGTERM from `scenarios run`: the finally clauses remove the lab


@click.group(name="scenarios")
def scenarios() -> None:
    """The scenario catalog: how the trusted setup breaks, and what the lab then shows."""


@scenarios.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def list_cmd(as_json: bool) -> None:
    """Every scenario: id, title, and whether it is an exercise (a break with a fix to find)."""
    found = catalog.load()
    if as_json:
        click.echo(json.dumps([{"id": s.id, "title": s.title, "exercise": s.exercise, "ticket": s.ticket,
                                "file": str(s.file.relative_to(catalog.folder().parent))} for s in found.values()],
                              indent=2))
        return
    width = max(len(i) for i in found)
    for s in found.values():
        click.echo(f"{s.id:<{width}}  {'exercise' if s.exercise else 'demo    '}  {s.title}")


def _print_outcome(outcome: dict) -> None:
    mark = "ok  " if outcome["ok"] else "FAIL"
    click.echo(f"{mark} {outcome['id']} ({outcome['seconds']:.0f} s)")
    for phase, expected, observed, verdict in batch.rows(outcome):
        click.echo(f"       [{phase}] expected {expected}")
        click.echo(f"               observed {observed}" + ("" if verdict == "ok" else "   <-- MISMATCH"))


@scenarios.command(name="run")
@click.argument("ids", nargs=-1)
@click.option("--all", "run_all", is_flag=True, help="Every scenario of the catalog.")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False, path_type=Path), help="JUnit XML report.")
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path), help="JSON report.")
@click.option("--solve/--no-solve", default=True, show_default=True,
              help="Exercises: also prove the fix (the fixed checks fail, the solution is typed, they pass).")
@click.option("--jobs", "-j", default=2, show_default=True, type=click.IntRange(1, 8),
              help="Labs side by side (each about 230 MiB; 2 suit a 2-core machine).")
@click.option("--timeout", default=600, show_default=True, type=click.IntRange(min=1), metavar="S",
              help="Seconds each lab's `up` may take.")
@click.option("--fresh", is_flag=True,
              help="Each scenario in a lab made anew (slower); by default a lab is reset to how `up` left it "
                   "between scenarios, and made anew when the reset cannot be proven.")
@reports_errors
def run_cmd(ids: tuple[str, ...], run_all: bool, junit_file: Path | None, json_file: Path | None, solve: bool,
            jobs: int, timeout: int, fresh: bool) -> None:
    """Run scenarios, each from a lab as `up` leaves it: expected vs observed; exit 1 on any mismatch."""
    signal.signal(signal.SIGTERM, _interrupted)  # stopped like Ctrl-C: every lab started is removed
    found = catalog.load()
    if run_all == bool(ids):
        raise click.UsageError("name scenario ids, or --all")
    chosen = list(found.values()) if run_all else catalog.pick(found, list(ids))
    from .. import images
    from ..deadline import Deadline
    from ..views import Phases
    images.build_all(Phases(False), Deadline(900, what="image build", hint="run `safeq-lab build` first"))
    outcomes = batch.run_all(chosen, jobs=jobs, solve=solve, timeout=timeout, progress=_print_outcome,
                             reuse=not fresh)
    if junit_file:
        batch.junit(outcomes, junit_file)
    if json_file:
        batch.write_json(outcomes, json_file)
    failed = [o["id"] for o in outcomes if not o["ok"]]
    click.echo(f"{len(outcomes) - len(failed)} of {len(outcomes)} scenarios as expected"
               + (f"; mismatch: {', '.join(failed)}" if failed else ""))
    sys.exit(1 if failed else 0)


@scenarios.command(name="run-one", hidden=True)
@click.argument("scenario_id")
@click.option("--port", type=int)
@click.option("--timeout", type=int, default=600)
@click.option("--result", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--solve", is_flag=True)
@click.option("--reuse", is_flag=True)
@reports_errors
def run_one(scenario_id: str, port: int | None, timeout: int, result: Path, solve: bool, reuse: bool) -> None:
    """One scenario in this process's lab, its outcome written to RESULT; the lab removed after (with
    --reuse kept for the next scenario, reset to its baseline then; removed when interrupted)."""
    scenario = catalog.pick(catalog.load(), [scenario_id])[0]
    signal.signal(signal.SIGTERM, _interrupted)
    ended = False
    try:
        outcome = runner.run(scenario, timeout=timeout, port=port, solve_it=solve, reuse=reuse)
        batch.write_json(outcome.to_json(), result)
        ended = True
    finally:
        if not (reuse and ended):
            runner.remove()


@click.group(name="exercise")
def exercise() -> None:
    """A lab brought up broken for a trainee: start, hint, check, reset (`--lab NAME` per student)."""


@exercise.command(name="start")
@click.argument("scenario_id")
@click.option("--force", is_flag=True, help="Replace a PKI in this lab that no exercise made.")
@click.option("--port", type=click.IntRange(1, 65535), help="The primary's port on 127.0.0.1 (default: a free one).")
@reports_errors
def start_cmd(scenario_id: str, force: bool, port: int | None) -> None:
    """Bring the lab up already broken and print the ticket (nothing else)."""
    scenario = catalog.pick(catalog.load(), [scenario_id])[0]
    if not scenario.exercise:
        raise LabError(f"{scenario_id} is a demo scenario, not an exercise (nothing to fix): "
                       "`safeq-lab scenarios list` marks the exercises")
    runner.require_named_lab()
    log = labstate.folder() / runner.START_LOG
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out, _redirected(out):
        # reuse: a lab an exercise brought up before is put back to how `up` left it (seconds, not a new lab)
        results = runner.start(scenario, timeout=EXERCISE_TIMEOUT, port=port, force=force, build=True, reuse=True)
    if not all(r.ok for r in results):
        raise LabError(f"the lab did not show the break as the scenario expects ({log}): "
                       + "; ".join(f"{r.check.describe()}: {r.observed}" for r in results if not r.ok))
    click.echo(f"Ticket ({labstate.name()}, primary on 127.0.0.1:{labstate.current().port}):\n{scenario.ticket}")


@contextlib.contextmanager
def _redirected(stream):
    """`up`'s progress (ours and compose's, on file descriptors 1 and 2) goes to the exercise's log:
    the trainee sees the ticket only."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(stream.fileno(), 1)
        os.dup2(stream.fileno(), 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def _current() -> catalog.Scenario:
    runner.require_named_lab()
    return catalog.pick(catalog.load(), [runner.current_id()])[0]


@exercise.command(name="hint")
@reports_errors
def hint_cmd() -> None:
    """A hint for the exercise this lab runs."""
    click.echo(_current().hint)


@exercise.command(name="check")
@reports_errors
def check_cmd() -> None:
    """Exit 0 once the lab shows the fix; else exit 1 with what still fails, in the product's words."""
    scenario = _current()
    failing = [r for r in runner.check(scenario) if not r.ok]
    if not failing:
        click.echo(f"fixed: {scenario.title}")
        return
    click.echo(f"not fixed yet: {scenario.title}")
    for r in failing:
        click.echo(f"  expected {r.check.describe()}\n  observed {r.observed}")
    sys.exit(1)


@exercise.command(name="reset")
@reports_errors
def reset_cmd() -> None:
    """The exercise from the start again: fresh PKI and volumes, broken as at `start`; prints the ticket."""
    scenario = _current()
    ctx = click.get_current_context()
    ctx.invoke(start_cmd, scenario_id=scenario.id, force=False, port=None)
