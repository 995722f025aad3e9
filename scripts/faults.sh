#!/usr/bin/env bash
# `make faults` / `make faults-quick`: the fault campaign (docs/reliability.md).
# Builds gallra, starts a throwaway PostgreSQL cluster, loads the demo shop into a template database and runs
# faults against `gallra run --once` on copies of it, each checked by an SQL oracle (scripts/faults.py).
# Prints a table (fault, trials, violations, exit codes, recovery time) and exits 1 on any violation.
#
# Environment:
#   FAULTS_QUICK=1      the small version CI runs: 5,000 customers, one or two trials of each fault
#   FAULTS_CUSTOMERS    customers of the demo shop (default 20000; 5000 with FAULTS_QUICK=1)
#   FAULTS_TRIALS       trials of kill -9; kill -9 with parallel: 2 gets half as many, every other fault a
#                       quarter, each at least one (default 20; 2 with FAULTS_QUICK=1)
#   FAULTS_SEED         the seed of the random offsets and victims (default 1)
#   FAULTS_ONLY         run only the faults whose name contains this text, e.g. "SIGSTOP" or "hostile"
#   FAULTS_BUILD        debug (default) or release
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/deps.sh

quick=${FAULTS_QUICK:-0}
customers=${FAULTS_CUSTOMERS:-$([ "$quick" = 1 ] && echo 5000 || echo 20000)}
trials=${FAULTS_TRIALS:-$([ "$quick" = 1 ] && echo 2 || echo 20)}
build=${FAULTS_BUILD:-debug}
[[ "$customers" =~ ^[1-9][0-9]*$ && "$trials" =~ ^[1-9][0-9]*$ ]] || {
    echo "faults: FAULTS_CUSTOMERS=$customers and FAULTS_TRIALS=$trials must be whole numbers from 1, e.g. 20000 and 20" >&2
    exit 64
}
case $build in
debug | release) ;;
*) echo "faults: FAULTS_BUILD=$build must be debug or release" >&2; exit 64 ;;
esac

swift build -c "$build" --product gallra

work=$(mktemp -d /tmp/gallra-faults.XXXXXX)
chmod 0755 "$work"
# A copy: a build while the campaign runs must not replace the binary under it.
gallra="$work/gallra"
cp "$(swift build -c "$build" --show-bin-path)/gallra" "$gallra"
cleanup() {
    status=$?
    scripts/pg.sh stop "$work/pg" || true
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT INT TERM
server=$(scripts/pg.sh start "$work/pg")
echo "faults: server $server, $customers customers, $trials trials of kill -9, gallra $build" >&2
python3 scripts/faults.py --gallra "$gallra" --server "$server" --pg-dir "$work/pg" --work "$work" --root "$root" \
    --customers "$customers" --trials "$trials" --seed "${FAULTS_SEED:-1}" --only "${FAULTS_ONLY:-}"
