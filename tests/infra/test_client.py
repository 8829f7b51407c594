"""SAFEQ Cloud Client stand-in in local storage mode."""
import json


def test_store_holds_the_entity_certificate_with_its_key(client):
    assert client.file("/pki/store/My/pcclient-host.crt").exists
    assert client.file("/pki/store/My/pcclient-host.key").exists
    subject = client.check_output("openssl x509 -in /pki/store/My/pcclient-host.crt -noout -subject")
    assert "CN=pcclient-host" in subject.replace(" ", "")


def test_status_icon_is_grey(client):
    status = json.loads(client.check_output("safeq-client status --json"))
    assert status["icon"] == "grey", status
    assert status["state"] == "connected"


def test_log_names_the_chosen_certificate(client):
    log = client.file("/ProgramData/safeqclientcore/logs/safeqclientcore.log").content_string
    assert "Using system certificate subject=CN=pcclient-host," in log
    assert "Connected to primary-host:2560 as client pcclient-host" in log
