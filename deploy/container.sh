#!/usr/bin/env bash
# The container's main process (under deploy/supervisord-env.sh, as on a host): the embedded
# Postgres initialised when it is the one in use, supervisord in the foreground, and the
# migrations once Postgres answers, with the writer stopped while any are pending. docker stop's SIGTERM goes to supervisord, which stops the
# actors in order.
set -euo pipefail
bash deploy/host.sh prepare-var
supervisord -n -c supervisord.conf &
supervisord=$!
trap 'kill -TERM "$supervisord"' TERM INT
bash deploy/host.sh migrate-writer-stopped
while kill -0 "$supervisord" 2>/dev/null; do wait "$supervisord" || true; done
