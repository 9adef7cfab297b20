# timeblind: `make reproduce` runs the whole study, `make test` runs the test suite.
# Both create or update .venv first; `make test` also installs the system programs its tests run
# (Chromium, PostgreSQL's server, curl) when they are missing. Variables: CORES, TORCH (e.g.
# TORCH="torch==2.13.0 --index-url ..." for a CUDA build), PYTHON (the interpreter that creates .venv),
# PORT (MLflow UI), PROFILE (quick, the default: config/config.yaml alone; any other name reads
# config/<PROFILE>.yaml on top: smoke, every rule on tiny data in minutes, or paper).

PYTHON ?= python3
VENV ?= .venv
CORES ?= 2
TORCH ?= torch==2.13.0
PORT ?= 5000
PROFILE ?= quick
PROFILE_CONFIG := $(if $(filter-out quick,$(PROFILE)),config/$(PROFILE).yaml)
BIN := $(abspath $(VENV))/bin
# Checks for programs pip does not provide and installs the missing ones with apt-get (as root; anyone
# else gets one line with the command to run). A met need never runs apt-get: see the script's header.
SYSTEM_PACKAGES := workflow/scripts/system_packages.sh
REPORT := results/report.html
export PATH := $(BIN):$(PATH)

.PHONY: reproduce test test-system-packages lab mlflow mlflow-server mlflow-server-stop bench lint clean

# Torch first and pinned: an unpinned torch would pull gigabytes of CUDA wheels on a CPU machine.
# Debian's Python creates a venv only with its python3.X-venv package, so that is checked first.
$(VENV)/.installed: envs/requirements.txt pyproject.toml
	@test -x $(BIN)/python || { PYTHON=$(PYTHON) $(SYSTEM_PACKAGES) venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -r envs/requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

# The report is rebuilt only when a result is newer than it, so a no-op rerun does no work.
reproduce: $(VENV)/.installed
	@if [ -n "$(PROFILE_CONFIG)" ] && [ ! -f "$(PROFILE_CONFIG)" ]; then \
		echo "PROFILE=$(PROFILE): no $(PROFILE_CONFIG); expected quick or one of: $$(ls config/*.yaml | xargs -n1 basename | sed 's/.yaml//' | grep -v '^config$$' | tr '\n' ' ')"; exit 2; fi
	@# Snakemake reads --configfile itself and would not say where a YAML syntax error is
	$(if $(PROFILE_CONFIG),@$(BIN)/python -m timeblind check-config $(PROFILE_CONFIG))
	$(BIN)/snakemake --cores $(CORES) $(if $(PROFILE_CONFIG),--configfile $(PROFILE_CONFIG))
	@if [ ! -f $(REPORT) ] || [ -n "$$(find results/tables results/figures results/notebooks results/config.yaml -newer $(REPORT) | head -n 1)" ]; \
	then $(BIN)/snakemake --report $(REPORT) $(if $(PROFILE_CONFIG),--configfile $(PROFILE_CONFIG)); else echo "report up to date"; fi
	@echo
	@echo "report:  $(abspath $(REPORT))  (open it in a browser)"
	@echo "tables:  $(abspath results/tables)"
	@echo "figures: $(abspath results/figures)"
	@echo "MLflow:  $${MLFLOW_TRACKING_URI:-sqlite:///$(abspath results/mlflow.db)}"
	@echo "         browse it with 'make mlflow', then open http://127.0.0.1:$(PORT)"

# Chromium: the report check renders the report in it, headless. PostgreSQL's server and curl: the
# tracking-server test starts MLflow on a PostgreSQL of its own and polls its health with curl.
# Checked before the (slower) Python setup, so a missing one stops `make test` at once.
test-system-packages:
	@$(SYSTEM_PACKAGES) chromium postgresql curl

# one pytest worker per core; a test file stays on one worker, so its module fixtures are built once
test: test-system-packages $(VENV)/.installed
	$(BIN)/python -m pytest -n $(CORES) --dist loadfile

lab: $(VENV)/.installed
	$(BIN)/jupyter lab --notebook-dir=. notebooks

# A tracking server (MLFLOW_TRACKING_URI=http...) already serves its own UI: nothing to start. The
# embedded store is opened first, which points its artifacts at this results/ (it may have been moved).
mlflow: $(VENV)/.installed
	@case "$${MLFLOW_TRACKING_URI:-}" in http*) echo "the runs are on $$MLFLOW_TRACKING_URI: open it in a browser"; exit 0;; esac; \
	$(BIN)/python -m timeblind init-tracking --results-dir results > /dev/null && \
	$(BIN)/mlflow server --host 127.0.0.1 --port $(PORT) \
		--backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///$(abspath results/mlflow.db)} \
		--default-artifact-root $(abspath results/mlartifacts)

# A shared tracking server: MLflow on its own PostgreSQL (installed when missing, as for test), database
# under results/tracking-server, artifacts under results/mlartifacts. Settings: see the script.
mlflow-server: $(VENV)/.installed
	@$(SYSTEM_PACKAGES) postgresql curl
	MLFLOW_PORT=$(PORT) workflow/scripts/tracking_server.sh start

mlflow-server-stop:
	workflow/scripts/tracking_server.sh stop

bench: $(VENV)/.installed
	$(BIN)/python scripts/bench.py

lint: $(VENV)/.installed
	$(BIN)/snakemake --lint

clean:
	rm -rf results/* .snakemake
	git checkout -- results/README.md
