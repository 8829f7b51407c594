"""The primary's admin API from the host: `docker exec` into the primary, nothing published."""
from __future__ import annotations

import json

from . import docker
from .errors import LabError


def api(method: str, path: str, body=None):
    proc = docker.compose("exec", "-T", "primary", "safeq-admin", "api", method, path, check=False, capture=True,
                          input=json.dumps(body) if body is not None else "")
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        text = msg[-1] if msg else f"exit {proc.returncode}"
        if "No such container" in text or 'service "primary" is not running' in text:
            raise LabError("the primary is not running: start the lab with `safeq-lab up`")
        raise LabError(text.removeprefix("error: "))
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise LabError(f"the primary's admin API answered something that is not JSON: {proc.stdout[:200]!r}") from None
