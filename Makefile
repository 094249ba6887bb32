# cvkit: the README's two commands are `make demo` and `make test`. Each sets itself up first:
# a local virtual environment (.venv) with the pinned requirements, reused on later runs.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.cvkit-installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup browser demo test test-fast bench figures docs dist clean

## setup: create .venv and install the pinned requirements (skipped when already up to date)
setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "cvkit needs Python 3.11, found " + sys.version.split()[0]'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet "pip>=24"
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	touch $(STAMP)

## browser: Debian's chromium + chromium-driver for the real-browser widget test
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && [ -d /usr/share/fonts/truetype/dejavu ]; then echo "chromium: $$(/usr/bin/chromium --version 2>/dev/null)"; \
	else $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core fonts-liberation; fi

## demo: annotate -> train -> evaluate -> deploy on sample_data/ (notebooks run by papermill into runs/)
demo: setup
	$(PY) scripts/run_demo.py

## test: the whole test suite (unit tests, notebooks under nbval, the real-browser test)
test: setup browser
	$(VENV)/bin/pytest

## test-fast: the developer's lane (under 5 minutes): everything but the tests marked slow (training, notebooks,
## the Ray cluster, int8 conversions) and the browser tests. CI runs `make test`, which runs everything.
test-fast: setup
	$(VENV)/bin/pytest -m "not slow and not browser"

## bench: the benchmarks in bench/, each printing JSON
bench: setup
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

## figures: regenerate the figures and screenshots under docs/ (shown in the README)
figures: setup browser
	for s in scripts/make_docs_*.py scripts/make_widget_screenshots.py; do [ -f $$s ] && $(PY) $$s || exit 1; done

## docs: the API reference, from the docstrings, into docs/_build/html (warnings are errors;
## tests/test_docs.py builds it the same way, so CI does too)
docs: setup
	$(PY) -m sphinx -W --keep-going -b html docs/api docs/_build/html

## dist: the sdist and the wheel in dist/ (tests/test_release.py builds them too and installs the wheel)
dist: setup
	$(PY) -m build --outdir dist .

clean:
	rm -rf runs test-artifacts .pytest_cache docs/_build
