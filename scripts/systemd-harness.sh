#!/usr/bin/env bash
# A real systemd service manager for tests: /lib/systemd/systemd --system as PID 1 of private
# namespaces, with gallra's shipped units installed, so `systemctl start gallra` exercises the
# real sd_notify, watchdog, credentials and sandbox (docs/architecture.md, "Testing").
#
#   scripts/systemd-harness.sh start DIR [DATABASE]
#       Prints the host pid of the namespace's PID 1 once `systemctl is-system-running` answers.
#       DIR (created if missing, made 0755) is bound to /srv/harness inside and receives
#       bin/gallra (a copy of $GALLRA_BINARY, default .build/debug/gallra), the shipped units
#       and the stubs. DATABASE is the connection string as seen from inside (a unix socket dir
#       under DIR is /srv/harness/...; 127.0.0.1 works too: the host network namespace is shared).
#       Inside, /etc/systemd/system holds systemd/gallra.service, gallra-plan.service and
#       gallra@.service unchanged plus drop-ins pointing ExecStart= at /srv/harness/bin/gallra and
#       setting GALLRA_DATABASE (not for gallra@NAME: /etc/gallra/NAME.yaml names its database);
#       /etc/gallra holds config/gallra.yaml and a random audit-key (0600), and
#       db-password when $HARNESS_DB_PASSWORD is set; the gallra user comes from gallra.sysusers.
#   scripts/systemd-harness.sh exec PID COMMAND [ARG...]
#       Runs COMMAND in the namespace (systemctl, journalctl, systemd-run, cat ...), with a clean
#       environment and / as working directory; its exit status is returned.
#   scripts/systemd-harness.sh stop PID
#       SIGKILL to the namespace's PID 1 (SIGTERM would make it re-execute), then removes the
#       cgroup. Nothing outside DIR and that cgroup is ever written: /run, /srv, /tmp are private
#       tmpfs and /etc, /var are overlays whose upper layers are tmpfs.
# The whole namespace is killed after $HARNESS_TIMEOUT seconds (default 900) whatever happens.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cgroup_parent=/sys/fs/cgroup/unified
cgroup_prefix=gallra-harness.

usage() {
    echo "usage: systemd-harness.sh start DIR [DATABASE] | exec PID COMMAND... | stop PID" >&2
    exit 64
}

# The stub units PID 1 needs instead of the host's (whose sysinit.target would run tmpfiles,
# sysusers and sysctl on the real machine), and the journal and bus it talks to.
write_units() {
    local units=$1 t
    mkdir -p "$units"
    for t in sysinit basic sockets timers paths slices local-fs network network-online multi-user shutdown; do
        printf '[Unit]\nDescription=%s (harness stub)\nDefaultDependencies=no\n' "$t" >"$units/$t.target"
    done
    printf '[Unit]\nDescription=System Slice (harness stub)\nDefaultDependencies=no\n' >"$units/system.slice"
    cat >"$units/harness.target" <<'UNIT'
[Unit]
Description=gallra test harness
Wants=systemd-journald.socket systemd-journald.service dbus.socket
After=systemd-journald.socket systemd-journald.service dbus.socket
AllowIsolate=yes
UNIT
    for u in systemd-journald.service systemd-journald.socket dbus.socket dbus.service; do
        cp "/lib/systemd/system/$u" "$units/$u"
    done
    # dev-log would create /dev/log on the devtmpfs shared with the host.
    for u in systemd-journald-dev-log.socket systemd-journald-audit.socket syslog.socket; do
        ln -sf /dev/null "$units/$u"
    done
}

# Runs as PID 1 of the new namespaces, then becomes systemd.
# shellcheck disable=SC2016
inner='
set -eu
dir=/srv/harness
mount --make-rprivate /
mount -t tmpfs -o mode=0755 harness-run /run
mkdir -p /run/.harness
mount -t tmpfs -o mode=0700 harness-overlay /run/.harness
# The test directory may live under /tmp: hold on to it before /tmp is replaced.
mkdir /run/.harness/dir
mount --bind "$1" /run/.harness/dir
mount -t tmpfs -o mode=0755 harness-srv /srv
mount -t tmpfs -o mode=1777 harness-tmp /tmp
mkdir -p "$dir"
mount --move /run/.harness/dir "$dir"
for d in etc var; do
    mkdir -p /run/.harness/$d/upper /run/.harness/$d/work
    mount -t overlay "harness-$d" -o "lowerdir=/$d,upperdir=/run/.harness/$d/upper,workdir=/run/.harness/$d/work" "/$d"
done
# Fresh, empty unit and configuration directories: the host'"'"'s enablement symlinks and any
# real /etc/gallra stay invisible.
mkdir -p /etc/systemd/system /etc/gallra
mount -t tmpfs -o mode=0755 harness-units /etc/systemd/system
mount -t tmpfs -o mode=0755 harness-gallra /etc/gallra
mount -t cgroup2 cgroup2 /sys/fs/cgroup
hostname gallra-harness

# gallra as `make install` and an operator would set it up.
systemd-sysusers "$dir/systemd/gallra.sysusers" >/dev/null
install -m 0644 "$dir/gallra.yaml" /etc/gallra/gallra.yaml
head -c 32 /dev/urandom >/etc/gallra/audit-key
chmod 0600 /etc/gallra/audit-key
if [ -n "${HARNESS_DB_PASSWORD:-}" ]; then
    printf "%s" "$HARNESS_DB_PASSWORD" >/etc/gallra/db-password
    chmod 0600 /etc/gallra/db-password
fi
for u in gallra gallra-plan gallra@; do
    install -m 0644 "$dir/systemd/$u.service" /etc/systemd/system/
    mkdir -p "/etc/systemd/system/$u.service.d"
done
database=$(printf "%s" "$2" | sed "s/%/%%/g")
cat >/etc/systemd/system/gallra.service.d/harness.conf <<UNIT
[Service]
ExecStart=
ExecStart=$dir/bin/gallra run
Environment="GALLRA_DATABASE=$database"
UNIT
cat >/etc/systemd/system/gallra-plan.service.d/harness.conf <<UNIT
[Service]
ExecStart=
ExecStart=$dir/bin/gallra plan
Environment="GALLRA_DATABASE=$database"
UNIT
cat >/etc/systemd/system/gallra@.service.d/harness.conf <<UNIT
[Service]
ExecStart=
ExecStart=$dir/bin/gallra run
UNIT

# systemd skips this in container mode; without it LoadCredential= yields an empty,
# unreadable directory.
mount --make-rshared /
exec env -i container=gallra-harness \
    SYSTEMD_UNIT_PATH=/etc/systemd/system:$dir/units \
    SYSTEMD_GENERATOR_PATH= SYSTEMD_ENVIRONMENT_GENERATOR_PATH= \
    /lib/systemd/systemd --system --unit=harness.target --log-target=journal
'

ns_pid_ok() {
    local pid=$1
    [[ $pid =~ ^[0-9]+$ ]] || { echo "systemd-harness.sh: not a pid: $pid" >&2; exit 64; }
    harness_cgroup "$pid" >/dev/null || { echo "systemd-harness.sh: $pid is not a harness PID 1" >&2; exit 64; }
}

# The harness cgroup (its name) a pid belongs to, from the host's view of /proc/PID/cgroup.
harness_cgroup() {
    local path
    path=$(sed -n 's|^0::/||p' "/proc/$1/cgroup" 2>/dev/null) || return 1
    path=${path%%/*}
    [[ $path == "$cgroup_prefix"* ]] || return 1
    echo "$path"
}

in_ns() {
    local pid=$1
    shift
    nsenter -t "$pid" -m -p -u --wd=/ -- /usr/bin/env -i \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        SYSTEMD_PAGER= SYSTEMD_COLORS=0 TERM=dumb "$@"
}

remove_cgroup() {
    local cg=$1
    [ -d "$cg" ] || return 0
    for _ in $(seq 1 100); do
        # Every process died with PID 1; wait for the kernel to empty the tree, then remove it
        # from the leaves up.
        if [ -z "$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)" ]; then
            find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
            [ -d "$cg" ] || return 0
        fi
        sleep 0.05
    done
    echo "systemd-harness.sh: could not remove $cg" >&2
    return 1
}

case "${1:-}" in
start)
    [ "$(id -u)" -eq 0 ] || { echo "systemd-harness.sh: needs root (namespaces, cgroups)" >&2; exit 77; }
    dir=${2:-}
    [ -n "$dir" ] || usage
    database=${3:-}
    case "$database" in *'"'* | *\\*) echo "systemd-harness.sh: quotes and backslashes in DATABASE are not supported" >&2; exit 64 ;; esac
    binary=${GALLRA_BINARY:-$root/.build/debug/gallra}
    [ -x "$binary" ] || { echo "systemd-harness.sh: $binary missing (swift build)" >&2; exit 69; }
    [ -d "$cgroup_parent" ] || { echo "systemd-harness.sh: no cgroup2 hierarchy at $cgroup_parent" >&2; exit 69; }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    chmod 0755 "$dir"
    mkdir -p "$dir/bin" "$dir/systemd"
    install -m 0755 "$binary" "$dir/bin/gallra"
    install -m 0644 "$root/systemd/gallra.service" "$root/systemd/gallra-plan.service" \
        "$root/systemd/gallra@.service" "$root/systemd/gallra.sysusers" "$dir/systemd/"
    install -m 0644 "$root/config/gallra.yaml" "$dir/gallra.yaml"
    write_units "$dir/units"

    cg=$(mktemp -d "$cgroup_parent/${cgroup_prefix}XXXXXX" 2>/dev/null) \
        || { cg="$cgroup_parent/$cgroup_prefix$$.$RANDOM"; mkdir "$cg"; }
    # The subshell moves itself into the cgroup, then becomes timeout, which forks unshare,
    # which forks the namespace's PID 1. --kill-child: PID 1 dies with unshare.
    (
        echo "$BASHPID" >"$cg/cgroup.procs"
        exec timeout -s KILL "${HARNESS_TIMEOUT:-900}" \
            unshare --pid --fork --kill-child --mount --uts --cgroup --mount-proc --propagation private \
            -- /usr/bin/env HARNESS_DB_PASSWORD="${HARNESS_DB_PASSWORD:-}" /bin/bash -c "$inner" harness "$dir" "$database"
    ) </dev/null >"$dir/harness.log" 2>&1 &
    timeout_pid=$!
    pid=""
    for _ in $(seq 1 200); do
        if [ -z "$pid" ]; then
            unshare_pid=$(pgrep -P "$timeout_pid" 2>/dev/null | head -n 1 || true)
            [ -z "$unshare_pid" ] || pid=$(pgrep -P "$unshare_pid" 2>/dev/null | head -n 1 || true)
        fi
        if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = /usr/lib/systemd/systemd ]; then
            state=$(in_ns "$pid" systemctl is-system-running 2>/dev/null || true)
            case "$state" in
            running | degraded)
                echo "$pid"
                exit 0
                ;;
            esac
        fi
        kill -0 "$timeout_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "systemd-harness.sh: systemd did not come up (state: ${state:-none}); $dir/harness.log:" >&2
    cat "$dir/harness.log" >&2 || true
    [ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || true
    kill -KILL "$timeout_pid" 2>/dev/null || true
    wait "$timeout_pid" 2>/dev/null || true
    remove_cgroup "$cg" || true
    exit 70
    ;;
exec)
    pid=${2:-}
    [ $# -ge 3 ] || usage
    ns_pid_ok "$pid"
    shift 2
    in_ns "$pid" "$@"
    ;;
stop)
    pid=${2:-}
    [ -n "$pid" ] || usage
    [[ $pid =~ ^[0-9]+$ ]] || usage
    name=$(harness_cgroup "$pid") || exit 0 # already gone
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    remove_cgroup "$cgroup_parent/$name"
    ;;
*)
    usage
    ;;
esac
