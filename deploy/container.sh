#!/usr/bin/env bash
# The container's main process (under deploy/supervisord-env.sh, as on a host):
# the embedded Postgres initialised when it is the one in use, supervisord in
# the foreground, and the migrations once Postgres answers. docker stop's
# SIGTERM goes to supervisord, which stops the actors in order.
set -euo pipefail
mkdir -p "$STREAMING_VAR/log" "$STREAMING_VAR/data" && mkdir -p -m 700 "$STREAMING_VAR/run"
if [ "$EMBEDDED_PG" = true ]; then python -m common.localpg init --dir "$STREAMING_VAR/pg"; fi
supervisord -n -c supervisord.conf &
supervisord=$!
trap 'kill -TERM "$supervisord"' TERM INT
python -m common.migrate --wait 60
while kill -0 "$supervisord" 2>/dev/null; do wait "$supervisord" || true; done
