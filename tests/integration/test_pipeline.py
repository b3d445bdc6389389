"""End to end on a real broker: sample feeds over local HTTP -> producer ->
Kafka -> consumer -> local webhook receiver.

Asserts the exact set of (article, topic) alerts that examples/feeds/
labels.json names, none for the unrelated stories, nothing republished
after a producer restart, poison records dead-lettered without stopping the
consumer, and every alert still delivered when the consumer is SIGKILLed
before it commits and then restarted; nothing sent twice when it is SIGKILLed
after delivery (the alert ledger, news.alerts)."""

import base64
import glob
import hashlib
import hmac
import json
import os
import re
import signal

import harness

SECRET_B64 = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8G"
# Short retries, and a short group session so that a SIGKILLed member's
# partitions move to its successor in seconds rather than 45 s.
FAST_RETRY = ["--deliver-backoff", "100ms", "--deliver-backoff-max", "1s",
              "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"]


def serve_sample_feeds(ctx):
    feeds = ctx.feed_server()
    sources = []
    for path in sorted(glob.glob(ctx.src("examples", "feeds", "*"))):
        name = os.path.basename(path)
        if name in ("labels.json", "README.md"):
            continue
        with open(path, "rb") as f:
            feeds.set("/" + name, f.read(), "application/octet-stream")
        sources.append({"id": os.path.splitext(name)[0], "name": name,
                        "url": feeds.url("/" + name), "interval": "1m"})
    return feeds, ctx.write("sources.json", {"sources": sources})


def expected_alerts(ctx):
    with open(ctx.src("examples", "feeds", "labels.json")) as f:
        labels = json.load(f)
    pairs = {(url, topic) for url, topics in labels.items() for topic in topics}
    unrelated = {url for url, topics in labels.items() if not topics}
    return pairs, unrelated, len(labels)


def summary(proc):
    m = re.findall(r"event=summary (.*)", proc.stderr_text())
    assert m, "no summary line; stderr tail:\n" + proc.tail()
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m[-1])}


class Pipeline:
    def __init__(self, ctx):
        self.ctx = ctx
        self.topic = ctx.topic("na.it.articles")
        self.dlq = ctx.topic("na.it.dlq")
        # Each test its own ledger: alert ids repeat across tests (same feeds).
        self.ledger = ctx.topic("na.it.alerts")
        self.feeds, self.sources = serve_sample_feeds(ctx)
        self.state = ctx.path("state")

    def produce(self, name="producer"):
        p = self.ctx.proc([self.ctx.bin("newsalert-producer"), "--once",
                           "--brokers", self.ctx.brokers, "--sources", self.sources,
                           "--state-dir", self.state, "--topic", self.topic], name=name)
        rc = p.wait(120)
        assert rc == 0, "producer exited %s:\n%s" % (rc, p.tail())
        return summary(p)

    def consumer(self, group, routes, extra=(), name=None):
        cfg = self.ctx.write("%s.json" % (name or group), {
            "brokers": self.ctx.brokers, "topic": self.topic, "dlq_topic": self.dlq,
            "group_id": group, "ledger_topic": self.ledger,
            # labels.json names one alert per (article, topic); two sample
            # articles are one story, which story grouping alerts once
            # (tests/integration/test_delivery.py covers that).
            "stories": False,
            "rules": os.environ.get("NA_TEST_RULES") or self.ctx.src("examples", "rules.json"),
            "routes": routes})
        return self.ctx.proc([self.ctx.bin("newsalert-consumer"), "--config", cfg]
                             + FAST_RETRY + list(extra), name=name or group)


def delivered(receiver, path):
    """(article url, topic) of every request answered 200 on `path`."""
    return [(b["article"]["url"], b["topic"]) for b in receiver.bodies(path, status=200)]


def test_end_to_end_exact_alerts_and_no_republish(ctx):
    pipe = Pipeline(ctx)
    expected, unrelated, items = expected_alerts(ctx)
    assert expected and unrelated

    s = pipe.produce()
    assert s["produced"] == items and s["delivered"] == items, s
    assert s["fetch_errors"] == 0 and s["parse_errors"] == 0, s

    hook = ctx.webhook()
    routes = [{"name": "generic", "url": hook.url("/json"), "format": "json",
               "secret": "whsec_" + SECRET_B64},
              # One message per alert here (no digest), fast pacing for the test.
              {"name": "desk", "url": hook.url("/slack"), "format": "slack",
               "digest_threshold": 0, "rate_per_s": 50, "burst": 50}]
    c = pipe.consumer(harness.unique_topic("na-it-group"), routes, ["--exit-eof"])
    rc = c.wait(180)
    assert rc == 0, "consumer exited %s:\n%s" % (rc, c.tail())

    got = delivered(hook, "/json")
    assert len(got) == len(set(got)), "duplicate alerts in a clean run"
    assert set(got) == expected, "missing %s, unexpected %s" % (
        sorted(expected - set(got)), sorted(set(got) - expected))
    assert not {url for url, _ in got} & unrelated
    # Slack route: the same alerts, in Block Kit shape.
    slack = hook.bodies("/slack", status=200)
    assert len(slack) == len(expected)
    assert all(b["blocks"][0]["type"] == "header" and "text" in b for b in slack)

    # The generic route is signed as Standard Webhooks says.
    key = base64.b64decode(SECRET_B64)
    for r in hook.requests("/json"):
        msg_id, ts = r.header("webhook-id"), r.header("webhook-timestamp")
        want = base64.b64encode(hmac.new(key, b"%s.%s.%s" % (
            msg_id.encode(), ts.encode(), r.body), hashlib.sha256).digest()).decode()
        assert r.header("webhook-signature") == "v1," + want
        assert msg_id == r.json["id"]

    # Producer restart: 304s, then changed documents with the same items.
    s = pipe.produce("producer-again")
    assert s["produced"] == 0 and s["not_modified"] == 4, s
    for path in list(pipe.feeds._routes):
        body = pipe.feeds._routes[path].body
        pipe.feeds.set(path, body + b"\n", "application/octet-stream")
    s = pipe.produce("producer-changed")
    assert s["items"] == items and s["skipped_seen"] == items and s["produced"] == 0, s

    # The topic holds each article exactly once.
    records = harness.kcat_consume(ctx.brokers, pipe.topic)
    assert len(records) == items, len(records)
    assert len({r["key"] for r in records}) == items
    assert all(r["headers"].get("schema") == "article/v1" for r in records)


def test_poison_records_go_to_the_dlq_and_the_consumer_goes_on(ctx):
    pipe = Pipeline(ctx)
    expected, _, items = expected_alerts(ctx)
    harness.kcat_produce(ctx.brokers, pipe.topic,
                         [("k1", "{not json"), ("k2", '{"schema":"article/v1","id":5}'),
                          ("k3", "x" * 2048)])
    pipe.produce()
    hook = ctx.webhook()
    c = pipe.consumer(harness.unique_topic("na-it-group"),
                      [{"name": "generic", "url": hook.url("/json"), "format": "json"}],
                      ["--exit-eof"])
    rc = c.wait(180)
    assert rc == 0, c.tail()
    assert set(delivered(hook, "/json")) == expected
    s = summary(c)
    assert s["poison"] == 3 and s["consumed"] == items + 3, s
    assert len(re.findall(r"event=poison_record", c.stderr_text())) == 3
    dlq = harness.kcat_consume(ctx.brokers, pipe.dlq, count=3, timeout=30)
    assert sorted(r["key"] for r in dlq) == ["k1", "k2", "k3"]
    assert all(r["headers"].get("error.stage") == "decode" for r in dlq)
    assert all(r["headers"].get("error.reason") for r in dlq)


def test_sigkill_while_webhook_is_down_loses_nothing(ctx):
    pipe = Pipeline(ctx)
    expected, _, _ = expected_alerts(ctx)
    pipe.produce()
    hook = ctx.webhook()
    hook.down()
    group = harness.unique_topic("na-it-group")
    routes = [{"name": "generic", "url": hook.url("/json"), "format": "json"}]
    c = pipe.consumer(group, routes, name="consumer-1")
    hook.wait_for(lambda reqs: len(reqs) >= 5, timeout=60, answered=False)
    c.kill(signal.SIGKILL)
    assert c.wait(10) == -signal.SIGKILL
    assert not delivered(hook, "/json")

    hook.up()
    c2 = pipe.consumer(group, routes, ["--exit-eof"], name="consumer-2")
    rc = c2.wait(180)
    assert rc == 0, c2.tail()
    assert set(delivered(hook, "/json")) == expected


def test_sigkill_after_delivery_before_commit_sends_nothing_twice(ctx):
    pipe = Pipeline(ctx)
    expected, _, _ = expected_alerts(ctx)
    pipe.produce()
    hook = ctx.webhook()
    group = harness.unique_topic("na-it-group")
    routes = [{"name": "generic", "url": hook.url("/json"), "format": "json"},
              {"name": "desk", "url": hook.url("/slack"), "format": "slack",
               "digest_threshold": 0, "rate_per_s": 50, "burst": 50}]
    # Offsets are stored but never committed before the kill.
    c = pipe.consumer(group, routes, ["-X", "auto.commit.interval.ms=3600000"],
                      name="consumer-1")
    hook.wait_for(lambda reqs: len([r for r in reqs if r.status == 200])
                  >= 2 * len(expected), timeout=120)
    # Delivered, and the ledger holds every (alert, route): the window
    # between the confirmed ledger record and the offset commit.
    def ledger_complete():
        recs = harness.ledger_records(ctx.brokers, pipe.ledger, timeout=10)
        last = {}
        for r in recs:
            last[r["key"]] = json.loads(r["value"])
        return (len(last) == len(expected) and
                all(set(v["deliveries"]) == {"generic", "desk"} for v in last.values()))
    harness.wait_until(ledger_complete, timeout=60, interval=0.5, what="ledger complete")
    c.kill(signal.SIGKILL)
    assert c.wait(10) == -signal.SIGKILL
    first = delivered(hook, "/json")
    assert sorted(first) == sorted(expected)
    first_slack = len(hook.bodies("/slack", status=200))
    assert first_slack == len(expected)

    c2 = pipe.consumer(group, routes, ["--exit-eof"], name="consumer-2")
    rc = c2.wait(180)
    assert rc == 0, c2.tail()
    # Nothing was committed, so every article is consumed again, but the
    # ledger says delivered: nothing is sent twice, on either route.
    assert delivered(hook, "/json") == first
    assert len(hook.bodies("/slack", status=200)) == first_slack
    s = summary(c2)
    assert s["matched"] == len(expected), s
    assert s["ledger_skipped"] == 2 * len(expected) and s["alerts_sent"] == 0, s
    # The ledger record is alert/v1 plus each route's outcome.
    recs = harness.ledger_records(ctx.brokers, pipe.ledger, timeout=10)
    v = json.loads(recs[-1]["value"])
    assert v["schema"] == "alert/v1" and v["id"] == recs[-1]["key"]
    assert v["deliveries"]["generic"]["outcome"] == "delivered"
    assert v["deliveries"]["generic"]["status"] == 200


if __name__ == "__main__":
    harness.main(globals())
