#!/usr/bin/env python3
"""SIGTERM with alerts in flight (real broker; docs/operations.md, "Signals").

The consumer stops taking records, finishes the alerts in flight within
drain_timeout, commits what finished and exits 0: the alerts it finished are
not sent again by the next consumer of the group, and those it could not
finish in time are (their offsets were not committed). A second signal
abandons the drain."""

import hashlib
import json
import signal
import time

import harness

FAST = ["--deliver-backoff", "100ms", "--deliver-backoff-max", "1s",
        "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500",
        "-X", "auto.commit.interval.ms=300"]

TITLES = ["Beijing bans exports of dual-use items to military end users",
          "Washington adds chip toolmakers to the export control entity list",
          "Tokyo tightens export licences for semiconductor equipment"]


def article(n, title):
    url = "https://news.test/shutdown/%d" % n
    return {"schema": "article/v1", "id": hashlib.sha256(url.encode()).hexdigest(),
            "url": url, "title": title,
            "summary": "The commerce ministry announced the export ban on %d April." % n,
            "content": "", "authors": [], "categories": [], "lang": "en",
            "published_at": "2026-04-%02dT08:00:00Z" % n,
            "fetched_at": "2026-04-%02dT08:05:00Z" % n,
            "source": {"id": "t", "name": "Test Wire", "feed_url": "https://news.test/f"}}


def run_tool(ctx, *args, stdin=None):
    cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers] + list(args),
                     stdin=stdin, timeout=60)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout


class Group:
    """Articles in a one-partition topic and consumers of one group, each
    with one json route to `hook`."""

    def __init__(self, ctx, hook, n, **extra):
        self.ctx = ctx
        self.arts = [article(i + 1, TITLES[i % len(TITLES)]) for i in range(n)]
        self.topic = ctx.topic("na.it.shutdown")
        self.group = harness.unique_topic("na-it-shutdown")
        lines = "".join("%d\t0\t%s\t%s\n" % (int(time.time()) * 1000, a["id"], json.dumps(a))
                        for a in self.arts)
        run_tool(ctx, "-t", self.topic, "-p", "1", stdin=lines)
        cfg = {"brokers": ctx.brokers, "topic": self.topic, "group_id": self.group,
               "dlq_topic": ctx.topic("na.it.shutdown.dlq"),
               "ledger_topic": ctx.topic("na.it.shutdown.alerts"),
               "rules": ctx.src("examples", "rules.json"), "stories": False,
               # Several alerts in flight at once (a route's default is one).
               "routes": [{"name": "hook", "url": hook.url("/json"), "format": "json",
                           "digest_threshold": 0, "max_in_flight": 8}]}
        cfg.update(extra)
        self.cfg = ctx.write("consumer.json", cfg)
        self.runs = 0

    def consumer(self, *extra):
        self.runs += 1
        return self.ctx.proc([self.ctx.bin("newsalert-consumer"), "--config", self.cfg] +
                             FAST + list(extra), name="consumer-%d" % self.runs)

    def committed(self):
        out = run_tool(self.ctx, "-t", self.topic, "-G", self.group)
        return {int(p): int(o) for p, o in (l.split() for l in out.splitlines())}.get(0, -1001)


def stop_and_time(proc, sig=signal.SIGTERM, again_after=None):
    """Send `sig` (and once more after `again_after` seconds); return
    (exit code, seconds from the first signal to the exit)."""
    t0 = time.monotonic()
    proc.kill(sig)
    if again_after is not None:
        time.sleep(again_after)
        proc.kill(sig)
    rc = proc.wait(120)
    return rc, time.monotonic() - t0


def test_sigterm_finishes_alerts_in_flight_commits_and_exits_0(ctx):
    hook = ctx.webhook()
    hook.slow(3)  # every answer takes 3 s: the alerts are in flight at SIGTERM
    g = Group(ctx, hook, 3, drain_timeout="20s")
    c = g.consumer()
    hook.wait_for(lambda rs: len(rs) >= 3, 60, what="3 alerts in flight", answered=False)
    assert all(r.status is None for r in hook.requests()), "answered before SIGTERM"
    rc, took = stop_and_time(c)
    assert rc == 0, "exit %s:\n%s" % (rc, c.tail())
    # It waited for the answers (about 3 s), well within the drain deadline.
    assert 1.5 <= took < 20, "exited %.1f s after SIGTERM" % took
    assert [r.status for r in hook.requests()] == [200] * 3
    assert "event=drain_timeout" not in c.stderr_text()
    assert g.committed() == 3, "committed %d of 3 after the drain" % g.committed()
    # The next consumer of the group has nothing left to send.
    hook.up()
    c2 = g.consumer("--exit-eof")
    assert c2.wait(120) == 0, c2.tail()
    assert len(hook.requests()) == 3, "an alert finished in the drain was sent again"


def refusing_ledger(ctx):
    """A ledger topic that refuses every record (each is > 200 bytes): the
    consumer keeps retrying the write, so its drain has work it cannot
    finish (without leaving anything in flight at the webhook)."""
    topic = ctx.topic("na.it.shutdown.alerts")
    run_tool(ctx, "-t", topic, "-p", "1", "-c", "cleanup.policy=compact",
             "-c", "max.message.bytes=200", stdin="")
    return topic


def test_sigterm_gives_up_at_drain_timeout_and_the_next_consumer_finishes(ctx):
    hook = ctx.webhook()
    ledger = refusing_ledger(ctx)
    g = Group(ctx, hook, 2, drain_timeout="3s", ledger_topic=ledger)
    c = g.consumer()
    hook.wait_count(2, 60)
    c.wait_for_stderr(r"event=retry_scheduled kind=ledger", 30)
    rc, took = stop_and_time(c)
    assert rc == 0, "exit %s:\n%s" % (rc, c.tail())
    # drain_timeout, then closing (nothing left for the dead-letter flush).
    assert 2.5 <= took < 3 + 7, "exited %.1f s after SIGTERM (drain_timeout 3 s)" % took
    assert "event=drain_timeout" in c.stderr_text()
    assert g.committed() <= 0, "committed %d: alerts not in the ledger" % g.committed()
    # The next consumer, with a ledger that takes records, finishes them
    # (the alerts go out again: their first delivery never reached the
    # ledger, the documented window).
    run_tool(ctx, "-t", ledger, "-A", "-c", "max.message.bytes=1048576")
    c2 = g.consumer("--exit-eof")
    assert c2.wait(120) == 0, c2.tail()
    assert g.committed() == 2
    assert len(harness.ledger_records(ctx.brokers, ledger)) == 2


def test_a_second_sigterm_abandons_the_drain(ctx):
    hook = ctx.webhook()
    g = Group(ctx, hook, 1, drain_timeout="30s", ledger_topic=refusing_ledger(ctx))
    c = g.consumer()
    hook.wait_count(1, 60)
    c.wait_for_stderr(r"event=retry_scheduled kind=ledger", 30)
    rc, took = stop_and_time(c, again_after=1.0)
    assert rc == 0, "exit %s:\n%s" % (rc, c.tail())
    assert took < 8, "exited %.1f s after two signals (drain_timeout 30 s)" % took
    assert g.committed() <= 0


def test_sigterm_with_a_hung_webhook_exits_0_at_drain_timeout(ctx):
    """Alerts still in flight at the webhook when drain_timeout ends: the
    consumer gives up on them (they are not committed; the next consumer
    sends them) and exits 0, freeing what it held for them."""
    hook = ctx.webhook()
    hook.hang(60)  # no answer within the drain (or the request timeout)
    # The request timeout outlasts the drain; the next consumer waits for it
    # before sending again (the old owner might still get its answer).
    g = Group(ctx, hook, 2, drain_timeout="3s", deliver_timeout="8s")
    c = g.consumer()
    hook.wait_for(lambda rs: len(rs) >= 2, 60, what="2 alerts in flight", answered=False)
    rc, took = stop_and_time(c)
    assert rc == 0, "exit %s:\n%s" % (rc, c.tail())
    assert 2.5 <= took < 3 + 7, "exited %.1f s after SIGTERM (drain_timeout 3 s)" % took
    assert "event=drain_timeout" in c.stderr_text()
    assert g.committed() <= 0
    hook.up()
    c2 = g.consumer("--exit-eof")
    assert c2.wait(120) == 0, c2.tail()
    sent = {r.json["article"]["url"] for r in hook.requests() if r.status == 200}
    assert sent == {a["url"] for a in g.arts}, sent


if __name__ == "__main__":
    harness.main(globals(), timeout=300)
