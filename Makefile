# Two entry points: `make demo` runs the main example, `make test` runs every check.
# `make demo-local` runs the demo on a real model served on this machine (see README).
# Both create or refresh .venv on a fresh machine; everything is idempotent.

VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.ledgerflow-installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo demo-local test venv system-deps llm-deps lint typecheck pytest pytest-roundtrip pytest-threads bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: venv
	@$(PY) examples/demo.py

# The Magentic demo driven by SmolLM2-135M on llama-cpp-python's server (127.0.0.1, a free
# port), offline once llm-deps has built the server's venv. Exits with the demo's status.
demo-local: venv llm-deps
	@OPENAI_MAX_TOKENS=$${OPENAI_MAX_TOKENS:-256} OPENAI_TIMEOUT=$${OPENAI_TIMEOUT:-600} \
		$(PY) -m tests.llm.local_server -- $(PY) examples/demo.py

# The real LLM server for tests/llm and demo-local, in its own cached venv: the first build
# compiles llama.cpp (~8-20 min on 2 cores), later runs reuse it (LEDGERFLOW_SKIP_LLM=1 skips).
llm-deps:
	@bash .ci/llm-venv.sh

# System packages the tests need: dot (graphviz), bubblewrap (code sandbox), PostgreSQL,
# Chromium (the Studio's browser tests).
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

# The core, agents, teams, durable and diagram suites again on the test backends that prove
# the dispatch seam (workflow/_backend_testing.py): every invocation crossing it as checkpoint
# JSON (roundtrip), then every invocation on a worker thread's own event loop (threads). What
# leaks across the seam fails here. asyncio callers only (test_backend_testing covers trio
# callers of both backends); subprocess-based, sandbox and server tests (their workflows run
# in a child process, never on these backends) are left to the first pass.
SEAM_ARGS ?= -k "not trio" tests/workflow tests/executors tests/builders tests/visualize \
	--ignore=tests/workflow/service --ignore=tests/workflow/test_crash.py \
	--ignore=tests/workflow/test_cli.py --ignore=tests/executors/test_sandbox.py \
	--ignore=tests/executors/test_code_executor.py \
	--ignore=tests/executors/test_mcp_server.py --ignore=tests/executors/test_serve_interop.py \
	--ignore=tests/workflow/test_cli_spec.py
pytest-roundtrip: venv
	@LEDGERFLOW_TEST_BACKEND=roundtrip bash .ci/with-postgres.sh $(VENV)/bin/pytest -q $(SEAM_ARGS)
pytest-threads: venv
	@LEDGERFLOW_TEST_BACKEND=threads bash .ci/with-postgres.sh $(VENV)/bin/pytest -q $(SEAM_ARGS)

test: venv system-deps llm-deps lint typecheck pytest pytest-roundtrip pytest-threads

bench: venv
	@$(PY) benchmarks/bench.py

clean:
	rm -rf $(VENV) .ledgerflow .mypy_cache .ruff_cache .hypothesis
