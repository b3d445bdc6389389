"""Regression: a record read again after a rebalance, while its first
delivery is still in flight, must not let its offset be committed before
that delivery ends (the full soak lost alerts this way; docs/reliability.md).

One partition, one matching article, a webhook that answers only after 40 s.
Consumer 1 reads the article and starts delivering; consumer 2 joins the
group, which revokes the partition and hands it out again; whoever holds the
article's first delivery keeps waiting while the partition (re)reads the
article. Then every consumer is SIGKILLed before the slow delivery ends. A
fresh consumer of the group must read the article again and deliver it: its
offset may not have been committed."""

import hashlib
import json
import re
import signal
import time

import harness

FAST = ["--deliver-backoff", "100ms", "--deliver-backoff-max", "1s",
        "--deliver-timeout", "60s",
        "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500",
        "-X", "auto.commit.interval.ms=300"]


def article():
    url = "https://news.test/rebalance/1"
    return {"schema": "article/v1", "id": hashlib.sha256(url.encode()).hexdigest(),
            "url": url,
            "title": "Beijing bans exports of dual-use items to military end users",
            "summary": "The commerce ministry banned exports of dual-use items and "
                       "tightened export licences for chip tools.",
            "content": "", "authors": [], "categories": [], "lang": "en",
            "published_at": "2026-01-06T08:00:00Z", "fetched_at": "2026-01-06T08:05:00Z",
            "source": {"id": "t", "name": "Test Wire", "feed_url": "https://news.test/f"}}


def assigned(proc):
    """Partitions in the consumer's last event=assigned line, or None."""
    m = re.findall(r"event=assigned partitions=(\d+)", proc.stderr_text())
    return int(m[-1]) if m else None


def test_reread_during_delivery_waits_for_it_before_committing(ctx):
    topic = ctx.topic("na.it.rebalance")
    harness.run(["kcat", "-b", ctx.brokers, "-L"], timeout=30)
    cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", topic,
                      "-p", "1"], stdin="%d\t0\t%s\t%s\n" % (
                          int(time.time()) * 1000, article()["id"],
                          json.dumps(article())), timeout=60)
    assert cp.returncode == 0, cp.stderr
    hook = ctx.webhook()
    hook.slow(40)
    group = harness.unique_topic("na-it-rebalance")
    cfg = ctx.write("consumer.json", {
        "brokers": ctx.brokers, "topic": topic, "group_id": group,
        "dlq_topic": ctx.topic("na.it.rebalance.dlq"),
        "ledger_topic": ctx.topic("na.it.rebalance.alerts"),
        "rules": ctx.src("examples", "rules.json"),
        "routes": [{"name": "hook", "url": hook.url("/json"), "format": "json"}]})
    argv = [ctx.bin("newsalert-consumer"), "--config", cfg] + FAST
    c1 = ctx.proc(argv, name="consumer-1")
    hook.wait_for(lambda reqs: len(reqs) >= 1, timeout=60, answered=False)
    reads_before = len(re.findall(r"event=match", c1.stderr_text()))
    c2 = ctx.proc(argv, name="consumer-2")
    # The rebalance: wait until both have an assignment again.
    harness.wait_until(lambda: assigned(c2) is not None and
                       "event=revoked" in c1.stderr_text(), 60, what="a rebalance")
    holder = c2 if assigned(c2) else c1
    if holder is c2:
        # Consumer 2 read the article. Consumer 1 handed the alert in flight
        # over ("pending" in the ledger): consumer 2 waits for it instead of
        # sending it a second time. Kill consumer 2 so the partition goes
        # back to consumer 1.
        harness.wait_until(lambda: "event=handover_wait" in c2.stderr_text(), 60,
                           what="consumer 2 waiting for the hand-over")
        assert len(hook.requests("/json")) == 1, "sent again by the new owner"
        c2.kill(signal.SIGKILL)
        harness.wait_until(lambda: "event=assigned partitions=1" in
                           c1.stderr_text().split("event=revoked")[-1], 60,
                           what="the partition back on consumer 1")
    # Consumer 1 reads the article again while its first delivery waits.
    harness.wait_until(lambda: len(re.findall(r"event=match", c1.stderr_text())) >
                       reads_before, 60, what="consumer 1 reading the article again")
    time.sleep(2)  # several auto-commit intervals
    c1.kill(signal.SIGKILL)
    c2.kill(signal.SIGKILL)
    assert not hook.bodies("/json", status=200), "delivered before the kill"

    hook.up()
    before = len(hook.requests("/json"))
    c3 = ctx.proc(argv + ["--exit-eof"], name="consumer-3")
    # The dead consumer's hand-over ("pending" until deliver_timeout plus a
    # slack) expires first: then consumer 3 sends the alert.
    rc = c3.wait(150)
    assert rc == 0, c3.tail()
    # Requests consumer 3 made (the killed consumers' slow requests are
    # still answered by the receiver, to sockets nobody reads).
    delivered = [r.json for r in hook.requests("/json")[before:] if r.status == 200]
    assert [b["article"]["url"] for b in delivered] == [article()["url"]], \
        "the article's offset was committed before its delivery ended: alert lost"


def committed(ctx, topic, group):
    """{partition: committed offset} of `group` on `topic` (-1001: none)."""
    cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", topic,
                      "-G", group], timeout=60)
    assert cp.returncode == 0, cp.stderr
    return {int(p): int(o) for p, o in (l.split() for l in cp.stdout.splitlines())}


def produce_article_and_other(ctx, topic, other):
    """The article into `topic` and nothing into `other` (one partition
    each): a member of the group on `other` makes the rebalance that gives
    `topic` back to the first member."""
    for t in (topic, other):
        cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", t,
                          "-p", "1"], stdin="" if t == other else "%d\t0\t%s\t%s\n" % (
                              int(time.time()) * 1000, article()["id"],
                              json.dumps(article())), timeout=60)
        assert cp.returncode == 0, cp.stderr


def test_failed_delivery_of_a_reread_record_is_dead_lettered_before_commit(ctx):
    """Regression: the record is read again after a rebalance while its first
    delivery is in flight; that delivery then fails for good (400). The alert
    must reach the dead-letter topic, and the record's offset may be
    committed only after that (it was committed with no dead-letter copy:
    the alert was lost)."""
    topic = ctx.topic("na.it.rebalance")
    other = ctx.topic("na.it.rebalance.other")
    dlq = ctx.topic("na.it.rebalance.dlq")
    produce_article_and_other(ctx, topic, other)
    hook = ctx.webhook(ok_status=400)
    hook.slow(20)
    group = harness.unique_topic("na-it-rebalance")
    base = {"brokers": ctx.brokers, "group_id": group, "dlq_topic": dlq,
            "ledger_topic": ctx.topic("na.it.rebalance.alerts"), "stories": False,
            "rules": ctx.src("examples", "rules.json"),
            "routes": [{"name": "hook", "url": hook.url("/json"), "format": "json"}]}
    c1 = ctx.proc([ctx.bin("newsalert-consumer"), "--config",
                   ctx.write("c1.json", dict(base, topic=topic))] + FAST, name="consumer-1")
    hook.wait_for(lambda reqs: len(reqs) >= 1, timeout=60, answered=False)
    reads_before = len(re.findall(r"event=match", c1.stderr_text()))
    # A member of the same group on another topic: the rebalance revokes the
    # partition from consumer 1 and hands it back to it.
    c2 = ctx.proc([ctx.bin("newsalert-consumer"), "--config",
                   ctx.write("c2.json", dict(base, topic=other))] + FAST, name="consumer-2")
    harness.wait_until(lambda: len(re.findall(r"event=match", c1.stderr_text())) >
                       reads_before, 60, what="consumer 1 reading the article again")
    assert "event=revoked" in c1.stderr_text()
    # The first delivery ends with 400: one dead-letter copy, then the commit.
    recs = harness.kcat_consume(ctx.brokers, dlq, count=1, timeout=60)
    assert recs[0]["headers"].get("error.stage") == "deliver", recs[0]["headers"]
    assert recs[0]["headers"].get("route") == "hook", recs[0]["headers"]
    harness.wait_until(lambda: committed(ctx, topic, group).get(0) == 1, 30,
                       what="the offset committed after the dead-letter copy")
    assert len(harness.kcat_consume(ctx.brokers, dlq)) == 1, "dead-lettered twice"
    assert len(hook.requests("/json")) == 1, "the alert was sent twice"
    c1.stop()
    c2.stop()


def test_retried_delivery_of_a_reread_record_is_sent_by_its_owner(ctx):
    """Regression: the record is read again after a rebalance that gave its
    partition back to the same member, while its first delivery is in
    flight (handed over: "pending" in the ledger); that delivery then fails
    with a status worth retrying (503). The job was "released" (for a new
    owner to send) and the record read again finished with it: its offset
    was committed and no member ever sent the alert. The owner keeps trying
    it instead: delivered once, then the commit."""
    topic = ctx.topic("na.it.rebalance")
    other = ctx.topic("na.it.rebalance.other")
    ledger = ctx.topic("na.it.rebalance.alerts")
    produce_article_and_other(ctx, topic, other)
    hook = ctx.webhook(ok_status=503)
    hook.slow(20)
    group = harness.unique_topic("na-it-rebalance")
    base = {"brokers": ctx.brokers, "group_id": group,
            "dlq_topic": ctx.topic("na.it.rebalance.dlq"), "ledger_topic": ledger,
            "stories": False, "rules": ctx.src("examples", "rules.json"),
            "routes": [{"name": "hook", "url": hook.url("/json"), "format": "json"}]}
    c1 = ctx.proc([ctx.bin("newsalert-consumer"), "--config",
                   ctx.write("c1.json", dict(base, topic=topic))] + FAST, name="consumer-1")
    hook.wait_for(lambda reqs: len(reqs) >= 1, timeout=60, answered=False)
    reads_before = len(re.findall(r"event=match", c1.stderr_text()))
    # A member of the same group on another topic: the rebalance revokes the
    # partition from consumer 1 (its delivery handed over) and gives it back.
    c2 = ctx.proc([ctx.bin("newsalert-consumer"), "--config",
                   ctx.write("c2.json", dict(base, topic=other))] + FAST, name="consumer-2")
    harness.wait_until(lambda: len(re.findall(r"event=match", c1.stderr_text())) >
                       reads_before, 60, what="consumer 1 reading the article again")
    assert "event=handed_over" in c1.stderr_text()
    # The slow request still gets 503; the next ones are taken.
    hook.ok_status = 200
    hook.up()
    harness.wait_until(lambda: hook.bodies("/json", status=200), 60,
                       what="the alert delivered after the 503")
    harness.wait_until(lambda: committed(ctx, topic, group).get(0) == 1, 30,
                       what="the offset committed after the delivery")
    time.sleep(2)
    assert [b["article"]["url"] for b in hook.bodies("/json", status=200)] == \
        [article()["url"]], "sent more than once"
    assert "event=handover_released" not in c1.stderr_text()
    c1.stop()
    c2.stop()


def test_alerts_queued_for_a_route_that_is_down_survive_a_rebalance(ctx):
    """Regression: a revoke dropped the alerts still queued for a route that
    was down (the new owner reads their records again) but finished their
    records, so their offsets were committed and nobody sent them (the
    soak lost 9 alerts this way)."""
    topic = ctx.topic("na.it.rebalance")
    arts = []
    for n, title in enumerate(["Beijing bans exports of dual-use items to military users",
                               "Washington adds chip toolmakers to the export entity list",
                               "Tokyo tightens export licences for chipmaking equipment"]):
        a = dict(article(), title=title, url="https://news.test/rebalance/q%d" % n)
        a["id"] = hashlib.sha256(a["url"].encode()).hexdigest()
        arts.append(a)
    cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", topic,
                      "-p", "1"], stdin="".join("%d\t0\t%s\t%s\n" % (
                          int(time.time()) * 1000, a["id"], json.dumps(a)) for a in arts),
                     timeout=60)
    assert cp.returncode == 0, cp.stderr
    hook = ctx.webhook()
    hook.down(503)
    group = harness.unique_topic("na-it-rebalance")
    cfg = ctx.write("consumer.json", {
        "brokers": ctx.brokers, "topic": topic, "group_id": group,
        "dlq_topic": ctx.topic("na.it.rebalance.dlq"),
        "ledger_topic": ctx.topic("na.it.rebalance.alerts"),
        "retry_topic": ctx.topic("na.it.rebalance.retry"),
        "rules": ctx.src("examples", "rules.json"), "stories": False,
        # kept in memory (no parking), dropped at the revoke after 1 s
        "park_after": "0", "revoke_timeout": "1s", "deliver_max_attempts": 1000,
        "routes": [{"name": "hook", "url": hook.url("/json"), "format": "json",
                    "digest_threshold": 0}]})
    argv = [ctx.bin("newsalert-consumer"), "--config", cfg] + FAST
    c1 = ctx.proc(argv, name="consumer-1")
    harness.wait_until(lambda: len(re.findall(r"event=match", c1.stderr_text())) >= 3,
                       60, what="the articles read")
    hook.wait_for(lambda reqs: len(reqs) >= 1, timeout=60)
    c2 = ctx.proc(argv, name="consumer-2")
    harness.wait_until(lambda: re.search(r"event=handed_over dropped=[1-9]",
                                         c1.stderr_text() + c2.stderr_text()), 60,
                       what="queued alerts dropped at a revoke")
    harness.wait_until(lambda: "event=started" in c2.stderr_text(), 60, what="c2 up")
    time.sleep(2)
    c2.kill(signal.SIGTERM)
    assert c2.wait(60) == 0, c2.tail()
    hook.up()
    harness.wait_until(lambda: {r.json["article"]["url"] for r in hook.requests("/json")
                                if r.status == 200} == {a["url"] for a in arts}, 90,
                       what="every alert sent after the rebalance")
    c1.stop()


def test_alerts_taken_but_not_yet_recorded_hold_the_revoke(ctx):
    """Regression (the soak, a rebalance during the broker outage): a member
    whose route took alerts whose ledger records the broker had not yet
    confirmed let its partitions go after revoke_timeout; the new owner
    caught up on a ledger without those records and sent them again. Here
    the ledger records cannot be written for several seconds (fault point
    ledger_record), far longer than revoke_timeout. Two partitions, one
    alert each: consumer 1 sends both, consumer 2 joins and takes one
    partition (range assignment), whichever it is."""
    topic = ctx.topic("na.it.rebalance.rec")
    lines = []
    for p in range(2):
        a = article()
        a["url"] = "https://news.test/rebalance/rec/%d" % p
        a["id"] = hashlib.sha256(a["url"].encode()).hexdigest()
        a["title"] = "Export ban %d: Beijing bans dual-use items to military end users" % p
        lines.append("%d\t%d\t%s\t%s\n" % (int(time.time()) * 1000, p, a["id"],
                                            json.dumps(a)))
    cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", topic,
                      "-p", "2"], stdin="".join(lines), timeout=60)
    assert cp.returncode == 0, cp.stderr
    hook = ctx.webhook()
    # Both alerts in flight before the first record fails (a failing write
    # pauses consumption).
    hook.latency(0.5)
    # both alerts out before their records (a route's default is one)
    cfg = consumer_config(ctx, topic, hook, revoke_timeout="1s", write_stall="60s",
                          route={"max_in_flight": 2})
    argv = [ctx.bin("newsalert-consumer"), "--config", cfg] + FAST
    c1 = ctx.proc(argv, name="consumer-1", env={"NEWSALERT_FAULTS": "ledger_record:12"})
    hook.wait_count(2, 60)
    harness.wait_until(lambda: re.search(r"event=hit point=\"?ledger_record",
                                         c1.stderr_text()), 30, what="a refused record")
    hook.latency(0)
    c2 = ctx.proc(argv, name="consumer-2")
    harness.wait_until(lambda: assigned(c2) and "event=handed_over" in c1.stderr_text(),
                       90, what="the rebalance")
    # Consumer 1 got every confirmation at last (the fault spent); the new
    # owner found the partition finished, or its alert in the ledger.
    harness.wait_until(lambda: re.search(r"event=hit point=\"?ledger_record\"? left=0",
                                         c1.stderr_text()), 90, what="the fault to end")
    time.sleep(5)
    ids = [r.header("webhook-id") for r in hook.requests("/json")]
    assert len(ids) == 2 == len(set(ids)), "sent %d times for 2 alerts" % len(ids)
    c2.stop()
    c1.stop()

def consumer_config(ctx, topic, hook, **extra):
    """A consumer config of a new group on @topic, one json route to @hook
    (its route keys in route=), written to consumer.json; returns the path."""
    route = {"name": "hook", "url": hook.url("/json"), "format": "json",
             "digest_threshold": 0}
    route.update(extra.pop("route", {}))
    cfg = {"brokers": ctx.brokers, "topic": topic,
           "group_id": harness.unique_topic("na-it-rebalance"),
           "dlq_topic": ctx.topic("na.it.rebalance.dlq"),
           "ledger_topic": ctx.topic("na.it.rebalance.alerts"),
           "rules": ctx.src("examples", "rules.json"), "stories": False,
           "routes": [route]}
    cfg.update(extra)
    return ctx.write("consumer.json", cfg)


def one_article_topic(ctx, name):
    topic = ctx.topic(name)
    cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", topic,
                      "-p", "1"], stdin="%d\t0\t%s\t%s\n" % (
                          int(time.time()) * 1000, article()["id"],
                          json.dumps(article())), timeout=60)
    assert cp.returncode == 0, cp.stderr
    return topic


def test_an_alert_sent_by_a_member_cut_off_is_not_sent_again_by_the_next_owner(ctx):
    """Regression (the soak, a broker outage longer than the group session):
    a member sent alerts while it was cut off from the broker, so their
    ledger records waited in its producer; the group gave its partitions to
    another member, which read the records again, found nothing in the
    ledger and sent the alerts a second time, a few seconds before the
    first member got through and wrote its records. Here the first member
    is frozen (SIGSTOP) while the receiver has its request, so its session
    expires with the alert sent and unrecorded; it is thawed once the new
    owner has the partition. The new owner must wait for the record
    (handover_grace), not send the alert again."""
    topic = one_article_topic(ctx, "na.it.rebalance.cut")
    hook = ctx.webhook()
    hook.slow(3)  # answers 200 while the sender is frozen
    cfg = consumer_config(ctx, topic, hook, handover_grace="60s")
    # deliver_timeout far past the freeze: the answer is read when thawed.
    argv = [ctx.bin("newsalert-consumer"), "--config", cfg] + FAST + [
        "--deliver-timeout", "120s"]
    c1 = ctx.proc(argv, name="consumer-1")
    hook.wait_for(lambda reqs: len(reqs) >= 1, timeout=60, answered=False)
    c1.kill(signal.SIGSTOP)
    try:
        c2 = ctx.proc(argv, name="consumer-2")
        harness.wait_until(lambda: assigned(c2) == 1, 90,
                           what="the partition on consumer 2 (consumer 1's session "
                                "expired)")
        # Without a hold the alert goes out again at once.
        harness.wait_until(lambda: "event=handover_hold" in c2.stderr_text() or
                           len(hook.requests("/json")) > 1, 30,
                           what="consumer 2 holding the alert (or sending it again)")
        assert len(hook.requests("/json")) == 1, "sent again by the new owner"
        assert "event=handover_unclean" in c2.stderr_text(), c2.tail()
    finally:
        c1.kill(signal.SIGCONT)
    # Consumer 1 reads its answer and writes the record; consumer 2 learns it.
    harness.wait_until(lambda: re.search(r"event=handover_done \S+ alert=\S+ "
                                         r"outcome=sent", c2.stderr_text()), 60,
                       what="consumer 2 finding consumer 1's record")
    time.sleep(1)
    assert len(hook.requests("/json")) == 1, "sent %d times" % len(hook.requests("/json"))
    assert hook.requests("/json")[0].status == 200
    c2.stop()
    c1.stop()


def test_a_partition_let_go_cleanly_is_not_held(ctx):
    """The hold costs only an unclean hand-over: a member stopped with
    SIGTERM marks its partition released (every alert it sent recorded),
    so the next owner sends the alert the first could not deliver at once,
    not after handover_grace."""
    topic = one_article_topic(ctx, "na.it.rebalance.clean")
    hook = ctx.webhook()
    hook.down()
    cfg = consumer_config(ctx, topic, hook, handover_grace="120s", drain_timeout="1s")
    argv = [ctx.bin("newsalert-consumer"), "--config", cfg] + FAST + [
        "--deliver-backoff", "5s", "--deliver-backoff-max", "5s"]
    c1 = ctx.proc(argv, name="consumer-1")
    hook.wait_for(lambda reqs: len(reqs) >= 1, timeout=60)
    c1.kill(signal.SIGTERM)
    assert c1.wait(60) == 0, c1.tail()
    hook.up()
    c2 = ctx.proc(argv, name="consumer-2")
    harness.wait_until(lambda: assigned(c2) == 1, 90, what="the partition on consumer 2")
    t0 = time.monotonic()
    harness.wait_until(lambda: hook.bodies("/json", status=200), 60,
                       what="the alert sent by consumer 2")
    assert time.monotonic() - t0 < 30, "held %.0f s" % (time.monotonic() - t0)
    assert "event=handover_unclean" not in c2.stderr_text(), c2.tail()
    c2.stop()


if __name__ == "__main__":
    harness.main(globals(), timeout=400)
