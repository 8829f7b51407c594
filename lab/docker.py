"""Docker and Compose, as subprocesses; preflight errors say what to install."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Sequence

from . import project
from .errors import LabError

SETUP_HINT = "on Debian run: sudo scripts/ensure-docker.sh"


def preflight() -> None:
    if shutil.which("docker") is None:
        raise LabError(f"the docker command is not installed: install Docker Engine with Compose v2 ({SETUP_HINT})")
    info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if info.returncode != 0:
        raise LabError(f"the Docker daemon is not running or not reachable ({info.stderr.strip().splitlines()[-1] if info.stderr.strip() else 'docker info failed'}): "
                       f"start it, e.g. 'sudo systemctl start docker' ({SETUP_HINT})")
    compose = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True)
    if compose.returncode != 0:
        v1 = " (only the old docker-compose v1 is installed)" if shutil.which("docker-compose") else ""
        raise LabError(f"Docker Compose v2 is missing{v1}: install the docker compose plugin ({SETUP_HINT})")


def env() -> dict[str, str]:
    return dict(os.environ, SAFEQ_PKI_DIR=str(project.pki_dir()))


def compose_argv(*args: str) -> list[str]:
    root = project.root()
    return ["docker", "compose", "-f", str(root / "compose.yaml"), "-p", project.COMPOSE_PROJECT, *args]


def compose(*args: str, check: bool = True, capture: bool = False, input: str | None = None,
            timeout: float | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(compose_argv(*args), cwd=project.root(), env=env(), text=True, input=input,
                          capture_output=capture, timeout=timeout)
    if check and proc.returncode != 0:
        detail = (proc.stderr or "").strip().splitlines()[-1:] if capture else []
        raise LabError(f"docker compose {' '.join(args[:2])} failed" + (f": {detail[0]}" if detail else ""))
    return proc


def exec_sh(service: str, command: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run a shell command inside a service, as a person at its console would."""
    proc = compose("exec", "-T", service, "sh", "-c", command, check=False, capture=True, input=input)
    if check and proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip()
        raise LabError(f"in {service}: `{command}` failed: {out.splitlines()[-1] if out else proc.returncode}")
    return proc


def ps() -> list[dict]:
    proc = compose("ps", "--all", "--format", "json", capture=True)
    text = proc.stdout.strip()
    if not text:
        return []
    # Compose prints one JSON object per line (newer) or one array (older).
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def run(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(argv), cwd=project.root(), env=env())
    if check and proc.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` failed with exit code {proc.returncode}")
    return proc
