"""Misconfigurations fail the way the real product would, with the reason it would give."""
import json
import re
import shlex

import pytest

from conftest import endpoints, wait_for

# Breaks and mends the lab's own PKI (its CA issues what it needs): not run on a spec's files.
pytestmark = pytest.mark.lab_pki

PKIX = ("PKIX path building failed: sun.security.provider.certpath.SunCertPathBuilderException: "
        "unable to find valid certification path to requested target")


def test_self_signed_client_is_refused_and_the_primary_logs_why(client, primary):
    client.check_output("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
                        "-subj /CN=rogue-host -keyout /tmp/rogue.key -out /tmp/rogue.crt 2>/dev/null")
    # -ign_eof: s_client reads on past its input, until the primary's alert and close (bounded by timeout).
    out = client.run("echo '{\"type\":\"hello\",\"role\":\"client\",\"name\":\"rogue-host\"}' | "
                     "timeout 10 openssl s_client -ign_eof -connect primary-host:2560 -servername primary-host "
                     "-cert /tmp/rogue.crt -key /tmp/rogue.key 2>&1")
    # The JRE refuses the chain; the alert is the one a Java server sends (s_client reads it after
    # its TLS 1.3 handshake), the log line is JRE 21's.
    assert "alert certificate unknown" in out.stdout, out.stdout
    expected = f"(certificate_unknown) {PKIX}"
    log = wait_for(lambda: (lambda t: t if expected in t else "")(primary.file("/var/log/safeqcloud/server.log").content_string), 10)
    assert re.search(r"Refused TLS connection from \d+\.\d+\.\d+\.\d+: " + re.escape(expected), log)
    # A handshake that shows no identity is listed among the refused connections, not as an endpoint.
    client_ip = client.check_output("hostname -i").split()[0]
    refused = json.loads(primary.check_output("safeq-admin api GET /api/v1/refused"))
    assert any(r["address"] == client_ip and r["reason"] == expected for r in refused), refused
    assert not [e for e in endpoints(primary) if e.get("role") in (None, "unknown") or e["name"] == "rogue-host"]


def test_garbage_and_half_open_connections_do_not_hurt_the_primary(client, primary):
    client.check_output("python3 -c \"import socket,time\n"
                        "s=socket.create_connection(('primary-host',2560)); s.sendall(b'GET / HTTP/1.0\\\\r\\\\n\\\\r\\\\n' + bytes(range(256))*8); s.close()\n"
                        "h=socket.create_connection(('primary-host',2560)); time.sleep(0.2); h.close()\"")
    log = wait_for(lambda: (lambda t: t if "Unsupported or unrecognized SSL message" in t else "")(
        primary.file("/var/log/safeqcloud/server.log").content_string), 10)
    assert "Unsupported or unrecognized SSL message" in log
    assert primary.run("safeq-admin health").rc == 0
    assert primary.run("systemctl is-active safeq-cloud-server").stdout.strip() == "active"


# --- gateway: the installer's connection test with a broken unattended file -------------------

def gateway_try(gateway, manifest, **overrides) -> str:
    gw = next(e for e in manifest["entities"] if e["name"] == "gateway-host")
    settings = {
        "HCP_DEFAULT_KEYSTORE": "/pki/gateway-host.pfx",
        "HCP_DEFAULT_KEYSTORE_PASSWORD": gw["pfx_password"],
        "HCP_DEFAULT_TRUSTSTORE": "/pki/acme-ca.pfx",
        "HCP_DEFAULT_TRUSTSTORE_PASSWORD": manifest["truststores"][0]["password"],
        "HCP_PRIMARY_SERVER_ADDRESS": "primary-host:2560",
        **overrides,
    }
    body = "".join(f'{k}="{v}"\n' for k, v in settings.items())
    gateway.check_output(f"mkdir -p /tmp/neg && printf %s {shlex.quote(body)} > /tmp/neg/unattended.conf")
    out = gateway.run("safeq-gateway test-connection --unattended /tmp/neg/unattended.conf")
    return f"{out.rc}:{out.stdout.strip().splitlines()[-1]}"


def test_gateway_connection_test_passes_with_the_generated_file(gateway, manifest):
    result = gateway_try(gateway, manifest)
    assert result.startswith("0:ok: connected to primary-host:2560; server certificate CN=primary-host"), result


def test_gateway_wrong_keystore_password(gateway, manifest):
    result = gateway_try(gateway, manifest, HCP_DEFAULT_KEYSTORE_PASSWORD="not-the-password")
    assert result == "1:failed: java.io.IOException: keystore password was incorrect"
