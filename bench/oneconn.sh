#!/usr/bin/env bash
# One connection at the limit (docs/benchmark.md): gallra at full speed on one connection (batch 1000,
# `pause: 0`) against the single set-based transaction, at BENCH_ONECONN_N customers (default 100000),
# BENCH_ONECONN_ROUNDS times (default 3), each a `bench/run.sh` invocation of those two runs only. Prints each
# round's ratio and round trips per batch and the median ratio; `make bench` runs it after `bench/run.sh`, whose
# own one-connection line is at BENCH_N (1,000,000 by default).
#
#   BENCH_ONECONN_N=100000 BENCH_ONECONN_ROUNDS=3 bench/oneconn.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${BENCH_ONECONN_N:-100000}
ROUNDS=${BENCH_ONECONN_ROUNDS:-3}
[[ "$N" =~ ^[1-9][0-9]*$ && "$ROUNDS" =~ ^[1-9][0-9]?$ ]] || {
    echo "bench/oneconn.sh: BENCH_ONECONN_N=$N and BENCH_ONECONN_ROUNDS=$ROUNDS must be whole numbers from 1, e.g. 100000 and 3" >&2
    exit 64
}
results=$(mktemp /tmp/gallra-oneconn.XXXXXX)
trap 'rm -f "$results" "$results".round' EXIT
for round in $(seq 1 "$ROUNDS"); do
    BENCH_N=$N BENCH_SKIP="naive anonymize plan guard live" BENCH_BATCHES=1000 BENCH_PARALLEL=1 \
        bench/run.sh --json "$results.round" 2>/dev/null
    cat "$results.round" >>"$results"
done
python3 - "$results" "$N" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
gallra = [r for r in runs if r["run"] == "gallra-b1000"]
for i, r in enumerate(gallra, 1):
    print(f"round {i}: {r['rows_per_s_vs_limit']}x the single statement, {r['round_trips_per_batch']} round trips "
          f"per batch ({r['wall_s']} s)")
ratio = statistics.median(r["rows_per_s_vs_limit"] for r in gallra)
trips = statistics.median(r["round_trips_per_batch"] for r in gallra)
print(f"one connection at {sys.argv[2]} customers: {ratio}x the single statement's rows/s (median of {len(gallra)}), "
      f"{trips} round trips per batch")
PY
