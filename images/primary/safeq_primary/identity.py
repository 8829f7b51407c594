"""What the primary can serve on 2560: the configured keystore, and its built-in certificate.

The built-in certificate is the self-signed "localhost" one the doc warns about: the
built-in policy uses it, and a wrong keystore setting falls back to it.
"""
from __future__ import annotations

import logging

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certkit import javastore
from certkit.jre import Validator
from certkit.certs import describe, pem, write_key
from certkit.build import self_signed_localhost

from . import hocon, paths

log = logging.getLogger("safeq-cloud-server")
FALLBACK = "Falling back to the built-in self-signed certificate (CN=localhost)."


def builtin_identity():
    cert_file, key_file = paths.BUILTIN / "certificate.pem", paths.BUILTIN / "key.pem"
    try:
        key = serialization.load_pem_private_key(key_file.read_bytes(), None)
        return key, [x509.load_pem_x509_certificate(cert_file.read_bytes())]
    except (OSError, ValueError):
        key, chain = self_signed_localhost()
        paths.BUILTIN.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_key(key_file, key)
        cert_file.write_text(pem(chain))
        return key, chain


def read_conf() -> dict[str, str]:
    """application.conf flattened; HoconError (with a line number) or OSError when it cannot be used."""
    raw = paths.CONF.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise hocon.HoconError(f"not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    return hocon.parse(text)


def load_keystore(jre: Validator | None = None):
    """(key, chain, keystore status); key and chain are None when the keystore is unusable. ``jre``: the
    server's own JRE validator loads the store (else keytool of the product's JRE)."""
    ks = {"file": None, "loaded": False, "configured": False, "reason": None}
    try:
        conf = read_conf()
    except (OSError, hocon.HoconError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        ks["reason"] = f"{paths.CONF}: {detail}"
        log.warning("Could not read %s: %s. %s", paths.CONF, detail, FALLBACK)
        return None, None, ks
    ks["file"] = hocon.setting(conf, "default-keystore-file") or None
    password = hocon.setting(conf, "default-keystore-password") or ""
    if not ks["file"]:
        ks["reason"] = f"default-keystore-file is not set in {paths.CONF}"
        log.info("No keystore configured in %s: the built-in certificate (CN=localhost) is used.", paths.CONF)
        return None, None, ks
    ks["configured"] = True
    try:
        store = javastore.load_keystore(ks["file"], password, keytool=paths.KEYTOOL, jre=jre)
    except (OSError, javastore.StoreError) as exc:
        ks["reason"] = str(exc)
        log.warning("Could not load keystore %s: %s. %s", ks["file"], exc, FALLBACK)
        return None, None, ks
    ks.update(loaded=True, alias=store.alias)
    log.info("Loaded keystore %s (alias %s): %s", ks["file"], store.alias, describe(store.chain[0])["subject"])
    return store.key, store.chain, ks
