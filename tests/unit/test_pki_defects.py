"""`pki defect`: a host's folder gets files with a deliberate mistake; openssl and keytool judge them."""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

import pki
from pki import defects

ROOT_CA, INTERMEDIATE = "Acme-CA-Root", "Acme-CA-Intermediate"
# What the CA records and the other hosts read: a defect must not change a byte of it.
UNTOUCHED = ("entities", "ca", "cas", "truststores", "manifest.json", "hosts/ocsp-host")


def _records(pki_tools, root: Path) -> dict:
    state = {}
    for rel in UNTOUCHED:
        path = root / rel
        state[rel] = pki_tools.tree_state(path) if path.is_dir() else path.read_bytes()
    return state


def _password(root: Path, host: str) -> str:
    return next(e["pfx_password"] for e in pki.load_manifest(root)["entities"] if e["name"] == host)


def _pfx(pki_tools, root: Path, host: str, tmp_path: Path) -> tuple[Path, Path, str]:
    """Extract hosts/<host>/<host>.pfx with openssl: (leaf PEM, CA PEMs, full -nokeys text)."""
    pfx = str(root / "hosts" / host / f"{host}.pfx")
    pw = f"pass:{_password(root, host)}"
    leaf, cas = tmp_path / f"{host}-leaf.pem", tmp_path / f"{host}-cas.pem"
    pki_tools.openssl("pkcs12", "-in", pfx, "-passin", pw, "-nokeys", "-clcerts", "-out", str(leaf))
    pki_tools.openssl("pkcs12", "-in", pfx, "-passin", pw, "-nokeys", "-cacerts", "-out", str(cas))
    text = pki_tools.openssl("pkcs12", "-in", pfx, "-passin", pw, "-nokeys").stdout.decode()
    return leaf, cas, text


def _verify(pki_tools, root: Path, leaf: Path, untrusted: Path | None, *extra: str):
    args = ["verify", "-CAfile", str(root / "cas" / f"{ROOT_CA}.crt"), *extra]
    if untrusted is not None and untrusted.read_bytes().strip():
        args += ["-untrusted", str(untrusted)]
    proc = pki_tools.openssl(*args, str(leaf), check=False)
    return proc.returncode, (proc.stdout + proc.stderr).decode()


def _subjects(text: str) -> list[str]:
    return re.findall(r"^subject=(.*)$", text, re.M)


def _keytool_list(pki_tools, store: Path, password: str) -> str:
    return pki_tools.keytool("-list", "-v", "-storetype", "PKCS12", "-keystore", str(store),
                             "-storepass", password).stdout.decode()


@pytest.mark.parametrize("host,kind", [
    ("primary-host", "expired"), ("gateway-host", "not-yet-valid"), ("pcclient-host", "no-client-auth"),
    ("gateway-host", "leaf-only"), ("pcclient-host", "issuer-not-ca"), ("primary-host", "self-signed"),
    ("gateway-host", "truststore-nokeys"), ("gateway-host", "truststore-without-root"),
])
def test_defect_changes_only_the_host_folder_and_reissue_repairs_it(pki_tools, fresh_pki, tmp_path, host, kind):
    records = _records(pki_tools, fresh_pki)
    hdir = fresh_pki / "hosts" / host
    inode = os.stat(hdir).st_ino
    layout = sorted(str(p.relative_to(hdir)) for p in hdir.rglob("*"))

    written = defects.apply(fresh_pki, host, kind)

    assert written and all(p.is_relative_to(hdir) and p.is_file() for p in written)
    assert _records(pki_tools, fresh_pki) == records
    assert os.stat(hdir).st_ino == inode  # changed in place: a running bind mount sees it
    assert sorted(str(p.relative_to(hdir)) for p in hdir.rglob("*")) == layout or kind in ("leaf-only", "issuer-not-ca")
    for path in hdir.rglob("*"):
        if path.suffix in (".pfx", ".key") or path.name == "unattended-install.conf":
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    pki.reissue(fresh_pki, host)
    if host == "pcclient-host":
        store = hdir / "store"
        leaf, untrusted = store / "My" / f"{host}.crt", store / "CA" / f"{INTERMEDIATE}.crt"
    else:
        leaf, untrusted, _ = _pfx(pki_tools, fresh_pki, host, tmp_path)
    code, out = _verify(pki_tools, fresh_pki, leaf, untrusted)
    assert code == 0, out
    if host == "gateway-host":
        ts = pki.load_manifest(fresh_pki)["truststores"][0]
        assert (hdir / "acme-ca.pfx").read_bytes() == Path(ts["path"]).read_bytes()


def test_expired(pki_tools, fresh_pki, tmp_path):
    defects.apply(fresh_pki, "primary-host", "expired")
    leaf, cas, _ = _pfx(pki_tools, fresh_pki, "primary-host", tmp_path)
    code, out = _verify(pki_tools, fresh_pki, leaf, cas)
    assert code != 0 and "certificate has expired" in out, out
    # Issued by the host's real issuer: only the dates are wrong.
    code, out = _verify(pki_tools, fresh_pki, leaf, cas, "-no_check_time")
    assert code == 0, out


def test_not_yet_valid(pki_tools, fresh_pki, tmp_path):
    defects.apply(fresh_pki, "gateway-host", "not-yet-valid")
    leaf, cas, _ = _pfx(pki_tools, fresh_pki, "gateway-host", tmp_path)
    code, out = _verify(pki_tools, fresh_pki, leaf, cas)
    assert code != 0 and "certificate is not yet valid" in out, out


def test_no_client_auth(pki_tools, fresh_pki, tmp_path):
    defects.apply(fresh_pki, "gateway-host", "no-client-auth")
    leaf, cas, _ = _pfx(pki_tools, fresh_pki, "gateway-host", tmp_path)
    code, out = _verify(pki_tools, fresh_pki, leaf, cas, "-purpose", "sslclient")
    # X509_V_ERR_INVALID_PURPOSE: "unsupported ..." up to OpenSSL 1.1, "unsuitable ..." from 3.0.
    assert code != 0 and re.search(r"uns(upported|uitable) certificate purpose", out), out
    code, out = _verify(pki_tools, fresh_pki, leaf, cas, "-purpose", "sslserver")
    assert code == 0, out


def test_leaf_only_pfx_holds_one_certificate(pki_tools, fresh_pki, tmp_path):
    defects.apply(fresh_pki, "primary-host", "leaf-only")
    leaf, cas, text = _pfx(pki_tools, fresh_pki, "primary-host", tmp_path)
    assert text.count("-----BEGIN CERTIFICATE-----") == 1
    assert _subjects(text) == ["O = Acme, CN = primary-host"]
    code, out = _verify(pki_tools, fresh_pki, leaf, None)
    assert code != 0 and "unable to get local issuer certificate" in out, out
    # The primary's trusted-CA uploads stay as they were.
    assert (fresh_pki / "hosts" / "primary-host" / f"{INTERMEDIATE}.cer").is_file()


def test_leaf_only_client_store_lacks_the_intermediates(pki_tools, fresh_pki):
    defects.apply(fresh_pki, "pcclient-host", "leaf-only")
    store = fresh_pki / "hosts" / "pcclient-host" / "store"
    assert sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file()) == [
        "My/pcclient-host.crt", "My/pcclient-host.key", f"Root/{ROOT_CA}.crt"]
    assert (store / "CA").is_dir()
    # The store keeps the recorded (good) certificate: only the intermediate is missing.
    recorded = (fresh_pki / "entities" / "pcclient-host" / "pcclient-host.crt").read_bytes()
    assert (store / "My" / "pcclient-host.crt").read_bytes() == recorded


def test_issuer_not_ca(pki_tools, fresh_pki, tmp_path):
    defects.apply(fresh_pki, "gateway-host", "issuer-not-ca")
    leaf, cas, text = _pfx(pki_tools, fresh_pki, "gateway-host", tmp_path)
    assert _subjects(text) == ["O = Acme, CN = gateway-host", f"O = Acme, CN = {INTERMEDIATE}-Sub",
                               f"O = Acme, CN = {INTERMEDIATE}", f"O = Acme, CN = {ROOT_CA}"]
    code, out = _verify(pki_tools, fresh_pki, leaf, cas)
    assert code != 0 and "invalid CA certificate" in out, out
    sub = tmp_path / "sub.pem"
    pki_tools.openssl("x509", "-in", str(cas), "-out", str(sub))  # the first CA certificate: the sub
    sub_text = pki_tools.openssl("x509", "-in", str(sub), "-noout", "-text", "-issuer").stdout.decode()
    assert "CA:FALSE" in sub_text and "Certificate Sign" not in sub_text
    assert f"issuer=O = Acme, CN = {INTERMEDIATE}" in sub_text


def test_issuer_not_ca_client_store_carries_the_sub(pki_tools, fresh_pki):
    defects.apply(fresh_pki, "pcclient-host", "issuer-not-ca")
    store = fresh_pki / "hosts" / "pcclient-host" / "store"
    bundle = store / "CA" / "all.pem"
    bundle.write_bytes(b"".join(p.read_bytes() for p in sorted((store / "CA").iterdir())))
    assert (store / "CA" / f"{INTERMEDIATE}-Sub.crt").is_file()
    code, out = _verify(pki_tools, fresh_pki, store / "My" / "pcclient-host.crt", bundle)
    assert code != 0 and "invalid CA certificate" in out, out


def test_self_signed(pki_tools, fresh_pki, tmp_path):
    good = pki_tools.openssl("x509", "-in", str(fresh_pki / "entities" / "primary-host" / "primary-host.crt"),
                             "-noout", "-subject", "-ext", "subjectAltName").stdout.decode()
    defects.apply(fresh_pki, "primary-host", "self-signed")
    leaf, _, text = _pfx(pki_tools, fresh_pki, "primary-host", tmp_path)
    assert text.count("-----BEGIN CERTIFICATE-----") == 1
    out = pki_tools.openssl("x509", "-in", str(leaf), "-noout", "-subject", "-issuer").stdout.decode()
    subject, issuer = re.search(r"subject=(.*)", out)[1], re.search(r"issuer=(.*)", out)[1]
    assert subject == issuer == "O = Acme, CN = primary-host"
    same = pki_tools.openssl("x509", "-in", str(leaf), "-noout", "-subject", "-ext", "subjectAltName").stdout.decode()
    assert same == good
    code, out = _verify(pki_tools, fresh_pki, leaf, None)
    assert code != 0 and "self-signed certificate" in out, out


def test_truststore_nokeys_loads_with_zero_entries(pki_tools, fresh_pki, tmp_path):
    conf = (fresh_pki / "hosts" / "gateway-host" / "unattended-install.conf").read_bytes()
    defects.apply(fresh_pki, "gateway-host", "truststore-nokeys")
    ts = pki.load_manifest(fresh_pki)["truststores"][0]
    store = fresh_pki / "hosts" / "gateway-host" / "acme-ca.pfx"
    assert "Your keystore contains 0 entries" in _keytool_list(pki_tools, store, ts["password"])
    # openssl still finds the root in it: the file is "right" except for Java.
    text = pki_tools.openssl("pkcs12", "-in", str(store), "-passin", f"pass:{ts['password']}", "-nokeys").stdout.decode()
    assert _subjects(text) == [f"O = Acme, CN = {ROOT_CA}"]
    assert (fresh_pki / "hosts" / "gateway-host" / "unattended-install.conf").read_bytes() == conf
    # The keystore is still the good one: the recorded certificate with its chain.
    leaf, cas, _ = _pfx(pki_tools, fresh_pki, "gateway-host", tmp_path)
    assert leaf.read_bytes().endswith((fresh_pki / "entities" / "gateway-host" / "gateway-host.crt").read_bytes())
    assert _verify(pki_tools, fresh_pki, leaf, cas)[0] == 0


def test_truststore_without_root_trusts_another_ca(pki_tools, fresh_pki, tmp_path):
    defects.apply(fresh_pki, "gateway-host", "truststore-without-root")
    ts = pki.load_manifest(fresh_pki)["truststores"][0]
    listing = _keytool_list(pki_tools, fresh_pki / "hosts" / "gateway-host" / "acme-ca.pfx", ts["password"])
    assert "Your keystore contains 1 entry" in listing
    assert listing.count("Entry type: trustedCertEntry") == 1
    assert "Owner: CN=Other-CA-Root, O=Acme" in listing and ROOT_CA not in listing
    leaf, cas, _ = _pfx(pki_tools, fresh_pki, "gateway-host", tmp_path)
    code, out = _verify(pki_tools, fresh_pki, leaf, cas)
    assert code == 0, out  # the gateway's own keystore is untouched


def test_cli_prints_files_and_undo(pki_cli, fresh_pki):
    result = pki_cli("defect", "Gateway-Host", "--defect", "expired", "--dir", str(fresh_pki))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    hdir = fresh_pki / "hosts" / "gateway-host"
    assert lines[:-1] == [f"wrote {hdir / n} (expired)" for n in ("acme-ca.pfx", "gateway-host.pfx", "unattended-install.conf")]
    assert lines[-1].startswith("undo: `safeq-lab pki reissue gateway-host --dir ")


@pytest.mark.parametrize("args,message", [
    (["gateway-host", "--defect", "broken"], "unknown defect 'broken'; choose one of: expired, not-yet-valid, "),
    (["no-such-host", "--defect", "expired"], "no entity named 'no-such-host' in this PKI (known: primary-host, "),
    (["ocsp-host", "--defect", "expired"], "no entity named 'ocsp-host'"),
    (["primary-host", "--defect", "truststore-nokeys"], "is for gateways"),
    (["pcclient-host", "--defect", "truststore-without-root"], "pcclient-host is a client"),
])
def test_cli_refuses_bad_input_and_changes_nothing(pki_cli, pki_tools, fresh_pki, args, message):
    before = pki_tools.tree_state(fresh_pki)
    result = pki_cli("defect", *args, "--dir", str(fresh_pki))
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr, result.stderr
    assert result.stdout == ""
    assert pki_tools.tree_state(fresh_pki) == before


def test_leaf_only_refused_without_intermediates(pki_tools, tmp_path):
    root = Path(pki.init_pki(tmp_path / "pki", intermediates=0)["dir"])
    with pytest.raises(pki.PKIError, match="leaves out the intermediate CAs"):
        defects.apply(root, "gateway-host", "leaf-only")


def test_every_kind_is_tested():
    tested = {"expired", "not-yet-valid", "no-client-auth", "leaf-only", "issuer-not-ca", "self-signed",
              "truststore-nokeys", "truststore-without-root"}
    assert set(defects.KINDS) == tested
