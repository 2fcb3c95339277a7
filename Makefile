# The two commands: `make demo` and `make test`. Both install what they need first, Python packages into the
# checkout's own virtual environment (.venv), never into a machine-wide Python.
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python3
BUILDIFIER := .tools/node_modules/.bin/buildifier
STARLARK_FILES = $$(git ls-files '*.bzl' '*.bazel' 'WORKSPACE' '*/WORKSPACE' 'MODULE.bazel' '*/MODULE.bazel')
# The virtual environment comes first, as if activated: its releasekit and check-jsonschema, and the python3 that
# release targets (RELEASEKIT_PYTHON) and build actions run. tests/bazel/bazel points build actions at it too.
export PATH := $(abspath $(VENV))/bin:$(PATH)
export RELEASEKIT_PYTHON := $(abspath $(PYTHON))

.PHONY: install demo test lint bench

install:
	@bash tools/install.sh

demo: install
	@$(PYTHON) examples/run_demo.py

# --durations=15: every CI log names the suite's slowest tests.
test: install lint
	@$(PYTHON) -m pytest --durations=15

lint: install
	@$(BUILDIFIER) -mode=check -lint=warn --warnings=all $(STARLARK_FILES)
	@echo "buildifier: all Starlark files pass"
	@$(PYTHON) -m ruff check --quiet .
	@echo "ruff: all Python files pass (pyproject.toml's [tool.ruff])"

bench: install
	@$(PYTHON) benchmarks/push.py
	@$(PYTHON) benchmarks/collect.py
	@$(PYTHON) benchmarks/maven.py
	@$(PYTHON) benchmarks/dispatch.py --startup-limits 1,2,3,4,8
	@$(PYTHON) benchmarks/faults.py
	@$(PYTHON) benchmarks/insight.py
	@$(PYTHON) benchmarks/target_graphs.py
	@$(PYTHON) benchmarks/ci_replay.py
