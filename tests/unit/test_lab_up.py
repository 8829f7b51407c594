"""`safeq-lab up --timeout S`: one deadline for the whole run; every docker call has a timeout."""
import io
import subprocess
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from lab import docker, engine, images, status, steps, topology
from lab import up as lab_up
from lab.cli import main
from lab.deadline import Deadline
from lab.docker import CommandTimeout
from lab.errors import LabError
from lab.views import Phases
from support import fake_console

TOPO = topology.parse({"name": "safeq-lab", "services": {
    "primary": {"hostname": "primary-host", "volumes": [{"type": "bind", "source": "/p/hosts/primary-host"}]},
    "gateway": {"hostname": "gateway-host"}, "client": {"hostname": "pcclient-host"}}}, Path("/p"))
DONE = subprocess.CompletedProcess([], 0, stdout="")
HINT = "raise --timeout, or see `safeq-lab status` and `safeq-lab logs SERVICE`"


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeDocker:
    """Records each call's timeout with the clock; a command named 'hangs' hangs until its timeout."""

    def __init__(self, clock: Clock, cost: float = 2.0):
        self.clock, self.cost, self.calls = clock, cost, []
        self.lock = threading.Lock()  # `compose create` runs beside the doc's steps

    def compose(self, *args, timeout=None, **kwargs):
        with self.lock:
            self.calls.append((args, self.clock.now, timeout))
            self.clock.now += self.cost
        return subprocess.CompletedProcess(args, 0, stdout="", stderr="")

    def exec_sh(self, service, command, input=None, check=True, timeout=engine.DEFAULT):
        with self.lock:
            self.calls.append((("exec", service, command), self.clock.now, timeout))
        if "{ hangs\n" in command:  # the doc's steps' console session, hanging in that step
            self.clock.now += timeout
            done = command.split("{ hangs\n")[0]
            raise CommandTimeout(docker.label(["docker", "exec", service, "sh", "-c", "..."]), timeout,
                                 output=fake_console.passed(done))
        with self.lock:
            self.clock.now += self.cost
        return fake_console.ran(service, command)

    def run(self, argv, timeout, check=True, quiet=False):
        self.calls.append((tuple(argv), self.clock.now, timeout))
        self.clock.now += self.cost
        return subprocess.CompletedProcess(argv, 0, stdout="")


@pytest.fixture
def lab(monkeypatch, images_never_built):
    clock = Clock()
    fake = FakeDocker(clock)
    monkeypatch.setattr(lab_up, "Deadline", lambda seconds: Deadline(seconds, clock=clock))
    monkeypatch.setattr(lab_up, "prepare", lambda *args: lab_up.Plan(None, Path("/p"), TOPO))
    monkeypatch.setattr(docker, "compose", fake.compose)
    monkeypatch.setattr(docker, "run", fake.run)
    monkeypatch.setattr(engine, "exec_sh", fake.exec_sh)
    monkeypatch.setattr(engine, "connect", lambda timeout: pytest.fail("a unit test reached the Docker engine"))
    monkeypatch.setattr(engine, "containers", lambda timeout: [])
    monkeypatch.setattr(engine, "start", lambda boxes, timeout: None)
    monkeypatch.setattr(lab_up, "print_summary", lambda result: None)
    monkeypatch.setattr(status, "collect", lambda health_now=None, timeout=None, asked=(): {"timeout": timeout,
                                                                                          "asked": asked})
    monkeypatch.setattr(steps, "primary_steps", lambda manifest, host_dir: [steps.Step("first", "true"),
                                                                           steps.Step("second", "true")])
    monkeypatch.setattr(lab_up.time, "sleep", lambda s: None)
    return clock, fake


def converged(clock, failing=None, cost=3.0):
    def wait(timeout, expected_down=(), since=None):
        clock.now += cost
        return failing or {}, {}
    return wait


def test_each_step_gets_the_time_that_is_left(lab, monkeypatch):
    clock, fake = lab
    waits = []
    monkeypatch.setattr(status, "wait_converged",
                        lambda timeout, expected_down=(), since=None: waits.append((clock.now, timeout)) or ({}, {}))
    shown = []
    monkeypatch.setattr(lab_up, "print_summary", shown.append)
    lab_up.run("trusted-ca", build=True, timeout=100)
    assert [s["asked"] for s in shown] == [status.SUMMARY]  # the table's answers only
    assert len(fake.calls) == 7  # 3 builds, up primary, admin API, `create` beside the steps' one console session
    for args, at, timeout in fake.calls:
        assert 0 < timeout <= 100 - at, (args, at, timeout)
    assert [t for _, _, t in fake.calls[:4]] == [100, 98, 96, 94]  # the builds and `up` get all that is left
    assert ("create", "--no-build", "--remove-orphans", "client", "gateway") in [args for args, _, _ in fake.calls]
    assert waits == [(14.0, 86.0)]


def test_a_step_past_the_deadline_names_the_run_and_the_step(lab, monkeypatch):
    clock, fake = lab
    monkeypatch.setattr(steps, "primary_steps", lambda manifest, host_dir: [steps.Step("Copy the PFX", "true"),
                                                                           steps.Step("Hang", "hangs")])
    result = CliRunner().invoke(main, ["up", "--no-build", "--timeout", "30"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert [l for l in result.stderr.splitlines() if l.startswith("error:")] == [
        f"error: safeq-lab up did not finish within 30 s (at step primary setup: Hang); {HINT}"]
    assert result.stderr.strip().splitlines()[-1].startswith("error:")
    assert clock.now >= 30


def test_services_not_healthy_by_the_deadline(lab, monkeypatch):
    clock, fake = lab
    monkeypatch.setattr(status, "wait_converged", converged(clock, {"gateway": "not connected"}, cost=200))
    with pytest.raises(LabError) as err:
        lab_up.run("trusted-ca", build=False, timeout=120)
    assert str(err.value) == ("safeq-lab up did not finish within 120 s (at step waiting until every service is "
                              f"healthy): not every service became healthy (gateway: not connected); {HINT}")


def test_no_time_left_for_the_next_step(lab, monkeypatch):
    clock, fake = lab
    fake.cost = 11  # `up primary` alone takes all of it
    with pytest.raises(LabError, match=r"^safeq-lab up did not finish within 10 s \(at step waiting for the "
                                       r"primary's admin API\)"):
        lab_up.run("trusted-ca", build=False, timeout=10)


def test_builtin_policy_waits_for_registration_within_the_deadline(lab, monkeypatch):
    clock, fake = lab
    monkeypatch.setattr(lab_up.admin, "lab_call", lambda method, path, timeout: clock.__setattr__("now", clock.now + 5) or [])
    with pytest.raises(LabError) as err:
        lab_up.run("built-in", build=False, timeout=60)
    assert str(err.value).startswith("safeq-lab up did not finish within 60 s (at step waiting for gateway and "
                                     "client to register)")
    up_wait = next(c for c in fake.calls if "--wait-timeout" in c[0])
    assert int(up_wait[0][up_wait[0].index("--wait-timeout") + 1]) <= 60 - up_wait[1]


def test_a_command_that_times_out_on_its_own_keeps_its_message():
    clock = Clock()
    d = Deadline(500, clock=clock)
    with pytest.raises(CommandTimeout, match=r"^`docker ps` did not answer in 20 s: check that Docker responds"):
        with d.at("status"):
            clock.now = 20
            raise CommandTimeout("docker ps", 20)


def test_deadline_left_caps_and_expires():
    clock = Clock()
    d = Deadline(50, clock=clock)
    assert (d.left(), d.left(10)) == (50, 10)
    clock.now = 45
    assert d.left(10) == 5
    clock.now = 50
    with d.at("starting primary"), pytest.raises(LabError, match=r"within 50 s \(at step starting primary\); raise"):
        d.left()


# -- every subprocess has a timeout (engine calls: test_lab_engine) ------------------------------

def test_a_hanging_compose_command_says_which_and_what_to_do(monkeypatch):
    def hang(argv, **kwargs):
        raise subprocess.TimeoutExpired(argv, kwargs["timeout"])
    monkeypatch.setattr(docker.subprocess, "run", hang)
    with pytest.raises(LabError) as err:
        docker.compose("up", "-d", "--no-build", "primary", timeout=42)
    assert str(err.value) == ("`docker compose up -d --no-build primary` did not answer in 42 s: check that Docker "
                              "responds (`docker info`), see `safeq-lab logs`, and try again")


def test_every_docker_call_in_lab_passes_a_timeout(monkeypatch, tmp_path):
    seen = []

    def run(argv, **kwargs):
        seen.append((argv[:3], kwargs.get("timeout")))
        return subprocess.CompletedProcess(argv, 0, stdout="", stderr="")
    monkeypatch.setattr(docker.subprocess, "run", run)
    monkeypatch.setattr(docker.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(topology, "_cache", {})
    monkeypatch.setattr(engine, "ping", lambda timeout: seen.append((["engine", "ping"], timeout)))
    monkeypatch.setattr(images, "image_names", lambda root: ["safeq-lab/base:latest"])
    monkeypatch.setattr(engine, "image_ids", lambda names, timeout=engine.QUICK: seen.append((["engine", "images"], timeout))
                        or dict.fromkeys(names))  # no image: nothing recorded in the checkout
    docker.preflight()
    docker.compose("down")
    docker.run(["bash", "x"], timeout=5)
    images.build_all(Phases(console=Console(file=io.StringIO())), Deadline(100))
    with pytest.raises(LabError):  # empty output is not JSON; the call had its timeout all the same
        topology.load()
    assert seen and all(t is not None and t > 0 for _, t in seen), seen


def test_build_runs_every_image_build_and_nothing_else(monkeypatch):
    from click.testing import CliRunner

    from lab import cli
    ran = []
    monkeypatch.setattr(docker, "preflight", lambda: None)
    monkeypatch.setattr(docker, "run", lambda cmd, timeout, quiet: ran.append(("run", cmd[:2])) or DONE)
    monkeypatch.setattr(docker, "compose",
                        lambda *args, timeout=None, quiet=False: ran.append(("compose", args)) or DONE)
    monkeypatch.setattr(images, "image_names", lambda root: ["safeq-lab/base:latest"])
    monkeypatch.setattr(engine, "image_ids", lambda names: dict.fromkeys(names))  # never built: built now
    result = CliRunner().invoke(cli.main, ["build", "--timeout", "60"])
    assert result.exit_code == 0, result.output
    assert ran == [("run", ["bash", ran[0][1][1]]), ("run", ["docker", "build"]), ("compose", ("build", "--quiet"))]
    assert ran[0][1][1].endswith("scripts/base-image.sh")
