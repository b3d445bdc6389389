#!/usr/bin/env bash
# bench/replay.sh BUILD_DIR: replay throughput, dry-run, on one core.
#
# Produces NA_BENCH_REPLAY_ARTICLES (default 100000) article/v1 records of
# about 4 KB each to a fresh 6-partition topic, stamped over the last two
# days (published times), then reads the whole range twice, each pinned to
# CPU 0 with taskset:
#   case "newsalert dry-run": newsalert-consumer replay --from beginning
#        --to end --dry-run (decode, classify with examples/rules.json,
#        alert/v1 lines to /dev/null)
#   case "kcat -C -e": kcat reading the same range to /dev/null (the
#        floor: fetch and print only)
# One JSON line per case on stdout (articles_per_s), plus the MB/s of the
# read; diagnostics on stderr.
# needs: broker
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)
build=${1:?usage: bench/replay.sh BUILD_DIR}
brokers=${NA_TEST_BROKERS:?bench/replay.sh needs a broker (NA_TEST_BROKERS)}
n=${NA_BENCH_REPLAY_ARTICLES:-100000}
topic="na.bench.replay.$$.$RANDOM"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/na-bench-replay.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

python3 - "$n" >"$tmp/rows" <<'EOF'
import hashlib, json, sys, time
n = int(sys.argv[1])
now = int(time.time())
words = ("export controls dual-use items rare earth magnets gallium germanium "
         "Taiwan Strait drills semiconductor licences ministry commerce market "
         "prices shipping port weather football election budget").split()
topics = [
    "China bans exports of dual-use items to Japanese military end users",
    "Taiwan Strait: PLA drills encircle Taiwan",
    "Rare earth prices jump as China tightens rare earth export curbs",
    "Local football club wins the cup",
]
for i in range(n):
    url = "https://bench.test/replay/%d" % i
    body = " ".join(words[(i * 7 + k * 13) % len(words)] for k in range(420))
    pub = now - 2 * 86400 + (i * 172800) // n
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(pub))
    art = {"schema": "article/v1", "id": hashlib.sha256(url.encode()).hexdigest(),
           "url": url, "title": "%s (%d)" % (topics[i % 4], i),
           "summary": body[:300], "content": body, "authors": ["Bench"],
           "categories": [], "lang": "en", "published_at": ts, "fetched_at": ts,
           "source": {"id": "bench", "name": "Bench Wire",
                      "feed_url": "https://bench.test/feed"}}
    print("%d\t-1\t%s\t%s" % (pub * 1000, art["id"], json.dumps(art, separators=(",", ":"))))
EOF
bytes=$(wc -c <"$tmp/rows")
echo "bench/replay: producing $n articles ($((bytes / n)) bytes each) to $topic" >&2
"$build/newsalert-produce-at" -b "$brokers" -t "$topic" -p 6 <"$tmp/rows" >&2
rm -f "$tmp/rows"

# seconds.ms of a command, its stdout to /dev/null
elapsed() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null
    t1=$(date +%s.%N)
    python3 -c "print('%.3f' % ($t1 - $t0))"
}

# Warm the broker's page cache once so neither case pays for the first read.
kcat -b "$brokers" -C -t "$topic" -o beginning -e -q >/dev/null

replay_s=$(elapsed taskset -c 0 "$build/newsalert-consumer" replay --brokers "$brokers" \
    --topic "$topic" --rules "$root/examples/rules.json" --from beginning --to end \
    --dry-run --progress none --log-level warn)
kcat_s=$(elapsed taskset -c 0 kcat -b "$brokers" -C -t "$topic" -o beginning -e -q)
echo "bench/replay: replay ${replay_s}s, kcat ${kcat_s}s" >&2

python3 - "$n" "$bytes" "$replay_s" "$kcat_s" <<'EOF'
import json, sys
n, nbytes = int(sys.argv[1]), int(sys.argv[2])
for case, secs in (("newsalert dry-run", float(sys.argv[3])),
                   ("kcat -C -e", float(sys.argv[4]))):
    print(json.dumps({"bench": "replay", "case": case, "metric": "articles_per_s",
                      "value": round(n / secs), "unit": "1/s"},
                     separators=(",", ":")))
    print(json.dumps({"bench": "replay", "case": case, "metric": "mb_per_s",
                      "value": round(nbytes / secs / 1e6, 1), "unit": "MB/s"},
                     separators=(",", ":")))
EOF
