# The two commands a new user needs: `make demo` and `make test`.
# Only Python 3.11, make and git are assumed; uv is installed into .tools/.

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
# The QuickFIX binding compiles for minutes the first time: it is installed only
# where the FIX interoperability tests must run (CI sets OMS_REQUIRE_SERVICES=1)
# or when asked for with `make test INTEROP=1`.
INTEROP ?= $(OMS_REQUIRE_SERVICES)
GROUPS := --group dev $(if $(filter 1,$(INTEROP)),--group interop,)
PYTEST_ARGS ?=

.PHONY: help install install-dev demo demo-data serve test lint format check bench clean

help:
	@echo "make demo   install, create the embedded database, load demo data, start every process"
	@echo "make test   install and run the whole test suite"
	@echo "make lint   ruff, the layer contracts, Django system checks, migrations check"

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

install: $(UV)
	$(UV) sync --frozen --inexact

install-dev: $(UV)
	$(UV) sync --frozen --inexact $(GROUPS)

demo: install
	@mkdir -p var
	$(MANAGE) migrate --noinput
	$(MANAGE) collectstatic --noinput --verbosity 0
	$(MANAGE) load_demo_data
	$(MANAGE) export_prices var/fix-prices.json
	$(MANAGE) demo_banner
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho start --procfile Procfile --port $${PORT:-8000}

test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

# The checks read the settings but serve nothing: outside the embedded demo the
# settings refuse to load without a SECRET_KEY, so lint brings a key of its own.
LINT_ENV := SECRET_KEY=$${SECRET_KEY:-lint-only-key-signs-nothing}

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(LINT_ENV) $(MANAGE) check --fail-level WARNING
	$(LINT_ENV) $(MANAGE) makemigrations --check --dry-run
	$(LINT_ENV) $(MANAGE) spectacular --validate --fail-on-warn --file /dev/null

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install-dev
	$(PY) bench/drift.py

clean:
	rm -rf $(VENV) .tools var .pytest_cache
