#!/usr/bin/env bash
# bench/deliver.sh BUILD_DIR: alert delivery.
#
# 1. Transport: bench_deliver POSTs NA_BENCH_DELIVER_N (default 20000)
#    alert-sized bodies through the deliverer to a receiver in the same
#    process, 16 transfers at once, with keep-alive (the default) and with
#    one connection per request (route "keepalive": false). Metric
#    alerts_per_s.
# 2. Latency: newsalert-consumer on the real broker with one json route to a
#    local receiver; NA_BENCH_DELIVER_LAT (default 200) matching articles
#    produced one every 50 ms (low load) by a long-lived kcat (linger 0);
#    per alert, time from just before the article is written to the
#    producer until the webhook request arrives. Metrics latency_p50_ms and
#    latency_p99_ms (wall clock, same host).
# needs: broker
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)
build=${1:?usage: bench/deliver.sh BUILD_DIR}
n=${NA_BENCH_DELIVER_N:-20000}

"$build/bench_deliver" "$n" 1 16
"$build/bench_deliver" "$((n / 2))" 0 16

brokers=${NA_TEST_BROKERS:?bench/deliver.sh needs a broker (NA_TEST_BROKERS)}
python3 - "$build" "$root" "$brokers" "${NA_BENCH_DELIVER_LAT:-200}" <<'PY'
import hashlib, http.server, json, os, subprocess, sys, tempfile, threading, time
build, root, brokers, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
tag = "%d.%d" % (os.getpid(), int(time.time()))
topic, ledger = "na.bench.deliver.%s" % tag, "na.bench.alerts.%s" % tag
got = {}
lock = threading.Lock()

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        t = time.time()
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with lock:
            got.setdefault(self.headers.get("webhook-id"), t)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
tmp = tempfile.mkdtemp(prefix="na-bench-deliver-")
cfg = os.path.join(tmp, "consumer.json")
with open(cfg, "w") as f:
    json.dump({"brokers": brokers, "topic": topic, "ledger_topic": ledger,
               "group_id": "na-bench-" + tag, "rules": os.path.join(root, "examples/rules.json"),
               "log_level": "warn",
               "routes": [{"name": "bench", "url": "http://127.0.0.1:%d/h" % srv.server_address[1],
                           "format": "json", "topics": ["export_controls"]}]}, f)
subprocess.run(["kcat", "-b", brokers, "-P", "-t", topic], input=b"", check=True)
time.sleep(2)
cons = subprocess.Popen([os.path.join(build, "newsalert-consumer"), "--config", cfg,
                         "-X", "fetch.wait.max.ms=100"], stderr=open(os.path.join(tmp, "c.err"), "w"))
prod = subprocess.Popen(["kcat", "-b", brokers, "-P", "-t", topic, "-K", "\t",
                         "-X", "linger.ms=0"], stdin=subprocess.PIPE)
def alert_id(aid):
    h = hashlib.sha256()
    for p in ("alert/v1", aid, "export_controls"):
        h.update(p.encode() + b"\0")
    return h.hexdigest()
# Warm-up: wait until the consumer has its assignment and delivers.
sent = {}
def produce(i):
    url = "https://wire.example/lat/%s/%d" % (tag, i)
    a = {"schema": "article/v1", "id": hashlib.sha256(url.encode()).hexdigest(), "url": url,
         "title": "Beijing bans exports of dual-use items %d" % i,
         "published_at": "2026-11-25T10:00:00Z", "fetched_at": "2026-11-25T10:00:00Z"}
    line = ("%s\t%s\n" % (a["id"], json.dumps(a))).encode()
    t = time.time()
    prod.stdin.write(line)
    prod.stdin.flush()
    return alert_id(a["id"]), t
wid, _ = produce(-1)
deadline = time.time() + 60
while wid not in got and time.time() < deadline:
    time.sleep(0.1)
for i in range(n):
    k, t = produce(i)
    sent[k] = t
    time.sleep(0.05)
deadline = time.time() + 30
while time.time() < deadline and not all(k in got for k in sent):
    time.sleep(0.1)
prod.stdin.close(); prod.wait(10)
cons.terminate(); cons.wait(30)
lat = sorted((got[k] - t) * 1000 for k, t in sent.items() if k in got)
if len(lat) < n:
    print("bench/deliver.sh: only %d of %d alerts arrived" % (len(lat), n), file=sys.stderr)
    sys.exit(1)
def pct(p):
    return lat[min(len(lat) - 1, int(p / 100.0 * len(lat)))]
for name, v in (("latency_p50_ms", pct(50)), ("latency_p99_ms", pct(99))):
    print(json.dumps({"bench": "deliver", "case": "produce to webhook, 20 articles/s",
                      "metric": name, "value": round(v, 1), "unit": "ms"}))
PY
