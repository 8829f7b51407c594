"""Docker Compose, as a subprocess (build, up, down, config, logs -f), and the preflight.

What asks the engine something or runs a command in a container is lab/engine.py (the Docker
SDK). Every call has a timeout: a daemon that hangs must end in an error that says so, not a
prompt that never returns.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Sequence

from . import engine, project
from .engine import DEFAULT, QUICK, SETUP_HINT, CommandTimeout, label  # the engine's timeouts, for compose too
from .errors import LabError


def run_timed(argv: Sequence[str], timeout: float, *, what: str | None = None, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run with a timeout that ends as a LabError naming the command."""
    try:
        return subprocess.run(list(argv), timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        raise CommandTimeout(what or label(argv), timeout) from None
    except FileNotFoundError:
        if argv[0] == "docker":
            raise LabError(f"the docker command is not installed: install Docker Engine with Compose v2 ({SETUP_HINT})") from None
        raise LabError(f"the {argv[0]} command is not installed: install it and try again") from None


def preflight() -> None:
    if shutil.which("docker") is None:
        raise LabError(f"the docker command is not installed: install Docker Engine with Compose v2 ({SETUP_HINT})")
    engine.ping(QUICK)  # the engine the SDK reaches: the one every later call uses
    compose = run_timed(["docker", "compose", "version", "--short"], QUICK, capture_output=True, text=True)
    if compose.returncode != 0:
        v1 = " (only the old docker-compose v1 is installed)" if shutil.which("docker-compose") else ""
        raise LabError(f"Docker Compose v2 is missing{v1}: install the docker compose plugin ({SETUP_HINT})")


def env() -> dict[str, str]:
    return dict(os.environ, SAFEQ_PKI_DIR=str(project.pki_dir()))


def compose_argv(*args: str) -> list[str]:
    # No -p: compose takes the project name from compose.yaml's `name:` (see lab.topology).
    return ["docker", "compose", "-f", str(project.root() / "compose.yaml"), *args]


def compose(*args: str, check: bool = True, capture: bool = False, input: str | None = None,
            timeout: float | None = DEFAULT) -> subprocess.CompletedProcess:
    """timeout=None only for `logs -f`, which runs until the user stops it."""
    argv = compose_argv(*args)
    what = label(["docker", "compose", *args])
    if timeout is None:
        proc = subprocess.run(argv, cwd=project.root(), env=env(), text=True, input=input, capture_output=capture)
    else:
        proc = run_timed(argv, timeout, what=what, cwd=project.root(), env=env(), text=True, input=input,
                         capture_output=capture)
    if check and proc.returncode != 0:
        detail = (proc.stderr or "").strip().splitlines()[-1:] if capture else []
        raise LabError(f"docker compose {' '.join(args[:2])} failed" + (f": {detail[0]}" if detail else ""))
    return proc


def run(argv: Sequence[str], timeout: float, check: bool = True) -> subprocess.CompletedProcess:
    proc = run_timed(argv, timeout, cwd=project.root(), env=env())
    if check and proc.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` failed with exit code {proc.returncode}")
    return proc
