# safeq-pki-lab. Every target sets up the venv it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

ENSURE_DOCKER ?= scripts/ensure-docker.sh
# seconds for it: apt installs the engine on a fresh machine
ENSURE_TIMEOUT ?= 1800

.PHONY: lab-up lab-down verify test unit infra scenarios browser images base-image venv bench clean help docker-ready

help:
	@echo "make lab-up     start the lab (PKI, images, primary setup, all healthy)"
	@echo "make test       images, unit tests (JRE reference included), the lab up, testinfra checks, lab down, the scenario catalog, the portal in chromium"
	@echo "make verify     testinfra checks against the running lab"
	@echo "make scenarios  the scenario catalog, two labs reset between scenarios (build/scenarios/report.xml)"
	@echo "make browser    the web portal in Debian's chromium, in a lab of its own (screenshots: build/browser/)"
	@echo "make lab-down   stop the lab (PKI kept)"
	@echo "make bench      PKI and lab timings -> bench/results/"
	@echo "make clean      remove containers, images and the lab's volumes (PKI kept; safeq-lab clean --pki drops it)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(STAMP)

# A fresh Debian machine has no Docker: the script installs the engine with Compose v2 and starts
# it (as root; elsewhere it says what to install). When both answer it is not run at all.
# --foreground: sudo may ask for a password on the terminal.
docker-ready:
	@if timeout 20 docker info >/dev/null 2>&1 && timeout 20 docker compose version >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then timeout $(ENSURE_TIMEOUT) bash $(ENSURE_DOCKER); \
	elif command -v sudo >/dev/null 2>&1; then \
	  echo "make: Docker Engine or Compose v2 is missing here: running 'sudo $(ENSURE_DOCKER)' to install and start them (sudo may ask for your password)"; \
	  timeout --foreground $(ENSURE_TIMEOUT) sudo bash $(ENSURE_DOCKER); \
	else timeout $(ENSURE_TIMEOUT) bash $(ENSURE_DOCKER); fi

base-image:
	bash scripts/base-image.sh

lab-up: docker-ready $(STAMP)
	$(VENV)/bin/safeq-lab up

lab-down: $(STAMP)
	$(VENV)/bin/safeq-lab down

verify: $(STAMP)
	$(VENV)/bin/safeq-lab verify

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

# The images first: the unit suite also judges the reference fixtures on the lab's own JRE 21.
images: docker-ready $(STAMP)
	$(VENV)/bin/safeq-lab build

# The lab is torn down whatever the checks say; the checks' result is the target's.
infra: docker-ready $(STAMP)
	$(VENV)/bin/safeq-lab up; rc=$$?; \
	if [ $$rc -eq 0 ]; then $(VENV)/bin/safeq-lab verify; rc=$$?; fi; \
	if [ $$rc -ne 0 ]; then $(VENV)/bin/safeq-lab status || true; $(VENV)/bin/safeq-lab logs || true; fi; \
	$(VENV)/bin/safeq-lab down; exit $$rc

# The scenario catalog in two labs side by side, each reset between scenarios; reports in build/scenarios/.
scenarios: docker-ready $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests/scenarios

# The web portal in a real browser: Debian's chromium (apt-get install chromium) driven by Playwright.
browser: docker-ready $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests/browser

test: docker-ready images unit infra scenarios browser

bench: $(STAMP)
	$(PY) bench/bench_pki.py
	$(PY) bench/bench_ocsp.py
	$(PY) bench/bench_lab.py
	$(PY) bench/bench_labs.py   # 8 labs side by side: memory per lab, idle CPU
	$(PY) bench/bench_catalog.py  # the scenario catalog, 2 and 3 labs side by side
	$(PY) bench/bench_scale.py    # many gateways and clients in one lab, and a primary restart
	$(PY) bench/bench_hostile.py
	$(PY) bench/bench_handshake.py  # after bench_hostile: the images are built
	$(VENV)/bin/safeq-lab up && $(PY) bench/bench_tls.py; rc=$$?; $(VENV)/bin/safeq-lab down; exit $$rc

clean: $(STAMP)
	$(VENV)/bin/safeq-lab clean
