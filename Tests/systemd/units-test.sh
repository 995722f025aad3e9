#!/usr/bin/env bash
# The shipped systemd units: checked offline (systemd-analyze verify and security, make install)
# and run under a real systemd service manager (scripts/systemd-harness.sh) with their full
# sandbox against a throwaway PostgreSQL.
#
#   Tests/systemd/units-test.sh      (root; uses .build/debug/gallra, or $GALLRA_BINARY)
#
# The sandbox checks run `gallra check` in copies of the installed gallra.service and
# gallra-plan.service under other names, byte for byte, with a drop-in that changes only the
# command and the unit type, so every sandbox setting is the shipped one. Then the shipped
# gallra.service itself runs the real `gallra run` (start on READY=1, trigger, reload, watchdog,
# stop) and gallra-plan.service the real `gallra plan`, with only the harness's drop-in (binary,
# database) and a shorter watchdog. Then the metrics drop-in of docs/metrics.md: the textfile in the
# state directory and GET /metrics in the shipped sandbox. Last, two instances of gallra@.service run next to
# gallra.service, each on its own database with its own configuration, audit key, state
# directory and log identifier. Prints "ok - ..." or "not ok - ..." per check, exits 1 when
# any check failed, and stops what it started in any case. Takes 40 to 80 s on a shared 2-core machine.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
binary=${GALLRA_BINARY:-$root/.build/debug/gallra}
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
[ "$(id -u)" -eq 0 ] || { echo "units-test.sh: needs root (namespaces, cgroups)" >&2; exit 1; }
[ -x "$binary" ] || { echo "units-test.sh: $binary missing: swift build" >&2; exit 1; }

work=$(mktemp -d /tmp/gallra-units.XXXXXX)
chmod 0755 "$work"
harness="$work/harness"
harness_pid=""
cleanup() {
    status=$?
    [ -z "$harness_pid" ] || scripts/systemd-harness.sh stop "$harness_pid" || true
    scripts/pg.sh stop "$harness/pg" >/dev/null 2>&1 || true
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

failures=0
ok() { echo "ok - $*"; }
not_ok() {
    echo "not ok - $*"
    failures=$((failures + 1))
}
# expect NAME COMMAND...: the command succeeds.
expect() {
    local name=$1
    shift
    if "$@" >"$work/out" 2>&1; then ok "$name"; else
        not_ok "$name"
        sed 's/^/    /' "$work/out"
    fi
}

# --- Offline: the unit files -------------------------------------------------------------------
# verify fails when ExecStart= names a missing binary: check copies that name the built one. The
# template is checked as an instance of it.
mkdir -p "$work/verify"
for unit in gallra.service gallra-plan.service gallra@verify.service; do
    sed "s|/usr/local/bin/gallra|$binary|" "systemd/${unit/@verify/@}" >"$work/verify/$unit"
    # It exits 0 on unknown keys and bad values, only warning: any output is a failure.
    if systemd-analyze verify --man=no "$work/verify/$unit" >"$work/out" 2>&1 && [ ! -s "$work/out" ]; then
        ok "systemd-analyze verify $unit: silent"
    else
        not_ok "systemd-analyze verify $unit: silent"
        sed 's/^/    /' "$work/out"
    fi
    status=0
    systemd-analyze security --offline=true --threshold=15 "$work/verify/$unit" >"$work/out" 2>&1 || status=$?
    score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$work/out")
    if [ "$status" -eq 0 ] && [ -n "$score" ]; then
        ok "systemd-analyze security $unit: exposure $score (threshold 1.5)"
    else
        not_ok "systemd-analyze security $unit: exposure ${score:-?} (threshold 1.5)"
        grep '✗' "$work/out" | sed 's/^/    /' || cat "$work/out"
    fi
done
# gallra@.service is gallra.service but for the lines that keep instances apart: a change to the
# sandbox or the life cycle of one is made to the other too.
settings() { grep -v '^#' "$1" | grep . | LC_ALL=C sort; }
instance_lines='+Description=gallra retention and purge daemon for PostgreSQL, instance %i
+Environment=GALLRA_CONFIG=/etc/gallra/%i.yaml
+Environment=GALLRA_LOG_IDENTIFIER=gallra-%i
+LoadCredential=audit-key:/etc/gallra/%i.audit-key
+LoadCredential=db-password:/etc/gallra/%i.db-password
+RuntimeDirectory=gallra/%i
+StateDirectory=gallra/%i
+SyslogIdentifier=gallra-%i
-Description=gallra retention and purge daemon for PostgreSQL
-Environment=GALLRA_CONFIG=/etc/gallra/gallra.yaml
-LoadCredential=audit-key:/etc/gallra/audit-key
-LoadCredential=db-password:/etc/gallra/db-password'
template_differs_only_per_instance() {
    local differences
    # gallra.service's own StateDirectory=gallra, when it has one, is the parent of the instances'.
    differences=$(diff <(settings systemd/gallra.service | grep -vx 'StateDirectory=gallra') <(settings systemd/gallra@.service) \
        | sed -n 's/^< /-/p; s/^> /+/p' | LC_ALL=C sort)
    [ "$differences" = "$instance_lines" ] && return 0
    echo "gallra.service (-) and gallra@.service (+) differ in:"
    echo "$differences"
    return 1
}
expect "gallra@.service has every setting of gallra.service but its configuration, credentials, state and log identifier" \
    template_differs_only_per_instance
mkdir -p "$work/sysusers/etc"
expect "gallra.sysusers creates the gallra user" \
    sh -c "systemd-sysusers --root='$work/sysusers' '$root/systemd/gallra.sysusers' \
        && grep -q '^gallra:x:[0-9]*:[0-9]*:gallra retention daemon:/:/usr/sbin/nologin$' '$work/sysusers/etc/passwd'"

# --- Offline: make install ---------------------------------------------------------------------
install_tree() {
    local dest=$1
    shift
    make --no-print-directory -s install DESTDIR="$dest" GALLRA_BINARY="$binary" "$@" >/dev/null
    (cd "$dest" && find . -mindepth 1 \( -type f -o -type l \) -printf '%m %p\n' | sort)
}
expected="644 ./etc/gallra/gallra.yaml
644 ./usr/local/lib/systemd/system/gallra-plan.service
644 ./usr/local/lib/systemd/system/gallra.service
644 ./usr/local/lib/systemd/system/gallra@.service
644 ./usr/local/lib/sysusers.d/gallra.conf
755 ./usr/local/bin/gallra"
if [ -f systemd/gallra.catalog ]; then
    expected=$(printf '%s\n644 ./usr/local/lib/systemd/catalog/gallra.catalog' "$expected" | sort)
fi
expect "make install DESTDIR: binary, units, sysusers, catalog if present, example config" \
    sh -c '[ "$(cat)" = "$1" ]' - "$expected" < <(install_tree "$work/dest")
expect "make install: with the default PREFIX the units are installed as shipped" \
    sh -c "cmp systemd/gallra.service '$work/dest/usr/local/lib/systemd/system/gallra.service' \
        && cmp systemd/gallra-plan.service '$work/dest/usr/local/lib/systemd/system/gallra-plan.service' \
        && cmp systemd/gallra@.service '$work/dest/usr/local/lib/systemd/system/gallra@.service' \
        && cmp systemd/gallra.sysusers '$work/dest/usr/local/lib/sysusers.d/gallra.conf' \
        && cmp config/gallra.yaml '$work/dest/etc/gallra/gallra.yaml'"
echo "database: \"operator's own\"" >"$work/dest/etc/gallra/gallra.yaml"
install_tree "$work/dest" >/dev/null
expect "make install keeps an existing /etc/gallra/gallra.yaml" \
    grep -q "operator's own" "$work/dest/etc/gallra/gallra.yaml"
install_tree "$work/opt" PREFIX=/opt/gallra >/dev/null
expect "make install PREFIX=/opt/gallra: units start /opt/gallra/bin/gallra" \
    sh -c "grep -qx 'ExecStart=/opt/gallra/bin/gallra run' '$work/opt/opt/gallra/lib/systemd/system/gallra.service' \
        && grep -qx 'ExecStart=/opt/gallra/bin/gallra plan' '$work/opt/opt/gallra/lib/systemd/system/gallra-plan.service' \
        && grep -qx 'ExecStart=/opt/gallra/bin/gallra run' '$work/opt/opt/gallra/lib/systemd/system/gallra@.service' \
        && ! grep -q /usr/local '$work/opt/opt/gallra/lib/systemd/system/gallra.service'"
make --no-print-directory -s uninstall DESTDIR="$work/opt" PREFIX=/opt/gallra >/dev/null
expect "make uninstall leaves only the configuration" \
    sh -c "[ \"\$(cd '$work/opt' && find . -type f)\" = ./etc/gallra/gallra.yaml ]"

# --- Under a real systemd ----------------------------------------------------------------------
mkdir -p "$harness"
conninfo=$(scripts/pg.sh start "$harness/pg")
port=$(cat "$harness/pg/port")
socket_database="host=/srv/harness/pg port=$port user=postgres dbname=postgres"
harness_pid=$(HARNESS_DB_PASSWORD=secret-pw GALLRA_BINARY="$binary" HARNESS_TIMEOUT=300 \
    scripts/systemd-harness.sh start "$harness" "$socket_database")
echo "# harness: systemd pid $harness_pid, database $conninfo" >&2
in_ns() { scripts/systemd-harness.sh exec "$harness_pid" "$@"; }

expect "shipped gallra.service loads, as user gallra, with the harness drop-in" \
    sh -c "[ \"\$(scripts/systemd-harness.sh exec $harness_pid systemctl show gallra -P LoadState -P User)\" = \"\$(printf 'gallra\nloaded')\" ] \
        && scripts/systemd-harness.sh exec $harness_pid systemctl show gallra -P ExecStart | grep -q 'path=/srv/harness/bin/gallra ; argv\[\]=/srv/harness/bin/gallra run '"

# A test unit: a byte-for-byte copy of an installed shipped unit plus a drop-in.
test_unit() {
    local name=$1 from=$2
    cat >"$harness/$name.conf"
    in_ns sh -c "cp /etc/systemd/system/$from /etc/systemd/system/$name \
        && mkdir -p /etc/systemd/system/$name.d \
        && cp /srv/harness/$name.conf /etc/systemd/system/$name.d/test.conf"
}
oneshot_check='Type=oneshot
ExecReload=
WatchdogSec=0
Restart=no
ExecStart=
ExecStart=/srv/harness/bin/gallra check'
test_unit gallra-check.service gallra.service <<UNIT
[Service]
$oneshot_check
Environment="GALLRA_DATABASE=$socket_database"
# The credentials arrive, readable by the service user, and the sandbox is in force.
ExecStartPre=/bin/test -s \${CREDENTIALS_DIRECTORY}/audit-key
ExecStartPre=/usr/bin/cmp \${CREDENTIALS_DIRECTORY}/db-password /srv/harness/expected-db-password
ExecStartPre=/bin/grep -q "^Seccomp:[[:space:]]*2" /proc/self/status
ExecStartPre=/bin/grep -q "^NoNewPrivs:[[:space:]]*1" /proc/self/status
ExecStartPre=/bin/grep -q "^CapEff:[[:space:]]*0000000000000000" /proc/self/status
UNIT
# libpq over TCP to 127.0.0.1 (IPAddressAllow=localhost) with a password from a credential.
test_unit gallra-tcp.service gallra.service <<UNIT
[Service]
$oneshot_check
LoadCredential=pgpass:/etc/gallra/pgpass
Environment=PGPASSFILE=%d/pgpass
Environment="GALLRA_DATABASE=host=127.0.0.1 port=$port user=password_user dbname=postgres connect_timeout=5"
UNIT
in_ns sh -c "umask 077 && echo '127.0.0.1:$port:*:password_user:secret-pw' >/etc/gallra/pgpass"
# A non-loopback address of this machine: refused at once outside the sandbox, dropped inside.
local_ip=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+(\.[0-9]+){3}$' | grep -v '^127\.' | head -n 1 || true)
test_unit gallra-denied.service gallra.service <<UNIT
[Service]
$oneshot_check
Environment="GALLRA_DATABASE=host=${local_ip:-192.0.2.1} port=1 connect_timeout=2"
UNIT
test_unit gallra-plan-check.service gallra-plan.service <<UNIT
[Service]
ExecStart=
ExecStart=/srv/harness/bin/gallra check --format json
Environment="GALLRA_DATABASE=$socket_database"
# A dry run gets the database password but not the audit key.
ExecStartPre=/bin/test -r \${CREDENTIALS_DIRECTORY}/db-password
ExecStartPre=/bin/test ! -e \${CREDENTIALS_DIRECTORY}/audit-key
UNIT
in_ns systemctl daemon-reload

journal() { # UNIT: the unit's messages, after the journal has caught up
    in_ns journalctl --sync
    in_ns journalctl --no-pager -o cat -u "$1"
}
started() { # UNIT: systemctl start succeeds, or print the journal of the unit
    if in_ns systemctl start "$1" 2>"$work/err"; then return 0; fi
    cat "$work/err"
    journal "$1"
    return 1
}

printf 'secret-pw' >"$harness/expected-db-password"
expect "gallra check runs in the full sandbox of gallra.service (MemoryDenyWriteExecute, seccomp, PrivateUsers, IPAddressDeny), with its credentials" \
    started gallra-check.service
journal gallra-check.service >"$work/journal"
expect "its output is in journalctl -u gallra-check" \
    grep -Eq "^server +PostgreSQL [0-9.]+.* at /srv/harness/pg:$port$" "$work/journal"
expect "the journal entries carry _SYSTEMD_UNIT=gallra-check.service" \
    sh -c "scripts/systemd-harness.sh exec $harness_pid journalctl -o json _SYSTEMD_UNIT=gallra-check.service | grep -q 'schema    gallra does not exist yet'"
# errno=13 is not the sandbox: an unprivileged process may not raise a thread's priority (nice
# -4 for QoS user-interactive), with or without it. errno=1 would be the seccomp filter.
expect "the Swift runtime does not run into the sandbox (seccomp, devices, /proc)" \
    sh -c "! grep -Ei 'failed|denied|not permitted' '$work/journal' | grep -v 'Failed to set thread priority for worker thread: .* errno=13$'"

in_ns rm /etc/gallra/db-password
printf '\n' >"$harness/expected-db-password"
expect "without /etc/gallra/db-password the unit still starts, with an empty (newline) credential" \
    started gallra-check.service

in_ns mv /etc/gallra/audit-key /etc/gallra/audit-key.away
if in_ns systemctl start gallra-check.service 2>/dev/null; then
    not_ok "without /etc/gallra/audit-key gallra.service does not start"
else
    expect "without /etc/gallra/audit-key gallra.service does not start (243/CREDENTIALS)" \
        sh -c "scripts/systemd-harness.sh exec $harness_pid journalctl --no-pager -u gallra-check.service | grep -q 'status=243/CREDENTIALS'"
fi
in_ns mv /etc/gallra/audit-key.away /etc/gallra/audit-key

expect "libpq gets a password from a credential and reaches 127.0.0.1 through IPAddressAllow=localhost" \
    started gallra-tcp.service
expect "... as password_user" grep -Eq '^user +password_user$' <(journal gallra-tcp.service)

if [ -n "$local_ip" ]; then
    outside=$("$binary" check --database "host=$local_ip port=1 connect_timeout=2" 2>&1 || true)
    if [[ $outside == *"Connection refused"* ]]; then
        start=$(date +%s)
        if in_ns systemctl start gallra-denied.service 2>/dev/null; then
            not_ok "IPAddressDeny=any drops packets to $local_ip (the connection succeeded)"
        else
            elapsed=$(($(date +%s) - start))
            journal gallra-denied.service >"$work/journal"
            if grep -q 'Connection refused' "$work/journal" || [ "$elapsed" -lt 2 ]; then
                not_ok "IPAddressDeny=any drops packets to $local_ip (refused after ${elapsed}s: not filtered)"
                sed 's/^/    /' "$work/journal"
            else
                ok "IPAddressDeny=any drops packets to $local_ip: connect_timeout ends the attempt after ${elapsed}s"
            fi
        fi
    else
        ok "IPAddressDeny=any # skip: $local_ip:1 is not refused outside the sandbox"
    fi
else
    ok "IPAddressDeny=any # skip: no non-loopback IPv4 address"
fi

expect "gallra-plan.service's sandbox runs gallra too, and its output is in journalctl -u" \
    started gallra-plan-check.service
expect "... (the check as JSON)" grep -q '"database" *: *"postgres"' <(journal gallra-plan-check.service)

# --- The shipped gallra.service's life cycle, with the real `gallra run` ------------------------
# The harness's drop-in already points ExecStart= at /srv/harness/bin/gallra run with the test
# database; this one only shortens the watchdog and the restart delay for the test. The database
# gets the demo shop (a few customers), gallra's schema and the example policies from outside
# the namespace first, so the daemon starts as leader with valid policies.
psql_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)/psql
gallra_outside() { "$binary" "$@" --config "$root/config/gallra.yaml" --database "$conninfo" --log-format text; }
prepare_database() {
    "$psql_bin" "$conninfo" -qX -v ON_ERROR_STOP=1 -f config/demo/schema.sql \
        && "$psql_bin" "$conninfo" -qX -v ON_ERROR_STOP=1 -v customers=50 -f config/demo/generate.sql \
        && gallra_outside migrate && gallra_outside policy apply config/policies
}
expect "the test database: demo shop, gallra migrate, gallra policy apply config/policies" prepare_database
cat >"$harness/lifecycle.conf" <<'UNIT'
[Service]
WatchdogSec=3
RestartSec=1
UNIT
in_ns sh -c 'cp /srv/harness/lifecycle.conf /etc/systemd/system/gallra.service.d/zz-test.conf && systemctl daemon-reload'
show() { in_ns systemctl show gallra.service -P "$1"; }
# wait_for PROPERTY VALUE: poll for up to 15 s
wait_for() {
    for _ in $(seq 1 150); do
        [ "$(show "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    echo "$1=$(show "$1"), expected $2"
    return 1
}
# journal_json_has PATTERN: an entry of _SYSTEMD_UNIT=gallra.service (JSON) matches, within 15 s
journal_json_has() {
    for _ in $(seq 1 30); do
        in_ns journalctl --sync
        in_ns journalctl -o json _SYSTEMD_UNIT=gallra.service >"$work/journal.json"
        grep -Eq "$1" "$work/journal.json" && return 0
        sleep 0.5
    done
    echo "no entry of _SYSTEMD_UNIT=gallra.service matches $1; the unit's journal:"
    in_ns journalctl --no-pager -o cat -u gallra.service | tail -n 20
    return 1
}
# The MESSAGE_IDs of Sources/GallraEngine/Run/JournalEvent.swift.
id_leader=156912201ce047d1b61337a4bca82875
id_reload=4cf11a4242ea4856aa548ef60b7286ac
id_run_finished=8f7f4f3e7f9c45beafc589f64fabb20c
id_stopping=3f8a43270bab468293993465e88d4138

status_text=""
if in_ns systemctl start gallra.service 2>"$work/err"; then
    state=$(show ActiveState)
    status_text=$(show StatusText)
    if [ "$state" = active ] && [ -n "$status_text" ]; then
        ok "systemctl start gallra returns once READY=1: active, STATUS=$status_text"
    else
        not_ok "systemctl start gallra returns once READY=1: ActiveState=$state StatusText=$status_text"
    fi
else
    not_ok "systemctl start gallra returns once READY=1"
    sed 's/^/    /' "$work/err"
    in_ns journalctl --no-pager -o cat -u gallra.service | tail -n 20 | sed 's/^/    /'
fi
expect "gallra.service runs as gallra, in the sandbox" \
    sh -c "pid=\$(scripts/systemd-harness.sh exec $harness_pid systemctl show gallra -P MainPID) \
        && scripts/systemd-harness.sh exec $harness_pid grep -q '^Seccomp:[[:space:]]*2' /proc/\$pid/status \
        && [ \"\$(scripts/systemd-harness.sh exec $harness_pid stat -c %U /proc/\$pid)\" = gallra ]"
expect "it leads: the leader event (MESSAGE_ID) with _SYSTEMD_UNIT=gallra.service" \
    journal_json_has "\"MESSAGE_ID\":\"$id_leader\""
# A live run needs the audit key: the trigger's run finishing proves the credential arrived.
gallra_outside trigger >"$work/out" 2>&1 || { cat "$work/out"; true; }
expect "gallra trigger: the run's events carry GALLRA_* fields (GALLRA_RUN_ID), the audit key arrived as a credential" \
    journal_json_has "\"MESSAGE_ID\":\"$id_run_finished\".*\"GALLRA_RUN_ID\"|\"GALLRA_RUN_ID\".*\"MESSAGE_ID\":\"$id_run_finished\""
expect "... and no audit-key or credential error in the journal" \
    sh -c "! scripts/systemd-harness.sh exec $harness_pid journalctl --no-pager -o cat -u gallra.service | grep -Ei 'audit key|credential'"
expect "systemctl reload gallra: SIGHUP from ExecReload= in the sandbox" \
    in_ns systemctl reload gallra.service
expect "... the reload event is in the journal" journal_json_has "\"MESSAGE_ID\":\"$id_reload\""
expect "... back to active, READY=1 again" \
    sh -c "$(declare -f show wait_for in_ns); harness_pid=$harness_pid; wait_for ActiveState active && wait_for SubState running"
pid_before=$(show MainPID)
in_ns systemctl kill -s SIGSTOP gallra.service
restarted_by_watchdog() {
    if wait_for NRestarts 1 && wait_for ActiveState active && [ "$(show MainPID)" != "$pid_before" ]; then return 0; fi
    in_ns systemctl status --no-pager -n 0 gallra.service
    in_ns journalctl --no-pager -u gallra.service | tail -n 15
    return 1
}
expect "a wedged daemon (SIGSTOP) is killed by the watchdog and restarted (NRestarts=1)" restarted_by_watchdog
expect "... the journal says why" \
    sh -c "scripts/systemd-harness.sh exec $harness_pid journalctl --no-pager -u gallra.service | grep -q 'Watchdog timeout'"
expect "systemctl stop gallra: STOPPING=1 and a clean exit (inactive, Result=success)" \
    sh -c "scripts/systemd-harness.sh exec $harness_pid systemctl stop gallra.service \
        && [ \"\$(scripts/systemd-harness.sh exec $harness_pid systemctl show gallra -P ActiveState -P Result)\" = \"\$(printf 'success\ninactive')\" ]"
expect "... the stopping event is in the journal" journal_json_has "\"MESSAGE_ID\":\"$id_stopping\""

expect "systemctl start gallra-plan: the dry run of the stored policies" started gallra-plan.service
expect "... journalctl -u gallra-plan shows the plan" \
    sh -c "scripts/systemd-harness.sh exec $harness_pid journalctl --no-pager -o cat -u gallra-plan.service | grep -q 'plan as of .*(dry run: nothing was changed)'"

# --- Metrics in the shipped sandbox (docs/metrics.md) ---------------------------------------------
# The drop-in docs/metrics.md gives: the textfile in the unit's state directory, the endpoint on a loopback
# port SocketBindAllow= opens. A textfile outside the state directory cannot be written: the start fails with 78.
metrics_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
metrics_dropin() {
    cat >"$harness/metrics.conf" <<UNIT
[Service]
Environment=GALLRA_METRICS_TEXTFILE=$1
Environment=GALLRA_METRICS_LISTEN=127.0.0.1:$metrics_port
SocketBindAllow=tcp:$metrics_port
UNIT
    in_ns sh -c 'cp /srv/harness/metrics.conf /etc/systemd/system/gallra.service.d/zz-metrics.conf \
        && systemctl daemon-reload && systemctl reset-failed gallra.service'
}
unwritable_textfile_fails() {
    metrics_dropin /var/lib/prometheus/node-exporter/gallra.prom
    ! in_ns systemctl start gallra.service 2>/dev/null && [ "$(show ExecMainStatus)" = 78 ] \
        && in_ns journalctl --no-pager -o cat -u gallra.service | grep -q 'metrics.textfile: mkstemp /var/lib/prometheus'
}
expect "metrics.textfile where the sandbox forbids writing: the start fails with 78 and says why" unwritable_textfile_fails
textfile_has_run() {
    for _ in $(seq 1 150); do
        in_ns cat /var/lib/gallra/gallra.prom 2>/dev/null | grep -q '^gallra_runs_total{outcome="done"} [1-9]' && return 0
        sleep 0.1
    done
    in_ns cat /var/lib/gallra/gallra.prom
    return 1
}
metrics_in_sandbox() {
    metrics_dropin /var/lib/gallra/gallra.prom
    started gallra.service || return 1
    gallra_outside trigger >/dev/null 2>&1 || return 1
    textfile_has_run || return 1
    [ "$(in_ns stat -c '%a %U' /var/lib/gallra/gallra.prom /var/lib/gallra)" = "$(printf '644 gallra\n755 gallra')" ] || return 1
    python3 -c "import sys, urllib.request; text = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode(); \
        assert 'gallra_runs_total{outcome=\"done\"}' in text, text" "http://127.0.0.1:$metrics_port/metrics"
}
expect "in the state directory, with SocketBindAllow=: /var/lib/gallra/gallra.prom (0644, its directory 0755) and GET /metrics after a run" \
    metrics_in_sandbox
in_ns systemctl stop gallra.service || true

# --- gallra@.service: two instances, two databases, next to gallra.service ----------------------
# Each instance gets a database of its own (demo shops of different sizes), /etc/gallra/NAME.yaml
# naming it and /etc/gallra/NAME.audit-key; the keys are kept outside too, to read each audit trail.
instance_db() { echo "host=$harness/pg port=$port user=postgres dbname=shop_$1"; }
sql_in() { "$psql_bin" "$(instance_db "$1")" -qAtX -v ON_ERROR_STOP=1 -c "$2"; }
prepare_instance() {
    local name=$1 customers=$2
    "$psql_bin" "$conninfo" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE shop_$name" \
        && "$psql_bin" "$(instance_db "$name")" -qX -v ON_ERROR_STOP=1 -f config/demo/schema.sql \
        && "$psql_bin" "$(instance_db "$name")" -qX -v ON_ERROR_STOP=1 -v customers="$customers" \
            -f config/demo/generate.sql >/dev/null \
        && "$binary" migrate --database "$(instance_db "$name")" --log-format text \
        && "$binary" policy apply config/policies --database "$(instance_db "$name")" --log-format text >/dev/null \
        && (umask 077 && head -c 32 /dev/urandom >"$harness/$name.audit-key") \
        && sed "s|^database: .*|database: \"host=/srv/harness/pg port=$port user=postgres dbname=shop_$name\"|" \
            config/gallra.yaml >"$harness/$name.yaml" \
        && in_ns sh -c "install -m 0644 /srv/harness/$name.yaml /etc/gallra/$name.yaml \
            && install -m 0600 /srv/harness/$name.audit-key /etc/gallra/$name.audit-key" \
        && sql_in "$name" "SELECT id FROM shop.customer ORDER BY id" >"$work/$name.before"
}
prepare_instances() { prepare_instance a 60 && prepare_instance b 90; }
expect "two databases shop_a (60 customers) and shop_b (90), with /etc/gallra/a.yaml, a.audit-key, b.yaml, b.audit-key" \
    prepare_instances
expect "systemctl start gallra gallra@a gallra@b: all three ready" \
    in_ns systemctl start gallra.service gallra@a.service gallra@b.service
instance() { in_ns systemctl show "gallra@$1.service" -P "$2"; }
pid_a=$(instance a MainPID)
pid_b=$(instance b MainPID)
two_sandboxed_processes() {
    [ "$pid_a" != 0 ] && [ "$pid_b" != 0 ] && [ "$pid_a" != "$pid_b" ] \
        && [ "$(in_ns stat -c %U "/proc/$pid_a" "/proc/$pid_b")" = "$(printf 'gallra\ngallra')" ] \
        && in_ns grep -q '^Seccomp:[[:space:]]*2' "/proc/$pid_a/status" \
        && in_ns grep -q '^Seccomp:[[:space:]]*2' "/proc/$pid_b/status"
}
expect "... gallra@a and gallra@b are two processes, each as gallra, each in the sandbox" two_sandboxed_processes
# environ PID NAME...: the values of NAME... in the process's environment, on one line
environ() {
    local pid=$1 name
    shift
    for name in "$@"; do in_ns cat "/proc/$pid/environ" | tr '\0' '\n' | sed -n "s/^$name=//p"; done | paste -sd ' '
}
apart() {
    [ "$(environ "$pid_a" GALLRA_CONFIG STATE_DIRECTORY RUNTIME_DIRECTORY)" = "/etc/gallra/a.yaml /var/lib/gallra/a /run/gallra/a" ] \
        && [ "$(environ "$pid_b" GALLRA_CONFIG STATE_DIRECTORY RUNTIME_DIRECTORY)" = "/etc/gallra/b.yaml /var/lib/gallra/b /run/gallra/b" ] \
        && [ "$(in_ns stat -c %U /var/lib/gallra/a /var/lib/gallra/b /run/gallra/a /run/gallra/b | sort -u)" = gallra ] \
        || { environ "$pid_a" GALLRA_CONFIG STATE_DIRECTORY RUNTIME_DIRECTORY; environ "$pid_b" GALLRA_CONFIG STATE_DIRECTORY RUNTIME_DIRECTORY; return 1; }
}
expect "... each with its own configuration (/etc/gallra/a.yaml), state (/var/lib/gallra/a) and runtime directory (/run/gallra/a), owned by gallra" \
    apart
for name in a b; do
    "$binary" trigger --database "$(instance_db "$name")" --log-format text >"$work/out" 2>&1 || cat "$work/out"
done
# triggered_run NAME: the run `gallra trigger` started in shop_NAME has finished, within 30 s
triggered_run() {
    for _ in $(seq 1 150); do
        [ "$(sql_in "$1" "SELECT count(*) FROM gallra.run WHERE trigger = 'notify' AND finished_at IS NOT NULL")" = 1 ] \
            && return 0
        sleep 0.2
    done
    sql_in "$1" "SELECT trigger, outcome FROM gallra.run"
    in_ns journalctl --no-pager -o cat -u "gallra@$1.service" | tail -n 20
    return 1
}
both_runs() { triggered_run a && triggered_run b; }
expect "gallra trigger on shop_a and on shop_b: each database's run has finished" both_runs
made_by_its_instance() {
    local a b
    a=$(sql_in a "SELECT pid FROM gallra.run WHERE trigger = 'notify'")
    b=$(sql_in b "SELECT pid FROM gallra.run WHERE trigger = 'notify'")
    [ "$a $b" = "$pid_a $pid_b" ] || { echo "the runs' pids: $a $b; gallra@a's and gallra@b's: $pid_a $pid_b"; return 1; }
}
expect "... shop_a's run was made by gallra@a's process, shop_b's by gallra@b's" made_by_its_instance
for name in a b; do
    sql_in "$name" "SELECT id FROM shop.customer ORDER BY id" >"$work/$name.after"
    comm -23 <(LC_ALL=C sort "$work/$name.before") <(LC_ALL=C sort "$work/$name.after") >"$work/$name.erased"
done
expect "... each erased customers of its own database (a: $(wc -l <"$work/a.erased") of 60, b: $(wc -l <"$work/b.erased") of 90)" \
    test -s "$work/a.erased" -a -s "$work/b.erased"
# lookups: gallra audit lookup of each database's first erased customer with either key
lookups() {
    local db key expected status
    for case in "a a 0" "a b 78" "b b 0" "b a 78"; do
        read -r db key expected <<<"$case"
        status=0
        GALLRA_AUDIT_KEY_FILE="$harness/$key.audit-key" "$binary" audit lookup --log-format text \
            --database "$(instance_db "$db")" --subject "shop.customer:$(head -n 1 "$work/$db.erased")" \
            >"$work/lookup.out" 2>&1 || status=$?
        [ "$status" = "$expected" ] || {
            echo "shop_$db looked up with $key.audit-key: exit $status, expected $expected"
            cat "$work/lookup.out"
            return 1
        }
    done
}
expect "... each under its own audit key: shop_a's record is found with a.audit-key, not with b's (78), and the other way round" \
    lookups
# names_itself NAME OTHER: gallra@NAME's entries, gallra's own (native protocol) and its stdout and stderr,
# carry SYSLOG_IDENTIFIER=gallra-NAME and no other; `journalctl -t gallra-NAME` has shop_NAME's run and
# nothing of gallra@OTHER. (The Swift runtime's warnings come over syslog(3) with the program's name.)
names_itself() {
    local run_id identifiers
    in_ns journalctl --sync
    identifiers=$(in_ns journalctl -o json "_SYSTEMD_UNIT=gallra@$1.service" _TRANSPORT=journal + \
        "_SYSTEMD_UNIT=gallra@$1.service" _TRANSPORT=stdout | grep -o '"SYSLOG_IDENTIFIER":"[^"]*"' | sort -u)
    [ "$identifiers" = "\"SYSLOG_IDENTIFIER\":\"gallra-$1\"" ] \
        || {
            echo "gallra@$1's entries have: $identifiers; expected only gallra-$1"
            in_ns journalctl -o json "_SYSTEMD_UNIT=gallra@$1.service" _TRANSPORT=journal + \
                "_SYSTEMD_UNIT=gallra@$1.service" _TRANSPORT=stdout | grep -v "\"SYSLOG_IDENTIFIER\":\"gallra-$1\"" | head -n 5
            return 1
        }
    run_id=$(sql_in "$1" "SELECT id FROM gallra.run WHERE trigger = 'notify'")
    in_ns journalctl -o json -t "gallra-$1" "MESSAGE_ID=$id_run_finished" | grep -q "\"GALLRA_RUN_ID\":\"$run_id\"" \
        || { echo "journalctl -t gallra-$1 does not have shop_$1's run $run_id"; return 1; }
    ! in_ns journalctl -o json -t "gallra-$1" | grep -q "\"_SYSTEMD_UNIT\":\"gallra@$2.service\"" \
        || { echo "journalctl -t gallra-$1 shows entries of gallra@$2"; return 1; }
}
expect "each instance's journal entries name it: SYSLOG_IDENTIFIER=gallra-a only (native and stdout), and journalctl -t gallra-a has shop_a's run" \
    names_itself a b
expect "... gallra-b and shop_b's run for gallra@b" names_itself b a
stopped_alone() {
    in_ns systemctl stop gallra@a.service \
        && [ "$(instance a ActiveState) $(instance a Result)" = "inactive success" ] \
        && in_ns test ! -e /run/gallra/a && in_ns test -d /var/lib/gallra/a
}
expect "systemctl stop gallra@a: it stops cleanly (inactive, success), its runtime directory goes, its state stays" stopped_alone
others_run_on() {
    [ "$(instance b ActiveState) $(instance b MainPID)" = "active $pid_b" ] \
        && [ "$(in_ns systemctl is-active gallra.service)" = active ] && in_ns test -d /run/gallra/b
}
expect "... gallra@b runs on, the same process, and so does gallra.service" others_run_on
in_ns mv /etc/gallra/a.audit-key /etc/gallra/a.audit-key.away
if in_ns systemctl start gallra@a.service 2>/dev/null; then
    not_ok "without /etc/gallra/a.audit-key gallra@a does not start"
else
    expect "without /etc/gallra/a.audit-key gallra@a does not start (243/CREDENTIALS), though audit-key and b.audit-key exist" \
        sh -c "scripts/systemd-harness.sh exec $harness_pid journalctl --no-pager -u gallra@a.service | grep -q 'status=243/CREDENTIALS'"
fi

if [ "$failures" -gt 0 ]; then
    echo "units-test.sh: $failures check(s) failed" >&2
    exit 1
fi
echo "units-test.sh: all checks passed" >&2
