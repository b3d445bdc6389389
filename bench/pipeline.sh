#!/usr/bin/env bash
# bench/pipeline.sh BUILD_DIR: the consumer side end to end, beside kcat and
# a plain Python consumer, on one topic of the real broker.
#
# Produces NA_BENCH_PIPELINE_ARTICLES (default 20000) realistic articles
# (bench/gen_articles.py: varied events of the same days, one to five
# outlets each, a tenth on the three shipped topics; about 5 KB each) to a
# fresh 6-partition topic, then reads all of it with, in turn:
#   "kcat -C -e"                 read only (the floor)
#   "daemon stories=on"          newsalert-consumer --exit-eof, stories on,
#                                alerts posted to a local receiver that
#                                answers at once
#   "daemon stories=off"         the same with --stories=false
#   "replay dry-run"             newsalert-consumer replay --dry-run
#   "python baseline"            bench/baseline_consumer.py (confluent-kafka,
#                                json, one re per topic), installed into a
#                                virtual environment in BUILD_DIR
# Per case, JSON lines: articles_per_s (wall), articles_per_cpu_s (user +
# system time of the process), peak_rss_kb. Diagnostics on stderr.
# needs: broker
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)
build=${1:?usage: bench/pipeline.sh BUILD_DIR}
brokers=${NA_TEST_BROKERS:?bench/pipeline.sh needs a broker (NA_TEST_BROKERS)}
n=${NA_BENCH_PIPELINE_ARTICLES:-20000}
topic="na.bench.pipeline.$$.$RANDOM"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/na-bench-pipeline.XXXXXX")
recv_pid=
cleanup() {
    [ -n "$recv_pid" ] && kill "$recv_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# The baseline's one dependency, from the Python package index.
venv="$build/bench-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import confluent_kafka' 2>/dev/null; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q confluent-kafka >&2
fi

python3 "$root/bench/gen_articles.py" "$n" >"$tmp/rows"
bytes=$(wc -c <"$tmp/rows")
echo "bench/pipeline: producing $n articles ($((bytes / n)) bytes each) to $topic" >&2
"$build/newsalert-produce-at" -b "$brokers" -t "$topic" -p 6 <"$tmp/rows" >&2
rm -f "$tmp/rows"

# A webhook receiver that answers 200 at once.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$port" <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
# A listen backlog of 5 (the default) drops the SYNs of the daemon's 16
# connections opened at once: the client's retransmission a second later
# made a few alerts wait that long, which measured TCP, not the daemon.
http.server.ThreadingHTTPServer.request_queue_size = 128
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
recv_pid=$!

cfg() { # cfg STORIES: a consumer config of a fresh group and ledger
    cat >"$tmp/consumer.json" <<JSON
{"brokers": "$brokers", "topic": "$topic", "group_id": "bench-$$-$RANDOM",
 "ledger_topic": "$topic.alerts.$RANDOM", "dlq_topic": "$topic.dlq",
 "retry_topic": "$topic.retry", "rules": "$root/examples/rules.json",
 "stories": $1, "log_level": "warn",
 "routes": [{"name": "bench", "url": "http://127.0.0.1:$port/hook", "format": "json",
             "rate_per_s": 100000, "burst": 100000, "digest_threshold": 0,
             "max_in_flight": 16}]}
JSON
}

# "WALL USER SYS MAXRSS_KB" of a command (GNU time), its output to /dev/null
measure() {
    /usr/bin/time -f '%e %U %S %M' -o "$tmp/time" "$@" >/dev/null 2>"$tmp/cmd.err" || {
        echo "bench/pipeline: failed: $*" >&2
        tail -5 "$tmp/cmd.err" >&2
        exit 1
    }
    cat "$tmp/time"
}

kcat -b "$brokers" -C -t "$topic" -o beginning -e -q >/dev/null # warm the page cache
r_kcat=$(measure kcat -b "$brokers" -C -t "$topic" -o beginning -e -q)
cfg true
r_on=$(measure "$build/newsalert-consumer" --config "$tmp/consumer.json" --exit-eof)
cfg false
r_off=$(measure "$build/newsalert-consumer" --config "$tmp/consumer.json" --exit-eof)
cfg true
r_replay=$(measure "$build/newsalert-consumer" replay --config "$tmp/consumer.json" \
    --from beginning --to end --dry-run --progress none)
r_py=$(measure "$venv/bin/python" "$root/bench/baseline_consumer.py" "$brokers" "$topic")
echo "bench/pipeline: load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$n" "kcat -C -e=$r_kcat" "daemon stories=on=$r_on" "daemon stories=off=$r_off" \
    "replay dry-run=$r_replay" "python baseline=$r_py" <<'PY'
import json, sys
n = int(sys.argv[1])
for arg in sys.argv[2:]:
    case, t = arg.rsplit("=", 1)
    wall, user, sys_, rss = (float(x) for x in t.split())
    for metric, value, unit in (("articles_per_s", round(n / wall), "1/s"),
                                ("articles_per_cpu_s", round(n / (user + sys_)), "1/s"),
                                ("peak_rss_kb", int(rss), "KiB")):
        print(json.dumps({"bench": "pipeline", "case": case, "metric": metric,
                          "value": value, "unit": unit}, separators=(",", ":")))
PY
