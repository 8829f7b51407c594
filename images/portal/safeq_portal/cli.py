"""`safeq-portal serve|health` (also `python3 -m safeq_portal`)."""
from __future__ import annotations

import argparse
import http.client
import logging
import os
import pwd
import sys

from . import primary  # the rest is the server's: the healthcheck runs every few seconds while a lab starts

DEFAULT_PORT = 8080
HEALTH_TIMEOUT = 3.0
log = logging.getLogger("safeq-portal")


def port() -> int:
    value = os.environ.get("SAFEQ_PORTAL_PORT", str(DEFAULT_PORT))
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SystemExit(f"safeq-portal: SAFEQ_PORTAL_PORT={value!r} is not a port number")
    return int(value)


def drop_privileges(name: str) -> None:
    """Root only read the login file; the server runs as ``name`` (nothing to do when not root)."""
    if os.geteuid() != 0:
        return
    try:
        account = pwd.getpwnam(name)
    except KeyError:
        raise SystemExit(f"safeq-portal: no user {name!r} to run as (SAFEQ_PORTAL_RUN_AS)") from None
    os.setgroups([])
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)


def serve() -> int:
    from . import auth, labview, probe, server
    logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        credentials = auth.load_credentials(auth.login_file())
    except auth.LoginFileError as exc:
        print(f"safeq-portal: {exc}", file=sys.stderr)
        return 2
    drop_privileges(os.environ.get("SAFEQ_PORTAL_RUN_AS", "safeq"))
    portal = server.Portal(credentials=credentials, api=primary.Primary(),
                           hosts=labview.parse_hosts(os.environ.get("SAFEQ_PORTAL_HOSTS")),
                           ocsp_up=probe.Reachability(os.environ.get("SAFEQ_PORTAL_OCSP")).up)
    httpd = server.make_server(portal, "0.0.0.0", port())
    server.stop_on_signals(httpd)
    log.info("serving on port %d as uid %d; admin API at %s", httpd.server_address[1], os.getuid(), portal.api.path)
    server.serve(httpd)
    log.info("stopped")
    return 0


def health() -> int:
    """0 when the login page answers 200 and the admin API answers; else 1 and one line saying which failed."""
    conn = http.client.HTTPConnection("127.0.0.1", port(), timeout=HEALTH_TIMEOUT)
    try:
        conn.request("GET", "/login")
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        print(f"unhealthy: the portal's login page does not answer: {exc}")
        return 1
    finally:
        conn.close()
    if status != 200:
        print(f"unhealthy: the portal's login page answered HTTP {status}")
        return 1
    try:
        primary.Primary(timeout=HEALTH_TIMEOUT).server()
    except primary.AdminDown as exc:
        print(f"unhealthy: {exc} ({exc.detail})")
        return 1
    except primary.ApiError:
        pass  # it answered (an error such as "starting" is the primary's state, shown in the portal)
    print("healthy")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="safeq-portal", description="The SAFEQ Cloud web portal stand-in (lab).")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the portal (reads the login file, then drops to SAFEQ_PORTAL_RUN_AS)")
    sub.add_parser("health", help="exit 0 when the login page and the primary's admin API answer")
    args = parser.parse_args(argv)
    return serve() if args.command == "serve" else health()
