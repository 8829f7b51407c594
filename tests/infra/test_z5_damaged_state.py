"""Damaged account state is never read as the defaults: the primary keeps the file, refuses to start
and says what to do; once the file is repaired, `systemctl restart` brings everything back."""
import base64

import pytest

from conftest import wait_for

# Breaks and mends the lab's own PKI (its CA issues what it needs): not run on a spec's files.
pytestmark = pytest.mark.lab_pki

SETTINGS = "/var/lib/safeqcloud/account/settings.json"
LOG = "/var/log/safeqcloud/server.log"


@pytest.fixture
def saved_settings(primary, gateway, client):
    saved = primary.file(SETTINGS).content_string
    yield saved
    encoded = base64.b64encode(saved.encode()).decode()
    primary.check_output(f"echo {encoded} | base64 -d > {SETTINGS} && rm -f {SETTINGS}.corrupt-*")
    primary.check_output("systemctl restart safeq-cloud-server")
    assert wait_for(lambda: primary.run("safeq-admin health").rc == 0, 30)
    assert wait_for(lambda: gateway.run("safeq-gateway health").rc == 0 and client.run("safeq-client health").rc == 0, 40)


def test_corrupt_settings_keep_the_file_and_stop_the_primary(primary, saved_settings):
    damaged = saved_settings[: len(saved_settings) // 2]  # a write cut short
    primary.check_output(f"printf %s {base64.b64encode(damaged.encode()).decode()} | base64 -d > {SETTINGS}")
    primary.check_output("systemctl restart safeq-cloud-server")
    assert wait_for(lambda: primary.run("systemctl is-active safeq-cloud-server").stdout.strip() == "failed", 15)
    # Nothing replaced it with the defaults, and a copy of the damaged file is kept beside it.
    assert primary.file(SETTINGS).content_string == damaged
    copies = primary.check_output(f"ls {SETTINGS}.corrupt-*").split()
    assert len(copies) == 1 and primary.file(copies[0]).content_string == damaged
    log = primary.file(LOG).content_string
    assert f"Not starting: {SETTINGS} is damaged" in log
    assert "remove it to start from the product defaults" in log
    # It stays down instead of restarting in a loop.
    assert primary.run("safeq-admin health").rc == 1
    assert primary.run("systemctl is-active safeq-cloud-server").stdout.strip() == "failed"
