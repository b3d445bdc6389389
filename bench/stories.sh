#!/usr/bin/env bash
# bench/stories.sh BUILD_DIR: story assignment (na_stories_assign()) on one
# core with about 10,000 stories open (bench/bench_stories.c says how the
# corpus of varied events is generated). Three cases, each in its own
# process pinned to CPU 0 when taskset is there, so each peak RSS is its
# own:
#   in-order   the reports in published order;
#   shuffled   each day's reports in a random order (partitions read in
#              offset order interleave within the reorder allowance);
#   all-alike  every report the same event's words (one story of all).
# JSON lines per case: articles_per_s (per CPU second of the thread doing
# the assignment, reading each article included), assign_per_s (the
# same without the reading, which the pipeline does on its worker
# threads: what bounds the consumer's thread), read_per_s (the reading
# alone, na_story_read()), articles_per_wall_s, open_stories, stories_per_event
# (not for all-alike), bcubed_precision and bcubed_recall (the stories
# against the generated events; not for all-alike), features, peak_rss_kb,
# decisions_digest. NA_BENCH_STORIES_ARTICLES
# (default 50000) sets the articles timed after a warm-up of 30,000.
set -euo pipefail
build=${1:?usage: bench/stories.sh BUILD_DIR}
n=${NA_BENCH_STORIES_ARTICLES:-50000}
prog="$build/bench_stories"
if [ ! -x "$prog" ]; then
    echo "bench/stories.sh: $prog not built (cmake -DNA_BUILD_BENCH=ON)" >&2
    exit 1
fi
pin=()
if command -v taskset >/dev/null 2>&1; then
    pin=(taskset -c 0)
fi
for c in in-order shuffled all-alike; do
    "${pin[@]}" "$prog" --case "$c" --articles "$n"
done
