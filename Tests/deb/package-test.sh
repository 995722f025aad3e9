#!/usr/bin/env bash
# The Debian package (scripts/deb.sh, `make deb`) installed into a throwaway Debian 12 root with dpkg, whose
# maintainer scripts run in it: install, upgrade over itself, remove, purge.
#
#   Tests/deb/package-test.sh      (root; packages .build/release/gallra, or $GALLRA_BINARY: build it first)
#
# It builds the package twice, as VERSION-1 and as VERSION-2 (the upgrade), and runs dpkg in a chroot: a
# minimal Debian 12 (debootstrap --variant=minbase from $DEB_TEST_MIRROR, default deb.debian.org) with only the
# first package's Depends: added, kept in .build/deb-test/ and reused while they stay the same (about 3 minutes
# to make, 250 MB). Each run gets that root as the lower layer of an overlay in a private mount namespace:
# whatever the package's scripts do lands in a tmpfs upper layer, so after the purge the upper layer is exactly
# what the package left behind, and the run ends with nothing mounted. No systemd runs in the chroot
# (/run/systemd/system is absent), as in a Debian installer or an image build: the scripts record the units
# with deb-systemd-helper and leave starting, stopping and daemon-reload alone.
# Prints "ok - ..." or "not ok - ..." per check, exits 1 when any check failed. Takes 2.5 to 3.5 minutes with the
# root cached on a shared 2-core machine (building the two packages and lintian are most of it).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
[ "$(id -u)" -eq 0 ] || { echo "package-test.sh: needs root (chroot, mounts)" >&2; exit 1; }
# Everything below runs in a mount namespace of its own: its mounts vanish with it.
if [ -z "${GALLRA_DEB_TEST_NAMESPACE:-}" ]; then
    exec unshare --mount --propagation private env GALLRA_DEB_TEST_NAMESPACE=1 "$root/Tests/deb/package-test.sh" "$@"
fi
binary=${GALLRA_BINARY:-$root/.build/release/gallra}
[ -x "$binary" ] || { echo "package-test.sh: $binary missing: make release" >&2; exit 1; }
export GALLRA_BINARY=$binary
started=$SECONDS

work=$(mktemp -d /tmp/gallra-deb-test.XXXXXX)
cleanup() {
    status=$?
    umount -R "$work/root" 2>/dev/null || true
    umount "$work/layer" 2>/dev/null || true
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

# --- The packages -------------------------------------------------------------------------------
upstream=$("$binary" version | sed -n 's/^gallra \(.*\)$/\1/p')
if deb1=$(DEB_VERSION="$upstream-1" scripts/deb.sh 2>"$work/lintian1"); then
    ok "make deb: $(basename "$deb1"), lintian without errors"
else
    not_ok "make deb: $upstream-1"
    sed 's/^/    /' "$work/lintian1"
    exit 1
fi
deb2=$(DEB_QUICK=1 DEB_VERSION="$upstream-2" scripts/deb.sh 2>"$work/lintian2") || { cat "$work/lintian2"; exit 1; }
field() { dpkg-deb --field "$deb1" "$1"; }
depends=$(field Depends)
expect "Depends: computed, the shared libraries and systemd-sysusers, no Swift runtime ($depends)" \
    sh -c "echo '$depends' | grep -q 'libpq5' && echo '$depends' | grep -q 'libsystemd0' && echo '$depends' | grep -q 'libc6' \
        && echo '$depends' | grep -q 'systemd | systemd-standalone-sysusers | systemd-sysusers' && ! echo '$depends' | grep -qi swift"
listing() { dpkg-deb --contents "$deb1" | awk '{print $1, $6}' | sed 's|\./|/|'; }
expect_file() { # MODE PATH: the package has PATH with that mode
    listing | grep -qx -- "$1 $2" || { echo "no $1 $2 in:"; listing; return 1; }
}
package_files() {
    expect_file -rwxr-xr-x /usr/bin/gallra \
        && expect_file -rw-r--r-- /usr/lib/systemd/system/gallra.service \
        && expect_file -rw-r--r-- /usr/lib/systemd/system/gallra@.service \
        && expect_file -rw-r--r-- /usr/lib/systemd/system/gallra-plan.service \
        && expect_file -rw-r--r-- /usr/lib/sysusers.d/gallra.conf \
        && expect_file -rw-r--r-- /usr/lib/systemd/catalog/gallra.catalog \
        && expect_file -rw-r--r-- /etc/gallra/gallra.yaml \
        && expect_file -rw-r--r-- /usr/share/doc/gallra/copyright \
        && expect_file -rw-r--r-- /usr/share/doc/gallra/changelog.Debian.gz \
        && expect_file -rw-r--r-- /usr/share/doc/gallra/examples/policies/inactive-customers.yaml \
        && expect_file -rw-r--r-- /usr/share/man/man1/gallra.1.gz \
        && [ "$(dpkg-deb --info "$deb1" conffiles)" = /etc/gallra/gallra.yaml ] \
        && cmp <(dpkg-deb --fsys-tarfile "$deb1" | tar -xO ./etc/gallra/gallra.yaml) config/gallra.yaml \
        && grep -qx 'ExecStart=/usr/bin/gallra run' <(dpkg-deb --fsys-tarfile "$deb1" | tar -xO ./usr/lib/systemd/system/gallra@.service)
}
expect "the package: binary, units (ExecStart=/usr/bin/gallra), sysusers, catalog, conffile /etc/gallra/gallra.yaml, docs, man page" \
    package_files

# --- The throwaway Debian 12 root ---------------------------------------------------------------
# Its packages: minbase and the first alternative of each of the package's Depends:.
include=$(echo "$depends" | tr ',' '\n' | sed 's/|.*//; s/(.*//; s/[[:space:]]//g' | grep . | LC_ALL=C sort -u | paste -sd ,)
cache=$root/.build/deb-test/bookworm-minbase+${include//,/+}
mirror=${DEB_TEST_MIRROR:-http://deb.debian.org/debian}
if [ ! -d "$cache" ]; then
    echo "# making a Debian 12 root in $cache (debootstrap from $mirror, about 3 minutes, once)" >&2
    mkdir -p "$root/.build/deb-test"
    rm -rf "$cache.new"
    debootstrap --variant=minbase --include="$include" bookworm "$cache.new" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -n 20 "$work/debootstrap.log" >&2; rm -rf "$cache.new"; exit 1; }
    rm -rf "$cache.new"/var/cache/apt/archives/*.deb
    mv "$cache.new" "$cache"
fi
r=$work/root
mkdir -p "$work/layer" "$r"
mount -t tmpfs -o mode=0755 gallra-deb-test "$work/layer"
mkdir -p "$work/layer/upper" "$work/layer/work"
mount -t overlay gallra-deb-test -o "lowerdir=$cache,upperdir=$work/layer/upper,workdir=$work/layer/work" "$r"
mount -t proc proc "$r/proc"
cp "$deb1" "$deb2" "$r/tmp/"
in_root() { chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
dpkg_in_root() { in_root dpkg "$@" </dev/null; }
status_of() { in_root dpkg-query -W -f='${Status} ${Version}' gallra 2>/dev/null || true; }

expect "the root is a Debian 12 without systemd running" \
    sh -c "grep -q '^VERSION_ID=\"12\"' '$r/etc/os-release' && [ ! -e '$r/run/systemd/system' ] && ! grep -q '^gallra:' '$r/etc/passwd'"

# --- Install --------------------------------------------------------------------------------------
expect "dpkg -i $(basename "$deb1"): installs, its Depends: satisfied by the root" \
    dpkg_in_root -i "/tmp/$(basename "$deb1")"
expect "... installed: $(status_of)" sh -c "[ '$(status_of)' = 'install ok installed $upstream-1' ]"
expect "... gallra runs in a Debian 12 that has only its Depends: (no Swift toolchain): gallra version" \
    sh -c "chroot '$r' /usr/bin/gallra version | grep -qx 'gallra $upstream' && ! chroot '$r' ldd /usr/bin/gallra | grep -q 'not found'"
expect "... the gallra system user, from sysusers.d (no home, no shell)" \
    grep -Eq '^gallra:x:[0-9]+:[0-9]+:gallra retention daemon:/:/usr/sbin/nologin$' "$r/etc/passwd"
expect "... gallra.service recorded by deb-systemd-helper but not enabled: it needs a database and an audit key first" \
    sh -c "[ -e '$r/var/lib/systemd/deb-systemd-helper-enabled/gallra.service.dsh-also' ] \
        && [ ! -e '$r/etc/systemd/system/multi-user.target.wants/gallra.service' ] \
        && [ \"\$(chroot '$r' systemctl is-enabled gallra.service)\" = disabled ]"
expect "... the journal catalog is in journalctl's database (systemd's dpkg trigger)" \
    sh -c "chroot '$r' journalctl --list-catalog 8f7f4f3e7f9c45beafc589f64fabb20c | grep -q 'gallra run'"
expect "... the manual page reads: man gallra" \
    sh -c "zcat '$r/usr/share/man/man1/gallra.1.gz' | grep -q '^\\.TH GALLRA \"1\"' && zcat '$r/usr/share/man/man1/gallra.1.gz' | grep -q 'gallra@NAME.service'"

# --- The operator's doing ---------------------------------------------------------------------
# An edited configuration, an instance's configuration, the audit keys, gallra.service enabled, and state
# a running gallra wrote.
operate() {
    echo "# the operator's edit" >>"$r/etc/gallra/gallra.yaml"
    cp "$r/etc/gallra/gallra.yaml" "$work/edited.yaml"
    sed 's|dbname=shop|dbname=shop2|' config/gallra.yaml >"$r/etc/gallra/shop2.yaml"
    (umask 077 && head -c 32 /dev/urandom >"$r/etc/gallra/audit-key" && head -c 32 /dev/urandom >"$r/etc/gallra/shop2.audit-key")
    in_root systemctl enable gallra.service \
        && in_root install -d -o gallra -g gallra -m 0700 /var/lib/gallra /var/lib/gallra/shop2 \
        && in_root sh -c 'echo head >/var/lib/gallra/shop2/ledger && chown gallra:gallra /var/lib/gallra/shop2/ledger'
}
expect "the operator edits /etc/gallra/gallra.yaml, adds shop2.yaml and the audit keys, enables gallra.service; gallra writes /var/lib/gallra" \
    operate

# --- Upgrade --------------------------------------------------------------------------------------
expect "dpkg -i $(basename "$deb2"): upgrades over $upstream-1, no conffile question (stdin closed)" \
    dpkg_in_root -i "/tmp/$(basename "$deb2")"
expect "... installed: $(status_of)" sh -c "[ '$(status_of)' = 'install ok installed $upstream-2' ]"
expect "... the edited /etc/gallra/gallra.yaml is kept as the operator left it, no .dpkg-new or .dpkg-dist beside it" \
    sh -c "cmp '$work/edited.yaml' '$r/etc/gallra/gallra.yaml' && [ -z \"\$(ls '$r/etc/gallra' | grep dpkg)\" ]"
expect "... gallra.service stays enabled, the state and the keys stay" \
    sh -c "[ \"\$(chroot '$r' systemctl is-enabled gallra.service)\" = enabled ] && [ -f '$r/var/lib/gallra/shop2/ledger' ] \
        && [ -f '$r/etc/gallra/audit-key' ] && [ -f '$r/etc/gallra/shop2.audit-key' ]"
expect "... and the changelog names the new version" \
    sh -c "zcat '$r/usr/share/doc/gallra/changelog.Debian.gz' | head -n 1 | grep -q '^gallra ($upstream-2)'"

# --- Remove ---------------------------------------------------------------------------------------
expect "dpkg -r gallra: removes" dpkg_in_root -r gallra
expect "... the binary and the units are gone; configuration, keys and state stay (config-files)" \
    sh -c "[ ! -e '$r/usr/bin/gallra' ] && [ ! -e '$r/usr/lib/systemd/system/gallra@.service' ] \
        && [ '$(status_of)' = 'deinstall ok config-files $upstream-2' ] \
        && cmp '$work/edited.yaml' '$r/etc/gallra/gallra.yaml' && [ -f '$r/var/lib/gallra/shop2/ledger' ]"
expect "... the catalog is out of journalctl's database" \
    sh -c "! chroot '$r' journalctl --list-catalog 2>/dev/null | grep -q 8f7f4f3e7f9c45beafc589f64fabb20c"

# --- Purge ----------------------------------------------------------------------------------------
expect "dpkg -P gallra: purges" dpkg_in_root -P gallra
expect "... dpkg knows no gallra any more" sh -c "[ -z '$(status_of)' ]"
# What the package left: the overlay's upper layer, less dpkg's own records, the user database (the gallra
# user stays) and journalctl's catalog database. Deleted files of the root would show as whiteouts (type c).
left_behind() {
    (cd "$work/layer/upper" && find . ! -type d -printf '/%P %y\n') | LC_ALL=C sort \
        | grep -Ev '^/(var/lib/dpkg/|var/log/(dpkg|alternatives)\.log |var/cache/debconf/|var/cache/ldconfig/|tmp/)' \
        | grep -Ev '^/etc/((passwd|group|shadow|gshadow)-?|\.pwd\.lock) f$' \
        | grep -Ev '^/var/lib/systemd/catalog/database f$' || true
}
expected_left="/etc/gallra/audit-key f
/etc/gallra/shop2.audit-key f
/etc/gallra/shop2.yaml f"
expect "... nothing left but the operator's files: /etc/gallra/audit-key, shop2.audit-key, shop2.yaml" \
    sh -c '[ "$(cat)" = "$1" ] || { echo "left behind:"; cat "$2"; exit 1; }' - "$expected_left" "$work/left" \
    < <(left_behind | tee "$work/left")
expect "... /var/lib/gallra (state) and deb-systemd-helper's records and links are gone; the gallra user stays, as Debian keeps system users" \
    sh -c "[ ! -e '$r/var/lib/gallra' ] && [ ! -e '$r/etc/systemd/system/multi-user.target.wants/gallra.service' ] \
        && [ -z \"\$(ls '$r/var/lib/systemd/deb-systemd-helper-enabled' | grep gallra)\" ] && grep -q '^gallra:' '$r/etc/passwd'"

echo "# package-test.sh: $((SECONDS - started)) s" >&2
if [ "$failures" -gt 0 ]; then
    echo "package-test.sh: $failures check(s) failed" >&2
    exit 1
fi
echo "package-test.sh: all checks passed" >&2
