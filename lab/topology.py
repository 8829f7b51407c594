"""The lab's topology as compose.yaml describes it, read through `docker compose config`.

compose.yaml is the one description of the services, their host names, ports and PKI
mounts; everything in lab/ and the infra checks reads them from here.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from . import docker, project
from .errors import LabError

CONFIG_TIMEOUT = docker.QUICK


@dataclass(frozen=True)
class Port:
    """A published port: host_ip:host_port on the host -> container_port in the container."""
    host_ip: str
    host_port: str
    container_port: int
    protocol: str = "tcp"


@dataclass(frozen=True)
class Service:
    name: str
    container: str                 # <project>-<service>-1, or compose's container_name
    hostname: str | None
    aliases: tuple[str, ...]
    ports: tuple[Port, ...]
    exposed: tuple[str, ...]       # `expose:` ports, reachable on the lab network only
    pki_mount: str | None          # the bind source relative to the PKI dir, e.g. hosts/primary-host
    image: str | None = None       # e.g. safeq-lab/gateway:latest: what the service runs
    volumes: tuple[tuple[str, str], ...] = ()  # named volumes: (volume, target), e.g. ("gateway-data", "/var/lib/...")
    depends_on: tuple[str, ...] = ()  # the services compose starts before it

    @property
    def role(self) -> str:
        """What runs in it (the image's name: primary, gateway, client, ...), whatever the service is
        called: `up --gateways 3` adds gateway-2 and gateway-3, which run the gateway."""
        if not self.image:
            return self.name
        return self.image.rsplit("/", 1)[-1].split(":", 1)[0]

    @property
    def host(self) -> str | None:
        """The name the other hosts reach it by."""
        return self.hostname or (self.aliases[0] if self.aliases else None)

    @property
    def port(self) -> str:
        """The container port(s) it serves, for a summary: published first, else exposed."""
        ports = [str(p.container_port) for p in self.ports] or [p.split("/")[0] for p in self.exposed]
        return ", ".join(dict.fromkeys(ports))


@dataclass(frozen=True)
class Topology:
    project: str
    services: tuple[Service, ...]  # in compose.yaml's order
    network: str = ""              # the lab network's name (compose.yaml's networks: ... name:)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.services]

    def started_with(self, name: str) -> set[str]:
        """``name`` and every service compose starts before it (depends_on, followed through)."""
        found, todo = set(), [name]
        while todo:
            current = todo.pop()
            if current not in found:
                found.add(current)
                todo.extend(self.service(current).depends_on)
        return found

    def service(self, name: str) -> Service:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise LabError(f"compose.yaml has no service {name!r} (it has {', '.join(self.names)})")


def file_order(compose_text: str) -> list[str]:
    """Service names in the order compose.yaml lists them.

    `config --format json` sorts them by name and `config --services` by dependency;
    only the file itself keeps the order its author chose."""
    names, indent, inside = [], None, False
    for line in compose_text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            inside = line.split("#")[0].rstrip() == "services:"
            continue
        if inside:
            m = re.match(r"(\s+)([\w.-]+)\s*:", line)
            width = len(line) - len(line.lstrip())
            indent = width if indent is None else indent
            if m and width == indent:
                names.append(m.group(2))
    return names


def _pki_mount(volumes: list[dict], pki_dir: Path) -> str | None:
    for vol in volumes or []:
        if vol.get("type") != "bind" or not vol.get("source"):
            continue
        source = Path(vol["source"])
        if source == pki_dir or pki_dir in source.parents:
            return source.relative_to(pki_dir).as_posix()
    return None


def _service(project_name: str, name: str, cfg: dict, pki_dir: Path) -> Service:
    aliases = []
    for net in (cfg.get("networks") or {}).values():
        aliases += (net or {}).get("aliases") or []
    ports = tuple(Port(p.get("host_ip") or "0.0.0.0", str(p.get("published") or ""), int(p["target"]),
                       p.get("protocol") or "tcp") for p in cfg.get("ports") or [])
    return Service(name=name, container=cfg.get("container_name") or f"{project_name}-{name}-1",
                   hostname=cfg.get("hostname"), aliases=tuple(dict.fromkeys(aliases)), ports=ports,
                   exposed=tuple(str(e) for e in cfg.get("expose") or []),
                   pki_mount=_pki_mount(cfg.get("volumes"), pki_dir), image=cfg.get("image"),
                   volumes=tuple((v["source"], v["target"]) for v in cfg.get("volumes") or []
                                 if v.get("type") == "volume" and v.get("source")),
                   depends_on=tuple(cfg.get("depends_on") or ()))


def _place(name: str, listed: list[str]) -> tuple:
    """compose.yaml's order; an extra endpoint (gateway-2, lab.scale) right after its base, by number."""
    if name in listed:
        return (listed.index(name), 0, "")
    base, _, number = name.rpartition("-")
    if base in listed and number.isdigit():
        return (listed.index(base), int(number), "")
    return (len(listed), 0, name)


def parse(config: dict, pki_dir: Path, order: list[str] | None = None) -> Topology:
    """`config`: the JSON of `docker compose config --format json`; ``pki_dir``: the folder whose host
    folders the services mount (SAFEQ_LAB_FILES)."""
    name = config.get("name")
    services = config.get("services") or {}
    if not name or not services:
        raise LabError("`docker compose config` shows no project name or no services: check compose.yaml")
    listed = [s for s in order or [] if s in services]
    names = sorted(services, key=lambda s: _place(s, listed))
    networks = config.get("networks") or {}
    network = next(((net or {}).get("name") or key for key, net in networks.items()), "")
    return Topology(project=name, services=tuple(_service(name, s, services[s], Path(pki_dir)) for s in names),
                    network=network)


_cache: dict[tuple[Path, tuple], Topology] = {}


def load() -> Topology:
    """The topology, from one `docker compose config` per process (and lab: lab.labstate)."""
    root, env = project.root(), docker.env()
    key = (root, tuple(sorted(env.items())))
    if key not in _cache:
        _cache[key] = parse(_config(root, env), Path(env["SAFEQ_LAB_FILES"]),
                            file_order((root / "compose.yaml").read_text()))
    return _cache[key]


def config() -> dict:
    """compose.yaml (and the lab's override) as `docker compose config` resolves it for the lab."""
    return _config(project.root(), docker.env())


def _config(root: Path, env: dict[str, str]) -> dict:
    argv = ["docker", "compose", *docker.compose_files(root, env), "config", "--format", "json"]
    proc = docker.run_timed(argv, CONFIG_TIMEOUT, what="docker compose config", cwd=root, env=env,
                            capture_output=True, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr or "").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        raise LabError(f"`docker compose config` cannot read compose.yaml ({detail[0]}): fix the file")
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise LabError("`docker compose config --format json` printed something that is not JSON: "
                       "update Docker Compose to v2") from None
