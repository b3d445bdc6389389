#!/usr/bin/env bash
# bench/seen.sh BUILD_DIR: the producer's seen-state on disk
# (docs/benchmarks.md, "seen-state").
#
# bench_seen builds, in a temporary STATE_DIR, the state of
# NA_BENCH_SEEN_FEEDS (default 10000) feeds as fetches leave it and saves it;
# then, in a process of its own on one core (taskset -c 0 when available),
# measures a full load of the folder and the save of one changed feed among
# them (NA_BENCH_SEEN_SAVES, default 200, saves of different feeds). Two cases: 200 ids per feed
# (a quiet feed after weeks) and 2,300 (a busy one: a full history of
# 2,048 ids and the latest fetch). JSON lines on stdout per case
# "feeds=F ids=N": load_s, load_feeds_per_s, peak_rss_mb, state_mb,
# save_one_ms_mean, save_one_ms_max, feed_bytes.
set -euo pipefail
build=${1:?usage: bench/seen.sh BUILD_DIR}
feeds=${NA_BENCH_SEEN_FEEDS:-10000}
saves=${NA_BENCH_SEEN_SAVES:-200}
prog="$build/bench_seen"
if [ ! -x "$prog" ]; then
    echo "bench/seen.sh: $prog not built (cmake -DNA_BUILD_BENCH=ON)" >&2
    exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/na-bench-seen.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
pin=()
if command -v taskset >/dev/null; then
    pin=(taskset -c 0)
fi
for ids in 200 2300; do
    mkdir "$tmp/ids-$ids"
    t0=$(date +%s%N)
    "$prog" build "$tmp/ids-$ids" "$feeds" "$ids"
    echo "bench/seen.sh: $feeds feeds of $ids ids built and saved in" \
         "$(( ($(date +%s%N) - t0) / 1000000 )) ms, $(du -sm "$tmp/ids-$ids" | cut -f1) MB" >&2
    "${pin[@]}" "$prog" run "$tmp/ids-$ids" "$saves"
    rm -rf "$tmp/ids-$ids"
done
