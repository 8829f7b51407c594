"""The doc's symptom: a wrong keystore setting makes the primary serve a fallback "localhost"
certificate. Runs last (it restarts the primary) and puts everything back."""
import base64
import json
import re

import pytest

from conftest import wait_for

# Breaks and mends the lab's own PKI (its CA issues what it needs): not run on a spec's files.
pytestmark = pytest.mark.lab_pki

CONF = "/opt/safeqcloud/conf/application.conf"
PFX = "/opt/safeqcloud/conf/primary-host.pfx"
PKIX = ("PKIX path building failed: sun.security.provider.certpath.SunCertPathBuilderException: "
        "unable to find valid certification path to requested target")


def primary_state(primary) -> str:
    return json.loads(primary.check_output("safeq-admin status --json")).get("state")


def restart(primary, expect: str) -> None:
    primary.check_output("systemctl restart safeq-cloud-server")
    assert wait_for(lambda: primary_state(primary) == expect and primary.socket("tcp://0.0.0.0:2560").is_listening, 30)


def served_subject(primary) -> str:
    out = primary.run("openssl s_client -servername primary-host -connect localhost:2560 </dev/null 2>&1").stdout
    return re.search(r"^subject=(.*)$", out, re.M).group(1).replace(" ", "")


@pytest.fixture
def restore(primary, gateway, client):
    saved = primary.file(CONF).content_string
    yield
    encoded = base64.b64encode(saved.encode()).decode()
    primary.check_output(f"echo {encoded} | base64 -d > {CONF} && chmod 644 {PFX}")
    restart(primary, "serving")
    assert primary.run("safeq-admin health").rc == 0
    # Endpoints reconnect by themselves (backoff), as after a real restart.
    assert wait_for(lambda: gateway.run("safeq-gateway health").rc == 0 and client.run("safeq-client health").rc == 0, 40)


def test_wrong_keystore_password_falls_back_to_localhost(primary, gateway, restore):
    primary.check_output(f"sed -i 's|^default-keystore-password = .*|default-keystore-password = \"wrong\"|' {CONF}")
    restart(primary, "fallback")
    assert served_subject(primary) == "CN=localhost"
    log = primary.file("/var/log/safeqcloud/server.log").content_string
    assert (f"Could not load keystore {PFX}: java.io.IOException: keystore password was incorrect. "
            "Falling back to the built-in self-signed certificate (CN=localhost).") in log
    health = primary.run("safeq-admin health")
    assert health.rc == 1 and health.stdout.startswith("serving the fallback localhost certificate")
    # The gateway trusts the lab root only, so the fallback certificate breaks its session.
    reason = wait_for(lambda: (lambda s: s["reason"] if s["state"] != "connected" and "PKIX" in (s["reason"] or "") else None)(
        json.loads(gateway.check_output("safeq-gateway status --json"))), 30)
    assert reason == f"(certificate_unknown) {PKIX}"


def test_unreadable_pfx_falls_back_to_localhost(primary, restore):
    primary.check_output(f"chmod 600 {PFX}")
    restart(primary, "fallback")
    assert served_subject(primary) == "CN=localhost"
    log = primary.file("/var/log/safeqcloud/server.log").content_string
    assert (f"Could not load keystore {PFX}: keystore file {PFX} is not readable by this service "
            "(mode -rw-------, owner uid 0). Falling back") in log
