"""`up --gateways N --clients M`: each extra gateway is compose.yaml's service once more, as its own host
with its own certificate, folder and volume; extra clients share containers (compose.yaml's client once
more), each install its own host, certificate store and name; compose itself reads the file `up` writes."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import pki
from lab import docker, drills, scale, topology
from lab.errors import LabError
from tests.support.fixtures_openssl import openssl

ROOT = Path(__file__).resolve().parents[2]
# compose.yaml's two services as topology reads them (their named volumes included)
BASES = {"gateway": topology.Service("gateway", "safeq-lab-gateway-1", "gateway-host", ("gateway-host",), (), (),
                                     "hosts/gateway-host", "safeq-lab/gateway:latest",
                                     (("gateway-data", "/var/lib/safeq-gateway"),)),
         "client": topology.Service("client", "safeq-lab-client-1", "pcclient-host", ("pcclient-host",), (), (),
                                    "hosts/pcclient-host", "safeq-lab/client:latest",
                                    (("client-data", "/var/lib/safeqclient"),))}


def test_extras_are_named_after_the_base_host():
    items = scale.extras(BASES, {"gateway": 3, "client": 2})
    assert [(e.service, e.base, e.host, e.volumes) for e in items] == [
        ("gateway-2", "gateway", "gateway-host-2", (("gateway-2-data", "/var/lib/safeq-gateway"),)),
        ("gateway-3", "gateway", "gateway-host-3", (("gateway-3-data", "/var/lib/safeq-gateway"),)),
        ("client-2", "client", "pcclient-host-2", (("client-2-data", "/var/lib/safeqclient"),))]
    assert items[-1].installs == items[-1].hosts == ("pcclient-host-2",)
    assert items[0].installs == () and items[0].hosts == ("gateway-host-2",)
    assert scale.extras(BASES, {}) == []


def test_extra_clients_share_containers_each_install_its_own_host():
    items = scale.extras(BASES, {"client": 2 * scale.INSTALLS + 3})
    assert [(e.service, e.host, len(e.installs)) for e in items] == [
        ("client-2", "pcclient-host-2", scale.INSTALLS),
        (f"client-{scale.INSTALLS + 2}", f"pcclient-host-{scale.INSTALLS + 2}", scale.INSTALLS),
        (f"client-{2 * scale.INSTALLS + 2}", f"pcclient-host-{2 * scale.INSTALLS + 2}", 2)]
    hosts = [h for e in items for h in e.installs]
    assert hosts == [f"pcclient-host-{i}" for i in range(2, 2 * scale.INSTALLS + 4)]  # each once, in order


@pytest.mark.parametrize("count", [0, scale.MAX + 1])
def test_a_count_out_of_bounds_is_one_error(count):
    with pytest.raises(LabError, match=rf"--clients {count}: give 1 to {scale.MAX}"):
        scale.extras(BASES, {"client": count})


def test_compose_reads_each_extra_as_its_own_host():
    if shutil.which("docker") is None or subprocess.run(["docker", "compose", "version"], capture_output=True,
                                                        timeout=20).returncode != 0:
        pytest.skip("docker compose is not installed")
    clients = scale.INSTALLS + 3  # one container full of installs, one with two
    items = scale.extras(BASES, {"gateway": 2, "client": clients})
    folder = ROOT / "build" / "test-scale"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        drawn = scale.portal_hosts([("primary", "primary-host"), ("ocsp", "ocsp-host"), ("gateway", "gateway-host"),
                                    ("client", "pcclient-host")], items)
        path = scale.write(folder, items, ROOT / "compose.yaml", f"safeq-lab up --gateways 2 --clients {clients}", drawn)
        env = dict(os.environ, SAFEQ_LAB_FILES="/srv/pki", SAFEQ_LAB_NAME="scaled", **{docker.SCALE_VAR: str(path)})
        config = topology._config(ROOT, env)
    finally:
        shutil.rmtree(folder)
    last = f"client-{scale.INSTALLS + 2}"
    topo = topology.parse(config, Path("/srv/pki"), topology.file_order((ROOT / "compose.yaml").read_text()))
    assert topo.names == ["ocsp", "primary", "gateway", "gateway-2", "client", "client-2", last, "portal"]
    rows = {s.name: (s.host, s.aliases, s.pki_mount, s.role) for s in topo.services}
    assert rows["gateway"] == ("gateway-host", ("gateway-host",), "hosts/gateway-host", "gateway")
    assert rows["gateway-2"] == ("gateway-host-2", ("gateway-host-2",), "hosts/gateway-host-2", "gateway")
    assert rows["client"] == ("pcclient-host", ("pcclient-host",), "hosts/pcclient-host", "client")  # as it was
    hosts = [f"pcclient-host-{i}" for i in range(2, clients + 1)]
    assert rows["client-2"] == ("pcclient-host-2", tuple(hosts[:scale.INSTALLS]), "hosts/pcclient-host-2", "client")
    assert rows[last][1] == tuple(hosts[scale.INSTALLS:]) and rows[last][3] == "client"
    services = config["services"]
    assert "SAFEQ_CLIENT_INSTALLS" not in services["client"]["environment"]
    assert services["client"]["environment"]["SAFEQ_CERTIFICATE_SUBJECT"] == "pcclient-host"
    assert services[last]["environment"]["SAFEQ_CLIENT_INSTALLS"] == " ".join(hosts[scale.INSTALLS:])
    stores = {v["target"]: (v["source"], v.get("read_only")) for v in services[last]["volumes"]}
    for host in hosts[scale.INSTALLS:]:  # each install its own store, read-only; no other host's folder
        assert stores[f"/installs/{host}/store"] == (f"/srv/pki/hosts/{host}/store", True)
    assert stores["/var/lib/safeqclient"][0] == f"{last}-data"
    assert not [s for s, _ in stores.values() if "/hosts/" in s and not any(h in s for h in hosts[scale.INSTALLS:])]
    checks = {name: services[name]["healthcheck"] for name in ("client", last, "gateway", "gateway-2")}
    assert checks["client"]["start_interval"] == checks["gateway"]["start_interval"] == "500ms"  # compose.yaml's
    assert checks[last]["start_interval"] == checks["gateway-2"]["start_interval"] == scale.START_INTERVAL
    assert {**checks[last], "start_interval": "500ms"} == checks["client"]  # the same check otherwise
    assert services["gateway-2"]["image"] == services["gateway"]["image"] and not services["gateway-2"].get("build")
    assert services[last]["image"] == services["client"]["image"] and not services[last].get("build")
    assert services["gateway-2"]["depends_on"]["primary"]["condition"] == "service_healthy"
    volumes = {v["target"]: v["source"] for v in services["gateway-2"]["volumes"]}
    assert volumes["/var/lib/safeq-gateway"] == "gateway-2-data" and volumes["/pki"] == "/srv/pki/hosts/gateway-host-2"
    assert "/opt/safeqlab/java.security" in volumes  # what the extra does not replace is compose.yaml's
    assert {**checks["gateway-2"], "start_interval": "500ms"} == checks["gateway"]
    assert services["portal"]["environment"]["SAFEQ_PORTAL_HOSTS"] == (
        "primary=primary-host ocsp=ocsp-host gateway=gateway-host client=pcclient-host gateway=gateway-host-2 "
        + " ".join(f"client={h}" for h in hosts))
    assert services["portal"]["environment"]["SAFEQ_PORTAL_OCSP"] == "ocsp-host:8080"  # the rest is compose.yaml's
    # The drills find every endpoint and the service that runs it.
    by_host = drills.endpoints(topo)
    assert len(by_host) == 2 + 1 + len(hosts)
    assert by_host["pcclient-host"] == ("client", "client") and by_host["gateway-host-2"] == ("gateway-2", "gateway")
    assert by_host[hosts[-1]] == (last, "client") and by_host[hosts[0]] == ("client-2", "client")


def test_each_extra_gets_its_own_certificate_once(tmp_path):
    pki.init_pki(tmp_path / "pki")
    items = scale.extras(BASES, {"gateway": 2, "client": 3})
    assert scale.issue_missing(tmp_path / "pki", items) == ["gateway-host-2", "pcclient-host-2", "pcclient-host-3"]
    assert scale.issue_missing(tmp_path / "pki", items) == []  # kept: no certificate replaced
    hosts = tmp_path / "pki" / "hosts"
    assert (hosts / "gateway-host-2" / "unattended-install.conf").is_file()
    for host in ("pcclient-host-2", "pcclient-host-3"):  # one container, a store and certificate each
        crt = next((hosts / host / "store" / "My").glob("*.crt"))
        subject = openssl("x509", "-in", str(crt), "-noout", "-subject", "-nameopt", "RFC2253").stdout
        assert f"CN={host}" in subject


def test_back_to_one_each_removes_the_file(tmp_path):
    items = scale.extras(BASES, {"gateway": 2})
    path = scale.write(tmp_path, items, ROOT / "compose.yaml", "up")
    assert path.is_file() and "gateway-2" in path.read_text()
    assert scale.write(tmp_path, [], ROOT / "compose.yaml", "up") is None and not path.exists()


def test_every_compose_call_of_a_scaled_lab_reads_both_files():
    assert docker.compose_files(ROOT, {}) == ["-f", str(ROOT / "compose.yaml")]
    assert docker.compose_files(ROOT, {docker.SCALE_VAR: "/x/compose.scale.yaml"}) == [
        "-f", str(ROOT / "compose.yaml"), "-f", "/x/compose.scale.yaml"]


def test_a_spec_lab_is_not_scaled_before_anything_starts(monkeypatch, tmp_path):
    from click.testing import CliRunner
    from lab.cli import main
    monkeypatch.setattr(docker, "preflight", lambda: pytest.fail("docker touched"))
    result = CliRunner().invoke(main, ["up", "--spec", str(tmp_path / "corp.toml"), "--gateways", "3"])
    assert result.exit_code == 2
    assert "--gateways/--clients issue each extra endpoint a certificate from the lab's own CA" in result.stderr


def test_the_labs_spec_stays_compose_yaml_s_one_gateway_and_client(tmp_path):
    from lab import labstate, spec
    pki.init_pki(tmp_path / "pki")
    before = spec.lab_spec(tmp_path / "pki")
    scale.issue_missing(tmp_path / "pki", scale.extras(BASES, {"gateway": 3, "client": 2}))
    after = spec.lab_spec(tmp_path / "pki")
    assert [g.host for g in after.gateways] == ["gateway-host"] and [c.host for c in after.clients] == ["pcclient-host"]
    assert labstate.host_env(after) == labstate.host_env(before)  # the extras are not compose.yaml's hosts
    assert labstate.identity(after) == labstate.identity(before)  # nor the account's: no fresh start for them


def test_a_drill_restarts_one_client_install_or_one_gateway(monkeypatch):
    from lab import engine
    typed = []
    monkeypatch.setattr(engine, "exec_sh", lambda service, command: typed.append((service, command)))
    by_host = {"gateway-host-2": ("gateway-2", "gateway"), "pcclient-host": ("client", "client"),
               "pcclient-host-7": ("client-2", "client")}
    for host in by_host:
        drills.restart_endpoint(by_host, host)
    assert typed == [("gateway-2", "systemctl restart safeq-gateway"),
                     ("client", "safeq-client restart --install pcclient-host"),  # its container's one: systemctl
                     ("client-2", "safeq-client restart --install pcclient-host-7")]  # that install only
