"""Every stand-in stops cleanly on SIGTERM inside compose's 2 s grace period (exit 0, not SIGKILL's 137).
Throwaway containers of each image, so the running lab is not touched."""
import subprocess

import pytest


@pytest.mark.parametrize("image", ["primary", "gateway", "client", "ocsp"])
def test_sigterm_stops_the_service_cleanly(image):
    cid = subprocess.run(["docker", "run", "-d", "--init", "--network", "none", f"safeq-lab/{image}:latest"],
                         capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    try:
        # Let the service come up (or settle in its error state without /pki) before stopping it.
        subprocess.run(["docker", "exec", cid, "sh", "-c",
                        "for i in $(seq 50); do pgrep -f 'safeq|ocsp' >/dev/null && break; sleep 0.1; done; sleep 1"],
                       check=True, timeout=60)
        subprocess.run(["docker", "stop", "-t", "2", cid], capture_output=True, check=True, timeout=60)
        state = subprocess.run(["docker", "inspect", "-f", "{{.State.ExitCode}} {{.State.OOMKilled}}", cid],
                               capture_output=True, text=True, check=True, timeout=30).stdout.split()
        assert state == ["0", "false"], f"{image} did not stop on SIGTERM within 2 s: exit {state[0]}"
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, timeout=60)
