# modelshield developer tasks (GNU make).
#
#   make demo    build real and hostile model files, scan them, write JSON and SARIF reports
#   make test    lint, type-check and run the whole test suite, with a coverage floor
#
# The virtual environment is keyed on pyproject.toml: the editable install reruns only when
# pyproject.toml changes (or the environment is removed).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.modelshield-dev-installed
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.modelshield-bench-installed
USER_VENV := .venv-user
USER_STAMP := $(USER_VENV)/.modelshield-user-installed
LINTED := src tests scripts bench
DEMO := demo-out
# Total line coverage below which `make test` fails: a little under the measured total, so that
# untested new code fails CI. Raise it when coverage rises; never lower it to make a change pass.
COVERAGE_FLOOR := 92
COVERAGE := --cov=modelshield --cov-report=term-missing:skip-covered \
	--cov-fail-under=$(COVERAGE_FLOOR)

.DEFAULT_GOAL := help
.PHONY: help dev demo test lint reformat bench docs clean distclean

help:
	@echo "make demo       build demo models into $(DEMO)/models, scan them, write reports"
	@echo "make test       lint + type-check + the whole test suite (with a coverage floor)"
	@echo "make lint       ruff check, ruff format --check, mypy (strict) on src"
	@echo "make reformat   apply ruff fixes and formatting"
	@echo "make bench      compare with picklescan, modelscan, ModelAudit (own venv), then bench/bench_*.py"
	@echo "make docs       regenerate docs/rules.md and the compiled callables lists"
	@echo "make clean      remove outputs and caches (distclean: the virtual environments too)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	@# Editable installs are not byte-compiled; with PYTHONDONTWRITEBYTECODE set nothing would
	@# ever be, and every CLI run would pay for compiling the package (about 0.1 s).
	$(BIN)/python -m compileall -q src
	touch $@

# The guard's arithmetic kernels compiled by mypyc next to their source (optional: without a
# C compiler the same source runs as plain Python, the same results, slower).
EXT_SUFFIX := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
KERNELS := src/modelshield/guard/_kernels$(EXT_SUFFIX)

$(KERNELS): src/modelshield/guard/_kernels.py scripts/build_kernels.py | $(STAMP)
	$(BIN)/python scripts/build_kernels.py

dev: $(STAMP) $(KERNELS)

demo: $(STAMP) $(KERNELS)
	rm -rf $(DEMO)
	$(BIN)/python scripts/build_demo_models.py $(DEMO)/models
	@echo
	@# Findings are the point of the demo: report the exit code instead of failing on it.
	@$(BIN)/modelshield scan $(DEMO)/models; rc=$$?; \
	  echo; echo "modelshield scan exited with $$rc (0 clean, 1 findings, 2 errors)"
	@$(BIN)/modelshield scan --quiet --format json --output $(DEMO)/report.json $(DEMO)/models; \
	  echo "wrote $(DEMO)/report.json (exit code $$?)"
	@$(BIN)/modelshield scan --quiet --format sarif --output $(DEMO)/report.sarif $(DEMO)/models; \
	  echo "wrote $(DEMO)/report.sarif (exit code $$?)"
	@echo
	$(BIN)/python scripts/build_demo_assessment.py $(DEMO)/assess
	@# The unfair model must fail its fairness check: the assessment as a CI gate.
	@$(BIN)/modelshield assess --model $(DEMO)/assess/unfair.joblib \
	  --data $(DEMO)/assess/arrests-test.csv --target released --sensitive colour \
	  --sensitive sex --format html --output $(DEMO)/assessment.html; \
	  echo "assessed the unfair model: $(DEMO)/assessment.html (exit code $$?, 1 = findings)"
	@$(BIN)/modelshield assess --model $(DEMO)/assess/sound.joblib \
	  --data $(DEMO)/assess/arrests-test.csv --target released --sensitive colour \
	  --sensitive sex --quiet; echo "assessed the sound model (exit code $$?)"
	@echo
	@# The CI gate over the same folder: a starter policy, then every configured pillar in one
	@# run with its reports (the audit is skipped: it asks the OSV service, which needs a network).
	@$(BIN)/modelshield init $(DEMO)
	@$(BIN)/modelshield ci $(DEMO) --skip audit --quiet --sarif $(DEMO)/ci.sarif \
	  --junit $(DEMO)/ci-junit.xml --html $(DEMO)/ci.html; \
	  echo "modelshield ci exited with $$? (1 = findings): $(DEMO)/ci.html, ci.sarif, ci-junit.xml"

test: $(STAMP) $(KERNELS)
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest $(COVERAGE)

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

reformat: $(STAMP)
	$(BIN)/ruff check --fix $(LINTED)
	$(BIN)/ruff format $(LINTED)

# The other scanners live in their own environment: their pins must not touch ours.
$(BENCH_VENV)/bin/python:
	$(PYTHON) -m venv $(BENCH_VENV)

$(BENCH_STAMP): bench/requirements.txt | $(BENCH_VENV)/bin/python
	$(BENCH_VENV)/bin/python -m pip install -r bench/requirements.txt
	touch $@

# modelshield as users install it (`pip install '.[archives]'`: its own dependencies and the
# archive extra that picklescan[7z] matches, byte-compiled), for start-up-bound timings;
# reinstalled whenever the package's files change.
$(USER_VENV)/bin/python:
	$(PYTHON) -m venv $(USER_VENV)

$(USER_STAMP): pyproject.toml $(shell find src -type f -not -name '*.pyc') | $(USER_VENV)/bin/python
	$(USER_VENV)/bin/python -m pip install --quiet '.[archives]'
	touch $@

bench: $(STAMP) $(KERNELS) $(BENCH_STAMP) $(USER_STAMP)
	@# Sources edited since the install would otherwise be compiled on every timed run.
	$(BIN)/python -m compileall -q src
	$(BIN)/python bench/run_bench.py --tools-bin $(BENCH_VENV)/bin

CALLABLES_JSON := src/modelshield/scanner/data/callables.json

docs: $(STAMP)
	$(BIN)/python -m modelshield.docs > docs/rules.md.tmp
	mv docs/rules.md.tmp docs/rules.md
	$(BIN)/python -m modelshield.scanner.callables > $(CALLABLES_JSON).tmp
	mv $(CALLABLES_JSON).tmp $(CALLABLES_JSON)

clean:
	rm -rf $(DEMO) bench-out build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis \
	  .coverage htmlcov
	rm -f src/modelshield/guard/_kernels*$(EXT_SUFFIX)
	find . -name __pycache__ -type d -not -path "./$(VENV)/*" -not -path "./$(BENCH_VENV)/*" \
	  -not -path "./$(USER_VENV)/*" -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(BENCH_VENV) $(USER_VENV)
