#!/usr/bin/env bash
# bench/classify.sh BUILD_DIR: rules engine throughput on one core.
#
# For 10, 1,000 and 10,000 generated topics (bench/bench_classify.c says how
# the ~4 KB articles and the topics are made), runs the engine and a naive
# per-rule baseline (each topic's query evaluated by searching the text once
# per term) in the same run, and the engine with every field tokenised (the
# scan before the fast path: --scan tokenise), each in its own process
# pinned to CPU 0 when taskset is there, so each case's peak RSS is its own. JSON lines on stdout
# per case: articles_per_s (per CPU second of the process), mb_per_s,
# matches_per_article, peak_rss_kb. NA_BENCH_CLASSIFY_SECONDS (default 3)
# sets the CPU time per case.
#
# Then the same over news prose ("corpus=news" cases): articles made of the
# texts of data/dev.jsonl, rules over words drawn uniformly from the system
# word list (/usr/share/dict/words, Debian package wamerican; NA_BENCH_WORDS
# to use another), engine and baseline; and the shipped rules
# (examples/rules.json) over that prose, "rules=file(3)".
#
# Then watchlists over the same prose (bench_classify --watchlist N):
# generated restricted-party lists of 1,000, 10,000 and 100,000 entries in
# the Consolidated Screening List's CSV layout, alone ("watchlist=N"), and
# the shipped rules without and with the 100,000-entry list
# ("rules=file(3)", "rules=file(3)+watchlist=100000"); each also prints the
# list's compile time (compile_s) and the memory its load added
# (load_rss_kb).
set -euo pipefail
build=${1:?usage: bench/classify.sh BUILD_DIR}
secs=${NA_BENCH_CLASSIFY_SECONDS:-3}
prog="$build/bench_classify"
if [ ! -x "$prog" ]; then
    echo "bench/classify.sh: $prog not built (cmake -DNA_BUILD_BENCH=ON)" >&2
    exit 1
fi
pin=()
if command -v taskset >/dev/null 2>&1; then
    pin=(taskset -c 0)
fi
for n in 10 1000 10000; do
    "${pin[@]}" "$prog" --rules "$n" --mode engine --seconds "$secs"
    "${pin[@]}" "$prog" --rules "$n" --mode engine --scan tokenise --seconds "$secs"
    "${pin[@]}" "$prog" --rules "$n" --mode naive --seconds "$secs"
done
root=$(cd "$(dirname "$0")/.." && pwd -P)
words=${NA_BENCH_WORDS:-/usr/share/dict/words}
if [ ! -r "$words" ]; then
    echo "bench/classify.sh: no word list at $words: corpus=news cases skipped" >&2
    exit 0
fi
# the shipped rules over the same prose (which is about their topics)
"${pin[@]}" "$prog" --rules-file "$root/examples/rules.json" --seconds "$secs" \
    --news "$root/data/dev.jsonl" --words "$words"
for n in 10 1000 10000; do
    "${pin[@]}" "$prog" --rules "$n" --mode engine --seconds "$secs" \
        --news "$root/data/dev.jsonl" --words "$words"
    "${pin[@]}" "$prog" --rules "$n" --mode naive --seconds "$secs" \
        --news "$root/data/dev.jsonl" --words "$words"
done
# watchlists (the cases issue 16 names)
for n in 1000 10000 100000; do
    "${pin[@]}" "$prog" --watchlist "$n" --seconds "$secs" \
        --news "$root/data/dev.jsonl" --words "$words"
done
"${pin[@]}" "$prog" --rules-file "$root/examples/rules.json" --watchlist 0 \
    --seconds "$secs" --news "$root/data/dev.jsonl" --words "$words"
"${pin[@]}" "$prog" --rules-file "$root/examples/rules.json" --watchlist 100000 \
    --seconds "$secs" --news "$root/data/dev.jsonl" --words "$words"
