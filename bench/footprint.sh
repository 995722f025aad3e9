#!/usr/bin/env bash
# `make footprint`: what one gallra binary costs the machine it runs on, for before/after comparisons.
#
#   bench/footprint.sh [GALLRA_BINARY]      (default .build/release/gallra, built by scripts/release.sh if missing)
#
# Starts a throwaway PostgreSQL (scripts/pg.sh), loads the demo shop (config/demo/, FOOTPRINT_CUSTOMERS
# customers, default 10000, dated from a fixed instant so that every run purges the same rows), migrates,
# stores config/policies and makes an audit key, as scripts/demo.sh does. Then prints one line per figure:
#
#   binary_bytes N            the file's size
#   binary_mb X               the same in MB (10^6 bytes)
#   binary_text_bytes N       `size`'s text (code), data (initialised and read-only data, ICU's tables among them)
#   binary_data_bytes N       and bss, in bytes
#   binary_bss_bytes N
#   binary_icu_data_bytes N   ICU's data table (the symbol icudtNN_dat), which Foundation's ICU brings; 0 without
#   idle_rss_kb N             the service (`gallra run`, no --once) once ready and idle for FOOTPRINT_IDLE_SECONDS
#   idle_hwm_kb N             (default 5): VmRSS and VmHWM (its peak so far) from /proc/PID/status
#   run_once_peak_rss_kb N    `gallra run --once` purging the demo shop: maximum resident set size (GNU time)
#   run_once_subjects N       the subjects that run processed (the same every time: a check, not a cost)
#   version_peak_rss_kb N     `gallra version`: the least any gallra process costs
#
# The service is started as the tests start it outside systemd (Tests/GallraCLITests/DaemonSupport.swift), with
# NOTIFY_SOCKET unset: sd_notify is then a no-op, and readiness is read from its log instead (the line
# "N policies scheduled" comes right before READY=1). The server is removed on exit, whatever happens.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

customers=${FOOTPRINT_CUSTOMERS:-10000}
idle_seconds=${FOOTPRINT_IDLE_SECONDS:-5}
# The instant the demo shop is generated at and the run evaluates expiry at (as bench/run.sh does).
as_of='2026-11-29 00:00:00+00'
as_of_iso='2026-11-29T00:00:00Z'

bench=footprint.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh

# What this script needs beyond what the builds need (scripts/deps.sh): GNU time for peak RSS, binutils for
# `size`, PostgreSQL for the throwaway server.
packages=(time binutils postgresql procps)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

bench_binary "$@"

bench_work footprint

# -- The binary on disk ---------------------------------------------------------------------------------------
bytes=$(stat -c %s "$gallra")
echo "binary_bytes $bytes"
awk -v b="$bytes" 'BEGIN { printf "binary_mb %.1f\n", b / 1000000 }'
# Berkeley format: text data bss dec hex filename.
read -r text data bss _ < <(size "$gallra" | tail -n 1)
echo "binary_text_bytes $text"
echo "binary_data_bytes $data"
echo "binary_bss_bytes $bss"
# nm fails on a stripped binary: then no symbol, 0.
icu_hex=$( (nm -S "$gallra" 2>/dev/null || true) | awk '$4 ~ /^icudt[0-9]+_dat$/ { print $2; exit }')
echo "binary_icu_data_bytes $((16#${icu_hex:-0}))"

# -- The demo shop on a throwaway server -----------------------------------------------------------------------
log "starting a throwaway PostgreSQL, loading the demo shop ($customers customers)"
bench_demo_shop "$customers" "$as_of"
quiet psql "$GALLRA_DATABASE" -qX -v ON_ERROR_STOP=1 -c "VACUUM ANALYZE"
(umask 077; head -c 48 /dev/urandom | base64 >"$work/audit-key")
export GALLRA_AUDIT_KEY_FILE="$work/audit-key"
quiet "$gallra" migrate
quiet "$gallra" policy apply config/policies

# -- The idle service --------------------------------------------------------------------------------------------
log "starting the service (gallra run), then idle for $idle_seconds s"
"$gallra" run --log-format text </dev/null >"$work/service.log" 2>&1 &
service_pid=$!
for _ in $(seq 1 600); do
    grep -q "policies scheduled" "$work/service.log" && break
    kill -0 "$service_pid" 2>/dev/null || {
        cat "$work/service.log" >&2
        echo "footprint.sh: the service exited" >&2
        exit 70
    }
    sleep 0.1
done
grep -q "policies scheduled" "$work/service.log" || {
    cat "$work/service.log" >&2
    echo "footprint.sh: the service was not ready within 60 s" >&2
    exit 70
}
sleep "$idle_seconds"
status_file=$(cat "/proc/$service_pid/status")
awk '/^VmRSS:/ { print "idle_rss_kb " $2 }' <<<"$status_file"
awk '/^VmHWM:/ { print "idle_hwm_kb " $2 }' <<<"$status_file"
# It holds the database's runner lock, which the live run below needs.
kill -TERM "$service_pid"
wait "$service_pid" || true
service_pid=""

# -- One live run, and the smallest command ------------------------------------------------------------------
log "gallra run --once on the demo shop"
/usr/bin/time -v -o "$work/run.time" "$gallra" run --once --as-of "$as_of_iso" --format json \
    >"$work/run.json" 2>"$work/run.log" || {
    cat "$work/run.log" "$work/run.time" >&2
    echo "footprint.sh: gallra run --once failed" >&2
    exit 70
}
awk -F': ' '/Maximum resident set size/ { print "run_once_peak_rss_kb " $2 }' "$work/run.time"
python3 -c '
import json, sys
print("run_once_subjects", sum(p["processed"] for p in json.load(sys.stdin)["report"]["policies"]))' <"$work/run.json"

/usr/bin/time -v -o "$work/version.time" "$gallra" version >/dev/null
awk -F': ' '/Maximum resident set size/ { print "version_peak_rss_kb " $2 }' "$work/version.time"
