"""Hostile peers cannot hurt the primary: idle and dripping connections are closed by deadlines,
unauthenticated connections are capped, protocol garbage is a logged protocol error, and the
endpoints stay connected throughout. The attackers run in the OCSP and portal containers (addresses
of their own on the lab network that are not endpoints)."""
import json
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import host, taken, wait_for
from lab import engine

# Breaks and mends the lab's own PKI (its CA issues what it needs): not run on a spec's files.
pytestmark = pytest.mark.lab_pki


HOLD = textwrap.dedent("""
    import json, select, socket, sys, time
    n, drip = int(sys.argv[1]), sys.argv[2] == "drip"
    socks = []
    for _ in range(n):
        try:
            socks.append(socket.create_connection(("primary-host", 2560), timeout=5))
        except OSError:
            pass
    t0, poll, open_ = time.monotonic(), select.poll(), {}
    for s in socks:
        poll.register(s, select.POLLIN)
        open_[s.fileno()] = s
    last = 0.0
    while open_ and time.monotonic() - t0 < 30:
        if drip and time.monotonic() - last >= 1:  # one byte per second of a TLS record header
            last = time.monotonic()
            for s in list(open_.values()):
                try:
                    s.send(b"\\x16")
                except OSError:
                    pass
        for fd, _ in poll.poll(200):
            s = open_.pop(fd, None)
            if s is None:
                continue
            try:
                s.recv(1)
            except OSError:
                pass
            poll.unregister(fd)
            s.close()
    print(json.dumps({"opened": len(socks), "still_open": len(open_), "seconds": round(time.monotonic() - t0, 1)}))
""")


def threads(primary) -> int:
    pid = primary.check_output("cut -d' ' -f2 /run/safeqlab/safeq-cloud-server.state")
    return int(primary.check_output(f"awk '/^Threads:/ {{print $2}}' /proc/{pid}/status"))


def connected_since(gateway, client) -> tuple:
    gw = json.loads(gateway.check_output("safeq-gateway status --json"))
    cl = json.loads(client.check_output("safeq-client status --json"))
    return (gw["state"], gw["since"], cl["state"], cl["since"])


def attack(attacker, n: int, mode: str) -> dict:
    attacker.check_output(f"cat > /tmp/hold.py <<'EOF'\n{HOLD}\nEOF")
    return json.loads(attacker.check_output(f"python3 /tmp/hold.py {n} {mode}"))


def run_attacks() -> dict:
    """800 idle connections from the OCSP responder and 3 dripping ones from the portal, at once: both wait
    on the primary's deadlines. Two addresses, so the idle ones' per-address cap leaves the drip's alone."""
    before = threads(host("primary")), connected_since(host("gateway"), host("client"))
    with ThreadPoolExecutor(2) as pool:
        idle = pool.submit(attack, host("ocsp"), 800, "idle")
        drip = pool.submit(attack, host("portal"), 3, "drip")
        return {"before": before, "idle": idle.result(), "drip": drip.result()}


# The other checks run while the attacks wait on the deadlines: the primary keeps serving them too.
HEAD_START = {"attacks": run_attacks}


@pytest.fixture(scope="module")
def attacks():
    return taken(run_attacks)


def test_800_idle_connections_are_closed_and_endpoints_stay_connected(primary, gateway, client, attacks):
    (before_threads, before), result = attacks["before"], attacks["idle"]
    assert result["opened"] == 800 and result["still_open"] == 0, result
    assert result["seconds"] <= 15, result
    assert wait_for(lambda: threads(primary) <= before_threads, 15), f"{threads(primary)} threads, {before_threads} before"
    assert connected_since(gateway, client) == before, "an endpoint lost its session during the attack"
    log = primary.file("/var/log/safeqcloud/server.log").content_string
    assert "unauthenticated connections already open" in log


def test_a_peer_dripping_one_byte_per_second_is_closed(attacks):
    result = attacks["drip"]
    # Closed by the handshake deadline while dripping (seconds in), not refused at the door.
    assert result["opened"] == 3 and result["still_open"] == 0 and 2 <= result["seconds"] <= 10, result


def test_protocol_garbage_is_a_logged_protocol_error(primary, gateway, manifest):
    gw = next(e for e in manifest["entities"] if e["name"] == "gateway-host")
    gateway.check_output(f"openssl pkcs12 -in /pki/gateway-host.pfx -nodes -passin pass:{gw['pfx_password']} "
                         "-out /tmp/gw.pem 2>/dev/null")
    send = ("python3 -c \"import socket,ssl,sys\n"
            "c=ssl.create_default_context(cafile='/tmp/gw.pem'); c.check_hostname=False; c.verify_mode=ssl.CERT_NONE\n"
            "c.load_cert_chain('/tmp/gw.pem')\n"
            "s=c.wrap_socket(socket.create_connection(('primary-host',2560),timeout=5))\n"
            "s.sendall(sys.argv[1].encode()+b'\\\\n'); s.settimeout(5)\n"
            "print(s.recv(4096))\" ")
    for payload in ("[" * 60000, "not json", '{"no":"type"}'):
        gateway.run(send + "'" + payload + "'")
    log = wait_for(lambda: (lambda t: t if t.count("Session from") >= 3 else "")(
        primary.file("/var/log/safeqcloud/server.log").content_string), 10)
    assert "not a JSON message" in log or "message" in log
    assert "Traceback" not in engine.logs("primary")
    assert primary.run("safeq-admin health").rc == 0


def test_admin_api_refuses_a_negative_content_length(primary):
    out = primary.check_output(
        "python3 -c \"import socket\n"
        "s=socket.create_connection(('127.0.0.1',9780),timeout=5)\n"
        "s.sendall(b'PUT /api/v1/account/policy HTTP/1.1\\\\r\\\\nHost: x\\\\r\\\\nContent-Length: -5\\\\r\\\\n\\\\r\\\\n')\n"
        "print(s.recv(4096).split(b'\\\\r\\\\n')[0].decode())\"")
    assert out.startswith("HTTP/1.0 400") or out.startswith("HTTP/1.1 400"), out
