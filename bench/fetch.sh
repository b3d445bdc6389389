#!/usr/bin/env bash
# bench/fetch.sh BUILD_DIR: `bench/run fetch`, both halves of the fetcher's
# benchmark: parsing (feeds/s and MB/s over a generated corpus;
# bench/fetch_parse.sh) and polling (feeds polled per minute against a local
# HTTP server; bench/fetch_poll.sh). Figures: docs/benchmarks.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd -P)
"$here/fetch_parse.sh" "$1"
"$here/fetch_poll.sh" "$1"
