#!/usr/bin/env bash
# Setting up and starting the service on a machine: this checkout (`make setup`, `make run`,
# `make stop`, `make clean`) or a deployed host (`make deploy` runs it there over SSH).
#
#   python          print a Python 3.11-3.13 that can make a venv (pyproject.toml's requires-python);
#                   PYTHON=python3.13 chooses one
#   prepare PREFIX  before the code is on a host (read from stdin): that Python, rsync, make; PREFIX ours
#   venv [LOCK]     .venv from the hash-locked LOCK (requirements.lock), again only when LOCK changed, with uv
#                   (itself from requirements-bootstrap.lock)
#   postgres-binaries   PostgreSQL's server binaries, when the embedded database is the one in use
#   prepare-var     the directories supervisord's programs expect, and the embedded cluster (initdb once)
#   migrate         the migrations, waiting up to a minute for the database
#   migrate-writer-stopped  the same, with the pipeline's writer stopped while any are pending
#   start           make run: supervisord started (or its config applied), migrations, every program RUNNING
#   stop            make stop: supervisord and everything under it, in order
#   clean           make clean: stop; delete logs and sockets; the database and journals only when confirmed
#   token-path      where the Schwab token file belongs here (its directory made, 0700)
#   apply           make deploy's last step: Postgres' binaries, the systemd unit; start supervisord,
#                   or update it and restart only the programs whose code changed
#
# All but python, prepare and venv run in the checkout under the checked settings
# (deploy/supervisord-env.sh, or make's ENV): they see what supervisord sees.
set -euo pipefail

SUDO=$([ "$(id -u)" = 0 ] || echo "sudo -n")
UNIT=/etc/systemd/system/streaming-service.service
# In supervisord's priority (start) order. Not postgres: a restart would cut every session, and
# its code is the server's, not ours.
PROGRAMS="embedded:simulator pipeline:writer pipeline:metrics pipeline:indicator pipeline:options pipeline:ingest"

find_python() {  # $PYTHON if given; else python3.11 first (what CI runs), then newer, then the system's python3
    local python candidates=(python3.11 python3.12 python3.13 python3)
    if [ -n "${PYTHON:-}" ]; then candidates=("$PYTHON"); fi
    for python in "${candidates[@]}"; do
        if command -v "$python" >/dev/null &&
            "$python" -c 'import ensurepip, sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' \
                2>/dev/null; then
            command -v "$python"
            return
        fi
    done
    return 1
}

install_packages() {  # python, postgres, or a package named alike by dnf (Amazon Linux 2023) and apt (Ubuntu)
    local names=() name
    if command -v dnf >/dev/null; then
        for name; do
            case $name in
                python) names+=(python3.11) ;;
                postgres) names+=(postgresql15-server) ;;
                *) names+=("$name") ;;
            esac
        done
        echo "==> installing ${names[*]}"
        $SUDO dnf install -y -q "${names[@]}"
    elif command -v apt-get >/dev/null; then
        for name; do
            case $name in
                python)
                    # Ubuntu 24.04's own python3 is 3.12, Debian 13's 3.13: only its venv module is missing.
                    if python3 -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' \
                        2>/dev/null; then
                        names+=(python3-venv)
                    else
                        names+=(python3.11 python3.11-venv)
                    fi ;;
                postgres)
                    # The binaries only: no cluster of the OS's own beside ours on a 512 MB machine.
                    $SUDO mkdir -p /etc/postgresql-common/createcluster.d
                    echo "create_main_cluster = false" |
                        $SUDO tee /etc/postgresql-common/createcluster.d/streaming-service.conf >/dev/null
                    names+=(postgresql) ;;
                *) names+=("$name") ;;
            esac
        done
        echo "==> installing ${names[*]}"
        $SUDO apt-get update -q
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${names[@]}"
    else
        echo "neither dnf nor apt-get here: install $* by hand and try again" >&2
        exit 1
    fi
}

prepare() {
    local prefix=$1 missing=()
    find_python >/dev/null || missing+=(python)
    command -v rsync >/dev/null || missing+=(rsync)
    command -v make >/dev/null || missing+=(make)  # make login / status / logs on the host
    if [ ${#missing[@]} -gt 0 ]; then install_packages "${missing[@]}"; fi
    if ! mkdir -p "$prefix" 2>/dev/null || [ ! -w "$prefix" ]; then
        $SUDO mkdir -p "$prefix"
        $SUDO chown "$(id -un):$(id -gn)" "$prefix"
    fi
}

venv() {
    local lock=${1:-requirements.lock} python stamp output
    stamp=.venv/.installed-$(basename "$lock")
    if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$(sha256sum "$lock" pyproject.toml)" ]; then
        return
    fi
    if [ ! -x .venv/bin/python ]; then
        python=$(find_python) || {
            echo "no Python 3.11-3.13 with its venv module here: install one (Ubuntu: apt-get install python3-venv)" >&2
            exit 1
        }
        echo "==> creating .venv with $python ($("$python" --version))"
        "$python" -m venv .venv
    fi
    # uv installs the lock in seconds where pip takes minutes of a nano's CPU; it comes hash-locked itself.
    if ! .venv/bin/uv --version >/dev/null 2>&1; then
        .venv/bin/python -m pip install --disable-pip-version-check --quiet --require-hashes \
            -r requirements-bootstrap.lock
    fi
    echo "==> installing the hash-locked dependencies of $lock into .venv"
    # --system-certs: the host's own CA store, as pip's TLS uses (a proxy's CA, a distro's updates).
    .venv/bin/uv pip install --python .venv/bin/python --system-certs --require-hashes -r "$lock" 2>&1 |
        sed -u 's/^/    /'
    # The project itself, editable, with the locked setuptools; its chatter is shown only if it fails.
    if ! output=$(.venv/bin/uv pip install --python .venv/bin/python --no-deps --no-build-isolation -e . 2>&1); then
        echo "$output" >&2
        exit 1
    fi
    sha256sum "$lock" pyproject.toml >"$stamp"
}

postgres_binaries() {  # only for the embedded Postgres: with DATABASE_URL set there is nothing to install
    if [ "$EMBEDDED_PG" = true ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 &&
        ! command -v initdb >/dev/null; then
        echo "PostgreSQL server binaries are missing: installing them with the OS package manager"
        install_packages postgres
    fi
}

token_path() {
    local path
    path=$("$STREAMING_PYTHON" -m common.environment get schwab_token_path)
    mkdir -p -m 700 "$(dirname "$path")"
    echo "$path"
}

ctl() { .venv/bin/supervisorctl -c "$PWD/supervisord.conf" "$@"; }

prepare_var() {  # what supervisord's programs expect to find: their directories and the embedded cluster
    mkdir -p "$STREAMING_VAR/log" "$STREAMING_VAR/data" && mkdir -p -m 700 "$STREAMING_VAR/run"
    if [ "$EMBEDDED_PG" = true ]; then
        echo "==> the embedded Postgres in $STREAMING_VAR/pg"
        "$STREAMING_PYTHON" -m common.store.localpg init --dir "$STREAMING_VAR/pg"
    fi
}

migrate() {
    echo "==> migrations"
    "$STREAMING_PYTHON" -m common.store.migrate --wait 60 | sed 's/^/    /'
}

# Migrations with the pipeline's writer stopped: one that changes a table (022's upgrade, a new key) must not race
# the writer's statements, nor leave an old writer storing into the new schema. Ingest journals meanwhile; the
# writer takes up where it left off. Nothing pending: nothing stopped.
migrate_writer_stopped() {
    local count
    count=$("$STREAMING_PYTHON" -m common.store.migrate --wait 60 --pending)
    if [ "$count" = 0 ]; then
        migrate
        return
    fi
    echo "==> $count migration(s) to apply: stopping the writer while they run"
    for _ in $(seq 300); do ctl pid >/dev/null 2>&1 && break; sleep 0.1; done  # supervisord just started
    ctl stop pipeline:writer >/dev/null
    migrate
    ctl start pipeline:writer >/dev/null
}

# Restart every running program whose code changed since the stamps of the last start (`code_hash`), so that
# `make run` or `make deploy` over a running supervisord never leaves old code running. `$1`: what `ctl reread`
# said (a program it changed was restarted by `ctl update` already).
restart_stale() {
    local stamps=$STREAMING_VAR/run/deployed program stale=()
    for program in $PROGRAMS; do
        # Up to date, or just restarted by update with the rest of its changed group.
        if [ "$(cat "$stamps/${program#*:}" 2>/dev/null)" = "$(code_hash "${program#*:}")" ] ||
            grep -qx "${program%%:*}: changed" <<<"$1"; then
            continue
        fi
        # A stopped one (say the simulator, with real credentials) starts with the new code anyway.
        if [[ $(ctl status "$program" || true) =~ RUNNING|STARTING|BACKOFF ]]; then stale+=("$program"); fi
    done
    if [ ${#stale[@]} -gt 0 ]; then
        echo "==> new code for ${stale[*]}: restarting them"
        # Stopped in the reverse of the order they start in, as supervisord does: ingest first, the writer late.
        ctl stop $(printf '%s\n' "${stale[@]}" | tac)
        ctl start "${stale[@]}"
    fi
}

stamp_code() {
    mkdir -p -m 700 "$STREAMING_VAR/run/deployed"
    for program in $PROGRAMS; do code_hash "${program#*:}" >"$STREAMING_VAR/run/deployed/${program#*:}"; done
}

wait_running() {  # every program supervisord started is RUNNING, three checks in a row; else say why not
    local status bad=() steady=0 program
    for _ in $(seq 60); do
        status=$(ctl status 2>&1 || true)
        mapfile -t bad < <(awk '$2 ~ /^(BACKOFF|FATAL|EXITED|UNKNOWN)$/ {print $1}' <<<"$status")
        [ ${#bad[@]} -eq 0 ] || break
        if awk '$2 != "RUNNING" && $2 != "STOPPED" {found = 1} END {exit found}' <<<"$status"; then
            steady=$((steady + 1))
            if [ $steady -ge 3 ]; then
                echo "$status"
                return 0
            fi
        else
            steady=0
        fi
        sleep 0.5
    done
    echo "$status"
    [ ${#bad[@]} -gt 0 ] || mapfile -t bad < <(awk '$2 != "RUNNING" && $2 != "STOPPED" {print $1}' <<<"$status")
    for program in "${bad[@]}"; do
        echo "==> $program is not running; the end of its log ($STREAMING_VAR/log/${program#*:}.log):" >&2
        tail -n 15 "$STREAMING_VAR/log/${program#*:}.log" >&2 || true
    done
    return 1
}

start() {
    local reread
    prepare_var
    if ctl pid >/dev/null 2>&1; then
        echo "==> supervisord is already running: applying supervisord.conf and new code (new settings need make stop first)"
        reread=$(ctl reread)
        migrate_writer_stopped
        ctl update
        restart_stale "$reread"
    else
        echo "==> starting supervisord"
        .venv/bin/supervisord -c "$PWD/supervisord.conf"
        migrate_writer_stopped
    fi
    stamp_code
    echo "==> waiting for every program to run"
    wait_running
    echo
    echo "Running. Follow it with: make logs   (one actor: make logs ACTOR=writer)"
    echo "State: make status   Health: make health   Stop: make stop"
    if [ "$EMBEDDED_PG" = true ]; then
        echo "Data: psql \"postgresql://postgres@/streaming?host=$STREAMING_VAR/pg/run\""
    else
        echo "Data: in the database DATABASE_URL names (make settings shows it, password masked)"
    fi
}

stop_supervisord() {
    if ! ctl pid >/dev/null 2>&1; then
        echo "not running"
        return
    fi
    ctl shutdown
    for _ in $(seq 1200); do
        [ -e "$STREAMING_VAR/run/supervisord.pid" ] || return 0
        sleep 0.1
    done
    echo "supervisord still running after 120 s" >&2
    exit 1
}

clean() {
    local answer=no token
    stop_supervisord
    rm -rf "$STREAMING_VAR/log" "$STREAMING_VAR/run"
    echo "deleted the logs and sockets under $STREAMING_VAR"
    token=$("$STREAMING_PYTHON" -m common.environment get schwab_token_path 2>/dev/null || true)
    if [ "${CONFIRM:-}" = 1 ]; then
        answer=yes
    elif [ -t 0 ]; then
        read -r -p "Also delete the database ($STREAMING_VAR/pg) and the journals ($STREAMING_VAR/data)? [y/N] " answer
    fi
    case $answer in
        y | yes | Y | YES)
            "$STREAMING_PYTHON" -m common.store.localpg remove --dir "$STREAMING_VAR/pg"
            rm -rf "$STREAMING_VAR/pg" "$STREAMING_VAR/data/journal" "$STREAMING_VAR/data/offsets" \
                "$STREAMING_VAR/data/dead-letter" "$STREAMING_VAR/run"
            echo "deleted the database and the journals" ;;
        *) echo "kept the database and the journals (make clean CONFIRM=1 deletes them too)" ;;
    esac
    if [ -n "$token" ] && [ -e "$token" ]; then echo "kept the Schwab token file $token"; fi
}

code_hash() {  # what program $1 runs: its module, what all of them share, the dependencies
    local files=(pyproject.toml requirements.lock common)
    if [ -f "actors/$1.py" ]; then files+=(actors/__init__.py "actors/$1.py"); fi
    find "${files[@]}" -type f ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum
}

apply() {
    local stamps=$STREAMING_VAR/run/deployed systemd=false running=false reread unit started
    postgres_binaries
    prepare_var
    mkdir -p -m 700 "$stamps"

    if [ -d /run/systemd/system ]; then
        systemd=true
        unit=$(sed "s|@PREFIX@|$PWD|g; s|@USER@|$(id -un)|g" deploy/streaming-service.service)
        if [ "$unit" != "$(cat "$UNIT" 2>/dev/null)" ]; then
            echo "$unit" | $SUDO tee "$UNIT" >/dev/null
            $SUDO systemctl daemon-reload
        fi
        $SUDO systemctl enable --quiet streaming-service
    fi

    # supervisord's own environment changes only when it starts again.
    started=$({ cat deploy/supervisord-env.sh deploy/streaming-service.service; cat .env 2>/dev/null || true; } |
        sha256sum)
    if ctl pid >/dev/null 2>&1; then
        if [ "$(cat "$stamps/supervisord" 2>/dev/null)" = "$started" ]; then
            running=true
        else
            echo "==> restarting supervisord: .env or how it is started changed"
            stop_supervisord
        fi
    fi

    if $running; then
        echo "==> supervisord is running: applying the changes"
        reread=$(ctl reread)
        echo "$reread"
        migrate_writer_stopped
        ctl update
        restart_stale "$reread"
    else
        if $systemd; then
            echo "==> starting supervisord with systemd (streaming-service.service)"
            $SUDO systemctl start streaming-service
        else
            echo "==> no systemd on this host: supervisord started as a daemon, it will not come back after a reboot"
            # This script runs under deploy/supervisord-env.sh, as the unit's ExecStart does.
            .venv/bin/supervisord -c "$PWD/supervisord.conf"
        fi
        migrate_writer_stopped
    fi

    echo "$started" >"$stamps/supervisord"
    stamp_code
    echo
    wait_running
}

case ${1:-} in
    python) find_python ;;
    prepare) prepare "$2" ;;
    venv) venv "${2:-requirements.lock}" ;;
    postgres-binaries) postgres_binaries ;;
    prepare-var) prepare_var ;;
    migrate) migrate ;;
    migrate-writer-stopped) migrate_writer_stopped ;;
    start) start ;;
    stop) stop_supervisord ;;
    clean) clean ;;
    token-path) token_path ;;
    apply) apply ;;
    *) echo "usage: host.sh python | prepare PREFIX | venv [LOCK] | postgres-binaries | prepare-var | migrate |" \
        "migrate-writer-stopped |" \
        "start | stop | clean | token-path | apply" >&2; exit 2 ;;
esac
