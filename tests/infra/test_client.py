"""SAFEQ Cloud Client stand-in in local storage mode (the spec's store)."""
import json

import pytest

from certkit.certs import common_name, name_str


def client_leaf(doctor):
    return next(e for e in doctor.material.endpoints if e.key.role == "client").key.chain[0]


def test_store_holds_the_entity_certificate_with_its_key(client, spec, doctor):
    [cl] = spec.clients
    my = sorted(p.name for p in (cl.store / "My").iterdir())
    assert [n for n in my if n.endswith(".crt")] and [n for n in my if n.endswith(".key")], my
    crt = next(n for n in my if n.endswith(".crt"))
    assert client.file(f"/pki/store/My/{crt}").exists
    subject = client.check_output(f"openssl x509 -in /pki/store/My/{crt} -noout -subject -nameopt RFC2253")
    assert subject.strip() == f"subject={name_str(client_leaf(doctor).subject)}"


def test_status_icon_is_grey_when_the_doctor_foresees_a_connection(client, spec, doctor):
    [outcome] = [c for c in doctor.connections if c.role == "client"]
    status = json.loads(client.check_output("safeq-client status --json"))
    if not outcome.connects:
        assert status["icon"] != "grey", status
        pytest.skip(f"the doctor foresees the client refused: {outcome.reason} (checked in test_endpoints)")
    assert status["icon"] == "grey", status
    assert status["state"] == "connected"


def test_log_names_the_chosen_certificate(client, spec, doctor):
    log = client.file("/ProgramData/safeqclientcore/logs/safeqclientcore.log").content_string
    assert f"Using system certificate subject={name_str(client_leaf(doctor).subject)} " in log
    if next(c for c in doctor.connections if c.role == "client").connects:
        assert f"Connected to {spec.primary.host}:2560 as client {common_name(client_leaf(doctor))}" in log
