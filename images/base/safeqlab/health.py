"""Whether an endpoint's session is alive, from its state file (service.StateFile): what every
healthcheck asks. Light on purpose: no TLS or crypto imports."""
from __future__ import annotations

import datetime

from .proto import HEARTBEAT_SECONDS


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
