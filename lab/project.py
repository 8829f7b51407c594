"""Where the lab's files are: the folder holding compose.yaml.

`pip install .` installs the CLI, not the lab: compose.yaml, images/ and tests/infra stay in
the checkout, so a command that needs them finds the checkout (or says how to point at one).
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import LabError

HOME_VAR = "SAFEQ_LAB_HOME"


def is_checkout(folder: Path) -> bool:
    return (folder / "compose.yaml").is_file() and (folder / "images").is_dir()


def find() -> Path | None:
    """SAFEQ_LAB_HOME, else the nearest checkout upwards from this package (an editable install)
    or from the cwd; None when there is none."""
    if os.environ.get(HOME_VAR):
        home = Path(os.environ[HOME_VAR]).expanduser().resolve()
        return home if is_checkout(home) else None
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for folder in (start, *start.parents):
            if is_checkout(folder):
                return folder
    return None


def root() -> Path:
    found = find()
    if found is not None:
        return found
    if os.environ.get(HOME_VAR):
        raise LabError(f"{HOME_VAR}={os.environ[HOME_VAR]} is not a safeq-pki-lab checkout (no compose.yaml and "
                       f"images/ there): point {HOME_VAR} at the folder you cloned, or unset it")
    raise LabError(f"the lab's files (compose.yaml, images/, tests/infra) are not in {Path.cwd()} or any folder "
                   f"above it: the installed command runs the lab of a safeq-pki-lab checkout; run it inside "
                   f"one, or set {HOME_VAR} to one")


def installed_apart() -> bool:
    """True for a `pip install .` copy: this package does not lie in a checkout."""
    here = Path(__file__).resolve().parent
    return not any(is_checkout(folder) for folder in here.parents)


LAB_VAR = "SAFEQ_LAB"      # the lab a command is about (`safeq-lab --lab NAME`); unset: the default lab
DEFAULT_LAB = "safeq-lab"


def lab_folder(name: str) -> Path:
    """A lab's own folder: build/ for the default lab, build/labs/NAME/ for the others (lab.labstate)."""
    return root() / "build" if name == DEFAULT_LAB else root() / "build" / "labs" / name


def pki_dir() -> Path:
    """SAFEQ_PKI_DIR, else the lab's own generated PKI: build/pki, build/labs/NAME/pki."""
    if os.environ.get("SAFEQ_PKI_DIR"):
        return Path(os.environ["SAFEQ_PKI_DIR"]).resolve()
    return (lab_folder(os.environ.get(LAB_VAR) or DEFAULT_LAB) / "pki").resolve()
