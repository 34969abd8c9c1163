# streaming-service: `make run` and `make test` do all their own set-up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
SUPERVISORCTL := $(VENV)/bin/supervisorctl -c $(CURDIR)/supervisord.conf

# Settings live in .env (see README); the environment wins over it.
ifneq ($(wildcard .env),)
include .env
export $(shell sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' .env)
endif

export STREAMING_VAR ?= $(CURDIR)/var
export STREAMING_PYTHON := $(PY)
# No DATABASE_URL: a local Postgres under var/pg. No Schwab credentials: the simulator.
export EMBEDDED_PG := $(if $(DATABASE_URL),false,true)
export EMBEDDED_SIM := $(if $(and $(SCHWAB_APP_KEY),$(SCHWAB_APP_SECRET)),false,true)
ifeq ($(EMBEDDED_PG),true)
export DATABASE_URL := postgresql://postgres@/streaming?host=$(STREAMING_VAR)/pg/run
endif

.PHONY: help setup run stop status logs migrate login test bench clean health

help:
	@echo "make run      set up and start the whole pipeline under supervisord"
	@echo "make test     set up and run the test suite"
	@echo "make status   supervisorctl status"
	@echo "make health   check database, freshness, errors, lag, actors (JSON=1 for JSON; streaming-health exits 0/1/2)"
	@echo "make logs     follow every actor's log (ACTOR=writer for one)"
	@echo "make stop     stop the pipeline and supervisord"
	@echo "make migrate  apply database migrations to DATABASE_URL"
	@echo "make login    create the Schwab token file (paste the redirect URL; every 7 days)"
	@echo "make deploy   HOST=<ip> [SSH_USER=ec2-user]: deploy over SSH (see deploy/README.md)"
	@echo "make bench    measure the pipeline against the simulator"

setup: $(VENV)/.installed postgres-binaries

$(VENV)/.installed: pyproject.toml
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

.PHONY: postgres-binaries
postgres-binaries:  # only for the embedded Postgres: with DATABASE_URL set there is nothing to install
	@if [ "$(EMBEDDED_PG)" = true ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then \
		echo "PostgreSQL server binaries are missing: installing them with the OS package manager"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		if command -v apt-get >/dev/null; then $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q postgresql; \
		elif command -v dnf >/dev/null; then $$SUDO dnf install -y postgresql15-server || $$SUDO dnf install -y postgresql-server; \
		else echo "install PostgreSQL 15+ server binaries and re-run" >&2; exit 1; fi; \
	fi

run: setup
	@mkdir -p $(STREAMING_VAR)/log $(STREAMING_VAR)/data && mkdir -p -m 700 $(STREAMING_VAR)/run
	@if [ "$(EMBEDDED_PG)" = true ]; then $(PY) -m common.localpg init --dir $(STREAMING_VAR)/pg; fi
	@if $(SUPERVISORCTL) pid >/dev/null 2>&1; then $(SUPERVISORCTL) update; else $(VENV)/bin/supervisord -c $(CURDIR)/supervisord.conf; fi
	@$(PY) -m common.migrate --wait 60
	@$(SUPERVISORCTL) status || true
	@echo
	@echo "Running. Follow it with: make logs   (one actor: make logs ACTOR=writer)"
	@echo "State: make status    Stop: make stop    Data: psql \"$$DATABASE_URL\""

stop:
	@if $(SUPERVISORCTL) pid >/dev/null 2>&1; then $(SUPERVISORCTL) shutdown; else echo "not running"; fi
	@for i in $$(seq 1200); do [ -e $(STREAMING_VAR)/run/supervisord.pid ] || exit 0; sleep 0.1; done; \
		echo "supervisord still running after 120 s" >&2; exit 1

status:
	@$(SUPERVISORCTL) status

health: setup
	@$(PY) -m common.health $(if $(JSON),--json)

logs:
	@tail -n 20 -F $(if $(ACTOR),$(STREAMING_VAR)/log/$(ACTOR).log,$(STREAMING_VAR)/log/*.log)

migrate: setup
	$(PY) -m common.migrate

login: setup
	@$(PY) -m common.login

# The tests and the benchmark start Postgres clusters of their own, whatever DATABASE_URL says.
test bench: EMBEDDED_PG := true
test: setup
	$(PY) -m pytest

bench: setup
	$(PY) -m tests.bench

clean: stop
	rm -rf $(STREAMING_VAR)

# make deploy HOST=<ip> [SSH_USER=ec2-user] [SSH_KEY=key.pem] [SSH_PORT=22] [SSH_OPTS=...]
#             [PREFIX=/opt/streaming-service] [COPY_SECRETS=1]     (see deploy/README.md)
.PHONY: deploy
deploy:
	@deploy/deploy.sh
