"""Several client installs in one container (safeqlab.clientinstalls): each its own files, status and
service; health passes only while every install is connected; one install restarts on its own."""
from __future__ import annotations

import threading
import time

import pytest

from certkit import fsio
from safeqlab import client, clientfiles, clientinstalls

HOSTS = ["pcclient-host-2", "pcclient-host-3"]


@pytest.fixture
def installs_here(tmp_path, monkeypatch):
    """Installs under tmp_path instead of /installs, /var/lib/safeqclient and /run/safeqclient."""
    monkeypatch.setattr(clientfiles, "INSTALLS", tmp_path / "installs")
    monkeypatch.setattr(clientfiles, "DATA", tmp_path / "data")
    monkeypatch.setattr(clientinstalls, "CONTROL", tmp_path / "run" / "installs.sock")
    monkeypatch.setenv(clientinstalls.ENV, " ".join(HOSTS))
    return tmp_path


def connected(status: client.ClientStatus) -> None:
    status.set("connected", None, peer={"host": "primary-host", "subject": "CN=primary-host"})
    status.ack()


def test_each_install_has_its_own_files_subject_and_name(installs_here):
    spec = client.Client(install=client.install_of("pcclient-host-3"))
    root = installs_here / "installs" / "pcclient-host-3"
    assert spec.store_dir() == root / "store"
    assert spec.log_file == root / "ProgramData/safeqclientcore/logs/safeqclientcore.log"
    assert spec.state_path == root / "ProgramData/safeqclientcore/status.json"
    assert spec.builtin_dir == str(installs_here / "data" / "installs" / "pcclient-host-3" / "builtin")
    assert (spec.subject(), spec.host_name(), spec.logger) == (
        "pcclient-host-3", "pcclient-host-3", "safeqclientcore.pcclient-host-3")
    own = client.Client()
    assert (own.log_file, own.state_path, own.builtin_dir) == (client.LOG, client.STATE, client.BUILTIN_DIR)
    with pytest.raises(ValueError):
        client.install_of("../pcclient-host")


def test_setup_of_one_install_is_kept_in_its_own_folder(installs_here):
    install = client.install_of("pcclient-host-2")
    assert client.setup(["--subject", "Acme Client"], install, lambda: 0) == 0
    assert client.Client(install=install).subject() == "Acme Client"
    assert client.Client(install=client.install_of("pcclient-host-3")).subject() == "pcclient-host-3"


def test_health_passes_only_while_every_install_is_connected(installs_here, capsys):
    states = {h: clientinstalls.InstallStatus(client.install_of(h).status) for h in HOSTS}
    connected(states["pcclient-host-2"])
    assert client.main(["health"]) == 1
    assert capsys.readouterr().out == "1/2 installs connected; pcclient-host-3: starting: None\n"
    connected(states["pcclient-host-3"])
    assert client.main(["health"]) == 0
    assert capsys.readouterr().out == "2/2 installs connected\n"
    assert client.main(["health", "--install", "pcclient-host-3"]) == 0  # one install's own health
    capsys.readouterr()
    states["pcclient-host-3"].set("disconnected", "Connection refused")
    assert client.main(["health", "--install", "pcclient-host-2"]) == 0
    assert client.main(["health", "--install", "pcclient-host-3"]) == 1
    capsys.readouterr()
    assert client.main(["status"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "pcclient-host-2: grey: connected to primary-host (CN=primary-host)",
        "pcclient-host-3: yellow: disconnected: Connection refused"]


def test_a_command_names_an_install_of_this_container(installs_here):
    with pytest.raises(SystemExit, match="no install pcclient-host-9 here"):
        client.main(["status", "--install", "pcclient-host-9"])
    with pytest.raises(SystemExit, match="hosts 2 installs: name one with --install HOST"):
        client.main(["test-connection"])


def test_one_install_restarts_on_its_own(installs_here, monkeypatch):
    served = []

    def serve(spec, state, stop):  # a session stand-in: connected until stopped
        served.append(spec.install.host)
        connected(state)
        stop.wait()
        time.sleep(0.3)  # a session slower to end than the restart waits for
        state.set("disconnected", "stopped")  # the old session's last word must not reach the file

    monkeypatch.setattr(clientinstalls, "serve", serve)
    monkeypatch.setattr(clientinstalls, "STAGGER", 0)
    monkeypatch.setattr(clientinstalls, "STOP_WAIT", 0.05)
    done = threading.Event()
    monkeypatch.setattr(clientinstalls.util, "stop_event_on_signals", lambda: done)
    runner = threading.Thread(target=clientinstalls.run, args=(HOSTS,), daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 5
        while not (len(served) == 2 and clientinstalls.CONTROL.exists()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.main(["restart", "--install", "pcclient-host-3"]) == 0
        assert served == HOSTS + ["pcclient-host-3"]
        path = client.install_of("pcclient-host-3").status
        while fsio.read_json(path)["state"] == "starting" and time.monotonic() < deadline + 5:
            time.sleep(0.02)
        time.sleep(0.5)
        assert fsio.read_json(path)["state"] == "connected"  # the new session's, not the old one's "stopped"
        assert client.main(["health"]) == 0
        assert clientinstalls.request_restart("pcclient-host-7") == 1
    finally:
        done.set()
        runner.join(5)
    assert not runner.is_alive()


def test_a_container_of_one_install_restarts_through_systemctl(monkeypatch):
    monkeypatch.delenv(clientinstalls.ENV, raising=False)
    calls = []
    monkeypatch.setattr(client.subprocess, "run", lambda argv, timeout: calls.append(argv) or
                        type("Done", (), {"returncode": 0})())
    monkeypatch.setattr(client.socket, "gethostname", lambda: "pcclient-host")
    assert client.main(["restart", "--install", "pcclient-host"]) == 0
    assert client.main(["restart"]) == 0
    assert calls == [["systemctl", "restart", "safeq-client"]] * 2
    with pytest.raises(SystemExit, match="no install pcclient-host-2 here"):
        client.main(["restart", "--install", "pcclient-host-2"])


def test_the_healthcheck_of_several_installs_needs_no_tls_imports(tmp_path):
    """It runs every few seconds in every client container while a lab starts: the files alone."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    probe = ("import sys; from safeqlab import clientfiles as f; from pathlib import Path; "
             f"f.INSTALLS = Path({str(tmp_path)!r}); code = f.main(['health']); "
             "heavy = sorted(m for m in ('OpenSSL', 'cryptography', 'ssl', 'safeqlab.client') if m in sys.modules); "
             "print(code, heavy)")
    env = dict(os.environ, PYTHONPATH=f"{root / 'images/base'}{os.pathsep}{root}", **{clientfiles.ENV: "pcclient-host-2"})
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=env)
    assert proc.stdout.splitlines() == ["0/1 installs connected; pcclient-host-2: not started", "1 []"], proc.stderr
