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
# Per case, JSON lines on stdout: articles_per_s and mb_per_s (wall clock)
# and articles_per_cpu_s (user + system time of the process; steadier on a
# shared machine); diagnostics on stderr. Article bodies are ordinary prose
# with a topical phrase every ~60 words.
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
# Mostly ordinary prose with a topical phrase every ~60 words, as news reads.
plain = ("the a of and to in on for with said that was were has have after "
         "before officials people city government report year week company "
         "new more than over about would could also its their from by at as "
         "statement local national market data plan talks meeting").split()
phrases = ["export controls on dual-use items", "rare earth magnets",
           "Taiwan Strait", "gallium and germanium", "chip export licences",
           "the football season"]
topics = [
    "China bans exports of dual-use items to Japanese military end users",
    "Taiwan Strait: PLA drills encircle Taiwan",
    "Rare earth prices jump as China tightens rare earth export curbs",
    "Local football club wins the cup",
]
for i in range(n):
    url = "https://bench.test/replay/%d" % i
    body = " ".join(phrases[(i + k) % len(phrases)] if k % 60 == 59
                    else plain[(i * 7 + k * 13) % len(plain)] for k in range(600))
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

# "REAL USER SYS" seconds of a command, its stdout to /dev/null
times_of() {
    local TIMEFORMAT='%R %U %S'
    { time "$@" >/dev/null 2>"$tmp/cmd.err"; } 2>&1
}

# Warm the broker's page cache once so neither case pays for the first read.
kcat -b "$brokers" -C -t "$topic" -o beginning -e -q >/dev/null

replay_t=$(times_of taskset -c 0 "$build/newsalert-consumer" replay --brokers "$brokers" \
    --topic "$topic" --rules "$root/examples/rules.json" --from beginning --to end \
    --dry-run --progress none --log-level warn)
kcat_t=$(times_of taskset -c 0 kcat -b "$brokers" -C -t "$topic" -o beginning -e -q)
echo "bench/replay: replay (real user sys) $replay_t; kcat $kcat_t;" \
     "load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$n" "$bytes" "$replay_t" "$kcat_t" <<'EOF'
import json, sys
n, nbytes = int(sys.argv[1]), int(sys.argv[2])
for case, t in (("newsalert dry-run", sys.argv[3]), ("kcat -C -e", sys.argv[4])):
    real, user, sys_ = (float(x) for x in t.split())
    for metric, value, unit in (
            ("articles_per_s", round(n / real), "1/s"),
            ("mb_per_s", round(nbytes / real / 1e6, 1), "MB/s"),
            ("articles_per_cpu_s", round(n / (user + sys_)), "1/s")):
        print(json.dumps({"bench": "replay", "case": case, "metric": metric,
                          "value": value, "unit": unit}, separators=(",", ":")))
EOF
