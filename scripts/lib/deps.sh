# shellcheck shell=bash
# scripts/lib/deps.sh: make sure the Debian packages the project builds and
# tests with are installed.
#
#   . "$root/scripts/lib/deps.sh"
#   na_need_debs PACKAGE...
#
# Missing packages are installed with apt-get when running as root (CI and
# fresh machines); otherwise the exact apt-get line is printed and the
# function returns 1.

# What the build needs (scripts/demo) and what the tests add (scripts/test).
# Every program and module a test uses is here: with CI=true a test that
# finds one missing fails instead of skipping (tests/integration/harness.py).
# kafkacat: kcat; chromium: the status page test; systemd: systemd-analyze;
# python3-pip: `pip download` of the Compose schema (test_deploy.py); openssl: the
# certificates of the secured broker (scripts/kafka-broker --secure, test_security.py).
NA_BUILD_DEBS=(build-essential cmake pkg-config librdkafka-dev libjansson-dev libmicrohttpd-dev
               libcurl4-openssl-dev libxml2-dev libssl-dev libvectorscan-dev python3)
NA_TEST_DEBS=(libcmocka-dev clang-format kafkacat openjdk-17-jre-headless maven clang libclang-rt-14-dev
              chromium systemd python3-yaml python3-jsonschema python3-pip openssl)

na_need_debs() {
    local missing=() p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        printf 'missing Debian packages; install them with:\n  sudo apt-get install -y %s\n' \
            "${missing[*]}" >&2
        return 1
    fi
    printf 'installing Debian packages: %s\n' "${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
