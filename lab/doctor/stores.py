"""PFX keystores and truststores read as the product reads them.

The password and the key by cryptography (so a wrong password is told apart from a file that is
no PKCS12 at all), the chain and the trusted entries by Java (keytool, or its JDK's running JRE):
Java builds a key entry's chain from the file's certificates by issuer name, whatever their order,
and counts only trustedCertEntry certificates as trusted.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from certkit import javastore
from certkit.certs import fingerprint, name_str, same_public_key
from certkit.chain import order_chain

from ..spec import SpecError
from .certchecks import self_signed
from .findings import ERROR, INFO, WARNING, Finding, finding
from .tools import Java

OPENSSL_TIMEOUT = 30


@dataclass
class KeyMaterial:
    """One machine's key and the chain it presents, leaf first ([] when it cannot be used)."""
    role: str   # primary | gateway | client
    host: str
    file: Path
    chain: list[x509.Certificate] = field(default_factory=list)
    pool: list[x509.Certificate] = field(default_factory=list)  # every certificate the file holds

    @property
    def usable(self) -> bool:
        return bool(self.chain)


def open_pkcs12(path: Path, password: str, label: str):
    """The PKCS12 contents, None for a wrong password; SpecError when the file is no PKCS12 at all."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"{label}: {path}: cannot be read ({exc.strerror})") from None
    try:
        return pkcs12.load_pkcs12(data, password.encode("utf-8"))
    except ValueError as exc:
        if "password" in str(exc).lower():  # cryptography: "Invalid password or PKCS12 data"
            return None
        how = ("keytool -importcert -storetype PKCS12" if label.endswith("truststore")
               else "openssl pkcs12 -export, or keytool -importkeystore")
        raise SpecError(f"{label}: {path} is not a PKCS12 (PFX) file, or a damaged or cut-short one: "
                        f"make it again ({how}) and copy it whole") from None


def wrong_password(code: str, path: Path, label: str) -> Finding:
    return finding(ERROR, code, path, f"{label}: the password does not open it "
                   "(Java: \"keystore password was incorrect\")", f"set {label.split()[-1]}_password to its password")


def _java_chain(path: Path, password: str, java: Java, label: str):
    """(the key entry's chain as Java builds it, or None; findings)."""
    if java.keytool is None:
        return None, []
    try:
        entries = java.list_store(path, password)
    except javastore.StoreError as exc:
        return None, [finding(ERROR, "java.keystore-unloadable", path, f"{label}: Java's keytool cannot load it: {exc}",
                              "export it again in a form Java reads (openssl pkcs12 -export, or keytool -importkeystore)")]
    keyed = [e for e in entries if e.kind == "PrivateKeyEntry"]
    if not keyed:
        return None, [finding(ERROR, "pfx.no-key", path, f"{label}: Java finds no PrivateKeyEntry in it "
                              "(a truststore or a certificate-only file?)",
                              "export the PFX with the private key, its certificate and the CA chain")]
    return keyed[0].certs, []


def keystore(path: Path, password: str, label: str, role: str, host: str, java: Java,
             with_java: bool = True) -> tuple[KeyMaterial, list[Finding]]:
    """A PFX with a key: its chain as Java builds it and reads it (``with_java``), else issuer by issuer."""
    material = KeyMaterial(role, host, path)
    p12 = open_pkcs12(path, password, label)
    if p12 is None:
        return material, [wrong_password("pfx.wrong-password", path, label)]
    material.pool = [c.certificate for c in p12.additional_certs] + ([p12.cert.certificate] if p12.cert else [])
    if p12.key is None or p12.cert is None:
        return material, [finding(ERROR, "pfx.no-key", path, f"{label}: it holds no private key with its certificate",
                                  "export the PFX with the private key, its certificate and the CA chain")]
    leaf = p12.cert.certificate
    chain, findings = _java_chain(path, password, java, label) if with_java else (None, [])
    if any(f.severity == ERROR for f in findings):
        return material, findings
    material.chain = chain or order_chain(leaf, material.pool)
    if not same_public_key(p12.key.public_key(), material.chain[0].public_key()):
        findings.append(finding(ERROR, "pfx.key-mismatch", path, f"{label}: the private key does not belong to "
                                f"the certificate {name_str(material.chain[0].subject)}",
                                "export the PFX again with the key the certificate was issued for"))
    findings += chain_layout(material, [c.certificate for c in p12.additional_certs], label)
    if with_java:
        findings += encryption(path, password, label)
    return material, findings


def chain_layout(material: KeyMaterial, listed: list[x509.Certificate], label: str) -> list[Finding]:
    """Certificates the chain does not reach (a missing link), or a chain listed out of order."""
    in_chain = {fingerprint(c) for c in material.chain}
    left_out = ", ".join(name_str(c.subject) for c in listed if fingerprint(c) not in in_chain)
    top = material.chain[-1]
    if left_out and not self_signed(top):
        return [finding(WARNING, "chain.incomplete", material.file,
                        f"{label}: the chain stops at {name_str(top.subject)}: its issuer {name_str(top.issuer)} is not "
                        f"in the file, so {left_out} is left out of the chain Java presents",
                        "export the PFX with every intermediate CA certificate of the chain")]
    if left_out:
        return [finding(INFO, "chain.extra-certificates", material.file,
                        f"{label}: it also holds {left_out}, which the chain does not use")]
    order = [fingerprint(c) for c in listed]
    if order != [fingerprint(c) for c in material.chain[1:]][:len(order)]:
        return [finding(INFO, "chain.reordered", material.file,
                        f"{label}: the CA certificates are not listed issuer by issuer; Java orders them itself")]
    return []


def encryption(path: Path, password: str, label: str) -> list[Finding]:
    """PBES2 (AES) PFX files, OpenSSL 3's and keytool's default, need a JRE from 2021 or later."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return []
    try:
        proc = subprocess.run([openssl, "pkcs12", "-info", "-noout", "-in", str(path), "-passin", "env:SAFEQ_STOREPASS"],
                              capture_output=True, text=True, timeout=OPENSSL_TIMEOUT,
                              env=dict(os.environ, SAFEQ_STOREPASS=password))
    except subprocess.TimeoutExpired:
        return []
    if proc.returncode == 0 and "PBES2" in proc.stdout + proc.stderr:
        return [finding(INFO, "pfx.encryption-pbes2", path, f"{label}: encrypted with PBES2/AES: Java 8u301, 11.0.12, "
                        "17 and later read it; older JREs fail with \"keystore password was incorrect\" "
                        "(`openssl pkcs12 -export -legacy` makes one they read)")]
    return []


def truststore(path: Path, password: str, label: str, java: Java) -> tuple[list[x509.Certificate], list[Finding]]:
    """The certificates Java trusts in it: only trustedCertEntry ones."""
    p12 = open_pkcs12(path, password, label)
    if p12 is None:
        return [], [wrong_password("truststore.wrong-password", path, label)]
    if java.keytool is None:  # Java's view unknown: every certificate, as the best guess
        return [c.certificate for c in p12.additional_certs], []
    try:
        anchors = javastore.trusted_certs(java.list_store(path, password))
    except javastore.StoreError as exc:
        return [], [finding(ERROR, "java.keystore-unloadable", path, f"{label}: Java's keytool cannot load it: {exc}",
                            "build it with keytool -importcert -storetype PKCS12")]
    if not anchors:
        return [], [finding(ERROR, "truststore.no-trusted-entries", path,
                            f"{label}: empty to Java: the trustAnchors parameter must be non-empty (no trustedCertEntry; "
                            "`openssl pkcs12 -export -nokeys` makes such files)",
                            "build it with keytool -importcert -file ROOT.cer -alias corp-ca -storetype PKCS12 "
                            "-keystore FILE, or list the CA files under truststore_certs")]
    return anchors, []
