"""`safeq-lab` says what to install when Docker is missing, not running, or only Compose v1."""
import subprocess

import pytest
from click.testing import CliRunner

from lab import docker, engine
from lab.cli import main
from lab.errors import LabError

NOT_REACHABLE = ("the Docker daemon is not running or not reachable (Cannot connect to the Docker daemon at "
                 "unix://{sock}: No such file or directory): start it, e.g. 'sudo systemctl start docker' "
                 "(on Debian run: sudo scripts/ensure-docker.sh)")


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


@pytest.fixture
def no_daemon(monkeypatch, tmp_path):
    """The docker command is there; the engine's socket is not (the SDK, not a fake, meets that)."""
    monkeypatch.setattr(docker.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(engine, "_api_version", None)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'docker.sock'}")
    return tmp_path / "docker.sock"


def test_daemon_not_running(no_daemon):
    with pytest.raises(LabError) as err:
        docker.preflight()
    assert str(err.value) == NOT_REACHABLE.format(sock=no_daemon)


def test_an_engine_call_without_preflight_says_the_same(no_daemon, monkeypatch):
    monkeypatch.setattr(engine, "project", lambda: "safeq-lab")
    result = CliRunner().invoke(main, ["account", "show"])  # no preflight: the engine call itself
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["error: " + NOT_REACHABLE.format(sock=no_daemon)]


def test_compose_v1_only(monkeypatch):
    monkeypatch.setattr(docker.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(engine, "ping", lambda timeout: None)
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


def test_cli_unreachable_engine_is_one_line(no_daemon):
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == ["error: " + NOT_REACHABLE.format(sock=no_daemon)]
