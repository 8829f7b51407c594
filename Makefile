# safeq-pki-lab. Every target sets up the venv it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: lab-up lab-down verify test unit infra images base-image venv bench clean help

help:
	@echo "make lab-up     start the lab (PKI, images, primary setup, all healthy)"
	@echo "make test       images, unit tests (JRE reference included), then the lab up, testinfra checks, lab down"
	@echo "make verify     testinfra checks against the running lab"
	@echo "make lab-down   stop the lab (PKI kept)"
	@echo "make bench      PKI and lab timings -> bench/results/"
	@echo "make clean      remove containers, images and the lab's volumes (PKI kept; safeq-lab clean --pki drops it)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(STAMP)

base-image:
	bash scripts/base-image.sh

lab-up: $(STAMP)
	$(VENV)/bin/safeq-lab up

lab-down: $(STAMP)
	$(VENV)/bin/safeq-lab down

verify: $(STAMP)
	$(VENV)/bin/safeq-lab verify

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

# The images first: the unit suite also judges the reference fixtures on the lab's own JRE 21.
images: $(STAMP)
	$(VENV)/bin/safeq-lab build

# The lab is torn down whatever the checks say; the checks' result is the target's.
infra: $(STAMP)
	$(VENV)/bin/safeq-lab up; rc=$$?; \
	if [ $$rc -eq 0 ]; then $(VENV)/bin/safeq-lab verify; rc=$$?; fi; \
	if [ $$rc -ne 0 ]; then $(VENV)/bin/safeq-lab status || true; $(VENV)/bin/safeq-lab logs || true; fi; \
	$(VENV)/bin/safeq-lab down; exit $$rc

test: images unit infra

bench: $(STAMP)
	$(PY) bench/bench_pki.py
	$(PY) bench/bench_ocsp.py
	$(PY) bench/bench_lab.py
	$(PY) bench/bench_hostile.py
	$(PY) bench/bench_handshake.py  # after bench_hostile: the images are built

clean: $(STAMP)
	$(VENV)/bin/safeq-lab clean
