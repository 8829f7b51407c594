"""The running primary against nginx (Debian's, bench/nginx) serving the same certificates with client
certificates required: full mutual-TLS handshakes from a client in the primary's network namespace (no
Docker port proxy in the path), handshakes/s and server CPU ms per handshake from each server
container's cgroup. Reports, does not assert. Needs the default lab up (`safeq-lab up`).

ECDSA on the default lab's PKI (P-256), then RSA on a lab of its own (`--lab bench-rsa`, its PKI made with
`pki init --key-type rsa-2048`), removed afterwards. nginx runs one worker, one server core, as the
primary's Python process uses about one.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.serialization import pkcs12

from certkit.certs import key_pem, load_cert_file, pem
from lab import engine, labstate
from bench_idle import cpu_ns
from report import publish

ROOT = Path(__file__).resolve().parents[1]
NGINX = "safeq-lab/bench-nginx:latest"
NGINX_ANCHORS = "nginx, the primary's CA list"  # bench/nginx/nginx.conf's second server
PUBLIC_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # what the primary trusts besides the Trusted CAs
CLIENT = "safeq-lab/base:latest"
COUNT = int(os.environ.get("BENCH_HANDSHAKES", "300"))
SERVERS = {"primary": 2560, "nginx": 8443, NGINX_ANCHORS: 8444}
VERSIONS = ("TLSv1.3", "TLSv1.2")


def write(folder: Path, name: str, data: bytes) -> None:
    path = folder / name
    path.write_bytes(data)
    path.chmod(0o600)


def certificates(folder: Path, public_bundle: bytes) -> None:
    """The primary's key and chain for nginx, a gateway's for the client, the lab's CAs for both,
    and every anchor the primary trusts (with ``public_bundle``) for nginx's second server."""
    spec = labstate.current().spec()
    for name, store, password in (("server", spec.primary.keystore, spec.primary.keystore_password),
                                  ("client", spec.gateways[0].keystore, spec.gateways[0].keystore_password)):
        found = pkcs12.load_pkcs12(store.read_bytes(), password.encode())
        chain = [found.cert.certificate, *(c.certificate for c in found.additional_certs)]
        write(folder, f"{name}.key", key_pem(found.key))
        write(folder, f"{name}.pem", pem(chain).encode())
    write(folder, "chain.pem", (folder / "server.pem").read_bytes())
    write(folder, "key.pem", (folder / "server.key").read_bytes())
    write(folder, "cas.pem", pem([load_cert_file(p) for p in spec.account.trusted_cas]).encode())
    write(folder, "anchors.pem", (folder / "cas.pem").read_bytes() + public_bundle)


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def handshakes(netns: str, folder: Path, port: int, version: str, count: int) -> dict:
    proc = docker("run", "--rm", "--network", f"container:{netns}", "-v", f"{folder}:/certs:ro",
                  "-v", f"{ROOT / 'bench' / 'inner'}:/bench:ro", "--entrypoint", "python3", CLIENT,
                  "/bench/tls_clients.py", str(port), version, str(count), timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"the client failed: {proc.stderr[-1000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(netns: str, boxes: dict[str, str], folder: Path) -> list[dict]:
    rows = []
    with engine.session(60, "docker stats") as api:
        for version in VERSIONS:
            for server, port in SERVERS.items():
                handshakes(netns, folder, port, version, 20)  # warm: JIT, caches, first connections
                before = cpu_ns(api, boxes[server])
                run = handshakes(netns, folder, port, version, COUNT)
                used = cpu_ns(api, boxes[server]) - before
                rows.append({"server": server, "version": version, "count": run["count"], "failed": run["failed"],
                             "per_s": run["count"] / run["seconds"], "cpu_ms": used / 1e6 / run["count"],
                             "errors": run["failures"]})
    return rows


RSA_LAB, RSA_KEYS = "bench-rsa", "rsa-2048"


def lab(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab.cli", "--lab", RSA_LAB, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def rsa_rows() -> list[dict]:
    """The same against a lab whose PKI has RSA keys throughout; the lab is removed afterwards."""
    try:
        for step in (("pki", "init", "--key-type", RSA_KEYS, "--force"), ("up", "--no-build")):
            proc = lab(*step)
            if proc.returncode != 0:
                raise SystemExit(f"`--lab {RSA_LAB} {' '.join(step)}` failed: {proc.stderr[-1000:]}")
        os.environ[labstate.NAME_VAR] = RSA_LAB  # the lab this process now asks about
        try:
            return [dict(r, keys="RSA 2048") for r in lab_rows()]
        finally:
            del os.environ[labstate.NAME_VAR]
    finally:
        lab("clean", "--pki")


def main() -> int:
    built = docker("build", "-q", "-t", NGINX, str(ROOT / "bench" / "nginx"), timeout=900)  # cached when unchanged
    if built.returncode != 0:
        raise SystemExit(f"cannot build {NGINX}: {built.stderr[-1000:]}")
    rows = [dict(r, keys="ECDSA P-256") for r in lab_rows()] + rsa_rows()
    report(rows)
    return 0 if not any(r["failed"] for r in rows) else 1


def lab_rows() -> list[dict]:
    """The running lab's primary and nginx with its certificates, in the primary's network namespace."""
    primary = engine.running("primary")
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:  # 0700: keys stay owner-only
        folder = Path(tmp)
        bundle = docker("exec", primary.id, "cat", PUBLIC_BUNDLE)
        if bundle.returncode != 0:
            raise SystemExit(f"cannot read the primary's {PUBLIC_BUNDLE}: {bundle.stderr[-500:]}")
        certificates(folder, bundle.stdout.encode())
        started = docker("run", "-d", "--rm", "--network", f"container:{primary.id}", "-v", f"{folder}:/certs:ro", NGINX)
        if started.returncode != 0:
            raise SystemExit(f"nginx did not start: {started.stderr[-1000:]}")
        nginx = started.stdout.strip()
        try:
            time.sleep(1.0)
            rows = measure(primary.id, {"primary": primary.id, "nginx": nginx, NGINX_ANCHORS: nginx}, folder)
        finally:
            docker("rm", "-f", nginx)
    return rows


def report(rows: list[dict]) -> None:
    by = {(r["keys"], r["server"], r["version"]): r for r in rows}
    lines = [
        "# The primary's handshakes against nginx's",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} cores. `bench/bench_tls.py`: {COUNT} full mutual-TLS handshakes in a row per line "
        "(no session reuse, a gateway's certificate), from a client container in the primary's "
        "network namespace, against the running primary (trusted-ca policy: the JRE judges a chain it has not "
        "accepted before; one it accepted is not asked again while its path is valid, so here the JRE judges "
        "the gateway's chain once) and nginx (one worker) with the same certificates and client certificates "
        "required, twice: naming the lab's CAs in its CertificateRequest, and naming every anchor the primary "
        "trusts (the lab's CAs and the public bundle, about 150 names), as the primary does. Server CPU from "
        "each container's cgroup. ECDSA: the default lab's PKI; RSA: a lab of its own whose PKI has RSA 2048 "
        "keys throughout. Reported, not asserted.",
        "",
        "| keys | server | TLS | handshakes/s | server CPU ms per handshake | failed |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| {r['keys']} | {r['server']} | {r['version']} | {r['per_s']:.0f} | {r['cpu_ms']:.2f} | "
                     f"{r['failed']} |")
    lines += ["", "The primary per server core, as a share of nginx's (target >= 0.85):", "",
              "| keys | TLS | against nginx | against nginx naming the primary's CA list |",
              "| --- | --- | ---: | ---: |"]
    for keys in dict.fromkeys(r["keys"] for r in rows):
        for version in VERSIONS:
            primary = by[(keys, "primary", version)]["cpu_ms"]
            ratios = [by[(keys, server, version)]["cpu_ms"] / primary for server in ("nginx", NGINX_ANCHORS)]
            lines.append(f"| {keys} | {version} | {ratios[0]:.2f} | {ratios[1]:.2f} |")
    publish("tls", "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
