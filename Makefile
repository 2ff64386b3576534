# Two commands for a newcomer: `make lab` (run the whole series headless) and `make test`.
# Both set up everything first; re-running skips what is already in place.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: lab test unit nbtest refresh jupyter bench setup system-deps clean down schemas

setup: system-deps $(STAMP)

# pyproject.toml is the one list of dependencies; the stamp re-installs only when it changes.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# Debian packages the series needs (Prometheus is the real one the local target scrapes with).
system-deps:
	@if ! command -v prometheus >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian package: prometheus"; \
	    (apt-get install -y -qq prometheus >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq prometheus)) ; \
	  else \
	    echo "missing Debian package 'prometheus': run  sudo apt-get install -y prometheus"; exit 1; \
	  fi; \
	fi

lab: setup
	$(PY) -m lab_helpers run --target local $(ARGS)

test: setup unit nbtest

unit:
	$(PY) -m pytest tests -q $(ARGS)

nbtest:
	$(PY) -m lab_helpers nbtest --target local

refresh: setup
	$(PY) -m lab_helpers refresh $(ARGS)

bench: setup
	$(PY) -m lab_helpers bench gateway

jupyter: setup
	$(PY) -m pip install --quiet -e '.[test,jupyter]'
	@# JupyterLab refuses to start as root without --allow-root; CI machines and containers often are root.
	@if [ "$$(id -u)" = 0 ]; then echo "running as root: starting JupyterLab with --allow-root"; \
	  $(PY) -m jupyter lab notebooks/ --allow-root; else $(PY) -m jupyter lab notebooks/; fi

# Maintainers: re-make lab_helpers/schemas/crds from upstream CRD files (CRDS=folder; default: the reference folder).
schemas: $(STAMP)
	$(PY) -m lab_helpers.manifests.schemas.generate $(if $(CRDS),--crds $(CRDS))

down:
	$(PY) -m lab_helpers down

clean: down
	rm -rf build .lab
