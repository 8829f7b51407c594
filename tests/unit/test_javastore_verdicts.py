"""keytool's verdict on a store is asked once per store as it is on disk: a change of the file (content,
time, mode) or of the password asks again. The keytool here counts its runs and answers as keytool does."""
from __future__ import annotations

import os
import stat

import pytest

from certkit import javastore

LISTING = """Keystore type: PKCS12
Keystore provider: SUN

Your keystore contains 0 entries
"""


@pytest.fixture
def keytool(tmp_path):
    runs = tmp_path / "runs"
    script = tmp_path / "keytool"
    script.write_text("#!/bin/sh\necho run >> " + str(runs) + "\n"
                      "if [ \"$SAFEQ_STOREPASS\" = wrong ]; then echo 'keytool error: java.io.IOException: keystore "
                      "password was incorrect'; exit 1; fi\ncat <<'EOF'\n" + LISTING + "EOF\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    javastore._VERDICTS.clear()
    yield str(script), lambda: len(runs.read_text().splitlines()) if runs.exists() else 0
    javastore._VERDICTS.clear()


def test_the_same_store_is_judged_once_and_any_change_asks_again(tmp_path, keytool):
    tool, runs = keytool
    store = tmp_path / "acme-ca.pfx"
    store.write_bytes(b"store")
    assert javastore.list_entries(str(store), "changeit", keytool=tool) == []
    assert javastore.list_entries(str(store), "changeit", keytool=tool) == [] and runs() == 1
    store.write_bytes(b"other")                    # new content
    javastore.list_entries(str(store), "changeit", keytool=tool)
    os.chmod(store, 0o640)                         # a new mode: ctime
    javastore.list_entries(str(store), "changeit", keytool=tool)
    assert runs() == 3


def test_a_refusal_is_a_verdict_too_and_a_right_password_is_asked_for_again(tmp_path, keytool):
    tool, runs = keytool
    store = tmp_path / "gateway-host.pfx"
    store.write_bytes(b"store")
    for _ in range(2):
        with pytest.raises(javastore.StoreError, match="^java.io.IOException: keystore password was incorrect$"):
            javastore.list_entries(str(store), "wrong", keytool=tool)
    assert runs() == 1
    assert javastore.list_entries(str(store), "changeit", keytool=tool) == [] and runs() == 2


def test_a_missing_keytool_is_not_remembered(tmp_path, keytool):
    tool, runs = keytool
    store = tmp_path / "s.pfx"
    store.write_bytes(b"store")
    with pytest.raises(javastore.StoreError, match="keytool not found"):
        javastore.list_entries(str(store), "changeit", keytool=str(tmp_path / "nowhere"))
    assert javastore.list_entries(str(store), "changeit", keytool=tool) == [] and runs() == 1
