"""The primary's state on disk: damaged files are kept and reported, never read as defaults."""
from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certkit.fsio import StateError
from safeq_primary import account, paths, state
from safeq_primary.registry import Registry

NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture
def primary_state(tmp_path, monkeypatch):
    """The primary's absolute paths moved under tmp_path."""
    monkeypatch.setattr(paths, "STATE", tmp_path)
    monkeypatch.setattr(paths, "ACCOUNT", tmp_path / "account")
    monkeypatch.setattr(paths, "TRUSTED_CA_DIR", tmp_path / "account" / "trusted-ca")
    monkeypatch.setattr(paths, "SETTINGS", tmp_path / "account" / "settings.json")
    monkeypatch.setattr(paths, "ENDPOINTS", tmp_path / "endpoints.json")
    (tmp_path / "account").mkdir()
    return tmp_path


def ca_cert(cn: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))


def copies(path):
    return sorted(path.parent.glob(path.name + ".corrupt-*"))


# --- settings.json -------------------------------------------------------------------------------
def test_missing_settings_are_the_product_defaults(primary_state):
    assert account.settings() == account.DEFAULTS
    state.preflight()  # nothing there yet: a first start


@pytest.mark.parametrize("content", [b'{"certificate_policy": "trusted-c', b"", b"\xff\xfe garbage", b"[1, 2]",
                                     b'{"certificate_policy": "none"}', b'{"ocsp": "on"}', b"[" * 50000])
def test_damaged_settings_raise_instead_of_defaults(primary_state, content):
    paths.SETTINGS.write_bytes(content)
    with pytest.raises(StateError, match=r"settings\.json.*remove it to start from the product defaults"):
        account.settings()
    with pytest.raises(StateError):
        account.update(certificate_policy="built-in")
    assert paths.SETTINGS.read_bytes() == content  # never overwritten


def test_settings_are_parsed_again_only_when_the_file_changed(primary_state, monkeypatch):
    from types import SimpleNamespace
    from certkit import fsio
    parsed = []
    real = fsio.read_json
    monkeypatch.setattr(fsio, "read_json", lambda *a, **kw: parsed.append(a[0]) or real(*a, **kw))
    now = [0]
    monkeypatch.setattr(state, "time", SimpleNamespace(time_ns=lambda: now[0]))

    def aged(seconds: float) -> None:
        """The clock ``seconds`` after the file's last change."""
        st = paths.SETTINGS.stat()
        now[0] = max(st.st_mtime_ns, st.st_ctime_ns) + int(seconds * 1e9)

    paths.SETTINGS.write_text('{"certificate_policy": "trusted-ca", "auto_trust": true }')
    aged(0.01)  # just written: its times could come again with the next change, read every time
    assert account.settings()["certificate_policy"] == "trusted-ca"
    assert account.settings()["auto_trust"] is True and len(parsed) == 2
    aged(1)
    account.settings()
    for _ in range(3):
        assert account.settings()["auto_trust"] is True
    assert len(parsed) == 3
    # Changed in place to the same size: seen at the next ask, never the old document.
    paths.SETTINGS.write_text('{"certificate_policy": "trusted-ca", "auto_trust": false}')
    assert account.settings()["auto_trust"] is False
    aged(1)
    account.settings()
    paths.SETTINGS.write_text('{"certificate_policy": "trusted-ca", "auto_trust": fals')
    with pytest.raises(StateError, match="not valid JSON"):
        account.settings()


def test_preflight_keeps_one_copy_and_says_what_to_do(primary_state):
    damaged = b'{"certificate_policy": "trusted-ca", "auto_tr'
    paths.SETTINGS.write_bytes(damaged)
    with pytest.raises(StateError) as err:
        state.preflight()
    message = str(err.value)
    [copy] = copies(paths.SETTINGS)
    assert copy.read_bytes() == damaged
    assert paths.SETTINGS.read_bytes() == damaged
    assert message.startswith(f"{paths.SETTINGS} is damaged (not valid JSON")
    assert f"a copy is kept as {copy}" in message
    assert "fix it, or remove it to start from the product defaults" in message
    assert message.endswith("then `systemctl restart safeq-cloud-server`")
    # A supervisor restarting it again and again (seconds apart) does not pile up copies.
    copy = copy.rename(copy.with_name(paths.SETTINGS.name + ".corrupt-20000101T000000Z"))
    for _ in range(3):
        with pytest.raises(StateError, match=f"a copy is kept as {copy}"):
            state.preflight()
    assert copies(paths.SETTINGS) == [copy]


def test_preflight_copies_again_when_the_damage_changed(primary_state, monkeypatch):
    paths.SETTINGS.write_bytes(b"{")
    with pytest.raises(StateError):
        state.preflight()
    paths.SETTINGS.write_bytes(b"{{")
    first = copies(paths.SETTINGS)[0]
    first.rename(first.with_name(paths.SETTINGS.name + ".corrupt-20000101T000000Z"))
    with pytest.raises(StateError):
        state.preflight()
    assert [c.read_bytes() for c in copies(paths.SETTINGS)] == [b"{", b"{{"]


def test_unreadable_settings_are_damage_too(primary_state):
    paths.SETTINGS.mkdir()  # reading a directory fails like an unreadable file, even as root
    with pytest.raises(StateError, match=r"settings\.json is damaged \(cannot be read .*no copy could be made"):
        state.preflight()
    with pytest.raises(StateError, match="cannot be read"):
        account.settings()


def test_preflight_checks_the_endpoints_list_too(primary_state):
    paths.SETTINGS.write_text(json.dumps({"certificate_policy": "trusted-ca"}))
    paths.ENDPOINTS.write_text('{"endpoints": {"a": {"id": "a", "sha256": "AB"}, "b": 7}}')
    with pytest.raises(StateError) as err:
        state.preflight()
    assert f"{paths.ENDPOINTS} is damaged (endpoint record 'b' is not a JSON object)" in str(err.value)
    assert "an empty endpoints list" in str(err.value)
    assert "settings.json" not in str(err.value)
    assert len(copies(paths.ENDPOINTS)) == 1


def test_registry_never_overwrites_a_damaged_endpoints_list(primary_state):
    paths.ENDPOINTS.write_text('{"endpoints": {"a": {"id": "a", "sha2')
    before = paths.ENDPOINTS.read_bytes()
    with pytest.raises(StateError, match="endpoints.json"):
        Registry()
    assert paths.ENDPOINTS.read_bytes() == before


def test_intact_state_passes_preflight(primary_state):
    account.update(certificate_policy="trusted-ca", auto_trust=True)
    Registry().record("AA:BB", "10.0.0.5", name="gw", role="gateway")
    state.preflight()
    assert account.settings()["certificate_policy"] == "trusted-ca"
    assert not copies(paths.SETTINGS) and not copies(paths.ENDPOINTS)


# --- Trusted CA certificates ----------------------------------------------------------------------
def test_trusted_ca_files_are_written_atomically(primary_state, monkeypatch):
    written = []
    real = account.fsio.atomic_write
    monkeypatch.setattr(account.fsio, "atomic_write", lambda path, data, *a: (written.append(path), real(path, data, *a)))
    cert = ca_cert("Acme Root")
    pem = cert.public_bytes(account.serialization.Encoding.PEM)
    [added] = account.import_cas([("root.cer", pem)])
    assert written == [account._file_for(cert)]
    assert [c.subject for c in account.trusted_cas()] == [cert.subject]
    assert added["subject"] == "CN=Acme Root"


def test_a_damaged_trusted_ca_file_is_named_and_the_intact_ones_still_serve(primary_state, caplog):
    good = ca_cert("Acme Root")
    account.import_cas([("root.cer", good.public_bytes(account.serialization.Encoding.PEM))])
    bad = paths.TRUSTED_CA_DIR / ("ab" * 32 + ".pem")
    bad.write_bytes(b"-----BEGIN CERTIFICATE-----\ntruncated")
    with pytest.raises(account.DamagedTrustedCA, match=f"Trusted CA file {bad} is damaged.*remove-ca abababab"):
        account.trusted_cas()
    assert issubclass(account.DamagedTrustedCA, StateError)
    certs, problems = account.trusted_cas_lenient()
    assert [c.subject for c in certs] == [good.subject]
    assert len(problems) == 1 and str(bad) in problems[0]
    # It can be removed by its fingerprint (the file name), as the message says.
    removed = account.remove_ca("abababababababab")
    assert removed["sha256"] == "ab" * 32 and not bad.exists()
    assert [c.subject for c in account.trusted_cas()] == [good.subject]
