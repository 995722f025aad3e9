#!/usr/bin/env bash
# Installs the system packages gallra builds, tests and demos with, when they are missing.
# Debian/Ubuntu only; runs apt-get as root (or through sudo).
set -euo pipefail

# python3-jsonschema: the export tests validate extracts against docs/export.schema.json; chromium: they render
# HTML extracts in a headless browser; time: make bench's peak RSS; zlib1g-dev: ZIPFoundation's deflate (CSV
# extracts); unzip: the CSV export tests test the archives with it; python3-prometheus-client, python3-yaml: the
# metrics tests parse the exposition format and the example alert rules with them. dpkg-dev, help2man, lintian:
# `make deb` (dpkg-shlibdeps, the manual page, the package's check); debootstrap: the package's test installs it
# into a minimal Debian root.
packages=(pkg-config libpq-dev libsystemd-dev postgresql postgresql-contrib systemd util-linux procps tzdata python3-jsonschema chromium
    time zlib1g-dev unzip python3-prometheus-client python3-yaml dpkg-dev help2man lintian debootstrap)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "gallra: installing ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The PostgreSQL package starts a cluster of its own on install; the scripts use their own
# throwaway clusters and never touch it.
if ! command -v swift >/dev/null 2>&1; then
    if [ -x /opt/swift/usr/bin/swift ]; then
        echo "gallra: swift is in /opt/swift/usr/bin; add it to PATH" >&2
    else
        echo "gallra: Swift 6.2 or newer is required (https://www.swift.org/install/)" >&2
    fi
    exit 69
fi
