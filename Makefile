# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test unit lint docs man bench compiled clean venv

venv: $(STAMP)

$(STAMP): setup.py pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "python3 -m venv failed; installing Debian's python3-venv" >&2; \
	  rm -rf $(VENV) && apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q -U pip
	# --no-compile: byte-compiling every installed module takes longer than the install itself;
	# what is imported is compiled on first import instead
	$(BIN)/python -m pip install -q --no-compile -e '.[test,plot,docs,dev]'
	# dynalite, a second DynamoDB implementation for the state-table tests (skipped without it)
	if command -v npm >/dev/null; then npm install --prefix $(VENV) --no-audit --no-fund --silent dynalite@4 \
	  || echo "dynalite not installed: its tests are skipped" >&2; fi
	touch $(STAMP)

# 3 workers on 2 cores: the end-to-end tests mostly wait on subprocesses; loadgroup runs the busiest
# daemon tests (xdist_group "daemons") on one worker, one after another
test: lint  # ruff and mypy first: a finding fails the run in seconds
	$(BIN)/python -m pytest -n 3 --dist loadgroup -q tests
	$(BIN)/python -m sphinx -W -q -b html docs docs/_build/html

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests -m "not e2e"

demo: $(STAMP)
	$(BIN)/python examples/demo.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

man: $(STAMP)
	$(BIN)/python -m sphinx -q -b man docs docs/_build/man
	cp docs/_build/man/dynamic-dynamodb.1 docs/dynamic-dynamodb.1

docs: $(STAMP)
	$(BIN)/python -m sphinx -W -b html docs docs/_build/html

# the policy core and the simulator compiled by mypyc (setup.py's COMPILED), beside the sources, not among
# them: a stale extension next to its .py would shadow it. Rebuilt when a source changes.
COMPILED_DIR := build/compiled
COMPILED_STAMP := $(COMPILED_DIR)/.built
compiled: $(COMPILED_STAMP)

$(COMPILED_STAMP): $(STAMP) setup.py pyproject.toml $(wildcard dynamic_dynamodb/*.py dynamic_dynamodb/simulation/*.py)
	rm -rf $(COMPILED_DIR) build/mypyc build/setup
	DYNAMIC_DYNAMODB_COMPILE=1 $(BIN)/python setup.py -q build --build-base build/setup --build-lib $(COMPILED_DIR)
	touch $@

# simulate.py measures both builds: the pure one, then the compiled one (PYTHONPATH)
bench: $(STAMP) $(COMPILED_STAMP)
	$(BIN)/python benchmarks/simulate.py
	PYTHONPATH=$(COMPILED_DIR) $(BIN)/python benchmarks/simulate.py --recommended-only
	$(BIN)/python benchmarks/policy_quality.py
	$(BIN)/python benchmarks/scale.py

clean:
	rm -rf $(VENV) docs/_build build *.egg-info .pytest_cache
