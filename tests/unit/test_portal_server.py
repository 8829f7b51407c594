"""The portal end to end, in-process: a real HTTP server on 127.0.0.1 against a fake admin API on a
Unix socket in tmp_path (tests/support/fake_admin.py), which records every call it gets."""
from __future__ import annotations

import base64
import http.client
import json
import re
import signal
import socket
import threading
import time
from html import unescape
from urllib.parse import urlencode

import pytest

from safeq_portal import auth, labview, primary, server
from support.fake_admin import FakeAdmin

USER, PASSWORD = "admin", "correct horse"
HOSTS = "primary=primary-host ocsp=ocsp-host gateway=gateway-host client=pcclient-host"
PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
CSRF_WORDS = "refused: the form's CSRF token is missing or wrong; reload the page"


class Browser:
    """Cookies kept by name, redirects not followed: each answer is looked at as it is."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.text = resp.read().decode()
        finally:
            conn.close()
        for line in resp.headers.get_all("Set-Cookie") or []:
            name, _, rest = line.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in line:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return resp

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, fields, csrf=True):
        fields = dict(fields)
        if csrf is True:
            fields["csrf"] = self.csrf
        elif csrf is not None:
            fields["csrf"] = csrf
        return self.request("POST", path, urlencode(fields), {"Content-Type": "application/x-www-form-urlencoded"})

    def upload(self, path, files, csrf=True):
        boundary = "----portal-test-boundary"
        parts = [] if csrf is None else [("csrf", None, (self.csrf if csrf is True else csrf).encode())]
        parts += [("file", name, data) for name, data in files]
        body = b""
        for field, filename, data in parts:
            disposition = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename is not None else "")
            kind = "Content-Type: application/x-x509-ca-cert\r\n" if filename is not None else ""
            body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n{kind}\r\n".encode() + data + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        return self.request("POST", path, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    @property
    def csrf(self) -> str:
        """The CSRF token of the last page read (the portal's own forms carry it)."""
        return unescape(re.search(r'name="csrf" value="([^"]*)"', self.last_page).group(1))

    def page(self, path):
        resp = self.get(path)
        self.last_page = resp.text
        return resp

    def login(self, user=USER, password=PASSWORD):
        self.page("/login")
        return self.post("/login", {"user": user, "password": password})


@pytest.fixture
def fake(tmp_path):
    admin = FakeAdmin(str(tmp_path / "admin.sock"))
    yield admin
    admin.close()


@pytest.fixture
def portal(fake):
    app = server.Portal(credentials=auth.Credentials(USER, PASSWORD), api=primary.Primary(fake.path, timeout=2),
                        hosts=labview.parse_hosts(HOSTS), ocsp_up=lambda: True)
    httpd = server.make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.app = app
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def browser(portal):
    return Browser(portal.server_address[1])


@pytest.fixture
def admin(browser):
    """A browser logged in, on the account page."""
    assert browser.login().status == 303
    browser.page("/account")
    return browser


def test_login_good(browser, fake):
    resp = browser.page("/login")
    assert resp.status == 200 and "__Host-safeq-csrf" in browser.cookies
    assert browser.csrf == browser.cookies["__Host-safeq-csrf"]
    set_cookie = resp.headers["Set-Cookie"]
    for attr in ("Path=/", "Secure", "HttpOnly", "SameSite=Strict"):
        assert attr in set_cookie
    resp = browser.post("/login", {"user": USER, "password": PASSWORD})
    assert resp.status == 303 and resp.headers["Location"] == "/account"
    session = [c for c in resp.headers.get_all("Set-Cookie") if c.startswith("__Host-safeq-portal=")][0]
    assert session.endswith("; Path=/; Secure; HttpOnly; SameSite=Strict")
    assert len(browser.cookies["__Host-safeq-portal"]) >= 40
    assert browser.page("/account").status == 200


@pytest.mark.parametrize("user, password", [(USER, "wrong"), ("root", PASSWORD), ("", "")])
def test_login_bad(browser, user, password):
    resp = browser.login(user, password)
    assert resp.status == 401
    assert '<p class="error" role="alert">wrong user name or password</p>' in resp.text
    assert "__Host-safeq-portal" not in browser.cookies
    assert browser.get("/account").status == 303


def test_login_without_or_with_a_wrong_csrf_token_is_refused(browser):
    browser.page("/login")
    for csrf in (None, "forged"):
        resp = browser.post("/login", {"user": USER, "password": PASSWORD}, csrf=csrf)
        assert resp.status == 403 and CSRF_WORDS in resp.text
    assert "__Host-safeq-portal" not in browser.cookies
    browser.cookies.pop("__Host-safeq-csrf")  # the form's token alone is not enough: it needs the cookie
    resp = browser.post("/login", {"user": USER, "password": PASSWORD, "csrf": "x" * 43}, csrf=None)
    assert resp.status == 403


@pytest.mark.parametrize("path", ["/", "/account", "/endpoints", "/lab", "/nowhere"])
def test_pages_need_a_session(browser, fake, path):
    resp = browser.get(path)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    assert fake.calls == []


def test_lab_json_needs_a_session(browser, fake):
    resp = browser.get("/lab.json")
    assert resp.status == 403 and json.loads(resp.text) == {"error": "log in first"}
    assert fake.calls == []


@pytest.mark.parametrize("path", ["/account", "/trusted-cas", "/trusted-cas/remove", "/endpoints/trust",
                                  "/endpoints/untrust", "/logout"])
def test_posts_need_a_session(browser, fake, path):
    browser.page("/login")
    resp = browser.post(path, {"policy": "built-in", "id": "ep-gw", "sha256": "x"})
    assert resp.status == 403 and "Location" not in resp.headers
    assert fake.calls == []


def test_a_forged_session_cookie_is_no_session(browser, fake):
    browser.cookies["__Host-safeq-portal"] = "forged"
    assert browser.get("/account").status == 303


@pytest.mark.parametrize("path, fields", [
    ("/account", {"policy": "built-in"}), ("/trusted-cas/remove", {"sha256": ":".join(["AB"] * 32)}),
    ("/endpoints/trust", {"id": "ep-gw"}), ("/endpoints/untrust", {"id": "ep-gw"}), ("/logout", {})])
@pytest.mark.parametrize("csrf", [None, "", "wrong"])
def test_posts_without_the_right_csrf_token_change_nothing(admin, fake, path, fields, csrf):
    fake.calls.clear()
    resp = admin.post(path, fields, csrf=csrf)
    assert resp.status == 403 and CSRF_WORDS in resp.text
    assert fake.calls == []
    assert admin.get("/account").status == 200  # still logged in (logout refused too)


def test_upload_without_the_right_csrf_token_changes_nothing(admin, fake):
    fake.calls.clear()
    for csrf in (None, "wrong"):
        assert admin.upload("/trusted-cas", [("ca.pem", PEM)], csrf=csrf).status == 403
    assert fake.calls == []


def test_the_login_csrf_token_is_no_session_token(browser, fake):
    """After login the forms carry the session's own token: the pre-login one does not pass."""
    browser.page("/login")
    login_token = browser.csrf
    assert browser.post("/login", {"user": USER, "password": PASSWORD}).status == 303
    assert "__Host-safeq-csrf" not in browser.cookies
    browser.page("/account")
    assert browser.csrf != login_token
    resp = browser.post("/account", {"policy": "built-in"}, csrf=login_token)
    assert resp.status == 403 and fake.writes() == []


def test_account_page(admin, fake):
    text = admin.page("/account").text
    for label in ("<h1>Account settings</h1>", "<h2 id=\"pki\">PKI and encryption</h2>",
                  "Certificate policy for internal communication", "Use built-in certificates",
                  "Use trusted CA certificates", "Automatically trust new clients/servers",
                  "Enable OCSP revocation checks", "Custom OCSP URL", ">Save</button>", "CERTIFICATES",
                  "<h3>Trusted CA certificates</h3>", ">Remove</button>", ">Import</button>",
                  '<a href="/account" aria-current="page">Account settings</a>', '<a href="/endpoints">Endpoints</a>',
                  '<a href="/lab">Lab</a>', ">Log out</button>", "<title>Account settings"):
        assert label in text, label
    assert 'value="trusted-ca" checked' in text
    assert ":".join(["AB"] * 32) in text  # the full SHA-256
    assert 'name="file" multiple accept=".pem,.crt,.cer,.der"' in text
    assert text.count('name="csrf"') == 4  # log out, save, remove, import


def test_root_redirects_to_account(admin):
    resp = admin.get("/")
    assert resp.status == 303 and resp.headers["Location"] == "/account"


def test_save_sends_only_what_changed(admin, fake):
    fake.calls.clear()
    resp = admin.post("/account", {"policy": "built-in", "ocsp_on_failure": "fail-closed", "ocsp_url": ""})
    assert resp.status == 303 and resp.headers["Location"] == "/account"
    assert fake.writes() == [("PUT", "/api/v1/account/policy", {"policy": "built-in"})]
    page = admin.page("/account").text
    assert '<p class="notice" role="status">Saved.</p>' in page and 'value="built-in" checked' in page
    assert "Saved." not in admin.page("/account").text  # shown once


def test_save_auto_trust_and_ocsp(admin, fake):
    fake.calls.clear()
    resp = admin.post("/account", {"policy": "trusted-ca", "auto_trust": "on", "ocsp_enabled": "on",
                                   "ocsp_url": " http://ocsp-host:8080 ", "ocsp_on_failure": "fail-open"})
    assert resp.status == 303
    assert fake.writes() == [
        ("PUT", "/api/v1/account/auto-trust", {"enabled": True}),
        ("PUT", "/api/v1/account/ocsp", {"enabled": True, "url": "http://ocsp-host:8080", "on_failure": "fail-open"})]
    page = admin.page("/account").text
    assert 'name="ocsp_enabled" value="on" checked' in page and 'value="http://ocsp-host:8080"' in page
    assert '<option value="fail-open" selected>' in page


def test_save_error_shows_the_apis_words_and_keeps_the_input(admin, fake):
    fake.fail[("PUT", "/api/v1/account/ocsp")] = (400, "custom OCSP URL must be http://… <b>")
    resp = admin.post("/account", {"policy": "trusted-ca", "ocsp_enabled": "on", "ocsp_url": "ftp://x<y>"})
    assert resp.status == 400
    assert '<p class="error" role="alert">custom OCSP URL must be http://… &lt;b&gt;</p>' in resp.text
    assert 'value="ftp://x&lt;y&gt;"' in resp.text and 'name="ocsp_enabled" value="on" checked' in resp.text
    assert "<b>" not in resp.text


def test_import_sends_base64_files(admin, fake):
    der = bytes(range(256))
    fake.calls.clear()
    resp = admin.upload("/trusted-cas", [("issuing.pem", PEM), ("root.der", PEM + der)])
    assert resp.status == 303 and resp.headers["Location"] == "/account"
    [(method, path, body)] = fake.writes()
    assert (method, path) == ("POST", "/api/v1/trusted-cas")
    assert [(f["name"], base64.b64decode(f["data_base64"])) for f in body["files"]] == [
        ("issuing.pem", PEM), ("root.der", PEM + der)]
    page = admin.page("/account").text
    assert "Imported 2 certificate(s): CN=issuing.pem; CN=root.der." in page
    assert "CN=issuing.pem" in page.split('id="trusted-cas"')[1]


def test_import_a_bad_file_shows_the_error_and_changes_nothing(admin, fake):
    before = list(fake.state["trusted_cas"])
    resp = admin.upload("/trusted-cas", [("notes.txt", b"hello")])
    assert resp.status == 400
    assert '<p class="error" role="alert">notes.txt: not a certificate (PEM or DER)</p>' in resp.text
    assert fake.state["trusted_cas"] == before
    assert "<h1>Account settings</h1>" in resp.text


def test_import_without_a_file(admin, fake):
    fake.calls.clear()
    resp = admin.upload("/trusted-cas", [("", b"")])
    assert resp.status == 400 and "choose a certificate file (PEM or DER) to import" in resp.text
    assert fake.writes() == []


def test_remove(admin, fake):
    sha = ":".join(["AB"] * 32)
    fake.calls.clear()
    resp = admin.post("/trusted-cas/remove", {"sha256": sha})
    assert resp.status == 303
    assert fake.writes() == [("DELETE", "/api/v1/trusted-cas/" + sha.replace(":", "%3A"), None)]
    assert fake.state["trusted_cas"] == []
    page = admin.page("/account").text
    assert "Removed CN=Lab Root CA,O=Lab." in page and "No Trusted CA certificates." in page


def test_remove_unknown_shows_the_apis_error(admin, fake):
    resp = admin.post("/trusted-cas/remove", {"sha256": "00:11"})
    assert resp.status == 400 and "no Trusted CA certificate 00:11" in resp.text


def test_trusted_ca_problems_shown_as_errors(admin, fake):
    original = fake.route
    fake.route = lambda m, p, b: ((200, {**original(m, p, b)[1], "trusted_ca_problems": ["ca-7.crt: damaged"]})
                                  if (m, p) == ("GET", "/api/v1/account") else original(m, p, b))
    assert '<p class="error" role="alert">ca-7.crt: damaged</p>' in admin.page("/account").text


def test_endpoints_page_and_trust_untrust(admin, fake):
    text = admin.page("/endpoints").text
    assert "<h1>Endpoints</h1>" in text
    for column in ("Name", "Role", "Decision", "State", "Reason", "Last seen"):
        assert f'<th scope="col">{column}</th>' in text
    assert 'data-endpoint-id="ep-gw" data-name="gateway-host"' in text
    assert "Use built-in certificates" in text
    row = text.split('data-endpoint-id="ep-gw"')[1].split("</tr>")[0]
    assert ">Trust</button>" in row and 'action="/endpoints/trust"' in row
    fake.calls.clear()
    resp = admin.post("/endpoints/trust", {"id": "ep-gw"})
    assert resp.status == 303 and resp.headers["Location"] == "/endpoints"
    assert fake.writes() == [("POST", "/api/v1/endpoints/ep-gw/trust", None)]
    text = admin.page("/endpoints").text
    row = text.split('data-endpoint-id="ep-gw"')[1].split("</tr>")[0]
    assert ">Untrust</button>" in row and "Trusted gateway gateway-host." in text
    fake.calls.clear()
    assert admin.post("/endpoints/untrust", {"id": "ep-gw"}).status == 303
    assert fake.writes() == [("POST", "/api/v1/endpoints/ep-gw/untrust", None)]
    assert fake.state["endpoints"][0]["trusted"] is False


def test_trust_unknown_endpoint_shows_the_apis_error(admin, fake):
    admin.page("/endpoints")
    resp = admin.post("/endpoints/trust", {"id": "nope"})
    assert resp.status == 400 and "no endpoint &#x27;nope&#x27;: see `endpoints list` for ids" in resp.text


def test_lab_page_and_json(admin, fake):
    text = admin.page("/lab").text
    assert "<h1>Lab</h1>" in text and '<script src="/static/lab.js" defer></script>' in text
    assert '<g data-host="primary-host" data-role="primary" data-colour="green"' in text
    assert '<g data-host="pcclient-host" data-role="client" data-colour="red"' in text
    assert 'id="refused"' in text and 'id="updated"' in text and "10.0.0.9" in text
    assert "notification icon (as the client shows it)" in text
    resp = admin.get("/lab.json")
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
    view = json.loads(resp.text)
    assert set(view) >= {"admin_api", "nodes", "links", "refused", "updated", "policy", "size"}
    assert view["admin_api"]["ok"] is True
    by_host = {n["host"]: n for n in view["nodes"]}
    assert {h: n["colour"] for h, n in by_host.items()} == {
        "primary-host": "green", "ocsp-host": "green", "gateway-host": "green", "pcclient-host": "red"}
    assert by_host["pcclient-host"]["icon"] == "yellow"
    assert view["refused"] == [{"time": "2026-01-02T10:00:00+00:00", "address": "10.0.0.9", "reason": "no certificate"}]
    assert fake.writes() == []


def test_admin_api_down_is_a_clear_message(admin, fake):
    fake.close()
    for path in ("/account", "/endpoints", "/lab"):
        resp = admin.page(path)
        assert resp.status in (200, 503), path
        assert "the primary&#x27;s admin API does not answer (is the primary running? `safeq-lab status`)" in resp.text
        assert "Traceback" not in resp.text
    view = json.loads(admin.get("/lab.json").text)
    assert view["admin_api"]["ok"] is False and "does not answer" in view["admin_api"]["error"]
    assert next(n for n in view["nodes"] if n["host"] == "primary-host")["colour"] == "red"
    admin.page("/account")
    resp = admin.post("/account", {"policy": "built-in"})
    assert resp.status == 503 and "does not answer" in resp.text


def test_logout_ends_the_session(admin, fake):
    token = admin.cookies["__Host-safeq-portal"]
    resp = admin.post("/logout", {})
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    assert "__Host-safeq-portal" not in admin.cookies
    admin.cookies["__Host-safeq-portal"] = token  # replaying the old cookie does not help
    assert admin.get("/account").status == 303


SECURITY = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


@pytest.mark.parametrize("path", ["/login", "/account", "/lab.json", "/static/lab.js", "/nowhere", "/account?x"])
def test_security_headers(admin, path):
    resp = admin.get(path)
    for name, value in SECURITY.items():
        assert resp.headers[name] == value, (path, name)


def test_security_headers_on_refusals(browser):
    browser.page("/login")
    for resp in (browser.post("/account", {}), browser.request("PUT", "/account"), browser.get("/account")):
        assert resp.headers["Content-Security-Policy"] == SECURITY["Content-Security-Policy"]


def test_no_inline_script_and_static_assets(browser):
    text = browser.page("/login").text
    assert "<script>" not in text and "onclick" not in text
    js = browser.get("/static/lab.js")
    assert js.status == 200 and "javascript" in js.headers["Content-Type"] and "/lab.json" in js.text
    assert ".innerHTML" not in js.text and ".outerHTML" not in js.text
    assert browser.get("/static/portal.css").status == 200
    assert browser.get("/static/../server.py").status == 404
    assert browser.get("/static/nothing.js").status == 404


def test_post_types_and_size(admin, fake):
    fake.calls.clear()
    resp = admin.request("POST", "/account", json.dumps({"csrf": admin.csrf}), {"Content-Type": "application/json"})
    assert resp.status == 415
    resp = admin.request("POST", "/account", b"", {"Content-Type": "application/x-www-form-urlencoded",
                                                   "Content-Length": str(8 * 1024 * 1024 + 1)})
    assert resp.status == 413 and "8 MiB" in resp.text
    assert fake.writes() == []


def test_user_input_is_escaped(admin, fake):
    fake.state["endpoints"].append({"id": 'x"><script>', "name": "<img src=x onerror=alert(1)>", "role": "client",
                                    "decision": "refused", "state": "disconnected", "reason": "<b>bold</b>",
                                    "trusted": False, "last_seen": "<i>"})
    for path in ("/endpoints", "/lab"):
        text = admin.page(path).text
        assert "<img src=x" not in text and "<b>bold" not in text and 'x"><script>' not in text
        assert "&lt;img src=x onerror=alert(1)&gt;" in text


def test_a_fault_is_a_500_page_and_a_logged_traceback(admin, portal, caplog, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(server.views, "endpoints_page", broken)
    resp = admin.get("/endpoints")
    assert resp.status == 500 and "internal error (see the portal log)" in resp.text and "boom" not in resp.text
    assert any("boom" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_actions_and_logins_are_logged_without_secrets(browser, fake, caplog):
    caplog.set_level("INFO", logger="safeq-portal")
    browser.login(USER, "a wrong one")
    browser.login()
    browser.page("/account")
    browser.post("/account", {"policy": "built-in"})
    text = caplog.text
    assert "login failed" in text and f"login: {USER}" in text and "certificate policy to built-in" in text
    assert PASSWORD not in text and "a wrong one" not in text
    assert browser.cookies["__Host-safeq-portal"] not in text


def test_shutdown_returns_quickly(fake):
    app = server.Portal(credentials=auth.Credentials(USER, PASSWORD), api=primary.Primary(fake.path))
    httpd = server.make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve, args=(httpd,), daemon=True)
    thread.start()
    idle = http.client.HTTPConnection("127.0.0.1", httpd.server_address[1], timeout=5)
    idle.connect()  # a client that sends nothing must not hold the stop up
    start = time.monotonic()
    threading.Thread(target=httpd.shutdown, daemon=True).start()  # what the SIGTERM handler does
    thread.join(2)
    assert not thread.is_alive() and time.monotonic() - start < 2
    idle.close()


def test_sigterm_handler_stops_the_server_within_2_s(fake):
    app = server.Portal(credentials=auth.Credentials(USER, PASSWORD), api=primary.Primary(fake.path))
    httpd = server.make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve, args=(httpd,), daemon=True)
    thread.start()
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.stop_on_signals(httpd)
        start = time.monotonic()
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)  # as the signal would, on the main thread
        thread.join(2)
        assert not thread.is_alive() and time.monotonic() - start < 2
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


@pytest.mark.parametrize("junk, code", [(b"\x16\x03\x01\x00\xff" + b"\x00" * 64 + b"\r\n\r\n", b"400"),
                                        (b"GARBAGE\r\n\r\n", b"400"), (b"GET /login HTTP/9.9\r\n\r\n", b"505"),
                                        (b"GET /login\r\n\r\n", b"200")])  # HTTP/0.9's request: a 1.0 answer
def test_garbage_on_the_port_gets_a_status_line_not_a_bare_page(portal, fake, junk, code):
    # http.server answers what it cannot parse as HTTP/0.9: a page without a status line or headers.
    with socket.create_connection(("127.0.0.1", portal.server_address[1]), timeout=5) as conn:
        conn.sendall(junk)
        answer = conn.recv(65536)
    status = answer.split(b"\r\n", 1)[0]
    assert re.fullmatch(rb"HTTP/1\.[01] " + code + rb" .*", status), answer[:200]
    assert b"\r\nContent-Security-Policy: " in answer
    assert fake.writes() == []
