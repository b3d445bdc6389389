#!/usr/bin/env python3
"""Failed deliveries reach the dead-letter topic, and only then finish their
article (real broker; docs/delivery.md, invariant 1).

An alert a route refuses (4xx), one whose retries ran out, and one its
format could not render (fault point `render`) each go to the consumer's
dlq_topic with the error headers (error.stage, error.reason, source.topic,
source.partition, source.offset, route); the article's offset is committed
only once the broker confirmed that copy: while the dead-letter topic
refuses records, nothing is committed, and the commit follows as soon as
it takes them."""

import hashlib
import json
import time

import harness

FAST = ["--deliver-backoff", "100ms", "--deliver-backoff-max", "200ms",
        "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500",
        "-X", "auto.commit.interval.ms=300"]

# Distinct events: each raises one export_controls alert (stories off anyway).
TITLES = ["Beijing bans exports of dual-use items to military end users",
          "Washington adds chip toolmakers to the export control entity list",
          "Tokyo tightens export licences for semiconductor equipment"]


def article(n, title):
    url = "https://news.test/dlq/%d" % n
    return {"schema": "article/v1", "id": hashlib.sha256(url.encode()).hexdigest(),
            "url": url, "title": title,
            "summary": "The commerce ministry announced the export ban on %d March." % n,
            "content": "", "authors": [], "categories": [], "lang": "en",
            "published_at": "2026-03-%02dT08:00:00Z" % n,
            "fetched_at": "2026-03-%02dT08:05:00Z" % n,
            "source": {"id": "t", "name": "Test Wire", "feed_url": "https://news.test/f"}}


def alert_id(article_id, topic):
    h = hashlib.sha256()
    for part in ("alert/v1", article_id, topic):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def make_topic(ctx, topic, records=(), *configs):
    """Create `topic` with one partition (and topic configs KEY=VALUE), then
    write `records` ((key, value) pairs, offsets 0, 1, ..)."""
    argv = [ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", topic, "-p", "1"]
    for c in configs:
        argv += ["-c", c]
    lines = "".join("%d\t0\t%s\t%s\n" % (int(time.time()) * 1000, k, v) for k, v in records)
    cp = harness.run(argv, stdin=lines, timeout=60)
    assert cp.returncode == 0, cp.stderr


def alter_topic(ctx, topic, *configs):
    argv = [ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", topic, "-A"]
    for c in configs:
        argv += ["-c", c]
    cp = harness.run(argv, timeout=60)
    assert cp.returncode == 0, cp.stderr


def committed(ctx, topic, group):
    """{partition: committed offset} of `group` (-1001: none)."""
    cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", topic,
                      "-G", group], timeout=60)
    assert cp.returncode == 0, cp.stderr
    return {int(p): int(o) for p, o in (l.split() for l in cp.stdout.splitlines())}


class Setup:
    """A one-partition topic holding articles, a consumer config for it with
    one json route to `hook`, a dead-letter topic and a group of its own."""

    def __init__(self, ctx, hook, arts, **extra):
        self.ctx = ctx
        self.arts = arts
        self.topic = ctx.topic("na.it.dlq.articles")
        self.dlq = ctx.topic("na.it.dlq.dead")
        self.group = harness.unique_topic("na-it-dlq")
        make_topic(ctx, self.topic, [(a["id"], json.dumps(a)) for a in arts])
        cfg = {"brokers": ctx.brokers, "topic": self.topic, "group_id": self.group,
               "dlq_topic": self.dlq, "ledger_topic": ctx.topic("na.it.dlq.alerts"),
               "rules": ctx.src("examples", "rules.json"), "stories": False,
               "routes": [{"name": "hook", "url": hook.url("/json"), "format": "json",
                           "digest_threshold": 0}]}
        cfg.update(extra)
        self.cfg = ctx.write("consumer.json", cfg)
        # offset of each alert's article (one partition, written in order)
        self.offset_of = {alert_id(a["id"], "export_controls"): i for i, a in enumerate(arts)}

    def start(self, env=None):
        return self.ctx.proc([self.ctx.bin("newsalert-consumer"), "--config", self.cfg] +
                             FAST, name="consumer", env=env)

    def committed(self):
        return committed(self.ctx, self.topic, self.group).get(0, -1001)

    def check_copy(self, rec, stage, reason):
        """One dead-letter record: its key is an alert id of ours, its headers
        name the failure and where the article was read."""
        aid = rec["key"]
        assert aid in self.offset_of, "dead-letter key %r is no alert of ours" % aid
        h = rec["headers"]
        want = {"error.stage": stage, "source.topic": self.topic, "source.partition": "0",
                "source.offset": str(self.offset_of[aid]), "route": "hook"}
        got = {k: h.get(k) for k in want}
        assert got == want, "headers %s, want %s" % (h, want)
        assert reason in (h.get("error.reason") or ""), h
        return aid


def test_refused_alerts_reach_the_dlq_with_headers_before_the_offset_is_committed(ctx):
    arts = [article(i + 1, t) for i, t in enumerate(TITLES)]
    hook = ctx.webhook(ok_status=400)  # every alert refused: a 4xx is not retried
    s = Setup(ctx, hook, arts)
    # A dead-letter topic that refuses every record (each is > 200 bytes).
    make_topic(ctx, s.dlq, (), "max.message.bytes=200")
    c = s.start()
    hook.wait_count(len(arts), 60, path="/json")
    time.sleep(3)  # auto-commit runs every 300 ms: anything finished is committed now
    assert s.committed() <= 0, \
        "offset %d committed while no dead-letter copy was written" % s.committed()
    assert harness.kcat_consume(ctx.brokers, s.dlq) == []
    assert "event=dlq_failed" in c.stderr_text(), "no refused dead-letter write"

    alter_topic(ctx, s.dlq, "max.message.bytes=1048576")
    recs = harness.kcat_consume(ctx.brokers, s.dlq, count=len(arts), timeout=60)
    harness.wait_until(lambda: s.committed() == len(arts), 60,
                       what="every offset committed once the copies are written")
    got = {s.check_copy(r, "deliver", "HTTP 400") for r in recs}
    assert got == set(s.offset_of), "dead-letter copies %s" % got
    # The copy is the payload the route refused: alert/v1 of that article.
    for r in recs:
        body = json.loads(r["value"])
        assert body["id"] == r["key"] and body["schema"] == "alert/v1", body
        assert body["article"]["url"] == arts[s.offset_of[r["key"]]]["url"], body
    assert len(hook.requests("/json")) == len(arts), "a 4xx was retried"
    assert len(harness.kcat_consume(ctx.brokers, s.dlq)) == len(arts), "a copy written twice"
    assert c.stop(60) == 0, c.tail()


def test_exhausted_retries_reach_the_dlq_then_the_offset_is_committed(ctx):
    arts = [article(10, TITLES[0])]
    hook = ctx.webhook()
    hook.down(503)
    s = Setup(ctx, hook, arts, deliver_max_attempts=3)
    c = s.start()
    recs = harness.kcat_consume(ctx.brokers, s.dlq, count=1, timeout=60)
    aid = s.check_copy(recs[0], "deliver", "HTTP 503")
    assert json.loads(recs[0]["value"])["id"] == aid
    assert len(hook.requests("/json")) == 3, "want 3 attempts, saw %s" % hook.requests()
    harness.wait_until(lambda: s.committed() == 1, 30, what="the offset committed")
    assert c.stop(60) == 0, c.tail()


def test_render_failure_reaches_the_dlq_then_the_offset_is_committed(ctx):
    arts = [article(20 + i, t) for i, t in enumerate(TITLES[:2])]
    hook = ctx.webhook()
    s = Setup(ctx, hook, arts)
    # The first alert's payload cannot be made (as if over the service's cap).
    c = s.start(env={"NEWSALERT_FAULTS": "render:1"})
    recs = harness.kcat_consume(ctx.brokers, s.dlq, count=1, timeout=60)
    aid = s.check_copy(recs[0], "render", "")
    assert recs[0]["headers"].get("error.reason"), recs[0]["headers"]
    assert s.offset_of[aid] == 0, "the first alert was the one not rendered"
    # The copy is the alert/v1 document (there is no payload to keep).
    body = json.loads(recs[0]["value"])
    assert body["id"] == aid and body["article"]["url"] == arts[0]["url"], body
    hook.wait_count(1, 60, path="/json")
    harness.wait_until(lambda: s.committed() == 2, 30, what="both offsets committed")
    sent = [b["article"]["url"] for b in hook.bodies("/json")]
    assert sent == [arts[1]["url"]], sent
    assert "event=render_failed" in c.stderr_text()
    assert c.stop(60) == 0, c.tail()


if __name__ == "__main__":
    harness.main(globals(), timeout=240)
