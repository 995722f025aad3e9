# Sourced by the bench scripts that measure one gallra binary on a throwaway server (export, erasure, isolate,
# replay, footprint): what each needs before it measures. The script sets `bench` (its name, for messages) and,
# before calling `quiet`, `work` (its working directory).

log() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

# bench_binary [GALLRA_BINARY]: sets `gallra` to the binary named, else .build/release/gallra (built by
# scripts/release.sh when missing), as an absolute path; exits 66 when it is not an executable.
bench_binary() {
    gallra=${1:-.build/release/gallra}
    if [ $# -eq 0 ] && [ ! -x "$gallra" ]; then
        log "building gallra (release)"
        scripts/release.sh 2>&1 | tail -n 1 >&2
    fi
    [ -x "$gallra" ] || {
        echo "$bench: $gallra is not an executable; build one with scripts/release.sh" >&2
        exit 66
    }
    gallra=$(realpath "$gallra")
}

# bench_needs_gnu_time: exits 69 without GNU time, which measures the peak resident set size.
bench_needs_gnu_time() {
    [ -x /usr/bin/time ] || {
        echo "$bench: GNU time (/usr/bin/time) is missing; scripts/deps.sh installs it (package time)" >&2
        exit 69
    }
}

# quiet COMMAND...: runs a set-up step with its output in $work/setup.log, shown only when it fails (exit 70).
quiet() {
    "$@" >>"$work/setup.log" 2>&1 || {
        cat "$work/setup.log" >&2
        echo "$bench: failed: $*" >&2
        exit 70
    }
}
