#!/usr/bin/env bash
# bench/decode.sh BUILD_DIR: article/v1 decoding throughput on one core
# (docs/benchmarks.md, "decode").
#
# Generates NA_BENCH_DECODE_ARTICLES (default 2000) realistic records with
# bench/gen_articles.py (about 5 KB each), then bench_decode decodes them in
# passes for NA_BENCH_DECODE_SECONDS (default 3) of CPU time per decoder, on
# CPU 0 when taskset is there: the single-pass reader, the jansson decoder
# it replaced and, when built with them, json-c and cJSON (bench/run
# installs both). Per case "decoder=NAME": articles_per_s and MB_per_s JSON
# lines on stdout. The run fails if the reader and jansson disagree on any
# record.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)
build=${1:?usage: bench/decode.sh BUILD_DIR}
n=${NA_BENCH_DECODE_ARTICLES:-2000}
secs=${NA_BENCH_DECODE_SECONDS:-3}
prog="$build/bench_decode"
if [ ! -x "$prog" ]; then
    echo "bench/decode.sh: $prog not built (cmake -DNA_BUILD_BENCH=ON)" >&2
    exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/na-bench-decode.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
python3 "$root/bench/gen_articles.py" "$n" | cut -f4 >"$tmp/records"
echo "bench/decode.sh: $n records, $(($(wc -c <"$tmp/records") / n)) bytes each" >&2
pin=()
if command -v taskset >/dev/null; then
    pin=(taskset -c 0)
fi
"${pin[@]}" "$prog" "$tmp/records" "$secs"
