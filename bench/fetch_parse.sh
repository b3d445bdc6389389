#!/usr/bin/env bash
# part-of: fetch
# bench/fetch_parse.sh BUILD_DIR: feed parsing throughput, the parse half of
# `bench/run fetch` (docs/benchmarks.md, "fetch: parsing").
#
# bench_parse generates a local corpus in a temporary folder (RSS 2.0 at
# 5, 50 and 500 KB a document, Atom 1.0 and JSON Feed 1.1 at 50 KB; about
# 10-15 MB per case, every document different), then parses each case's
# documents in passes for NA_BENCH_PARSE_SECONDS (default 3) on one core
# (taskset -c 0 when available). Per case "parse <format> <size>KB":
# feeds_per_s, MB_per_s and items_per_s JSON lines on stdout.
set -euo pipefail
build=${1:?usage: bench/fetch_parse.sh BUILD_DIR}
secs=${NA_BENCH_PARSE_SECONDS:-3}
prog="$build/bench_parse"
if [ ! -x "$prog" ]; then
    echo "bench/fetch_parse.sh: $prog not built (cmake -DNA_BUILD_BENCH=ON)" >&2
    exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/na-bench-parse.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$prog" generate "$tmp/corpus"
echo "bench/fetch_parse.sh: corpus $(du -sm "$tmp/corpus" | cut -f1) MB," \
     "$(find "$tmp/corpus" -type f | wc -l) documents" >&2
pin=()
if command -v taskset >/dev/null; then
    pin=(taskset -c 0)
fi
"${pin[@]}" "$prog" run "$tmp/corpus" "$secs"
