"""Both daemons against a secured real broker (issue 18).

The file starts a broker of its own with `scripts/kafka-broker start DIR
--secure`: a SASL_SSL listener (SCRAM-SHA-512 users created when the storage
was formatted, and PLAIN) and an SSL listener that wants a client
certificate (mutual TLS), with a CA and certificates made by openssl now;
hostname verification stays on (librdkafka's default). The plaintext
listener of the same broker is only used by the test itself (kcat) to look
at what the daemons wrote.

librdkafka before 2.6.1 cannot authenticate with SCRAM to Kafka 4.0 and
later (its SCRAM proof repeats the client nonce, which Kafka 4 checks), so
with such a library linked the broker of this file runs Kafka 3.9.1 (the
last 3.x); with a newer one, the project's Kafka 4.1.1.
`NA_SECURE_KAFKA_VERSION` chooses another.
"""

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import harness

BROKER = {}
FAST = ["--deliver-backoff", "100ms", "--deliver-backoff-max", "1s",
        "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"]

RSS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Wire</title><link>http://wire.example/</link>
<item><title>China bans export of dual-use items to Japanese military users</title>
<link>http://wire.example/a1</link><guid>a1</guid>
<description>The Ministry of Commerce announced export controls on dual-use items
and rare earths, citing remarks on Taiwan.</description>
<pubDate>Tue, 06 Jan 2026 08:00:00 GMT</pubDate></item>
</channel></rss>
"""


def _librdkafka_version(build):
    out = subprocess.run([os.path.join(build, "newsalert-consumer"), "--version"],
                         capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"librdkafka (\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)


def start_secure_broker(source, build):
    """Start the broker of this file (once); fill BROKER."""
    version = os.environ.get("NA_SECURE_KAFKA_VERSION") or (
        "3.9.1" if _librdkafka_version(build) < (2, 6, 1) else "4.1.1")
    d = tempfile.mkdtemp(prefix="newsalert-secure-broker.")
    script = os.path.join(source, "scripts", "kafka-broker")
    env = dict(os.environ, NEWSALERT_KAFKA_VERSION=version)
    atexit.register(lambda: (subprocess.run([script, "stop", d], env=env),
                             shutil.rmtree(d, ignore_errors=True)))
    cp = subprocess.run([script, "start", d, "--secure"], env=env, capture_output=True,
                        text=True, timeout=600)
    if cp.returncode != 0:
        print("FAIL: the secure broker did not start:\n" + cp.stderr, flush=True)
        print("0 passed, 1 failed", flush=True)
        sys.exit(1)
    users = dict(line.split(" ", 1) for line in open(os.path.join(d, "users")).read().split("\n")
                 if line)

    def read(name):
        with open(os.path.join(d, name)) as f:
            return f.read().strip()

    BROKER.update(dir=d, script=script, env=env, version=version,
                  plain=read("bootstrap"), sasl=read("bootstrap.sasl_ssl"),
                  mtls=read("bootstrap.ssl"), tls=os.path.join(d, "tls"),
                  password=users["newsalert"])


def sasl_props(ctx, password_file=None, mechanism="SCRAM-SHA-512", ca="ca.pem",
               password=None):
    """-X arguments for SASL_SSL; the password from a file unless given."""
    if password is None and password_file is None:
        password_file = ctx.write("kafka-password", BROKER["password"] + "\n")
    return ["-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanism=" + mechanism,
            "-X", "sasl.username=newsalert",
            "-X", "sasl.password=" + (password if password is not None
                                      else "@" + password_file),
            "-X", "ssl.ca.location=" + os.path.join(BROKER["tls"], ca)]


def mtls_props():
    t = BROKER["tls"]
    return ["-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + t + "/ca.pem",
            "-X", "ssl.certificate.location=" + t + "/client.pem",
            "-X", "ssl.key.location=" + t + "/client-enc.key",
            "-X", "ssl.key.password=@" + t + "/client-key.password"]


def topics_of(brokers):
    cp = harness.run(["kcat", "-b", brokers, "-L", "-J"], timeout=30)
    assert cp.returncode == 0, cp.stderr
    return {t["topic"]: len(t["partitions"]) for t in json.loads(cp.stdout)["topics"]}


def one_feed(ctx):
    feeds = ctx.feed_server()
    feeds.set("/wire.xml", RSS.encode(), "application/rss+xml")
    return ctx.write("sources.json", {"sources": [
        {"id": "wire", "name": "Wire", "url": feeds.url("/wire.xml"), "interval": "1m"}]})


def pipeline_over(ctx, bootstrap, props):
    """Producer --once, then the consumer with ledger, DLQ and create_topics
    over @p bootstrap with @p props; returns (topic, dlq, ledger, hook)."""
    topic, dlq, ledger = (ctx.topic("na.sec.articles"), ctx.topic("na.sec.dlq"),
                          ctx.topic("na.sec.alerts"))
    sources = one_feed(ctx)
    p = ctx.proc([ctx.bin("newsalert-producer"), "--once", "--brokers", bootstrap,
                  "--sources", sources, "--state-dir", ctx.path("state"), "--topic", topic]
                 + props, name="producer")
    assert p.wait(120) == 0, p.tail()
    # A poison record (written by the test over plaintext) must reach the
    # dead-letter topic through the consumer's secured producer.
    harness.kcat_produce(BROKER["plain"], topic, [("poison", "{not json")])
    hook = ctx.webhook()
    cfg = ctx.write("consumer.json", {
        "brokers": bootstrap, "topic": topic, "dlq_topic": dlq, "ledger_topic": ledger,
        "group_id": harness.unique_topic("na-sec-group"), "stories": False,
        "create_topics": True, "rules": ctx.src("examples", "rules.json"),
        "routes": [{"name": "generic", "url": hook.url("/json"), "format": "json"}]})
    c = ctx.proc([ctx.bin("newsalert-consumer"), "--config", cfg, "--exit-eof"] + FAST
                 + props, name="consumer")
    assert c.wait(180) == 0, c.tail()
    return topic, dlq, ledger, hook


def check_pipeline_results(ctx, topic, dlq, ledger, hook):
    got = hook.bodies("/json", status=200)
    assert got, "no alert delivered"
    assert {b["article"]["url"] for b in got} == {"http://wire.example/a1"}
    arts = harness.kcat_consume(BROKER["plain"], topic)
    assert len(arts) == 2, arts  # the article and the poison record
    recs = harness.ledger_records(BROKER["plain"], ledger, count=len(got), timeout=30)
    assert {r["key"] for r in recs} == {b["id"] for b in got}
    assert all("delivered" in r["value"] for r in recs)
    dead = harness.kcat_consume(BROKER["plain"], dlq, count=1, timeout=30)
    assert dead[0]["key"] == "poison" and dead[0]["headers"]["error.stage"] == "decode"
    # create_topics made them with the documented partitions.
    have = topics_of(BROKER["plain"])
    assert have.get(topic) == 6 and have.get(dlq) == 1 and have.get(ledger) == 3, have


def test_producer_and_consumer_over_sasl_ssl_scram(ctx):
    check_pipeline_results(ctx, *pipeline_over(ctx, BROKER["sasl"], sasl_props(ctx)))


def test_producer_and_consumer_over_sasl_ssl_plain(ctx):
    check_pipeline_results(ctx, *pipeline_over(
        ctx, BROKER["sasl"], sasl_props(ctx, mechanism="PLAIN")))


def test_producer_and_consumer_over_mutual_tls(ctx):
    check_pipeline_results(ctx, *pipeline_over(ctx, BROKER["mtls"], mtls_props()))


def test_sources_load_and_replay_over_sasl_ssl(ctx):
    props = sasl_props(ctx)
    stopic = ctx.topic("na.sec.sources")
    sources = one_feed(ctx)
    cp = harness.run([ctx.bin("newsalert-producer"), "sources", "load", sources,
                      "--sources-topic", stopic, "--brokers", BROKER["sasl"]] + props,
                     timeout=120)
    assert cp.returncode == 0, cp.stderr
    recs = harness.kcat_consume(BROKER["plain"], stopic)
    assert [r["key"] for r in recs] == ["wire"], recs

    topic = ctx.topic("na.sec.articles")
    p = ctx.proc([ctx.bin("newsalert-producer"), "--once", "--brokers", BROKER["sasl"],
                  "--sources", sources, "--state-dir", ctx.path("state"), "--topic", topic]
                 + props, name="producer")
    assert p.wait(120) == 0, p.tail()
    cp = harness.run([ctx.bin("newsalert-consumer"), "replay", "--brokers", BROKER["sasl"],
                      "--topic", topic, "--from", "beginning", "--to", "end",
                      "--ledger-topic", ctx.topic("na.sec.alerts"), "--rules",
                      ctx.src("examples", "rules.json"), "--dry-run"] + props, timeout=120)
    assert cp.returncode == 0, cp.stderr
    lines = [json.loads(x) for x in cp.stdout.splitlines() if x.strip()]
    assert lines and {x["article"]["url"] for x in lines} == {"http://wire.example/a1"}, lines


# --- failures at start: one line, exit 1, quickly ---------------------------

BAD_CASES = {
    "wrong password": (lambda ctx: sasl_props(ctx, password="not-the-password"),
                       r"refused our SASL SCRAM-SHA-512 credentials \(check sasl.username "
                       r"and sasl.password\)", None),
    "unknown CA": (lambda ctx: sasl_props(ctx, ca="other-ca.pem"),
                   r"TLS certificate is signed by a CA we do not trust .*set "
                   r"ssl.ca.location", None),
    "hostname mismatch": (lambda ctx: sasl_props(ctx),
                          r"TLS certificate is not for the name we connected to "
                          r"\(hostname mismatch\)", "localhost"),
    "no client certificate": (lambda ctx: ["-X", "security.protocol=SSL", "-X",
                                           "ssl.ca.location=" + BROKER["tls"] + "/ca.pem"],
                              r"refused our client certificate \(mutual TLS", None),
}


def failed_auths():
    with open(os.path.join(BROKER["dir"], "broker.log"), errors="replace") as f:
        return len(re.findall(r"Failed authentication with", f.read()))


def bad_start(ctx, argv, what, pattern):
    t0 = time.monotonic()
    auths = failed_auths()
    cp = harness.run(argv, timeout=60)
    took = time.monotonic() - t0
    lines = [x for x in cp.stderr.splitlines() if x.strip()]
    assert cp.returncode == 1, "%s: exit %s\n%s" % (what, cp.returncode, cp.stderr)
    assert lines and re.search(pattern, lines[-1]), "%s: last line %r" % (
        what, lines[-1] if lines else None)
    assert re.match(r"newsalert-(producer|consumer)( replay)?: kafka: broker \S+", lines[-1]), lines[-1]
    # No retry storm: it gave up at once, after a handful of attempts (one
    # client connects before the check, and it looks every 100 ms).
    assert took < 20, "%s: took %.1f s" % (what, took)
    n = failed_auths() - auths
    print("  %s: %d failed authentications, %.1f s" % (what, n, took))
    assert n <= 3, "%s: %d failed authentications" % (what, n)
    return lines[-1]


def test_bad_credentials_or_certificates_end_each_program_at_start(ctx):
    sources = one_feed(ctx)
    rules = ctx.src("examples", "rules.json")
    for what, (props_of, pattern, host) in BAD_CASES.items():
        addr = BROKER["mtls"] if "client" in what else BROKER["sasl"]
        if host:
            addr = host + ":" + addr.split(":")[1]
        props = props_of(ctx)
        programs = {
            "producer": [ctx.bin("newsalert-producer"), "--once", "--brokers", addr,
                         "--sources", sources, "--state-dir", ctx.path("st-" + what),
                         "--topic", ctx.topic("na.sec.x")],
            "consumer": [ctx.bin("newsalert-consumer"), "--brokers", addr, "--topic",
                         ctx.topic("na.sec.x"), "--group-id", "na-sec-bad", "--rules",
                         rules, "--ledger-topic", ctx.topic("na.sec.l")],
            "sources load": [ctx.bin("newsalert-producer"), "sources", "load", sources,
                             "--sources-topic", ctx.topic("na.sec.s"), "--brokers", addr],
            "replay": [ctx.bin("newsalert-consumer"), "replay", "--brokers", addr,
                       "--topic", ctx.topic("na.sec.x"), "--from", "beginning",
                       "--to", "end", "--rules", rules, "--dry-run"],
            "check-config": [ctx.bin("newsalert-consumer"), "--brokers", addr,
                             "--check-config", "--connect"],
        }
        for prog, argv in programs.items():
            line = bad_start(ctx, argv + props, "%s, %s" % (what, prog), pattern)
            print("  %s / %s: %s" % (what, prog, line[:160]))


def test_check_config_connect_says_how_it_got_in(ctx):
    cp = harness.run([ctx.bin("newsalert-consumer"), "--brokers", BROKER["sasl"],
                      "--check-config", "--connect"] + sasl_props(ctx), timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert re.search(r"connected to 127.0.0.1:\d+ \(1 broker\) over sasl_ssl, "
                     r"authenticated with SCRAM-SHA-512, broker certificate and "
                     r"hostname verified", cp.stdout), cp.stdout
    cp = harness.run([ctx.bin("newsalert-producer"), "--brokers", BROKER["mtls"],
                      "--check-config", "--connect"] + mtls_props(), timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert "over ssl, broker certificate and hostname verified" in cp.stdout, cp.stdout


def set_scram_password(user, password):
    """Change a SCRAM user's password on the broker (over plaintext)."""
    cache = os.environ.get("NEWSALERT_CACHE") or os.path.expanduser("~/.cache/newsalert")
    cp = subprocess.run(
        ["java", "-cp", os.path.join(cache, "kafka-" + BROKER["version"], "*"),
         "-Dlog4j2.configurationFile=" + os.path.join(BROKER["dir"], "log4j2.properties"),
         "kafka.admin.ConfigCommand", "--bootstrap-server", BROKER["plain"], "--alter",
         "--add-config", "SCRAM-SHA-512=[password=%s]" % password, "--entity-type", "users",
         "--entity-name", user], capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stdout + cp.stderr


def test_running_consumer_logs_and_keeps_trying_then_sighup_reads_the_new_password(ctx):
    # Last in the file: it restarts the broker with another password.
    topic = ctx.topic("na.sec.articles")
    pwfile = ctx.write("kafka-password", BROKER["password"] + "\n")
    hook = ctx.webhook()
    cfg = ctx.write("consumer.json", {
        "brokers": BROKER["sasl"], "topic": topic, "dlq_topic": ctx.topic("na.sec.dlq"),
        "ledger_topic": ctx.topic("na.sec.alerts"),
        "group_id": harness.unique_topic("na-sec-group"), "stories": False,
        "rules": ctx.src("examples", "rules.json"),
        "routes": [{"name": "generic", "url": hook.url("/json"), "format": "json"}]})
    arts = [{"schema": "article/v1", "id": "%064x" % n, "url": "https://news.test/sec/%d" % n,
             "title": "Beijing bans dual-use exports, report %d" % n,
             "summary": "The commerce ministry banned exports of dual-use items.",
             "content": "", "authors": [], "categories": [], "lang": "en",
             "published_at": "2026-11-2%dT08:00:00Z" % n,
             "fetched_at": "2026-11-2%dT08:05:00Z" % n,
             "source": {"id": "wire", "name": "Wire", "feed_url": "https://news.test/f"}}
            for n in (1, 2)]
    harness.kcat_produce(BROKER["plain"], topic, [(arts[0]["id"], json.dumps(arts[0]))])
    c = ctx.proc([ctx.bin("newsalert-consumer"), "--config", cfg] + FAST
                 + sasl_props(ctx, password_file=pwfile), name="consumer")
    hook.wait_count(1, 90)

    new_password = "changed-" + os.urandom(8).hex()
    set_scram_password("newsalert", new_password)
    BROKER["password"] = new_password
    mark = len(c.stderr_text())
    cp = subprocess.run([BROKER["script"], "restart", BROKER["dir"]], env=BROKER["env"],
                        capture_output=True, text=True, timeout=300)
    assert cp.returncode == 0, cp.stderr
    # The old password no longer works: logged, and the daemon goes on.
    harness.wait_until(lambda: "SASL authentication error" in c.stderr_text()[mark:], 90,
                       what="the consumer to log the refused password")
    time.sleep(5)
    assert c.alive(), "the consumer exited:\n" + c.tail()
    with open(pwfile, "w") as f:
        f.write(new_password + "\n")
    c.kill(signal.SIGHUP)
    c.wait_for_stderr(r"event=credentials_reloaded client=\"newsalert-consumer#", 30)
    harness.kcat_produce(BROKER["plain"], topic, [(arts[1]["id"], json.dumps(arts[1]))])
    hook.wait_count(2, 120)
    assert [b["article"]["url"] for b in hook.bodies("/json", status=200)] == \
        [a["url"] for a in arts]
    c.kill(signal.SIGTERM)
    assert c.wait(60) == 0, c.tail()


if __name__ == "__main__":
    _here = os.path.dirname(os.path.abspath(__file__))
    _source = os.environ.get("NA_SOURCE_DIR") or os.path.dirname(os.path.dirname(_here))
    _build = os.environ.get("NA_BUILD_DIR", "build")
    for _i, _a in enumerate(sys.argv):
        if _a == "--build" and _i + 1 < len(sys.argv):
            _build = sys.argv[_i + 1]
    for tool in ("kcat", "openssl", "java"):
        if not shutil.which(tool):
            print("SKIP: %s not installed" % tool if not harness.in_ci()
                  else "FAIL: %s not installed and CI=true" % tool, flush=True)
            sys.exit(1 if harness.in_ci() else harness.SKIP_RETURN_CODE)
    start_secure_broker(_source, os.path.abspath(_build))
    harness.main(globals(), needs_broker=False, timeout=400)
