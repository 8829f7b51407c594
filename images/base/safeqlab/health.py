"""Whether an endpoint's session is alive, from its state file (service.StateFile): what every
healthcheck asks. Light on purpose: no TLS or crypto imports."""
from __future__ import annotations

import datetime
import json
from pathlib import Path

from certkit import fsio
from .proto import HEARTBEAT_SECONDS

GATEWAY_STATE = "/run/safeq-gateway/state.json"  # the gateway's session state (safeqlab.gateway)


def healthy(data: dict | None, max_age: float = 3 * HEARTBEAT_SECONDS + 2) -> tuple[bool, str]:
    if not data:
        return False, "not started"
    if data.get("state") != "connected":
        return False, f"{data.get('state')}: {data.get('reason')}"
    last = data.get("last_ack") or data.get("since")
    age = (datetime.datetime.now(datetime.timezone.utc) - datetime.datetime.fromisoformat(last)).total_seconds()
    if age > max_age:
        return False, f"no heartbeat answered for {age:.0f} s"
    return True, f"connected to {data['peer']['host']} ({data['peer']['subject']})"


def answer(state_file: str | Path) -> int:
    """The healthcheck's answer from a state file: why on stdout, exit 0 only while healthy."""
    ok, why = healthy(fsio.read_json(state_file))
    print(why)
    return 0 if ok else 1


def status_json(state_file: str | Path) -> int:
    """`status --json`: the state file as it is (always exit 0: it reports)."""
    print(json.dumps(fsio.read_json(state_file), indent=2))
    return 0
