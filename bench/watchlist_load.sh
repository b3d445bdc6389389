#!/usr/bin/env bash
# bench/watchlist_load.sh BUILD_DIR: loading watchlists whose entries list
# many values in one field (docs/benchmarks.md, "Watchlists").
#
# Writes, in a temporary folder, the lists of the cases below and a rules
# file with one watchlist topic over each, and times `newsalert-consumer
# classify --rules RULES </dev/null` (the rules and the list loaded, no
# article) on one core (taskset -c 0 when available). A case that runs
# longer than NA_BENCH_WATCH_TIMEOUT seconds (default 120) is stopped and
# reported with "stopped": true. JSON lines on stdout: case, load_s.
#
#   csv-20x64k         20 CSV rows, each an addresses field of 64 KiB:
#                      10,900 distinct countries
#   json-16k-addresses one JSON entry of 16,000 addresses, 8,000 distinct
#                      countries (loaded)
#   json-1m-array      one JSON entry of 1,000,000 distinct nationalities
#                      (over the 64 KiB cap: rejected) and one more entry
set -euo pipefail
build=${1:?usage: bench/watchlist_load.sh BUILD_DIR}
limit=${NA_BENCH_WATCH_TIMEOUT:-120}
prog="$build/newsalert-consumer"
if [ ! -x "$prog" ]; then
    echo "bench/watchlist_load.sh: $prog not built" >&2
    exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/na-bench-watch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
pin=()
if command -v taskset >/dev/null; then
    pin=(taskset -c 0)
fi
python3 - "$tmp" <<'EOF'
import json, sys
d = sys.argv[1]
with open(d + "/csv-20x64k.list", "w") as f:
    f.write("name,addresses\n")
    for r in range(20):
        f.write('Party %d,"%s"\n' % (r, ";".join("%05X" % ((i * 7919 + r) % 10900)
                                                 for i in range(10900))))
with open(d + "/json-16k-addresses.list", "w") as f:
    json.dump({"results": [{"name": "Many Addresses Party", "addresses": [
        {"address": "Road %d" % i, "country": "K%04d" % ((i * 7919) % 8000)}
        for i in range(16000)]}]}, f)
with open(d + "/json-1m-array.list", "w") as f:
    json.dump({"results": [
        {"name": "Huge Array Party", "nationalities": ["N%07d" % i for i in range(1000000)]},
        {"name": "After Party", "nationalities": ["RU"]}]}, f)
for case, fmt in (("csv-20x64k", "csl-csv"), ("json-16k-addresses", "csl-json"),
                  ("json-1m-array", "csl-json")):
    with open("%s/%s.rules.json" % (d, case), "w") as f:
        json.dump({"topics": [{"name": "parties", "watchlist": case + ".list",
                               "format": fmt}]}, f)
EOF
for c in csv-20x64k json-16k-addresses json-1m-array; do
    t0=$(date +%s%N)
    rc=0
    timeout "$limit" "${pin[@]}" "$prog" classify --rules "$tmp/$c.rules.json" \
        </dev/null >/dev/null 2>"$tmp/$c.err" || rc=$?
    t1=$(date +%s%N)
    if [ "$rc" = 124 ]; then
        stopped=true
    elif [ "$rc" = 0 ]; then
        stopped=false
    else
        echo "bench/watchlist_load.sh: $c: exit $rc" >&2
        cat "$tmp/$c.err" >&2
        exit 1
    fi
    printf '{"bench":"watchlist_load","case":"%s","load_s":%s,"stopped":%s}\n' "$c" \
        "$(awk -v n=$((t1 - t0)) 'BEGIN { printf "%.3f", n / 1e9 }')" "$stopped"
done
