# Two entry points: `make demo` and `make test`. Both create .venv when missing and
# (re)install the project only when pyproject.toml changed since the last install.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo_workspace

.PHONY: demo demo-geo test test-slow lint schemas venv clean bench-paths

venv: $(STAMP)

$(STAMP): pyproject.toml
	@if [ ! -x "$(PY)" ] || ! "$(PY)" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
	  interpreter=$$(tools/find-python) || exit 1; \
	  echo "Creating $(VENV) with $$interpreter"; \
	  rm -rf "$(VENV)"; "$$interpreter" -m venv "$(VENV)" || exit 1; \
	fi
	"$(PY)" -m pip install --quiet --upgrade pip
	"$(PY)" -m pip install --quiet -e ".[dev]"
	@touch "$(STAMP)"

demo: $(STAMP)
	"$(VENV)/bin/attribution" demo --workspace "$(DEMO_DIR)"

# The geo demo: a 6-geo regional panel fitted per geo, budget per geo x channel.
demo-geo: $(STAMP)
	"$(VENV)/bin/attribution" demo --geo --workspace "$(DEMO_DIR)_geo"

# One test file per worker (--dist loadfile): a file's module fixtures (a fitted model, a
# rendered report) are built once. The suite is CPU-bound (nearly 800 s of CPU, mostly
# single-threaded), so on 2 cores two workers halve its wall time.
test: $(STAMP)
	@tools/ensure-chromium
	"$(PY)" -m pytest -q -n auto --maxprocesses 4 --dist loadfile

test-slow: $(STAMP)
	"$(PY)" -m pytest -q -m slow

# Path attribution against ChannelAttribution (GPL-3: installed into .venv by this target
# only, never by `make demo` or `make test`).
bench-paths: $(STAMP)
	"$(PY)" -m pip install --quiet -e ".[bench]"
	"$(PY)" benchmarks/paths.py

lint: $(STAMP)
	"$(VENV)/bin/ruff" check src scripts tests benchmarks
	"$(VENV)/bin/ruff" format --check src scripts tests benchmarks

schemas: $(STAMP)
	"$(VENV)/bin/attribution" schemas export

clean:
	rm -rf "$(VENV)" "$(DEMO_DIR)" .pytest_cache .ruff_cache
