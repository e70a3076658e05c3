#!/usr/bin/env bash
# Local images standing in for the ones docker-compose.yml names, for machines that cannot pull
# from a registry (anywhere else, the real images are pulled and this script is not needed):
#
#   debian:bookworm-slim            a minimal Debian made with debootstrap (the FastBreak image's base)
#   postgres:15                     Debian's PostgreSQL 15 on it, started the way the official image is
#                                   (POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, data in PGDATA)
#   jaegertracing/all-in-one:1.57   a small OTLP receiver (integration-tests' otlp-sink) answering the
#                                   part of Jaeger's query API the compose tests read
#   fastbreak:dev                   the FastBreak image, from a binary built on this host
#
# The root file systems are made on the host with debootstrap (packages included) and imported,
# so no container needs the network. Images already present are kept (STAND_INS_REBUILD=1
# makes them again). Needs root, debootstrap (installed when missing) and a Docker engine.
#
#   build/stand-ins.sh [path/to/fastbreak [path/to/otlp-sink]]
set -euo pipefail
cd "$(dirname "$0")/.."

FASTBREAK_BIN=${1:-target/release/fastbreak}
SINK_BIN=${2:-$(dirname "$FASTBREAK_BIN")/otlp-sink}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

have() { [ -z "${STAND_INS_REBUILD:-}" ] && docker image inspect "$1" >/dev/null 2>&1; }

if ! command -v debootstrap >/dev/null 2>&1; then
    echo "installing debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

# A root file system of Debian bookworm with `packages`, imported as `tag` with `changes`.
import_rootfs() {
    local tag=$1 packages=$2 setup=$3; shift 3
    local root="$WORK/${tag//[:\/]/-}"
    echo "debootstrap for $tag${packages:+ (with $packages)}"
    debootstrap --variant=minbase ${packages:+--include="$packages"} bookworm "$root" "$MIRROR" >/dev/null
    [ -n "$setup" ] && "$setup" "$root"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    local changes=()
    for change in "$@"; do changes+=(--change "$change"); done
    tar -C "$root" -c . | docker import "${changes[@]}" - "$tag" >/dev/null
    echo "imported $tag: $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
}

postgres_setup() {
    local root=$1
    cat > "$root/usr/local/bin/docker-entrypoint.sh" <<'SCRIPT'
#!/bin/sh
# Starts PostgreSQL 15 the way the official image does: a cluster made in PGDATA on first start
# for POSTGRES_USER with POSTGRES_PASSWORD (SCRAM), POSTGRES_DB created, listening everywhere.
set -e
PGBIN=/usr/lib/postgresql/15/bin
: "${PGDATA:=/var/lib/postgresql/data}" "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
mkdir -p "$PGDATA" /run/postgresql
chown -R postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    printf '%s' "$POSTGRES_PASSWORD" > /tmp/pwfile
    chown postgres /tmp/pwfile
    su postgres -s /bin/sh -c "$PGBIN/initdb -D '$PGDATA' -U '$POSTGRES_USER' --pwfile=/tmp/pwfile --auth=scram-sha-256 >/dev/null"
    rm -f /tmp/pwfile
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D '$PGDATA' -o '-c listen_addresses=' -w start >/dev/null"
    if [ "$POSTGRES_DB" != postgres ]; then
        su postgres -s /bin/sh -c "PGPASSWORD='$POSTGRES_PASSWORD' psql -h /run/postgresql -U '$POSTGRES_USER' -d postgres -qc 'CREATE DATABASE \"$POSTGRES_DB\"'"
    fi
    su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D '$PGDATA' -m fast -w stop >/dev/null"
fi
exec su postgres -s /bin/sh -c "exec $PGBIN/postgres -D '$PGDATA' -c listen_addresses='*'"
SCRIPT
    chmod +x "$root/usr/local/bin/docker-entrypoint.sh"
}

have debian:bookworm-slim || import_rootfs debian:bookworm-slim "" "" 'CMD ["bash"]'
have postgres:15 || import_rootfs postgres:15 "postgresql-15,postgresql-client-15" postgres_setup \
    'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/bin:/bin' \
    'ENV PGDATA=/var/lib/postgresql/data' \
    'EXPOSE 5432' \
    'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]'

if ! have jaegertracing/all-in-one:1.57; then
    [ -x "$SINK_BIN" ] || { echo "no otlp-sink binary at $SINK_BIN: cargo build -p fastbreak-integration-tests --bin otlp-sink" >&2; exit 1; }
    mkdir -p "$WORK/sink" && cp "$SINK_BIN" "$WORK/sink/otlp-sink"
    printf 'FROM debian:bookworm-slim\nCOPY otlp-sink /usr/local/bin/otlp-sink\nEXPOSE 4317 16686\nENTRYPOINT ["/usr/local/bin/otlp-sink"]\n' > "$WORK/sink/Dockerfile"
    docker build -q -t jaegertracing/all-in-one:1.57 "$WORK/sink" >/dev/null 2>&1
    echo "built jaegertracing/all-in-one:1.57 (the otlp-sink stand-in)"
fi

[ -x "$FASTBREAK_BIN" ] || { echo "no fastbreak binary at $FASTBREAK_BIN: cargo build --release -p fastbreak" >&2; exit 1; }
docker build -q -f build/Dockerfile --target host --build-arg HOST_BINARY="$FASTBREAK_BIN" -t fastbreak:dev . >/dev/null
echo "built fastbreak:dev from $FASTBREAK_BIN: $(docker image inspect -f '{{.Size}}' fastbreak:dev | awk '{printf "%.0f MB", $1/1e6}')"
