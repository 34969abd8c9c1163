#!/usr/bin/env bash
# make deploy: copy this checkout to a host over SSH and run it there under
# supervisord, started by systemd. Idempotent: deployed again with nothing
# changed, nothing restarts. deploy/README.md has the details.
#
#   HOST          the host (required)
#   SSH_USER      ec2-user, Amazon Linux 2023's; ubuntu on Ubuntu
#   SSH_KEY       private key file, e.g. Lightsail's .pem (default: ssh's own choice)
#   SSH_PORT      22
#   SSH_OPTS      more ssh options, e.g. "-o StrictHostKeyChecking=accept-new"
#   PREFIX        /opt/streaming-service: where it lives on the host
#   COPY_SECRETS  1: also copy this checkout's .env and Schwab token file over the host's
set -euo pipefail
cd "$(dirname "$0")/.."

: "${HOST:?is required: make deploy HOST=<ip> [SSH_USER=ec2-user] [SSH_KEY=key.pem] (see deploy/README.md)}"
PREFIX=${PREFIX:-/opt/streaming-service}
case $PREFIX in /*) ;; *) echo "make deploy: PREFIX must be an absolute path" >&2; exit 1 ;; esac
command -v rsync >/dev/null || { echo "make deploy: rsync is needed here too: install it" >&2; exit 1; }

TARGET=${SSH_USER:-ec2-user}@$HOST
# One string, split on spaces by the shell and by rsync -e alike: no spaces inside a path or an option.
SSH="ssh -o BatchMode=yes -p ${SSH_PORT:-22}${SSH_KEY:+ -i $SSH_KEY} ${SSH_OPTS:-}"
P=$(printf %q "$PREFIX")  # the remote shell splits the command line again
remote() { $SSH "$TARGET" "$@"; }

echo "==> $TARGET: prerequisites, $PREFIX"
remote "bash -s -- prepare $P" <deploy/host.sh

# The token file as `make run` here finds it; inside the checkout, it is no code to copy.
token=${SCHWAB_TOKEN_PATH:-${DATA_DIR:-${STREAMING_VAR:-var}/data}/schwab_token.json}
in_checkout=${token#"$PWD"/}

echo "==> $TARGET: copying the code"
# Excluded files are also safe from --delete: the host keeps its .env, var/ (data, logs, token) and .venv.
rsync -rlpt --compress --delete -e "$SSH" \
    --exclude=/.git --exclude=/.venv --exclude=/var --exclude='/.env*' --exclude='*token*.json' \
    --exclude="/${in_checkout#./}" --exclude=__pycache__/ --exclude=.pytest_cache/ --exclude=.ruff_cache/ \
    --exclude='*.egg-info/' ./ "$TARGET:$PREFIX/"

echo "==> $TARGET: the Python environment"
remote "cd $P && bash deploy/host.sh venv"

if [ "${COPY_SECRETS:-}" = 1 ]; then
    if [ -f .env ]; then
        echo "==> COPY_SECRETS=1: copying .env"
        rsync -p --chmod=F600 -e "$SSH" .env "$TARGET:$PREFIX/.env"
    fi
    if [ -f "$token" ]; then
        # Where the host's (new) .env puts it there.
        destination=$(remote "$P/deploy/supervisord-env.sh bash deploy/host.sh token-path")
        echo "==> COPY_SECRETS=1: copying $token to $destination"
        rsync -p --chmod=F600 -e "$SSH" "$token" "$TARGET:$destination"
    else
        echo "==> COPY_SECRETS=1: no token file at $token, none copied"
    fi
fi

echo "==> $TARGET: installing and starting"
remote "$P/deploy/supervisord-env.sh bash deploy/host.sh apply"
