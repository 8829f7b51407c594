"""`safeq-lab` says what to install when Docker is missing, not running, or only Compose v1."""
import subprocess

import pytest
from click.testing import CliRunner

from lab import docker
from lab.cli import main
from lab.errors import LabError


def fake_run(results):
    def run(argv, **kwargs):
        key = " ".join(argv[:3])
        rc, err = results.get(key, (0, ""))
        return subprocess.CompletedProcess(argv, rc, stdout="", stderr=err)
    return run


def test_no_docker_command(monkeypatch):
    monkeypatch.setattr(docker.shutil, "which", lambda name: None)
    with pytest.raises(LabError, match=r"^the docker command is not installed: install Docker Engine with Compose v2"):
        docker.preflight()


def test_daemon_not_running(monkeypatch):
    monkeypatch.setattr(docker.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(docker.subprocess, "run", fake_run(
        {"docker info --format": (1, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")}))
    with pytest.raises(LabError) as err:
        docker.preflight()
    assert str(err.value).startswith("the Docker daemon is not running or not reachable (Cannot connect to the Docker daemon")
    assert "start it, e.g. 'sudo systemctl start docker'" in str(err.value)


def test_compose_v1_only(monkeypatch):
    monkeypatch.setattr(docker.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(docker.subprocess, "run", fake_run({"docker compose version": (1, "unknown command")}))
    with pytest.raises(LabError, match=r"^Docker Compose v2 is missing \(only the old docker-compose v1 is installed\)"):
        docker.preflight()


def test_cli_prints_one_line_and_exits_2(monkeypatch):
    monkeypatch.setattr(docker.shutil, "which", lambda name: None)
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: the docker command is not installed: install Docker Engine with Compose v2 "
        "(on Debian run: sudo scripts/ensure-docker.sh)"]
