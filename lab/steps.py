"""The doc's primary server setup, as the commands a person types in the primary's console.

Running the real commands (not baking the result into the image) is what lets the
checks test the steps, and lets a training mode hand them to a trainee instead.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from .errors import LabError

CONF_DIR = "/opt/safeqcloud/conf"
KEYTOOL = "/opt/safeqcloud/jre/bin/keytool"
CACERTS = "/opt/safeqcloud/jre/lib/security/cacerts"


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


def primary_steps(manifest: dict, host_dir: Path) -> list[Step]:
    ent = primary_entity(manifest)
    pfx = f"{CONF_DIR}/{ent['name']}.pfx"
    root = x509.load_pem_x509_certificate((host_dir / "cacert.crt").read_bytes())
    root_sha = root.fingerprint(hashes.SHA256()).hex(":").upper()
    ca_files = " ".join(f"/pki/{p.name}" for p in sorted(host_dir.glob("*.cer")))
    # sed's replacement treats \ & and the | delimiter specially; the shell gets the whole script quoted.
    sed_pw = ent["pfx_password"].replace("\\", "\\\\").replace("|", "\\|").replace("&", "\\&")
    set_file = f's|^\\([[:space:]]*default-keystore-file[[:space:]]*[=:]\\).*|\\1 "{pfx}"|'
    set_password = f's|^\\([[:space:]]*default-keystore-password[[:space:]]*[=:]\\).*|\\1 "{sed_pw}"|'
    return [
        Step("Copy the PFX to /opt/safeqcloud/conf", f"cp /pki/{ent['name']}.pfx {pfx}"),
        Step("Make it readable (-rw-r--r--)", f"chmod 644 {pfx}"),
        Step("Set default-keystore-file and default-keystore-password in application.conf",
             f"sed -i -e {shlex.quote(set_file)} -e {shlex.quote(set_password)} {CONF_DIR}/application.conf"),
        Step("Import the root CA into the Java cacerts (password changeit, answer yes)",
             f"{KEYTOOL} -importcert -file /pki/cacert.crt -keystore {CACERTS}",
             stdin="changeit\nyes\n",
             unless=f"{KEYTOOL} -list -keystore {CACERTS} -storepass changeit | grep -q '{root_sha}'"),
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
