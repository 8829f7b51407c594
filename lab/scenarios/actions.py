"""What a scenario breaks: declarative actions, each carried out the way a person would do it.

One ``[[break]]`` table names its action with ``do``; the other keys are the action's own:

  do = "pki-defect"      host, defect     the host's files replaced by defective ones (pki.defects)
  do = "pki-revoke"      host, reason     `safeq-lab pki revoke HOST` (OCSP answers "revoked")
  do = "conf"            set = {k = v}    the primary's application.conf, edited with sed
  do = "chmod"           service, path, mode
  do = "remove"          service, path
  do = "unattended"      set = {K = v}    the gateway's unattended installation file (its host folder)
  do = "account"         args = [...]     `safeq-admin account ARGS...` on the primary
  do = "remove-ca"       ca               Trusted CA certificates: "all", "root" or "intermediate"
  do = "cacerts-remove"  ca               the primary's Java cacerts: keytool -delete of that CA
  do = "public-bundle"   ca               the CA added to the primary's public CA bundle (a "global" CA)
  do = "client-setup"    subject          the client's service setup: the certificate subject
  do = "restart"         service, unit    `systemctl restart UNIT` in the service's container
  do = "stop"            service          the service's container stopped

Paths and units are the product's; CA names ("root", "intermediate") are the lab PKI's own.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from certkit.certs import fingerprint, load_cert_file
from certkit.fsio import atomic_write

from .. import docker, engine, project, steps
from ..errors import LabError

q = shlex.quote
KEYS: dict[str, dict[str, type]] = {
    "pki-defect": {"host": str, "defect": str},
    "pki-revoke": {"host": str, "reason": str},
    "conf": {"set": dict},
    "chmod": {"service": str, "path": str, "mode": str},
    "remove": {"service": str, "path": str},
    "unattended": {"set": dict},
    "account": {"args": list},
    "remove-ca": {"ca": str},
    "cacerts-remove": {"ca": str},
    "public-bundle": {"ca": str},
    "client-setup": {"subject": str},
    "restart": {"service": str, "unit": str},
    "stop": {"service": str},
}
# Actions that change files of the image itself (update-ca-certificates rewrites the system's bundles and
# dpkg's state): a reset cannot put those back, so the lab is made anew for the scenario after.
IMAGE_CHANGES = frozenset({"public-bundle"})
CAS = ("root", "intermediate", "all")
CONF = f"{steps.CONF_DIR}/application.conf"
GATEWAY_HOST, PRIMARY_HOST = "gateway-host", "primary-host"


@dataclass(frozen=True)
class Action:
    do: str
    args: tuple[tuple[str, Any], ...]

    def get(self, key: str):
        return dict(self.args)[key]

    def describe(self) -> str:
        return f"{self.do} " + " ".join(f"{k}={v!r}" for k, v in self.args)


def parse(table: dict) -> Action:
    do = table.get("do")
    if do not in KEYS:
        raise ValueError(f"a [[break]] names its action with do = one of {', '.join(KEYS)}; got {do!r}")
    wanted = KEYS[do]
    given = set(table) - {"do"}
    if given != set(wanted):
        raise ValueError(f"do = {do!r} takes {', '.join(wanted)}; got {', '.join(sorted(given)) or 'nothing'}")
    for key, kind in wanted.items():
        if not isinstance(table[key], kind):
            raise ValueError(f"do = {do!r}: {key} must be a {kind.__name__}")
    if "ca" in table and table["ca"] not in CAS[: 3 if do == "remove-ca" else 2]:
        raise ValueError(f"do = {do!r}: ca must be one of {', '.join(CAS[: 3 if do == 'remove-ca' else 2])}")
    for key in ("set", "args"):
        values = table.get(key, {})
        if not all(isinstance(v, str) for v in (values.values() if isinstance(values, dict) else values)):
            raise ValueError(f"do = {do!r}: the values of {key} are strings (quote them)")
    if do == "chmod" and not re.fullmatch(r"[0-7]{3,4}", table["mode"]):
        raise ValueError("do = 'chmod': mode is octal, e.g. \"600\"")
    return Action(do, tuple(sorted((k, _frozen(v)) for k, v in table.items() if k != "do")))


def _frozen(value):
    if isinstance(value, dict):
        return tuple(sorted((str(k), str(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return value


# -- carrying them out ------------------------------------------------------------------------

def ca_file(which: str) -> Path:
    """The lab PKI's root or lowest intermediate CA certificate, as the primary's folder holds it."""
    import pki
    cas = pki.load_manifest(project.pki_dir())["cas"]
    if which == "intermediate" and len(cas) < 2:
        raise LabError("this lab's PKI has no intermediate CA")
    name = cas[0]["name"] if which == "root" else cas[-1]["name"]
    return project.pki_dir() / "hosts" / PRIMARY_HOST / f"{name}.cer"


def _sh(service: str, command: str) -> None:
    engine.exec_sh(service, command, timeout=60)


def _defect(a: Action) -> None:
    from pki import defects
    defects.apply(project.pki_dir(), a.get("host"), a.get("defect"))


def _revoke(a: Action) -> None:
    import pki
    pki.revoke(project.pki_dir(), a.get("host"), a.get("reason"))


def _conf(a: Action) -> None:
    scripts = " ".join(f"-e {q(steps.sed_setting(k, v))}" for k, v in a.get("set"))
    _sh("primary", f"sed -i {scripts} {q(CONF)}")


def _unattended(a: Action) -> None:
    path = project.pki_dir() / "hosts" / GATEWAY_HOST / "unattended-install.conf"
    lines = path.read_text().splitlines()
    for key, value in a.get("set"):
        line = f'{key}="{value}"'
        at = [i for i, text in enumerate(lines) if text.split("=", 1)[0].strip() == key]
        if at:
            lines[at[0]] = line
        else:
            lines.append(line)
    atomic_write(path, ("\n".join(lines) + "\n").encode(), mode=path.stat().st_mode & 0o777)


def _remove_ca(a: Action) -> None:
    import json
    listed = json.loads(engine.exec_sh("primary", "safeq-admin account show --json").stdout)["trusted_cas"]
    wanted = None if a.get("ca") == "all" else fingerprint(load_cert_file(ca_file(a.get("ca"))))
    for ca in listed:
        if wanted is None or ca["sha256"] == wanted:
            _sh("primary", f"safeq-admin account remove-ca {q(ca['sha256'].replace(':', ''))}")


def _cacerts_remove(a: Action) -> None:
    sha = fingerprint(load_cert_file(ca_file(a.get("ca"))))
    listing = engine.exec_sh("primary", f"{q(steps.KEYTOOL)} -list -keystore {q(steps.CACERTS)} -storepass changeit",
                             timeout=60).stdout
    alias, previous = None, ""
    for line in listing.splitlines():  # "ALIAS, DATE, trustedCertEntry," then its fingerprint line
        if sha in line:
            alias = previous.split(",")[0]
        previous = line
    if alias is None:
        raise LabError(f"the primary's cacerts holds no certificate with SHA-256 {sha}")
    _sh("primary", f"{q(steps.KEYTOOL)} -delete -alias {q(alias)} -keystore {q(steps.CACERTS)} -storepass changeit")


def _public_bundle(a: Action) -> None:
    path = ca_file(a.get("ca"))
    _sh("primary", f"openssl x509 -inform DER -in {q(steps.in_container(path, path.parent))} "
                   f"-out /usr/local/share/ca-certificates/{q(path.stem)}.crt && update-ca-certificates >/dev/null")


def _restart(a: Action) -> None:
    _sh(a.get("service"), f"systemctl restart {q(a.get('unit'))}")
    if a.get("service") == "primary":  # what follows may need its admin API, as a person would wait for it
        from ..deadline import Deadline
        from ..up import wait_for_admin_api
        wait_for_admin_api(Deadline(120, what="the primary's restart"))


ACTIONS: dict[str, Callable[[Action], None]] = {
    "pki-defect": _defect,
    "pki-revoke": _revoke,
    "conf": _conf,
    "chmod": lambda a: _sh(a.get("service"), f"chmod {a.get('mode')} {q(a.get('path'))}"),
    "remove": lambda a: _sh(a.get("service"), f"rm -rf {q(a.get('path'))}"),
    "unattended": _unattended,
    "account": lambda a: _sh("primary", "safeq-admin account " + " ".join(q(x) for x in a.get("args"))),
    "remove-ca": _remove_ca,
    "cacerts-remove": _cacerts_remove,
    "public-bundle": _public_bundle,
    "client-setup": lambda a: _sh("client", f"safeq-client setup --subject {q(a.get('subject'))}"),
    "restart": _restart,
    "stop": lambda a: docker.compose("stop", "--timeout", "2", a.get("service"), quiet=True),
}


def apply(action: Action) -> None:
    ACTIONS[action.do](action)
