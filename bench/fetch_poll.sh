#!/usr/bin/env bash
# part-of: fetch
# bench/fetch_poll.sh BUILD_DIR: feeds polled per minute, the polling half of
# `bench/run fetch` (docs/benchmarks.md, "fetch: polling").
#
# bench_feedserver (a one-thread epoll HTTP/1.1 server, keep-alive) serves
# NA_BENCH_POLL_FEEDS (default 10000) small RSS feeds on 127.0.0.1, each with
# ETag "v1" (304 to a matching If-None-Match). newsalert-producer --dry-run
# (fetch, conditional GET, parse, dedup, seen-state; no Kafka) polls them:
#
#   case "interval=1m": every feed at a 1 minute interval for
#     NA_BENCH_POLL_SECONDS (default 65) s: the goal load (10,000 feeds a
#     minute), with the CPU it costs;
#   case "interval=1s cold" / "interval=1s warm": the same feeds due every
#     second, 10 s from an empty state, then 20 s from that state (mostly
#     304s): the most the producer polls, and so its capacity per core-minute.
#
# The producer runs pinned to one core (taskset -c 0 when available), the
# server on another. CPU time is the producer's user+sys (getrusage of the
# child). JSON lines on stdout: polls_per_min, cpu_s_per_wall_min,
# polls_per_cpu_min.
set -euo pipefail
build=${1:?usage: bench/fetch_poll.sh BUILD_DIR}
feeds=${NA_BENCH_POLL_FEEDS:-10000}
secs=${NA_BENCH_POLL_SECONDS:-65}
for prog in bench_feedserver newsalert-producer; do
    if [ ! -x "$build/$prog" ]; then
        echo "bench/fetch_poll.sh: $build/$prog not built (cmake -DNA_BUILD_BENCH=ON)" >&2
        exit 1
    fi
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/na-bench-poll.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

python3 - "$build" "$tmp" "$feeds" "$secs" <<'EOF'
import json, os, re, resource, shutil, signal, subprocess, sys, time

build, tmp, feeds, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
pin_srv = ["taskset", "-c", "1"] if shutil.which("taskset") and os.cpu_count() > 1 else []

srv = subprocess.Popen(pin_srv + [os.path.join(build, "bench_feedserver")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
port = int(srv.stdout.readline())


def run(case, interval, seconds, state_name=None):
    state = os.path.join(tmp, (state_name or case).replace("=", "-").replace(" ", "-"))
    os.makedirs(state, exist_ok=True)
    sources = os.path.join(state, "sources.json")
    with open(sources, "w") as f:
        json.dump({"sources": [{"id": "f%05d" % i, "interval": interval,
                                "url": "http://127.0.0.1:%d/f/%05d.xml" % (port, i)}
                               for i in range(feeds)]}, f)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    argv = pin + [os.path.join(build, "newsalert-producer"), "--dry-run",
                  "--sources", sources, "--state-dir", state,
                  "--fetch-concurrency", "64", "--fetch-per-host", "64",
                  "--log-level", "info"]
    log = os.path.join(state, "producer.log")  # a file: a full pipe would stall it
    t0 = time.monotonic()
    with open(log, "wb") as logf:
        p = subprocess.Popen(argv, stderr=logf)
        time.sleep(seconds)
        p.send_signal(signal.SIGTERM)
        p.wait(60)
    with open(log, "rb") as f:
        err = f.read().decode("utf-8", "replace")
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    m = re.search(r"event=summary (.*)", err)
    if not m:
        sys.exit("bench/fetch_poll.sh: no summary from the producer:\n" + err[-2000:])
    s = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}
    print("bench/fetch_poll.sh: %s: %s wall=%.1fs cpu=%.2fs" % (case, m.group(1), wall, cpu),
          file=sys.stderr)
    polls = s["fetches"]
    for metric, value, unit in (
            ("polls_per_min", polls / wall * 60, "1/min"),
            ("not_modified_share", s["not_modified"] / max(polls, 1), "1"),
            ("fetch_errors", s["fetch_errors"], "1"),
            ("cpu_s_per_wall_min", cpu / wall * 60, "s/min"),
            ("polls_per_cpu_min", polls / cpu * 60 if cpu else 0, "1/min")):
        print(json.dumps({"bench": "fetch", "case": "poll feeds=%d %s" % (feeds, case),
                          "metric": metric, "value": round(value, 3), "unit": unit}))
    sys.stdout.flush()


try:
    run("interval=1m", "1m", secs)
    # Capacity: every feed due every second. The first run fetches every feed
    # (200, parse, new article, state); the second starts from that state, so
    # nearly every poll is a conditional GET answered 304.
    run("interval=1s cold", "1s", 10, "fast")
    run("interval=1s warm", "1s", 20, "fast")
finally:
    srv.send_signal(signal.SIGTERM)
    print(srv.communicate(timeout=10)[1].decode().strip(), file=sys.stderr)
EOF
