#!/usr/bin/env bash
# A private systemd-journald for tests, in its own mount namespace with fresh tmpfs mounts on
# /run/systemd/journal, /run/log and /var/log/journal: the host's journal is never touched.
#   scripts/journald.sh start   print the pid whose mount namespace holds the journal
#   scripts/journald.sh stop PID
# Run a client in it with: nsenter --mount=/proc/PID/ns/mnt -- /absolute/command ...
set -euo pipefail

case "${1:?usage: journald.sh start|stop PID}" in
start)
    [ "$(id -u)" -eq 0 ] || { echo "journald.sh: needs root (mount namespaces)" >&2; exit 77; }
    journald=/lib/systemd/systemd-journald
    [ -x "$journald" ] || { echo "journald.sh: $journald missing (apt-get install systemd)" >&2; exit 69; }
    ready=$(mktemp)
    # The shell inside mounts the tmpfs, then execs journald so its pid is the namespace's handle.
    unshare --mount --propagation private -- bash -c '
        mount -t tmpfs tmpfs /run/systemd/journal 2>/dev/null || { mkdir -p /run/systemd/journal; mount -t tmpfs tmpfs /run/systemd/journal; }
        mount -t tmpfs tmpfs /run/log
        mkdir -p /var/log/journal && mount -t tmpfs tmpfs /var/log/journal
        echo $$ >"$1"
        exec "$2" </dev/null >/dev/null 2>&1
    ' bash "$ready" "$journald" &
    for _ in $(seq 1 100); do
        pid=$(cat "$ready" 2>/dev/null || true)
        if [ -n "$pid" ] && nsenter --mount="/proc/$pid/ns/mnt" -- test -S /run/systemd/journal/socket 2>/dev/null; then
            rm -f "$ready"
            echo "$pid"
            exit 0
        fi
        sleep 0.1
    done
    echo "journald.sh: systemd-journald did not start" >&2
    exit 70
    ;;
stop)
    pid=${2:?usage: journald.sh stop PID}
    kill -TERM "$pid" 2>/dev/null || exit 0
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    ;;
*)
    echo "usage: journald.sh start|stop PID" >&2
    exit 64
    ;;
esac
