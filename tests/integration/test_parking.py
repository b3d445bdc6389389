#!/usr/bin/env python3
"""A route that stays down never delays another (real broker).

Regression: a failing route probed one alert at a time through that alert's
whole backoff, and the consumer resumed its partitions only once the failing
route's queue fell below half of its bound: with the defaults about two days
in which the healthy routes received nothing new. Now a route that has been
failing for park_after is parked: its alerts wait in order in retry_topic
(Kafka, not memory), the articles are committed, and the healthy route gets
every alert within its usual latency. When the parked route answers again,
its alerts go out in the order they were raised, none twice; a parked alert
older than park_max_age goes to the dead-letter topic instead."""

import hashlib
import json
import signal
import time

import harness

FAST = ["--deliver-backoff", "100ms", "--deliver-backoff-max", "1s",
        "--deliver-max-attempts", "1000", "--park-after", "2s",
        "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500",
        "-X", "auto.commit.interval.ms=300"]

PLACES = ["Aomori", "Brno", "Cusco", "Dakar", "Esbjerg", "Fukuoka", "Gdansk", "Hilo",
          "Iquitos", "Jaffna", "Kaunas", "Lagos", "Mombasa", "Nantes", "Oulu", "Porto",
          "Quito", "Rouen", "Sapporo", "Tromso", "Uppsala", "Varna", "Wuhan", "Xining",
          "Yerevan", "Zadar", "Aarhus", "Bergen", "Cork", "Dundee"]


def article(n):
    place = PLACES[n % len(PLACES)]
    url = "https://news.test/parking/%d" % n
    t = "2026-05-%02dT08:00:00Z" % (1 + n % 28)
    return {"schema": "article/v1", "id": hashlib.sha256(url.encode()).hexdigest(),
            "url": url,
            "title": "Customs in %s seize banned exports of chip tools, case %d" % (place, n),
            "summary": "The %s port authority said export controls barred the shipment "
                       "of lithography parts (case %d)." % (place, n),
            "content": "", "authors": [], "categories": [], "lang": "en",
            "published_at": t, "fetched_at": t,
            "source": {"id": "t", "name": "Test Wire", "feed_url": "https://news.test/f"}}


def produce(ctx, topic, arts, partitions=None):
    lines = "".join("%d\t-1\t%s\t%s\n" % (int(time.time()) * 1000, a["id"], json.dumps(a))
                    for a in arts)
    argv = [ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", topic]
    if partitions:
        argv += ["-p", str(partitions)]
    cp = harness.run(argv, stdin=lines, timeout=60)
    assert cp.returncode == 0, cp.stderr


def committed_total(ctx, topic, group):
    cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", topic,
                      "-G", group], timeout=60)
    assert cp.returncode == 0, cp.stderr
    return sum(max(0, int(l.split()[1])) for l in cp.stdout.splitlines())


def config(ctx, topic, up, down, **extra):
    """A consumer config of a new group on @topic with two json routes, "up"
    and "down" (its extra route keys in down_route=)."""
    down_route = {"name": "down", "url": down.url("/json"), "format": "json",
                  "digest_threshold": 0}
    down_route.update(extra.pop("down_route", {}))
    cfg = {"brokers": ctx.brokers, "topic": topic,
           "group_id": harness.unique_topic("na-it-park"),
           "dlq_topic": ctx.topic("na.it.park.dlq"),
           "ledger_topic": ctx.topic("na.it.park.alerts"),
           "retry_topic": ctx.topic("na.it.park.retry"),
           "rules": ctx.src("examples", "rules.json"), "stories": False,
           "routes": [{"name": "up", "url": up.url("/json"), "format": "json",
                       "digest_threshold": 0}, down_route]}
    cfg.update(extra)
    return cfg


def setup(ctx, extra=None):
    topic = ctx.topic("na.it.park")
    produce(ctx, topic, [], partitions=2)
    up = ctx.webhook()
    down = ctx.webhook()
    down.down(503)
    # A small bound: without parking, the down route's queue fills it at
    # once and every route stops. One request at a time on the down route:
    # the receiver sees the order in which they are sent.
    cfg = config(ctx, topic, up, down, max_pending=5,
                 down_route={"rate_per_s": 20, "burst": 1})
    group = cfg["group_id"]
    cfg.update(extra or {})
    c = ctx.proc([ctx.bin("newsalert-consumer"), "--config",
                  ctx.write("consumer.json", cfg)] + FAST, name="consumer")
    harness.wait_until(lambda: "event=assigned" in c.stderr_text(), 60, what="assigned")
    return topic, group, cfg, up, down, c


def test_a_route_that_stays_down_delays_no_other_and_catches_up_in_order(ctx):
    topic, group, cfg, up, down, c = setup(ctx)
    arts = [article(n) for n in range(30)]
    latencies = []
    for a in arts:
        t0 = time.monotonic()
        produce(ctx, topic, [a])
        r = up.wait_for(lambda reqs: any(q.json and q.json["article"]["url"] == a["url"]
                                         for q in reqs), 30, what="alert of %s" % a["url"])
        latencies.append(time.monotonic() - t0)
        time.sleep(0.2)
    assert max(latencies) < 10, latencies
    assert "event=route_parked route=\"down\"" in c.stderr_text()
    # The articles are committed although the down route has none of them.
    harness.wait_until(lambda: committed_total(ctx, topic, group) == len(arts), 60,
                       what="every article committed while the route is down")
    assert not [r for r in down.requests("/json") if r.status == 200]

    down.up()
    harness.wait_until(lambda: len([r for r in down.requests("/json")
                                    if r.status == 200]) >= len(arts), 90,
                       what="the down route catching up")
    time.sleep(2)
    got = [r.json["article"]["url"] for r in down.requests("/json") if r.status == 200]
    assert len(got) == len(set(got)) == len(arts), "sent twice or missing: %s" % got
    # In the order they were raised (one partition of the articles topic at a
    # time may interleave with the other: compare within each partition).
    parts = {}
    for rec in harness.kcat_consume(ctx.brokers, topic):
        parts.setdefault(rec["partition"], []).append(json.loads(rec["value"])["url"])
    for p, urls in parts.items():
        assert [u for u in got if u in urls] == urls, (p, urls, got)
    harness.wait_until(lambda: "event=route_unparked route=\"down\"" in c.stderr_text(),
                       30, what="the route unparked")
    # Unparked: a new alert goes straight out.
    produce(ctx, topic, [article(99)])
    down.wait_for(lambda reqs: any(q.json and q.json["article"]["url"].endswith("/99")
                                   for q in reqs if q.status == 200), 30, what="direct")
    ups = [r.json["article"]["url"] for r in up.requests("/json") if r.status == 200]
    assert len(ups) == len(set(ups)), "the healthy route got an alert twice"
    c.stop()


def test_parked_alerts_older_than_park_max_age_go_to_the_dead_letter_topic(ctx):
    topic, group, cfg, up, down, c = setup(ctx, {"park_max_age": "4s"})
    arts = [article(n) for n in range(5)]
    produce(ctx, topic, arts)
    up.wait_count(len(arts), 60, path="/json")
    harness.wait_until(lambda: "event=route_parked" in c.stderr_text(), 30, what="parked")
    recs = harness.kcat_consume(ctx.brokers, cfg["dlq_topic"], count=len(arts), timeout=60)
    assert {r["headers"].get("error.stage") for r in recs} == {"park_expired"}, recs
    assert {r["headers"].get("route") for r in recs} == {"down"}, recs
    assert {json.loads(r["value"])["article"]["url"] for r in recs} == \
        {a["url"] for a in arts}
    # Nothing left in the retry topic, the route still down: it stays parked
    # (it unparked and parked again every 2 s, in the log and the gauge).
    time.sleep(6)
    err = c.stderr_text()
    assert err.count("event=route_parked route=\"down\"") == 1, \
        "parked %d times" % err.count("event=route_parked route=\"down\"")
    assert "event=route_unparked" not in err
    down.up()
    time.sleep(4)
    assert not [r for r in down.requests("/json") if r.status == 200], \
        "expired alerts were sent anyway"
    c.stop()


def test_an_alert_parked_twice_is_sent_once(ctx):
    """Regression: the reader of retry_topic checked the ledger but not the
    deliveries on their way, so an alert parked twice (a member killed
    after parking it, before committing its article, and the member that
    read the article next parking it again) was sent twice, or three
    times, when the route came back (the soak saw it)."""
    topic, group, cfg, up, down, c = setup(ctx)
    art = article(7)
    produce(ctx, topic, [art])
    up.wait_for(lambda reqs: any(q.status == 200 for q in reqs), 30, what="the up route")
    harness.wait_until(lambda: "event=route_parked route=\"down\"" in c.stderr_text(), 30,
                       what="the down route parked")
    recs = harness.kcat_consume(ctx.brokers, cfg["retry_topic"], count=1, timeout=60)
    c.stop()
    # The second copy, as the next member writes it.
    r = recs[0]
    cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t",
                      cfg["retry_topic"]],
                     stdin="%d\t%d\t%s\t%s\n" % (int(time.time()) * 1000, r["partition"],
                                                  r["key"], r["value"]), timeout=60)
    assert cp.returncode == 0, cp.stderr
    down.up()
    down.latency(1.0)  # the first copy is still on its way when the second is read
    c2 = ctx.proc([ctx.bin("newsalert-consumer"), "--config",
                   ctx.write("consumer.json", cfg)] + FAST, name="consumer-2")
    harness.wait_until(lambda: committed_total(ctx, cfg["retry_topic"], group + ".retry")
                       == 2, 60, what="both parked records committed")
    time.sleep(2)
    sent = [q for q in down.requests("/json") if q.status == 200]
    assert [q.json["article"]["url"] for q in sent] == [art["url"]], \
        "the parked alert was sent %d times" % len(sent)
    assert "event=already_in_flight route=\"down\"" in c2.stderr_text()
    assert c2.stop() == 0


def test_a_parked_alert_is_not_sent_again_by_the_member_that_reads_its_article(ctx):
    """Regression (the soak): a member parked alerts (its route was down)
    and was killed before it committed their articles; the group split the
    partitions, so one member read an article again, found nothing in the
    ledger and sent its alert, while the member holding the retry topic's
    partition sent the parked copy. Now a parked alert is marked "parked"
    in the ledger before its article finishes, and a member that reads the
    article again leaves the alert to the retry topic's reader. Two
    articles on two partitions, two members afterwards: whichever member
    reads the parked copies, one of the articles is on the other one."""
    topic = ctx.topic("na.it.park")
    produce(ctx, topic, [], partitions=2)
    arts = [article(40), article(41)]
    lines = "".join("%d\t%d\t%s\t%s\n" % (int(time.time()) * 1000, p, a["id"],
                                           json.dumps(a)) for p, a in enumerate(arts))
    cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", topic],
                     stdin=lines, timeout=60)
    assert cp.returncode == 0, cp.stderr
    up = ctx.webhook()
    down = ctx.webhook()
    down.down(503)
    cfg = config(ctx, topic, up, down, handover_grace="2s")
    group = cfg["group_id"]
    argv = [ctx.bin("newsalert-consumer"), "--config", ctx.write("consumer.json", cfg)]
    # The first member commits nothing: its articles are read again.
    c1 = ctx.proc(argv + FAST + ["-X", "auto.commit.interval.ms=3600000"], name="consumer-1")
    harness.wait_until(lambda: len(harness.kcat_consume(ctx.brokers, cfg["retry_topic"]))
                       >= 2, 90, what="both alerts parked")
    up.wait_count(2, 30)
    time.sleep(2)  # the ledger records of the parking
    c1.kill(signal.SIGKILL)
    down.up()
    # Their first ledger writes are refused (and retried for a few seconds):
    # neither learns from the ledger in time that the other sent an alert,
    # as in the soak, where the fault points of a new member did the same.
    env = {"NEWSALERT_FAULTS": "ledger_record:4"}
    c2 = ctx.proc(argv + FAST, name="consumer-2", env=env)
    c3 = ctx.proc(argv + FAST, name="consumer-3", env=env)

    def sent():
        return [q.json["article"]["url"] for q in down.requests("/json")
                if q.status == 200]
    harness.wait_until(lambda: set(sent()) == {a["url"] for a in arts}, 90,
                       what="both parked alerts sent")
    harness.wait_until(lambda: committed_total(ctx, topic, group) == 2, 60,
                       what="both articles committed")
    time.sleep(3)
    assert sorted(sent()) == sorted(a["url"] for a in arts), \
        "sent %s" % sent()
    assert len(up.requests("/json")) == 2, "the up route got an alert again"
    c2.stop()
    c3.stop()


if __name__ == "__main__":
    harness.main(globals(), timeout=400)
