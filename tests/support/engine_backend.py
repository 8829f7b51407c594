"""testinfra's docker backend, over the Docker engine's API (lab.engine) instead of a `docker exec`
process per command.

Each command of a check is one exec through the engine's API: the same `/bin/sh -c COMMAND` that
testinfra's docker backend runs, the same exit code and output bytes, and a timeout, without starting
the docker CLI for every command and file read (hosts: `safeq-engine://CONTAINER`).
"""
from __future__ import annotations

from typing import Any

from testinfra.backend import BACKENDS, base

from lab import engine

TIMEOUT = 120.0  # s for one command of a check: a hang is an error, not a stuck run


class EngineBackend(base.BaseBackend):
    NAME = "safeq-engine"

    def __init__(self, name: str, *args: Any, **kwargs: Any):
        self.name = name
        super().__init__(name, *args, **kwargs)

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        cmd = self.get_command(command, *args)
        code, out, err = engine.exec_bytes(self.name, ["/bin/sh", "-c", cmd], timeout=TIMEOUT)
        return self.result(code, self.encode(cmd), out, err)


BACKENDS[EngineBackend.NAME] = f"{__name__}.{EngineBackend.__name__}"
