#!/usr/bin/env bash
# bench/deliver.sh BUILD_DIR: alert delivery.
#
# 1. Transport: bench_deliver POSTs NA_BENCH_DELIVER_N (default 20000)
#    alert-sized bodies through the deliverer to a receiver in the same
#    process, 16 transfers at once, with keep-alive (the default) and with
#    one connection per request (route "keepalive": false). Metric
#    alerts_per_s.
# 2. Latency: newsalert-consumer (this build) on the real broker with one
#    json route to a receiver inside bench_deliver; NA_BENCH_DELIVER_LAT
#    (default 200) matching articles produced one every 50 ms (low load)
#    with librdkafka (linger.ms 0); per alert, the time from just before
#    rd_kafka_producev() until the webhook request head arrives (monotonic
#    clock, same host). Metrics latency_p50_ms and latency_p99_ms.
# needs: broker
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)
build=${1:?usage: bench/deliver.sh BUILD_DIR}
n=${NA_BENCH_DELIVER_N:-20000}

"$build/bench_deliver" "$n" 1 16
"$build/bench_deliver" "$((n / 2))" 0 16

brokers=${NA_TEST_BROKERS:?bench/deliver.sh needs a broker (NA_TEST_BROKERS)}
"$build/bench_deliver" latency "$brokers" "$build/newsalert-consumer" \
    "$root/examples/rules.json" "${NA_BENCH_DELIVER_LAT:-200}"
