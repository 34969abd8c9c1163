#!/usr/bin/env bash
# Run a command (supervisord, supervisorctl, a migration) in a deployed checkout
# with the environment `make run` gives supervisord, on a host without make:
# the checkout's .env, then what the Makefile derives from it. systemd's unit
# and `make deploy` both start supervisord through here.
set -euo pipefail
prefix=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ -f "$prefix/.env" ]; then
    # KEY=value lines taken literally: sourcing would expand a password's $ or run its &.
    while IFS= read -r line || [ -n "$line" ]; do
        if [[ $line =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
            export "${BASH_REMATCH[1]}=${BASH_REMATCH[2]}"
        fi
    done <"$prefix/.env"
fi

export STREAMING_VAR=${STREAMING_VAR:-$prefix/var}
export STREAMING_PYTHON=$prefix/.venv/bin/python
# No DATABASE_URL: the local Postgres under var/pg. No Schwab credentials: the simulator.
# (The local URL counts as none, so running under this script twice changes nothing.)
local_url="postgresql://postgres@/streaming?host=$STREAMING_VAR/pg/run"
if [ -n "${DATABASE_URL:-}" ] && [ "$DATABASE_URL" != "$local_url" ]; then
    export EMBEDDED_PG=false
else
    export EMBEDDED_PG=true DATABASE_URL=$local_url
fi
if [ -n "${SCHWAB_APP_KEY:-}" ] && [ -n "${SCHWAB_APP_SECRET:-}" ]; then
    export EMBEDDED_SIM=false
else
    export EMBEDDED_SIM=true
fi
export PATH=$prefix/.venv/bin:$PATH

cd "$prefix"
exec "$@"
