#!/usr/bin/env bash
# Builds the Debian package, .build/deb/gallra_VERSION_ARCH.deb, as `make deb` does, and checks it with lintian.
#
#   scripts/deb.sh            the release binary (.build/release/gallra, built by `make deb` first)
#   GALLRA_BINARY=PATH        another binary built as scripts/release.sh builds it
#   DEB_VERSION=0.1.0-2       the package's version; default: the binary's version, revision -1
#   DEB_MAINTAINER='N <a@b>'  the Maintainer: field and that of a changelog entry it adds
#   DEB_QUICK=1               gzip instead of xz (7 s of CPU instead of 40) and no lintian: for rebuilds of a
#                             package checked already, as the package test's upgrade
#
# A binary package built with dpkg-deb, not a source package built with dpkg-buildpackage: the Swift toolchain
# that builds gallra is not a Debian package, so no Build-Depends: could name it. The tree is the one
# `make install PREFIX=/usr` makes, so the package and a `make install` lay out the same files; this script
# adds what Debian asks of a package: the binary stripped, the manual page (help2man over `gallra --help`), the
# copyright and changelog, the examples, Depends: from dpkg-shlibdeps, md5sums, and the maintainer scripts of
# packaging/deb/, which are debhelper's own blocks written out.
# The binary links the Swift runtime statically (scripts/release.sh), so Depends: names only Debian's libraries.
# Prints the package's path on stdout; lintian's findings go to stderr, and an error fails the build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

binary=${GALLRA_BINARY:-.build/release/gallra}
[ -x "$binary" ] || { echo "deb.sh: $binary missing: make release (or make deb)" >&2; exit 69; }
for tool in dpkg-deb dpkg-shlibdeps help2man lintian strip; do
    command -v "$tool" >/dev/null || { echo "deb.sh: $tool missing: scripts/deps.sh installs it" >&2; exit 69; }
done
if ldd "$binary" | grep -q libswiftCore; then
    echo "deb.sh: $binary links the Swift runtime dynamically; build it with scripts/release.sh" >&2
    exit 65
fi

upstream=$("$binary" version | sed -n 's/^gallra \([0-9][0-9A-Za-z.+~]*\)$/\1/p')
[ -n "$upstream" ] || { echo "deb.sh: cannot read the version from \`$binary version\`" >&2; exit 70; }
version=${DEB_VERSION:-$upstream-1}
arch=$(dpkg --print-architecture)
maintainer=${DEB_MAINTAINER:-$(sed -n 's/^Maintainer: //p' packaging/deb/control)}

out=.build/deb
work=$(mktemp -d /tmp/gallra-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
# dpkg-shlibdeps wants the package's tree at debian/PACKAGE under a directory with debian/control.
stage=$work/debian/gallra
mkdir -p "$stage"
umask 022

# The files of `make install`, for /usr.
make --no-print-directory -s install DESTDIR="$stage" PREFIX=/usr GALLRA_BINARY="$binary" >/dev/null
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/gallra"
doc=$stage/usr/share/doc/gallra
install -d -m 0755 "$doc/examples/policies" "$stage/usr/share/man/man1"
# The catalog points at the README where the package puts it.
sed -i 's|file:///usr/local/share/doc/gallra/|file:///usr/share/doc/gallra/|' "$stage/usr/lib/systemd/catalog/gallra.catalog"
install -m 0644 README.md "$doc/README.md"
install -m 0644 config/policies/*.yaml "$doc/examples/policies/"
install -m 0644 packaging/deb/copyright "$doc/copyright"
install -d -m 0755 "$stage/usr/share/lintian/overrides"
install -m 0644 packaging/deb/lintian-overrides "$stage/usr/share/lintian/overrides/gallra"

# The changelog: packaging/deb/changelog, with an entry for VERSION on top when it has none.
{
    if [ "$(sed -n '1s/^gallra (\([^)]*\)).*/\1/p' packaging/deb/changelog)" != "$version" ]; then
        printf 'gallra (%s) unstable; urgency=medium\n\n  * Built from commit %s.\n\n -- %s  %s\n\n' \
            "$version" "$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" "$maintainer" "$(date -R)"
    fi
    cat packaging/deb/changelog
} | gzip -9n >"$doc/changelog.Debian.gz"

# The manual page: `gallra --help`, with where the rest is documented.
cat >"$work/man.include" <<'EOF'
[SEE ALSO]
.BR "gallra help " \fICOMMAND\fR
for each command's options;
.I /usr/share/doc/gallra/README.md
for policies, runs, the audit trail and the service;
.BR journalctl (1)
.B -x -u gallra
for the journal's events, explained by gallra's catalog.
.PP
The units:
.I gallra.service
(one database, configured in
.IR /etc/gallra/gallra.yaml ),
.I gallra@NAME.service
(one database per instance,
.IR /etc/gallra/NAME.yaml ),
.IR gallra-plan.service .
EOF
help2man --no-info --no-discard-stderr --section=1 --name="retention and purge daemon for PostgreSQL" \
    --version-string="$upstream" --include="$work/man.include" "$binary" >"$work/gallra.1"
gzip -9n <"$work/gallra.1" >"$stage/usr/share/man/man1/gallra.1.gz"

# Depends: the shared libraries the binary uses (libc6, libpq5, libsystemd0, ...), and systemd-sysusers for postinst,
# as debhelper's dh_installsysusers adds it.
printf 'Source: gallra\n\nPackage: gallra\nArchitecture: any\n' >"$work/debian/control"
shlibs=$(cd "$work" && dpkg-shlibdeps -O -e"debian/gallra/usr/bin/gallra" 2>"$work/shlibdeps.err" | sed -n 's/^shlibs:Depends=//p') \
    || { cat "$work/shlibdeps.err" >&2; exit 70; }
[ -n "$shlibs" ] || { echo "deb.sh: dpkg-shlibdeps found no libraries:" >&2; cat "$work/shlibdeps.err" >&2; exit 70; }
depends="$shlibs, systemd | systemd-standalone-sysusers | systemd-sysusers"

install -d -m 0755 "$stage/DEBIAN"
{
    sed -n '/^Package:/,/^Description:/{/^Description:/!p}' packaging/deb/control | sed "s|^Maintainer: .*|Maintainer: $maintainer|"
    echo "Version: $version"
    echo "Architecture: $arch"
    echo "Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
    echo "Depends: $depends"
    sed -n '/^Description:/,$p' packaging/deb/control
} >"$stage/DEBIAN/control"
install -m 0644 packaging/deb/conffiles "$stage/DEBIAN/conffiles"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$stage/DEBIAN/"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) \
    >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/md5sums"

mkdir -p "$out"
deb=$out/gallra_${version}_${arch}.deb
compression=xz
[ "${DEB_QUICK:-0}" != 1 ] || compression=gzip
dpkg-deb --root-owner-group -Z"$compression" --build "$stage" "$deb" >/dev/null

# lintian: errors fail the build; its warnings are explained in docs/packaging.md. It warns when run as root.
if [ "${DEB_QUICK:-0}" != 1 ]; then
    as_user=()
    [ "$(id -u)" -ne 0 ] || ! runuser -u nobody -- test -r "$deb" 2>/dev/null || as_user=(runuser -u nobody --)
    "${as_user[@]}" env HOME=/tmp lintian --fail-on error "$deb" >&2 || {
        echo "deb.sh: lintian found errors in $deb" >&2
        exit 65
    }
fi
echo "$deb"
