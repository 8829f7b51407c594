"""A tiny service manager for one unit per container.

`systemctl restart UNIT` (our shim) sends SIGHUP here; the unit restarts as a
fresh process that re-reads its configuration, as under systemd. SIGTERM stops
the unit and exits quickly so `docker compose down` stays under 2 s.

usage: python3 -m safeqlab.supervise [--user USER] UNIT -- COMMAND...
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

RUN = Path("/run/safeqlab")
# A unit that exits with EX_CONFIG has said why it cannot run (e.g. damaged state): like systemd's
# RestartPreventExitStatus, it stays stopped until `systemctl start|restart` instead of looping.
EX_CONFIG = 78


def stop_child(child: subprocess.Popen | None) -> None:
    if child is None or child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=1.5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("unit")
    ap.add_argument("--user")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    RUN.mkdir(parents=True, exist_ok=True)
    (RUN / f"{args.unit}.pid").write_text(str(os.getpid()))
    state_path = RUN / f"{args.unit}.state"

    def write_state(text: str) -> None:
        # Replace, not rewrite: systemctl must never read a half-written file.
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, state_path)

    flags = {"restart": False, "stop": False, "halt": False, "start": False}

    def on(flag):
        return lambda s, f: flags.__setitem__(flag, True)

    signal.signal(signal.SIGHUP, on("restart"))
    signal.signal(signal.SIGTERM, on("halt"))
    signal.signal(signal.SIGINT, on("halt"))
    signal.signal(signal.SIGUSR1, on("stop"))
    signal.signal(signal.SIGUSR2, on("start"))

    child = None
    wanted = True
    generation = 0

    def start():
        nonlocal child, generation
        generation += 1
        child = subprocess.Popen(command, user=args.user, group=args.user, extra_groups=[] if args.user else None)
        write_state(f"active {child.pid} {generation}\n")

    start()
    while True:
        time.sleep(0.1)
        if flags["halt"]:
            stop_child(child)
            write_state("inactive 0 0\n")
            return 0
        if flags["stop"]:
            flags["stop"], wanted = False, False
            stop_child(child)
            write_state(f"inactive 0 {generation}\n")
        if flags["restart"] or (flags["start"] and (child is None or child.poll() is not None)):
            flags["start"] = flags["restart"] = False
            wanted = True
            stop_child(child)
            start()
        elif wanted and child is not None and child.poll() == EX_CONFIG:
            wanted = False
            print(f"supervise: {args.unit} refused to start (exit {EX_CONFIG}); it stays stopped until "
                  f"`systemctl restart {args.unit}`", file=sys.stderr, flush=True)
            write_state(f"failed 0 {generation}\n")
        elif wanted and child is not None and child.poll() is not None:
            # Restart=always, with a pause so a crash loop does not spin.
            print(f"supervise: {args.unit} exited with {child.returncode}; restarting in 1 s", file=sys.stderr, flush=True)
            for _ in range(10):
                time.sleep(0.1)
                if flags["halt"]:
                    break
            else:
                start()
        flags["start"] = False


if __name__ == "__main__":
    sys.exit(main())
