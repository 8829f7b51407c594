"""The doc's application.conf edit, as `safeq-lab up` types it, read back by the primary's parser."""
import subprocess
import sys
from pathlib import Path

import pytest

import pki
from lab import steps

from safeq_primary import hocon

CONF = (Path(__file__).resolve().parents[2] / "images" / "primary" / "application.conf").read_text()


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("pki")
    pki.init_pki(root)
    return pki.load_manifest(root), root / "hosts" / "primary-host"


@pytest.mark.parametrize("password", ["changeit", "it's|a&b c", "p@ss;word#1"])
def test_sed_step_sets_both_settings_for_any_allowed_password(manifest, tmp_path, password):
    data, host_dir = manifest
    data["entities"] = [dict(e, pfx_password=password) if e["role"] == "primary" else e for e in data["entities"]]
    edit = next(s for s in steps.primary_steps(data, host_dir) if s.command.startswith("sed "))
    conf = tmp_path / "application.conf"
    conf.write_text(CONF)
    subprocess.run(["sh", "-c", edit.command.replace(f"{steps.CONF_DIR}/application.conf", str(conf))], check=True)
    parsed = hocon.parse(conf.read_text())
    assert hocon.setting(parsed, "default-keystore-file") == "/opt/safeqcloud/conf/primary-host.pfx"
    assert hocon.setting(parsed, "default-keystore-password") == password
    assert hocon.setting(parsed, "port") == "2560"  # the rest of the file is untouched


def test_no_primary_entity_is_a_clear_error(manifest):
    from lab.errors import LabError
    data, host_dir = manifest
    with pytest.raises(LabError, match="the PKI has no entity with role primary"):
        steps.primary_steps(dict(data, entities=[e for e in data["entities"] if e["role"] != "primary"]), host_dir)
