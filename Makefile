# Two entry points for a fresh machine with Python 3.11+:
#   make demo   - the main job: `kalepool demo` on the embedded defaults
#   make test   - lint, types and the whole test suite
# Each creates .venv from the pinned constraints on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kalepool-installed
# pytest-xdist workers: the slow tests (end-to-end pools, the demo) mostly wait for blocks
# to close, so two workers halve the wall time even on two cores. PYTEST_WORKERS=0: serial.
PYTEST_WORKERS ?= 2

.PHONY: venv test lint typecheck pytest demo bench clean lock chromium

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "kalepool needs Python 3.11 or newer (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[dev]'
	touch $(STAMP)

test: $(STAMP) chromium
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) chromium
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

# The dashboard's browser tests drive Debian's Chromium (Playwright cannot download a
# browser here): install the package when it is missing (as root, e.g. in CI).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: $(STAMP)
	$(BIN)/kalepool demo

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Re-pin: resolve the newest allowed versions into requirements/constraints.txt
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet '.[dev]'
	.venv-lock/bin/pip freeze --exclude kalepool > requirements/constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
