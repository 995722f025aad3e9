#!/usr/bin/env bash
# `make test`: installs what is missing, starts a throwaway PostgreSQL cluster with a streaming standby
# and a private systemd-journald, runs the whole test suite against them, and stops them even when tests fail.
# Extra arguments go to `swift test` (e.g. `scripts/test.sh --filter Postgres`).
# The terminal gets the test results and one summary line; the whole output of `swift test` and the product's
# own log lines (each marked with its test) go to .build/test-logs/, and a failing test's log lines are printed
# after the results.
# Tests run one at a time: several assert on timing (a statement cancelled within 1 s, a
# connection given up at connect_timeout), which a 2-core machine running 140 tests at once
# cannot honour. GALLRA_TEST_PARALLEL=1 runs them in parallel for a quicker local loop.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/deps.sh

work=$(mktemp -d /tmp/gallra-test.XXXXXX)
chmod 0755 "$work"
journald_pid=""
cleanup() {
    status=$?
    [ -z "$journald_pid" ] || scripts/journald.sh stop "$journald_pid" || true
    scripts/pg.sh stop "$work/replica" || true
    scripts/pg.sh stop "$work/pg" || true
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT INT TERM

export GALLRA_TEST_DATABASE
GALLRA_TEST_DATABASE=$(scripts/pg.sh start "$work/pg")
echo "test server: $GALLRA_TEST_DATABASE" >&2
# The replica-lag throttle's tests pause and resume this standby's replay.
export GALLRA_TEST_REPLICA
GALLRA_TEST_REPLICA=$(scripts/pg.sh replica "$work/replica" "$work/pg")
echo "test replica: $GALLRA_TEST_REPLICA" >&2
journald_pid=$(scripts/journald.sh start)
echo "test journald: pid $journald_pid" >&2

# Build outside the namespace (same result, clearer output), then run the tests inside it so
# that sd_journal_send and journalctl in the tests reach the private journald.
swift build --build-tests
# The shipped units: offline checks, `make install`, and the hardened sandbox under a real systemd.
Tests/systemd/units-test.sh
# The Debian package of the release binary: installed, upgraded, removed and purged in a Debian 12 chroot.
scripts/release.sh
Tests/deb/package-test.sh

export GALLRA_TEST_JOURNALD=1
parallel="--no-parallel"
[ "${GALLRA_TEST_PARALLEL:-0}" = 1 ] && parallel="--parallel"
export GALLRA_SOURCE_ROOT="$root"
logs="$root/.build/test-logs"
mkdir -p "$logs"
: >"$logs/product.log"
export GALLRA_TEST_LOG="$logs/product.log"
started=$SECONDS
# Left out of the terminal: each test's start line, and XCTest's empty run ("Executed 0 tests") before
# Swift Testing's results. The status is swift test's.
set +e
nsenter --mount="/proc/$journald_pid/ns/mnt" -- /usr/bin/env --chdir="$root" PATH="$PATH" \
    "$(command -v swift)" test --skip-build $parallel "$@" 2>&1 | tee "$logs/swift-test.log" \
    | grep --line-buffered -vE "^(◇ |Test Suite '|[[:space:]]+Executed 0 tests|\[0/1\] Planning build)"
status=${PIPESTATUS[0]}
set -e
# The product's log lines of each failing test.
{ grep -oE "^✘ Test [^ ]+\)" "$logs/swift-test.log" || true; } | sed 's/^✘ Test //' | sort -u | while read -r test; do
    lines=$({ grep -F "[$test] " "$logs/product.log" || true; } | tail -n 200)
    [ -z "$lines" ] || printf '\nthe product logged during %s (last 200 lines):\n%s\n' "$test" "$lines"
done
summary=$({ grep -E "^(✔|✘) Test run with" "$logs/swift-test.log" || true; } | tail -n 1 | sed 's/^[✔✘] //; s/\.$//')
[ -n "$summary" ] || summary="no test results (see $logs/swift-test.log)"
printf '\n%s: %s; %d s in all; logs in %s\n' "$([ "$status" -eq 0 ] && echo PASSED || echo FAILED)" "$summary" \
    "$((SECONDS - started))" "$logs"
exit "$status"
