"""The doc's primary server setup, as the commands a person types in the primary's console.

Running the real commands (not baking the result into the image) is what lets the
checks test the steps, and lets a training mode hand them to a trainee instead.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from .errors import LabError

# Paths inside the primary container (tests point them at a temp folder).
PKI_MOUNT = "/pki"
CONF_DIR = "/opt/safeqcloud/conf"
KEYTOOL = "/opt/safeqcloud/jre/bin/keytool"
CACERTS = "/opt/safeqcloud/jre/lib/security/cacerts"
q = shlex.quote  # every file name: a CA file may be named with spaces, quotes or $(...)


@dataclass(frozen=True)
class Step:
    title: str
    command: str
    stdin: str | None = None
    unless: str | None = None  # skip when this command succeeds (makes `up` re-runnable)


def primary_entity(manifest: dict) -> dict:
    for ent in manifest["entities"]:
        if ent["role"] == "primary":
            return ent
    raise LabError("the PKI has no entity with role primary: add one with `safeq-lab pki issue NAME --role primary`")


def sed_setting(key: str, value: str) -> str:
    """A sed script that sets KEY to VALUE as a quoted HOCON string (JSON rules: \\ and \")."""
    quoted = json.dumps(value, ensure_ascii=False)
    # sed's replacement treats \ & and the | delimiter specially.
    replacement = quoted.replace("\\", "\\\\").replace("|", "\\|").replace("&", "\\&")
    return f"s|^\\([[:space:]]*{key}[[:space:]]*[=:]\\).*|\\1 {replacement}|"


def primary_steps(manifest: dict, host_dir: Path) -> list[Step]:
    """``host_dir``: the folder the primary sees at /pki."""
    ent = primary_entity(manifest)
    source, pfx = f"{PKI_MOUNT}/{ent['name']}.pfx", f"{CONF_DIR}/{ent['name']}.pfx"
    conf, root_file = f"{CONF_DIR}/application.conf", f"{PKI_MOUNT}/cacert.crt"
    root = x509.load_pem_x509_certificate((host_dir / "cacert.crt").read_bytes())
    root_sha = root.fingerprint(hashes.SHA256()).hex(":").upper()
    ca_files = " ".join(q(f"{PKI_MOUNT}/{p.name}") for p in sorted(host_dir.glob("*.cer")))
    return [
        Step(f"Copy the PFX to {CONF_DIR}", f"cp {q(source)} {q(pfx)}"),
        Step("Make it readable (-rw-r--r--)", f"chmod 644 {q(pfx)}"),
        Step("Set default-keystore-file and default-keystore-password in application.conf",
             f"sed -i -e {q(sed_setting('default-keystore-file', pfx))} "
             f"-e {q(sed_setting('default-keystore-password', ent['pfx_password']))} {q(conf)}"),
        Step("Import the root CA into the Java cacerts (password changeit, answer yes)",
             f"{q(KEYTOOL)} -importcert -file {q(root_file)} -keystore {q(CACERTS)}",
             stdin="changeit\nyes\n",
             unless=f"{q(KEYTOOL)} -list -keystore {q(CACERTS)} -storepass changeit | grep -q {q(root_sha)}"),
        Step("Account: import the CA certificates under Trusted CA certificates",
             f"safeq-admin trusted-ca import {ca_files}", unless=f"safeq-admin trusted-ca contains {ca_files}"),
        Step("Account: certificate policy for internal communication = Use trusted CA certificates",
             "safeq-admin account set-policy trusted-ca"),
        Step("Restart the primary server", "systemctl restart safeq-cloud-server"),
    ]


def builtin_steps() -> list[Step]:
    """The product default: nothing to prepare but the account setting."""
    return [Step("Account: certificate policy for internal communication = built-in certificates",
                 "safeq-admin account set-policy built-in")]
