"""The secondary gateway stand-in, configured by the unattended installation file.

Trusted certificates: the keystore (the gateway's PFX) and the truststore named in the
file, read by the JRE's keytool as the Java gateway would; the primary's chain is judged by
the JRE against the truststore's trustedCertEntry certificates. Built-in certificates
(SAFEQ_ENDPOINT_CERTIFICATES=built-in): only the primary's address is needed.
"""
from __future__ import annotations

import argparse
import functools
import logging
import os
from pathlib import Path
from typing import Callable

from cryptography import x509

from certkit import javastore
from certkit.certs import common_name
from certkit.jre import Validator
from . import service, util
from .endpoint import Identity, Refused, SetupError
from .health import GATEWAY_STATE
from .ocspcheck import FAIL_MODES, OcspChecker

STATE = GATEWAY_STATE
LOG = "/var/log/safeq-gateway/gateway.log"
BUILTIN_DIR = "/var/lib/safeq-gateway/builtin"
ADDRESS = "HCP_PRIMARY_SERVER_ADDRESS"
TRUSTED = ("HCP_DEFAULT_KEYSTORE", "HCP_DEFAULT_KEYSTORE_PASSWORD", "HCP_DEFAULT_TRUSTSTORE",
           "HCP_DEFAULT_TRUSTSTORE_PASSWORD")
DEFAULT_PORT = 2560


def unattended_file() -> str:
    return os.environ.get("HCP_UNATTENDED_FILE", "/pki/unattended-install.conf")


def builtin_certificates() -> bool:
    """built-in: the product's default certificates; otherwise the corporate PFX and truststore."""
    return os.environ.get("SAFEQ_ENDPOINT_CERTIFICATES", "trusted") == "built-in"


def read_settings(path: str, builtin: bool = False) -> dict[str, str]:
    """The file's settings; SetupError names the file and what it lacks."""
    try:
        settings = util.parse_env_file(Path(path).read_text())
    except OSError as exc:
        raise SetupError(f"unattended installation file {path}: {exc.strerror}") from None
    required = (ADDRESS,) + (() if builtin else TRUSTED)
    missing = [k for k in required if k not in settings]
    if missing:
        raise SetupError(f"unattended installation file {path} lacks {', '.join(missing)}")
    return settings


def primary_address(settings: dict[str, str]) -> tuple[str, int]:
    """host[:port]; without a numeric port, the whole value is the host and the port is 2560."""
    value = settings[ADDRESS]
    host, _, port = value.rpartition(":")
    return (host, int(port)) if host and port.isdigit() else (value, DEFAULT_PORT)


def make_identity(path: str, jre: Callable[[], Validator] | None = None) -> Identity:
    """Re-read on every attempt, so a fixed file is picked up by the next reconnect. The gateway's own
    JRE (the validator it judges the primary with, unless ``jre`` gives one) loads both stores, the
    keystore first."""
    s = read_settings(path)
    truststore = s["HCP_DEFAULT_TRUSTSTORE"]
    jre = (jre or service.shared_validator)()
    try:
        store = javastore.load_keystore(s["HCP_DEFAULT_KEYSTORE"], s["HCP_DEFAULT_KEYSTORE_PASSWORD"], jre=jre)
        # The truststore's trustedCertEntry certificates only, as the JRE reads it. None at all is
        # no setup error to Java: its trust manager refuses the primary in the handshake.
        anchors = javastore.trusted_certs(javastore.list_entries(truststore, s["HCP_DEFAULT_TRUSTSTORE_PASSWORD"],
                                                                 jre=jre))
    except javastore.StoreError as exc:
        raise SetupError(str(exc)) from None
    if not anchors:
        _warn_once(f"Truststore {truststore} has no trustedCertEntry: Java finds no trust anchors in it (a PKCS12 "
                   "made with openssl pkcs12 -export -nokeys); import the CA with keytool -importcert")
    return Identity(common_name(store.chain[0]), store.key, store.chain, anchors)


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logging.getLogger(Gateway.logger).warning("%s", message)


def ocsp_check():
    """Optional (off by default): the gateway checks the primary's certificate by OCSP too."""
    if os.environ.get("SAFEQ_GATEWAY_OCSP", "off").lower() not in ("on", "true", "1"):
        return None
    on_failure = os.environ.get("SAFEQ_GATEWAY_OCSP_ON_FAILURE", "fail-closed")
    if on_failure not in FAIL_MODES:
        raise SetupError(f"SAFEQ_GATEWAY_OCSP_ON_FAILURE must be fail-closed or fail-open, not '{on_failure}'")
    checker = OcspChecker(on_failure=on_failure, max_cache_age=5.0)

    def check(chain: list[x509.Certificate], anchors: list[x509.Certificate]) -> None:
        # The chain as the primary sent it; an issuer it left out may be a trust anchor.
        result = checker.check_chain(chain, chain[1:] + anchors)
        if not result.ok:
            raise Refused(f"the primary's certificate failed the OCSP check: {result.reason}")
    return check


class Gateway(service.Spec):
    prog = "safeq-gateway"
    role = "gateway"
    logger = "safeq-gateway"
    log_file = LOG
    state_path = STATE
    builtin_dir = BUILTIN_DIR

    def __init__(self, unattended: str | None = None, jre: Callable[[], Validator] | None = None):
        self.unattended = unattended  # test-connection --unattended; else the service's file
        self.jre = jre  # the JRE that loads the stores; None: the process's validator (service.shared_validator)

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--unattended", help="unattended installation file (default: the service's)")

    def apply_options(self, args: argparse.Namespace) -> None:
        self.unattended = args.unattended or self.unattended

    def settings_file(self) -> str:
        return self.unattended or unattended_file()

    def builtin(self) -> bool:
        return builtin_certificates()

    def address(self) -> tuple[str, int]:
        return primary_address(read_settings(self.settings_file(), self.builtin()))

    def trusted_identity(self, log: logging.Logger):
        return functools.partial(make_identity, self.settings_file(), self.jre)

    def check_peer(self):
        return ocsp_check()

    def starting(self, log: logging.Logger, host: str, port: int) -> None:
        log.info("Gateway starting; primary server %s:%d; unattended file %s; %s certificates", host, port,
                 self.settings_file(), "built-in" if self.builtin() else "trusted")


def main(argv: list[str]) -> int:
    return service.main(argv, Gateway())
