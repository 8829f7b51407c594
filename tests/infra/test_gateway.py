"""Gateway in unattended mode: keystore, Java truststore, connection to the primary (the spec's files)."""
import re

from certkit.certs import name_str
from conftest import in_container


def test_unattended_file_has_the_four_settings(gateway, spec):
    text = gateway.file("/pki/unattended-install.conf").content_string
    [gw] = spec.gateways
    assert f'HCP_DEFAULT_KEYSTORE="{in_container(gw.keystore, "gateway")}"' in text
    assert f'HCP_DEFAULT_KEYSTORE_PASSWORD="{gw.keystore_password}"' in text
    assert f'HCP_DEFAULT_TRUSTSTORE="{in_container(gw.truststore, "gateway")}"' in text
    assert f'HCP_DEFAULT_TRUSTSTORE_PASSWORD="{gw.truststore_password}"' in text
    assert f'HCP_PRIMARY_SERVER_ADDRESS="{spec.primary.host}:2560"' in text


def test_truststore_lists_what_the_doctor_trusts_as_trusted_cert_entries(gateway, spec, doctor):
    [gw] = spec.gateways
    out = gateway.check_output(f"keytool -list -v -storetype PKCS12 -keystore {in_container(gw.truststore, 'gateway')} "
                               f"-storepass '{gw.truststore_password}'")
    [endpoint] = [e for e in doctor.material.endpoints if e.key.role == "gateway"]
    owners = re.findall(r"^Owner: (.*)$", out, re.M)
    assert out.count("Entry type: trustedCertEntry") == len(endpoint.anchors) == len(owners), out
    assert sorted(o.replace(" ", "") for o in owners) == sorted(name_str(a.subject).replace(" ", "")
                                                                   for a in endpoint.anchors)
