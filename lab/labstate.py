"""Which files the running lab uses: the lab's own PKI, or a spec's files staged for it.

`up` writes build/lab.json; every later command (status, verify, logs, down, the infra checks)
reads it, so that compose sees the same host names, folders and settings as the lab that runs.
Without the file the lab is the one of the lab's own PKI, with compose.yaml's defaults.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from certkit.fsio import SECRET_FILE_MODE, StateError, atomic_write, read_json

from . import project
from .errors import LabError
from .spec import Spec, SpecError, lab_spec, load

STAGED_SPEC = "spec.toml"  # in a staged folder: the spec of what the lab mounts


@dataclass(frozen=True)
class LabState:
    files: Path                      # the folder whose hosts/<host>/ folders the containers mount
    spec_file: str | None = None     # the user's spec; None: the lab's own PKI
    env: dict[str, str] = field(default_factory=dict)  # compose variables `up` chose
    identity: str = ""               # what the account volumes were set up for

    @property
    def own_pki(self) -> bool:
        return self.spec_file is None

    def compose_env(self) -> dict[str, str]:
        """The variables compose.yaml reads for this lab."""
        return {**self.env, "SAFEQ_LAB_FILES": str(self.files)}

    def spec(self) -> Spec:
        """The spec of the files the lab mounts."""
        return lab_spec(self.files) if self.own_pki else load(self.files / STAGED_SPEC)


def path() -> Path:
    return project.root() / "build" / "lab.json"


def current() -> LabState:
    """The state `up` left, else the lab's own PKI (SAFEQ_PKI_DIR or build/pki)."""
    try:
        data = read_json(path())
        if data is None:
            return LabState(files=project.pki_dir())
        return LabState(files=Path(data["files"]), spec_file=data.get("spec_file"), env=dict(data["env"]),
                        identity=data.get("identity", ""))
    except (StateError, KeyError, TypeError, ValueError):
        raise LabError(f"{path()} is damaged: delete it, then `safeq-lab up` starts the lab again and "
                       "writes it anew") from None


def save(state: LabState) -> None:
    data = {"files": str(state.files), "spec_file": state.spec_file, "env": state.env, "identity": state.identity}
    path().parent.mkdir(parents=True, exist_ok=True)
    # The env may name a user's file; owner-only like the rest of build/.
    atomic_write(path(), json.dumps(data, indent=2).encode() + b"\n", SECRET_FILE_MODE)


def host_env(spec: Spec) -> dict[str, str]:
    """compose.yaml's host variables: the spec's names for primary, gateway and client."""
    if len(spec.gateways) != 1 or len(spec.clients) != 1:
        raise SpecError(f"{spec.source}: the lab runs one gateway and one client; this spec has "
                       f"{len(spec.gateways)} [[gateway]] and {len(spec.clients)} [[client]] tables: keep one of each "
                       "to start it (`safeq-lab doctor` checks them all)")
    gateway, client = spec.gateways[0], spec.clients[0]
    return {"SAFEQ_PRIMARY_HOST": spec.primary.host, "SAFEQ_GATEWAY_HOST": gateway.host,
            "SAFEQ_CLIENT_HOST": client.host, "SAFEQ_CLIENT_SUBJECT": client.subject}


def identity(spec: Spec) -> str:
    """Changes when the spec's files or settings do: the account set up for other files starts fresh."""
    digest = hashlib.sha256()
    for item in (spec.primary, spec.account, *spec.gateways, *spec.clients):
        digest.update(repr(item).encode())
    for file in _files(spec):
        digest.update(file.read_bytes() if file.is_file() else b"")
    return digest.hexdigest()[:16]


def _files(spec: Spec) -> list[Path]:
    files = [spec.primary.keystore, *spec.primary.cacerts, *spec.account.trusted_cas]
    for gateway in spec.gateways:
        files += [gateway.keystore, *([gateway.truststore] if gateway.truststore else []), *gateway.truststore_certs]
    for client in spec.clients:
        files += [client.keystore] if client.keystore else sorted(p for p in client.store.rglob("*") if p.is_file())
    return files
