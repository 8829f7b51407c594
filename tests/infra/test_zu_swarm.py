"""The lab on Docker Swarm: `--lab swarm-02 up --engine swarm` deploys compose.yaml as a stack beside this
lab, on a one-node swarm made for the test (and left again) unless the engine already is a manager.
Every service healthy on its own check, both endpoints accepted, the PKI delivered as configs and secrets
(no bind mount), `verify --quick` green on it, `down --volumes` leaves nothing of the stack."""
import json
import subprocess

import pytest

from conftest import lab
from lab import engine, project

pytestmark = pytest.mark.lab_pki  # its own lab on its own CA

NAME = "swarm-02"
SERVICES = ("client", "gateway", "ocsp", "portal", "primary")


def docker(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    assert not check or proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture
def one_node_swarm():
    """A swarm manager for the test; the engine is left as it was found."""
    made = docker("info", "--format", "{{.Swarm.LocalNodeState}}") == "inactive"
    if made:
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    yield
    if made:
        docker("swarm", "leave", "--force")
        assert docker("info", "--format", "{{.Swarm.LocalNodeState}}") == "inactive"


def test_the_lab_as_a_swarm_stack(primary, one_node_swarm):
    try:
        started = lab("--lab", NAME, "up", "--engine", "swarm", "--no-build")
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-3000:]
        assert docker("stack", "ls", "--format", "{{.Name}}").splitlines().count(NAME) == 1
        status = json.loads(lab("--lab", NAME, "status", "--json").stdout)
        assert {s["name"]: s["health"] for s in status["services"]} == dict.fromkeys(SERVICES, "healthy")
        decisions = {e["name"]: (e["decision"], e["state"]) for e in status["endpoints"] if e["state"] == "connected"}
        assert decisions == {"gateway-host": ("accepted", "connected"), "pcclient-host": ("accepted", "connected")}
        for box in engine.containers(project_name=NAME):
            mounts = json.loads(docker("inspect", box.id, "--format", "{{json .Mounts}}"))
            assert [m["Destination"] for m in mounts if m["Type"] == "bind"] == []  # nothing from the host's disk
        gateway = next(b for b in engine.containers("gateway", project_name=NAME) if b.running)
        listing = docker("exec", gateway.name, "stat", "-c", "%a %n", "/pki/gateway-host.pfx", "/pki/acme-ca.pfx")
        assert listing.splitlines() == ["400 /pki/gateway-host.pfx", "400 /pki/acme-ca.pfx"]  # secrets
        assert docker("secret", "ls", "--filter", f"label=com.docker.stack.namespace={NAME}", "-q")
        checked = lab("--lab", NAME, "verify", "--quick")
        assert checked.returncode == 0, checked.stdout[-3000:]
        assert " passed" in checked.stdout and " failed" not in checked.stdout
    finally:
        gone = lab("--lab", NAME, "down", "--volumes")
        cleaned = lab("--lab", NAME, "clean", "--pki")
        assert gone.returncode == 0 and cleaned.returncode == 0, gone.stderr + cleaned.stderr
    assert engine.containers(project_name=NAME) == []
    assert docker("stack", "ls", "--format", "{{.Name}}").splitlines().count(NAME) == 0
    for kind in ("secret", "config"):
        assert docker(kind, "ls", "--filter", f"label=com.docker.stack.namespace={NAME}", "-q") == ""
    assert not project.lab_folder(NAME).exists()  # `clean --pki` leaves nothing of the lab on the host
