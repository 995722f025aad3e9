#!/usr/bin/env bash
# Builds the release binary, .build/release/gallra, as `make release`, the demo and the benchmark use it:
# - the Swift runtime linked statically: nothing of a Swift toolchain is needed where it is installed, and a
#   process maps a third less memory than with the shared Swift libraries;
# - a position-dependent executable: no relocations to apply when it starts, so the pages of its tables
#   stay those of the file instead of private copies, a few megabytes of each process's memory;
# - no symbols exported but those the shared libraries need: the dynamic loader searches the executable's
#   symbol table for every symbol it binds, and a table of 12,000 names costs each process a megabyte;
# - each function in a section of its own, and lld placing first the functions that a service's start and a live
#   run execute (scripts/hot-functions.txt, written by scripts/hot-functions.sh): the kernel maps code into a
#   process in 64 kB windows around each page it touches, so the 2 MB a run executes, spread over 25 MB of code,
#   kept 14 MB of it resident; placed first, about 8 MB.
# The compiler's output goes to .build/release-build.log; the terminal gets a line per stage (each module as
# it starts compiling, with the time so far), and the log's errors if the build fails.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .build
log=.build/release-build.log
if [ -x .build/release/gallra ]; then
    echo "release: building gallra (a minute or two when only gallra changed; log: $log)"
else
    echo "release: building gallra and its dependencies (about 4 minutes on 2 cores, swift-crypto the longest;" \
        "log: $log)"
fi
started=$SECONDS
# What the compiler and the linker are given besides the package's own settings.
flags=(-Xswiftc -Xclang-linker -Xswiftc -no-pie -Xlinker --no-export-dynamic
    -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections -Xswiftc -use-ld=lld
    -Xlinker --symbol-ordering-file="$PWD/scripts/hot-functions.txt" -Xlinker --no-warn-symbol-ordering)
# The compiler keeps an object whose code has not changed even when the flags have (function sections): the
# objects of a build made with other flags are compiled again, once.
stamp=.build/release-flags
if [ -d .build/release/ ] && [ "$(cat "$stamp" 2>/dev/null)" != "${flags[*]}" ]; then
    find .build/release/ -path "*.build/*.o" -delete
fi
# The linker reads the symbol order, but the build does not know it as an input: a new order relinks.
if [ scripts/hot-functions.txt -nt .build/release/gallra ]; then rm -f .build/release/gallra; fi
# "[12/1360] Compiling Crypto AES.swift": a line when a Swift module starts compiling, when the C sources
# (BoringSSL, libyaml: "Compiling x509.cc") do, and when gallra is linked.
stages() {
    declare -A seen=()
    while IFS= read -r line; do
        if [[ $line =~ ^\[([0-9]+)/([0-9]+)\]\ (Compiling|Linking)\ ([^ ]+)( [^ ]+)?$ ]]; then
            stage="${BASH_REMATCH[3],,} ${BASH_REMATCH[4]}"
            [ -n "${BASH_REMATCH[5]}" ] || [ "${BASH_REMATCH[3]}" = Linking ] || stage="compiling C sources"
            [ -z "${seen[$stage]:-}" ] || continue
            seen[$stage]=1
            echo "release:   $stage (step ${BASH_REMATCH[1]} of ${BASH_REMATCH[2]}, $((SECONDS - started)) s so far)"
        fi
    done
}
status=0
swift build -c release --static-swift-stdlib --product gallra "${flags[@]}" "$@" 2>&1 | tee "$log" | stages \
    || status=$?
if [ "$status" -ne 0 ]; then
    echo "release: the build failed after $((SECONDS - started)) s; its errors (all of it in $log):" >&2
    grep -E "error:" "$log" | sort -u | head -n 40 >&2 || tail -n 40 "$log" >&2
    exit "$status"
fi
echo "${flags[*]}" >"$stamp"
echo "release: .build/release/gallra built in $((SECONDS - started)) s"
