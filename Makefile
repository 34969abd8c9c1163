# streaming-service: `make run` and `make test` do all their own set-up. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# A setting given on make's command line is taken as typed: make would read its $ as a variable of its own
# (`make run STREAM_TICKERS='SPY,$SPX'` streamed SPY and PX; a password with a $ lost part of itself).
$(foreach name,$(.VARIABLES),$(if $(filter command line,$(origin $(name))),$(eval override $(name) := $$(value $(name)))$(eval export $(name))))

VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
ON_HOST := bash $(CURDIR)/deploy/host.sh
# Settings: .env read with python-dotenv's grammar, the environment over it (common/environment.py).
# ENV checks every setting first and stops, naming the bad one; RAW_ENV only reads them.
ENV := $(PY) -m common.environment exec --
RAW_ENV := $(PY) -m common.environment exec --no-check --

.PHONY: help setup settings run stop status logs health storage archive restore backfill migrate login deploy test test-fast bench lock clean

help: ## list the targets
	@awk -F ':.*## ' '/^[a-z-]+:.*## / {printf "make %-9s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## create .venv from requirements.lock; PostgreSQL's server binaries if the embedded database needs them
	@$(ON_HOST) venv requirements.lock
	@$(RAW_ENV) $(ON_HOST) postgres-binaries

settings: setup ## every setting, its value (secrets masked) and where it came from; then the check make run makes
	@$(PY) -m common.environment show $(if $(JSON),--json)
	@$(PY) -m common.environment check

run: setup ## check the settings, then start the whole pipeline under supervisord and wait until it runs
	@$(PY) -m common.environment check
	@$(ENV) $(ON_HOST) start

stop: ## stop the pipeline: ingest first, the writer after its last flush, Postgres last
	@$(RAW_ENV) $(ON_HOST) stop

status: ## supervisorctl status
	@$(RAW_ENV) supervisorctl -c $(CURDIR)/supervisord.conf status

logs: ## follow every actor's log (ACTOR=writer for one)
	@$(RAW_ENV) bash -c 'tail -n 20 -F "$$STREAMING_VAR"/log/$(if $(ACTOR),$(ACTOR),*).log'

health: setup ## database, freshness, errors, lag, storage budget, archive disk, each actor: OK, WARN or CRIT (JSON=1 for JSON)
	@$(RAW_ENV) $(PY) -m common.observe.health $(if $(JSON),--json)

storage: setup ## each table's size and rows per trading day; the days until BUDGET_MB (default STORAGE_BUDGET_MB) is full
	@$(RAW_ENV) $(PY) -m common.store.storage $(if $(BUDGET_MB),--budget-mb $(BUDGET_MB)) $(if $(JSON),--json)

archive: setup ## [DAY=YYYY-MM-DD] [TABLE=...]: complete New York days to verified Parquet (ARCHIVE_DIR or ARCHIVE_S3_URL)
	@$(RAW_ENV) $(PY) -m common.store.archive archive $(if $(DAY),--day "$(DAY)") $(if $(TABLE),--table "$(TABLE)")

restore: setup ## TABLE=... DAY=...: load an archived day back into its partition (twice is once)
	@$(RAW_ENV) $(PY) -m common.store.archive restore --table "$(TABLE)" --day "$(DAY)"

backfill: setup ## TICKERS=SPY,QQQ FROM=YYYY-MM-DD [TO=YYYY-MM-DD]: minute bars from price history into equity_bars (twice is once)
	@$(RAW_ENV) $(PY) -m common.feed.backfill --from "$(FROM)" $(if $(TO),--to "$(TO)") $(if $(TICKERS),--tickers "$(TICKERS)")

migrate: setup ## apply sql/ to MIGRATE_DATABASE_URL, else DATABASE_URL (both read from .env)
	@$(RAW_ENV) $(PY) -m common.store.migrate

login: setup ## create the Schwab token file (paste the redirect URL; every 7 days)
	@$(ENV) $(PY) -m common.feed.login

deploy: setup ## HOST=<ip> [SSH_USER=ec2-user]: deploy over SSH (deploy/README.md)
	@$(RAW_ENV) deploy/deploy.sh

test: ## set up and run the test suite (its own Postgres, supervisord and simulator; .env is not read)
	@$(ON_HOST) venv requirements-test.lock
	@$(ON_HOST) venv requirements.lock  # already in: stamps it, for the checkouts that tests run `make run` in
	@EMBEDDED_PG=true $(ON_HOST) postgres-binaries
	$(PY) -m pytest

test-fast: ## the unit tier only (tests/unit: pure, no sockets, no processes), for the inner loop: under a minute
	@$(ON_HOST) venv requirements-test.lock
	$(PY) -m pytest tests/unit

bench: ## measure the pipeline against the simulator; prints one JSON object (run it alone)
	@$(ON_HOST) venv requirements-test.lock
	@EMBEDDED_PG=true $(ON_HOST) postgres-binaries
	@$(PY) -m tests.bench

lock: ## refresh requirements.lock, requirements-test.lock and the uv that installs them (README: upgrading)
	@[ -x $(PY) ] || $$($(ON_HOST) python) -m venv $(VENV)
	@$(PY) -m pip install --disable-pip-version-check --quiet --require-hashes -r requirements-bootstrap.lock
	@$(BUILD_REQUIRES) | $(UV_COMPILE) --output-file requirements.lock
	@$(BUILD_REQUIRES) | $(UV_COMPILE) --extra test --constraint requirements.lock --output-file requirements-test.lock
	@echo 'uv>=0.5,<1' | $(VENV)/bin/uv pip compile - --universal --python-version 3.11 --generate-hashes --upgrade --quiet \
		--output-file requirements-bootstrap.lock
	@echo "requirements*.lock refreshed: review git diff, run make test, commit them"

# The project itself is installed without build isolation, so its build requirements are locked too.
BUILD_REQUIRES = $(PY) -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires'], sep='\\n')"
UV_COMPILE = $(VENV)/bin/uv pip compile pyproject.toml - --universal --python-version 3.11 --generate-hashes --upgrade --quiet

clean: setup ## stop; delete logs and sockets; the database and journals only when asked (or CONFIRM=1); never the token
	@$(RAW_ENV) $(ON_HOST) clean
