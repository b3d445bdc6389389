#!/usr/bin/env python3
"""Secrets from files (issue 18 point 3), on a real broker.

Every secret option can be a file: a route's `url_file` and `secret_file`,
`-X sasl.password=@FILE` and `-X ssl.key.password=@FILE` (any librdkafka
property whose name holds password, secret or token). The files are read at
start and again on SIGHUP; a relative name is looked up in
$CREDENTIALS_DIRECTORY (systemd LoadCredential=). Planted secrets must
appear in none of: --dump-config, the logs (debug level), /status.json, the
status page, /metrics.

The SASL password read again on SIGHUP against a secured broker is in
test_security.py (test_running_consumer_logs_and_keeps_trying_...)."""

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import urllib.request

import harness

FAST = ["--deliver-backoff", "100ms", "--deliver-backoff-max", "1s",
        "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"]


def article(n, title):
    url = "https://news.test/secrets/%d" % n
    return {"schema": "article/v1", "id": hashlib.sha256(url.encode()).hexdigest(),
            "url": url, "title": title,
            "summary": "The commerce ministry banned exports of dual-use items.",
            "content": "", "authors": [], "categories": [], "lang": "en",
            "published_at": "2026-11-2%dT08:00:00Z" % n,
            "fetched_at": "2026-11-2%dT08:05:00Z" % n,
            "source": {"id": "wire", "name": "Wire", "feed_url": "https://news.test/f"}}


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode("utf-8", "replace")


def test_secrets_from_files_are_used_reread_on_sighup_and_shown_nowhere(ctx):
    hook = ctx.webhook()
    planted = {
        "url": "PLANTEDURL" + secrets.token_hex(8),
        "url2": "PLANTEDURLTWO" + secrets.token_hex(8),
        "password": "PLANTEDPW" + secrets.token_hex(8),
        "keypass": "PLANTEDKEY" + secrets.token_hex(8),
    }
    key = b"PLANTEDSIGNING" + secrets.token_hex(8).encode()
    planted["secret"] = base64.b64encode(key).decode()
    creds = ctx.path("credentials")
    os.makedirs(creds)

    def cred(name, value):
        with open(os.path.join(creds, name), "w") as f:
            f.write(value + "\n")

    cred("hook-url", hook.url("/hooks/" + planted["url"]))
    cred("hook-secret", "whsec_" + planted["secret"])
    cred("kafka-password", planted["password"])
    cred("key-password", planted["keypass"])

    topic = ctx.topic("na.it.secrets")
    port = harness.free_port()
    cfg = ctx.write("consumer.json", {
        "brokers": ctx.brokers, "topic": topic, "group_id": harness.unique_topic("na-sec"),
        "dlq_topic": ctx.topic("na.it.secrets.dlq"),
        "ledger_topic": ctx.topic("na.it.secrets.alerts"),
        "rules": ctx.src("examples", "rules.json"), "stories": False,
        "log_level": "debug", "http_listen": "127.0.0.1:%d" % port,
        # Relative names: looked up in $CREDENTIALS_DIRECTORY.
        "routes": [{"name": "desk", "url_file": "hook-url", "secret_file": "hook-secret",
                    "format": "json", "digest_threshold": 0}],
        "kafka": {"sasl.password": "@kafka-password", "ssl.key.password": "@key-password"}})
    env = {"CREDENTIALS_DIRECTORY": creds}

    dump = harness.run([ctx.bin("newsalert-consumer"), "--config", cfg, "--dump-config"],
                       env=env, timeout=30)
    assert dump.returncode == 0, dump.stderr
    doc = json.loads(dump.stdout)
    assert doc["kafka"]["sasl.password"] == "***" and doc["routes"][0]["secret"] == "***"

    # A file that cannot be read is named, and the run refused.
    bad = harness.run([ctx.bin("newsalert-consumer"), "--config", cfg, "--check-config"],
                      env={"CREDENTIALS_DIRECTORY": ctx.path("nowhere")}, timeout=30)
    assert bad.returncode == 1 and "routes[0].url_file" in bad.stderr, bad.stderr

    harness.kcat_produce(ctx.brokers, topic, [(a["id"], json.dumps(a)) for a in
                                              [article(1, "Beijing bans dual-use exports")]])
    c = ctx.proc([ctx.bin("newsalert-consumer"), "--config", cfg] + FAST, env=env,
                 name="consumer")
    hook.wait_count(1, 60)
    first = hook.requests()[0]
    assert first.path == "/hooks/" + planted["url"], first.path
    # Signed with the secret of the file.
    want = base64.b64encode(hmac.new(key, b"%s.%s.%s" % (
        first.header("webhook-id").encode(), first.header("webhook-timestamp").encode(),
        first.body), hashlib.sha256).digest()).decode()
    assert first.header("webhook-signature") == "v1," + want

    # SIGHUP: the route's URL is read from its file again.
    cred("hook-url", hook.url("/hooks/" + planted["url2"]))
    c.kill(signal.SIGHUP)
    c.wait_for_stderr(r"event=routes_swapped", 30)
    harness.kcat_produce(ctx.brokers, topic, [(a["id"], json.dumps(a)) for a in
                                              [article(2, "Tokyo protests dual-use export ban "
                                                       "on rare earths")]])
    hook.wait_count(2, 60)
    assert hook.requests()[1].path == "/hooks/" + planted["url2"], hook.requests()[1].path

    base = "http://127.0.0.1:%d" % port
    shown = {"status.json": get(base + "/status.json"), "page": get(base + "/"),
             "metrics": get(base + "/metrics")}
    c.kill(signal.SIGTERM)
    assert c.wait(60) == 0, c.tail()
    shown["logs"] = c.stderr_text() + c.stdout_text()
    shown["dump-config"] = dump.stdout + dump.stderr
    assert "event=alert_sent" in shown["logs"] and "event=reloaded" in shown["logs"]
    for where, text in shown.items():
        for what, value in planted.items():
            assert value not in text, "%s shows the %s secret" % (where, what)
        assert "whsec_" not in text, where


if __name__ == "__main__":
    harness.main(globals())
