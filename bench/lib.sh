# Sourced by the bench scripts that measure one gallra binary on a throwaway server (export, erasure, isolate,
# replay, footprint, and scripts/hot-functions.sh): what each needs before it measures. The script sets `bench`
# (its name, for messages) and, before calling `quiet`, `work` (its working directory; `bench_work` makes one).

log() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

# bench_binary [GALLRA_BINARY]: sets `gallra` to the binary named, else .build/release/gallra (built by
# scripts/release.sh when missing), as an absolute path; exits 66 when it is not an executable.
bench_binary() {
    gallra=${1:-.build/release/gallra}
    if [ $# -eq 0 ] && [ ! -x "$gallra" ]; then
        log "building gallra (release)"
        scripts/release.sh 2>&1 | tail -n 1 >&2
    fi
    [ -x "$gallra" ] || {
        echo "$bench: $gallra is not an executable; build one with scripts/release.sh" >&2
        exit 66
    }
    gallra=$(realpath "$gallra")
}

# bench_needs_gnu_time: exits 69 without GNU time, which measures the peak resident set size.
bench_needs_gnu_time() {
    [ -x /usr/bin/time ] || {
        echo "$bench: GNU time (/usr/bin/time) is missing; scripts/deps.sh installs it (package time)" >&2
        exit 69
    }
}

# quiet COMMAND...: runs a set-up step with its output in $work/setup.log, shown only when it fails (exit 70).
quiet() {
    "$@" >>"$work/setup.log" 2>&1 || {
        cat "$work/setup.log" >&2
        echo "$bench: failed: $*" >&2
        exit 70
    }
}

# bench_work NAME: sets `work` to a new directory /tmp/gallra-NAME.XXXXXX (readable by the postgres user, for the
# throwaway server in $work/pg) and `service_pid` to none; on exit the process in `service_pid`, if the script
# started one, is ended, the server in $work/pg stopped and the directory removed.
bench_work() {
    work=$(mktemp -d "/tmp/gallra-$1.XXXXXX")
    chmod 0755 "$work"
    service_pid=""
    trap bench_cleanup EXIT INT TERM
}

bench_cleanup() {
    local status=$?
    if [ -n "$service_pid" ] && kill -0 "$service_pid" 2>/dev/null; then
        kill -TERM "$service_pid" 2>/dev/null || true
        wait "$service_pid" 2>/dev/null || true
    fi
    scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
    rm -rf "$work"
    exit "$status"
}

# bench_demo_shop CUSTOMERS AS_OF: starts the throwaway server in $work/pg (`server`, its conninfo) and loads the
# demo shop of CUSTOMERS customers as of AS_OF into its database `shop`, which GALLRA_DATABASE names. Set-up
# output (NOTICEs) goes to $work/setup.log, shown only when a step fails. Only what the script sets reaches
# gallra from here on: no PG* defaults, no GALLRA_* settings, no journal or systemd of the caller's.
bench_demo_shop() {
    server=$(scripts/pg.sh start "$work/pg")
    quiet psql "$server" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE shop"
    unset NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID JOURNAL_STREAM CREDENTIALS_DIRECTORY GALLRA_CONFIG
    while read -r name; do unset "$name"; done < <(env | sed -n 's/^\(\(GALLRA\|PG\)[A-Z_]*\)=.*/\1/p')
    export GALLRA_DATABASE="$server dbname=shop"
    quiet psql "$GALLRA_DATABASE" -qX -v ON_ERROR_STOP=1 -f config/demo/schema.sql
    quiet psql "$GALLRA_DATABASE" -qX -v ON_ERROR_STOP=1 -v customers="$1" -v as_of="$2" -f config/demo/generate.sql
}
