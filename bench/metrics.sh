#!/usr/bin/env bash
# bench/metrics.sh BUILD_DIR: the metrics registry at 1,000 and 10,000
# feeds (bench/bench_metrics.c says what is registered and timed): the
# producer's status document (one last-success lookup per feed per second)
# and a /metrics render, pinned to CPU 0 when taskset is there. JSON lines
# on stdout, per case: ms per publish or render (and the render's bytes).
# NA_BENCH_METRICS_SECONDS (default 2) sets the time per case.
set -euo pipefail
build=${1:?usage: bench/metrics.sh BUILD_DIR}
secs=${NA_BENCH_METRICS_SECONDS:-2}
prog="$build/bench_metrics"
if [ ! -x "$prog" ]; then
    echo "bench/metrics.sh: $prog not built (cmake -DNA_BUILD_BENCH=ON)" >&2
    exit 1
fi
pin=()
if command -v taskset >/dev/null 2>&1; then
    pin=(taskset -c 0)
fi
for n in 1000 10000; do
    "${pin[@]}" "$prog" "$n" "$secs"
done
