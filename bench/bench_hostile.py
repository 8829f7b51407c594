"""800 idle unauthenticated connections against the primary: its thread count and memory while they
are held and after the first-message deadline. Reports, does not assert.

The lab runs the built-in policy (a peer without a certificate completes the TLS handshake there
and then says nothing); gateway and client are trusted first and must stay connected throughout.
The peer runs inside the OCSP container, an address of its own on the lab network.
"""
from __future__ import annotations

import datetime
import json
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

from report import publish

from lab import engine
from safeqlab.records import current_record

ROOT = Path(__file__).resolve().parents[1]
LAB = [sys.executable, "-m", "lab.cli"]
CONNECTIONS = 800

HOLD = """
import json, select, socket, ssl, sys, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
socks, t0 = [], time.monotonic()
for _ in range(int(sys.argv[1])):
    raw = socket.create_connection(("primary-host", 2560), timeout=5)
    try:
        socks.append(ctx.wrap_socket(raw))  # no client certificate; then silence
    except OSError:
        raw.close()
opened = time.monotonic() - t0
held = len(socks)
poll, open_ = select.poll(), {s.fileno(): s for s in socks}
for s in socks:
    poll.register(s, select.POLLIN)
for s in socks:
    s.setblocking(False)
while open_ and time.monotonic() - t0 < 40:
    for fd, _ in poll.poll(200):
        s = open_.get(fd)
        try:
            if s.recv(1024):
                continue
        except ssl.SSLWantReadError:  # a TLS 1.3 session ticket, not the end: still open
            continue
        except OSError:
            pass
        del open_[fd]
        poll.unregister(fd)
        s.close()
print(json.dumps({"held_after_handshake": held, "refused_at_once": int(sys.argv[1]) - held,
                  "seconds_to_open": round(opened, 1),
                  "still_open": len(open_), "all_closed_after": round(time.monotonic() - t0, 1)}))
"""


def lab(*args: str) -> None:
    subprocess.run(LAB + list(args), cwd=ROOT, check=True, stdout=subprocess.DEVNULL, timeout=600)


def trust(name: str) -> None:
    """Trust the host's current endpoint record once it has registered (within seconds of starting);
    earlier labs may have left older records under the same name."""
    deadline = time.monotonic() + 60
    while True:
        listed = subprocess.run(LAB + ["endpoints", "list", "--json"], cwd=ROOT, capture_output=True, text=True,
                                timeout=60)
        record = current_record(json.loads(listed.stdout), name) if listed.returncode == 0 else None
        if record:
            subprocess.run(LAB + ["endpoints", "trust", record["id"]], cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL, timeout=60)
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"{name} did not register: {listed.stderr.strip()}")
        time.sleep(1)


def sample(service: str) -> tuple[int, int]:
    """(threads, RSS KiB) of the primary's server process."""
    script = ("pid=$(cut -d' ' -f2 /run/safeqlab/safeq-cloud-server.state); "
              "grep -E '^(Threads|VmRSS):' /proc/$pid/status")
    out = engine.exec_sh(service, script, timeout=10).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines())  # VmRSS comes before Threads
    return int(fields["Threads"].split()[0]), int(fields["VmRSS"].split()[0])


def endpoint_states() -> tuple:
    states = []
    for svc, cmd in (("gateway", "safeq-gateway"), ("client", "safeq-client")):
        out = engine.execute(svc, [cmd, "status", "--json"], timeout=10).stdout
        data = json.loads(out)
        states.append((data["state"], data["since"]))
    return tuple(states)


def attack(samples: list) -> dict:
    done = threading.Event()

    def watch():
        t0 = time.monotonic()
        while not done.is_set():
            samples.append((round(time.monotonic() - t0, 1), *sample("primary")))
            time.sleep(0.5)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        held = engine.execute("ocsp", ["python3", "-c", HOLD, str(CONNECTIONS)], timeout=90)
        if held.returncode != 0:
            raise SystemExit(f"the peer in the ocsp container failed: {held.stderr.strip()[-500:]}")
        out = held.stdout
    finally:
        time.sleep(2)
        done.set()
        watcher.join()
    return json.loads(out)


def main() -> int:
    lab("up", "--policy", "built-in")
    try:
        trust("gateway-host")
        trust("pcclient-host")
        deadline = time.monotonic() + 60
        while any(state != "connected" for state, _ in endpoint_states()):
            if time.monotonic() > deadline:
                raise SystemExit("gateway and client did not connect after being trusted")
            time.sleep(0.5)
        before_states = endpoint_states()
        base_threads, base_rss = sample("primary")
        samples: list = []
        result = attack(samples)
        after_threads, after_rss = sample("primary")
        stayed = endpoint_states() == before_states
    finally:
        lab("down")
    peak_threads = max(s[1] for s in samples)
    peak_rss = max(s[2] for s in samples)
    lines = [
        "# Hostile peers: idle unauthenticated connections",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{subprocess.run(['nproc'], capture_output=True, text=True, timeout=10).stdout.strip()} cores. Reported, not asserted.",
        f"{CONNECTIONS} connections from one peer without a certificate under the built-in policy, held idle.",
        "The primary caps unauthenticated connections (16 per address, 128 in all) and closes each at the",
        "first-message deadline (10 s after its handshake).",
        "",
        "| figure | value |",
        "| --- | ---: |",
        f"| connections that completed a handshake and were held | {result['held_after_handshake']} |",
        f"| connections closed at once (over the caps) | {result['refused_at_once']} |",
        f"| seconds to open all {CONNECTIONS} | {result['seconds_to_open']} |",
        f"| seconds from the first connection until the primary had closed every one (target <= 15) | {result['all_closed_after']} |",
        f"| connections still open at the end | {result['still_open']} |",
        f"| primary threads: before / peak / after | {base_threads} / {peak_threads} / {after_threads} |",
        f"| primary RSS MiB: before / peak / after | {base_rss / 1024:.1f} / {peak_rss / 1024:.1f} / {after_rss / 1024:.1f} |",
        f"| gateway and client stayed connected throughout | {'yes' if stayed else 'NO'} |",
        "",
        "Samples (seconds, threads, RSS KiB): " + ", ".join(f"{t}:{th}/{rss}" for t, th, rss in samples[::4]),
    ]
    publish("hostile", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
