# The course's commands. Every target bootstraps the virtual environment (.venv) itself.
#   make course   build the course: install, execute every notebook (smoke mode; FULL=1 for full mode)
#   make test     run every test: library, notebooks (nbval), grading round trip, release, benchmarks
# See README.md for the instructor's and the student's workflows.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# notebooks and test workers run JOBS at a time, so each gets one BLAS/OpenMP thread (oversubscribed
# threads made small torch models up to 50x slower on 2 cores); override with NB_THREADS=N
NB_THREADS ?= 1
FULL ?= 0
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: venv course site notebooks test test-fast lab validate release check-release collect autograde feedback export-grades grades bench lock clean
.PHONY: student-release new-lecture lint canary

$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"the course needs Python 3.11, $(VENV) has {sys.version.split()[0]}: rm -rf $(VENV) and set PYTHON=python3.11"'
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements/constraints.txt -e '.[tools,test]'
	@touch $(STAMP)

venv: $(STAMP)

## build the course: every notebook executed into build/executed (FULL=1: build/executed-full), then the
## website into build/site from those outputs; unchanged notebooks are not re-executed (FORCE=1 re-executes)
EXECUTED := build/executed$(if $(filter 1,$(FULL)),-full,)
course: venv
	OMP_NUM_THREADS=$(NB_THREADS) $(PY) -m course_tools execute --jobs $(JOBS) $(if $(filter 1,$(FULL)),--full,) $(if $(filter 1,$(FORCE)),--force,) --build-dir $(EXECUTED) --json $(EXECUTED)/results.json
	$(PY) -m course_tools site build --strict --executed $(EXECUTED)

## the website alone, from what build/executed holds (FULL=1: build/executed-full)
site: venv
	$(PY) -m course_tools site build --executed $(EXECUTED)

notebooks: venv
	$(PY) -m course_tools sync

## every test; lectures are executed once, by nbval (smoke mode), and the website is built from that run
test: venv
	@$(MAKE) --no-print-directory lint
	$(PY) -m course_tools sync
	COURSE_SMOKE=1 OMP_NUM_THREADS=$(NB_THREADS) $(PY) -m pytest -n $(JOBS) --dist loadfile --nbval-lax --nbval-cell-timeout=600 \
		--durations=15 --ignore=tests/tools/test_site.py --ignore=tests/tools/test_executed_notebooks.py tests lectures
	$(PY) -m pytest -q tests/tools/test_executed_notebooks.py tests/tools/test_site.py

## the library tests only (seconds): tests/ without tests/tools/
test-fast: venv
	$(PY) -m pytest -n $(JOBS) tests --ignore=tests/tools

## JupyterLab for students: .py lectures open as notebooks (jupytext), Validate button and assignment list;
## make lab ROLE=instructor adds formgrader, Create Assignment and the course list
ROLE ?= student
lab: venv
	$(PY) -m course_tools lab --role $(ROLE)

## student: make validate NB=assignments/03-convolutions/03-convolutions.ipynb (exit 1 when a test fails)
validate: venv
	@test -n "$(NB)" || { echo "usage: make validate NB=assignments/NN-topic/NN-topic.ipynb"; exit 2; }
	$(PY) -m course_tools validate $(NB)

## instructor: regenerate assignments/ from solutions/ (commit the result)
release: venv
	$(PY) -m course_tools release $(ASSIGNMENT)

check-release: venv
	$(PY) -m course_tools check-release

## instructor: make collect ASSIGNMENT=01-neural-networks FROM=path/with/<student>/<notebook>.ipynb
collect: venv
	$(PY) -m course_tools collect $(ASSIGNMENT) --from $(FROM)

autograde: venv
	$(PY) -m course_tools autograde $(ASSIGNMENT) $(if $(CLUSTER),--cluster $(CLUSTER))

feedback: venv
	$(PY) -m course_tools feedback $(ASSIGNMENT)

export-grades: venv
	$(PY) -m course_tools export

## instructor: make similarity ASSIGNMENT=03-convolutions [TOP=10] [THRESHOLD=0.5] -> grading/reports/NAME/_similarity.html
.PHONY: similarity
similarity: venv
	$(PY) -m course_tools similarity $(ASSIGNMENT) $(if $(TOP),--top $(TOP),) $(if $(THRESHOLD),--threshold $(THRESHOLD),)

## benchmarks at real size (SMOKE=1 for tiny sizes), then benchmarks/RESULTS.md
BENCH_PEERS := build/bench-peers
bench: venv
	$(PY) -m pip install --quiet --no-deps --target $(BENCH_PEERS) -r requirements/benchmark-peers.txt
	PYTHONPATH=$(CURDIR)/$(BENCH_PEERS) $(PY) -m course_tools bench $(if $(filter 1,$(SMOKE)),--smoke,)

## the quality gates of .pre-commit-config.yaml on every file: ruff, jupytext sync, no notebooks/data, release, mypy
lint: venv
	$(VENV)/bin/pre-commit run --all-files --show-diff-on-failure

## not in CI: the course on the newest release of every dependency but torch (throwaway venv; needs the registry)
canary: venv
	$(PY) -m course_tools.canary $(if $(filter 1,$(KEEP)),--keep,)

## instructor: what students receive: make student-release OUT=dir [UNTIL=05 | DATE=2027-03-01] [FORCE=1]
student-release: venv
	@test -n "$(OUT)" || { echo "usage: make student-release OUT=dir [UNTIL=05 | DATE=2027-03-01] [FORCE=1]"; exit 2; }
	OMP_NUM_THREADS=$(NB_THREADS) $(PY) -m course_tools student-release "$(OUT)" $(if $(UNTIL),--until $(UNTIL),) $(if $(DATE),--date $(DATE),) $(if $(filter 1,$(FORCE)),--force,)

## maintainer: scaffold a lecture: make new-lecture NN=18 TOPIC=transformers [TITLE="..."]
new-lecture: venv
	@test -n "$(NN)" -a -n "$(TOPIC)" || { echo "usage: make new-lecture NN=18 TOPIC=transformers [TITLE='Transformers']"; exit 2; }
	$(PY) -m course_tools new-lecture $(NN) $(TOPIC) $(if $(TITLE),--title "$(TITLE)",)

## refresh requirements/constraints.txt from the current environment
lock: venv
	@{ head -n 2 requirements/constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -v '^#' | sed -E 's/^(torch==[0-9.]+)\+cpu$$/\1/'; } > requirements/constraints.txt.new
	@mv requirements/constraints.txt.new requirements/constraints.txt

clean:
	rm -rf build .pytest_cache .hypothesis
