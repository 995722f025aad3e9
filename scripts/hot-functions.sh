#!/usr/bin/env bash
# `make hot-functions`: writes scripts/hot-functions.txt, the functions of the release binary that a service's
# start and a live run execute, which scripts/release.sh gives the linker as its symbol order.
#
#   scripts/hot-functions.sh [GALLRA_BINARY]      (default .build/release/gallra, built by scripts/release.sh)
#
# Why: the kernel maps a binary's code into a process in windows of 64 kB around each page it faults in
# (fault-around), and the resident set counts every page so mapped. The code a run executes is about 2 MB of the
# binary's 25 MB, but spread over all of it, it kept some 14 MB resident; placed first by the symbol order, about
# 8 MB (the Swift runtime's and Foundation's objects come without function sections and move as a whole). An
# order that is out of date costs memory, never correctness: a function missing from it is placed after the
# listed ones, a listed name that no longer exists is skipped. Run this again after changes that move much of
# what a run executes (new dependencies, a new code path of the service or of a run).
#
# How: on a throwaway PostgreSQL with the demo shop (FOOTPRINT_CUSTOMERS customers, default 2000), runs under
# valgrind's callgrind `gallra version`, `migrate`, `policy apply`, the service (`gallra run`) until it is ready
# and idle, and a live `run --once`, then lists every function of the gallra binary any of them executed, sorted.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

customers=${FOOTPRINT_CUSTOMERS:-2000}
as_of='2026-11-29 00:00:00+00'
as_of_iso='2026-11-29T00:00:00Z'
out=scripts/hot-functions.txt

bench=hot-functions.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh

for tool in valgrind objcopy psql; do
    command -v "$tool" >/dev/null || {
        echo "$bench: $tool is missing (Debian: valgrind, binutils, postgresql)" >&2
        exit 69
    }
done

bench_binary "$@"

bench_work hot

# valgrind cannot read the release binary's DWARF; its symbol table names the functions.
objcopy --strip-debug "$gallra" "$work/gallra"
callgrind=(valgrind --tool=callgrind --dump-instr=no --demangle=no)
profiled() { # NAME ARGS...: runs the binary under callgrind, its profile in $work/NAME.callgrind
    local name=$1
    shift
    "${callgrind[@]}" --callgrind-out-file="$work/$name.callgrind" "$work/gallra" "$@"
}

log "starting a throwaway PostgreSQL, loading the demo shop ($customers customers)"
bench_demo_shop "$customers" "$as_of"
(umask 077; head -c 48 /dev/urandom | base64 >"$work/audit-key")
export GALLRA_AUDIT_KEY_FILE="$work/audit-key"

log "profiling version, migrate, policy apply"
quiet profiled version version
quiet profiled migrate migrate
quiet profiled apply policy apply config/policies

log "profiling the service until it is ready and idle"
# Not through `profiled`: the signal below must reach valgrind, not a subshell.
"${callgrind[@]}" --callgrind-out-file="$work/service.callgrind" "$work/gallra" run --log-format text \
    </dev/null >"$work/service.log" 2>&1 &
service_pid=$!
for _ in $(seq 1 1200); do
    grep -q "policies scheduled" "$work/service.log" && break
    kill -0 "$service_pid" 2>/dev/null || break
    sleep 0.1
done
grep -q "policies scheduled" "$work/service.log" || {
    cat "$work/service.log" >&2
    echo "$bench: the service was not ready within 120 s" >&2
    exit 70
}
sleep 3
# It holds the database's runner lock, which the live run below needs.
kill -TERM "$service_pid"
wait "$service_pid" || true
service_pid=""

log "profiling a live run --once"
quiet profiled run run --once --as-of "$as_of_iso" --format json
quiet profiled run-text run --once --as-of "$as_of_iso"

# A callgrind profile names each object (ob=) and function (fn=, cfn= for a call's target) once, then refers
# to it by number; a function's own cost follows its fn= line, under the current ob=.
python3 - "$work"/*.callgrind >"$work/hot-functions.txt" <<'EOF'
import re, sys
names = set()
for path in sys.argv[1:]:
    objects, functions, current = {}, {}, None
    for line in open(path, errors="replace"):
        m = re.match(r"^(c?)(ob|fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if not m:
            continue
        call, kind, number, name = m.groups()
        table = objects if kind == "ob" else functions
        if name:
            table[number] = name
        if call:
            continue
        if kind == "ob":
            current = objects.get(number, "")
        elif current.endswith("/gallra"):
            # callgrind marks recursion and cycles with 'N; hex addresses are code without a symbol.
            name = re.sub(r"'\d+$", "", functions.get(number, ""))
            if name and not name.startswith("0x"):
                names.add(name)
for name in sorted(names):
    print(name)
EOF
count=$(wc -l <"$work/hot-functions.txt")
[ "$count" -gt 1000 ] || {
    echo "$bench: only $count functions found in the profiles; $out left as it was" >&2
    exit 70
}
mv "$work/hot-functions.txt" "$out"
log "$out: $count functions"
