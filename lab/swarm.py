"""The lab on Docker Swarm: `safeq-lab up --engine swarm` deploys compose.yaml as a stack.

The stack file is compose.yaml as `docker compose config` resolves it for the lab, changed only where a
swarm needs it: no builds (images come from the nodes' own image store: build or `docker load` them on
each node), an attachable overlay network, each file of a host's PKI folder delivered as a Docker config
(certificates, public) or secret (keystores, keys, passwords: mode 0400) at the same path under /pki,
since bind mounts do not span hosts; no published ports (the lab is reached through its overlay network
and `safeq-lab exec`); host names resolve to the containers themselves (dnsrr), as on compose's network. Each container carries the compose labels of its service, so status, verify and
the doc's steps find it the way they find a compose lab's. Written to `<lab folder>/stack.json`.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from certkit.fsio import atomic_write
from pki.export import mode_for

from .errors import LabError

FILE = "stack.json"
ENGINE_VAR = "SAFEQ_LAB_ENGINE"  # in the lab's state: "swarm" for a lab deployed as a stack
PROJECT_LABEL, SERVICE_LABEL = "com.docker.compose.project", "com.docker.compose.service"
NUMBER_LABEL, ONEOFF_LABEL = "com.docker.compose.container-number", "com.docker.compose.oneoff"
KEPT = ("image", "hostname", "environment", "healthcheck", "stop_grace_period", "init", "command", "entrypoint",
        "user", "working_dir", "cap_add", "cap_drop", "read_only", "tmpfs", "ulimits", "labels")
SECRET_NAMES = ("portal-login",)  # besides pki.export's secret file names: the portal's login


def is_secret(path: Path, target: str) -> bool:
    return mode_for(path) == 0o600 or Path(target).name in SECRET_NAMES or target.startswith("/run/secrets/")


def _object_name(stack: str, target: str, data: bytes) -> str:
    """Configs and secrets are immutable: a name per content, so a new certificate is a new object."""
    digest = hashlib.sha256(target.encode() + b"\0" + data).hexdigest()[:16]
    return f"{stack}-{digest}"


class Converter:
    """compose config (JSON) -> stack file, collecting the configs and secrets its services use."""

    def __init__(self, stack: str):
        self.stack = stack
        self.configs: dict[str, dict] = {}
        self.secrets: dict[str, dict] = {}

    def _deliver(self, source: Path, target: str) -> dict:
        data = source.read_bytes()
        name = _object_name(self.stack, target, data)
        if is_secret(source, target):
            self.secrets[name] = {"file": str(source), "name": name}
            return {"kind": "secrets", "entry": {"source": name, "target": target, "mode": 0o400}}
        self.configs[name] = {"file": str(source), "name": name}
        return {"kind": "configs", "entry": {"source": name, "target": target, "mode": 0o444}}

    def mounts(self, service: str, volumes: list[dict]) -> dict[str, list]:
        """A service's volumes: named ones kept, each bind-mounted file or folder as configs/secrets."""
        out: dict[str, list] = {"volumes": [], "configs": [], "secrets": []}
        for vol in volumes:
            if vol.get("type") == "volume":
                out["volumes"].append({k: vol[k] for k in ("type", "source", "target", "read_only") if k in vol})
                continue
            if vol.get("type") != "bind":
                raise LabError(f"compose.yaml: {service} mounts a {vol.get('type')} volume, which a stack cannot carry")
            source, target = Path(vol["source"]), vol["target"].rstrip("/")
            if not source.exists():
                raise LabError(f"{service} mounts {source}, which does not exist: run `safeq-lab up` once "
                               "without --engine swarm, or `safeq-lab pki init`")
            files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
            for path in files:
                rel = "" if path == source else "/" + path.relative_to(source).as_posix()
                item = self._deliver(path, target + rel)
                out[item["kind"]].append(item["entry"])
        return out

    def service(self, name: str, svc: dict) -> dict:
        out = {k: svc[k] for k in KEPT if svc.get(k) is not None}
        out["labels"] = {**(svc.get("labels") or {}), PROJECT_LABEL: self.stack, SERVICE_LABEL: name,
                         NUMBER_LABEL: "1", ONEOFF_LABEL: "False"}
        out["networks"] = {net: ({"aliases": conf["aliases"]} if conf and conf.get("aliases") else None)
                           for net, conf in (svc.get("networks") or {}).items()}
        out.update({k: v for k, v in self.mounts(name, svc.get("volumes") or []).items() if v})
        # dnsrr: a host name is its container's address, as on compose's network (no virtual IP in front
        # of the primary, which would stand between an endpoint and the TLS alerts it gets).
        out["deploy"] = {"replicas": 1, "endpoint_mode": "dnsrr", "restart_policy": {"condition": "any", "delay": "1s"}}
        return out


def stack_file(config: dict[str, Any], stack: str) -> dict[str, Any]:
    """The stack file for ``config`` (`docker compose config --format json` of the lab)."""
    conv = Converter(stack)
    services = {name: conv.service(name, svc) for name, svc in sorted(config.get("services", {}).items())}
    networks = {key: {"driver": "overlay", "attachable": True, "name": (net or {}).get("name") or f"{stack}_{key}"}
                for key, net in (config.get("networks") or {}).items()}
    volumes = {key: {} for key in (config.get("volumes") or {})}
    return {"services": services, "networks": networks, "volumes": volumes,
            "configs": conv.configs, "secrets": conv.secrets}


def write(folder: Path, stack: dict[str, Any]) -> Path:
    path = folder / FILE
    atomic_write(path, (json.dumps(stack, indent=2, sort_keys=True) + "\n").encode())
    return path
