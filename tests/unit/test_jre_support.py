"""The JRE validator compiled with this machine's JDK, for the test_jre_* modules (no tests here).

Test modules import the fixtures they use; the compilation runs once per session.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from certkit.jre import EXPORTS, Validator

SOURCES = Path(__file__).resolve().parents[2] / "images" / "base" / "java"
# Pinned messages carry dates (NotAfter: ...): Java prints them in its default time zone.
UTC = ("-Duser.timezone=UTC",)
_compiled: dict[str, Path] = {}


def jdk_java() -> str:
    """The java next to javac, so compiler and runtime are one JDK."""
    javac = shutil.which("javac")
    if javac is None:
        pytest.skip("javac (a JDK) is not on PATH: the JRE validator tests compile the validator with it")
    java = Path(os.path.realpath(javac)).parent / "java"
    if not os.access(java, os.X_OK):
        pytest.skip(f"{javac} has no java next to it ({java})")
    return str(java)


@pytest.fixture(scope="session")
def jre_java() -> str:
    return jdk_java()


@pytest.fixture(scope="session")
def jre_classes(tmp_path_factory, jre_java) -> Path:
    if "dir" not in _compiled:
        out = tmp_path_factory.mktemp("validator-classes")
        javac = str(Path(jre_java).parent / "javac")
        sources = sorted(str(p) for p in SOURCES.rglob("*.java"))
        # EXPORTS holds the --add-exports pairs; javac takes them as the JVM does.
        proc = subprocess.run([javac, *EXPORTS, "-nowarn", "-d", str(out), *sources],
                              capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, f"javac failed:\n{proc.stderr}"
        _compiled["dir"] = out
    return _compiled["dir"]


@pytest.fixture(scope="module")
def jre(jre_java, jre_classes):
    with Validator(java=jre_java, classes_dir=jre_classes, jvm_options=UTC) as validator:
        yield validator
