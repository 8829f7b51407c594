"""What `safeq-lab up` shows: one line per phase with its time, compose's chatter folded unless
--verbose, a failed command's output tail above the error, and the doc's check to copy at the end."""
import io
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from lab import docker, engine, status, steps, topology
from lab import up as lab_up
from lab.cli import main
from lab.deadline import Deadline
from lab.docker import CommandFailed, CommandTimeout
from lab.views import TAIL, Phases, fold, validation_commands
from support import fake_console

TOPO = topology.parse({"name": "safeq-lab", "services": {
    "primary": {"hostname": "primary-host", "ports": [{"host_ip": "127.0.0.1", "published": "2560", "target": 2560}],
                "volumes": [{"type": "bind", "source": "/p/hosts/primary-host"}], "depends_on": {"ocsp": {}}},
    "ocsp": {"hostname": "ocsp-host"},
    "gateway": {"hostname": "gateway-host", "depends_on": {"primary": {"condition": "service_healthy"}}},
    "client": {"hostname": "pcclient-host"}}}, Path("/p"))

# `docker compose up -d` through a pipe (compose 2.2x), then its terminal form
CHATTER = """\
 Network safeq-lab  Creating
 Network safeq-lab  Created
 Container safeq-lab-ocsp-1  Creating
 Container safeq-lab-ocsp-1  Created
 Container safeq-lab-primary-1  Creating
 Container safeq-lab-primary-1  Created
 Container safeq-lab-ocsp-1  Waiting
 Container safeq-lab-ocsp-1  Healthy
 Container safeq-lab-primary-1  Starting
 Container safeq-lab-primary-1  Started
"""
TTY_CHATTER = "[+] Running 2/2\n ✔ Container safeq-lab-ocsp-1     Running\n ✔ Container safeq-lab-primary-1  Started\n"


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def phases(verbose=False, terminal=False):
    buf = io.StringIO()
    clock = Clock()
    con = Console(file=buf, force_terminal=terminal, width=200, color_system=None)
    return Phases(verbose, console=con, clock=clock), buf, clock


# -- folding -------------------------------------------------------------------------------------

def test_compose_chatter_is_one_line_with_each_containers_last_state():
    assert fold(CHATTER) == ["compose: network safeq-lab Created, safeq-lab-ocsp-1 Healthy, "
                             "safeq-lab-primary-1 Started (10 lines folded; --verbose shows them)"]


def test_the_terminal_form_folds_too():
    assert fold(TTY_CHATTER) == ["compose: safeq-lab-ocsp-1 Running, safeq-lab-primary-1 Started "
                                 "(3 lines folded; --verbose shows them)"]


def test_what_is_not_chatter_is_kept_as_it_is():
    warning = 'WARN[0000] The "FOO" variable is not set. Defaulting to a blank string.'
    assert fold(f"{warning}\n{CHATTER}\n") == [fold(CHATTER)[0], warning]
    assert fold("") == []


# -- phases --------------------------------------------------------------------------------------

def test_one_line_per_phase_with_its_time_and_its_notes_below():
    ph, buf, clock = phases()
    with ph.phase("base OS image"):
        clock.now += 3.25
        ph.detail = "safeq-lab/os:trixie is present"
    with ph.phase("the doc's steps"):
        ph.note("primary# chmod 644 /opt/safeqcloud/conf/primary-host.pfx")
        clock.now += 75
        ph.show(subprocess.CompletedProcess([], 0, stdout=CHATTER))
    assert buf.getvalue().splitlines() == [
        "==> base OS image: safeq-lab/os:trixie is present (3.2 s)",
        "==> the doc's steps (1 min 15 s)",
        "    primary# chmod 644 /opt/safeqcloud/conf/primary-host.pfx",
        "    " + fold(CHATTER)[0]]


def test_a_failed_phase_shows_its_notes_and_the_commands_output_tail():
    ph, buf, clock = phases()
    output = "".join(f"step {i}\n" for i in range(40)) + "ERROR: failed to solve: exit code 100\n"
    with pytest.raises(CommandFailed):
        with ph.phase("images"):
            ph.note("building [the] base")  # brackets are text, not markup
            clock.now += 2
            raise CommandFailed("docker compose build --quiet failed: ERROR: failed to solve: exit code 100", output)
    lines = buf.getvalue().splitlines()
    assert lines[:3] == ["==> failed: images (after 2.0 s)", "    building [the] base",
                         f"    its output, last {TAIL} lines:"]
    assert lines[3:] == [f"      {line}" for line in output.splitlines()[-TAIL:]]


def test_the_tail_survives_the_deadline_taking_the_errors_place():
    """A build cut short by `up --timeout`: the run's error is the deadline's, the output the build's."""
    ph, buf, clock = phases()
    deadline = Deadline(10, clock=clock)
    timeout = CommandTimeout("docker compose build --quiet", 10)
    timeout.output = "#7 RUN apt-get install -y openjdk-21-jre-headless\n"
    with pytest.raises(Exception, match=r"^safeq-lab up did not finish within 10 s \(at step building\)"):
        with ph.phase("images"), deadline.at("building"):
            clock.now = 10
            raise timeout
    assert buf.getvalue().splitlines()[-1] == "      #7 RUN apt-get install -y openjdk-21-jre-headless"


def test_verbose_announces_each_phase_and_leaves_output_to_the_terminal():
    ph, buf, clock = phases(verbose=True)
    with ph.phase("images"):
        ph.show(subprocess.CompletedProcess([], 0, stdout=CHATTER))  # already on the terminal
        ph.note("primary# true")
        clock.now += 1
    assert buf.getvalue().splitlines() == ["==> images ...", "    primary# true", "==> images (1.0 s)"]
    assert not ph.quiet


def test_on_a_terminal_the_spinner_goes_and_the_lines_stay():
    ph, buf, clock = phases(terminal=True)
    with ph.phase("images"):
        assert ph.bar is not None  # the spinner with the seconds
        ph.note("a note")
        clock.now += 1
    text = buf.getvalue()
    assert "==> images (1.0 s)" in text and "    a note" in text


# -- compose's output kept, and handed over on failure ---------------------------------------------

def fake_run(returncode, output, seen):
    def run(argv, **kwargs):
        seen.update(kwargs)
        if kwargs.get("stdout") is subprocess.PIPE:
            return subprocess.CompletedProcess(argv, returncode, stdout=output, stderr=None)
        return subprocess.CompletedProcess(argv, returncode)
    return run


def test_quiet_keeps_stdout_and_stderr_as_one_and_a_failure_carries_them(monkeypatch):
    seen = {}
    monkeypatch.setattr(docker.subprocess, "run", fake_run(1, CHATTER + "Error response from daemon: no space\n", seen))
    with pytest.raises(CommandFailed) as err:
        docker.compose("up", "-d", "--no-build", quiet=True, timeout=30)
    assert (seen["stdout"], seen["stderr"], seen["timeout"]) == (subprocess.PIPE, subprocess.STDOUT, 30)
    assert str(err.value) == "docker compose up -d failed: Error response from daemon: no space"
    assert err.value.output.startswith(" Network safeq-lab  Creating")


def test_not_quiet_leaves_the_terminal_alone(monkeypatch):
    seen = {}
    monkeypatch.setattr(docker.subprocess, "run", fake_run(0, "", seen))
    docker.compose("up", "-d", timeout=30)
    docker.run(["bash", "x"], timeout=5)
    assert not {"stdout", "stderr", "capture_output"} & set(seen)


def test_a_timeout_keeps_what_was_printed_until_then(monkeypatch):
    def hang(argv, **kwargs):
        raise subprocess.TimeoutExpired(argv, kwargs["timeout"], output=b"#5 [base 2/6] RUN apt-get update\n")
    monkeypatch.setattr(docker.subprocess, "run", hang)
    with pytest.raises(CommandTimeout) as err:
        docker.run(["docker", "build", "-q", "images/base"], timeout=7, quiet=True)
    assert err.value.output == "#5 [base 2/6] RUN apt-get update\n"


# -- `up` end to end, on fakes ---------------------------------------------------------------------

@pytest.fixture
def fake_lab(monkeypatch, images_never_built):
    calls = []

    def compose(*args, timeout=None, quiet=False, **kwargs):
        calls.append(("compose", args, quiet))
        return subprocess.CompletedProcess(args, 0, stdout=CHATTER if quiet and args[0] in ("up", "create") else "")

    def run(argv, timeout, check=True, quiet=False):
        calls.append(("run", tuple(argv[:2]), quiet))
        said = "base-image: safeq-lab/os:trixie is present\n" if quiet and argv[0] == "bash" else ""
        return subprocess.CompletedProcess(argv, 0, stdout=said)

    monkeypatch.setattr(lab_up, "prepare", lambda *args: lab_up.Plan(None, Path("/p"), TOPO))
    monkeypatch.setattr(docker, "compose", compose)
    monkeypatch.setattr(docker, "run", run)
    monkeypatch.setattr(engine, "exec_sh", lambda service, command, **k: fake_console.ran(service, command))
    monkeypatch.setattr(engine, "connect", lambda timeout: pytest.fail("a unit test reached the Docker engine"))
    monkeypatch.setattr(status, "wait_converged", lambda timeout, expected_down=(), since=None: ({}, {}))
    made = [engine.Container(f"id-{s}", f"safeq-lab-{s}-1", s, 1, "created", None, None) for s in ("gateway", "client")]
    monkeypatch.setattr(engine, "containers", lambda timeout: made)
    monkeypatch.setattr(engine, "start", lambda boxes, timeout: calls.append(("start", tuple(b.service for b in boxes), True)))
    monkeypatch.setattr(status, "collect", lambda *a, **k: {})
    monkeypatch.setattr(lab_up, "print_summary", lambda result: None)
    monkeypatch.setattr(steps, "primary_steps", lambda manifest, host_dir: [
        steps.Step("Copy the PFX", "cp /pki/primary-host.pfx /opt/safeqcloud/conf/primary-host.pfx")])
    return calls


def phase_lines(stderr: str) -> list[str]:
    return [line.rsplit(" (", 1)[0] for line in stderr.splitlines() if line.startswith("==>")]


def test_up_shows_each_phase_folds_compose_and_ends_with_the_docs_check(fake_lab):
    result = CliRunner().invoke(main, ["up"])
    assert result.exit_code == 0, result.output
    assert phase_lines(result.stderr) == [
        "==> base OS image (scripts/base-image.sh): safeq-lab/os:trixie is present",
        "==> images: safeq-lab/base:latest (images/base), then the role images (docker compose build)",
        "==> primary started, its admin API answering",
        "==> primary server setup: the doc's steps, as typed",
        "==> endpoints: gateway and client started, the portal",
        "==> healthy: every service passes its own check"]
    assert "    primary# cp /pki/primary-host.pfx /opt/safeqcloud/conf/primary-host.pfx" in result.stderr
    # compose makes the endpoints' containers while the doc's steps run; they start while the restarted
    # primary loads its keystore, not once compose saw it healthy.
    assert [(kind, args) for kind, args, _ in fake_lab if kind == "start" or args[0] in ("up", "create")] == [
        ("compose", ("up", "-d", "--no-build", "primary")),
        ("compose", ("create", "--no-build", "--remove-orphans", "client", "gateway")),
        ("start", ("gateway", "client"))]
    assert "Container" not in result.stderr and result.stderr.count(fold(CHATTER)[0]) == 2
    assert all(quiet for _, _, quiet in fake_lab)
    assert "web portal: http://127.0.0.1:" in result.stdout.splitlines()[-4]  # before the doc's check
    assert result.stdout.splitlines()[-2:] == [
        "  openssl s_client -servername primary-host -connect 127.0.0.1:2560",
        "  docker compose -p safeq-lab exec primary openssl s_client -servername primary-host -connect localhost:2560"]


def test_a_lean_lab_starts_the_services_with_certificates_only_and_shows_no_summary(fake_lab, monkeypatch):
    topo = topology.parse({"name": "safeq-lab", "services": {
        "primary": {"hostname": "primary-host", "volumes": [{"type": "bind", "source": "/p/hosts/primary-host"}]},
        "gateway": {"hostname": "gateway-host", "volumes": [{"type": "bind", "source": "/p/hosts/gateway-host"}]},
        "portal": {}}}, Path("/p"))
    monkeypatch.setattr(lab_up, "prepare", lambda *args: lab_up.Plan(None, Path("/p"), topo))
    monkeypatch.setattr(lab_up, "print_summary", lambda result: pytest.fail("a lean lab shows no summary"))
    with CliRunner().isolation():
        lab_up.run("trusted-ca", build=False, timeout=60, lean=True)
    assert [args for kind, args, _ in fake_lab if kind == "compose" and args[0] == "create"] == [
        ("create", "--no-build", "--remove-orphans", "gateway")]


def test_up_verbose_hands_the_terminal_to_compose(fake_lab):
    result = CliRunner().invoke(main, ["up", "--verbose"])
    assert result.exit_code == 0, result.output
    # but `create`, which runs beside the doc's steps: its lines follow them, each as compose said it
    assert [args[0] for kind, args, quiet in fake_lab if quiet and kind != "start"] == ["create"]
    assert "    Container safeq-lab-primary-1  Started" in result.stderr.splitlines()
    assert "folded" not in result.stderr
    assert "==> primary started, its admin API answering ..." in result.stderr


def test_up_failing_in_compose_shows_its_output_then_one_error_line(fake_lab, monkeypatch):
    output = CHATTER + "Error response from daemon: driver failed programming external connectivity\n"

    def compose(*args, timeout=None, quiet=False, **kwargs):
        raise CommandFailed("docker compose up -d failed: Error response from daemon: driver failed "
                            "programming external connectivity", output)
    monkeypatch.setattr(docker, "compose", compose)
    result = CliRunner().invoke(main, ["up", "--no-build"])
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("==> failed: primary started, its admin API answering (after ")
    assert "       Container safeq-lab-primary-1  Started" in lines
    assert lines[-2:] == ["      Error response from daemon: driver failed programming external connectivity",
                          "error: docker compose up -d failed: Error response from daemon: driver failed "
                          "programming external connectivity"]


def test_the_docs_check_uses_the_labs_host_name_and_ports():
    assert validation_commands(TOPO) == [
        "openssl s_client -servername primary-host -connect 127.0.0.1:2560",
        "docker compose -p safeq-lab exec primary openssl s_client -servername primary-host -connect localhost:2560"]
    anywhere = topology.parse({"name": "lab2", "services": {"primary": {
        "hostname": "srv", "ports": [{"host_ip": "0.0.0.0", "published": "12560", "target": 2560}]}}}, Path("/p"))
    assert validation_commands(anywhere) == [
        "openssl s_client -servername srv -connect localhost:12560",
        "docker compose -p lab2 exec primary openssl s_client -servername srv -connect localhost:2560"]
    unpublished = topology.parse({"name": "x", "services": {"primary": {"hostname": "p"}}}, Path("/p"))
    assert validation_commands(unpublished) == []
