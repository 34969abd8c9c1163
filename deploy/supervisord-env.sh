#!/usr/bin/env bash
# Run a command in this checkout with the service's settings, exactly as make does: .env read
# with python-dotenv's grammar, the environment over it, every setting checked, and what
# supervisord.conf derives from them (common/environment.py). systemd's unit, make deploy and
# the container's entry point all start supervisord through here, so a bad or missing setting
# stops it here (exit 2), naming the variable, before anything runs.
set -euo pipefail
prefix=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$prefix"
exec "$prefix/.venv/bin/python" -m common.environment exec -- "$@"
