# d2lopt: `make lab` to read, `make test` to check. Both set up .venv when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The PyTorch build to install. 2.13.0 is the CPU-friendly build the stored outputs come from;
# set TORCH (and PIP_TORCH_ARGS, e.g. an index of CUDA wheels) to choose another.
TORCH  ?= torch==2.13.0
PIP_TORCH_ARGS ?=
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
	@echo "make html         render the executed notebooks into build/html/index.html"
	@echo "make test-cuda    execute every notebook on a CUDA device (execution only)"
	@echo "make bench        time the notebooks and the trainers' overhead"
	@echo "make assignments  student copies under build/assignments"
	@echo "make grade SUBMISSIONS=dir   grade submitted notebooks"

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIP_TORCH_ARGS) "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[notebooks]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (d2lopt)" >/dev/null
	touch $(STAMP)

LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)   # containers often run as root
lab: setup
	env -u D2L_NO_ANIMATION $(BIN)/jupyter lab $(LAB_ARGS) chapters/

test: setup check-notebooks test-unit test-notebooks

check-notebooks: setup
	$(BIN)/python tools/check_notebooks.py $(NB_SRC)

test-unit: setup
	CUDA_VISIBLE_DEVICES= $(BIN)/python -m pytest tests -q -n $(JOBS) --dist loadgroup

# nbval, strict: every text output compared. Stored outputs must be properties of the math, not
# of the CPU, so `make test` runs the notebooks twice: under the kernels torch picks here, and
# under the scalar set (ATen `default`, oneDNN SSE4.1) that stands in for other vector widths,
# other vendors and ARM. `make test-kernels` runs every set this CPU offers.
NBVAL := CUDA_VISIBLE_DEVICES= $(BIN)/python -m pytest --nbval -q -p no:cacheprovider \
	-n $(JOBS) --dist loadscope --nbval-cell-timeout=300
SCALAR_KERNELS := ATEN_CPU_CAPABILITY=default DNNL_MAX_CPU_ISA=SSE41
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

html: setup
	$(BIN)/python tools/build_html.py --out build/html $(NB)

test-cuda: setup
	D2L_DEVICE=cuda $(BIN)/python -m pytest --nbval-lax $(NB) -q -p no:cacheprovider \
		--nbval-cell-timeout=300

bench: setup
	$(BIN)/python tools/bench.py

assignments: setup
	$(BIN)/python tools/make_assignments.py --out build/assignments $(NB)

grade: setup
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=dir [OUT=build/grades] [TIMEOUT=120]"; exit 2; }
	$(BIN)/python tools/grade.py --source chapters --submissions "$(SUBMISSIONS)" --out "$(or $(OUT),build/grades)" \
		--timeout $(or $(TIMEOUT),120) --jobs $(JOBS)

clean:
	rm -rf build .pytest_cache
