#!/usr/bin/env bash
# The compose tests: docker-compose.yml from the tree, driven from outside as a client would
# (build/compose_test.py). Run after the README's test command (`.ci/run` does), which builds
# the binaries it puts in the images. Fails with a clear message when there is no Docker engine.
#
#   build/compose-test.sh [path/to/fastbreak [path/to/otlp-sink]]     (default: target/debug)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! docker info >/dev/null 2>&1; then
    echo "compose tests: no Docker engine answers here (docker info failed); they need one" >&2
    exit 1
fi
if command -v docker-compose >/dev/null 2>&1; then
    COMPOSE="docker-compose"
elif docker compose version >/dev/null 2>&1; then
    COMPOSE="docker compose"
else
    echo "compose tests: neither docker-compose nor docker compose is installed" >&2
    exit 1
fi
FASTBREAK_BIN=${1:-target/debug/fastbreak}
SINK_BIN=${2:-$(dirname "$FASTBREAK_BIN")/otlp-sink}
if [ ! -x "$SINK_BIN" ]; then
    cargo build -q -p fastbreak-integration-tests --bin otlp-sink
fi
# Images of the compose file that cannot be pulled here are made locally.
STAND_INS_REBUILD=${STAND_INS_REBUILD:-} bash build/stand-ins.sh "$FASTBREAK_BIN" "$SINK_BIN"

PYCLIENT=integration-tests/clients/python
if [ ! -x "$PYCLIENT/.venv/bin/python" ]; then
    python3 -m venv "$PYCLIENT/.venv"
    "$PYCLIENT/.venv/bin/pip" install -q -r "$PYCLIENT/requirements.txt" -r deploy/requirements.txt
fi
# Secrets of this run only, in the env file compose reads (never committed).
if [ ! -f .env ]; then
    {
        echo "POSTGRES_PASSWORD=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        echo "FASTBREAK_INTERNAL_TOKEN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        echo "FASTBREAK_OPERATOR_TOKEN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    } > .env
    CREATED_ENV=1
fi
status=0
COMPOSE="$COMPOSE" "$PYCLIENT/.venv/bin/python" build/compose_test.py || status=$?
[ -n "${CREATED_ENV:-}" ] && rm -f .env
exit $status
