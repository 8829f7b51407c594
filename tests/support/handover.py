"""A corporate-style PKI made with the openssl CLI alone, and hand-over folders over it.

``Corp`` builds the certificates once: Corp-Root-CA -> Corp-Issuing-CA -> primary-host,
gateway-host, pcclient-host, plus the odd ones a bad case needs. ``Case`` writes one folder as a
PKI admin would hand it over: PFX files (``openssl pkcs12 -export``), CA files, and corp.toml.
``CASES``: the good hand-over and the usual mistakes, each with the doctor's codes and exit code.
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .fixtures_openssl import CA_EXT, CLIENT_EXT, SERVER_EXT, Issued, OpenSSLPKI, openssl

PFX_SCRIPT = Path(__file__).resolve().parents[1] / "reference" / "pfx.py"
PRIMARY_EXT = SERVER_EXT + "subjectAltName = DNS:primary-host\n"
GATEWAY_EXT = CLIENT_EXT + "subjectAltName = DNS:gateway-host\n"
NOT_A_CA_EXT = CA_EXT.replace("CA:TRUE", "CA:FALSE")


def _pfx_module():
    """tests/reference/pfx.py (that folder is not on sys.path), under the name the reference tests use."""
    name = "safeq_reference_pfx"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, PFX_SCRIPT)
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


pfx = _pfx_module()


class Corp:
    """The certificates, made once; ``key`` picks the key type of the whole tree ("ec" or "rsa:2048")."""

    def __init__(self, workdir: Path, key: str = "ec"):
        self.ca = OpenSSLPKI(workdir)
        self.root = self.ca.root("Corp-Root-CA", key=key)
        self.issuing = self.ca.issue("Corp-Issuing-CA", self.root, CA_EXT, key=key)
        self.primary = self.ca.issue("primary-host", self.issuing, PRIMARY_EXT, key=key)
        self.gateway = self.ca.issue("gateway-host", self.issuing, GATEWAY_EXT, key=key)
        self.client = self.ca.issue("pcclient-host", self.issuing, CLIENT_EXT, key=key)
        self.key = key

    def odd(self, name: str, ext: str, issuer: Issued | None = None, **kwargs) -> Issued:
        """One more certificate, made when a case needs it (once per name)."""
        done = self.ca.dir / f"{name}.pem"
        if done.exists():
            return Issued(name, done, self.ca.dir / f"{name}.key.pem")
        return self.ca.issue(name, issuer or self.issuing, ext, **{"key": self.key, **kwargs})


@dataclass
class Case:
    """One hand-over folder: what each machine gets, written by ``write``."""
    corp: Corp
    primary: list = field(default_factory=list)   # leaf first, then the CA certificates the PFX holds
    gateway: list = field(default_factory=list)
    client: list = field(default_factory=list)
    trusted: list = field(default_factory=list)
    gateway_password: str = "gateway-pfx-password"
    truststore: str = "keytool"  # keytool: truststore_certs (what keytool -importcert builds); nokeys: openssl's
    account_extra: str = ""
    hosts: tuple = ("primary-host", "gateway-host", "pcclient-host")  # the machines' names in the spec

    def __post_init__(self) -> None:
        c = self.corp
        self.primary = self.primary or [c.primary, c.issuing, c.root]
        self.gateway = self.gateway or [c.gateway, c.issuing, c.root]
        self.client = self.client or [c.client, c.issuing, c.root]
        self.trusted = self.trusted or [c.root, c.issuing]

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, chain, password in (("primary-host", self.primary, "changeit"),
                                      ("gateway-host", self.gateway, "gateway-pfx-password"),
                                      ("pcclient-host", self.client, "pcclient-pfx-password")):
            pfx.export(folder / f"{name}.pfx", chain[0].key_path, [i.cert_path for i in chain], password, name)
            (folder / f"{name}.in.pem").unlink()
        for ca in self.trusted:
            pfx.der(folder / f"{ca.name}.cer", ca.cert_path)
        root_cer = pfx.der(folder / "Corp-Root-CA.cer", self.corp.root.cert_path)
        if self.truststore == "nokeys":
            openssl("pkcs12", "-export", "-nokeys", "-in", str(self.corp.root.cert_path), "-passout", "pass:ts-password",
                    "-out", str(folder / "corp-ca.pfx"))
            trust = 'truststore = "corp-ca.pfx"\ntruststore_password = "ts-password"'
        else:
            trust = f'truststore_certs = ["{root_cer.name}"]'
        spec = folder / "corp.toml"
        spec.write_text(f"""[primary]
host = "{self.hosts[0]}"
keystore = "primary-host.pfx"
keystore_password = "changeit"
cacerts = ["{root_cer.name}"]

[account]
policy = "trusted-ca"
trusted_cas = [{", ".join(f'"{ca.name}.cer"' for ca in self.trusted)}]
{self.account_extra}

[[gateway]]
host = "{self.hosts[1]}"
keystore = "gateway-host.pfx"
keystore_password = "{self.gateway_password}"
{trust}

[[client]]
host = "{self.hosts[2]}"
keystore = "pcclient-host.pfx"
keystore_password = "pcclient-pfx-password"
subject = "{self.hosts[2]}"
""")
        return spec


def gateway_leaf_and_chain(c: Corp, leaf) -> list:
    return [leaf, c.issuing, c.root]


def fqdn_case(c: Corp) -> Case:
    """Machines named as in a corporate DNS: the lab's containers take these names."""
    names = ("safeq.corp.example", "gw01.corp.example", "pc01.corp.example")
    leaves = [c.odd(names[0], SERVER_EXT + f"subjectAltName = DNS:{names[0]}\n"),
              c.odd(names[1], CLIENT_EXT + f"subjectAltName = DNS:{names[1]}\n"), c.odd(names[2], CLIENT_EXT)]
    return Case(c, *([leaf, c.issuing, c.root] for leaf in leaves), hosts=names)


CASES = {
    # name: (how the hand-over differs, {expected warning and error codes}, exit code)
    "good": (lambda c: Case(c), set(), 0),
    "good, corporate DNS names": (fqdn_case, set(), 0),
    "pfx without the intermediate, only the root trusted": (
        lambda c: Case(c, gateway=[c.gateway, c.root], trusted=[c.root]),
        {"client.no-certificate-sent", "chain.incomplete"}, 2),
    "pfx with only the leaf, only the root trusted": (
        lambda c: Case(c, gateway=[c.gateway], trusted=[c.root]), {"client.no-certificate-sent"}, 2),
    "pfx with only the leaf, the issuing CA trusted": (lambda c: Case(c, gateway=[c.gateway]), set(), 0),
    "wrong password": (lambda c: Case(c, gateway_password="not-the-password"), {"pfx.wrong-password"}, 2),
    "leaf without clientAuth": (
        lambda c: Case(c, gateway=gateway_leaf_and_chain(c, c.odd("gw-server-only", SERVER_EXT))),
        {"eku.client-auth-missing", "trust.endpoint-refused"}, 2),
    "SAN not covering the host": (
        lambda c: Case(c, primary=[c.odd("primary-elsewhere", SERVER_EXT + "subjectAltName = DNS:elsewhere\n"),
                                   c.issuing, c.root]),
        {"san.host-not-covered", "primary.self-check-failed"}, 2),
    "expired": (
        lambda c: Case(c, gateway=gateway_leaf_and_chain(
            c, c.odd("gw-expired", GATEWAY_EXT, start="20200101000000Z", end="20210101000000Z"))),
        {"validity.expired", "trust.endpoint-refused"}, 2),
    "-nokeys truststore": (lambda c: Case(c, truststore="nokeys"), {"truststore.no-trusted-entries"}, 2),
    "intermediate without CA:TRUE": (
        lambda c: Case(c, gateway=[c.odd("gw-under-not-ca", GATEWAY_EXT, issuer=not_a_ca(c)), not_a_ca(c), c.root]),
        {"ca.not-ca", "trust.endpoint-refused", "pkilint.pkix.ee_certificate_keycertsign_keyusage_set"}, 2),
    "path length exceeded": (
        lambda c: Case(c, gateway=[c.odd("gw-too-deep", GATEWAY_EXT, issuer=below_pathlen(c)), below_pathlen(c),
                                   pathlen_zero(c), c.root]),
        {"ca.path-length", "trust.endpoint-refused"}, 2),
    "SHA-1 signature": (
        lambda c: Case(c, gateway=gateway_leaf_and_chain(c, c.odd("gw-sha1", GATEWAY_EXT, md="sha1"))),
        {"signature.sha1"}, 1),
    "RSA key of 1024 bits": (
        lambda c: Case(c, gateway=gateway_leaf_and_chain(c, c.odd("gw-rsa1024", GATEWAY_EXT, key="rsa:1024"))),
        {"key.rsa-small"}, 1),
    "ocsp on, no OCSP URL anywhere": (lambda c: Case(c, account_extra="ocsp = true"), {"ocsp.no-url"}, 1),
    "ocsp on, a custom OCSP URL": (
        lambda c: Case(c, account_extra='ocsp = true\nocsp_url = "http://ocsp.corp.example"'), set(), 0),
}


def not_a_ca(c: Corp):
    return c.odd("Not-A-CA", CA_EXT.replace("CA:TRUE", "CA:FALSE"), issuer=c.root)


def pathlen_zero(c: Corp):
    return c.odd("PathLen-Zero-CA", CA_EXT.replace("CA:TRUE", "CA:TRUE, pathlen:0"), issuer=c.root)


def below_pathlen(c: Corp):
    return c.odd("Below-PathLen-Zero-CA", CA_EXT, issuer=pathlen_zero(c))


# name: what the doctor foresees for (gateway, client): None connects, else (refused by, the JRE's words).
CONNECTIONS = {
    "good": (None, None),
    "good, corporate DNS names": (None, None),
    "leaf without clientAuth": (("primary", "Extended key usage does not permit use for TLS client authentication"),
                                None),
    "pfx with only the leaf, only the root trusted": (("primary", "Empty client certificate chain"), None),
    "-nokeys truststore": (("gateway-host", "the trustAnchors parameter must be non-empty"), None),
    "SAN not covering the host": (("gateway-host", "No subject alternative DNS name matching primary-host found."),
                                  ("pcclient-host", "No subject alternative DNS name matching primary-host found.")),
}
