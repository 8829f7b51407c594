"""The portal as an administrator uses it: log in, switch the policy, import and remove a Trusted CA by
uploading a file, trust endpoints, watch the lab live; every change checked in `safeq-lab status --json`."""
from __future__ import annotations

import re
import shutil

import pytest

from tests.browser.conftest import endpoint, lab, log_in, shot, status, wait_status
from tests.support.fixtures_openssl import CA_EXT, CLIENT_EXT, OpenSSLPKI, openssl

GATEWAY, CLIENT = "gateway-host", "pcclient-host"
CSRF_REFUSED = "refused: the form's CSRF token is missing or wrong"


def sha256_of(pem) -> str:
    out = openssl("x509", "-in", str(pem), "-noout", "-fingerprint", "-sha256").stdout
    return out.split("=", 1)[1].strip().replace(":", "").lower()


def trusted_cas(data: dict) -> list[str]:
    return sorted(ca["sha256"].replace(":", "").lower() for ca in data["account"]["trusted_cas"])


@pytest.mark.parametrize("path", ["/", "/account", "/endpoints", "/lab"])
def test_no_page_without_logging_in(anonymous, portal_lab, path):
    anonymous.goto(portal_lab["url"] + path)
    assert anonymous.url == portal_lab["url"] + "/login"
    assert anonymous.request.get(portal_lab["url"] + "/lab.json", max_redirects=0).status in (303, 403)


def test_a_wrong_password_is_refused_without_saying_which_part(anonymous, portal_lab):
    log_in(anonymous, portal_lab, password="not-" + portal_lab["password"])
    assert anonymous.url == portal_lab["url"] + "/login"
    assert anonymous.get_by_role("alert").inner_text() == "wrong user name or password"
    shot(anonymous, "login")


def test_a_form_without_its_csrf_token_or_a_session_changes_nothing(page, anonymous, portal_lab):
    url = portal_lab["url"] + "/account"
    before = status()["account"]
    for form in ({"policy": "trusted-ca"}, {"policy": "trusted-ca", "csrf": "forged"}):
        refused = page.request.post(url, form=form, max_redirects=0)  # the session's cookie, not its token
        assert refused.status == 403 and CSRF_REFUSED in refused.text()
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    assert token
    refused = anonymous.request.post(url, form={"policy": "trusted-ca", "csrf": token}, max_redirects=0)
    assert refused.status == 403  # a token without its session
    assert status()["account"] == before


def test_switching_the_policy_applies_live(page, portal_lab):
    page.goto(portal_lab["url"] + "/account")
    expect_policy = page.get_by_label("Use built-in certificates")
    assert expect_policy.is_checked()
    shot(page, "account")
    page.get_by_label("Use trusted CA certificates").check()
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").inner_text() == "Saved."
    assert page.get_by_label("Use trusted CA certificates").is_checked()
    wait_status("the trusted-ca policy", lambda d: d["account"]["certificate_policy"] == "trusted-ca")
    page.get_by_label("Use built-in certificates").check()
    page.get_by_role("button", name="Save").click()
    wait_status("the built-in policy back", lambda d: d["account"]["certificate_policy"] == "built-in")


def test_auto_trust_and_ocsp_settings_are_saved(page, portal_lab):
    page.goto(portal_lab["url"] + "/account")
    page.get_by_label("Automatically trust new clients/servers").check()
    page.get_by_label("Custom OCSP URL").fill("http://ocsp-host:8080/")
    page.get_by_role("button", name="Save").click()
    data = wait_status("auto-trust on and the custom OCSP URL", lambda d: d["account"]["auto_trust"] is True)
    assert data["account"]["ocsp"]["url"] == "http://ocsp-host:8080/" and data["account"]["ocsp"]["enabled"] is False
    page.get_by_label("Automatically trust new clients/servers").uncheck()
    page.get_by_label("Custom OCSP URL").fill("")
    page.get_by_role("button", name="Save").click()
    data = wait_status("auto-trust off again", lambda d: d["account"]["auto_trust"] is False)
    assert not data["account"]["ocsp"]["url"]


def test_import_a_ca_by_uploading_a_file_then_remove_it(page, portal_lab, tmp_path):
    ca = OpenSSLPKI(tmp_path).root("Portal Class CA", subject="/CN=Portal Class CA/O=Fixture")
    upload = tmp_path / "portal-class-ca.crt"
    shutil.copy(ca.cert_path, upload)
    sha = sha256_of(upload)
    page.goto(portal_lab["url"] + "/account")
    page.locator("input[type=file][name=file]").set_input_files(str(upload))
    page.get_by_role("button", name="Import").click()
    row = page.locator("tr", has_text="CN=Portal Class CA")
    assert row.count() == 1 and sha in row.inner_text().replace(":", "").lower()
    wait_status("the imported CA", lambda d: sha in trusted_cas(d))
    shot(page, "trusted-ca-certificates")
    row.get_by_role("button", name="Remove").click()
    assert page.locator("tr", has_text="CN=Portal Class CA").count() == 0
    wait_status("the CA removed", lambda d: sha not in trusted_cas(d))


@pytest.mark.parametrize("kind", ["garbage", "leaf"])
def test_a_bad_upload_shows_the_cli_s_error_and_changes_nothing(page, portal_lab, tmp_path, kind):
    upload = tmp_path / f"{kind}.crt"
    if kind == "garbage":
        upload.write_text("this is no certificate\n")
    else:  # an end-entity certificate offered as a CA
        pki = OpenSSLPKI(tmp_path / "pki")
        leaf = pki.issue("pc-leaf", pki.root("Leaf Issuer"), CLIENT_EXT)
        shutil.copy(leaf.cert_path, upload)
    before = trusted_cas(status())
    cli = lab("account", "import-ca", str(upload))
    assert cli.returncode != 0 and cli.stderr.startswith("error: ")
    said = cli.stderr.strip().removeprefix("error: ")
    page.goto(portal_lab["url"] + "/account")
    rows = page.locator("table tr").count()
    page.locator("input[type=file][name=file]").set_input_files(str(upload))
    page.get_by_role("button", name="Import").click()
    assert said in page.get_by_role("alert").inner_text()
    assert page.locator("table tr").count() == rows
    assert trusted_cas(status()) == before


def test_trust_an_endpoint_then_untrust_it(page, portal_lab):
    wait_status("the gateway waiting for authorization",
                lambda d: endpoint(d, GATEWAY).get("decision") == "not-trusted")
    page.goto(portal_lab["url"] + "/endpoints")
    shot(page, "endpoints")
    page.locator(f"tr[data-name='{GATEWAY}']", has=page.get_by_role("button", name="Trust")).get_by_role(
        "button", name="Trust").click()
    wait_status("the gateway trusted and connected", lambda d: endpoint(d, GATEWAY).get("decision") == "accepted"
                and endpoint(d, GATEWAY).get("state") == "connected")
    page.goto(portal_lab["url"] + "/endpoints")
    row = page.locator(f"tr[data-name='{GATEWAY}']", has=page.get_by_role("button", name="Untrust"))
    assert re.search(r"\baccepted\b", row.inner_text())
    row.get_by_role("button", name="Untrust").click()
    wait_status("the gateway untrusted", lambda d: endpoint(d, GATEWAY).get("decision") == "not-trusted")


def test_the_lab_view_follows_the_lab_without_a_reload(page, portal_lab):
    page.goto(portal_lab["url"] + "/lab")
    page.evaluate("window.stillTheSamePage = true")
    node = f"g[data-host='{CLIENT}']"
    page.wait_for_selector(f"{node}[data-colour='red']")  # built-in policy, not trusted yet
    assert lab("endpoints", "trust", CLIENT).returncode == 0
    page.wait_for_selector(f"{node}[data-colour='green']", timeout=45_000)
    page.wait_for_selector(f"tr[data-host='{CLIENT}'] [data-icon='grey']")  # the client's notification icon
    shot(page, "lab")
    assert lab("endpoints", "untrust", CLIENT).returncode == 0
    page.wait_for_selector(f"{node}[data-colour='red']", timeout=45_000)
    assert page.evaluate("window.stillTheSamePage") is True
    assert page.locator("g[data-host]").count() >= 4  # primary, OCSP responder, gateway, client
