"""keytool's verdict on a store is asked once per store as it is on disk: a change of the file's content
or of the password asks again. The keytool here counts its runs and answers as keytool does."""
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
    assert runs() == 2
    store.unlink()
    store.write_bytes(b"other")                    # the same bytes in a new file, as the doc's `cp` makes
    os.chmod(store, 0o640)
    javastore.list_entries(str(store), "changeit", keytool=tool)
    assert runs() == 2


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


@pytest.fixture
def kept(tmp_path, monkeypatch):
    """The verdicts kept in a file, as a gateway keeps them on its data volume; ``restart`` forgets what
    the process knew, as a container started again does."""
    path = tmp_path / "data" / "keytool-verdicts.json"
    monkeypatch.setenv(javastore.VERDICTS_FILE_VAR, str(path))

    def restart():
        javastore._VERDICTS.clear()
        javastore._loaded.clear()
    restart()
    yield path, restart
    restart()


def test_kept_verdicts_outlive_the_process_until_the_store_changes(tmp_path, keytool, kept):
    tool, runs = keytool
    path, restart = kept
    store = tmp_path / "gateway-host.pfx"
    store.write_bytes(b"store")
    javastore.list_entries(str(store), "changeit", keytool=tool)
    with pytest.raises(javastore.StoreError, match="password was incorrect"):
        javastore.list_entries(str(store), "wrong", keytool=tool)
    assert runs() == 2 and stat.S_IMODE(path.stat().st_mode) == 0o600
    restart()
    assert javastore.list_entries(str(store), "changeit", keytool=tool) == []
    with pytest.raises(javastore.StoreError, match="^java.io.IOException: keystore password was incorrect$"):
        javastore.list_entries(str(store), "wrong", keytool=tool)
    assert runs() == 2  # both verdicts read back, no keytool started
    restart()
    store.write_bytes(b"new store")
    javastore.list_entries(str(store), "changeit", keytool=tool)
    assert runs() == 3


def test_a_damaged_verdicts_file_is_not_trusted(tmp_path, keytool, kept):
    tool, runs = keytool
    path, restart = kept
    store = tmp_path / "acme-ca.pfx"
    store.write_bytes(b"store")
    path.parent.mkdir()
    path.write_text('[{"key": "half')
    assert javastore.list_entries(str(store), "changeit", keytool=tool) == [] and runs() == 1
    restart()
    javastore.list_entries(str(store), "changeit", keytool=tool)
    assert runs() == 1  # written anew, whole


def test_kept_entries_read_back_as_keytool_listed_them(tmp_path, kept, monkeypatch):
    import json
    import shutil
    import pki
    if shutil.which("keytool") is None:
        pytest.skip("keytool (a Java JDK/JRE) is not on PATH")
    _, restart = kept
    pki.init_pki(tmp_path / "pki")
    manifest = json.loads((tmp_path / "pki" / "manifest.json").read_text())
    password = next(e for e in manifest["entities"] if e["name"] == "gateway-host")["pfx_password"]
    store = tmp_path / "pki" / "hosts" / "gateway-host" / "gateway-host.pfx"
    listed = javastore.load_keystore(str(store), password)
    restart()
    monkeypatch.setattr(javastore, "_ask_keytool", lambda *a: pytest.fail("keytool asked again"))
    again = javastore.load_keystore(str(store), password)
    assert (again.alias, again.chain) == (listed.alias, listed.chain) and len(again.chain) >= 2


def test_the_kept_file_holds_the_stores_as_they_are_now_only(tmp_path, keytool, kept):
    import json
    tool, runs = keytool
    path, _ = kept
    store = tmp_path / "cacerts"
    for content in (b"one", b"two", b"three"):  # cacerts as three containers' keytool -importcert left it
        store.write_bytes(content)
        javastore.list_entries(str(store), "changeit", keytool=tool)
    assert runs() == 3 and len(json.loads(path.read_text())) == 1


def test_a_directory_or_a_fifo_is_no_store_and_nothing_is_read(tmp_path, keytool):
    tool, runs = keytool
    folder = tmp_path / "gateway-host.pfx"
    folder.mkdir()
    fifo = tmp_path / "acme-ca.pfx"
    os.mkfifo(fifo)  # reading it would block: refused before anything opens it
    with pytest.raises(javastore.StoreError, match=r"^keystore file .*gateway-host.pfx does not exist \(.* is a directory\)$"):
        javastore.list_entries(str(folder), "changeit", keytool=tool)
    with pytest.raises(javastore.StoreError, match=r"acme-ca.pfx is not a regular file\)$"):
        javastore.list_entries(str(fifo), "changeit", keytool=tool)
    assert runs() == 0
