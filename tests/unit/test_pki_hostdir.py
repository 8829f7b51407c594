"""A container bind-mounts hosts/<name>/: reissue must change the files in that very directory."""
import os

import pki


def test_reissue_replaces_files_inside_the_mounted_host_dir(tmp_path):
    root = tmp_path / "pki"
    pki.init_pki(root)
    host_dir = root / "hosts" / "gateway-host"
    inode = os.stat(host_dir).st_ino
    before = (host_dir / "gateway-host.pfx").read_bytes()
    stale = host_dir / "left-over.txt"
    stale.write_text("not part of the export")

    pki.reissue(root, "gateway-host")

    assert os.stat(host_dir).st_ino == inode  # same directory: a running mount sees the change
    assert (host_dir / "gateway-host.pfx").read_bytes() != before
    assert not stale.exists()
    assert sorted(p.name for p in host_dir.iterdir()) == ["acme-ca.pfx", "gateway-host.pfx", "unattended-install.conf"]


def test_reissue_of_the_client_keeps_its_store_layout(tmp_path):
    root = tmp_path / "pki"
    pki.init_pki(root)
    store = root / "hosts" / "pcclient-host" / "store"
    inode = os.stat(root / "hosts" / "pcclient-host").st_ino
    pki.reissue(root, "pcclient-host")
    assert os.stat(root / "hosts" / "pcclient-host").st_ino == inode
    assert sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file()) == [
        "CA/Acme-CA-Intermediate.crt", "My/pcclient-host.crt", "My/pcclient-host.key", "Root/Acme-CA-Root.crt"]
