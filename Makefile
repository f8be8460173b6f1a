# `make demo` and `make test` set everything up themselves on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEBIAN_PACKAGES := prometheus prometheus-blackbox-exporter curl chromium systemd \
	prometheus-alertmanager bind9 unbound nginx iproute2

.PHONY: demo test lint typecheck unit system-deps bench lambda-zip clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

# Debian packages the tests use (real Prometheus, promtool, blackbox_exporter, curl, Chromium for
# the routing page's browser tests, systemd-analyze, amtool; BIND 9, unbound and nginx for the
# interop tests); root only.
system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "warning: not root, cannot install:$$missing (tests needing them are skipped)"; fi; \
	fi

demo: $(STAMP)
	$(BIN)/routewatch demo

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) system-deps
	$(BIN)/pytest -q

test: lint typecheck unit

# Accuracy and CPU cost of routewatch's probe beside curl and blackbox_exporter, on a lab world
# (~2 minutes; figures in BENCHMARKS.md). Skips a tool that is not installed. Then serve's measured
# latencies with and without 50 concurrent /metrics scrapers (~2.5 minutes), verdicts with and
# without two CPU-hog processes (busy_machine.py, ~5 minutes) and rounds at 3x3, 10x10, 20x30
# (scale.py, ~1.5 minutes), 50 services x 10 regions from one vantage point against 50
# single-service rounds and 50 checks (services.py, ~4 minutes); the Lambda handler's cold start
# (startup.py, ~1 minute), the latency estimators on the packet-level lab (estimators.py, root,
# ~3 minutes) and serve's RSS over 10,000 rounds (soak.py, ~10-25 minutes).
# valgrind: bench/startup.py counts the handler's import in instructions (callgrind), the figure
# a busy machine cannot move
bench: DEBIAN_PACKAGES += valgrind
bench: $(STAMP) system-deps
	@failed=""; for b in accuracy scrape_flood busy_machine scale services startup estimators soak; do \
	  echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py || failed="$$failed $$b"; done; \
	if [ -n "$$failed" ]; then echo "bench: missed or failed:$$failed"; exit 1; fi

# The probe's Lambda package for arm64 (pip --platform, no Docker); CONFIG=FILE bundles a config.
lambda-zip: $(STAMP)
	$(BIN)/python deploy/build_lambda_zip.py $(if $(CONFIG),--config $(CONFIG)) \
	  $(if $(PYTHON312),--bytecode-python $(PYTHON312))

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
