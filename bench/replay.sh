#!/usr/bin/env bash
# `make bench`, a step of its own: `gallra ledger replay` after a restore, its time and peak memory (docs/restore.md).
#
#   bench/replay.sh [GALLRA_BINARY]      (default .build/release/gallra, built by scripts/release.sh if missing)
#
# Starts a throwaway PostgreSQL (scripts/pg.sh) and makes a subject table of REPLAY_ROWS rows (default 1,000,000,
# bench.subject, a bigint key and a little data) of which REPLAY_DIGESTS (default 100,000) are expired under a
# policy that deletes them. It takes a copy of the database (the backup: CREATE DATABASE ... TEMPLATE), purges it
# with `gallra run --once` (which writes the erasure ledger: REPLAY_DIGESTS digests), puts the copy in its place
# under the same name (the restore), and runs on it, each under GNU time:
#
#   replay_rows N               the subject table's rows, and the ledger's digests after the fork point
#   replay_digests N
#   replay_dry_run_seconds X    `gallra ledger replay --dry-run`: the table read once with a cursor, every key
#   replay_dry_run_peak_rss_kb N  digested and matched; wall time and maximum resident set size
#   replay_seconds X            `gallra ledger replay`: the same read, then the live run (trigger replay) deleting
#   replay_peak_rss_kb N        the subjects found again, the restore line and the ledger's catch-up
#   replay_subjects N           the subjects it processed again (REPLAY_DIGESTS: a check, not a cost)
#   purge_seconds X             for comparison, the `run --once` that purged them first
#
# No thresholds: figures only. The server is removed on exit, whatever happens.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

rows=${REPLAY_ROWS:-1000000}
digests=${REPLAY_DIGESTS:-100000}

bench=replay.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh

bench_binary "$@"
bench_needs_gnu_time

work=$(mktemp -d /tmp/gallra-replay-bench.XXXXXX)
chmod 0755 "$work"
cleanup() {
    status=$?
    scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT INT TERM


log "starting a throwaway PostgreSQL, making bench.subject ($rows rows, $digests expired)"
server=$(scripts/pg.sh start "$work/pg")
sql() { psql "$server dbname=shop" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }
quiet psql "$server" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE shop"
unset NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID JOURNAL_STREAM CREDENTIALS_DIRECTORY GALLRA_CONFIG STATE_DIRECTORY
while read -r name; do unset "$name"; done < <(env | sed -n 's/^\(\(GALLRA\|PG\)[A-Z_]*\)=.*/\1/p')
export GALLRA_DATABASE="$server dbname=shop"
quiet sql "CREATE SCHEMA bench"
quiet sql "CREATE TABLE bench.subject (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, note text NOT NULL)"
# Every tenth row up to the wanted count is old: the expired subjects are spread over the whole key range.
quiet sql "INSERT INTO bench.subject
    SELECT i, CASE WHEN i % 10 = 0 AND i / 10 <= $digests THEN timestamptz '2015-01-01' ELSE now() END, md5(i::text)
    FROM generate_series(1, $rows) AS i"
quiet sql "VACUUM ANALYZE bench.subject"
(umask 077; head -c 48 /dev/urandom | base64 >"$work/audit-key")
export GALLRA_AUDIT_KEY_FILE="$work/audit-key"
export GALLRA_LEDGER_PATH="$work/ledger"
cat >"$work/policy.yaml" <<EOF
policy: old-subjects
state: active
subject: { table: bench.subject, key: id }
expires: { older_than: 5 years, created: created_at }
data:
  - { table: bench.subject, delete: true }
limits: { batch_size: 1000, max_subjects_per_run: $((digests * 2)), max_fraction: 0.5, pause: 0 }
EOF
quiet "$gallra" migrate
quiet "$gallra" policy apply "$work/policy.yaml"

log "taking the backup (a copy of the database)"
quiet psql "$server" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE shop_backup TEMPLATE shop"

log "purging $digests subjects (gallra run --once, which writes the ledger)"
started=$(date +%s%N)
quiet "$gallra" run --once
purge_seconds=$(awk -v n="$(date +%s%N)" -v s="$started" 'BEGIN { printf "%.2f", (n - s) / 1e9 }')

log "restoring the backup in its place"
quiet psql "$server" -qX -v ON_ERROR_STOP=1 -c "ALTER DATABASE shop RENAME TO shop_purged"
quiet psql "$server" -qX -v ON_ERROR_STOP=1 -c "ALTER DATABASE shop_backup RENAME TO shop"
[ "$(sql "SELECT count(*) FROM bench.subject")" -eq "$rows" ] || {
    echo "replay.sh: the restored table does not have $rows rows" >&2
    exit 70
}

log "gallra ledger replay --dry-run"
/usr/bin/time -f "%e %M" -o "$work/dry.time" "$gallra" ledger replay --dry-run --format json >"$work/dry.json" \
    2>>"$work/setup.log" || { cat "$work/setup.log" >&2; exit 70; }
log "gallra ledger replay"
/usr/bin/time -f "%e %M" -o "$work/live.time" "$gallra" ledger replay --format json >"$work/live.json" \
    2>>"$work/setup.log" || { cat "$work/setup.log" >&2; exit 70; }

read -r dry_seconds dry_rss <"$work/dry.time"
read -r live_seconds live_rss <"$work/live.time"
left=$(sql "SELECT count(*) FROM bench.subject WHERE created_at < '2016-01-01'")
echo "replay_rows $rows"
echo "replay_digests $(grep -o '"recorded" : [0-9]*' "$work/dry.json" | awk '{ s += $3 } END { print s }')"
echo "replay_dry_run_seconds $dry_seconds"
echo "replay_dry_run_peak_rss_kb $dry_rss"
echo "replay_seconds $live_seconds"
echo "replay_peak_rss_kb $live_rss"
echo "replay_subjects $(grep -o '"replayed" : [0-9]*' "$work/live.json" | awk '{ print $3 }') ($left expired rows left)"
echo "purge_seconds $purge_seconds"
