"""lab.topology reads compose.yaml through `docker compose config --format json`.

CONFIG is that command's output for this repository's compose.yaml, captured with
SAFEQ_PKI_DIR=/srv/lab-pki (nested values kept on one line).
"""
import json
import subprocess
from pathlib import Path

import pytest

from lab import docker, project, status, topology, up
from lab.errors import LabError

ROOT = Path(__file__).resolve().parents[2]
PKI = Path("/srv/lab-pki")
CONFIG = json.loads(r"""
{
 "name": "safeq-lab",
 "networks": {
  "lab": {
   "name": "safeq-lab",
   "ipam": {}
  }
 },
 "services": {
  "client": {
   "build": {"context":"/work/main/images/client","dockerfile":"Dockerfile","args":{"BASE_IMAGE":"safeq-lab/base:latest"}},
   "command": null,
   "depends_on": {"primary":{"condition":"service_healthy","required":true}},
   "entrypoint": null,
   "environment": {"SAFEQ_ACCOUNT_DOMAIN":"lab","SAFEQ_CERTIFICATE_SUBJECT":"pcclient-host","SAFEQ_CERT_STORE":"/pki/store","SAFEQ_LOCAL_STORAGE_MODE":"true","SAFEQ_SERVER_HOST_NAME":"primary-host","SAFEQ_SERVER_PORT":"2560","SAFEQ_USE_SYSTEM_CERTIFICATE":"true"},
   "hostname": "pcclient-host",
   "healthcheck": {"test":["CMD","safeq-client","health"],"timeout":"5s","interval":"2s","retries":3,"start_period":"1m0s","start_interval":"1s"},
   "image": "safeq-lab/client:latest",
   "init": true,
   "networks": {"lab":{"aliases":["pcclient-host"]}},
   "stop_grace_period": "2s",
   "volumes": [{"type":"bind","source":"/srv/lab-pki/hosts/pcclient-host","target":"/pki","read_only":true,"bind":{"create_host_path":true}},{"type":"volume","source":"client-data","target":"/var/lib/safeqclient","volume":{}}]
  },
  "gateway": {
   "build": {"context":"/work/main/images/gateway","dockerfile":"Dockerfile","args":{"BASE_IMAGE":"safeq-lab/base:latest"}},
   "command": null,
   "depends_on": {"primary":{"condition":"service_healthy","required":true}},
   "entrypoint": null,
   "environment": {"HCP_UNATTENDED_FILE":"/pki/unattended-install.conf","SAFEQ_ENDPOINT_CERTIFICATES":"trusted","SAFEQ_GATEWAY_OCSP":"off","SAFEQ_GATEWAY_OCSP_ON_FAILURE":"fail-closed"},
   "hostname": "gateway-host",
   "healthcheck": {"test":["CMD","safeq-gateway","health"],"timeout":"5s","interval":"2s","retries":3,"start_period":"1m0s","start_interval":"1s"},
   "image": "safeq-lab/gateway:latest",
   "init": true,
   "networks": {"lab":{"aliases":["gateway-host"]}},
   "stop_grace_period": "2s",
   "volumes": [{"type":"bind","source":"/srv/lab-pki/hosts/gateway-host","target":"/pki","read_only":true,"bind":{"create_host_path":true}},{"type":"volume","source":"gateway-data","target":"/var/lib/safeq-gateway","volume":{}}]
  },
  "ocsp": {
   "build": {"context":"/work/main/images/ocsp","dockerfile":"Dockerfile","args":{"BASE_IMAGE":"safeq-lab/base:latest"}},
   "command": null,
   "entrypoint": null,
   "environment": {"OCSP_VALIDITY_SECONDS":"60"},
   "hostname": "ocsp-host",
   "healthcheck": {"test":["CMD","safeq-ocsp","health"],"timeout":"5s","interval":"2s","retries":3,"start_period":"30s","start_interval":"1s"},
   "image": "safeq-lab/ocsp:latest",
   "init": true,
   "networks": {"lab":{"aliases":["ocsp-host"]}},
   "stop_grace_period": "2s",
   "volumes": [{"type":"bind","source":"/srv/lab-pki/hosts/ocsp-host","target":"/pki","read_only":true,"bind":{"create_host_path":true}}]
  },
  "primary": {
   "build": {"context":"/work/main/images/primary","dockerfile":"Dockerfile","args":{"BASE_IMAGE":"safeq-lab/base:latest"}},
   "command": null,
   "depends_on": {"ocsp":{"condition":"service_healthy","required":true}},
   "entrypoint": null,
   "hostname": "primary-host",
   "healthcheck": {"test":["CMD","safeq-admin","health"],"timeout":"10s","interval":"2s","retries":3,"start_period":"2m0s","start_interval":"1s"},
   "image": "safeq-lab/primary:latest",
   "init": true,
   "networks": {"lab":{"aliases":["primary-host"]}},
   "ports": [{"mode":"ingress","host_ip":"127.0.0.1","target":2560,"published":"2560","protocol":"tcp"}],
   "stop_grace_period": "2s",
   "volumes": [{"type":"bind","source":"/srv/lab-pki/hosts/primary-host","target":"/pki","read_only":true,"bind":{"create_host_path":true}},{"type":"volume","source":"primary-data","target":"/var/lib/safeqcloud","volume":{}}]
  }
 },
 "volumes": {
  "client-data": {
   "name": "safeq-lab_client-data"
  },
  "gateway-data": {
   "name": "safeq-lab_gateway-data"
  },
  "primary-data": {
   "name": "safeq-lab_primary-data"
  }
 },
 "x-service": {
  "init": true,
  "stop_grace_period": "2s"
 }
}
""")


@pytest.fixture
def topo() -> topology.Topology:
    return topology.parse(CONFIG, PKI, topology.file_order((ROOT / "compose.yaml").read_text()))


def test_services_come_in_the_file_s_order_with_their_names_and_containers(topo):
    assert (topo.project, topo.network) == ("safeq-lab", "safeq-lab")
    assert topo.names == ["ocsp", "primary", "gateway", "client"]
    assert [s.host for s in topo.services] == ["ocsp-host", "primary-host", "gateway-host", "pcclient-host"]
    assert [s.container for s in topo.services] == [f"safeq-lab-{n}-1" for n in topo.names]


def test_primary_service_in_full(topo):
    assert topo.service("primary") == topology.Service(
        name="primary", container="safeq-lab-primary-1", hostname="primary-host", aliases=("primary-host",),
        ports=(topology.Port("127.0.0.1", "2560", 2560, "tcp"),), exposed=(), pki_mount="hosts/primary-host",
        image="safeq-lab/primary:latest", volumes=(("primary-data", "/var/lib/safeqcloud"),), depends_on=("ocsp",))
    assert topo.service("primary").role == "primary"
    assert topo.service("primary").port == "2560"


def test_what_compose_starts_with_a_service(topo):
    assert topo.started_with("primary") == {"primary", "ocsp"}
    assert topo.started_with("gateway") == {"gateway", "primary", "ocsp"}
    assert topo.started_with("ocsp") == {"ocsp"}


def test_pki_mounts_are_relative_to_the_pki_dir(topo):
    assert {s.name: s.pki_mount for s in topo.services} == {
        "ocsp": "hosts/ocsp-host", "primary": "hosts/primary-host", "gateway": "hosts/gateway-host",
        "client": "hosts/pcclient-host"}
    # Parsed against another PKI dir, the same binds are not under it.
    other = topology.parse(CONFIG, Path("/elsewhere"))
    assert {s.pki_mount for s in other.services} == {None}


def test_container_name_expose_and_unknown_service():
    config = {"name": "demo", "services": {"web": {
        "container_name": "the-web", "hostname": None, "expose": ["8080/tcp"],
        "networks": {"a": {"aliases": ["w1", "w2"]}, "b": None, "c": {"aliases": ["w1"]}},
        "ports": [{"target": 80, "published": "8081"}]}}}
    web = topology.parse(config, PKI).service("web")
    assert (web.container, web.aliases, web.host, web.exposed) == ("the-web", ("w1", "w2"), "w1", ("8080/tcp",))
    assert web.ports == (topology.Port("0.0.0.0", "8081", 80, "tcp"),)
    assert web.port == "80"
    assert topology.Service("x", "c", None, (), (), ("8080/tcp",), None).port == "8080"
    with pytest.raises(LabError, match=r"compose.yaml has no service 'db' \(it has web\)"):
        topology.parse(config, PKI).service("db")


def test_no_name_or_no_services_is_an_error():
    with pytest.raises(LabError, match="no project name or no services"):
        topology.parse({"services": {"a": {}}}, PKI)


def test_file_order_reads_only_the_services_block():
    text = """# comment
name: demo
x-common: &common
  init: true
services:
  # a comment at service level
  zed:   # trailing comment
    <<: *common
    environment:
      alpha: "1"
  mid: {image: busybox}

  alpha:
    image: busybox
volumes:
  data:
"""
    assert topology.file_order(text) == ["zed", "mid", "alpha"]
    config = {"name": "demo", "services": {n: {} for n in ("alpha", "mid", "zed", "extra")}}
    assert topology.parse(config, PKI, topology.file_order(text)).names == ["zed", "mid", "alpha", "extra"]


def fake_config(calls, stdout=None, rc=0, stderr="", exc=None):
    def run(argv, **kwargs):
        calls.append((argv, kwargs))
        if exc:
            raise exc
        return subprocess.CompletedProcess(argv, rc, stdout=json.dumps(CONFIG) if stdout is None else stdout,
                                           stderr=stderr)
    return run


@pytest.fixture
def lab_env(monkeypatch):
    monkeypatch.setenv("SAFEQ_PKI_DIR", str(PKI))  # the lab's own PKI: no lab.json (see conftest)
    monkeypatch.setattr(topology, "_cache", {})


def test_load_runs_compose_config_once_with_the_pki_dir_and_a_timeout(monkeypatch, lab_env):
    calls = []
    monkeypatch.setattr(docker.subprocess, "run", fake_config(calls))
    first, second = topology.load(), topology.load()
    assert first is second and len(calls) == 1
    argv, kwargs = calls[0]
    assert argv == ["docker", "compose", "-f", str(project.root() / "compose.yaml"), "config", "--format", "json"]
    assert kwargs["env"]["SAFEQ_LAB_FILES"] == str(PKI) and kwargs["timeout"] == topology.CONFIG_TIMEOUT
    assert first.names == ["ocsp", "primary", "gateway", "client"]
    assert first.service("gateway").pki_mount == "hosts/gateway-host"


@pytest.mark.parametrize("kwargs, message", [
    ({"exc": subprocess.TimeoutExpired("docker", 20)},
     r"^`docker compose config` did not answer in 20 s: check that Docker responds"),
    ({"rc": 15, "stderr": "yaml: line 3: mapping values are not allowed"},
     r"^`docker compose config` cannot read compose.yaml \(yaml: line 3: mapping values are not allowed\): fix"),
    ({"stdout": "services:\n"}, r"is not JSON: update Docker Compose to v2$"),
])
def test_load_failures_say_what_to_do(monkeypatch, lab_env, kwargs, message):
    monkeypatch.setattr(docker.subprocess, "run", fake_config([], **kwargs))
    with pytest.raises(LabError, match=message):
        topology.load()


def test_summary_ports_and_hosts_come_from_the_topology(topo):
    result = {"services": [{"name": n, "host": topo.service(n).host, "state": "running", "health": "healthy"}
                           for n in reversed(topo.names)],
              "reports": {"primary": {"state": "trusted-ca", "serving": {"subject": "CN=primary-host", "issuer": "CN=I"}},
                          "gateway": {"state": "connected"}},
              "endpoints": [
                  {"name": "gateway-host", "subject": "CN=old", "state": "disconnected", "last_seen": "2026-01-02T00:00:00+00:00"},
                  {"name": "gateway-host", "subject": "CN=gateway-host", "issuer": "CN=I", "decision": "accepted",
                   "state": "connected", "last_seen": "2026-01-01T00:00:00+00:00"}]}
    rows = status.summary_rows(result, topo)
    assert [r[:3] for r in rows] == [("ocsp", "ocsp-host", ""), ("primary", "primary-host", "2560"),
                                     ("gateway", "gateway-host", ""), ("client", "pcclient-host", "")]
    assert rows[2][3:] == ("CN=gateway-host", "CN=I", "healthy, connected (accepted)")  # the connected record
    assert rows[1][3:] == ("CN=primary-host", "CN=I", "healthy, trusted-ca")


def test_host_dirs_are_checked_per_mounted_service(topo, tmp_path):
    for svc in topo.services:
        if svc.name != "primary":  # a missing folder is missing too
            (tmp_path / svc.pki_mount).mkdir(parents=True)
    with pytest.raises(LabError) as err:
        up.check_host_dirs(tmp_path, topo)
    assert str(err.value) == (
        f"the PKI in {tmp_path} lacks hosts/ocsp-host/responder.json, "
        "hosts/primary-host, hosts/gateway-host/unattended-install.conf, hosts/pcclient-host/store: "
        "recreate it with `safeq-lab pki init --force`, or complete those folders")
    (tmp_path / "hosts" / "primary-host").mkdir()
    for svc in topo.services:
        if svc.name in up.HOST_DIR_PROOF:
            (tmp_path / svc.pki_mount / up.HOST_DIR_PROOF[svc.name]).touch()
    up.check_host_dirs(tmp_path, topo)
    assert up.primary_host_dir(tmp_path, topo) == tmp_path / "hosts" / "primary-host"


def test_the_ocsp_row_says_a_specs_lab_has_no_signers(topo, no_running_lab_state, tmp_path):
    from lab import labstate
    result = {"services": [{"name": "ocsp", "host": "ocsp-host", "state": "running", "health": "healthy"}],
              "reports": {}, "endpoints": []}
    assert status.summary_rows(result, topo)[0][3] == "(delegated OCSP signers)"
    labstate.save(labstate.LabState(tmp_path, spec_file=str(tmp_path / "corp.toml")))
    assert status.summary_rows(result, topo)[0][3] == "(no CA: a spec brings no OCSP signers)"
