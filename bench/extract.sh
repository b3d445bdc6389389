#!/usr/bin/env bash
# bench/extract.sh BUILD_DIR: article extraction on one core
# (docs/benchmarks.md, "extract").
#
# bench_extract reads the pages of tests/data/pages and extracts them in
# passes for NA_BENCH_EXTRACT_SECONDS (default 3) per case on one core
# (taskset -c 0 when available): "fixtures" as they are, and
# "fixtures+300KB" with the inline script, CSS, navigation and teaser
# cards of a real site around each story. pages_per_s and MB_per_s JSON
# lines on stdout.
set -euo pipefail
build=${1:?usage: bench/extract.sh BUILD_DIR}
secs=${NA_BENCH_EXTRACT_SECONDS:-3}
root=$(cd "$(dirname "$0")/.." && pwd -P)
prog="$build/bench_extract"
if [ ! -x "$prog" ]; then
    echo "bench/extract.sh: $prog not built (cmake -DNA_BUILD_BENCH=ON)" >&2
    exit 1
fi
pin=()
if command -v taskset >/dev/null; then
    pin=(taskset -c 0)
fi
"${pin[@]}" "$prog" "$root/tests/data/pages" "$secs"
