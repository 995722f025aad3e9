#!/usr/bin/env bash
# Builds the release binary, .build/release/gallra, as `make release`, the demo and the benchmark use it:
# - the Swift runtime linked statically: nothing of a Swift toolchain is needed where it is installed, and a
#   process maps a third less memory than with the shared Swift libraries;
# - a position-dependent executable: no relocations to apply when it starts, so the pages of its tables
#   stay those of the file instead of private copies, a few megabytes of each process's memory;
# - no symbols exported but those the shared libraries need: the dynamic loader searches the executable's
#   symbol table for every symbol it binds, and a table of 12,000 names costs each process a megabyte.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --static-swift-stdlib --product gallra -Xswiftc -Xclang-linker -Xswiftc -no-pie \
    -Xlinker --no-export-dynamic "$@"
