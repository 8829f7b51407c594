"""A lab spec: which files the primary, the gateways and the clients use, and the account settings.

TOML (stdlib ``tomllib``), paths relative to the spec file's folder; ``safeq-lab spec template``
prints a commented example (spec_template.toml). Parsed into frozen dataclasses; anything wrong
(an unknown or missing key, a wrong type, a missing file, a folder where a file belongs, an empty
password) is one SpecError naming the spec file, the table and the key.

The lab's own generated PKI is one spec among others: :func:`lab_spec` describes the files the
lab's containers mount (``hosts/<name>/``), read through the same validation.
"""
from __future__ import annotations

import difflib
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pki
from pki.export import CONTAINER_PKI_DIR

from .errors import LabError

POLICIES = ("trusted-ca", "built-in")
TEMPLATE = Path(__file__).with_name("spec_template.toml")


class SpecError(LabError):
    """A spec that cannot be used; the message names the file, the table and the key."""


@dataclass(frozen=True)
class Primary:
    host: str
    keystore: Path
    keystore_password: str
    cacerts: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Account:
    policy: str = "trusted-ca"
    trusted_cas: tuple[Path, ...] = ()
    ocsp: bool | None = None  # None: the account's OCSP setting stays as it is
    ocsp_url: str | None = None


@dataclass(frozen=True)
class Gateway:
    host: str
    keystore: Path
    keystore_password: str
    truststore: Path | None = None
    truststore_password: str | None = None
    truststore_certs: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Client:
    host: str
    subject: str
    keystore: Path | None = None
    keystore_password: str | None = None
    store: Path | None = None  # a folder in the store stand-in's layout: My/, CA/, Root/


@dataclass(frozen=True)
class Spec:
    source: str  # the spec file, or what the spec was made from
    base: Path   # the folder relative paths start from
    primary: Primary
    account: Account
    gateways: tuple[Gateway, ...] = ()
    clients: tuple[Client, ...] = ()


# key -> (kind, required). Kinds: see _Reader.value.
PRIMARY_KEYS = {"host": ("host", True), "keystore": ("file", True), "keystore_password": ("password", True),
                "cacerts": ("files", False)}
ACCOUNT_KEYS = {"policy": ("policy", True), "trusted_cas": ("files", False), "ocsp": ("bool", False),
                "ocsp_url": ("url", False)}
GATEWAY_KEYS = {"host": ("host", True), "keystore": ("file", True), "keystore_password": ("password", True),
                "truststore": ("file", False), "truststore_password": ("password", False),
                "truststore_certs": ("files", False)}
CLIENT_KEYS = {"host": ("host", True), "subject": ("text", True), "keystore": ("file", False),
               "keystore_password": ("password", False), "store": ("folder", False)}
TOP_KEYS = ("primary", "account", "gateway", "client")


class _Reader:
    """Checks one spec's values; every problem names the spec file, the table and the key."""

    def __init__(self, source: str, base: Path):
        self.source, self.base = source, base

    def fail(self, where: str, problem: str) -> SpecError:
        return SpecError(f"{self.source}: {where}: {problem}")

    def known(self, where: str, table: dict, keys) -> None:
        for key in table:
            if key not in keys:
                close = difflib.get_close_matches(key, list(keys), n=1)
                hint = f"did you mean {close[0]}?" if close else f"the keys here are {', '.join(keys)}"
                raise self.fail(where, f"unknown key {key!r} ({hint})")

    def table(self, where: str, table: Any, schema: dict) -> dict:
        if not isinstance(table, dict):
            raise self.fail(where, f"must be a table, not {_kind(table)}")
        self.known(where, table, schema)
        out = {}
        for key, (kind, required) in schema.items():
            if key in table:
                out[key] = self.value(f"{where} {key}", kind, table[key])
            elif required:
                raise self.fail(where, f"missing key {key!r}: add it (see `safeq-lab spec template`)")
        return out

    def value(self, where: str, kind: str, value: Any) -> Any:
        if kind == "bool":
            if not isinstance(value, bool):
                raise self.fail(where, f"must be true or false, not {_kind(value)}")
            return value
        if kind == "files":
            if not isinstance(value, list):
                raise self.fail(where, f"must be a list of file names, not {_kind(value)}")
            return tuple(self.value(f"{where}[{i}]", "file", item) for i, item in enumerate(value))
        if not isinstance(value, str):
            raise self.fail(where, f"must be a string (in quotes), not {_kind(value)}")
        return _CHECKS[kind](self, where, value)

    def path(self, where: str, value: str, folder: bool) -> Path:
        if not value.strip():
            raise self.fail(where, "is empty: give a path (relative to the spec file's folder)")
        path = (self.base / value).resolve()
        want = "a folder" if folder else "a file"
        if not path.exists():
            raise self.fail(where, f"{path} does not exist: fix the path (relative to {self.base})")
        if folder != path.is_dir() or not (folder or path.is_file()):
            raise self.fail(where, f"{path} is not {want}: name {want} here")
        if not os.access(path, os.R_OK | (os.X_OK if folder else 0)):
            raise self.fail(where, f"{path} cannot be read (permission denied): make it readable for this user")
        return path


def _kind(value: Any) -> str:
    return {bool: "true/false", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def _host(reader: _Reader, where: str, value: str) -> str:
    if not value or value != value.strip() or any(c.isspace() for c in value):
        raise reader.fail(where, f"{value!r} is not a host name: give the name without spaces")
    return value


def _password(reader: _Reader, where: str, value: str) -> str:
    if not value:
        raise reader.fail(where, "is empty: Java needs the store's password to open it; give the PFX's password")
    return value


def _policy(reader: _Reader, where: str, value: str) -> str:
    if value not in POLICIES:
        raise reader.fail(where, f"{value!r} is not a policy: use {' or '.join(repr(p) for p in POLICIES)}")
    return value


def _url(reader: _Reader, where: str, value: str) -> str:
    if not value.lower().startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
        raise reader.fail(where, f"{value!r} is not an http:// or https:// URL")
    return value


_CHECKS: dict[str, Callable[[_Reader, str, str], Any]] = {
    "host": _host, "text": lambda r, w, v: v, "password": _password, "policy": _policy, "url": _url,
    "file": lambda r, w, v: r.path(w, v, folder=False), "folder": lambda r, w, v: r.path(w, v, folder=True),
}


def _either(reader: _Reader, where: str, values: dict, one: str, other: str, companion: str | None) -> None:
    """Exactly one of ``one`` / ``other``; ``one`` needs ``companion`` too."""
    if one in values and other in values:
        raise reader.fail(where, f"give {one} or {other}, not both")
    if one not in values and other not in values:
        raise reader.fail(where, f"missing key {one!r} (or {other!r})")
    if companion and one in values and companion not in values:
        raise reader.fail(where, f"missing key {companion!r}: {one} needs its password")


def _array(reader: _Reader, data: dict, name: str, schema: dict) -> list[tuple[str, dict]]:
    tables = data.get(name, [])
    if not isinstance(tables, list):
        raise reader.fail(f"[{name}]", f"must be an array of tables: write [[{name}]], one per {name}")
    out = []
    for i, table in enumerate(tables, 1):
        label = table.get("host") if isinstance(table, dict) and isinstance(table.get("host"), str) else None
        where = f"[[{name}]] #{i}" + (f" ({label})" if label else "")
        out.append((where, reader.table(where, table, schema)))
    return out


def from_dict(data: dict, base: Path, source: str) -> Spec:
    """A Spec from parsed TOML; relative paths start at ``base``."""
    reader = _Reader(source, Path(base).resolve())
    reader.known("the top level", data, TOP_KEYS)
    for name in ("primary", "account"):
        if name not in data:
            raise reader.fail("the top level", f"missing table [{name}] (see `safeq-lab spec template`)")
    primary = Primary(**reader.table("[primary]", data["primary"], PRIMARY_KEYS))
    account = Account(**reader.table("[account]", data["account"], ACCOUNT_KEYS))
    gateways = []
    for where, values in _array(reader, data, "gateway", GATEWAY_KEYS):
        _either(reader, where, values, "truststore", "truststore_certs", "truststore_password")
        gateways.append(Gateway(**values))
    clients = []
    for where, values in _array(reader, data, "client", CLIENT_KEYS):
        _either(reader, where, values, "keystore", "store", "keystore_password")
        clients.append(Client(**values))
    hosts = [primary.host, *(g.host for g in gateways), *(c.host for c in clients)]
    twice = sorted({h for h in hosts if hosts.count(h) > 1})
    if twice:
        raise reader.fail("host", f"{', '.join(twice)} named more than once: every machine needs its own host name")
    return Spec(source, reader.base, primary, account, tuple(gateways), tuple(clients))


def load(path: str | Path) -> Spec:
    """Read and check a spec file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise SpecError(f"{path} is a folder: give the spec file (see `safeq-lab spec template`)") from None
    except FileNotFoundError:
        raise SpecError(f"{path} does not exist: write one with `safeq-lab spec template > {path.name}`") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not a TOML file (it is not UTF-8 text)") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    return from_dict(data, path.resolve().parent, str(path))


def template() -> str:
    return TEMPLATE.read_text(encoding="utf-8")


# --- the lab's own spec ---------------------------------------------------------------------------

def primary_entity(manifest: dict) -> dict:
    for ent in manifest["entities"]:
        if ent["role"] == "primary":
            return ent
    raise LabError("the PKI has no entity with role primary: add one with `safeq-lab pki issue NAME --role primary`")


def _container_path(host_dir: Path, value: str) -> str:
    """A path the gateway's container sees under /pki, as the host folder mounted there."""
    prefix = CONTAINER_PKI_DIR + "/"
    return str(host_dir / value[len(prefix):]) if value.startswith(prefix) else value


def _lab_gateway(host_dir: Path) -> dict:
    """What the gateway's unattended installation file names, as the gateway itself reads it."""
    from safeqlab import gateway
    from safeqlab.endpoint import SetupError
    try:
        settings = gateway.read_settings(str(host_dir / "unattended-install.conf"))
    except SetupError as exc:
        raise SpecError(f"{exc}: recreate the PKI with `safeq-lab pki init --force`") from None
    return {"host": host_dir.name,
            "keystore": _container_path(host_dir, settings["HCP_DEFAULT_KEYSTORE"]),
            "keystore_password": settings["HCP_DEFAULT_KEYSTORE_PASSWORD"],
            "truststore": _container_path(host_dir, settings["HCP_DEFAULT_TRUSTSTORE"]),
            "truststore_password": settings["HCP_DEFAULT_TRUSTSTORE_PASSWORD"]}


def _first(manifest: dict, role: str) -> list[dict]:
    """compose.yaml's one endpoint of a role: the PKI's first (init's); the ones issued after it run as
    extra endpoints beside it (`up --gateways/--clients`, lab.scale)."""
    return [e for e in manifest["entities"] if e["role"] == role][:1]


def lab_spec(pki_dir: str | Path) -> Spec:
    """The spec of the lab's generated PKI: the files each host folder holds (what `up` mounts and
    the doc's steps use), the account as `up` sets it (trusted CA policy; OCSP as the account has it)."""
    pki_dir = Path(pki_dir).resolve()
    if not pki.exists(pki_dir):
        raise SpecError(f"no lab PKI in {pki_dir}: create it with `safeq-lab pki init` (or set SAFEQ_PKI_DIR), "
                        "or give a spec file: `safeq-lab doctor corp.toml`")
    manifest = pki.load_manifest(pki_dir)
    hosts = pki_dir / "hosts"
    ent = primary_entity(manifest)
    primary_dir = hosts / ent["name"]
    data = {
        "primary": {"host": ent["name"], "keystore": str(primary_dir / f"{ent['name']}.pfx"),
                    "keystore_password": ent["pfx_password"],
                    # cacert.crt, and each other trusted root while a new root is rolled out (pki.rotation)
                    "cacerts": [str(p) for p in [primary_dir / "cacert.crt", *sorted(primary_dir.glob("cacert-*.crt"))]]},
        # The Trusted CA import of the doc's steps (lab/steps.py): every .cer of the primary's folder. No
        # OCSP key: the account keeps what `safeq-lab account ocsp` set.
        "account": {"policy": "trusted-ca", "trusted_cas": [str(p) for p in sorted(primary_dir.glob("*.cer"))]},
        "gateway": [_lab_gateway(hosts / e["name"]) for e in _first(manifest, "gateway")],
        # The client's store stand-in; compose.yaml sets its subject to the host's name.
        "client": [{"host": e["name"], "store": str(hosts / e["name"] / "store"), "subject": e["name"]}
                   for e in _first(manifest, "client")],
    }
    return from_dict(data, pki_dir, f"the lab's PKI in {pki_dir}")


# --- writing a spec -------------------------------------------------------------------------------

def _toml_string(value: str) -> str:
    # JSON's escapes are TOML's, except DEL, which TOML wants escaped and JSON leaves as it is.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value: Any, base: Path | None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        shown = value.relative_to(base) if base is not None and value.is_relative_to(base) else value
        return _toml_string(shown.as_posix())
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v, base) for v in value) + "]"
    return _toml_string(value)


def _toml_table(header: str, obj: Any, base: Path | None) -> list[str]:
    lines = [header]
    for key, value in vars(obj).items():
        if value is not None and value != ():
            lines.append(f"{key} = {_toml_value(value, base)}")
    return lines + [""]


def to_toml(spec: Spec, relative_to: Path | None = None) -> str:
    """The spec as TOML; paths under ``relative_to`` relative to it, the others absolute."""
    lines = [f"# safeq-lab spec: {spec.source}", ""]
    lines += _toml_table("[primary]", spec.primary, relative_to)
    lines += _toml_table("[account]", spec.account, relative_to)
    for gateway in spec.gateways:
        lines += _toml_table("[[gateway]]", gateway, relative_to)
    for client in spec.clients:
        lines += _toml_table("[[client]]", client, relative_to)
    return "\n".join(lines)
