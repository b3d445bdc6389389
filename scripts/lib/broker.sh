# shellcheck shell=bash
# scripts/lib/broker.sh: start a throwaway Kafka broker for a test run.
# Source it from a bash script (works under set -euo pipefail):
#
#   . "$root/scripts/lib/broker.sh"
#   na_broker_start             # NA_TEST_BROKERS=127.0.0.1:PORT is now exported
#   ctest -L integration ...    # tests see NA_TEST_BROKERS
#   na_broker_restart           # optional: same ports, same data
#   # the broker stops and its folder goes away on every exit path
#
# na_broker_start [KEY=VALUE ..]
#   Creates a temporary data folder (NA_TEST_BROKER_DIR), runs
#   `scripts/kafka-broker start` there (extra KEY=VALUE become broker
#   properties), exports NA_TEST_BROKERS and NA_TEST_BROKER_DIR, and installs
#   an EXIT trap that calls na_broker_stop and then runs whatever EXIT trap
#   was set before (with the original exit status in $?, errexit off). Bash
#   runs EXIT traps on normal exit, on `exit`, on errexit failures and on
#   fatal signals such as SIGINT, SIGTERM and SIGHUP; only SIGKILL escapes.
#   When NA_TEST_BROKERS is already set and non-empty on entry, that broker is
#   used as is and nothing is started (NA_TEST_BROKER_DIR stays empty).
#   Returns 0, or 1 when the broker did not start (its folder is removed).
# na_broker_stop
#   Stops the broker started by na_broker_start and removes its folder, unless
#   NA_BROKER_KEEP=1 (then prints where the logs are). Idempotent.
# na_broker_restart
#   Restarts that broker on the same ports and data.

na__broker_script() {
    local here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
    printf '%s/../kafka-broker\n' "$here"
}

na_broker_stop() {
    local dir=${NA_TEST_BROKER_DIR:-}
    if [ -z "$dir" ]; then
        return 0
    fi
    "$(na__broker_script)" stop "$dir" || true
    if [ "${NA_BROKER_KEEP:-0}" = 1 ]; then
        printf 'broker: kept %s (broker.log, broker.out)\n' "$dir" >&2
    else
        rm -rf "$dir"
    fi
    NA_TEST_BROKER_DIR=
    NA_TEST_BROKERS=
    export NA_TEST_BROKER_DIR NA_TEST_BROKERS
    return 0
}

na_broker_restart() {
    if [ -z "${NA_TEST_BROKER_DIR:-}" ]; then
        printf 'broker: no broker of ours to restart\n' >&2
        return 1
    fi
    "$(na__broker_script)" restart "$NA_TEST_BROKER_DIR" >/dev/null
}

# na__broker_trap_prev: print the command of the current EXIT trap (or nothing).
na__broker_trap_prev() {
    local spec
    spec=$(trap -p EXIT)
    if [ -z "$spec" ]; then
        return 0
    fi
    # spec reads: trap -- 'COMMAND' EXIT, quoted for re-use by the shell.
    eval "set -- $spec"
    printf '%s' "$3"
}

na_broker_start() {
    local dir bootstrap prev
    if [ -n "${NA_TEST_BROKERS:-}" ]; then
        printf 'broker: using NA_TEST_BROKERS=%s\n' "$NA_TEST_BROKERS" >&2
        return 0
    fi
    if [ -n "${NA_TEST_BROKER_DIR:-}" ]; then
        printf 'broker: already started in %s\n' "$NA_TEST_BROKER_DIR" >&2
        return 1
    fi
    dir=$(mktemp -d "${TMPDIR:-/tmp}/newsalert-broker.XXXXXX")
    NA_TEST_BROKER_DIR=$dir
    export NA_TEST_BROKER_DIR
    # Install the trap before starting, so a start interrupted half-way still
    # stops whatever came up.
    if [ -z "${na__broker_trapped:-}" ]; then
        prev=$(na__broker_trap_prev)
        na__broker_trapped=1
        if [ -n "$prev" ]; then
            # shellcheck disable=SC2064 # expand prev now, on purpose
            trap "na__broker_rc=\$?; set +e; na_broker_stop; (exit \$na__broker_rc); $prev" EXIT
        else
            trap 'na__broker_rc=$?; set +e; na_broker_stop; exit $na__broker_rc' EXIT
        fi
    fi
    if ! bootstrap=$("$(na__broker_script)" start "$dir" "$@"); then
        na_broker_stop
        return 1
    fi
    NA_TEST_BROKERS=$bootstrap
    export NA_TEST_BROKERS
    printf 'broker: %s (data in %s)\n' "$NA_TEST_BROKERS" "$dir" >&2
}
