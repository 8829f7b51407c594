"""The client's stand-in for the Windows certificate store (safeqlab.client), with certificates made here."""
from __future__ import annotations

import argparse
import datetime as dt
import logging
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certkit import fsio
from certkit.certs import fingerprint, key_pem, pem
from safeqlab import client
from safeqlab.endpoint import SetupError

NOW = dt.datetime.now(dt.timezone.utc)


def make(cn: str, issuer=None, ca: bool = False, days=(-1, 30)):
    """(certificate, key); subject CN=<cn>,O=Acme; self-signed unless ``issuer`` is (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    signer_name, signer_key = (issuer[0].subject, issuer[1]) if issuer else (name, key)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(signer_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW + dt.timedelta(days=days[0])).not_valid_after(NOW + dt.timedelta(days=days[1]))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(signer_key, hashes.SHA256()))
    return cert, key


@pytest.fixture(scope="module")
def pki():
    root = make("Acme-CA-Root", ca=True)
    inter = make("Acme-CA-Intermediate", root, ca=True)
    return {"root": root, "inter": inter, "leaf": make("pcclient-host", inter),
            "other": make("Other-CA-Root", ca=True)}


def personal(store: Path, name: str, cert, key=None) -> None:
    (store / "My").mkdir(parents=True, exist_ok=True)
    (store / "My" / f"{name}.crt").write_text(pem([cert]))
    if key is not None:
        (store / "My" / f"{name}.key").write_bytes(key_pem(key))


@pytest.fixture
def store(tmp_path, pki) -> Path:
    """The lab's store: the client's certificate with its key, the intermediate, the root."""
    folder = tmp_path / "store"
    personal(folder, "pcclient-host", *pki["leaf"])
    for sub, ca in (("CA", "inter"), ("Root", "root")):
        (folder / sub).mkdir()
        (folder / sub / f"Acme-{sub}.crt").write_text(pem([pki[ca][0]]))
    return folder


# --- "Use pre-configured system certificate": selection by subject substring -------------------

@pytest.mark.parametrize("wanted", ["pcclient-host", "PCCLIENT", "O=Acme"])
def test_subject_substring_matches_the_certificate(store, pki, wanted):
    cert, key = client.select_certificate(store, wanted)
    assert cert == pki["leaf"][0]
    assert key_pem(key) == key_pem(pki["leaf"][1])


def test_subject_substring_may_match_the_issuer(store, pki):
    cert, _ = client.select_certificate(store, "Acme-CA-Intermediate")
    assert cert == pki["leaf"][0]


def test_certificate_without_its_key_is_skipped(store, pki):
    personal(store, "a-keyless", make("pcclient-host", pki["inter"])[0])  # sorts first
    cert, _ = client.select_certificate(store, "pcclient-host")
    assert cert == pki["leaf"][0]
    (store / "My" / "pcclient-host.key").unlink()
    with pytest.raises(SetupError, match="no certificate with a private key"):
        client.select_certificate(store, "pcclient-host")


@pytest.mark.parametrize("days", [(-30, -1), (1, 30)], ids=["expired", "not-yet-valid"])
def test_certificate_outside_its_validity_is_skipped(store, pki, days):
    personal(store, "a-out-of-date", *make("pcclient-host", pki["inter"], days=days))  # sorts first
    cert, _ = client.select_certificate(store, "pcclient-host")
    assert cert == pki["leaf"][0]
    (store / "My" / "pcclient-host.crt").unlink()
    with pytest.raises(SetupError, match="no certificate with a private key"):
        client.select_certificate(store, "pcclient-host")


def test_nothing_matching_says_what_the_personal_store_holds(store, pki):
    personal(store, "other-host", *make("other-host", pki["other"]))
    with pytest.raises(SetupError) as err:
        client.select_certificate(store, "no-such-host")
    assert str(err.value) == ("no certificate with a private key in the Personal store matches subject "
                              "'no-such-host' (Personal store holds: CN=other-host,O=Acme, CN=pcclient-host,O=Acme)")


def test_empty_personal_store_holds_nothing(tmp_path):
    with pytest.raises(SetupError, match=r"\(Personal store holds: nothing\)$"):
        client.select_certificate(tmp_path, "pcclient-host")


def test_damaged_personal_certificate_is_a_setup_error_naming_the_file(store):
    (store / "My" / "broken.crt").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(SetupError, match=r"broken\.crt: not an X\.509 certificate"):
        client.select_certificate(store, "pcclient-host")


# --- the Intermediate and Root stores ---------------------------------------------------------------

def test_store_folders_hold_pem_and_der_and_ignore_other_files(tmp_path, pki):
    folder = tmp_path / "CA"
    folder.mkdir()
    (folder / "a.pem").write_text(pem([pki["root"][0], pki["inter"][0]]))
    (folder / "b.cer").write_bytes(pki["other"][0].public_bytes(serialization.Encoding.DER))
    (folder / "readme.txt").write_text("not a certificate")
    assert client.load_dir(folder) == [pki["root"][0], pki["inter"][0], pki["other"][0]]
    assert client.load_dir(tmp_path / "missing") == []


def test_empty_store_file_is_a_setup_error(tmp_path):
    (tmp_path / "empty.crt").write_bytes(b"")
    with pytest.raises(SetupError, match=r"empty\.crt: the file is empty"):
        client.load_dir(tmp_path)


def test_chain_sent_is_the_leaf_and_its_issuers_without_a_root(pki):
    pool = [pki["other"][0], pki["root"][0], pki["inter"][0]]  # a root put in the CA store by mistake
    assert client.chain_for(pki["leaf"][0], pool) == [pki["leaf"][0], pki["inter"][0]]
    assert client.chain_for(pki["leaf"][0], []) == [pki["leaf"][0]]
    assert client.chain_for(pki["root"][0], pool) == [pki["root"][0]]


def test_chain_follows_signatures_not_names(pki):
    impostor = make("Acme-CA-Intermediate", pki["other"], ca=True)[0]  # same subject, another key
    assert client.chain_for(pki["leaf"][0], [impostor, pki["inter"][0]]) == [pki["leaf"][0], pki["inter"][0]]


def test_identity_is_the_selected_certificate_and_is_logged_once(store, pki, tmp_path, monkeypatch, caplog):
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(pem([pki["other"][0]]))
    monkeypatch.setattr(client, "SYSTEM_BUNDLE", str(bundle))
    monkeypatch.setattr(client, "WORKDIR", str(tmp_path))
    log = logging.getLogger("test-endpoint-client")
    make_identity = client.identity_factory(client.Client(subject="pcclient", store=str(store)), log)
    with caplog.at_level(logging.INFO, logger=log.name):
        identity = make_identity()
        make_identity()
    leaf = pki["leaf"][0]
    assert identity.name == "pcclient-host"
    assert identity.chain == [leaf, pki["inter"][0]]
    assert key_pem(identity.key) == key_pem(pki["leaf"][1])
    # The primary is judged against Root/, CA/ and the system's public CAs, as Windows' stores hold them.
    assert identity.anchors == [pki["root"][0], pki["inter"][0], pki["other"][0]]
    assert [r.getMessage() for r in caplog.records] == [
        "Using system certificate subject=CN=pcclient-host,O=Acme issuer=CN=Acme-CA-Intermediate,O=Acme "
        f"thumbprint={fingerprint(leaf).replace(':', '')}"]


def test_unreadable_system_bundle_is_a_setup_error_naming_it(store, tmp_path, monkeypatch):
    monkeypatch.setattr(client, "SYSTEM_BUNDLE", str(tmp_path / "missing.crt"))
    make_identity = client.identity_factory(client.Client(subject="pcclient", store=str(store)),
                                            logging.getLogger("test-endpoint-client"))
    with pytest.raises(SetupError) as err:
        make_identity()
    assert str(err.value) == f"system CA bundle {tmp_path / 'missing.crt'}: No such file or directory"


# --- the configuration and the notification icon --------------------------------------------------

def test_connection_test_options_override_the_configuration(tmp_path, monkeypatch):
    monkeypatch.setenv("SAFEQ_CERTIFICATE_SUBJECT", "pcclient-host")
    monkeypatch.setenv("SAFEQ_CERT_STORE", "/pki/store")
    spec = client.Client()
    assert (spec.subject(), spec.store_dir()) == ("pcclient-host", Path("/pki/store"))
    spec.apply_options(argparse.Namespace(subject="", store=str(tmp_path)))
    assert (spec.subject(), spec.store_dir()) == ("", tmp_path)


def test_local_storage_mode_off_is_reported(monkeypatch):
    monkeypatch.setenv("SAFEQ_LOCAL_STORAGE_MODE", "false")
    with pytest.raises(SetupError, match="^local storage mode is off: "):
        client.Client().preflight()
    monkeypatch.setenv("SAFEQ_LOCAL_STORAGE_MODE", "true")
    client.Client().preflight()


def test_server_address_from_the_environment(monkeypatch):
    monkeypatch.setenv("SAFEQ_SERVER_HOST_NAME", "primary.acme.example")
    monkeypatch.setenv("SAFEQ_SERVER_PORT", "12560")
    assert client.Client().address() == ("primary.acme.example", 12560)
    monkeypatch.setenv("SAFEQ_SERVER_PORT", "twenty")
    with pytest.raises(SetupError, match="SAFEQ_SERVER_PORT must be a port number, not 'twenty'"):
        client.Client().address()


def test_use_system_certificate_off_means_builtin(monkeypatch):
    monkeypatch.setenv("SAFEQ_USE_SYSTEM_CERTIFICATE", "false")
    assert client.Client().builtin() is True
    monkeypatch.setenv("SAFEQ_USE_SYSTEM_CERTIFICATE", "true")
    assert client.Client().builtin() is False


def test_icon_is_grey_only_while_connected(tmp_path):
    status = client.ClientStatus(tmp_path / "status.json")
    status.set("connected", None, peer={"host": "primary-host", "subject": "CN=primary-host"})
    assert fsio.read_json(tmp_path / "status.json")["icon"] == "grey"
    for state in ("disconnected", "refused", "error"):
        status.set(state, "why")
        assert fsio.read_json(tmp_path / "status.json")["icon"] == "yellow"


def test_status_prints_the_icon_and_why(tmp_path, capsys):
    spec = client.Client()
    spec.state_path = tmp_path / "status.json"
    status = spec.state_file()
    assert client.service.main(["status"], spec) == 0
    assert capsys.readouterr().out == "yellow: starting: None\n"
    status.set("connected", None, peer={"host": "primary-host", "subject": "CN=primary-host,O=Acme"})
    status.ack()
    assert client.service.main(["status"], spec) == 0
    assert capsys.readouterr().out == "grey: connected to primary-host (CN=primary-host,O=Acme)\n"
    assert client.service.main(["health"], spec) == 0
    status.set("disconnected", "Connection refused")
    assert client.service.main(["status"], spec) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "yellow: disconnected: Connection refused"
