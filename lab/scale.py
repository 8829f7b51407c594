"""More gateways and clients than compose.yaml's one each: `safeq-lab up --gateways N --clients M`.

compose.yaml stays the one topology: each extra endpoint is its gateway or client service once more
(compose's `extends`), with its own host name, certificate (issued by the lab CA into its own host
folder), data volume and log. `up` writes them to compose.scale.yaml beside the lab's state and names
that file in the state (docker.SCALE_VAR); every compose call of the lab then reads both files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pki
from certkit.fsio import atomic_write

from .errors import LabError
from .topology import Service

FILE = "compose.scale.yaml"
BASES = ("gateway", "client")  # compose.yaml's services that may run more than once
MAX = 250                       # per kind: a bound on what one host is asked to start


@dataclass(frozen=True)
class Extra:
    service: str   # gateway-2
    base: str      # gateway: the compose.yaml service it extends
    host: str      # gateway-host-2: its host name and PKI folder hosts/<host>/
    volumes: tuple[tuple[str, str], ...] = ()  # its own named volumes, in place of the base's: (volume, target)


def extras(bases: dict[str, Service], counts: dict[str, int]) -> list[Extra]:
    """The endpoints beyond compose.yaml's first of each kind; ``bases``: base service name -> its Service."""
    out = []
    for base in BASES:
        count = counts.get(base, 1)
        if not 1 <= count <= MAX:
            raise LabError(f"--{base}s {count}: give 1 to {MAX} (1 is compose.yaml's own {base})")
        svc = bases[base]
        for i in range(2, count + 1):
            name = f"{base}-{i}"
            own = tuple((volume.replace(base, name, 1) if volume.startswith(base) else f"{name}-{volume}", target)
                        for volume, target in svc.volumes)
            out.append(Extra(name, base, f"{svc.host}-{i}", own))
    return out


def _service(extra: Extra, compose_file: Path) -> list[str]:
    q = json.dumps  # a JSON string is a YAML string: names and paths quoted safely
    lines = [f"  {q(extra.service)}:",
             f"    extends: {{file: {q(str(compose_file))}, service: {q(extra.base)}}}",
             "    build: !reset null   # the image compose.yaml's service builds",
             f"    hostname: {q(extra.host)}",
             "    networks: !override",
             f"      lab: {{aliases: [{q(extra.host)}]}}",
             "    volumes:  # replace the base's /pki and data volume (by target); the rest is kept",
             f"      - {q('${SAFEQ_LAB_FILES:-./build/pki}/hosts/' + extra.host + ':/pki:ro')}"]
    lines += [f"      - {q(volume + ':' + target)}" for volume, target in extra.volumes]
    if extra.base == "client":  # its own certificate: the one whose subject names this host
        lines += ["    environment:", f"      SAFEQ_CERTIFICATE_SUBJECT: {q(extra.host)}"]
    return lines


def portal_hosts(topo_hosts: list[tuple[str, str]], items: list[Extra]) -> str:
    """The portal's SAFEQ_PORTAL_HOSTS with the extras: its Lab page draws them before they connect.
    ``topo_hosts``: (role, host) of compose.yaml's services, in its order."""
    pairs = [f"{role}={host}" for role, host in topo_hosts]
    pairs += [f"{extra.base}={extra.host}" for extra in items]
    return " ".join(pairs)


def render(items: list[Extra], compose_file: Path, why: str, portal: str | None = None) -> str:
    """``portal``: the portal's host list (portal_hosts()), when the topology has a portal."""
    lines = [f"# Written by `{why}`: do not edit (the next `up` writes it again).",
             "# Each service is compose.yaml's gateway or client once more, as another host.", "services:"]
    for extra in items:
        lines += _service(extra, compose_file)
    if portal:
        lines += ["  portal:", "    environment:", f"      SAFEQ_PORTAL_HOSTS: {json.dumps(portal)}"]
    named = [volume for extra in items for volume, _ in extra.volumes]
    lines += (["volumes:"] + [f"  {json.dumps(volume)}: {{}}" for volume in named]) if named else []
    return "\n".join(lines) + "\n"


def issue_missing(pki_dir: Path, items: list[Extra]) -> list[str]:
    """Each extra endpoint's certificate from the lab CA (once: an existing one is kept)."""
    known = {e["name"] for e in pki.load_manifest(pki_dir)["entities"]}
    issued = []
    for extra in items:
        if extra.host not in known:
            pki.issue(pki_dir, extra.host, extra.base)
            issued.append(extra.host)
    return issued


def write(folder: Path, items: list[Extra], compose_file: Path, why: str, portal: str | None = None) -> Path | None:
    """The override file for ``items`` (None, and no file, without extras)."""
    path = folder / FILE
    if not items:
        path.unlink(missing_ok=True)
        return None
    atomic_write(path, render(items, compose_file, why, portal).encode())
    return path
