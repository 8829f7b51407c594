"""Gateway in unattended mode: keystore, Java truststore, connection to the primary."""
import json
import re


def test_unattended_file_has_the_four_settings(gateway, manifest):
    text = gateway.file("/pki/unattended-install.conf").content_string
    gw = next(e for e in manifest["entities"] if e["name"] == "gateway-host")
    ts = manifest["truststores"][0]
    assert 'HCP_DEFAULT_KEYSTORE="/pki/gateway-host.pfx"' in text
    assert f'HCP_DEFAULT_KEYSTORE_PASSWORD="{gw["pfx_password"]}"' in text
    assert 'HCP_DEFAULT_TRUSTSTORE="/pki/acme-ca.pfx"' in text
    assert f'HCP_DEFAULT_TRUSTSTORE_PASSWORD="{ts["password"]}"' in text


def test_truststore_lists_the_root_as_trusted_cert_entry(gateway, manifest):
    ts = manifest["truststores"][0]
    out = gateway.check_output(f"keytool -list -v -storetype PKCS12 -keystore /pki/acme-ca.pfx -storepass '{ts['password']}'")
    assert re.search(r"Your keystore contains 1 entry", out)
    assert "Entry type: trustedCertEntry" in out
    assert f"Owner: CN={manifest['cas'][0]['name']}" in out


def test_gateway_connected_to_verified_primary(gateway):
    state = json.loads(gateway.check_output("safeq-gateway status --json"))
    assert state["state"] == "connected", state
    assert state["peer"]["host"] == "primary-host"
    assert state["peer"]["verified"] is True
    assert state["peer"]["subject"].startswith("CN=primary-host")


def test_gateway_session_sends_sni_as_java_would_and_tls12_or_better(primary):
    from conftest import endpoint
    gw = endpoint(primary, "gateway-host")
    assert gw["sni"] is None  # a Java client sends no SNI for a host name without a dot (primary-host)
    assert gw["tls"] in ("TLSv1.2", "TLSv1.3")
