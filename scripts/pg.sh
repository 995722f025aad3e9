#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests, demos and benchmarks.
#   scripts/pg.sh start DIR   initdb + start in DIR (owned by user postgres), print its conninfo
#   scripts/pg.sh replica DIR PRIMARY_DIR
#                             a streaming standby of the cluster in PRIMARY_DIR (pg_basebackup -R), started
#                             in DIR once it streams; print its conninfo. Its application_name on the
#                             primary (pg_stat_replication) is its cluster_name, gallra_test_replica.
#   scripts/pg.sh restart DIR restart it (after ALTER SYSTEM of a setting that needs a restart)
#   scripts/pg.sh stop DIR    stop it and remove DIR
# It listens on a unix socket in DIR and on 127.0.0.1 at a free port; local connections are
# trusted (the cluster lives for one run and only on loopback). `password_user` has a password
# and must use it over TCP, so
# the password paths of libpq can be tested.
set -euo pipefail

cmd=${1:?usage: pg.sh start|replica|restart|stop DIR}
dir=${2:?usage: pg.sh start|replica|restart|stop DIR}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bindir" ] || { echo "pg.sh: no PostgreSQL server found (apt-get install postgresql)" >&2; exit 69; }

as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

case "$cmd" in
start)
    mkdir -p "$dir"
    [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$dir"
    chmod 0755 "$dir"
    as_postgres "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 70; }
    # password_user must authenticate over TCP, so that libpq's password paths are exercised.
    { echo "host all password_user 127.0.0.1/32 scram-sha-256"; cat "$dir/data/pg_hba.conf"; } >"$dir/pg_hba.new"
    mv "$dir/pg_hba.new" "$dir/data/pg_hba.conf"
    [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$dir/data/pg_hba.conf"
    port=$(free_port)
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = on
max_connections = 200
shared_buffers = 256MB
log_min_messages = warning
CONF
    as_postgres "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { cat "$dir/server.log" >&2; exit 70; }
    as_postgres "$bindir/psql" -h "$dir" -p "$port" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE password_user LOGIN PASSWORD 'secret-pw'" >/dev/null
    echo "$port" >"$dir/port"
    echo "host=$dir port=$port user=postgres dbname=postgres"
    ;;
replica)
    primary=${3:?usage: pg.sh replica DIR PRIMARY_DIR}
    primary_port=$(cat "$primary/port")
    mkdir -p "$dir"
    [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$dir"
    chmod 0755 "$dir"
    # initdb's pg_hba.conf trusts local replication connections; max_wal_senders is 10 by default.
    as_postgres "$bindir/pg_basebackup" -h "$primary" -p "$primary_port" -U postgres -D "$dir/data" \
        -R -X stream -c fast >"$dir/basebackup.log" 2>&1 \
        || { cat "$dir/basebackup.log" >&2; exit 70; }
    port=$(free_port)
    # Later lines win over the primary's copied settings. wal_receiver_status_interval = 1s: the primary learns
    # of replayed WAL within a second (the default 10 s would hold a throttled run back that long).
    cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
unix_socket_directories = '$dir'
cluster_name = 'gallra_test_replica'
shared_buffers = 32MB
hot_standby = on
wal_receiver_status_interval = 1s
CONF
    as_postgres "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { cat "$dir/server.log" >&2; exit 70; }
    for _ in $(seq 1 100); do
        streaming=$(as_postgres "$bindir/psql" -h "$primary" -p "$primary_port" -U postgres -d postgres -qAtX \
            -c "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'gallra_test_replica' AND state = 'streaming'")
        [ "$streaming" = 1 ] && break
        sleep 0.1
    done
    [ "$streaming" = 1 ] || { echo "pg.sh: the standby in $dir does not stream" >&2; cat "$dir/server.log" >&2; exit 70; }
    echo "$port" >"$dir/port"
    echo "host=$dir port=$port user=postgres dbname=postgres"
    ;;
restart)
    as_postgres "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 restart >/dev/null \
        || { cat "$dir/server.log" >&2; exit 70; }
    ;;
stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_postgres "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: pg.sh start|replica|restart|stop DIR" >&2
    exit 64
    ;;
esac
