#!/usr/bin/env bash
# `make bench`: gallra against what PostgreSQL itself can do, on the demo shop (docs/benchmark.md).
#
#   BENCH_N=100000 bench/run.sh [--json FILE]
#
# Builds release, starts a throwaway PostgreSQL (or uses the server of $GALLRA_DATABASE, whose
# role must be allowed to create databases), generates the demo shop at BENCH_N customers once
# into a template database, and runs each measurement on a fresh copy of it (CREATE DATABASE ...
# TEMPLATE) at the same instant (as of 2026-11-29 00:00 UTC). Prints a table, and one JSON
# object per run on stdout (or into FILE with --json).
#
# Environment:
#   BENCH_N               customers (default 1000000; about 31% expire)
#   BENCH_NAIVE           subjects the naive baseline purges (default 20000; its figures are per
#                         subject, the wall time is scaled to all subjects)
#   BENCH_BATCHES         gallra batch sizes (default "1000 10000")
#   BENCH_PARALLEL        limits.parallel values of the full-speed gallra runs, each run with every batch
#                         size and for the anonymize-only policy (default "1 2"; runs with 1 are named
#                         gallra-b1000, those with 2 gallra-b1000-p2)
#   BENCH_RATE            pgbench rate in transactions/s for the live-shop runs (default 200)
#   BENCH_OLTP_SECONDS    length of each idle pgbench run (default 60; one before, between and after
#                         the live runs)
#   BENCH_WAL_COMPRESSION wal_compression of the throwaway server (default off; lz4, pglz)
#   BENCH_SHARED_BUFFERS  shared_buffers of the throwaway server (default a quarter of the RAM, at most
#                         8GB, as PostgreSQL's documentation advises for a dedicated server)
#   BENCH_SMALL_BUFFERS   shared_buffers of the second server configuration (default 128MB, PostgreSQL's
#                         default): the limit and the full-speed gallra runs again, on tables that do not fit
#                         in the buffer pool (runs named limit-sb128MB, gallra-b1000-sb128MB ...); "none" skips
#                         them. Our own server only
#   BENCH_FAST_BGWRITER   "DELAY MAXPAGES MULTIPLIER": a third server configuration, the small buffer pool again
#                         with a background writer that keeps up (bgwriter_delay, bgwriter_lru_maxpages,
#                         bgwriter_lru_multiplier; default "10ms 1000 2", PostgreSQL's own multiplier), so that
#                         the backends running the purge find clean buffers instead of writing out dirty ones
#                         themselves (runs named limit-sb128MB-bgw, gallra-b1000-sb128MB-bgw ...); "none"
#                         skips it
#   BENCH_PGDATA          a directory for the throwaway server that outlives the invocation: the next
#                         invocation with the same BENCH_N reuses its template instead of generating it again
#   BENCH_SKIP            space-separated run groups to skip: naive anonymize plan guard live
#   BENCH_GUARD_SECONDS   length of each pgbench round of the consent guard runs (default 20)
#   BENCH_GUARD_ROUNDS    rounds of the consent guard runs, each without the guard and with it (default 3)
#   BENCH_PACED_PAUSE     limits.pause of the paced live run (default: the policy's default)
#   BENCH_KEEP=1          keep the throwaway server and the work directory
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

json_file=""
while [ $# -gt 0 ]; do
    case "$1" in
    --json) json_file=${2:?--json FILE}; shift 2 ;;
    *) echo "usage: bench/run.sh [--json FILE]" >&2; exit 64 ;;
    esac
done

N=${BENCH_N:-1000000}
NAIVE=${BENCH_NAIVE:-20000}
BATCHES=${BENCH_BATCHES:-1000 10000}
PARALLEL=${BENCH_PARALLEL:-1 2}
RATE=${BENCH_RATE:-200}
OLTP_SECONDS=${BENCH_OLTP_SECONDS:-60}
GUARD_SECONDS=${BENCH_GUARD_SECONDS:-20}
GUARD_ROUNDS=${BENCH_GUARD_ROUNDS:-3}
[[ "$GUARD_ROUNDS" =~ ^[1-9][0-9]?$ && "$GUARD_SECONDS" =~ ^[1-9][0-9]*$ ]] || {
    echo "bench/run.sh: BENCH_GUARD_ROUNDS=$GUARD_ROUNDS and BENCH_GUARD_SECONDS=$GUARD_SECONDS must be whole numbers from 1, e.g. 3 and 20" >&2
    exit 64
}
WALC=${BENCH_WAL_COMPRESSION:-off}
ram_mb=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
BUFFERS=${BENCH_SHARED_BUFFERS:-$(( ram_mb / 4 < 8192 ? ram_mb / 4 : 8192 ))MB}
SMALL_BUFFERS=${BENCH_SMALL_BUFFERS:-128MB}
FAST_BGWRITER=${BENCH_FAST_BGWRITER:-10ms 1000 2}
[[ "$FAST_BGWRITER" =~ ^[0-9]+(ms|s)?\ [0-9]+\ [0-9]+(\.[0-9]+)?$ || "$FAST_BGWRITER" = none ]] || {
    echo "bench/run.sh: BENCH_FAST_BGWRITER=\"$FAST_BGWRITER\" is not \"DELAY MAXPAGES MULTIPLIER\" (e.g. \"10ms 1000 2\") or none" >&2
    exit 64
}
for b in "BENCH_SHARED_BUFFERS=$BUFFERS" "BENCH_SMALL_BUFFERS=$SMALL_BUFFERS"; do
    [[ "${b#*=}" =~ ^[0-9]+(kB|MB|GB|TB)?$ || "$b" = BENCH_SMALL_BUFFERS=none ]] || {
        echo "bench/run.sh: $b is not a size; give one as PostgreSQL writes it, e.g. 256MB or 4GB" >&2
        exit 64
    }
done
for p in $PARALLEL; do
    [[ "$p" =~ ^([1-9]|1[0-6])$ ]] || {
        echo "bench/run.sh: BENCH_PARALLEL=\"$PARALLEL\" holds $p; give values of limits.parallel from 1 to 16, e.g. \"1 2\"" >&2
        exit 64
    }
done
SKIP=" ${BENCH_SKIP:-} "
PACED_PAUSE=${BENCH_PACED_PAUSE:-default}
# The paced run's pause in percent: the policy's default (limits.pause 900%), the percentage asked
# for, or empty for a pause given as a duration.
case $PACED_PAUSE in
default) PACED_PERCENT=900 ;;
*%) PACED_PERCENT=${PACED_PAUSE%\%} ;;
*) PACED_PERCENT="" ;;
esac
AS_OF='2026-11-29 00:00:00+00'
AS_OF_ISO='2026-11-29T00:00:00Z'
TPL=gallra_bench_tpl
RUNDB=gallra_bench_run

skipped() { [[ "$SKIP" == *" $1 "* ]]; }
log() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

command -v pgbench >/dev/null || PATH=$PATH:$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if [ ! -x /usr/bin/time ]; then
    log "installing GNU time"
    apt-get install -y -qq time >/dev/null
fi

work=$(mktemp -d /tmp/gallra-bench.XXXXXX)
chmod 0755 "$work"
own_server=0
cleanup() {
    status=$?
    [ -z "${sampler_pid:-}" ] || kill "$sampler_pid" 2>/dev/null || true
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "kept $work (server: ${server:-none})" >&2
    else
        [ "$own_server" = 0 ] || [ -n "${BENCH_PGDATA:-}" ] || scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || true
        rm -rf "$work"
    fi
    exit $status
}
trap cleanup EXIT INT TERM

log "building gallra (release)"
scripts/release.sh 2>&1 | tail -n 1 >&2
gallra="$(swift build -c release --show-bin-path)/gallra"

pgdir=${BENCH_PGDATA:-$work/pg}
if [ -z "${GALLRA_DATABASE:-}" ] && [ -f "$pgdir/port" ]; then
    log "restarting the kept PostgreSQL in $pgdir"
    server="host=$pgdir port=$(cat "$pgdir/port") user=postgres dbname=postgres"
    own_server=1
    scripts/pg.sh restart "$pgdir" 2>/dev/null
elif [ -z "${GALLRA_DATABASE:-}" ]; then
    log "starting a throwaway PostgreSQL"
    server=$(scripts/pg.sh start "$pgdir")
    own_server=1
fi
if [ "$own_server" = 1 ]; then
    # Benchmark settings: no checkpoint in the middle of a run (every run starts just after one,
    # so each pays the same full-page images), and the WAL compression asked for.
    psql "$server" -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL
ALTER SYSTEM SET max_wal_size = '20GB';
ALTER SYSTEM SET checkpoint_timeout = '1h';
ALTER SYSTEM SET wal_compression = '$WALC';
ALTER SYSTEM SET maintenance_work_mem = '512MB';
ALTER SYSTEM SET shared_buffers = '$BUFFERS';
ALTER SYSTEM RESET bgwriter_delay;
ALTER SYSTEM RESET bgwriter_lru_maxpages;
ALTER SYSTEM RESET bgwriter_lru_multiplier;
SQL
    scripts/pg.sh restart "$pgdir"
else
    server="$GALLRA_DATABASE"
fi
q() { psql "$server dbname=${2:-$RUNDB}" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }
buffers=$(q "SHOW shared_buffers" postgres)
# The background writer's settings: PostgreSQL's own on our server, whatever they are on another.
bgwriter=default
[ "$own_server" = 1 ] || bgwriter=as-set
log "shared_buffers $buffers, wal_compression $(q "SHOW wal_compression" postgres)"
# libpq conninfo parts for pganonymize
host=$(psql "$server dbname=postgres" -qAtX -c "SELECT coalesce(inet_server_addr()::text, current_setting('unix_socket_directories'))" | cut -d, -f1)
port=$(psql "$server dbname=postgres" -qAtX -c "SHOW port")
user=$(psql "$server dbname=postgres" -qAtX -c "SELECT current_user")

# A kept server's template is reused when it was made at the same scale from the same generator and setup
# (its comment records them); gallra migrate brings its schema up to date.
tpl="$server dbname=$TPL"
expiring_sql="last_seen_at < timestamptz '$AS_OF' - interval '1 year' AND NOT legal_hold"
tpl_stamp="bench template n=$N $(cat config/demo/schema.sql config/demo/generate.sql <(sed -n '/^ *# TEMPLATE SETUP$/,/^ *# END TEMPLATE SETUP$/p' "$0") | sha256sum | cut -c1-16)"
q "DROP DATABASE IF EXISTS $RUNDB" postgres
if [ "$(q "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '$TPL'" postgres)" = "$tpl_stamp" ]; then
    log "reusing template $TPL ($N customers)"
    GALLRA_DATABASE="$tpl" "$gallra" migrate >/dev/null
else
    log "generating the demo shop: $N customers into template $TPL"
    q "DROP DATABASE IF EXISTS $TPL" postgres
    q "CREATE DATABASE $TPL" postgres
    psql "$tpl" -qX -v ON_ERROR_STOP=1 -f config/demo/schema.sql >/dev/null 2>&1
    psql "$tpl" -qX -v ON_ERROR_STOP=1 -v customers="$N" -v as_of="$AS_OF" -f config/demo/generate.sql >&2
    GALLRA_DATABASE="$tpl" "$gallra" migrate >/dev/null
    # TEMPLATE SETUP
    psql "$tpl" -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE SCHEMA bench;
CREATE TABLE bench.audit_subject (ordinal bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                  subject_digest text NOT NULL, counts jsonb NOT NULL);
-- Indexed as gallra indexes its audit records' digests (by hash).
CREATE INDEX ON bench.audit_subject USING hash (subject_digest);
-- The index gallra's validator asks for on the demo's link without a foreign key
-- (newsletter_log.customer_ref): a production database is measured as its operator would run it.
CREATE INDEX newsletter_log_customer_ref_idx ON shop.newsletter_log (customer_ref);
-- Customers for the live shop's pgbench scripts, numbered from 1.
CREATE TABLE bench.active AS SELECT row_number() OVER (ORDER BY id) AS i, id FROM shop.customer
    WHERE NOT ($expiring_sql);
ALTER TABLE bench.active ADD PRIMARY KEY (i);
CREATE TABLE bench.expiring AS SELECT row_number() OVER (ORDER BY id) AS i, id FROM shop.customer
    WHERE $expiring_sql;
ALTER TABLE bench.expiring ADD PRIMARY KEY (i);
VACUUM ANALYZE;
SQL
    # END TEMPLATE SETUP
    q "COMMENT ON DATABASE $TPL IS '$tpl_stamp'" postgres
fi
n_active=$(q "SELECT count(*) FROM bench.active" $TPL)
n_expiring=$(q "SELECT count(*) FROM bench.expiring" $TPL)
n_products=$(q "SELECT count(*) FROM shop.product" $TPL)
log "$n_expiring of $N customers expire"

keyfile="$work/audit-key"
(umask 077; head -c 48 /dev/urandom | base64 >"$keyfile")
export GALLRA_AUDIT_KEY_FILE="$keyfile"
salt=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')

# The gallra policies: the demo policy with the batch size asked for and no run limit, and an
# anonymize-only policy on the same orders.
policy() { # batch_size file [pause [parallel]]: pause 0 (full speed) unless given; "default" leaves the
    # policy's default; parallel 1 unless given
    local pause=", pause: ${3:-0}"
    [ "${3:-}" != default ] || pause=""
    sed -e "s/^policy: inactive-customers/policy: bench-inactive-customers/" \
        -e "s/^limits:.*/limits: { batch_size: $1, max_subjects_per_run: 100000000, max_fraction: 0.5$pause, parallel: ${4:-1} }/" \
        config/policies/inactive-customers.yaml >"$2"
}
suffix() { [ "$1" = 1 ] || echo "-p$1"; } # a run name's suffix for limits.parallel
cat >"$work/anonymize-orders.yaml" <<'YAML'
policy: bench-anonymize-orders
state: active
subject: { table: shop.customer, key: id }
expires: { inactive_for: 1 year, activity: last_seen_at }
except:
  - { column: legal_hold, is: true }
data:
  - table: shop.order
    anonymize:
      email: fake_email
      full_name: redact
      phone: null
      birth_date: truncate(year)
limits: { batch_size: 1000, max_subjects_per_run: 100000000, max_fraction: 0.5, pause: 0, parallel: PARALLEL }
YAML

fresh() { # a fresh copy of the template, after a checkpoint, written out to disk
    q "DROP DATABASE IF EXISTS $RUNDB" postgres
    q "CREATE DATABASE $RUNDB TEMPLATE $TPL" postgres
    q "CHECKPOINT" postgres
    # The copy leaves gigabytes of dirty pages in the kernel's cache, which it would write out during the
    # first half minute of the next run: a one-minute idle run would pay for it more than a long run.
    sync
}
db="$server dbname=$RUNDB"

results="$work/results.jsonl"
: >"$results"
# Every 0.2 s, on the run database: the longest transaction of the tool measured (pgbench and
# autovacuum excluded), the longest lock wait of any client (pgbench included: a returning customer
# waiting for a purge), and how many autovacuum workers are at work on it. One line per sample,
# "epoch longest_xact lock_wait autovacuum_workers", in $work/sampler.
start_sampler() {
    printf "SELECT extract(epoch FROM clock_timestamp()) || ' ' || coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)) FILTER (WHERE backend_type = 'client backend' AND application_name <> 'pgbench' AND xact_start IS NOT NULL), 0) || ' ' || coalesce(max(extract(epoch FROM clock_timestamp() - query_start)) FILTER (WHERE backend_type = 'client backend' AND wait_event_type = 'Lock'), 0) || ' ' || count(*) FILTER (WHERE backend_type = 'autovacuum worker') FROM pg_stat_activity WHERE datname = '%s' AND pid <> pg_backend_pid();\n\\\\watch 0.2\n" "$RUNDB" \
        | psql "$server dbname=postgres" -qAtX >"$work/sampler" 2>/dev/null &
    sampler_pid=$!
}
stop_sampler() { # NAME: keeps the samples as $work/sampler.NAME; prints the longest transaction and lock wait (s)
    kill "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
    sampler_pid=""
    mv "$work/sampler" "$work/sampler.$1"
    echo "$(awk '{print $2}' "$work/sampler.$1" | sort -g | tail -n 1) $(awk '{print $3}' "$work/sampler.$1" | sort -g | tail -n 1)"
}
# measure NAME KIND CMD...: runs CMD on a fresh copy (the caller prepared it), records wall time,
# WAL, longest transaction and, for gallra, peak RSS. CMD prints "subjects|rows" on fd 3's file.
measure() {
    local name=$1 kind=$2
    shift 2
    local lsn0 t0 t1 wal longest lockwait rss=""
    lsn0=$(q "SELECT pg_current_wal_lsn()" postgres)
    io_counters >"$work/io0.$name"
    start_sampler
    t0=$(date +%s.%N)
    if [ "$kind" = gallra ]; then
        /usr/bin/time -v -o "$work/time.$name" "$@" >"$work/out.$name" 2>"$work/err.$name" || {
            s=$?; [ $s = 75 ] || { cat "$work/err.$name" >&2; return $s; }; }
        rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.$name")
    else
        "$@" >"$work/out.$name" 2>"$work/err.$name" || { cat "$work/err.$name" >&2; return 1; }
    fi
    t1=$(date +%s.%N)
    read -r longest lockwait < <(stop_sampler "$name")
    wal=$(q "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn0')" postgres)
    io_counters >"$work/io1.$name"
    echo "$name $kind $t0 $t1 $wal ${longest:-0} ${rss:-0} ${lockwait:-0}" >"$work/m.$name"
}
# The server's I/O counters (PostgreSQL 15 has no pg_stat_io): blocks the run database read into the buffer
# pool and found there, buffers written out by backends, the background writer and checkpoints (the whole
# server: nothing else writes during a run but pgbench in the live runs), and full-page images in the WAL.
# One line: "read hit backend clean checkpoint fpi". A backend's counters reach these views when it exits,
# and every tool measured has exited.
io_counters() {
    q "SELECT (SELECT blks_read || ' ' || blks_hit FROM pg_stat_database WHERE datname = '$RUNDB') || ' '
              || (SELECT buffers_backend || ' ' || buffers_clean || ' ' || buffers_checkpoint FROM pg_stat_bgwriter)
              || ' ' || (SELECT wal_fpi FROM pg_stat_wal)" postgres
}
record() { # NAME SUBJECTS ROWS [SCALE_TO_SUBJECTS] [extra json]
    local name=$1 subjects=$2 rows=$3 scale=${4:-} extra=${5:-"{}"}
    read -r _ kind t0 t1 wal longest rss lockwait <"$work/m.$name"
    python3 - "$name" "$kind" "$t0" "$t1" "$wal" "$longest" "$rss" "$subjects" "$rows" "$scale" "$extra" "$N" "$WALC" "${lockwait:-0}" "$buffers" "$bgwriter" "$work/sampler.$name" "$work/io0.$name" "$work/io1.$name" >>"$results" <<'PY'
import json, os, sys
name, kind, t0, t1, wal, longest, rss, subjects, rows, scale, extra, n, walc, lockwait, buffers, bgwriter, sampler, io0, io1 = sys.argv[1:]
samples = [l.split() for l in open(sampler)] if os.path.exists(sampler) else []
samples = [(float(f[0]), int(f[3])) for f in samples if len(f) == 4]
wall = float(t1) - float(t0)
subjects, rows = int(subjects), int(rows)
r = {"run": name, "kind": kind, "bench_n": int(n), "wal_compression": walc, "shared_buffers": buffers,
     "bgwriter": bgwriter, "wall_s": round(wall, 3), "subjects": subjects, "rows": rows,
     "subjects_per_s": round(subjects / wall, 1) if wall else None,
     "rows_per_s": round(rows / wall, 1) if wall else None,
     "wal_bytes": int(float(wal)), "wal_bytes_per_subject": round(float(wal) / subjects, 1) if subjects else None,
     "longest_xact_s": round(float(longest), 3),
     "longest_lock_wait_s": round(float(lockwait), 3),
     "peak_rss_kb": int(rss) or None,
     "autovacuum_s": round(sum(b[0] - a[0] for a, b in zip(samples, samples[1:]) if a[1]), 1)}
if os.path.exists(io0) and os.path.exists(io1):
    a, b = ([int(x) for x in open(f).read().split()] for f in (io0, io1))
    d = [y - x for x, y in zip(a, b)]
    r.update({"blocks_read": d[0], "blocks_hit": d[1], "buffers_backend": d[2], "buffers_clean": d[3],
              "buffers_checkpoint": d[4], "blocks_written": d[2] + d[3] + d[4], "wal_fpi": d[5]})
    if subjects:
        r["blocks_read_per_subject"] = round(d[0] / subjects, 2)
        r["blocks_written_per_subject"] = round((d[2] + d[3] + d[4]) / subjects, 2)
if scale:
    r["scaled_to_subjects"] = int(scale)
    r["scaled_wall_s"] = round(wall * int(scale) / subjects, 1) if subjects else None
r.update(json.loads(extra))
print(json.dumps(r))
PY
}
gallra_counts() { # FILE: "subjects rows" from gallra run --format json
    python3 - "$1" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
ps = doc["report"]["policies"]
print(sum(p["processed"] for p in ps), sum(s["rows"] for p in ps for s in p["steps"]))
PY
}
round_trips() { # ERR_FILE: JSON with the batches and the round trips to the server from gallra's debug log
    python3 - "$1" <<'PY'
import json, re, sys
batches = trips = 0
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"(\d+) batches, (\d+) round trips to the server", line)
    if m:
        batches += int(m.group(1)); trips += int(m.group(2))
print(json.dumps({"batches": batches, "round_trips": trips,
                  "round_trips_per_batch": round(trips / batches, 2) if batches else None}))
PY
}

# Autovacuum is off for the runs that measure a tool's own work (with our own server): gallra's batches
# commit as they go, so autovacuum would clean up after them during the run, in its time and WAL, while it
# cleans up after the single transaction only once that has ended. The live runs turn it back on, as a
# shop runs it.
autovacuum() { # on|off
    [ "$own_server" = 1 ] || return 0
    q "ALTER SYSTEM SET autovacuum = $1" postgres
    q "SELECT pg_reload_conf()" postgres >/dev/null
}
autovacuum off

# 1. The limit. SUFFIX names the server configuration of the runs ("", -sbSIZE or -sbSIZE-bgw).
limit_run() { # SUFFIX
    log "1. the limit: one set-based transaction (bench/limit.sql), shared_buffers $buffers, background writer $bgwriter"
    fresh
    measure "limit$1" sql psql "$db" -qAtX -v ON_ERROR_STOP=1 -v as_of="$AS_OF" -v salt="$salt" -f bench/limit.sql
    IFS='|' read -r lim_subjects lim_rows <"$work/out.limit$1"
    record "limit$1" "$lim_subjects" "$lim_rows"
}
limit_run ""

# 2. The naive way.
if ! skipped naive; then
    log "2. the naive way: one transaction per subject, one statement per table ($NAIVE subjects)"
    fresh
    psql "$db" -qAtX -v ON_ERROR_STOP=1 -v as_of="$AS_OF" -v salt="$salt" -v limit="$NAIVE" \
        -f bench/naive.sql >"$work/naive-script.sql"
    naive_subjects=$(grep -c '^BEGIN;' "$work/naive-script.sql")
    measure naive sql psql "$db" -X -v ON_ERROR_STOP=1 -f "$work/naive-script.sql"
    naive_rows=$(awk '/^(DELETE|UPDATE) [0-9]+$/ {s += $2} END {print s + 0}' "$work/out.naive")
    record naive "$naive_subjects" "$naive_rows" "$lim_subjects"
fi

# 4. gallra run --once.
gallra_runs() { # SUFFIX
    for b in $BATCHES; do
        for p in $PARALLEL; do
            name="gallra-b$b$(suffix "$p")$1"
            log "4. gallra run --once, batch $b, parallel $p, shared_buffers $buffers, background writer $bgwriter"
            fresh
            policy "$b" "$work/policy-$name.yaml" 0 "$p"
            GALLRA_DATABASE="$db" "$gallra" policy apply "$work/policy-$name.yaml" >/dev/null
            GALLRA_DATABASE="$db" measure "$name" gallra "$gallra" run --once --as-of "$AS_OF_ISO" --format json \
                --log-level debug
            read -r g_subjects g_rows < <(gallra_counts "$work/out.$name")
            record "$name" "$g_subjects" "$g_rows" "" "$(round_trips "$work/err.$name")"
        done
    done
}
gallra_runs ""

# The second server configuration: the limit and the same gallra runs with a buffer pool far smaller than the
# purged tables (PostgreSQL's default 128MB), where a page a batch changes is seldom still in the pool when the
# next batch comes to it; and once more with a background writer that keeps up (BENCH_FAST_BGWRITER), where the
# purge's backend finds clean buffers to read into instead of writing out dirty ones itself. Then back to the first
# for the other runs.
set_buffers() { # SIZE
    q "ALTER SYSTEM SET shared_buffers = '$1'" postgres
    scripts/pg.sh restart "$pgdir"
    buffers=$(q "SHOW shared_buffers" postgres)
}
# The background writer of the third configuration: DELAY MAXPAGES MULTIPLIER, or no arguments for PostgreSQL's own.
set_bgwriter() { # [DELAY MAXPAGES MULTIPLIER]
    if [ $# = 3 ]; then
        q "ALTER SYSTEM SET bgwriter_delay = '$1'" postgres
        q "ALTER SYSTEM SET bgwriter_lru_maxpages = $2" postgres
        q "ALTER SYSTEM SET bgwriter_lru_multiplier = $3" postgres
        bgwriter="$1/$2/$3"
    else
        for setting in bgwriter_delay bgwriter_lru_maxpages bgwriter_lru_multiplier; do
            q "ALTER SYSTEM RESET $setting" postgres
        done
        bgwriter=default
    fi
    q "SELECT pg_reload_conf()" postgres >/dev/null
}
if [ "$SMALL_BUFFERS" != none ] && [ "$own_server" = 1 ]; then
    big_subjects=$lim_subjects
    set_buffers "$SMALL_BUFFERS"
    limit_run "-sb$SMALL_BUFFERS"
    gallra_runs "-sb$SMALL_BUFFERS"
    if [ "$FAST_BGWRITER" != none ]; then
        # shellcheck disable=SC2086 # three settings
        set_bgwriter $FAST_BGWRITER
        limit_run "-sb$SMALL_BUFFERS-bgw"
        gallra_runs "-sb$SMALL_BUFFERS-bgw"
        set_bgwriter
    fi
    set_buffers "$BUFFERS"
    lim_subjects=$big_subjects
elif [ "$SMALL_BUFFERS" != none ]; then
    log "BENCH_SMALL_BUFFERS: the server of GALLRA_DATABASE keeps its shared_buffers; no second configuration"
fi

# 3. Anonymization only: pganonymize vs gallra on the same order columns of the same rows.
if ! skipped anonymize; then
    venv="$work/venv"
    log "3. anonymization only: installing pganonymize 0.13.0 in $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q pganonymize==0.13.0 psycopg2-binary >&2
    cat >"$work/pganonymize.yaml" <<YAML
tables:
  - order:
      primary_key: id
      chunk_size: 10000
      search: "customer_id IN (SELECT id FROM shop.customer WHERE $expiring_sql)"
      fields:
        - email:
            provider:
              name: md5
            append: "@example.invalid"
        - full_name:
            provider:
              name: set
              value: "[redacted]"
        - phone:
            provider:
              name: clear
        - birth_date:
            provider:
              name: clear
YAML
    fresh
    anon_rows=$(q "SELECT count(*) FROM shop.\"order\" WHERE customer_id IN (SELECT id FROM shop.customer WHERE $expiring_sql)")
    measure pganonymize sql "$venv/bin/pganonymize" --schema "$work/pganonymize.yaml" --dbname "$RUNDB" \
        --host "$host" --port "$port" --user "$user" --init-sql "SET search_path = shop, public"
    record pganonymize "$lim_subjects" "$anon_rows" "" '{"note": "rows = orders anonymized; birth_date cleared (no truncate provider)"}'
    for p in $PARALLEL; do
        name="gallra-anonymize$(suffix "$p")"
        fresh
        sed "s/PARALLEL/$p/" "$work/anonymize-orders.yaml" >"$work/policy-$name.yaml"
        GALLRA_DATABASE="$db" "$gallra" policy apply "$work/policy-$name.yaml" >/dev/null
        GALLRA_DATABASE="$db" measure "$name" gallra "$gallra" run --once --as-of "$AS_OF_ISO" --format json
        read -r g_subjects g_rows < <(gallra_counts "$work/out.$name")
        record "$name" "$g_subjects" "$g_rows"
    done
fi

# gallra plan vs the equivalent COUNT(*) queries.
if ! skipped plan; then
    log "4. gallra plan vs COUNT(*)"
    fresh
    policy 1000 "$work/policy-plan.yaml"
    GALLRA_DATABASE="$db" "$gallra" policy apply "$work/policy-plan.yaml" >/dev/null
    q "ANALYZE" >/dev/null
    GALLRA_DATABASE="$db" measure gallra-plan gallra "$gallra" plan --as-of "$AS_OF_ISO" --format json
    record gallra-plan "$lim_subjects" 0
    # What gallra plan reports, counted by hand: the due and the exempted subjects, the rows of each step, and
    # of the addresses the subjects point to those anonymized and those kept because a store, a customer who
    # stays or an order of one uses them (as bench/limit.sql decides).
    cat >"$work/count.sql" <<SQL
CREATE TEMP TABLE s AS SELECT id, address_id FROM shop.customer WHERE $expiring_sql;
ALTER TABLE s ADD PRIMARY KEY (id);
ANALYZE s;
SELECT count(*) FROM s;
SELECT count(*) FROM shop.customer WHERE last_seen_at < timestamptz '$AS_OF' - interval '1 year' AND legal_hold;
SELECT count(*) FROM shop.wishlist_item w JOIN s ON w.customer_id = s.id;
SELECT count(*) FROM shop.cart_item ci JOIN shop.cart ca ON ci.cart_id = ca.id JOIN s ON ca.customer_id = s.id;
SELECT count(*) FROM shop.cart ca JOIN s ON ca.customer_id = s.id;
SELECT count(*) FROM shop.newsletter_consent nc JOIN s ON nc.customer_id = s.id;
SELECT count(*) FROM shop.newsletter_log nl JOIN s ON nl.customer_ref = s.id;
SELECT count(*) FROM shop."order" o JOIN s ON o.customer_id = s.id;
WITH a AS (SELECT address_id AS addr FROM s WHERE address_id IS NOT NULL
           UNION SELECT o.shipping_address_id FROM shop."order" o JOIN s ON s.id = o.customer_id),
     kept AS (SELECT address_id AS addr FROM shop.store
              UNION SELECT k.address_id FROM shop.customer k WHERE NOT EXISTS (SELECT FROM s WHERE s.id = k.id)
              UNION SELECT o.shipping_address_id FROM shop."order" o
                    WHERE o.customer_id IS NULL OR NOT EXISTS (SELECT FROM s WHERE s.id = o.customer_id))
SELECT count(*) FILTER (WHERE kept.addr IS NULL), count(*) FILTER (WHERE kept.addr IS NOT NULL)
FROM a LEFT JOIN kept USING (addr);
SQL
    measure count-queries sql psql "$db" -qAtX -v ON_ERROR_STOP=1 -f "$work/count.sql"
    record count-queries "$lim_subjects" 0
fi

# The consent guard of collect: with_consent: the shop's inserts into a guarded table, with the guard and
# without it, on one copy. Every active customer has consent in force (the guard lets each insert through
# after its probe of the registry), a fifth of them after a revocation and a new grant. The same policy is
# applied with collect: always and collect: with_consent in turn, so the guard comes and goes as an operator's
# apply installs and removes it; the rounds alternate so that a host slowing down or speeding up weighs on
# both alike (BENCH_GUARD_ROUNDS rounds each way). Figures: pgbench's transactions per second, one insert per transaction at full speed on two
# clients (the shop's insert load), and one INSERT ... SELECT of a row per active customer, rolled back (a
# bulk load); each as the median of its rounds.
if ! skipped guard; then
    log "consent guard: inserts into shop.newsletter_log with and without collect: with_consent"
    fresh
    guard_policy() { # COLLECT FILE
        cat >"$2" <<YAML
policy: bench-newsletter
legal_basis: consent
collect: $1
state: active
subject: { table: shop.customer, key: id }
expires: { consent_revoked: 30 days, consent: gallra }
data:
  - { table: shop.newsletter_log, via: customer_ref, delete: true }
YAML
        GALLRA_DATABASE="$db" "$gallra" policy apply "$2" >/dev/null
    }
    guard_policy always "$work/guard-off.yaml"
    psql "$db" -qX -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
INSERT INTO gallra.consent_event (subject_table, subject_key, policy, ordinal, policy_version, event, source)
SELECT 'shop.customer', a.id::text, 'bench-newsletter', o.ordinal, 1,
       CASE o.ordinal WHEN 2 THEN 'revoked' ELSE 'granted' END, 'web'
FROM bench.active AS a
CROSS JOIN LATERAL generate_series(1, CASE WHEN a.i % 5 = 0 THEN 3 ELSE 1 END) AS o (ordinal);
VACUUM ANALYZE gallra.consent_event;
SQL
    q "CHECKPOINT" postgres
    # Commits as a shop makes them (fsync and synchronous_commit on: each waits for its WAL to reach the disk),
    # or as the rest of the bench does (both off: CPU and WAL only, the guard's worst case). Our own server only.
    commits() { # durable|cpu
        [ "$own_server" = 1 ] || return 0
        local value=off
        [ "$1" = cpu ] || value=on
        q "ALTER SYSTEM SET fsync = $value" postgres
        q "ALTER SYSTEM SET synchronous_commit = $value" postgres
        q "SELECT pg_reload_conf()" postgres >/dev/null
    }
    inserts_per_s() { # pgbench's transactions per second, one insert each
        (cd "$work" && PGAPPNAME=pgbench pgbench "$db" -n -T "$GUARD_SECONDS" -c 2 -j 2 \
            -D n_active="$n_active" -f "$root/bench/oltp/newsletter.sql" 2>&1 \
            | awk -F'= ' '/^tps/ {split($2, f, " "); print f[1]; exit}')
    }
    guard_round() { # prints inserts/s with durable commits, inserts/s CPU-bound, and ms of the bulk insert
        local durable cpu bulk
        commits durable
        durable=$(inserts_per_s)
        commits cpu
        cpu=$(inserts_per_s)
        bulk=$(psql "$db" -qAtX -v ON_ERROR_STOP=1 2>&1 <<'SQL' | awk '/^Time:/ {print $2; exit}'
BEGIN;
\timing on
INSERT INTO shop.newsletter_log (customer_ref, event, at) SELECT a.id, 'opened', now() FROM bench.active AS a;
\timing off
ROLLBACK;
SQL
        )
        echo "$durable $cpu $bulk"
    }
    : >"$work/guard-rounds"
    for round in $(seq 1 "$GUARD_ROUNDS"); do
        for side in off on; do
            if [ $side = on ]; then guard_policy with_consent "$work/guard-on.yaml"; else guard_policy always "$work/guard-off.yaml"; fi
            triggers=$(q "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'gallra_consent_guard_%'")
            read -r durable cpu bulk < <(guard_round)
            log "  round $round, guard $side ($triggers triggers): $durable inserts/s durable, $cpu CPU-bound, bulk ${bulk} ms"
            echo "$side $durable $cpu $bulk $triggers" >>"$work/guard-rounds"
        done
    done
    if [ "$own_server" = 1 ]; then
        q "ALTER SYSTEM RESET fsync" postgres
        q "ALTER SYSTEM RESET synchronous_commit" postgres
        q "SELECT pg_reload_conf()" postgres >/dev/null
    fi
    python3 - "$work/guard-rounds" "$N" "$buffers" "$n_active" "$GUARD_SECONDS" "$own_server" >>"$results" <<'PY'
import json, statistics, sys
path, n, buffers, active, seconds, own = sys.argv[1:]
rounds = [l.split() for l in open(path) if l.strip()]
def med(side, i): return statistics.median(float(r[i]) for r in rounds if r[0] == side)
for side in ("off", "on"):
    if any(r[0] == side and int(r[4]) != (0 if side == "off" else 2) for r in rounds):
        sys.exit(f"bench: the consent guard was {'not ' if side == 'on' else ''}installed in a round 'guard {side}'")
off_d, on_d, off_c, on_c, off_b, on_b = (med(s, i) for i in (1, 2, 3) for s in ("off", "on"))
print(json.dumps({
    "run": "guard", "kind": "guard", "bench_n": int(n), "shared_buffers": buffers, "rows": 0,
    "guard_rounds": len(rounds) // 2, "guard_round_s": int(seconds),
    "durable_commits": own == "1",
    "inserts_per_s_unguarded": round(off_d, 1), "inserts_per_s_guarded": round(on_d, 1),
    "insert_time_vs_unguarded": round(off_d / on_d, 3),
    "cpu_inserts_per_s_unguarded": round(off_c, 1), "cpu_inserts_per_s_guarded": round(on_c, 1),
    "cpu_insert_time_vs_unguarded": round(off_c / on_c, 3),
    "bulk_rows": int(active), "bulk_ms_unguarded": round(off_b, 1), "bulk_ms_guarded": round(on_b, 1),
    "bulk_time_vs_unguarded": round(on_b / off_b, 3),
    "rounds": {side: [[float(x) for x in r[1:4]] for r in rounds if r[0] == side] for side in ("off", "on")},
}))
PY
fi

# Live shop impact.
if ! skipped live; then
    autovacuum on
    oltp() { # NAME SECONDS: pgbench at a fixed rate; per-transaction log in $work/pgbench.NAME.*
        (cd "$work" && PGAPPNAME=pgbench pgbench "$server dbname=$RUNDB" -n -R "$RATE" -T "$2" -c 4 -j 2 \
            -D n_active="$n_active" -D n_expiring="$n_expiring" -D n_products="$n_products" \
            -f "$root/bench/oltp/read.sql@50" -f "$root/bench/oltp/update.sql@29" \
            -f "$root/bench/oltp/order.sql@20" -f "$root/bench/oltp/returning.sql@1" \
            -l --log-prefix="pgbench.$1" >"$work/pgbench.$1.out" 2>&1)
    }
    # latencies NAME T0 T1 [PAUSE_PERCENT [IDLE_RUN...]]: p50/p99/max in ms of the transactions completed in
    # [T0, T1], the longest wait of a returning customer, and the p99 split by what else ran: with an
    # autovacuum worker on the database or without one (from the sampler), and, for a gallra run given its
    # pause, inside a batch or between batches ($work/blocks.NAME: when its audit blocks were written). A
    # batch ends when its audit block is written (created_at, just before the commit) and starts
    # 1 / (1 + pause) of the way from the block before. Also the p99 of each whole minute, and their median:
    # a burst of the host's own load moves a few minutes, where what the run does to the shop moves every
    # one. With IDLE_RUNs, the p99 of their transactions taken together (idle_p99_ms) and the median of
    # their minutes' p99, which the run's ratios compare with.
    latencies() {
        local name=$1 t0=$2 t1=$3 pause=${4:-} blocks="$work/blocks.$1" idle=()
        shift 3; shift $(( $# < 1 ? $# : 1 ))
        for run in "$@"; do idle+=("$work/lat.$run" "$(awk '{print $3, $4}' "$work/m.$run")"); done
        # One line per transaction (with -R: client, number, latency in µs, script, epoch s, µs, schedule lag).
        # pgbench stopped by a signal leaves its last line cut: awk ends it, the reader skips it.
        awk 1 "$work"/pgbench."$name".[0-9]* 2>/dev/null >"$work/lat.$name" || true
        [ -n "$pause" ] && [ -f "$blocks" ] || : >"$blocks"
        python3 - "$work/lat.$name" "$t0" "$t1" "$work/sampler.$name" "$blocks" "$pause" "${idle[@]}" <<'PY'
import bisect, json, sys
path, t0, t1, sampler, blocks, pause = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), *sys.argv[4:7]
idle = list(zip(sys.argv[7::2], sys.argv[8::2]))
samples = sorted((float(f[0]), int(f[3])) for f in (l.split() for l in open(sampler)) if len(f) == 4)
ends = sorted(float(l) for l in open(blocks) if l.strip())
share = 1 / (1 + float(pause) / 100) if pause else 1
batches = [(b - (b - a) * share, b) for a, b in zip(ends, ends[1:])]
def vacuuming(when):
    i = bisect.bisect_right(samples, (when, 1 << 30)) - 1
    return i >= 0 and samples[i][1] > 0
def in_batch(start, end):
    i = bisect.bisect_right(batches, (end, end)) - 1
    return i >= 0 and batches[i][1] > start
def transactions(path, t0, t1): # (completed at, ms, script) of the log's transactions completed in [t0, t1]
    for line in open(path):
        f = line.split()
        if len(f) != 7 or not all(x.isdigit() for x in f): continue
        when = int(f[4]) + int(f[5]) / 1e6
        if t0 <= when <= t1: yield when, int(f[2]) / 1000.0, f[3]
lat, ret, split = [], [], {"autovacuum": [], "no_autovacuum": [], "in_batches": [], "between_batches": []}
for when, ms, script in transactions(path, t0, t1):
    lat.append(ms)
    if script == "3": ret.append(ms)
    split["autovacuum" if vacuuming(when) else "no_autovacuum"].append(ms)
    if len(batches) > 1 and batches[0][0] <= when <= batches[-1][1]:
        split["in_batches" if in_batch(when - ms / 1000, when) else "between_batches"].append(ms)
def pct(v, p):
    v = sorted(v)
    return round(v[min(len(v) - 1, int(p * len(v)))], 2) if v else None
r = {"oltp_transactions": len(lat), "oltp_p50_ms": pct(lat, 0.5), "oltp_p99_ms": pct(lat, 0.99),
     "oltp_max_ms": round(max(lat), 2) if lat else None,
     "returning_max_ms": round(max(ret), 2) if ret else None, "returning_n": len(ret)}
for k, v in split.items():
    if v: r[f"oltp_p99_{k}_ms"] = pct(v, 0.99)
if split["in_batches"]: r["oltp_p90_in_batches_ms"] = pct(split["in_batches"], 0.9)
def minute_p99s(path, t0, t1): # the p99 of each whole minute from t0
    minutes = {}
    for when, ms, _ in transactions(path, t0, t1):
        minutes.setdefault(int((when - t0) // 60), []).append(ms)
    return [pct(v, 0.99) for k, v in minutes.items() if t0 + (k + 1) * 60 <= t1 + 1]
def median(v):
    v = sorted(v)
    return round((v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2, 2) if v else None
r["oltp_p99_minutes_ms"] = minute_p99s(path, t0, t1)
r["oltp_p99_median_minute_ms"] = median(r["oltp_p99_minutes_ms"])
if idle:
    pooled = [ms for p, window in idle for _, ms, _ in transactions(p, *map(float, window.split()))]
    r["idle_p99_ms"], r["idle_runs"] = pct(pooled, 0.99), [p.rsplit("lat.", 1)[1] for p, _ in idle]
    r["idle_p99_median_minute_ms"] = median(
        [m for p, window in idle for m in minute_p99s(p, *map(float, window.split()))])
print(json.dumps(r))
PY
    }
    # The shop alone, on a fresh copy, before and after the runs it is compared with: a run's ratios are
    # to the p99 of the idle runs on either side of it taken together, so that a host that slows down or
    # speeds up over the invocation (a shared machine does) moves the baseline with it.
    idle_run() { # NAME
        log "live shop: pgbench -R $RATE alone for ${OLTP_SECONDS}s ($1)"
        fresh
        start_sampler
        local t0 t1
        t0=$(date +%s.%N); oltp "$1" "$OLTP_SECONDS"; t1=$(date +%s.%N)
        stop_sampler "$1" >/dev/null
        echo "$1 oltp $t0 $t1 0 0 0" >"$work/m.$1"
        record "$1" 0 0 "" "$(latencies "$1" "$t0" "$t1")"
    }
    idle_run oltp-idle

    live_run() { # NAME KIND EXPECTED_SECONDS CMD...
        local name=$1 kind=$2 secs=$3
        shift 3
        oltp "$name" "$(python3 -c "import math; print(int(math.ceil($secs * 1.5)) + 10)")" &
        local pg=$!
        sleep 3
        measure "$name" "$kind" "$@"
        # The shop goes on a few seconds more, which writes out the log lines of the run's last
        # transactions; then pgbench is stopped rather than left to its planned end.
        sleep 5
        pkill -TERM -f "log-prefix=pgbench\.$name\$" 2>/dev/null || true
        wait "$pg" 2>/dev/null || true
    }
    # The live runs are recorded once the idle run after them is done: "subjects rows" in $work/live.NAME.
    lim_wall=$(grep '"run": "limit"' "$results" | python3 -c 'import json,sys; print(json.load(sys.stdin)["wall_s"])')
    log "live shop during the limit (one statement)"
    fresh
    live_run live-limit sql "$lim_wall" psql "$db" -qAtX -v ON_ERROR_STOP=1 -v as_of="$AS_OF" -v salt="$salt" -f bench/limit.sql
    tr '|' ' ' <"$work/out.live-limit" >"$work/live.live-limit"

    g_wall=$(grep '"run": "gallra-b1000"' "$results" | python3 -c 'import json,sys; print(json.load(sys.stdin)["wall_s"])' 2>/dev/null || echo "$lim_wall")
    for pacing in full default; do
        name=live-gallra-b1000
        if [ $pacing = default ]; then
            name=live-gallra-paced
            idle_run oltp-idle-2 # closes the first live runs, opens the paced one
        fi
        log "live shop during gallra run --once (batch 1000, $pacing pacing)"
        fresh
        policy 1000 "$work/policy-$name.yaml" "$([ $pacing = full ] && echo 0 || echo "$PACED_PAUSE")"
        GALLRA_DATABASE="$db" "$gallra" policy apply "$work/policy-$name.yaml" >/dev/null
        # A proportional pause of P% makes the run about 1 + P/100 times as long (the default is 900%).
        expected=$g_wall
        [ $pacing = full ] || expected=$(python3 -c "print($g_wall * (1.5 + ${PACED_PERCENT:-900} / 100))")
        GALLRA_DATABASE="$db" live_run "$name" gallra "$expected" "$gallra" run --once --as-of "$AS_OF_ISO" --format json
        gallra_counts "$work/out.$name" >"$work/live.$name"
        q "SELECT extract(epoch FROM created_at) FROM gallra.audit_block ORDER BY sequence" >"$work/blocks.$name"
    done
    idle_run oltp-idle-3
    for name in live-limit live-gallra-b1000 live-gallra-paced; do
        pause="" idle=(oltp-idle oltp-idle-2)
        [ $name = live-limit ] || pause=0
        [ $name != live-gallra-paced ] || { pause=$PACED_PERCENT idle=(oltp-idle-2 oltp-idle-3); }
        read -r _ _ t0 t1 _ <"$work/m.$name"
        read -r s r <"$work/live.$name"
        record "$name" "$s" "$r" "" "$(latencies "$name" "$t0" "$t1" "$pause" "${idle[@]}")"
    done
fi

# Report: ratios against the limit of this invocation.
python3 - "$results" ${json_file:+"$json_file"} <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
limit = next(r for r in runs if r["run"] == "limit")
# Each run's ratios are to the limit of its own server configuration.
def config(r):
    return (r.get("shared_buffers"), r.get("bgwriter", "default"))
limits = {config(r): r for r in runs if r["run"].split("-sb")[0] == "limit"}
for r in runs:
    if r["kind"] == "oltp" or not r["rows"]:
        continue
    limit = limits.get(config(r), limits[config(runs[0])])
    r["rows_per_s_vs_limit"] = round(r["rows_per_s"] / limit["rows_per_s"], 3)
    if r.get("wal_bytes_per_subject") and not r["run"].startswith("live"):
        r["wal_per_subject_vs_limit"] = round(r["wal_bytes_per_subject"] / limit["wal_bytes_per_subject"], 3)
    if r.get("oltp_p99_ms") and r.get("idle_p99_ms"):
        for part in ("p99", "p99_in_batches", "p90_in_batches", "p99_between_batches", "p99_no_autovacuum"):
            if r.get(f"oltp_{part}_ms"):
                r[f"oltp_{part}_vs_idle"] = round(r[f"oltp_{part}_ms"] / r["idle_p99_ms"], 2)
    if r.get("oltp_p99_median_minute_ms") and r.get("idle_p99_median_minute_ms"):
        r["oltp_p99_median_minute_vs_idle"] = round(
            r["oltp_p99_median_minute_ms"] / r["idle_p99_median_minute_ms"], 2)
plan = next((r for r in runs if r["run"] == "gallra-plan"), None)
cnt = next((r for r in runs if r["run"] == "count-queries"), None)
if plan and cnt:
    plan["wall_vs_count_queries"] = round(plan["wall_s"] / cnt["wall_s"], 2)
pga = next((r for r in runs if r["run"] == "pganonymize"), None)
for anon in (r for r in runs if r["run"].startswith("gallra-anonymize")):
    if pga:
        anon["rows_per_s_vs_pganonymize"] = round(anon["rows_per_s"] / pga["rows_per_s"], 2)
cols = ["run", "shared_buffers", "wall_s", "subjects", "rows", "subjects_per_s", "rows_per_s", "rows_per_s_vs_limit",
        "wal_bytes_per_subject", "wal_per_subject_vs_limit", "blocks_read_per_subject", "blocks_written_per_subject",
        "longest_xact_s", "peak_rss_kb",
        "oltp_p50_ms", "oltp_p99_ms", "idle_p99_ms", "oltp_p99_vs_idle", "oltp_p99_median_minute_ms",
        "oltp_p99_median_minute_vs_idle", "oltp_p90_in_batches_ms", "oltp_p99_in_batches_ms", "oltp_p99_between_batches_ms",
        "autovacuum_s", "oltp_p99_no_autovacuum_ms", "oltp_max_ms", "returning_max_ms", "longest_lock_wait_s",
        "round_trips_per_batch"]
short = ["run", "buffers", "wall s", "subj", "rows", "subj/s", "rows/s", "x limit", "WAL B/subj", "WAL x", "rd/subj",
         "wr/subj", "longest s",
         "RSS kB", "p50 ms", "p99 ms", "idle p99", "p99 x idle", "min p99", "min x idle", "p90 batch", "p99 batch", "p99 pause", "autovac s", "p99 no av", "max ms",
         "ret max ms", "lock wait s", "trips/batch"]
table = [short] + [["" if r.get(c) is None else str(r.get(c)) for c in cols] for r in runs]
width = [max(len(row[i]) for row in table) for i in range(len(cols))]
for row in table:
    print("  ".join(v.rjust(w) for v, w in zip(row, width)), file=sys.stderr if len(sys.argv) > 2 else sys.stdout)
out = open(sys.argv[2], "w") if len(sys.argv) > 2 else sys.stdout
console = sys.stderr if len(sys.argv) > 2 else sys.stdout
print("", file=console)
# One connection at the limit: gallra at full speed on one connection against the single statement.
for r in (r for r in runs if r["run"].split("-sb")[0] == "gallra-b1000"):
    own_limit = limits.get(config(r), limit)
    bgwriter = "" if r.get("bgwriter", "default") == "default" else f", background writer {r['bgwriter']}"
    print(f"one connection: gallra batch 1000, pause 0, shared_buffers {r.get('shared_buffers')}{bgwriter}, "
          f"{r['rows_per_s_vs_limit']}x the single statement's rows/s at "
          f"{r['bench_n']} customers ({r['wall_s']} s against {own_limit['wall_s']} s), "
          f"{r.get('round_trips_per_batch')} round trips per batch", file=console)
    print("", file=console)
for g in (r for r in runs if r["kind"] == "guard"):
    print(f"consent guard (collect: with_consent), median of {g['guard_rounds']} rounds each, time per insert with "
          f"the guard vs without: the shop's inserts x{g['insert_time_vs_unguarded']} "
          f"({g['inserts_per_s_unguarded']} -> {g['inserts_per_s_guarded']} inserts/s, "
          f"{'durable commits' if g.get('durable_commits') else 'commits as the server is set'}); "
          f"CPU-bound (fsync off) x{g['cpu_insert_time_vs_unguarded']} ({g['cpu_inserts_per_s_unguarded']} -> "
          f"{g['cpu_inserts_per_s_guarded']}); a bulk insert of {g['bulk_rows']} rows x{g['bulk_time_vs_unguarded']} "
          f"({g['bulk_ms_unguarded']} -> {g['bulk_ms_guarded']} ms)", file=console)
    print("", file=console)
for r in runs:
    print(json.dumps(r), file=out)
PY
