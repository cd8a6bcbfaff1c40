# make train | make test | make lint; ARGS="..." passes Hydra overrides to train.py
# make lock: record the venv's exact versions in constraints.txt; make upgrade: move to the newest allowed versions
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: install train test test-fast lint format lock upgrade clean

install: $(STAMP)

# re-installs only when pyproject.toml or constraints.txt is newer than the last install; constraints.txt pins every
# package to the versions the test suite passed with, so a fresh machine gets exactly that set
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

train: install
	$(PY) train.py $(ARGS)

test: install
	$(PY) -m pytest $(ARGS)

test-fast: install
	$(PY) -m pytest -m "not slow" $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# exact name==version lines of everything installed but this project itself
lock: install
	$(PY) -m pip freeze --exclude-editable --disable-pip-version-check | grep -E '^[A-Za-z0-9._-]+==' > constraints.txt

# the newest versions pyproject.toml allows, without the pins; then `make test`, and `make lock` to keep them
upgrade: install
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade --upgrade-strategy eager -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
