"""`drill rotate-intermediate`: the issuing CA renewed under the same root, observed on the primary.

1. Before: every gateway and client accepted and connected (trusted CA policy).
2. A new intermediate CA under the root (`pki ca add`), the OCSP responder restarted to answer for it,
   the CA imported under Trusted CA certificates. The truststores stay as they are: they hold the root,
   which issued both intermediates, and Java needs nothing more to trust the primary.
3. The endpoints move in waves: each gets a certificate from the new intermediate (`pki reissue`) and a
   restart, as its admin would install a new keystore; after each wave all are connected again and each
   moved one presents the new chain.
4. The old intermediate leaves Trusted CA certificates (and is retired in the PKI): all stay connected.

`--too-early` removes the old intermediate right after the first wave: the endpoints not moved yet drop
("PKIX path building failed") unless the root itself is a Trusted CA certificate, in which case every
chain under it still verifies and no one drops. `--issuing-only` takes the root off the Trusted CA list
for the drill (an account that authorizes endpoints by issuing CA) and puts it back after.
The primary's own certificate is left alone: the endpoints judge it by their truststores (the root).
"""
from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click

import pki
from certkit.certs import fingerprint, load_cert_file
from pki.cli import reports_errors
from safeqlab.records import current_record

from . import admin, drills, engine, project, spec, steps, swarmlab, topology, up
from .deadline import Deadline
from .errors import LabError
from .views import Phases

PKIX = "PKIX path building failed"
NOT_TRUSTED = "not-trusted"


def next_name(old: str, taken: list[str]) -> str:
    """The new intermediate's default name: the old one's, numbered (Acme-CA-Intermediate-2, -3, ...)."""
    stem, _, tail = old.rpartition("-")
    base = stem if tail.isdigit() and stem else old
    lowered = {t.lower() for t in taken}
    return next(f"{base}-{n}" for n in range(2, len(taken) + 3) if f"{base}-{n}".lower() not in lowered)


def waves(hosts: list[str], count: int) -> list[list[str]]:
    """``hosts`` in ``count`` waves as even as can be, in their order."""
    if not 1 <= count <= len(hosts):
        raise LabError(f"--waves {count}: give 1 to {len(hosts)} (one wave per endpoint at most)")
    size, extra = divmod(len(hosts), count)
    out, start = [], 0
    for i in range(count):
        end = start + size + (i < extra)
        out.append(hosts[start:end])
        start = end
    return out


def expected_drops(not_moved: list[str], root_trusted: bool) -> dict[str, tuple[str, str]]:
    """Who drops when the old intermediate leaves Trusted CA certificates before they moved: nobody
    while the root is trusted (their chains still verify to it), else each with the JRE's words."""
    return {} if root_trusted else {h: (NOT_TRUSTED, PKIX) for h in not_moved}


def dropped(records: list[dict], refused: list[dict], since: str) -> list[str]:
    """Sessions the primary refused or ended for a reason of trust since ``since`` (ISO 8601): endpoint
    records not accepted, and connections refused before they showed an identity. A planned restart
    leaves its record accepted, so it does not count."""
    start = dt.datetime.fromisoformat(since)
    def after(stamp: str | None) -> bool:
        return bool(stamp) and dt.datetime.fromisoformat(stamp) >= start
    out = [f"{r.get('name')}: {r.get('decision')}: {r.get('reason')}" for r in records
           if r.get("decision") != "accepted" and after(r.get("last_seen"))]
    out += [f"{r.get('address')}: refused: {r.get('reason')}" for r in refused if after(r.get("time"))]
    return out


def not_moved_yet(records: list[dict], moved: list[str], new_ca: str) -> list[str]:
    """Moved hosts whose current record does not present a certificate from ``new_ca``."""
    wrong = []
    for host in moved:
        issuer = (current_record(records, host) or {}).get("issuer")
        if f"CN={new_ca}" not in (issuer or ""):
            wrong.append(f"{host}: expected a certificate issued by {new_ca}, the primary sees {issuer}")
    return wrong


def _cer(name: str) -> Path:
    return project.pki_dir() / "cas" / f"{name}.cer"


def _sha(name: str) -> str:
    return fingerprint(load_cert_file(_cer(name)))


def _ca_file(name: str) -> dict:
    return {"name": _cer(name).name, "data_base64": base64.b64encode(_cer(name).read_bytes()).decode("ascii")}


def _trusted(name: str) -> bool:
    return any(ca.get("sha256") == _sha(name) for ca in admin.lab_call("GET", "/api/v1/trusted-cas"))


def _import(*names: str) -> None:
    admin.lab_call("POST", "/api/v1/trusted-cas", {"files": [_ca_file(name) for name in names]})


def _remove(name: str) -> None:
    admin.lab_call("DELETE", f"/api/v1/trusted-cas/{_sha(name)}")


@dataclass
class Report(drills.Report):
    dropped: list[str] = field(default_factory=list)  # sessions the primary refused or ended (target: none)

    def lines(self) -> list[str]:
        out = drills.lines(self)
        return out[:-1] + [f"  sessions dropped: {len(self.dropped)}"] + [f"    {d}" for d in self.dropped] + out[-1:]


class Drill:
    """One run: the lab's endpoints, its PKI, the report; ``new`` is the CA the endpoints move to."""

    def __init__(self, kind: str):
        swarmlab.require_compose(f"drill {kind}")
        self.by_host = drills.endpoints(topology.load())
        self.hosts = sorted(self.by_host)
        self.dir = project.pki_dir()
        if not pki.exists(self.dir):
            raise LabError(f"the drill rotates the lab's own CA, and there is no PKI in {self.dir}: "
                           "run it on a lab started without --spec")
        manifest = pki.load_manifest(self.dir)
        self.old, self.root = manifest["issuing"], manifest["issuing_chain"][0]
        self.names = [ca["name"] for ca in manifest["cas"]]
        self.primary = next(e["name"] for e in manifest["entities"] if e["role"] == "primary")
        self.new = ""
        self.report = Report(kind)
        self.since = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self.plan: list[list[str]] = []

    def start(self, wave_count: int) -> bool:
        """The waves, the trusted CA policy, every endpoint connected: False (reported) if not."""
        self.plan = waves(drills.pick({h: role for h, (_, role) in self.by_host.items()}, len(self.hosts)), wave_count)
        if admin.lab_call("GET", "/api/v1/account").get("certificate_policy") != "trusted-ca":
            raise LabError("the drill needs the trusted CA policy: `safeq-lab account set-policy trusted-ca`")
        self.wait("before: every endpoint accepted and connected")
        return self.report.ok

    def wait(self, what: str, drops: dict | None = None, moved: list[str] = (), extra=lambda: []) -> None:
        """drills.wait_for, and each moved endpoint on the new chain and ``extra()`` nothing wrong."""
        drills.wait_for(self.report, what, self.hosts, drops or {}, interval=0.5,
                        also=lambda records: not_moved_yet(records, list(moved), self.new) + extra())

    def add(self, name: str, **where) -> None:
        """A new CA in the PKI, the responder restarted to answer for it (it reads its issuers at start)."""
        pki.add_ca(self.dir, name, **where)
        engine.exec_sh("ocsp", "systemctl restart safeq-ocsp")

    def move(self, wave: list[str], moved: list[str], n: int) -> None:
        for host in wave:
            pki.reissue(self.dir, host)
            drills.restart_endpoint(self.by_host, host)
        moved += wave
        self.wait(f"wave {n}: {', '.join(wave)} reissued under {self.new} and restarted", moved=moved)

    def remove_old(self, moved: list[str]) -> dict:
        if _trusted(self.old):  # an account may never have imported it: nothing to remove then
            _remove(self.old)
        pki.retire(self.dir, self.old)
        root_trusted = _trusted(self.root)
        return expected_drops([h for h in self.hosts if h not in moved], root_trusted)

    def finish(self, drops_expected: bool) -> Report:
        report = self.report
        report.dropped = dropped(admin.lab_call("GET", "/api/v1/endpoints"), admin.lab_call("GET", "/api/v1/refused"),
                                 self.since)
        report.ok = report.ok and (drops_expected or not report.dropped)  # a planned rotation drops no session
        return report


def rotate_intermediate(new_ca: str | None, wave_count: int, too_early: bool, issuing_only: bool) -> Report:
    run = Drill("rotate-intermediate")
    if run.old == run.root:
        raise LabError(f"the root {run.root} issues the entities itself (a PKI made with --intermediates 0): there "
                       "is no intermediate to rotate; `safeq-lab drill rotate-root` renews the root")
    run.new = new_ca or next_name(run.old, run.names)
    run.report.acted_on = [f"{run.old} -> {run.new}"]
    if not run.start(wave_count):
        return run.report
    took_root = issuing_only and _trusted(run.root)
    try:
        if took_root:
            _remove(run.root)
            run.wait(f"the root {run.root} taken off Trusted CA certificates: the issuing CA decides")
        run.add(run.new)
        pki.set_issuing(run.dir, run.new)
        _import(run.new)
        run.wait(f"{run.new} issued under the root and imported under Trusted CA certificates")
        moved: list[str] = []
        for n, wave in enumerate(run.plan, 1):
            run.move(wave, moved, n)
            if too_early and n == 1:
                drops = run.remove_old(moved)
                why = "" if drops else f" (the root {run.root} is a Trusted CA certificate: chains under it still verify)"
                run.wait(f"{run.old} removed too early: {len(drops)} endpoint(s) not moved yet drop{why}", drops, moved)
        if not too_early:
            run.remove_old(moved)
            run.wait(f"{run.old} removed from Trusted CA certificates: all stay connected", moved=moved)
    finally:
        if took_root:
            _import(run.root)
    return run.finish(too_early)


def cacerts_alias(listing: str, sha256: str) -> str | None:
    """The alias `keytool -list` shows for the entry with fingerprint ``sha256`` (keytool's format)."""
    alias = None
    for line in listing.splitlines():
        if "trustedCertEntry" in line or "PrivateKeyEntry" in line:
            alias = line.split(",")[0].strip()
        elif line.strip().endswith(sha256) and "fingerprint" in line.lower():
            return alias
    return None


def _serving(new_ca: str) -> list[str]:
    """What is wrong with the certificate the primary serves, if it is not from ``new_ca`` or unchecked."""
    server = admin.lab_call("GET", "/api/v1/server")
    issuer, check = (server.get("serving") or {}).get("issuer") or "", server.get("self_check") or {}
    if server.get("state") == "serving" and f"CN={new_ca}" in issuer and check.get("ok"):
        return []
    return [f"primary: expected to serve a certificate from {new_ca} that passes its self-check, it is "
            f"{server.get('state')} with one from {issuer or '-'} ({check.get('reason') or 'self-check ok'})"]


def _primary_steps(run: Drill, title: str, only_cacerts: bool = False) -> None:
    """The doc's primary steps on the PKI's files as they are now, typed in the primary's console."""
    host_dir = up.primary_host_dir(run.dir, topology.load())
    lab_spec = spec.lab_spec(run.dir)
    todo = (steps.cacerts_steps(lab_spec.primary.cacerts, host_dir) if only_cacerts
            else steps.primary_steps(lab_spec, host_dir))
    deadline = Deadline(drills.WAIT, what=title)
    up.apply_primary_steps(todo, deadline, Phases(), title)
    if not only_cacerts:
        up.wait_for_admin_api(deadline)


def _drop_from_cacerts(root: str) -> None:
    """The doc's keytool, the other way: the old root's entry deleted from the JRE's cacerts."""
    store = f"-keystore {steps.q(steps.CACERTS)} -storepass changeit"
    alias = cacerts_alias(engine.exec_sh("primary", f"{steps.q(steps.KEYTOOL)} -list {store}").stdout, _sha(root))
    if alias is not None:
        engine.exec_sh("primary", f"{steps.q(steps.KEYTOOL)} -delete -alias {steps.q(alias)} {store}")


def rotate_root(new_root: str | None, new_ca: str | None, wave_count: int) -> Report:
    run = Drill("rotate-root")
    old_root, old_ca = run.root, run.old
    new_root = new_root or next_name(old_root, run.names)
    run.new = new_ca or next_name(old_ca, [*run.names, new_root])
    run.report.acted_on = [f"{old_root} -> {new_root}", f"{old_ca} -> {run.new}"]
    if not run.start(wave_count):
        return run.report
    run.add(new_root, root=True)
    run.add(run.new, under=new_root)
    pki.set_issuing(run.dir, run.new)
    _import(new_root, run.new)
    _primary_steps(run, f"cacerts: the doc's keytool import of {new_root}", only_cacerts=True)
    run.wait(f"cross-trust: {new_root} and {run.new} trusted beside {old_root} (Trusted CA certificates, "
             "cacerts, truststores and client stores)")
    moved: list[str] = []
    for n, wave in enumerate(run.plan, 1):
        run.move(wave, moved, n)
    pki.reissue(run.dir, run.primary)
    _primary_steps(run, f"the primary's keystore from {run.new}: the doc's steps again")
    run.wait(f"the primary reissued under {run.new} and restarted (the doc's steps): every endpoint back",
             moved=moved, extra=lambda: _serving(run.new))
    for name in (old_ca, old_root):
        if _trusted(name):
            _remove(name)
        pki.retire(run.dir, name)
    _drop_from_cacerts(old_root)
    for host in run.hosts:  # their truststores and stores now hold the new root only
        drills.restart_endpoint(run.by_host, host)
    run.wait(f"{old_root} retired: out of Trusted CA certificates, cacerts, truststores and stores; "
             "each endpoint restarted", moved=moved, extra=lambda: _serving(run.new))
    return run.finish(False)


@drills.drill.command("rotate-intermediate")
@click.option("--name", "new_ca", help="The new intermediate CA (default: the old one's name, numbered: ...-2).")
@click.option("--waves", "wave_count", type=click.IntRange(min=1), default=2, show_default=True,
              help="In how many waves the endpoints move to it.")
@click.option("--too-early", is_flag=True, help="Remove the old intermediate after the first wave: who drops, and why.")
@click.option("--issuing-only", is_flag=True,
              help="Take the root off Trusted CA certificates for the drill (endpoints authorized by issuing CA).")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
def rotate_intermediate_cmd(new_ca: str, wave_count: int, too_early: bool, issuing_only: bool, as_json: bool) -> None:
    """A new intermediate CA, the endpoints moved to it in waves, the old one removed; exit 0 only as expected."""
    report = reports_errors(rotate_intermediate, LabError)(new_ca, wave_count, too_early, issuing_only)
    click.echo(json.dumps(asdict(report), indent=2) if as_json else "\n".join(report.lines()))
    raise SystemExit(0 if report.ok else 1)


@drills.drill.command("rotate-root")
@click.option("--name", "new_root", help="The new root CA (default: the old one's name, numbered: ...-2).")
@click.option("--issuing", "new_ca", help="The new intermediate under it (default: the old one's name, numbered).")
@click.option("--waves", "wave_count", type=click.IntRange(min=1), default=2, show_default=True,
              help="In how many waves the endpoints move to it.")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
def rotate_root_cmd(new_root: str | None, new_ca: str | None, wave_count: int, as_json: bool) -> None:
    """A new root and intermediate trusted beside the old ones, the endpoints then the primary moved, the
    old root removed everywhere; exit 0 only as expected."""
    report = reports_errors(rotate_root, LabError)(new_root, new_ca, wave_count)
    click.echo(json.dumps(asdict(report), indent=2) if as_json else "\n".join(report.lines()))
    raise SystemExit(0 if report.ok else 1)
