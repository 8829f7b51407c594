"""What the primary can serve on 2560: the configured keystore, and its built-in certificate.

The built-in certificate is the self-signed "localhost" one the doc warns about: the
built-in policy uses it, and a wrong keystore setting falls back to it.
"""
from __future__ import annotations

import logging

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certkit import javastore
from certkit.certs import describe, pem, write_key
from certkit.build import self_signed_localhost

from . import hocon, paths

log = logging.getLogger("safeq-cloud-server")


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


def load_keystore():
    """(key, chain, keystore status); key and chain are None when the keystore is unusable."""
    ks = {"file": None, "loaded": False, "configured": False, "reason": None}
    try:
        conf = hocon.parse(paths.CONF.read_text())
        ks["file"] = hocon.setting(conf, "default-keystore-file") or None
        password = hocon.setting(conf, "default-keystore-password") or ""
        if not ks["file"]:
            ks["reason"] = f"default-keystore-file is not set in {paths.CONF}"
            log.info("No keystore configured in %s: the built-in certificate (CN=localhost) is used.", paths.CONF)
            return None, None, ks
        ks["configured"] = True
        store = javastore.load_keystore(ks["file"], password, keytool=paths.KEYTOOL)
        ks.update(loaded=True, alias=store.alias)
        log.info("Loaded keystore %s (alias %s): %s", ks["file"], store.alias, describe(store.chain[0])["subject"])
        return store.key, store.chain, ks
    except (OSError, hocon.HoconError, javastore.StoreError) as exc:
        ks["reason"] = str(exc)
        log.warning("Could not load keystore %s: %s. Falling back to the built-in self-signed certificate (CN=localhost).",
                    ks["file"], exc)
        return None, None, ks
