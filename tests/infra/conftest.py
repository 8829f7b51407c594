"""testinfra against the running lab (docker, over the engine's API). `safeq-lab up` first.

A missing lab is a failure, not a skip: these checks exist to prove the lab works.
Files named test_z* change the lab (policy, Trusted CA list, keystore) and put it
back; they sort last so the checks of the doc's end state run first.

The checks read the lab's files from its spec (lab.labstate): the lab's own PKI, or the
spec `up --spec` staged. What each endpoint's connection must show is what the doctor
foresees for that spec; checks that need the lab's own CA (marked lab_pki) are left out
on a spec's files.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import pytest
import testinfra

from certkit.certs import fingerprint, load_cert_file
from lab import engine, labstate, swarmlab, topology
from lab.errors import LabError
from safeqlab.records import current_record
from support.engine_backend import EngineBackend

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = topology.load()  # compose.yaml: project name, services, container names
LAB = labstate.current()    # which files the running lab uses


def pytest_collection_modifyitems(config, items):
    """test_z* files change the lab and put it back: they run last, and `safeq-lab verify --quick` leaves
    them out. On a spec's files, the checks that need the lab's own CA are not run; on a swarm stack, those through
    a published port."""
    for item in items:
        if item.path.name.startswith("test_z"):
            item.add_marker(pytest.mark.scenario)
    # The checks of modules with a head start go after the others (their work runs meanwhile), and
    # before those that change the lab.
    items.sort(key=lambda item: (item.path.name.startswith("test_z"),
                                 hasattr(getattr(item, "module", None), "HEAD_START")))
    # On a spec's files, the checks that need the lab's own CA; on a swarm stack, those through a published port.
    markers = (["lab_pki"] if not LAB.own_pki else []) + (["published"] if swarmlab.is_swarm(LAB) else [])
    left_out = [item for item in items if any(item.get_closest_marker(m) for m in markers)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item not in left_out]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed check shows the primary's last words: its log in the container goes with the lab."""
    report = yield
    if report.failed and call.when == "call":
        try:
            # The server's threads, as it stands now (it dumps them to its container log on SIGUSR1).
            engine.exec_sh("primary", "kill -USR1 $(cut -d' ' -f2 /run/safeqlab/safeq-cloud-server.state)",
                           check=False, timeout=10)
            time.sleep(0.5)
            text = engine.exec_sh("primary", "tail -n 40 /var/log/safeqcloud/server.log", check=False,
                                  timeout=10).stdout
            supervisor = engine.logs("primary", tail=150, timeout=10)
        except (LabError, OSError) as exc:  # a lab that is gone says so in the report
            text, supervisor = f"(not readable: {exc})", ""
        report.sections.append(("primary server.log (tail)", f"{text}\n--- container log ---\n{supervisor}"))
    return report


def compose(*args: str) -> subprocess.CompletedProcess:
    """Compose operations (start, stop); questions to the engine go through lab.engine."""
    return subprocess.run(["docker", "compose", "-f", str(ROOT / "compose.yaml"), "-p", TOPOLOGY.project, *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def container(service: str) -> str:
    """The id of the service's running container, found by compose's labels."""
    try:
        return engine.running(service).id
    except engine.NotRunning:
        pytest.fail(f"service {service} is not running: start the lab with `make lab-up`")


# -- head starts ----------------------------------------------------------------------------------
# Work that waits on the primary's deadlines rather than on the checks before it. A test module lists
# it in HEAD_START (its fixture's name -> the work); when a check of the session uses that fixture, the
# work begins on a thread once the lab passed lab_converged and runs beside the other checks; the
# fixture takes its result (or its exception) with taken(work). Not for work that a busy machine
# changes the outcome of (the SIGTERM checks' 2 s: they run alone).
_HEAD_STARTS = ThreadPoolExecutor(2, thread_name_prefix="head-start")
_begun: dict[Callable, Future] = {}


def _begin(session: pytest.Session) -> None:
    for item in session.items:
        starts = getattr(getattr(item, "module", None), "HEAD_START", {})
        for name in getattr(item, "fixturenames", ()):
            work = starts.get(name)
            if work is not None and work not in _begun:
                _begun[work] = _HEAD_STARTS.submit(work)


def taken(work: Callable):
    """The head start's result, or the work done now when it was not begun (a check run alone)."""
    future = _begun.pop(work, None)
    return future.result() if future is not None else work()


@pytest.fixture(scope="session", autouse=True)
def lab_converged(request, doctor):
    """Every service passes its own healthcheck now (not docker's lagging record), but those whose
    connection the doctor foresees refused (a spec started with --force). Then the head starts begin;
    the session's end waits for them (their connections end with it)."""
    from lab.status import wait_converged
    refused = {service_of(c.host) for c in doctor.connections if not c.connects}
    failing, _ = wait_converged(60, refused)
    failing = {svc: why for svc, why in failing.items() if svc not in refused}
    if failing:
        pytest.exit(f"the lab is not healthy, no check can run: {failing}", returncode=1)
    _begin(request.session)
    yield
    _HEAD_STARTS.shutdown(wait=True)


@pytest.fixture(scope="session")
def manifest() -> dict:
    """The lab's own PKI (lab_pki checks only)."""
    import pki
    return pki.load_manifest(LAB.files)


@pytest.fixture(scope="session")
def spec():
    """The spec of the files the lab mounts."""
    return LAB.spec()


@pytest.fixture(scope="session")
def doctor(spec):
    """The doctor's report on the lab's spec: its findings and each endpoint's connection."""
    from lab.doctor import runner, tools
    report = runner.check(spec, tools.detect("auto"))
    assert report.material is not None and (report.connections or not spec.gateways), \
        "no JRE to foresee the connections with: install a JRE or build the lab's images"
    return report


def in_container(path: Path, service: str) -> str:
    """Where a service sees a file of its host folder (mounted at /pki)."""
    return f"/pki/{path.relative_to(LAB.files / TOPOLOGY.service(service).pki_mount).as_posix()}"


def service_of(host_name: str) -> str:
    return next(svc.name for svc in TOPOLOGY.services if svc.host == host_name)


def host(service: str):
    """By container name, so a host stays valid when `up` recreates its container (a swarm task's
    container has a name of its own: the running one's)."""
    found = container(service)
    name = found if swarmlab.is_swarm(LAB) else TOPOLOGY.service(service).container
    return testinfra.get_host(f"{EngineBackend.NAME}://{name}")


@pytest.fixture(scope="session")
def primary():
    return host("primary")


@pytest.fixture(scope="session")
def gateway():
    return host("gateway")


@pytest.fixture(scope="session")
def client():
    return host("client")


def lab(*args: str) -> subprocess.CompletedProcess:
    """The lab's own CLI, as a trainer would type it."""
    # Past `up`'s own 600 s default, so a slow `up` ends with its own error first.
    return subprocess.run([sys.executable, "-m", "lab.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=660)


def lab_json(*args: str):
    proc = lab(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.5):
    """Poll until predicate() is truthy; return its last value (falsy on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def endpoints(primary) -> list[dict]:
    return json.loads(primary.check_output("safeq-admin endpoints --json"))


def ca_name(manifest: dict, index: int) -> str:
    return manifest["cas"][index]["name"]


def endpoint(primary, name: str) -> dict | None:
    """The record for NAME: the connected one, else the one seen last."""
    return current_record(endpoints(primary), name)


def sha256_of(path) -> str:
    """Fingerprint of a PEM or DER certificate file, as the primary records it."""
    return fingerprint(load_cert_file(path))
