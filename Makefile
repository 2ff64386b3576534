# Two commands for a newcomer: `make lab` (run the whole series headless) and `make test`.
# Both set up everything first; re-running skips what is already in place.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The local Triton "image": nvidia-pytriton's tritonserver in its own venv (0.7.0 needs numpy<2; the lab has numpy 2).
TRITON_VENV := .venv-triton
TRITON_STAMP := $(TRITON_VENV)/.installed
TRITON_PYTHON ?= python3.11
TRITON_PACKAGES := nvidia-pytriton==0.7.0 'numpy<2' 'onnxruntime>=1.32.0'
ARGS ?=

.PHONY: lab test unit nbtest refresh jupyter bench setup system-deps triton-image clean down schemas site

setup: system-deps $(STAMP) triton-image

# pyproject.toml is the one list of dependencies; the stamp re-installs only when it changes.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# The stub of the wheel's Python backend is built for CPython 3.11 and links Debian's libpython3.11.
triton-image: $(TRITON_STAMP)

$(TRITON_STAMP): $(STAMP) Makefile
	@test -x $(TRITON_VENV)/bin/python || $(TRITON_PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TRITON_VENV)/bin/python -m pip install --quiet $(TRITON_PACKAGES)
	$(PY) -m lab_helpers.runtime.triton_image
	@touch $@

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
	@# wrk: the C load generator of `bench runtimes`; libpython3.11: what Triton's Python-backend stub links;
	@# hey: what the local Flagger load tester runs for a canary's rollout webhook; prometheus-pushgateway:
	@# where the drift job pushes its gauges; chromium + chromium-driver: the headless browser the site's check drives.
	@for pkg in wrk libpython3.11 hey prometheus-pushgateway chromium chromium-driver; do \
	  dpkg -s $$pkg >/dev/null 2>&1 && continue; \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian package: $$pkg"; \
	    (apt-get install -y -qq $$pkg >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq $$pkg)); \
	  else \
	    echo "missing Debian package '$$pkg': run  sudo apt-get install -y $$pkg"; exit 1; \
	  fi; \
	done

lab: setup
	$(PY) -m lab_helpers run --target local $(ARGS)

test: setup unit nbtest

unit:
	$(PY) -m pytest tests -q $(ARGS)

nbtest:
	$(PY) -m lab_helpers nbtest --target local

# Rebuild build/site/ from build/executed/ (no re-run) and open every page in headless Chromium.
site: setup
	$(PY) -m lab_helpers site --check

refresh: setup
	$(PY) -m lab_helpers refresh $(ARGS)

# Every benchmark of docs/benchmarks.md, one after the other (the local target's ones start it as needed).
bench: setup
	$(PY) -m lab_helpers bench gateway
	$(PY) -m lab_helpers bench runtimes
	$(PY) -m lab_helpers bench coldstart
	$(PY) -m lab_helpers bench canary
	$(PY) -m lab_helpers bench policy
	$(PY) -m lab_helpers bench inference_logger
	$(PY) -m lab_helpers bench compare

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
