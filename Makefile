# snnbp: `make` lists the targets. Two commands matter: `make smoke` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu
SHARED_DATA := $(abspath ../shared/data)

# Read-only real data (N-MNIST recordings, FSDD, Caltech, EMNIST test splits, HM2-BP golden test).
ifneq ($(wildcard $(SHARED_DATA)),)
export SNNBP_DATA_ROOT ?= $(SHARED_DATA)
endif
# Keep Jupyter's state inside the project, independent of the user's home.
export JUPYTER_CONFIG_DIR := $(CURDIR)/.build/jupyter/config
export JUPYTER_DATA_DIR := $(CURDIR)/.build/jupyter/data
export JUPYTER_RUNTIME_DIR := $(CURDIR)/.build/jupyter/runtime
export PYTHONHASHSEED := 0

.DEFAULT_GOAL := help
.PHONY: help env data smoke reproduce table test lint unit nbval lab bench docs clean-smoke

help: ## list the targets
	@echo "snnbp targets (make <target>):"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-12s %s\n", $$1, $$2}'

env: $(VENV)/.installed ## create .venv once and install snnbp with its dev tools (idempotent)

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

data: env ## fetch MNIST and Fashion-MNIST (sha256-verified), synthesise the spoken letters, install the system packages they need
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && [ ! -f data/fashion_mnist/t10k-labels-idx1-ubyte ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -qq dataset-fashion-mnist >/dev/null || echo "note: apt-get could not install dataset-fashion-mnist"; fi
	$(PY) -m snnbp fetch
	@if ! command -v espeak-ng >/dev/null || ! command -v flite >/dev/null; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			apt-get install -y -qq espeak-ng flite >/dev/null 2>&1 || echo "note: apt-get could not install espeak-ng and flite"; fi; fi
	@if command -v espeak-ng >/dev/null && command -v flite >/dev/null; then $(PY) -m snnbp.data.synth_letters; \
		else echo "note: espeak-ng/flite missing, synthetic spoken letters not generated (apt-get install -y espeak-ng flite)"; fi

smoke: env data ## run every numbered notebook with its smoke defaults (Papermill) into results/smoke/, print the table
	$(PY) -m snnbp smoke
	$(PY) -m snnbp table

reproduce: env data ## run every params/$(PROFILE)/*.yaml through its notebook (PROFILE=cpu|paper)
	$(PY) -m snnbp run params/$(PROFILE)/*.yaml
	$(PY) -m snnbp table --write-readme

table: env ## join every completed results/*/*/metrics.json with the papers' numbers (results/summary.csv, .md, README; no smoke rows)
	$(PY) -m snnbp table --write-readme

test: env data lint unit nbval ## lint, unit tests, then the notebooks' stored outputs as a regression test (pytest --nbval)

lint: env ## ruff: lint and format check of lib/, tests/ and benchmarks/ (settings in pyproject.toml)
	$(VENV)/bin/ruff check lib tests benchmarks
	$(VENV)/bin/ruff format --check lib tests benchmarks

unit: env ## unit tests only
	$(PY) -m pytest tests -q -n 2 --dist loadfile

nbval: env ## pytest --nbval on the committed notebooks (strict, sanitised)
	TQDM_DISABLE=1 $(PY) -m pytest --nbval notebooks -p no:cacheprovider --nbval-sanitize-with tests/nbval_sanitize.cfg -n 2 --dist loadfile -q

bench: env data $(VENV)/.bench-installed ## install the peer libraries (bench extra, pip --no-deps), run the benchmarks (quick mode) into benchmarks/results/
	$(PY) benchmarks/bench_hm2bp.py --quick
	$(PY) benchmarks/bench_stdbp.py --quick
	$(PY) benchmarks/bench_yoso.py --quick

# The bench extra of pyproject.toml, installed without dependencies: spikingjelly's metadata would
# pull an unpinned torch (a multi-GB CUDA build), torchvision and torchaudio. Loguru needs nothing on Linux.
BENCH_EXTRA = $(shell $(PY) -c "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['bench']))")

$(VENV)/.bench-installed: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install --quiet --no-deps $(BENCH_EXTRA)
	$(PY) -c "import torch, snntorch, spikingjelly.activation_based.neuron, loguru; print('torch', torch.__version__, '| snntorch', snntorch.__version__)"
	touch $@

lab: env data ## start JupyterLab on the notebooks
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

docs: env ## API documentation from the docstrings (pdoc) into .build/docs/; any pdoc warning is an error
	rm -rf .build/docs
	$(PY) -W error -W "ignore::DeprecationWarning" -W "ignore::PendingDeprecationWarning" -m pdoc --docformat google -o .build/docs snnbp
	@echo "API documentation: .build/docs/index.html"

clean-smoke: ## remove results/smoke/
	rm -rf results/smoke
