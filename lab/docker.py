"""Docker Compose, as a subprocess (build, up, down, config, logs -f), and the preflight.

What asks the engine something or runs a command in a container is lab/engine.py (the Docker
SDK). Every call has a timeout: a daemon that hangs must end in an error that says so, not a
prompt that never returns. `quiet` keeps a command's output for the caller (`up` folds compose's
per-container lines) and hands it over with a failure, so nothing is lost.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from . import engine, labstate, project
from .engine import DEFAULT, QUICK, SETUP_HINT, CommandTimeout, label  # the engine's timeouts, for compose too
from .errors import LabError

SCALE_VAR = "SAFEQ_LAB_SCALE"  # in a lab's state: the compose file of its extra gateways and clients


class CommandFailed(LabError):
    """A command that failed; ``output``: what it printed, when that was kept rather than shown."""

    def __init__(self, message: str, output: str = ""):
        super().__init__(message)
        self.output = output


def _text(data) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


def run_timed(argv: Sequence[str], timeout: float, *, what: str | None = None, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run with a timeout that ends as a LabError naming the command (with what it
    printed until then, when that was kept)."""
    try:
        return subprocess.run(list(argv), timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired as exc:
        err = CommandTimeout(what or label(argv), timeout)
        err.output = _text(exc.output)
        raise err from None
    except FileNotFoundError:
        if argv[0] == "docker":
            raise LabError(f"the docker command is not installed: install Docker Engine with Compose v2 ({SETUP_HINT})") from None
        raise LabError(f"the {argv[0]} command is not installed: install it and try again") from None


def _streams(capture: bool, quiet: bool) -> dict:
    """capture: stdout and stderr apart, to read; quiet: both as one, in order, kept instead of shown."""
    if capture:
        return {"capture_output": True}
    return {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT} if quiet else {}


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def preflight() -> None:
    if shutil.which("docker") is None:
        raise LabError(f"the docker command is not installed: install Docker Engine with Compose v2 ({SETUP_HINT})")
    engine.ping(QUICK)  # the engine the SDK reaches: the one every later call uses
    compose = run_timed(["docker", "compose", "version", "--short"], QUICK, capture_output=True, text=True)
    if compose.returncode != 0:
        v1 = " (only the old docker-compose v1 is installed)" if shutil.which("docker-compose") else ""
        raise LabError(f"Docker Compose v2 is missing{v1}: install the docker compose plugin ({SETUP_HINT})")


def env() -> dict[str, str]:
    """compose.yaml's variables for the lab `up` started last (lab.labstate)."""
    return dict(os.environ, **labstate.current().compose_env())


def compose_files(root: Path, env: dict[str, str]) -> list[str]:
    """compose.yaml, and the extra gateways and clients `up --gateways/--clients` wrote (lab.scale)."""
    extra = env.get(SCALE_VAR)
    return ["-f", str(root / "compose.yaml"), *(["-f", extra] if extra else [])]


def compose_argv(*args: str) -> list[str]:
    # No -p: compose takes the project name from compose.yaml's `name:` (see lab.topology).
    return ["docker", "compose", *compose_files(project.root(), env()), *args]


def compose(*args: str, check: bool = True, capture: bool = False, quiet: bool = False, input: str | None = None,
            timeout: float | None = DEFAULT) -> subprocess.CompletedProcess:
    """timeout=None only for `logs -f`, which runs until the user stops it. quiet: its output is kept in
    the result's stdout (for the caller to fold), and a failure carries it: nothing is lost."""
    argv = compose_argv(*args)
    what = label(["docker", "compose", *args])
    streams = _streams(capture, quiet)
    if timeout is None:
        proc = subprocess.run(argv, cwd=project.root(), env=env(), text=True, input=input, **streams)
    else:
        proc = run_timed(argv, timeout, what=what, cwd=project.root(), env=env(), text=True, input=input, **streams)
    if check and proc.returncode != 0:
        detail = _last_line(proc.stderr if capture else proc.stdout if quiet else "")
        raise CommandFailed(f"docker compose {' '.join(args[:2])} failed" + (f": {detail}" if detail else ""),
                            (proc.stdout or "") if quiet else "")
    return proc


def run(argv: Sequence[str], timeout: float, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
    """quiet: as for compose()."""
    proc = run_timed(argv, timeout, cwd=project.root(), env=env(), text=True, **_streams(False, quiet))
    if check and proc.returncode != 0:
        detail = _last_line(proc.stdout) if quiet else ""
        raise CommandFailed(f"`{' '.join(argv)}` failed with exit code {proc.returncode}"
                            + (f": {detail}" if detail else ""), (proc.stdout or "") if quiet else "")
    return proc
