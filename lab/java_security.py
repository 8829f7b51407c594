"""`safeq-lab up --java-security FILE|=FILE`: another java.security for the lab's JREs.

compose.yaml mounts the file read-only into primary, gateway and client and sets their
SAFEQ_JAVA_SECURITY from the two variables made here: FILE adds to / overrides the JRE's
own java.security, =FILE replaces it whole (Java's -Djava.security.properties==FILE).
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import LabError

FILE_VAR = "SAFEQ_LAB_JAVA_SECURITY"            # the file on this host (absolute)
REPLACE_VAR = "SAFEQ_LAB_JAVA_SECURITY_REPLACE"  # non-empty: the file replaces the JRE's java.security
USAGE = "FILE adds to the JRE's java.security, =FILE replaces it"


def check_file(name: str, given: str) -> Path:
    """The file as an absolute path: compose would resolve a relative one against compose.yaml's folder."""
    if not name:
        raise LabError(f"--java-security {given!r} names no file: {USAGE}")
    path = Path(name).expanduser().absolute()
    if not path.exists():
        raise LabError(f"--java-security: {path} does not exist: give an existing java.security file ({USAGE})")
    if not path.is_file():
        raise LabError(f"--java-security: {path} is not a file: give a java.security file ({USAGE})")
    # Java silently ignores an override it cannot read: the lab would run on the JRE's own.
    if not os.access(path, os.R_OK):
        raise LabError(f"--java-security: {path} is not readable: fix its permissions (e.g. chmod a+r)")
    return path


def compose_env(option: str | None) -> dict[str, str]:
    """The variables compose.yaml reads; both empty without the option, so a stale export has no say."""
    if option is None:
        return {FILE_VAR: "", REPLACE_VAR: ""}
    replace = option.startswith("=")
    path = check_file(option[1:] if replace else option, option)
    return {FILE_VAR: str(path), REPLACE_VAR: "1" if replace else ""}


def describe(env: dict[str, str]) -> str | None:
    """The line `up` prints when an override is in use."""
    if not env[FILE_VAR]:
        return None
    how = "replaces" if env[REPLACE_VAR] else "adds to"
    return f"java.security: {env[FILE_VAR]} {how} the JRE's own in primary, gateway and client"
