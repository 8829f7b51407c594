"""Where each SAFEQ Cloud Client install keeps its files, and the health of a container of several
(SAFEQ_CLIENT_INSTALLS). Light on purpose (no TLS or crypto imports): the healthcheck runs this
every few seconds in every client container while a lab starts.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from certkit import fsio
from .health import answer, healthy, status_json

HOME = Path("/ProgramData/safeqclientcore")  # mirrors C:\\ProgramData\\safeqclientcore
DATA = Path("/var/lib/safeqclient")          # the service's data: setup choices, built-in certificate
INSTALLS = Path("/installs")                 # several installs in one container: one folder each
ENV = "SAFEQ_CLIENT_INSTALLS"


@dataclass(frozen=True)
class Install:
    """Where one client install keeps its files, as a separate install would: its ProgramData folder
    (log, status), its service data (setup choices, built-in certificate), its certificate store."""
    host: str | None    # its host name; None: the container's own install (compose.yaml's client)
    home: Path
    data: Path
    store: Path | None  # None: SAFEQ_CERT_STORE

    @property
    def log(self) -> Path:
        return self.home / "logs/safeqclientcore.log"

    @property
    def status(self) -> Path:
        return self.home / "status.json"

    @property
    def setup(self) -> Path:
        return self.data / "setup.json"  # `safeq-client setup`: the service setup's choices, kept


OWN = Install(None, HOME, DATA, None)


def install_of(host: str) -> Install:
    """One of several installs in this container: the store is the PKI's hosts/<host>/store, mounted
    read-only at /installs/<host>/store."""
    if not host or "/" in host or host.startswith("."):
        raise ValueError(f"'{host}' is not a host name")
    return Install(host, INSTALLS / host / "ProgramData/safeqclientcore", DATA / "installs" / host,
                   INSTALLS / host / "store")


def hosts() -> list[str]:
    """The installs this container hosts (none: it is one install, compose.yaml's client)."""
    return os.environ.get(ENV, "").split()


def report(names: list[str], command: str, as_json: bool) -> int:
    """status (always exit 0) and health (exit 0 only while every install is connected)."""
    data = {h: fsio.read_json(install_of(h).status) for h in names}
    verdicts = {h: healthy(d) for h, d in data.items()}
    bad = {h: why for h, (ok, why) in verdicts.items() if not ok}
    summary = f"{len(names) - len(bad)}/{len(names)} installs connected"
    if bad:
        shown = [f"{h}: {why}" for h, why in list(bad.items())[:5]]
        summary += "; " + "; ".join(shown) + ("; ..." if len(bad) > 5 else "")
    if command == "health":
        print(summary)
        return 1 if bad else 0
    if as_json:
        print(json.dumps({"state": "disconnected" if bad else "connected", "reason": summary if bad else None,
                          "icon": "yellow" if bad else "grey", "installs": data}, indent=2))
    else:
        for h in names:
            print(f"{h}: {(data[h] or {}).get('icon', 'yellow')}: {verdicts[h][1]}")
    return 0


def main(argv: list[str]) -> int:
    """safeq-client: the healthcheck (and a container of several installs its status) is answered from
    these files alone (it runs every few seconds while a lab starts); every other command is
    safeqlab.client's."""
    several = hosts()
    if several and argv in (["health"], ["status"], ["status", "--json"]):
        return report(several, argv[0], "--json" in argv)
    if not several and argv == ["health"]:
        return answer(OWN.status)
    if not several and argv == ["status", "--json"]:
        return status_json(OWN.status)
    from .client import main as client_main  # TLS and crypto: only when needed
    return client_main(argv)
