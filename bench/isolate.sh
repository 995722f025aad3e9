#!/usr/bin/env bash
# `make bench`, a step of its own: what one refused or locked subject costs a live run (docs/benchmark.md).
#
#   bench/isolate.sh [GALLRA_BINARY]      (default .build/release/gallra, built by scripts/release.sh if missing)
#
# Starts a throwaway PostgreSQL (scripts/pg.sh), generates the demo shop (BENCH_N customers, default 20000) once into
# a template database, and times `gallra run --once --policy inactive-customers` (batches of ISOLATE_BATCH, default
# 50, no pause) on a fresh copy of it in three ways, taking turns, ISOLATE_ROUNDS times each (default 3, median):
#
#   undisturbed    nothing else happens
#   locked_row     another session holds one order row of one due customer (SELECT ... FOR UPDATE) for the whole run
#   refused        a trigger raises (P0001) when that customer is deleted
#
# Prints one line per way: the median wall time in ms, the ratio to the undisturbed run, the run's exit status and
# the subjects it left (the target: 1 left, at most 1.2x). No thresholds: figures only. The server is removed on
# exit, whatever happens.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

customers=${BENCH_N:-20000}
batch=${ISOLATE_BATCH:-50}
rounds=${ISOLATE_ROUNDS:-3}
[[ "$customers" =~ ^[1-9][0-9]*$ && "$batch" =~ ^[1-9][0-9]*$ && "$rounds" =~ ^[1-9][0-9]?$ ]] || {
    echo "isolate.sh: BENCH_N=$customers, ISOLATE_BATCH=$batch and ISOLATE_ROUNDS=$rounds must be whole numbers from 1, e.g. 20000, 50 and 3" >&2
    exit 64
}

bench=isolate.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh

bench_binary "$@"

work=$(mktemp -d /tmp/gallra-isolate-bench.XXXXXX)
chmod 0755 "$work"
holder=
cleanup() {
    status=$?
    if [ -n "$holder" ]; then kill "$holder" 2>/dev/null || true; fi
    scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT INT TERM


log "starting a throwaway PostgreSQL, generating the demo shop ($customers customers)"
server=$(scripts/pg.sh start "$work/pg")
unset NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID JOURNAL_STREAM CREDENTIALS_DIRECTORY GALLRA_CONFIG
while read -r name; do unset "$name"; done < <(env | sed -n 's/^\(\(GALLRA\|PG\)[A-Z_]*\)=.*/\1/p')
quiet psql "$server" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE isolate_tpl"
tpl="$server dbname=isolate_tpl"
quiet psql "$tpl" -qX -v ON_ERROR_STOP=1 -f config/demo/schema.sql
quiet psql "$tpl" -qX -v ON_ERROR_STOP=1 -v customers="$customers" \
    -v as_of='2026-11-29 00:00:00+00' -f config/demo/generate.sql
(umask 077; head -c 48 /dev/urandom | base64 >"$work/audit-key")
export GALLRA_AUDIT_KEY_FILE="$work/audit-key"
GALLRA_DATABASE="$tpl" quiet "$gallra" migrate
sed -E "s/^limits:.*/limits: { batch_size: $batch, max_subjects_per_run: 1000000, max_fraction: 1, pause: 0% }/" \
    config/policies/inactive-customers.yaml >"$work/inactive-customers.yaml"
GALLRA_DATABASE="$tpl" quiet "$gallra" policy apply "$work/inactive-customers.yaml"
quiet psql "$tpl" -qX -v ON_ERROR_STOP=1 -c "VACUUM ANALYZE"
sql() { psql "$1" -qAtX -v ON_ERROR_STOP=1 -c "$2"; }

# A due customer in the middle of the key order, with an order.
victim=$(sql "$tpl" "SELECT c.id || ' ' || min(o.id) FROM shop.customer AS c JOIN shop.\"order\" AS o ON o.customer_id = c.id
    WHERE c.last_seen_at < '2026-11-29 00:00:00+00'::timestamptz - interval '1 year' AND c.legal_hold IS NOT TRUE
    GROUP BY c.id ORDER BY c.id OFFSET (SELECT count(*) / 2 FROM shop.customer
        WHERE last_seen_at < '2026-11-29 00:00:00+00'::timestamptz - interval '1 year') LIMIT 1")
read -r customer order <<<"$victim"
[ -n "$order" ] || { echo "isolate.sh: no due customer with an order; raise BENCH_N" >&2; exit 70; }

now_ms() { date +%s%3N; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# One run on a fresh copy: prints "ms status left".
measure() {
    local way=$1 db="isolate_$1_$2"
    quiet psql "$server" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db TEMPLATE isolate_tpl"
    local conninfo="$server dbname=$db"
    case $way in
    locked_row)
        psql "$conninfo application_name=row_holder" -qAtX -c "BEGIN" \
            -c "SELECT id FROM shop.\"order\" WHERE id = $order FOR UPDATE" -c "SELECT pg_sleep(3600)" \
            >/dev/null 2>&1 &
        holder=$!
        for _ in $(seq 1 100); do
            [ "$(sql "$conninfo" "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'row_holder' AND wait_event = 'PgSleep'")" = 1 ] && break
            sleep 0.05
        done
        ;;
    refused)
        quiet psql "$conninfo" -qX -v ON_ERROR_STOP=1 -c "CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS \$\$
            BEGIN IF OLD.id = $customer THEN RAISE EXCEPTION 'kept by the shop'; END IF; RETURN OLD; END \$\$" \
            -c "CREATE TRIGGER refuse BEFORE DELETE ON shop.customer FOR EACH ROW EXECUTE FUNCTION public.refuse()"
        ;;
    esac
    local started status=0
    started=$(now_ms)
    GALLRA_DATABASE="$conninfo" "$gallra" run --once --as-of 2026-11-29T00:00:00Z --policy inactive-customers \
        --format json >"$work/$db.json" 2>>"$work/runs.log" || status=$?
    local ms=$(($(now_ms) - started))
    if [ -n "$holder" ]; then
        sql "$conninfo" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'row_holder'" >/dev/null
        wait "$holder" 2>/dev/null || true
        holder=
    fi
    local left
    left=$(jq '[.report.policies[] | (.left_subjects // []) | length] | add' "$work/$db.json")
    quiet psql "$server" -qX -v ON_ERROR_STOP=1 -c "DROP DATABASE $db"
    echo "$ms $status $left"
}

# The ways take turns round by round, so that a server warming up or a neighbour's load favours none of them.
declare -A results
for round in $(seq 1 "$rounds"); do
    log "round $round of $rounds"
    for way in undisturbed locked_row refused; do results[$way]+="$(measure "$way" "$round")"$'\n'; done
done
base=
for way in undisturbed locked_row refused; do
    lines=$(printf '%s' "${results[$way]}")
    ms=$(cut -d' ' -f1 <<<"$lines" | median)
    statuses=$(cut -d' ' -f2 <<<"$lines" | sort -u | paste -sd,)
    left=$(cut -d' ' -f3 <<<"$lines" | sort -u | paste -sd,)
    [ -n "$base" ] || base=$ms
    printf 'isolate_%s_ms %s ratio %s exit %s left %s\n' "$way" "$ms" \
        "$(awk -v a="$ms" -v b="$base" 'BEGIN { printf "%.2f", a / b }')" "$statuses" "$left"
done
