"""testinfra against the running lab (docker backend). `safeq-lab up` first.

A missing lab is a failure, not a skip: these checks exist to prove the lab works.
Files named test_z* change the lab (policy, Trusted CA list, keystore) and put it
back; they sort last so the checks of the doc's end state run first.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import testinfra

from certkit.certs import fingerprint, load_cert_file
from lab import engine, topology
from lab.errors import LabError
from safeqlab.records import current_record

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = topology.load()  # compose.yaml: project name, services, container names


def pytest_collection_modifyitems(items):
    """test_z* files change the lab and put it back: `safeq-lab verify --quick` leaves them out."""
    for item in items:
        if item.path.name.startswith("test_z"):
            item.add_marker(pytest.mark.scenario)


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


@pytest.fixture(scope="session", autouse=True)
def lab_converged():
    """Every service passes its own healthcheck now (not docker's lagging record)."""
    from lab.status import wait_converged
    failing, _ = wait_converged(60)
    if failing:
        pytest.exit(f"the lab is not healthy, no check can run: {failing}", returncode=1)


@pytest.fixture(scope="session")
def manifest() -> dict:
    import pki
    return pki.load_manifest(Path(os.environ.get("SAFEQ_PKI_DIR", ROOT / "build/pki")))


def host(service: str):
    """By container name, so a host stays valid when `up` recreates its container."""
    container(service)
    return testinfra.get_host(f"docker://{TOPOLOGY.service(service).container}")


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
