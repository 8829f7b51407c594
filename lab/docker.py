"""Docker and Compose, as subprocesses; preflight errors say what to install.

Every call has a timeout: a daemon that hangs must end in an error that says so, not a
prompt that never returns.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from typing import Sequence

from . import project
from .errors import LabError

SETUP_HINT = "on Debian run: sudo scripts/ensure-docker.sh"
QUICK = 20      # seconds for a command that only asks the daemon something
DEFAULT = 60    # seconds for one that changes containers, or execs into one
HANG_HINT = "check that Docker responds (`docker info`), see `safeq-lab logs`, and try again"


class CommandTimeout(LabError):
    def __init__(self, label: str, seconds: float, hint: str = HANG_HINT):
        super().__init__(f"`{label}` did not answer in {seconds:.0f} s: {hint}")
        self.seconds = seconds


def label(argv: Sequence[str], limit: int = 100) -> str:
    text = shlex.join(argv)
    return text if len(text) <= limit else text[:limit - 1] + "…"


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
    info = run_timed(["docker", "info", "--format", "{{.ServerVersion}}"], QUICK, capture_output=True, text=True)
    if info.returncode != 0:
        raise LabError(f"the Docker daemon is not running or not reachable ({info.stderr.strip().splitlines()[-1] if info.stderr.strip() else 'docker info failed'}): "
                       f"start it, e.g. 'sudo systemctl start docker' ({SETUP_HINT})")
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


def exec_sh(service: str, command: str, input: str | None = None, check: bool = True,
            timeout: float = DEFAULT) -> subprocess.CompletedProcess:
    """Run a shell command inside a service, as a person at its console would."""
    proc = compose("exec", "-T", service, "sh", "-c", command, check=False, capture=True, input=input, timeout=timeout)
    if check and proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip()
        raise LabError(f"in {service}: `{command}` failed: {out.splitlines()[-1] if out else proc.returncode}")
    return proc


def ps(timeout: float = QUICK) -> list[dict]:
    proc = compose("ps", "--all", "--format", "json", capture=True, timeout=timeout)
    text = proc.stdout.strip()
    if not text:
        return []
    # Compose prints one JSON object per line (newer) or one array (older).
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def run(argv: Sequence[str], timeout: float, check: bool = True) -> subprocess.CompletedProcess:
    proc = run_timed(argv, timeout, cwd=project.root(), env=env())
    if check and proc.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` failed with exit code {proc.returncode}")
    return proc
