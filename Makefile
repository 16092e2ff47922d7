# d2lopt: `make lab` to read, `make test` to check. Both set up .venv when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The PyTorch build to install: 2.13.0, the version the stored outputs come from. From PyPI,
# Linux gets the CUDA build (with NVIDIA libraries, several GB) and macOS/Windows a CPU build.
# TORCH_INDEX=cpu takes PyTorch's own CPU-only wheels instead (Linux: a few hundred MB);
# TORCH_INDEX=cu126 (etc.) a given CUDA build. PIP_TORCH_ARGS passes anything else to that pip.
TORCH  ?= torch==2.13.0
TORCH_INDEX ?=
PIP_TORCH_ARGS ?= $(if $(TORCH_INDEX),--index-url https://download.pytorch.org/whl/$(TORCH_INDEX))
JOBS   ?= 2
STAMP  := $(VENV)/.installed

# One thread per kernel, no live plots, CPU only: the world the stored outputs were made in.
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export PYTHONHASHSEED := 0
export D2L_NO_ANIMATION := 1
export PYTHONPATH := $(CURDIR)

NB_SRC := $(sort $(wildcard chapters/[0-9]*.md))
NB     := $(NB_SRC:.md=.ipynb)
NBCONVERT := $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	--ExecutePreprocessor.timeout=600 --ExecutePreprocessor.kernel_name=python3 \
	--ExecutePreprocessor.record_timing=False

.PHONY: help setup lab test test-unit test-notebooks test-kernels check-notebooks sync execute html bench \
	test-cuda assignments grade clean

help:
	@echo "make lab          set up (if needed) and open JupyterLab on chapters/"
	@echo "make test         set up (if needed), unit tests + every notebook against its stored outputs"
	@echo "make test-kernels  every notebook under each CPU kernel set this machine offers"
	@echo "make execute      regenerate notebooks' stored outputs from the .md sources (NB=chapters/03-gd.md for one)"
	@echo "make html         the book site from the executed notebooks: build/html/index.html, works offline"
	@echo "make test-site    build the site and check it in headless Chromium (math, navigation, search)"
	@echo "make site-screenshots  PNGs of a few site pages under build/site-screenshots"
	@echo "make test-cuda    execute every notebook on a CUDA device (execution only)"
	@echo "make bench        time the notebooks and the trainers' overhead"
	@echo "make assignments  student copies under build/assignments"
	@echo "make grade SUBMISSIONS=dir   grade submitted notebooks"

# One stamp per set of extras: `make html` adds the `site` extra to a venv set up without it.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
SITE_STAMP   := $(VENV)/.installed-site
setup: $(STAMP) $(LAB_SETTINGS)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { \
	  echo "d2lopt needs Python >= 3.10 (so does torch 2.13); $(VENV) has $$($(BIN)/python -V)."; \
	  echo "Remove $(VENV) and run again with PYTHON=python3.12 (or another >= 3.10)."; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "== installing $(TORCH) $(PIP_TORCH_ARGS) (see README: on Linux, PyPI's wheel is the CUDA build, several GB; TORCH_INDEX=cpu for the CPU-only one)"
	$(BIN)/python -m pip install --progress-bar on $(PIP_TORCH_ARGS) "$(TORCH)"
	@echo "== installing d2lopt, the notebook tools (JupyterLab, jupytext, nbval, pytest) and the reference optimizers the tests compare with"
	$(BIN)/python -m pip install --quiet -e ".[notebooks,refs]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (d2lopt)" >/dev/null
	touch $(STAMP)

$(SITE_STAMP): pyproject.toml $(STAMP)
	@echo "== installing the site tools (the 'site' extra: Sphinx, myst-nb, sphinx-book-theme, MathJax)"
	$(BIN)/python -m pip install --quiet -e ".[notebooks,refs,site]"
	touch $(SITE_STAMP)

# Lab opens a chapter's .md as a notebook (jupytext), from a settings file kept in the repository.
$(LAB_SETTINGS): tools/lab/overrides.json | $(STAMP)
	mkdir -p $(dir $@) && cp tools/lab/overrides.json $@

# Reading is not testing: Lab leaves the thread count to torch (LAB_THREADS=1 matches the tests)
# and the plots live. LAB_ARGS passes options to jupyter lab (--port=8899, --no-browser, ...).
LAB_ARGS ?=
LAB_THREADS ?=
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)   # containers often run as root
LAB_THREAD_NOTE := $(if $(LAB_THREADS),$(LAB_THREADS) thread(s) per kernel (LAB_THREADS),torch's default \
	thread count (the tests use one thread per kernel: make lab LAB_THREADS=1 to match))
lab: setup
	@echo "== JupyterLab on chapters/: open NN-name.md or NN-name.ipynb, one notebook saved as both files."
	@echo "== Kernels run with $(LAB_THREAD_NOTE)."
	env -u D2L_NO_ANIMATION -u OMP_NUM_THREADS -u MKL_NUM_THREADS \
	  $(if $(LAB_THREADS),OMP_NUM_THREADS=$(LAB_THREADS) MKL_NUM_THREADS=$(LAB_THREADS)) \
	  $(BIN)/jupyter lab $(LAB_ROOT) $(LAB_ARGS) chapters/

test: setup check-notebooks test-unit test-notebooks

check-notebooks: setup
	$(BIN)/python tools/check_notebooks.py $(NB_SRC)

test-unit: setup
	CUDA_VISIBLE_DEVICES= $(BIN)/python -m pytest tests -q -n $(JOBS) --dist loadgroup

# nbval, strict: every text output compared. Stored outputs must be properties of the math, not
# of the CPU, so `make test` runs the notebooks twice: under the kernels torch picks here, and
# under the scalar set (ATen `default`, oneDNN SSE4.1, numpy without its AVX2/AVX-512
# dispatch) that stands in for other vector widths, other vendors and ARM.
# `make test-kernels` runs every set this CPU offers.
NBVAL := CUDA_VISIBLE_DEVICES= $(BIN)/python -m pytest --nbval -q -p no:cacheprovider \
	-n $(JOBS) --dist loadscope --nbval-cell-timeout=300
SCALAR_KERNELS := ATEN_CPU_CAPABILITY=default DNNL_MAX_CPU_ISA=SSE41 \
	NPY_DISABLE_CPU_FEATURES=X86_V3,X86_V4,AVX512_ICL,AVX512_SPR,AVX2,FMA3,AVX512F,AVX512_SKX
test-notebooks: setup
	@echo "== notebooks under the native kernels"
	$(NBVAL) $(NB)
	@echo "== notebooks under the scalar kernels ($(SCALAR_KERNELS))"
	env $(SCALAR_KERNELS) $(NBVAL) $(NB)

test-kernels: setup
	@set -e; $(BIN)/python tools/kernel_sets.py | while read -r name vars; do \
	  echo "== notebooks under kernel set $$name ($$vars)"; \
	  env $$vars $(NBVAL) $(NB) </dev/null; \
	done

# Inputs flow .md -> .ipynb only (never timestamp-based --sync); outputs are then regenerated.
sync: setup
	$(BIN)/jupytext --to ipynb --update $(or $(NB_ONE),$(NB_SRC))

NB_ONE := $(if $(NB),$(filter %.md,$(NB:.ipynb=.md)),)
execute: setup
	@set -e; srcs="$(or $(NB_ONE),$(NB_SRC))"; \
	$(BIN)/jupytext --to ipynb --update $$srcs; \
	printf '%s\n' $$srcs | sed 's/\.md$$/.ipynb/' | \
	  CUDA_VISIBLE_DEVICES= xargs -P $(JOBS) -I{} $(NBCONVERT) {}

# The book site (Sphinx + myst-nb + sphinx-book-theme over the stored outputs, MathJax shipped
# with it): build/html/index.html works offline. test-site checks it in headless Chromium.
html: setup $(SITE_STAMP)
	$(BIN)/python tools/build_html.py --strict --out build/html $(NB)

.PHONY: test-site site-screenshots lab-screenshot chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { echo "== installing Debian's chromium (apt-get)"; $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }

test-site: html chromium
	$(BIN)/python tools/site_check.py --site build/html

site-screenshots: html chromium
	$(BIN)/python tools/site_check.py --site build/html --no-check --screenshots build/site-screenshots

# JupyterLab on a free localhost port, a chapter's .md opened in Chromium: is it a notebook?
lab-screenshot: setup chromium
	$(BIN)/python tools/lab_screenshot.py --doc $(or $(DOC),03-gd.md) --out build/lab-screenshots/lab-md.png

test-cuda: setup
	D2L_DEVICE=cuda $(BIN)/python -m pytest --nbval-lax $(NB) -q -p no:cacheprovider \
		--nbval-cell-timeout=300

bench: setup
	$(BIN)/python tools/bench.py

assignments: setup
	$(BIN)/python tools/make_assignments.py --out build/assignments $(NB)

# Each notebook runs in a sandbox (tools/grading/); the grade comes from tools/grading/specs.py.
grade: setup
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=dir [OUT=build/grades] [TIMEOUT=120]"; exit 2; }
	$(BIN)/python tools/grade.py --submissions "$(SUBMISSIONS)" --out "$(or $(OUT),build/grades)" \
		--timeout $(or $(TIMEOUT),120) --jobs $(JOBS)

clean:
	rm -rf build .pytest_cache
