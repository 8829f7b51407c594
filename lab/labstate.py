"""Which lab a command is about, and which files it runs on: the lab's own PKI, or a spec's files
staged for it.

Labs: the default one (compose project safeq-lab, port 2560), and any number of named ones side by
side (`safeq-lab --lab NAME`, one per student): each its own compose project, network, volumes,
generated PKI (build/labs/NAME/pki) and published port. `up` writes the lab's state (build/lab.json,
build/labs/NAME/lab.json); every later command (status, verify, logs, down, the infra checks) reads
it, so that compose sees the same names, folders and settings as the lab that runs. Without the
file: the lab's own PKI, compose.yaml's defaults.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from certkit.fsio import SECRET_FILE_MODE, StateError, atomic_write, read_json

from . import project
from .errors import LabError
from .spec import Spec, SpecError, lab_spec, load

STAGED_SPEC = "spec.toml"  # in a staged folder: the spec of what the lab mounts
NAME_VAR, DEFAULT = project.LAB_VAR, project.DEFAULT_LAB
DEFAULT_PORT = 2560
DEFAULT_PORTAL_PORT = 8560
PORTAL_OFFSET = DEFAULT_PORTAL_PORT - DEFAULT_PORT
NAME_RULE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")  # a compose project name, kept short


def name() -> str:
    """The lab this process is about."""
    value = os.environ.get(NAME_VAR) or DEFAULT
    if not NAME_RULE.fullmatch(value):
        raise LabError(f"lab name {value!r}: use lowercase letters, digits, '-' and '_' (up to 40, starting "
                       "with a letter or digit), e.g. --lab student-01")
    return value


def folder(lab: str | None = None) -> Path:
    """Where a lab's state lives (this process's lab by default): build/ for the default lab,
    build/labs/NAME/ for the others."""
    return project.lab_folder(lab or name())


def names() -> list[str]:
    """Every lab that has a state: the default one first."""
    labs = project.root() / "build" / "labs"
    found = sorted(p.parent.name for p in labs.glob("*/lab.json")) if labs.is_dir() else []
    default = [DEFAULT] if (project.root() / "build" / "lab.json").exists() else []
    return default + [n for n in found if NAME_RULE.fullmatch(n) and n != DEFAULT]


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
        return {**self.env, "SAFEQ_LAB_FILES": str(self.files), "SAFEQ_LAB_NAME": name()}

    @property
    def port(self) -> int:
        return int(self.env.get("SAFEQ_PRIMARY_PORT", DEFAULT_PORT))

    @property
    def portal_port(self) -> int:
        return int(self.env.get("SAFEQ_PORTAL_PORT", DEFAULT_PORTAL_PORT))

    def spec(self) -> Spec:
        """The spec of the files the lab mounts."""
        return lab_spec(self.files) if self.own_pki else load(self.files / STAGED_SPEC)


def path(lab: str | None = None) -> Path:
    return folder(lab) / "lab.json"


def free_port(previous: LabState, wanted: int | None = None) -> int:
    """The port this lab publishes the primary on: ``wanted`` (`up --port`) when it is this lab's
    already or free; else 2560 for the default lab; a named lab keeps its port, or takes the first
    one from 2561 up that no other lab has and nothing listens on."""
    if wanted is None and name() == DEFAULT:
        return DEFAULT_PORT
    if wanted is None and "SAFEQ_PRIMARY_PORT" in previous.env:
        return previous.port
    others = {current(other).port for other in names() if other != name()}
    if wanted is not None:
        if wanted != previous.port and (wanted in others or not bindable(wanted)):
            raise LabError(f"port {wanted} is taken on 127.0.0.1 (another lab or program listens there): "
                           "choose another with --port, or leave --port out to get a free one")
        return wanted
    for port in range(DEFAULT_PORT + 1, DEFAULT_PORT + 200):
        if port not in others and bindable(port):
            return port
    raise LabError("no free port from 2561 to 2759 on 127.0.0.1 for this lab's primary: remove labs you no "
                   "longer need (`safeq-lab --lab NAME down --volumes`)")


def portal_port(previous: LabState, primary_port: int) -> int:
    """The web portal's port: 8560 for the default lab; a named lab's primary port + 6000, unique
    as the primary ports are (no race between labs started at once)."""
    port = DEFAULT_PORTAL_PORT if name() == DEFAULT else primary_port + PORTAL_OFFSET
    if port != previous.portal_port and not bindable(port):
        raise LabError(f"port {port} on 127.0.0.1, for this lab's web portal (its primary port + {PORTAL_OFFSET}), "
                       "is taken by another program: stop it, or give the lab another primary port with --port")
    return port


def bindable(port: int) -> bool:
    """Whether a listener could take the port: one listening there says no; connections left in
    TIME_WAIT by a lab that just went do not (Docker's proxy binds with SO_REUSEADDR too)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def current(lab: str | None = None) -> LabState:
    """The state `up` left for a lab (this process's by default), else the lab's own PKI
    (SAFEQ_PKI_DIR or build/pki) with compose.yaml's defaults."""
    state_file = path(lab)
    try:
        data = read_json(state_file)
        if data is None:
            return LabState(files=project.pki_dir())
        return LabState(files=Path(data["files"]), spec_file=data.get("spec_file"), env=dict(data["env"]),
                        identity=data.get("identity", ""))
    except (StateError, KeyError, TypeError, ValueError):
        raise LabError(f"{state_file} is damaged: delete it, then `safeq-lab up` starts the lab again and "
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
