"""What the JRE's verdict costs the primary per handshake: the primary's TLS layer in its own image,
on loopback, with the JRE judging each client chain and with a stand-in verdict. Reports, does not assert."""
from __future__ import annotations

import datetime
import json
import platform
import subprocess
import sys
from pathlib import Path

from report import publish

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "safeq-lab/primary:latest"
COUNT = 300


def main() -> int:
    cmd = ["docker", "run", "--rm", "--network", "none", "--entrypoint", "python3",
           "-v", f"{ROOT / 'bench' / 'inner'}:/bench:ro", IMAGE, "/bench/handshakes.py", str(COUNT)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        raise SystemExit(f"the handshake run failed in {IMAGE} (build it with `safeq-lab build`)")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    cost = round(r["handshake_with_jre_ms"] - r["handshake_without_jre_ms"], 2)
    lines = [
        "# Handshakes: the JRE's verdict in the primary's TLS layer",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores, image {IMAGE}, "
        f"JRE {r['java']}. Reported, not asserted.",
        f"{r['count']} sequential TLS 1.3 handshakes on loopback with a client certificate (EC P-256, chain of 2),",
        f"judged against {r['anchors']} anchors (a lab root plus the image's public CA bundle), as the",
        "trusted-ca policy does; then the same with a stand-in verdict (no JRE).",
        "",
        "| figure | median ms | p95 ms |",
        "| --- | ---: | ---: |",
        f"| handshake, JRE judging the chain | {r['handshake_with_jre_ms']} | {r['handshake_with_jre_p95_ms']} |",
        f"| handshake, no JRE | {r['handshake_without_jre_ms']} | {r['handshake_without_jre_p95_ms']} |",
        f"| one verdict from the running JRE validator, alone | {r['judge_alone_ms']} | {r['judge_alone_p95_ms']} |",
        "",
        f"The validator's cost per handshake: about {cost} ms (median difference).",
    ]
    publish("handshake", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
