"""A store read by the running JRE validator (KeyStore.load in its JVM) is what keytool -list of the same
JRE says: the same entries in the same order, the same refusal in the same words. The stores are made
with the openssl CLI and keytool, not with our own code."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from certkit import javastore
from test_jre_support import UTC, jre, jre_classes, jre_java  # noqa: F401  (fixtures)
from support.fixtures_openssl import CA_EXT, CLIENT_EXT, OpenSSLPKI, openssl

CACERTS = "/etc/ssl/certs/java/cacerts"


def keytool_of(java: str, *args: str) -> None:
    subprocess.run([str(Path(java).parent / "keytool"), *args], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def stores(tmp_path_factory, jre_java) -> dict[str, tuple[str, str, str | None]]:
    """name -> (path, password, store type) of each kind of store a service is handed."""
    folder = tmp_path_factory.mktemp("stores")
    shop = OpenSSLPKI(folder)
    root = shop.root("Root")
    inter = shop.issue("Intermediate", root, CA_EXT)
    leaf = shop.issue("gateway-host", inter, CLIENT_EXT)
    out = {}

    def pkcs12(name: str, *args: str) -> Path:
        path = folder / name
        openssl("pkcs12", "-export", *args, "-passout", "pass:changeit", "-out", str(path))
        return path

    keystore = pkcs12("keystore.pfx", "-inkey", str(leaf.key_path), "-in", str(leaf.cert_path),
                      "-certfile", str(inter.cert_path), "-name", "Gateway-Host")
    out["keystore"] = (str(keystore), "changeit", "PKCS12")
    out["keystore, wrong password"] = (str(keystore), "wrong-one", "PKCS12")
    out["keystore, empty password"] = (str(keystore), "", "PKCS12")
    out["keystore, type probed"] = (str(keystore), "changeit", None)
    out["openssl -nokeys"] = (str(pkcs12("nokeys.p12", "-nokeys", "-in", str(root.cert_path))), "changeit", "PKCS12")
    for kind in ("PKCS12", "JKS"):
        path = folder / f"truststore.{kind.lower()}"
        for cert in (inter, root):
            keytool_of(jre_java, "-importcert", "-noprompt", "-alias", cert.name, "-file", str(cert.cert_path),
                       "-keystore", str(path), "-storetype", kind, "-storepass", "changeit")
        out[f"keytool {kind} truststore"] = (str(path), "changeit", "PKCS12")
        out[f"keytool {kind} truststore, type probed"] = (str(path), "changeit", None)
    out["a PEM certificate"] = (str(root.cert_path), "changeit", "PKCS12")
    out["a PEM certificate, type probed"] = (str(root.cert_path), "changeit", None)
    empty = folder / "empty.p12"
    empty.write_bytes(b"")
    out["an empty file"] = (str(empty), "changeit", "PKCS12")
    if os.access(CACERTS, os.R_OK):
        out["the system cacerts, type probed"] = (CACERTS, "changeit", None)
    return out


def listing(path: str, password: str, storetype: str | None, **how) -> object:
    javastore._VERDICTS.clear()
    try:
        entries = javastore.list_entries(path, password, storetype, **how)
    except javastore.StoreError as exc:
        return f"refused: {exc}"
    return [(e.alias, e.kind, [c.public_bytes(Encoding.DER) for c in e.certs]) for e in entries]


@pytest.mark.parametrize("name", ["keystore", "keystore, wrong password", "keystore, empty password",
                                  "keystore, type probed", "openssl -nokeys", "keytool PKCS12 truststore",
                                  "keytool PKCS12 truststore, type probed", "keytool JKS truststore",
                                  "keytool JKS truststore, type probed", "a PEM certificate",
                                  "a PEM certificate, type probed", "an empty file", "the system cacerts, type probed"])
def test_the_running_jre_reads_a_store_as_its_keytool_lists_it(stores, jre, jre_java, name, monkeypatch):
    monkeypatch.delenv(javastore.VERDICTS_FILE_VAR, raising=False)
    if name not in stores:
        pytest.skip(f"{CACERTS} is not readable here")
    path, password, storetype = stores[name]
    by_keytool = listing(path, password, storetype, keytool=str(Path(jre_java).parent / "keytool"))
    by_jre = listing(path, password, storetype, jre=jre)
    assert by_jre == by_keytool


def test_what_the_jre_says_about_each_store(stores, jre, monkeypatch):
    monkeypatch.delenv(javastore.VERDICTS_FILE_VAR, raising=False)
    keystore = listing(*stores["keystore"], jre=jre)
    assert [(alias, kind, len(certs)) for alias, kind, certs in keystore] == [("gateway-host", "PrivateKeyEntry", 2)]
    assert listing(*stores["keystore, wrong password"], jre=jre) == \
        "refused: java.io.IOException: keystore password was incorrect"
    assert listing(*stores["openssl -nokeys"], jre=jre) == []  # no trusted-cert attribute: no entry to Java
    assert listing(*stores["an empty file"], jre=jre).startswith(
        "refused: java.lang.Exception: Keystore file exists, but is empty: ")
    assert [a for a, _, _ in listing(*stores["keytool JKS truststore"], jre=jre)] == ["intermediate", "root"]
    assert listing(*stores["a PEM certificate, type probed"], jre=jre) == (
        "refused: java.security.KeyStoreException: Unrecognized keystore format. Please load it with a specified type")
    anchors = javastore.trust_anchors(*stores["keytool PKCS12 truststore"], jre=jre)
    assert len(anchors) == 2
    with pytest.raises(javastore.StoreError, match="the trustAnchors parameter must be non-empty"):
        javastore.trust_anchors(*stores["openssl -nokeys"], jre=jre)
    store = javastore.load_keystore(stores["keystore"][0], "changeit", jre=jre)
    assert store.alias == "gateway-host" and len(store.chain) == 2


def test_a_jre_that_cannot_be_asked_is_a_store_error_and_not_remembered(stores, monkeypatch):
    monkeypatch.delenv(javastore.VERDICTS_FILE_VAR, raising=False)
    from certkit.jre import Validator
    broken = Validator(["/bin/false"])
    javastore._VERDICTS.clear()
    with pytest.raises(javastore.StoreError, match="^the JRE could not be asked about .*keystore.pfx: "):
        javastore.list_entries(*stores["keystore"], jre=broken)
    assert javastore._VERDICTS == {}
