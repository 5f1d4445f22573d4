# Two entry points: `make demo` runs the main example, `make test` runs every check.
# Both create or refresh .venv on a fresh machine; everything is idempotent.

VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.ledgerflow-installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo test venv system-deps lint typecheck pytest bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: venv
	@$(PY) examples/demo.py

# System packages the tests need: dot (graphviz), bubblewrap (code sandbox), PostgreSQL.
# Installed only when missing and only as root; elsewhere the tests that need them skip
# (and fail when CI=true).
system-deps:
	@bash .ci/system-deps.sh

lint: venv
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check workflow builders executors visualize

typecheck: venv
	@$(VENV)/bin/mypy

pytest: venv
	@bash .ci/with-postgres.sh $(VENV)/bin/pytest -q $(PYTEST_ARGS)

test: venv system-deps lint typecheck pytest

bench: venv
	@$(PY) benchmarks/bench.py

clean:
	rm -rf $(VENV) .ledgerflow .mypy_cache .ruff_cache .hypothesis
