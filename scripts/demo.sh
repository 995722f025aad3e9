#!/usr/bin/env bash
# `make demo`: gallra on a built-in demo shop.
# Installs what is missing, builds the release binary, starts a throwaway PostgreSQL (or uses
# $GALLRA_DATABASE), loads the demo shop (DEMO_CUSTOMERS customers, default 10000) and shows
# what gallra does with it. The throwaway server is removed at the end unless DEMO_KEEP=1.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/deps.sh
customers=${DEMO_CUSTOMERS:-10000}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "Building gallra (release)"
swift build -c release 2>&1 | tail -n 1
gallra="$(swift build -c release --show-bin-path)/gallra"

work=""
if [ -z "${GALLRA_DATABASE:-}" ]; then
    work=$(mktemp -d /tmp/gallra-demo.XXXXXX)
    chmod 0755 "$work"
    cleanup() {
        status=$?
        if [ "${DEMO_KEEP:-0}" = 1 ]; then
            echo "The demo server keeps running: GALLRA_DATABASE=\"$GALLRA_DATABASE\"; stop it with scripts/pg.sh stop $work/pg"
        else
            scripts/pg.sh stop "$work/pg" || true
            rm -rf "$work"
        fi
        exit $status
    }
    trap cleanup EXIT INT TERM
    step "Starting a throwaway PostgreSQL"
    server=$(scripts/pg.sh start "$work/pg")
    psql "$server" -qX -c "CREATE DATABASE shop" >/dev/null
    GALLRA_DATABASE="$server dbname=shop"
    echo "$GALLRA_DATABASE"
fi
export GALLRA_DATABASE

step "Loading the demo shop ($customers customers)"
# Never replace a schema `shop` that is not the demo's own.
existing=$(psql "$GALLRA_DATABASE" -qAtX -c \
    "SELECT coalesce(obj_description(oid, 'pg_namespace'), '') FROM pg_namespace WHERE nspname = 'shop'")
if [ -n "$existing" ] && [[ "$existing" != "gallra demo shop"* ]]; then
    echo "demo: the database already has a schema \"shop\" that is not gallra's demo; refusing to replace it." >&2
    echo "      Unset GALLRA_DATABASE to use a throwaway server, or point it at an empty database." >&2
    exit 78
fi
psql "$GALLRA_DATABASE" -qX -v ON_ERROR_STOP=1 -f config/demo/schema.sql >/dev/null
time psql "$GALLRA_DATABASE" -qX -v ON_ERROR_STOP=1 -v customers="$customers" -f config/demo/generate.sql >/dev/null
psql "$GALLRA_DATABASE" -qX -v ON_ERROR_STOP=1 -f config/demo/check.sql

step "gallra"
show "$gallra" version
show "$gallra" check

step "Policies: check them against the shop's catalog and see what each would touch"
show "$gallra" policy validate config/policies

step "gallra's own schema, then the policies stored in it"
show "$gallra" migrate
show "$gallra" policy apply config/policies
show "$gallra" policy list
