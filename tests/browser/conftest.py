"""The web portal in a real browser: Debian's chromium driven by Playwright, against a lab of its own.

The lab (`--lab browser`) starts with the built-in certificates and auto-trust off, the product's
default, so that endpoint authorization has something to do; what each test changes it puts back.
Screenshots of each page go to build/browser/ (the run's output).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAB = "browser"
CHROMIUM = os.environ.get("SAFEQ_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "build" / "browser"
WAIT = 45  # seconds a change may take to show in `status --json` (sessions re-judged, reconnects)


def lab(*args: str, timeout: float = 120, name: str = LAB) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab.cli", "--lab", name, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def status() -> dict:
    proc = lab("status", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def endpoint(data: dict, name: str) -> dict:
    """The record standing for a host: the connected one, else the one seen last (as the lab shows it)."""
    from safeqlab.records import current_record
    return current_record(data["endpoints"], name) or {}


def wait_status(what: str, test) -> dict:
    """`status --json` until ``test`` holds; the last one shown when it never does."""
    deadline = time.monotonic() + WAIT
    while True:
        data = status()
        if test(data):
            return data
        if time.monotonic() > deadline:
            raise AssertionError(f"status --json never showed {what}: {json.dumps(data, indent=1)[:3000]}")
        time.sleep(1)


@pytest.fixture(scope="session")
def portal_lab(browser):  # the browser first: without chromium no lab is started for nothing
    up = lab("up", "--policy", "built-in", timeout=900)
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        login = json.loads((ROOT / "build" / "labs" / LAB / "portal-login.json").read_text())
        state = json.loads((ROOT / "build" / "labs" / LAB / "lab.json").read_text())
        url = f"http://127.0.0.1:{state['env']['SAFEQ_PORTAL_PORT']}"
        assert f"web portal: {url}/  user {login['user']}  password {login['password']}" in up.stdout
        yield {"url": url, **login}
    finally:
        if up.returncode != 0:
            print(lab("logs").stdout[-5000:])
        lab("down", "--volumes")
        lab("clean", "--pki")


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests drive Debian's chromium (apt-get install chromium)")
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, portal_lab):
    """A fresh browser context (no cookies), logged in."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    log_in(tab, portal_lab)
    yield tab
    context.close()


@pytest.fixture
def anonymous(browser):
    context = browser.new_context()
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def log_in(tab, portal_lab, password: str | None = None) -> None:
    tab.goto(portal_lab["url"] + "/login")
    tab.get_by_label("User name").fill(portal_lab["user"])
    tab.get_by_label("Password").fill(password or portal_lab["password"])
    tab.get_by_role("button", name="Log in").click()


def shot(tab, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path
