"""A spec's files, staged as the lab's containers mount them: ``hosts/<host>/`` per machine.

The user's files are only read: copies go into a folder the lab owns (build/spec-lab), which
the containers mount read-only, as they mount the lab's own PKI. What a machine would make
itself from the hand-over is made here, the way it would make it:

- primary: the keystore, the cacerts files and the Trusted CA files, under their own names
  (the doc's steps copy and import them inside the container);
- gateway: the keystore; the truststore, or one built from ``truststore_certs`` as
  ``keytool -importcert -storetype PKCS12`` builds it; the unattended installation file;
- client: the Windows certificate store stand-in (My / CA / Root) filled from the PFX as the
  certificate import wizard fills it, or a copy of the spec's store folder;
- ocsp-host: a responder for no CA (a corporate PKI hands out no OCSP signer keys).
"""
from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
from pathlib import Path

from cryptography.hazmat.primitives.serialization import pkcs12

from certkit.certs import key_pem, load_cert_file, pem
from certkit.chain import order_chain
from certkit.fsio import FILE_MODE, SECRET_FILE_MODE, write_new
from pki.export import java_truststore, mode_for, unattended_install_conf
from pki.ocsp import OCSP_HOST, RESPONDER_CONFIG, STATUS_FILE

from .labstate import STAGED_SPEC, host_env
from .spec import Account, Client, Gateway, Primary, Spec, SpecError, load, to_toml

MARKER = ".safeq-lab-staged"  # a folder without it is not the lab's to replace
STAGED_TRUSTSTORE = "truststore.pfx"


def copy(src: Path, dest: Path) -> str:
    """``src`` into ``dest`` under its own name: the file's name inside the container. Two different
    files of the same name cannot both be there."""
    target = dest / src.name
    data = src.read_bytes()
    if target.exists():
        if target.read_bytes() != data:
            raise SpecError(f"two different files are named {src.name} ({src} and another): rename one of them")
        return src.name
    write_new(target, data, mode_for(target))
    return src.name


def stage_primary(spec: Spec, hdir: Path) -> tuple[Primary, Account]:
    primary = dataclasses.replace(
        spec.primary, keystore=hdir / copy(spec.primary.keystore, hdir),
        cacerts=tuple(hdir / copy(f, hdir) for f in spec.primary.cacerts))
    account = dataclasses.replace(spec.account,
                                  trusted_cas=tuple(hdir / copy(f, hdir) for f in spec.account.trusted_cas))
    return primary, account


def stage_gateway(gateway: Gateway, primary_host: str, hdir: Path) -> Gateway:
    keystore = copy(gateway.keystore, hdir)
    if gateway.truststore is not None:
        truststore, password = copy(gateway.truststore, hdir), gateway.truststore_password
    else:
        truststore, password = STAGED_TRUSTSTORE, secrets.token_urlsafe(16)
        # What `keytool -importcert -alias <file name> -storetype PKCS12` makes of each file.
        entries = [(load_cert_file(f), f.stem.lower()) for f in gateway.truststore_certs]
        write_new(hdir / truststore, java_truststore(entries, password, legacy=False), SECRET_FILE_MODE)
    conf = unattended_install_conf(keystore, gateway.keystore_password, truststore, password, primary_host)
    write_new(hdir / "unattended-install.conf", conf, SECRET_FILE_MODE)
    return dataclasses.replace(gateway, keystore=hdir / keystore, truststore=hdir / truststore,
                               truststore_password=password, truststore_certs=())


def fill_store(client: Client, store: Path) -> None:
    """The PFX imported as the wizard does: key and certificate under My, issuers under CA, roots under Root."""
    try:
        found = pkcs12.load_pkcs12(client.keystore.read_bytes(), client.keystore_password.encode())
    except ValueError:
        raise SpecError(f"{client.keystore}: the password does not open it, so the client's certificate store "
                        "cannot be filled: fix keystore_password in the [[client]] table") from None
    if found.key is None or found.cert is None:
        raise SpecError(f"{client.keystore}: no private key with its certificate: export the client's PFX "
                        "with its key")
    leaf = found.cert.certificate
    others = [c.certificate for c in found.additional_certs]
    for folder in ("My", "CA", "Root"):
        (store / folder).mkdir(mode=0o755)
    write_new(store / "My" / f"{client.host}.crt", pem([leaf]).encode(), FILE_MODE)
    write_new(store / "My" / f"{client.host}.key", key_pem(found.key), SECRET_FILE_MODE)
    ordered = order_chain(leaf, others)[1:]
    for index, cert in enumerate(ordered + [c for c in others if c not in ordered]):
        folder = "Root" if cert.issuer == cert.subject else "CA"
        write_new(store / folder / f"{index:02d}.crt", pem([cert]).encode(), FILE_MODE)


def stage_client(client: Client, hdir: Path) -> Client:
    store = hdir / "store"
    if client.store is not None:
        shutil.copytree(client.store, store)
    else:
        store.mkdir(mode=0o755)
        fill_store(client, store)
    for key in store.rglob("*.key"):
        os.chmod(key, SECRET_FILE_MODE)
    return dataclasses.replace(client, keystore=None, keystore_password=None, store=store)


def stage_ocsp(hdir: Path) -> None:
    write_new(hdir / RESPONDER_CONFIG, json.dumps({"issuers": [], "status_file": STATUS_FILE}).encode(), FILE_MODE)
    write_new(hdir / STATUS_FILE, b"{}\n", FILE_MODE)


def _fresh(dest: Path) -> Path:
    if dest.exists() and not (dest / MARKER).exists():
        raise SpecError(f"{dest} exists and was not staged by the lab: nothing was changed; move it away")
    work = dest.with_name(f".{dest.name}.new")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(mode=0o700, parents=True)
    (work / MARKER).touch()
    return work


def stage(spec: Spec, dest: Path) -> Spec:
    """Stage ``spec``'s files in ``dest`` (replaced as a whole); the staged spec, as dest/spec.toml says it."""
    host_env(spec)  # one gateway and one client
    if OCSP_HOST in (spec.primary.host, spec.gateways[0].host, spec.clients[0].host):
        raise SpecError(f"{spec.source}: {OCSP_HOST} is the lab's OCSP responder: give the machine another host name")
    work = _fresh(dest)
    hosts = work / "hosts"
    dirs = {name: hosts / name for name in (spec.primary.host, spec.gateways[0].host, spec.clients[0].host, OCSP_HOST)}
    for folder in dirs.values():
        folder.mkdir(mode=0o755, parents=True)
    try:
        primary, account = stage_primary(spec, dirs[spec.primary.host])
        gateway = stage_gateway(spec.gateways[0], spec.primary.host, dirs[spec.gateways[0].host])
        client = stage_client(spec.clients[0], dirs[spec.clients[0].host])
        stage_ocsp(dirs[OCSP_HOST])
        staged = Spec(f"{spec.source} (staged)", work, primary, account, (gateway,), (client,))
        write_new(work / STAGED_SPEC, to_toml(staged, relative_to=work).encode(), SECRET_FILE_MODE)
    except OSError as exc:
        shutil.rmtree(work)
        raise SpecError(f"cannot copy the spec's files into {work}: {exc.strerror} ({exc.filename})") from None
    except SpecError:
        shutil.rmtree(work)
        raise
    _swap(work, dest)
    return load(dest / STAGED_SPEC)


def _swap(work: Path, dest: Path) -> None:
    old = dest.with_name(f".{dest.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if dest.exists():
        os.replace(dest, old)
    os.replace(work, dest)
    if old.exists():
        shutil.rmtree(old)
