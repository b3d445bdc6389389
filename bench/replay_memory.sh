#!/usr/bin/env bash
# bench/replay_memory.sh BUILD_DIR: replay's resident memory over a long
# backfill: does it stay flat whatever the backlog?
#
# Produces NA_BENCH_REPLAY_MEMORY_ARTICLES (default 1000000) realistic
# articles (bench/gen_articles.py, about 5 KB each: 5 GB for the default) to
# a fresh 6-partition topic, then runs
#   newsalert-consumer replay --from beginning --to end --dry-run
# over all of it (alert lines to /dev/null) and samples the process's
# resident memory (VmRSS) once a second. JSON lines on stdout: per sample
# {"bench":"replay_memory","case":"t=S","metric":"rss_kb",...} and a
# summary: peak, the peak of the first and of the last tenth of the run,
# articles per second (wall). Diagnostics on stderr.
# needs: broker
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)
build=${1:?usage: bench/replay_memory.sh BUILD_DIR}
brokers=${NA_TEST_BROKERS:?bench/replay_memory.sh needs a broker (NA_TEST_BROKERS)}
n=${NA_BENCH_REPLAY_MEMORY_ARTICLES:-1000000}
topic="na.bench.replaymem.$$.$RANDOM"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/na-bench-replaymem.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

echo "bench/replay_memory: producing $n articles to $topic" >&2
python3 "$root/bench/gen_articles.py" "$n" |
    "$build/newsalert-produce-at" -b "$brokers" -t "$topic" -p 6 -r $((30 * 86400000)) >&2

cat >"$tmp/consumer.json" <<JSON
{"brokers": "$brokers", "topic": "$topic", "group_id": "bench-$$",
 "rules": "$root/examples/rules.json", "log_level": "warn"}
JSON

start=$(date +%s.%N)
"$build/newsalert-consumer" replay --config "$tmp/consumer.json" --from beginning \
    --to end --dry-run --progress none >/dev/null 2>"$tmp/err" &
pid=$!
: >"$tmp/samples"
while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    now=$(date +%s.%N)
    [ -n "$rss" ] && awk -v a="$now" -v b="$start" -v r="$rss" 'BEGIN {print a - b, r}' >>"$tmp/samples"
    sleep 1
done
rc=0
wait "$pid" || rc=$?
pid=
end=$(date +%s.%N)
if [ "$rc" != 0 ]; then
    echo "bench/replay_memory: replay failed ($rc)" >&2
    tail -5 "$tmp/err" >&2
    exit 1
fi
echo "bench/replay_memory: load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$n" "$(awk -v a="$end" -v b="$start" 'BEGIN {print a - b}')" "$tmp/samples" <<'PY'
import json, sys
n, wall, path = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
samples = [tuple(float(x) for x in l.split()) for l in open(path) if l.strip()]
def out(case, metric, value, unit):
    print(json.dumps({"bench": "replay_memory", "case": case, "metric": metric,
                      "value": value, "unit": unit}, separators=(",", ":")))
for t, rss in samples:
    out("t=%d" % round(t), "rss_kb", int(rss), "KiB")
tenth = max(1, len(samples) // 10)
out("whole run", "peak_rss_kb", int(max(r for _, r in samples)), "KiB")
out("first tenth", "peak_rss_kb", int(max(r for _, r in samples[:tenth])), "KiB")
out("last tenth", "peak_rss_kb", int(max(r for _, r in samples[-tenth:])), "KiB")
out("whole run", "articles_per_s", round(n / wall), "1/s")
PY
