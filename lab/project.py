"""Where the lab's files are: the folder holding compose.yaml."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import LabError


def root() -> Path:
    """SAFEQ_LAB_HOME, else the nearest folder upwards from here or the cwd with compose.yaml."""
    if os.environ.get("SAFEQ_LAB_HOME"):
        return Path(os.environ["SAFEQ_LAB_HOME"]).resolve()
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for folder in (start, *start.parents):
            if (folder / "compose.yaml").is_file() and (folder / "images").is_dir():
                return folder
    raise LabError("cannot find the lab's compose.yaml: run safeq-lab inside the safeq-pki-lab checkout or set SAFEQ_LAB_HOME")


def pki_dir() -> Path:
    return Path(os.environ.get("SAFEQ_PKI_DIR", root() / "build" / "pki")).resolve()
