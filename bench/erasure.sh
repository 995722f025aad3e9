#!/usr/bin/env bash
# `make bench`, a step of its own: the time from an erasure request to done, through the service (docs/benchmark.md).
#
#   bench/erasure.sh [GALLRA_BINARY]      (default .build/release/gallra, built by scripts/release.sh if missing)
#
# Starts a throwaway PostgreSQL (scripts/pg.sh), loads the demo shop (ERASURE_CUSTOMERS customers, default 1000)
# with the shipped policies, starts `gallra run` (the service) on it, and records ERASURE_REQUESTS requests (default
# 50) one at a time through gallra.request_erasure as a login role of the shop's in gallra_app, each once the one
# before is decided (polled through gallra.erasure_status every 50 ms). Prints one line per figure, in ms:
#
#   erasure_requests N          the requests recorded, and how many were done (the others were refused)
#   erasure_latency_median_ms X decided_at - requested_at from gallra.erasure_request (the server's clock):
#   erasure_latency_max_ms X    the notification, the check of the queue, the checks of the request, the live run
#                               of the on-request policy for the subject, and the decision
#   erasure_run_median_ms X     of which the live run (gallra.run finished_at - started_at), its share
#   erasure_observed_median_ms X  the same seen by the shop: from the call's return to the first poll showing done
#   erasure_once_ms X           for comparison, the wall time of `gallra run --once --policy erasure-requests` acting
#                               on one due request without the service (process start, connection, policy loading,
#                               the run; it leaves the request undecided), median of 5
#
# No thresholds: figures only. The server is removed on exit, whatever happens.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

customers=${ERASURE_CUSTOMERS:-1000}
requests=${ERASURE_REQUESTS:-50}

bench=erasure.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh

bench_binary "$@"

work=$(mktemp -d /tmp/gallra-erasure-bench.XXXXXX)
chmod 0755 "$work"
daemon=
cleanup() {
    status=$?
    if [ -n "$daemon" ]; then
        kill -TERM "$daemon" 2>/dev/null || true
        wait "$daemon" 2>/dev/null || true
    fi
    scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT INT TERM


log "starting a throwaway PostgreSQL, loading the demo shop ($customers customers)"
bench_demo_shop "$customers" '2026-11-29 00:00:00+00'
quiet psql "$GALLRA_DATABASE" -qX -v ON_ERROR_STOP=1 -c "VACUUM ANALYZE"
(umask 077; head -c 48 /dev/urandom | base64 >"$work/audit-key")
export GALLRA_AUDIT_KEY_FILE="$work/audit-key"
quiet "$gallra" migrate
quiet "$gallra" policy apply config/policies
quiet psql "$GALLRA_DATABASE" -qX -v ON_ERROR_STOP=1 -c \
    "DO \$\$ BEGIN CREATE ROLE gallra_bench_shop LOGIN IN ROLE gallra_app; EXCEPTION WHEN duplicate_object THEN END \$\$"
shop="$GALLRA_DATABASE user=gallra_bench_shop"
sql() { psql "$GALLRA_DATABASE" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }

# Customers without a legal hold, as many as requests, plus 5 for the comparison.
mapfile -t keys < <(sql "SELECT id FROM shop.customer WHERE legal_hold IS NOT TRUE ORDER BY id LIMIT $((requests + 5))")
[ "${#keys[@]}" -eq $((requests + 5)) ] || {
    echo "erasure.sh: the demo shop has ${#keys[@]} customers without a hold; raise ERASURE_CUSTOMERS" >&2
    exit 70
}

log "starting the service"
"$gallra" run --log-level debug >"$work/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 1 200); do
    grep -q "erasure requests: next look in" "$work/daemon.log" && break
    kill -0 "$daemon" 2>/dev/null || { cat "$work/daemon.log" >&2; exit 70; }
    sleep 0.1
done

log "$requests requests, one at a time"
now_ms() { date +%s%3N; }
observed=()
for key in "${keys[@]:0:$requests}"; do
    id=$(psql "$shop" -qAtX -v ON_ERROR_STOP=1 -c "SELECT gallra.request_erasure('shop.customer', '$key', 'bench')")
    returned=$(now_ms)
    for _ in $(seq 1 1200); do
        status=$(psql "$shop" -qAtX -c "SELECT status FROM gallra.erasure_status($id)")
        [ "$status" != pending ] && break
        sleep 0.05
    done
    [ "$status" != pending ] || { echo "erasure.sh: request $id still pending after 60 s" >&2; exit 70; }
    observed+=($(($(now_ms) - returned)))
done
kill -TERM "$daemon"
wait "$daemon" || true
daemon=

echo "erasure_requests $(sql "SELECT count(*) || ' (' || count(*) FILTER (WHERE status = 'done') || ' done)'
    FROM gallra.erasure_request")"
sql "SELECT 'erasure_latency_median_ms ' || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
            'erasure_latency_max_ms ' || round(max(ms)::numeric, 1)
     FROM (SELECT extract(epoch FROM decided_at - requested_at) * 1000 AS ms FROM gallra.erasure_request) AS r" |
    tr '|' '\n'
sql "SELECT 'erasure_run_median_ms ' || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1)
     FROM (SELECT extract(epoch FROM finished_at - started_at) * 1000 AS ms FROM gallra.run
           WHERE trigger = 'erase') AS r"
printf '%s\n' "${observed[@]}" | sort -n | awk '{ v[NR] = $1 } END {
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "erasure_observed_median_ms %.1f\n", m }'

log "for comparison: gallra run --once over one due request, 5 times"
once=()
for key in "${keys[@]:$requests:5}"; do
    psql "$shop" -qAtX -v ON_ERROR_STOP=1 -c "SELECT gallra.request_erasure('shop.customer', '$key', 'bench')" >/dev/null
    started=$(now_ms)
    quiet "$gallra" run --once --policy erasure-requests
    once+=($(($(now_ms) - started)))
done
printf '%s\n' "${once[@]}" | sort -n | awk '{ v[NR] = $1 } END { printf "erasure_once_ms %.1f\n", v[(NR + 1) / 2] }'
