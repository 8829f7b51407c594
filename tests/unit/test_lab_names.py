"""`safeq-lab --lab NAME`: labs side by side, each its own compose project, network, volumes, port and state."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab import labstate, project, topology
from lab.cli import main
from lab.errors import LabError

ROOT = Path(__file__).resolve().parents[2]


def test_compose_names_the_project_network_and_port_after_the_lab():
    if shutil.which("docker") is None or subprocess.run(["docker", "compose", "version"], capture_output=True,
                                                        timeout=20).returncode != 0:
        pytest.skip("docker compose is not installed")
    config = topology._config(ROOT, dict(os.environ, SAFEQ_LAB_FILES="/srv/pki", SAFEQ_LAB_NAME="student-07",
                                         SAFEQ_PRIMARY_PORT="2567"))
    topo = topology.parse(config, Path("/srv/pki"))
    assert (topo.project, topo.network) == ("student-07", "student-07")
    assert [(p.host_ip, p.host_port, p.container_port) for p in topo.service("primary").ports] == [
        ("127.0.0.1", "2567", 2560)]
    assert topo.service("primary").container == "student-07-primary-1"


def test_each_lab_keeps_its_state_in_its_own_folder(monkeypatch):
    assert labstate.folder() == project.root() / "build"  # the default lab, where it always was
    monkeypatch.setenv(labstate.NAME_VAR, "student-07")
    assert labstate.name() == "student-07"
    assert labstate.folder() == project.root() / "build" / "labs" / "student-07"
    assert labstate.LabState(Path("/p")).compose_env()["SAFEQ_LAB_NAME"] == "student-07"


@pytest.mark.parametrize("bad", ["Student", "-x", "a b", "../up", "x" * 41])
def test_a_bad_lab_name_is_one_clear_error(monkeypatch, bad):
    monkeypatch.setenv(labstate.NAME_VAR, bad)
    with pytest.raises(LabError, match="use lowercase letters, digits, '-' and '_'"):
        labstate.name()
    result = CliRunner().invoke(main, ["--lab", bad, "status"])
    assert result.exit_code == 2 and "Invalid value for --lab: lab name" in result.stderr


def test_the_default_lab_publishes_2560_and_a_named_lab_keeps_its_port(monkeypatch):
    assert labstate.free_port(labstate.LabState(Path("/p"))) == 2560
    monkeypatch.setenv(labstate.NAME_VAR, "student-07")
    assert labstate.free_port(labstate.LabState(Path("/p"), env={"SAFEQ_PRIMARY_PORT": "2599"})) == 2599


def test_a_new_lab_takes_a_port_nothing_listens_on(monkeypatch):
    monkeypatch.setenv(labstate.NAME_VAR, "student-07")
    monkeypatch.setattr(labstate, "names", lambda: [])
    with socket.socket() as held:
        first = labstate.free_port(labstate.LabState(Path("/p")))
        held.bind(("127.0.0.1", first))
        held.listen()
        second = labstate.free_port(labstate.LabState(Path("/p")))
    assert 2560 < first < second


def test_each_lab_has_its_own_generated_pki(monkeypatch):
    monkeypatch.delenv("SAFEQ_PKI_DIR", raising=False)
    assert project.pki_dir() == (project.root() / "build" / "pki").resolve()
    monkeypatch.setenv(labstate.NAME_VAR, "student-07")
    assert project.pki_dir() == (project.root() / "build" / "labs" / "student-07" / "pki").resolve()
    monkeypatch.setenv("SAFEQ_PKI_DIR", "/srv/class-pki")  # one PKI for a whole class, when asked for
    assert project.pki_dir() == Path("/srv/class-pki")


def test_a_lab_named_on_the_command_line_uses_its_own_pki_not_one_set_for_another_lab(monkeypatch):
    from click.testing import CliRunner
    from lab import cli

    def pki_dir_after(*env: tuple[str, str]) -> str:
        for var in ("SAFEQ_PKI_DIR", cli.PKI_DIR_FOR, labstate.NAME_VAR):
            monkeypatch.delenv(var, raising=False)
        for var, value in env:
            monkeypatch.setenv(var, value)
        CliRunner().invoke(cli.main, ["--lab", "rot-09"])
        return os.environ["SAFEQ_PKI_DIR"]

    own = str((project.root() / "build" / "labs" / "rot-09" / "pki").resolve())
    assert pki_dir_after() == own
    # `--lab student-01 verify` set it for student-01: a check that runs `--lab rot-09` gets rot-09's.
    assert pki_dir_after(("SAFEQ_PKI_DIR", "/b/labs/student-01/pki"), (cli.PKI_DIR_FOR, "student-01")) == own
    assert pki_dir_after(("SAFEQ_PKI_DIR", "/srv/class-pki")) == "/srv/class-pki"  # the user's own choice


def test_a_port_asked_for_must_be_free_or_the_labs_own(monkeypatch):
    monkeypatch.setenv(labstate.NAME_VAR, "student-07")
    monkeypatch.setattr(labstate, "names", lambda: [])
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        busy = held.getsockname()[1]
        with pytest.raises(LabError, match=rf"^port {busy} is taken on 127.0.0.1 .*: choose another with --port"):
            labstate.free_port(labstate.LabState(Path("/p")), wanted=busy)
        # Its own running primary listens there: that is no clash.
        own = labstate.LabState(Path("/p"), env={"SAFEQ_PRIMARY_PORT": str(busy)})
        assert labstate.free_port(own, wanted=busy) == busy


def test_the_portal_port_follows_the_primary_port_and_must_be_free(monkeypatch):
    assert labstate.portal_port(labstate.LabState(Path("/p")), 2560) == 8560  # the default lab
    monkeypatch.setenv(labstate.NAME_VAR, "student-07")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        busy = held.getsockname()[1]
        primary = busy - labstate.PORTAL_OFFSET
        with pytest.raises(LabError, match=rf"^port {busy} on 127.0.0.1, for this lab's web portal .* is taken by "
                                           "another program: .*--port"):
            labstate.portal_port(labstate.LabState(Path("/p")), primary)
        # Its own running portal listens there: that is no clash.
        own = labstate.LabState(Path("/p"), env={"SAFEQ_PORTAL_PORT": str(busy)})
        assert labstate.portal_port(own, primary) == busy


def test_a_port_left_in_time_wait_by_a_lab_that_went_is_free():
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Docker's proxy listens
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        accepted, _ = server.accept()
        accepted.close()  # the server's side closes first: its port is in TIME_WAIT
        client.close()
    assert labstate.bindable(port)
    with socket.socket() as listening:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(("127.0.0.1", port))
        listening.listen()
        assert not labstate.bindable(port)
