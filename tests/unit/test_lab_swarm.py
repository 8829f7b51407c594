"""compose config -> a swarm stack file, without a swarm: what each service keeps, how the PKI folders
travel (configs and secrets, never a bind mount), and Docker's own reading of the result."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import pki
from lab import swarm
from lab.errors import LabError


@pytest.fixture
def config(tmp_path) -> dict:
    """What `docker compose config --format json` gives for a gateway and the portal (paths resolved)."""
    root = Path(pki.init_pki(tmp_path / "pki")["dir"])
    login = tmp_path / "portal-login.json"
    login.write_text('{"user": "admin"}')
    login.chmod(0o600)
    java = tmp_path / "no-override.java.security"
    java.write_text("")
    return {
        "name": "swarm-01",
        "services": {
            "gateway": {
                "build": {"context": "images/gateway"}, "image": "safeq-lab/gateway:latest", "hostname": "gateway-host",
                "init": True, "stop_grace_period": "2s", "command": None, "environment": {"A": "1"},
                "depends_on": {"primary": {"condition": "service_healthy"}},
                "networks": {"lab": {"aliases": ["gateway-host"]}},
                "healthcheck": {"test": ["CMD", "safeq-gateway", "health"], "interval": "30s", "start_interval": "500ms"},
                "volumes": [{"type": "bind", "source": str(root / "hosts" / "gateway-host"), "target": "/pki", "read_only": True},
                            {"type": "volume", "source": "gateway-data", "target": "/var/lib/safeq-gateway"},
                            {"type": "bind", "source": str(java), "target": "/opt/safeqlab/java.security", "read_only": True}],
            },
            "portal": {
                "image": "safeq-lab/portal:latest", "networks": {"lab": None},
                "ports": [{"target": 8080, "published": "8562", "host_ip": "127.0.0.1"}],
                "volumes": [{"type": "bind", "source": str(login), "target": "/run/secrets/portal-login"}],
            },
        },
        "networks": {"lab": {"name": "swarm-01"}},
        "volumes": {"gateway-data": {"name": "swarm-01_gateway-data"}},
    }


def test_each_service_keeps_what_a_swarm_runs_and_carries_its_compose_labels(config):
    stack = swarm.stack_file(config, "swarm-01")
    gateway, portal = stack["services"]["gateway"], stack["services"]["portal"]
    assert not {"build", "depends_on", "ports", "command"} & (set(gateway) | set(portal))
    assert gateway["healthcheck"]["start_interval"] == "500ms" and gateway["hostname"] == "gateway-host"
    assert gateway["labels"] == {"com.docker.compose.project": "swarm-01", "com.docker.compose.service": "gateway",
                                 "com.docker.compose.container-number": "1", "com.docker.compose.oneoff": "False"}
    assert gateway["networks"] == {"lab": {"aliases": ["gateway-host"]}} and portal["networks"] == {"lab": None}
    assert gateway["deploy"]["endpoint_mode"] == "dnsrr"
    assert stack["networks"] == {"lab": {"driver": "overlay", "attachable": True, "name": "swarm-01"}}
    assert gateway["volumes"] == [{"type": "volume", "source": "gateway-data", "target": "/var/lib/safeq-gateway"}]


def test_the_pki_folder_travels_as_secrets_and_configs_at_the_same_paths(config):
    stack = swarm.stack_file(config, "swarm-01")
    gateway, portal = stack["services"]["gateway"], stack["services"]["portal"]
    secrets = {s["target"]: s for s in gateway["secrets"]}
    assert sorted(secrets) == ["/pki/acme-ca.pfx", "/pki/gateway-host.pfx", "/pki/unattended-install.conf"]
    assert {s["mode"] for s in secrets.values()} == {0o400}
    assert [c["target"] for c in gateway["configs"]] == ["/opt/safeqlab/java.security"]
    assert [s["target"] for s in portal["secrets"]] == ["/run/secrets/portal-login"]
    for entry in gateway["secrets"]:
        source = Path(stack["secrets"][entry["source"]]["file"])
        assert source.name == Path(entry["target"]).name and source.is_file()
    # A new certificate is a new object: configs and secrets cannot change in place.
    before = set(stack["secrets"])
    (Path(stack["secrets"][secrets["/pki/gateway-host.pfx"]["source"]]["file"])).write_bytes(b"new")
    assert set(swarm.stack_file(config, "swarm-01")["secrets"]) != before


def test_a_client_store_keeps_its_folders(tmp_path, config):
    store = Path(config["services"]["gateway"]["volumes"][0]["source"]).parents[0] / "pcclient-host"
    config["services"]["gateway"]["volumes"][0]["source"] = str(store)
    targets = sorted(e["target"] for kind in ("configs", "secrets")
                     for e in swarm.stack_file(config, "s")["services"]["gateway"].get(kind, []))
    assert targets == ["/opt/safeqlab/java.security", "/pki/store/CA/Acme-CA-Intermediate.crt",
                       "/pki/store/My/pcclient-host.crt", "/pki/store/My/pcclient-host.key",
                       "/pki/store/Root/Acme-CA-Root.crt"]


def test_a_missing_folder_or_a_foreign_volume_is_one_error(tmp_path, config):
    config["services"]["gateway"]["volumes"][0]["source"] = str(tmp_path / "nowhere")
    with pytest.raises(LabError, match=r"gateway mounts .*nowhere, which does not exist"):
        swarm.stack_file(config, "s")
    config["services"]["gateway"]["volumes"] = [{"type": "npipe", "source": "x", "target": "/x"}]
    with pytest.raises(LabError, match="gateway mounts a npipe volume, which a stack cannot carry"):
        swarm.stack_file(config, "s")


@pytest.mark.skipif(shutil.which("docker") is None, reason="the docker CLI reads the stack file")
def test_docker_itself_reads_the_stack_file(tmp_path, config):
    path = swarm.write(tmp_path, swarm.stack_file(config, "swarm-01"))
    proc = subprocess.run(["docker", "stack", "config", "--compose-file", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "endpoint_mode: dnsrr" in proc.stdout and "start_interval: 500ms" in proc.stdout
    assert json.loads(path.read_text())["services"]["gateway"]["image"] == "safeq-lab/gateway:latest"


def test_the_drills_refuse_a_stack_whose_files_cannot_change(monkeypatch):
    from lab import drills, rotation, swarmlab
    monkeypatch.setattr(swarmlab, "is_swarm", lambda state=None: True)
    with pytest.raises(LabError, match=r"^the revocation drill changes the PKI files .* runs as a swarm stack"):
        drills.revoke(1)
    for run in (lambda: rotation.rotate_intermediate(None, 2, False, False), lambda: rotation.rotate_root(None, None, 2)):
        with pytest.raises(LabError, match=r"^drill rotate-(intermediate|root) changes the PKI files"):
            run()
