# Headroom: one entry point for every check. `make test` is what CI runs.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
QUIET_PIP := 2>&1 | { grep -v 'is ignored: it is neither' || true; }
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# Most of the suite waits on real processes (Redis migrations, operators, Prometheus): on
# two workers a CI run used half of its 2 cores (pytest 1045 s, make test 19.4 min). Three
# workers, the long tests one after another on one of them and the rest longest first
# (tests/conftest.py), with lint beside them: worksteal simulated on measured durations
# goes from 1379 s to 898 s; a shared machine at load 4-7 measured pytest 1384 s -> ~1150 s.
# About 14 min for make test on CI is the estimate. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 3

.PHONY: all demo test test-fast lint unit bench venv sysdeps sysdeps-redis clean crds registry image sysdeps-image \
	playground sysdeps-playground

all: test

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { .ci/install-system-deps venv && rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip $(QUIET_PIP)
	$(PY) -m pip install -q -e '.[test]' $(QUIET_PIP)
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

sysdeps-redis:
	@.ci/install-system-deps redis

sysdeps:
	@.ci/install-system-deps all

# mypy runs strict over policies/ controller/ cli/ as headroom.* through .ci/typecheck.py
# (it cannot follow the editable install's import finder), with tests/ and bench/.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(PY) .ci/typecheck.py tests bench .ci/typecheck.py
	$(BIN)/lint-imports

unit: venv
	$(BIN)/pytest

# Lint (a minute of mypy from a fresh clone) runs beside the suite, whose workers mostly
# wait: its output is shown as one block when it ends, and either failing fails the target.
test: sysdeps venv
	@{ $(MAKE) --no-print-directory lint >$(VENV)/lint.log 2>&1 && rc=0 || rc=$$?; \
	   echo "----- make lint (run beside the tests): exit $$rc -----"; cat $(VENV)/lint.log; \
	   exit $$rc; } & lint=$$!; \
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal --durations=25 && tests=0 || tests=$$?; \
	wait $$lint && linted=0 || linted=$$?; \
	if [[ $$linted -ne 0 ]]; then echo "make test: make lint failed (its output is above)" >&2; fi; \
	exit $$(( tests ? tests : linted ))

# The inner loop: every test not marked slow (no operator e2e, no reshard, no image), no lint.
test-fast: venv
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal -m "not slow" -q

demo: sysdeps-redis venv
	$(BIN)/headroom demo

bench: sysdeps venv
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build dist headroom.egg-info .mypy_cache .ruff_cache .pytest_cache .import_linter_cache

# Generated from the plug-in registries (controller/targets/registry.py TARGETS,
# controller/signals/registry.py SOURCES, controller/alerts/config.py SINKS): the policy
# schema's names (policies/plugins.py), the chart's target RBAC rules
# (templates/rbac/_target_rules.tpl) and the docs' tables (docs/adding-a-*.md).
registry: venv
	$(PY) -m tests.support.registry_files

# The chart's CapacityPolicy and DemandEvent CRDs are generated from the pydantic models,
# whose plug-in names come from the registries: `make crds` regenerates both.
crds: registry
	$(PY) -m tests.support.crd_templates

# The operator image (Containerfile) built with podman on a Debian base made by mmdebstrap:
# dist/headroom-<version>.oci.tar for `docker load` / `podman load`.
image: sysdeps-image
	.ci/build-image

sysdeps-image:
	@.ci/install-system-deps image

# The operator (from the image when built, else the venv) against the Kubernetes API
# emulator and kubelet emulator, with the chart's CRDs and RBAC, for kubectl. Ctrl-C stops it.
playground: sysdeps-playground venv
	$(PY) -m tests.harness.playground

sysdeps-playground:
	@.ci/install-system-deps playground
