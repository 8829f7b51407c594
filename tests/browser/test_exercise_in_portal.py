"""A trainee fixes an exercise where the product has the step: in the portal's Trusted CA certificates
panel, uploading the CA files from the primary's certificate folder; `exercise check` says so."""
from __future__ import annotations

import json
import time

from tests.browser.conftest import ROOT, lab, log_in, shot

LAB = "browser-exercise"
EXERCISE = "ca-not-imported"


def test_a_trainee_imports_the_cas_in_the_portal_and_the_check_passes(browser):
    started = lab("exercise", "start", EXERCISE, "--force", name=LAB, timeout=900)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        check = lab("exercise", "check", name=LAB)
        assert check.returncode == 1 and "certificate_required" in check.stdout
        login = json.loads(lab("portal", "--json", name=LAB).stdout)
        page = context.new_page()
        log_in(page, {**login, "url": login["url"].rstrip("/")})
        page.goto(login["url"] + "account")
        assert page.locator("#trusted-cas tr[data-sha256]").count() == 0  # the break: none imported
        folder = ROOT / "build" / "labs" / LAB / "pki" / "hosts" / "primary-host"
        page.get_by_label("Certificate files (PEM or DER)").set_input_files(
            [str(folder / "Acme-CA-Root.cer"), str(folder / "Acme-CA-Intermediate.cer")])
        page.get_by_role("button", name="Import").click()
        assert page.locator("#trusted-cas tr[data-sha256]").count() == 2
        deadline = time.monotonic() + 60
        while (check := lab("exercise", "check", name=LAB)).returncode != 0 and time.monotonic() < deadline:
            time.sleep(1)
        assert check.returncode == 0, check.stdout
        page.goto(login["url"] + "lab")
        page.wait_for_selector("g[data-host='gateway-host'][data-colour='green']")
        shot(page, "exercise-fixed-lab")
    finally:
        context.close()
        lab("down", "--volumes", name=LAB)
        lab("clean", "--pki", name=LAB)
