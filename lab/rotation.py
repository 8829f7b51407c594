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
import time
from dataclasses import asdict, dataclass, field

import click

import pki
from certkit.certs import fingerprint, load_cert_file
from pki.cli import reports_errors
from safeqlab.records import current_record

from . import admin, drills, engine, project, topology
from .errors import LabError

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
    return [f"{h}: expected a certificate issued by {new_ca}, the primary sees {(current_record(records, h) or {}).get('issuer')}"
            for h in moved if f"CN={new_ca}" not in ((current_record(records, h) or {}).get("issuer") or "")]


def _ca_file(name: str) -> dict:
    path = project.pki_dir() / "cas" / f"{name}.cer"
    return {"name": path.name, "data_base64": base64.b64encode(path.read_bytes()).decode("ascii")}


def _trusted(name: str) -> bool:
    sha = fingerprint(load_cert_file(project.pki_dir() / "cas" / f"{name}.cer"))
    return any(ca.get("sha256") == sha for ca in admin.lab_call("GET", "/api/v1/trusted-cas"))


def _remove(name: str) -> None:
    admin.lab_call("DELETE", f"/api/v1/trusted-cas/{fingerprint(load_cert_file(project.pki_dir() / 'cas' / f'{name}.cer'))}")


@dataclass
class Report(drills.Report):
    dropped: list[str] = field(default_factory=list)  # sessions the primary refused or ended (target: none)

    def lines(self) -> list[str]:
        out = drills.lines(self)
        return out[:-1] + [f"  sessions dropped: {len(self.dropped)}"] + [f"    {d}" for d in self.dropped] + out[-1:]


class Drill:
    """One run: the lab's endpoints, its PKI, the report."""

    def __init__(self, new_ca: str | None):
        self.by_host = drills.endpoints(topology.load())
        self.hosts = sorted(self.by_host)
        self.dir = project.pki_dir()
        if not pki.exists(self.dir):
            raise LabError(f"the drill rotates the lab's own CA, and there is no PKI in {self.dir}: "
                           "run it on a lab started without --spec")
        manifest = pki.load_manifest(self.dir)
        self.old, self.root = manifest["issuing"], manifest["cas"][0]["name"]
        self.new = new_ca or next_name(self.old, [ca["name"] for ca in manifest["cas"]])
        self.report = Report("rotate-intermediate", [f"{self.old} -> {self.new}"])
        self.since = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")

    def wait(self, what: str, drops: dict | None = None, moved: list[str] = ()) -> None:
        """Until the primary shows ``drops`` dropped, every other endpoint connected and each moved one
        on the new chain (or drills.WAIT passed); one step of the report."""
        began = time.monotonic()
        while True:
            records = admin.lab_call("GET", "/api/v1/endpoints")
            seen, wrong = drills.observe(records, self.hosts, drops or {})
            wrong += not_moved_yet(records, list(moved), self.new)
            if not wrong or time.monotonic() - began > drills.WAIT:
                self.report.step(what, seen, wrong, time.monotonic() - began)
                return
            time.sleep(0.5)

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


def rotate_intermediate(new_ca: str | None, wave_count: int, too_early: bool, issuing_only: bool) -> Report:
    run = Drill(new_ca)
    plan = waves(drills.pick({h: role for h, (_, role) in run.by_host.items()}, len(run.hosts)), wave_count)
    if admin.lab_call("GET", "/api/v1/account").get("certificate_policy") != "trusted-ca":
        raise LabError("the drill needs the trusted CA policy: `safeq-lab account set-policy trusted-ca`")
    run.wait("before: every endpoint accepted and connected")
    if not run.report.ok:
        return run.report
    took_root = issuing_only and _trusted(run.root)
    try:
        if took_root:
            _remove(run.root)
            run.wait(f"the root {run.root} taken off Trusted CA certificates: the issuing CA decides")
        pki.add_ca(run.dir, run.new)
        pki.set_issuing(run.dir, run.new)
        engine.exec_sh("ocsp", "systemctl restart safeq-ocsp")  # it reads its issuers at start
        admin.lab_call("POST", "/api/v1/trusted-cas", {"files": [_ca_file(run.new)]})
        run.wait(f"{run.new} issued under the root and imported under Trusted CA certificates")
        moved: list[str] = []
        for n, wave in enumerate(plan, 1):
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
            admin.lab_call("POST", "/api/v1/trusted-cas", {"files": [_ca_file(run.root)]})
    report = run.report
    report.dropped = dropped(admin.lab_call("GET", "/api/v1/endpoints"), admin.lab_call("GET", "/api/v1/refused"), run.since)
    report.ok = report.ok and (too_early or not report.dropped)  # the planned rotation drops no session
    return report


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
