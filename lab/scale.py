"""More gateways and clients than compose.yaml's one each: `safeq-lab up --gateways N --clients M`.

compose.yaml stays the one topology: each extra gateway is its gateway service once more (compose's
`extends`), with its own host name, certificate (issued by the lab CA into its own host folder), data
volume and log. Extra clients share containers, INSTALLS to one: each such container is compose.yaml's
client service once more, hosting that many client installs (safeqlab.clientinstalls), each with its
own host name (a network alias of the container), certificate store (its PKI host folder's store,
read-only), service data, session and log. `up` writes them to compose.scale.yaml beside the lab's
state and names that file in the state (docker.SCALE_VAR); every compose call of the lab then reads
both files.
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
# Client installs per container: they share one process and one JRE instead of a container and a JVM
# start each; few enough that one container's reconnections mostly stay under the primary's limit of
# unauthenticated connections per address (16).
INSTALLS = 25
# Their own healthchecks while they start: every few seconds, not compose.yaml's 0.5 s, which across tens of
# containers is more checking than two cores do (`up` and `status` run the checks themselves when they need them).
START_INTERVAL = "5s"


@dataclass(frozen=True)
class Extra:
    service: str   # gateway-2
    base: str      # gateway: the compose.yaml service it extends
    host: str      # gateway-host-2: its host name and PKI folder hosts/<host>/
    volumes: tuple[tuple[str, str], ...] = ()  # its own named volumes, in place of the base's: (volume, target)
    installs: tuple[str, ...] = ()  # a container of client installs: their hosts, ``host`` first

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every endpoint it runs: its installs, or its one host."""
        return self.installs or (self.host,)


def _own_volumes(svc: Service, name: str) -> tuple[tuple[str, str], ...]:
    base = svc.name
    return tuple((volume.replace(base, name, 1) if volume.startswith(base) else f"{name}-{volume}", target)
                 for volume, target in svc.volumes)


def extras(bases: dict[str, Service], counts: dict[str, int]) -> list[Extra]:
    """The endpoints beyond compose.yaml's first of each kind, as containers; ``bases``: base service
    name -> its Service. A client container is named after its first install: client-2 hosts
    pcclient-host-2 to pcclient-host-26."""
    out = []
    for base in BASES:
        count = counts.get(base, 1)
        if not 1 <= count <= MAX:
            raise LabError(f"--{base}s {count}: give 1 to {MAX} (1 is compose.yaml's own {base})")
        svc = bases[base]
        step = INSTALLS if base == "client" else 1
        for first in range(2, count + 1, step):
            name = f"{base}-{first}"
            hosts = tuple(f"{svc.host}-{i}" for i in range(first, min(first + step, count + 1)))
            out.append(Extra(name, base, hosts[0], _own_volumes(svc, name), hosts if base == "client" else ()))
    return out


def _service(extra: Extra, compose_file: Path) -> list[str]:
    q = json.dumps  # a JSON string is a YAML string: names and paths quoted safely
    files = "${SAFEQ_LAB_FILES:-./build/pki}/hosts/"
    lines = [f"  {q(extra.service)}:",
             f"    extends: {{file: {q(str(compose_file))}, service: {q(extra.base)}}}",
             "    build: !reset null   # the image compose.yaml's service builds",
             f"    hostname: {q(extra.host)}",
             "    networks: !override",
             f"      lab: {{aliases: [{', '.join(q(h) for h in extra.hosts)}]}}",
             "    volumes:  # replace the base's /pki and data volume (by target); the rest is kept",
             f"      - {q(files + extra.host + ':/pki:ro')}"]
    lines += [f"      - {q(files + h + '/store:/installs/' + h + '/store:ro')}" for h in extra.installs]
    lines += [f"      - {q(volume + ':' + target)}" for volume, target in extra.volumes]
    lines += ["    healthcheck:", f"      start_interval: {START_INTERVAL}"]
    if extra.base == "client":  # each install's own certificate: the one whose subject names its host
        lines += ["    environment:", f"      SAFEQ_CERTIFICATE_SUBJECT: {q(extra.host)}",
                  f"      SAFEQ_CLIENT_INSTALLS: {q(' '.join(extra.installs))}"]
    return lines


def portal_hosts(topo_hosts: list[tuple[str, str]], items: list[Extra]) -> str:
    """The portal's SAFEQ_PORTAL_HOSTS with the extras: its Lab page draws them before they connect.
    ``topo_hosts``: (role, host) of compose.yaml's services, in its order."""
    pairs = [f"{role}={host}" for role, host in topo_hosts]
    pairs += [f"{extra.base}={host}" for extra in items for host in extra.hosts]
    return " ".join(pairs)


def render(items: list[Extra], compose_file: Path, why: str, portal: str | None = None) -> str:
    """``portal``: the portal's host list (portal_hosts()), when the topology has a portal."""
    lines = [f"# Written by `{why}`: do not edit (the next `up` writes it again).",
             "# Each service is compose.yaml's gateway or client once more: another host, or client installs.",
             "services:"]
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
    missing = [(host, extra.base) for extra in items for host in extra.hosts if host not in known]
    if missing:  # one transaction: opening the PKI checks every certificate in it, once
        pki.issue_many(pki_dir, [(host, role, (), None) for host, role in missing])
    return [host for host, _ in missing]


def write(folder: Path, items: list[Extra], compose_file: Path, why: str, portal: str | None = None) -> Path | None:
    """The override file for ``items`` (None, and no file, without extras)."""
    path = folder / FILE
    if not items:
        path.unlink(missing_ok=True)
        return None
    atomic_write(path, render(items, compose_file, why, portal).encode())
    return path
