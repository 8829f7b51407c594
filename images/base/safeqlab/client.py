"""The SAFEQ Cloud Client stand-in in local storage mode.

The Windows certificate store is stood in for by a folder (SAFEQ_CERT_STORE):
  My/<name>.crt + My/<name>.key   Personal: certificates with their private keys
  CA/*.crt                        Intermediate Certification Authorities
  Root/*.crt                      Trusted Root Certification Authorities
"Use pre-configured system certificate": the first Personal certificate whose subject,
or whose issuer's subject, contains the configured subject (a substring): SAFEQ_CERTIFICATE_SUBJECT
as installed, or the one `safeq-client setup --subject S` chose since.
The primary's chain is judged by the JRE against Root/ and CA/ plus the system's public CAs
(Windows' Root store holds those too).
"""
from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import socket
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certkit.certs import CertificateError, common_name, fingerprint, load_certs, name_str
from certkit import fsio
from certkit.chain import issued_by, order_chain
from . import service
from .endpoint import Identity, SetupError

from . import clientfiles
from .clientfiles import DATA, OWN, Install, install_of  # noqa: F401 - the layout, re-exported

SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
WORKDIR = "/run/safeqclient"  # private: key files pass through it
LOG, STATE, SETUP, BUILTIN_DIR = OWN.log, OWN.status, str(OWN.setup), str(DATA / "builtin")
CERT_SUFFIXES = (".crt", ".cer", ".pem", ".der")
LOCAL_STORAGE_OFF = ("local storage mode is off: the client does not talk to an on-premise primary "
                     "(not modelled here)")


def env_flag(name: str, default: str = "true") -> bool:
    return os.environ.get(name, default).strip().lower() in ("1", "true", "yes", "on")


def icon(state: str) -> str:
    """The notification icon: grey while connected and idle, yellow on any network or certificate problem."""
    return "grey" if state == "connected" else "yellow"


class ClientStatus(service.StateFile):
    def set(self, state, reason=None, **extra):
        super().set(state, reason, icon=icon(state), **extra)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SetupError(f"certificate store file {path}: {exc.strerror}") from None


def load_dir(folder: Path) -> list[x509.Certificate]:
    """Every certificate of a store folder (PEM or DER files); none if the folder does not exist."""
    certs = []
    for f in sorted(folder.glob("*")):
        if f.suffix.lower() in CERT_SUFFIXES and f.is_file():
            try:
                certs.extend(load_certs(_read(f), str(f)))
            except CertificateError as exc:
                raise SetupError(str(exc)) from None
    return certs


def _load_key(keyfile: Path):
    try:
        return serialization.load_pem_private_key(_read(keyfile), None)
    except (ValueError, TypeError) as exc:  # TypeError: the key is encrypted
        raise SetupError(f"private key {keyfile} cannot be used: {exc}") from None


def select_certificate(store: Path, wanted: str, now: datetime.datetime | None = None):
    """(cert, key): the first Personal certificate with its key, valid now, whose subject or issuer contains ``wanted``."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    needle = wanted.lower()
    seen = []
    for crt in sorted((store / "My").glob("*.crt")):
        try:
            cert = load_certs(_read(crt), str(crt))[0]
        except CertificateError as exc:
            raise SetupError(str(exc)) from None
        seen.append(name_str(cert.subject))
        if needle not in name_str(cert.subject).lower() and needle not in name_str(cert.issuer).lower():
            continue
        keyfile = crt.with_suffix(".key")
        if not keyfile.exists():
            continue  # a Personal certificate without its private key cannot authenticate
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            continue
        return cert, _load_key(keyfile)
    raise SetupError(f"no certificate with a private key in the Personal store matches subject '{wanted}' "
                     f"(Personal store holds: {', '.join(seen) or 'nothing'})")


def chain_for(leaf: x509.Certificate, intermediates: list[x509.Certificate]) -> list[x509.Certificate]:
    """What the client sends: the leaf, then its issuers from the Intermediate store.

    A self-signed root put in that store is left out: the primary must trust the root, not be sent it."""
    chain = order_chain(leaf, intermediates)
    if len(chain) > 1 and chain[-1].subject == chain[-1].issuer and issued_by(chain[-1], chain[-1]):
        chain.pop()
    return chain


def system_cas(bundle: str) -> list[x509.Certificate]:
    """The system's public CAs (Windows' Root store holds them too)."""
    try:
        return load_certs(Path(bundle).read_bytes(), bundle)
    except OSError as exc:
        raise SetupError(f"system CA bundle {bundle}: {exc.strerror}") from None
    except CertificateError as exc:
        raise SetupError(str(exc)) from None


def identity_factory(client: "Client", log: logging.Logger):
    """Re-reads the store on every attempt; logs the chosen certificate when it changes."""
    last = {"thumbprint": None}

    def make_identity() -> Identity:
        store = client.store_dir()
        cert, key = select_certificate(store, client.subject())
        intermediates = load_dir(store / "CA")
        roots = load_dir(store / "Root")
        if fingerprint(cert) != last["thumbprint"]:
            log.info("Using system certificate subject=%s issuer=%s thumbprint=%s", name_str(cert.subject),
                     name_str(cert.issuer), fingerprint(cert).replace(":", ""))
            last["thumbprint"] = fingerprint(cert)
        anchors = roots + intermediates + system_cas(SYSTEM_BUNDLE)
        return Identity(common_name(cert), key, chain_for(cert, intermediates), anchors)
    return make_identity


class Client(service.Spec):
    prog = "safeq-client"
    role = "client"
    logger = "safeqclientcore"
    log_file = LOG
    state_path = STATE
    builtin_dir = BUILTIN_DIR

    def __init__(self, subject: str | None = None, store: str | None = None, install: Install = OWN):
        # test-connection --subject/--store; else the configured ones
        self.subject_override, self.store_override = subject, store
        self.install = install
        if install.host is not None:
            self.logger = f"safeqclientcore.{install.host}"
            self.log_file, self.state_path = install.log, install.status
            self.builtin_dir = str(install.data / "builtin")

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--subject", help="certificate subject substring (default: the configured one)")
        parser.add_argument("--store", help="certificate store folder (default: the configured one)")

    def apply_options(self, args: argparse.Namespace) -> None:
        if args.subject is not None:  # an empty subject is a choice too
            self.subject_override = args.subject
        if args.store:
            self.store_override = args.store

    def subject(self) -> str:
        if self.subject_override is not None:
            return self.subject_override
        chosen = fsio.read_json(self.install.setup) or {}
        return chosen.get("subject", self.install.host or os.environ.get("SAFEQ_CERTIFICATE_SUBJECT", ""))

    def store_dir(self) -> Path:
        return Path(self.store_override or self.install.store or os.environ.get("SAFEQ_CERT_STORE", "/pki/store"))

    def host_name(self) -> str:
        return self.install.host or socket.gethostname()

    def builtin(self) -> bool:
        # "Use pre-configured system certificate" off: the product's built-in certificates.
        return not env_flag("SAFEQ_USE_SYSTEM_CERTIFICATE")

    def preflight(self) -> None:
        # The doc: without local storage mode the trusted certificate setup is not needed.
        if not env_flag("SAFEQ_LOCAL_STORAGE_MODE"):
            raise SetupError(LOCAL_STORAGE_OFF)

    def prepare(self) -> None:
        Path(WORKDIR).mkdir(mode=0o700, parents=True, exist_ok=True)

    def address(self) -> tuple[str, int]:
        port = os.environ.get("SAFEQ_SERVER_PORT", "2560").strip()
        if not port.isdigit():
            raise SetupError(f"SAFEQ_SERVER_PORT must be a port number, not '{port}'")
        return os.environ.get("SAFEQ_SERVER_HOST_NAME", "primary-host"), int(port)

    def trusted_identity(self, log: logging.Logger):
        return identity_factory(self, log)

    def state_file(self) -> service.StateFile:
        return ClientStatus(self.state_path)

    def starting(self, log: logging.Logger, host: str, port: int) -> None:
        certificate = (f"pre-configured system certificate '{self.subject()}'" if not self.builtin()
                       else "built-in certificate")
        log.info("SAFEQ Cloud Client starting: local storage mode, server %s:%d, account domain %s, %s",
                 host, port, os.environ.get("SAFEQ_ACCOUNT_DOMAIN", "lab"), certificate)

    def status_line(self, data: dict | None, why: str) -> str:
        return f"{(data or {}).get('icon', 'yellow')}: {why}"


def own_restart() -> int:
    return subprocess.run(["systemctl", "restart", "safeq-client"], timeout=30).returncode


def setup(argv: list[str], install: Install, restart) -> int:
    """The service setup again ("Use pre-configured system certificate": which subject), then a restart."""
    parser = argparse.ArgumentParser(prog="safeq-client setup")
    parser.add_argument("--subject", required=True, help="subject substring of the certificate to use")
    args = parser.parse_args(argv)
    install.setup.parent.mkdir(parents=True, exist_ok=True)
    fsio.atomic_write(install.setup, json.dumps({"subject": args.subject}).encode() + b"\n", 0o644)
    print(f"certificate subject set to '{args.subject}'; restarting safeq-client")
    return restart()


def which_install(argv: list[str], several: list[str]) -> tuple[str | None, list[str]]:
    """``--install HOST`` taken out of the arguments: which install a command is about."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--install")
    known, rest = parser.parse_known_args(argv)
    host = known.install
    if host is not None and host not in (several or [socket.gethostname()]):
        raise SystemExit(f"safeq-client: no install {host} here (this container hosts "
                         f"{', '.join(several or [socket.gethostname()])})")
    return (host if several else None), rest


def main(argv: list[str]) -> int:
    from . import clientinstalls  # it builds on this module
    several = clientfiles.hosts()
    host, argv = which_install(argv, several)
    command = argv[:1]
    if several and host is None and command in (["status"], ["health"]):
        return clientfiles.report(several, command[0], "--json" in argv)
    if several and host is None and command != ["run"]:
        raise SystemExit(f"safeq-client: this container hosts {len(several)} installs: "
                         f"name one with --install HOST ({', '.join(several[:3])}, ...)")
    if several and command == ["run"]:
        return clientinstalls.run(several)
    restart = (lambda: clientinstalls.request_restart(host)) if host else own_restart
    if command == ["restart"]:
        return restart()
    install = install_of(host) if host else OWN
    if command == ["setup"]:
        return setup(argv[1:], install, restart)
    return service.main(argv, Client(install=install))
