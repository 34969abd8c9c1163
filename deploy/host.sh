#!/usr/bin/env bash
# The host's half of `make deploy`; deploy/deploy.sh runs it over SSH.
#
#   prepare PREFIX  before the code is there (read from stdin): Python 3.11, rsync, make, PREFIX ours
#   token-path      where the Schwab token file belongs here (its directory made, 0700)
#   apply           the venv, Postgres' binaries, the systemd unit; start supervisord, or
#                   update it and restart only the programs whose code changed
#
# token-path and apply run under deploy/supervisord-env.sh, in PREFIX: they see what supervisord sees.
set -euo pipefail

SUDO=$([ "$(id -u)" = 0 ] || echo "sudo -n")
UNIT=/etc/systemd/system/streaming-service.service
# In supervisord's priority (start) order. Not postgres: a restart would cut every session, and
# its code is the server's, not ours.
PROGRAMS="embedded:simulator pipeline:writer pipeline:metrics pipeline:indicator pipeline:options pipeline:ingest"

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
        echo "installing ${names[*]}"
        $SUDO dnf install -y -q "${names[@]}"
    elif command -v apt-get >/dev/null; then
        for name; do
            case $name in
                python) names+=(python3.11 python3.11-venv) ;;
                postgres)
                    # The binaries only: no cluster of the OS's own beside ours on a 512 MB machine.
                    $SUDO mkdir -p /etc/postgresql-common/createcluster.d
                    echo "create_main_cluster = false" |
                        $SUDO tee /etc/postgresql-common/createcluster.d/streaming-service.conf >/dev/null
                    names+=(postgresql) ;;
                *) names+=("$name") ;;
            esac
        done
        echo "installing ${names[*]}"
        $SUDO apt-get update -q
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${names[@]}"
    else
        echo "neither dnf nor apt-get here: install $* by hand and deploy again" >&2
        exit 1
    fi
}

python311() {  # pyproject.toml wants Python 3.11, with venv's ensurepip (a package of its own on Ubuntu)
    local python
    for python in python3.11 python3; do
        if command -v "$python" >/dev/null &&
            "$python" -c 'import ensurepip, sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            echo "$python"
            return
        fi
    done
    return 1
}

prepare() {
    local prefix=$1 missing=()
    python311 >/dev/null || missing+=(python)
    command -v rsync >/dev/null || missing+=(rsync)
    command -v make >/dev/null || missing+=(make)  # make login / status / logs on the host
    if [ ${#missing[@]} -gt 0 ]; then install_packages "${missing[@]}"; fi
    if ! mkdir -p "$prefix" 2>/dev/null || [ ! -w "$prefix" ]; then
        $SUDO mkdir -p "$prefix"
        $SUDO chown "$(id -un):$(id -gn)" "$prefix"
    fi
}

token_path() {  # as common/config.py finds it; relative paths are from PREFIX, where supervisord runs
    local path
    path=$(realpath -m "${SCHWAB_TOKEN_PATH:-${DATA_DIR:-$STREAMING_VAR/data}/schwab_token.json}")
    mkdir -p -m 700 "$(dirname "$path")"
    echo "$path"
}

ctl() { .venv/bin/supervisorctl -c "$PWD/supervisord.conf" "$@"; }

code_hash() {  # what program $1 runs: its module, what all of them share, the dependencies
    local files=(pyproject.toml common)
    if [ -f "actors/$1.py" ]; then files+=(actors/__init__.py "actors/$1.py"); fi
    find "${files[@]}" -type f ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum
}

stop_supervisord() {
    ctl shutdown
    for _ in $(seq 1200); do
        [ -e "$STREAMING_VAR/run/supervisord.pid" ] || return 0
        sleep 0.1
    done
    echo "supervisord still running after 120 s" >&2
    exit 1
}

apply() {
    local stamps=$STREAMING_VAR/run/deployed systemd=false running=false reread program stale=() unit started
    if [ "$EMBEDDED_PG" = true ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 &&
        ! command -v initdb >/dev/null; then
        install_packages postgres
    fi
    if [ ! -x .venv/bin/python ]; then "$(python311)" -m venv .venv; fi
    # The Makefile's stamp too: make login / status on the host then take this venv as set up.
    if [ "$(cat .venv/.installed 2>/dev/null)" != "$(sha256sum pyproject.toml)" ]; then
        echo "==> installing the dependencies into $PWD/.venv"
        .venv/bin/python -m pip install --quiet -e .
        sha256sum pyproject.toml >.venv/.installed
    fi

    mkdir -p "$STREAMING_VAR/log" "$STREAMING_VAR/data" && mkdir -p -m 700 "$STREAMING_VAR/run" "$stamps"
    if [ "$EMBEDDED_PG" = true ]; then "$STREAMING_PYTHON" -m common.localpg init --dir "$STREAMING_VAR/pg"; fi

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
        "$STREAMING_PYTHON" -m common.migrate --wait 60
        ctl update
        for program in $PROGRAMS; do
            # Up to date, or just restarted by update with the rest of its changed group.
            if [ "$(cat "$stamps/${program#*:}" 2>/dev/null)" = "$(code_hash "${program#*:}")" ] ||
                grep -qx "${program%%:*}: changed" <<<"$reread"; then
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
    else
        if $systemd; then
            echo "==> starting supervisord with systemd (streaming-service.service)"
            $SUDO systemctl start streaming-service
        else
            echo "==> no systemd on this host: supervisord started as a daemon, it will not come back after a reboot"
            # This script runs under deploy/supervisord-env.sh, as the unit's ExecStart does.
            .venv/bin/supervisord -c "$PWD/supervisord.conf"
        fi
        "$STREAMING_PYTHON" -m common.migrate --wait 60
    fi

    echo "$started" >"$stamps/supervisord"
    for program in $PROGRAMS; do code_hash "${program#*:}" >"$stamps/${program#*:}"; done
    echo
    ctl status || true
}

case ${1:-} in
    prepare) prepare "$2" ;;
    token-path) token_path ;;
    apply) apply ;;
    *) echo "usage: host.sh prepare PREFIX | token-path | apply" >&2; exit 2 ;;
esac
