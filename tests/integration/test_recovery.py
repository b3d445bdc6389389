#!/usr/bin/env python3
"""Work the consumer could not finish is tried again, never finished without
its result (real broker).

- A ledger the broker refuses to write (its topic takes no record that
  large) keeps the records unfinished: consumption pauses, /readyz says so
  after write_stall, and once the topic takes the records again every
  ledger write goes through, every offset is committed and no alert is sent
  twice. (Before, one failed ledger write left its record unfinished until
  a restart: nothing after it was committed, and the restart sent the alert
  again.)
- Out of memory while classifying a record, or while dead-lettering a
  poison record (fault points, docs/testing.md): the record is processed
  again and raises its alert, or reaches the dead-letter topic; before, the
  record was finished without either."""

import hashlib
import json
import time
import urllib.error
import urllib.request

import harness

FAST = ["--deliver-backoff", "100ms", "--deliver-backoff-max", "1s",
        "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500",
        "-X", "auto.commit.interval.ms=300"]


def http_get(url, timeout=5):
    """(status, body text) without raising on non-2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8")
    except (urllib.error.URLError, ConnectionError):
        return 0, ""


def article(n, title):
    url = "https://news.test/recovery/%d" % n
    return {"schema": "article/v1", "id": hashlib.sha256(url.encode()).hexdigest(),
            "url": url, "title": title,
            "summary": "The commerce ministry announced the measure on %d January." % n,
            "content": "", "authors": [], "categories": [], "lang": "en",
            "published_at": "2026-01-%02dT08:00:00Z" % n,
            "fetched_at": "2026-01-%02dT08:05:00Z" % n,
            "source": {"id": "t", "name": "Test Wire", "feed_url": "https://news.test/f"}}


# Distinct events (stories off anyway): each raises one export_controls alert.
TITLES = ["Beijing bans exports of dual-use items to military end users",
          "Washington adds chip toolmakers to the export control entity list",
          "Tokyo tightens export licences for semiconductor equipment"]


def produce(ctx, topic, records):
    lines = "".join("%d\t0\t%s\t%s\n" % (int(time.time()) * 1000, k, v)
                    for k, v in records)
    cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", topic,
                      "-p", "1"], stdin=lines, timeout=60)
    assert cp.returncode == 0, cp.stderr


def committed(ctx, topic, group):
    cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", topic,
                      "-G", group], timeout=60)
    assert cp.returncode == 0, cp.stderr
    return {int(p): int(o) for p, o in (l.split() for l in cp.stdout.splitlines())}


def config(ctx, topic, group, hook, **extra):
    cfg = {"brokers": ctx.brokers, "topic": topic, "group_id": group,
           "dlq_topic": extra.pop("dlq_topic", ctx.topic("na.it.recovery.dlq")),
           "ledger_topic": extra.pop("ledger_topic", ctx.topic("na.it.recovery.alerts")),
           "rules": ctx.src("examples", "rules.json"), "stories": False,
           # Several alerts in flight at once (a route's default is one).
           "routes": [{"name": "hook", "url": hook.url("/json"), "format": "json",
                       "max_in_flight": 8}]}
    cfg.update(extra)
    return ctx.write("consumer.json", cfg)


def test_refused_ledger_writes_are_retried_and_reported_not_left_unfinished(ctx):
    topic = ctx.topic("na.it.recovery")
    ledger = ctx.topic("na.it.recovery.alerts")
    arts = [article(i + 1, t) for i, t in enumerate(TITLES)]
    produce(ctx, topic, [(a["id"], json.dumps(a)) for a in arts])
    # A ledger topic that refuses every record (each is > 200 bytes).
    cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", ledger,
                      "-p", "1", "-c", "cleanup.policy=compact",
                      "-c", "max.message.bytes=200"], stdin="", timeout=60)
    assert cp.returncode == 0, cp.stderr
    hook = ctx.webhook()
    group = harness.unique_topic("na-it-recovery")
    port = harness.free_port()
    cfg = config(ctx, topic, group, hook, ledger_topic=ledger, write_stall="2s",
                 http_listen="127.0.0.1:%d" % port)
    c = ctx.proc([ctx.bin("newsalert-consumer"), "--config", cfg] + FAST, name="consumer")
    hook.wait_count(len(arts), 60, path="/json")
    status, body = harness.wait_until(
        lambda: (lambda r: r if r[0] == 503 and "ledger" in r[1] else None)(
            http_get("http://127.0.0.1:%d/readyz" % port)), 60,
        what="/readyz 503 naming the failing writes")
    assert "paused" in body, body
    time.sleep(3)  # retries go on meanwhile; nothing may be committed
    assert committed(ctx, topic, group).get(0, -1001) <= 0, \
        "offsets committed while the ledger writes had not succeeded"
    assert "event=retry_scheduled kind=ledger" in c.stderr_text()

    cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", ledger,
                      "-A", "-c", "cleanup.policy=compact",
                      "-c", "max.message.bytes=1048576"], timeout=60)
    assert cp.returncode == 0, cp.stderr
    harness.wait_until(lambda: committed(ctx, topic, group).get(0) == len(arts), 90,
                       what="every offset committed once the ledger takes records")
    harness.wait_until(lambda: http_get("http://127.0.0.1:%d/readyz" % port)[0] == 200,
                       30, what="/readyz 200 again")
    recs = harness.ledger_records(ctx.brokers, ledger, count=len(arts), timeout=30)
    assert sorted(r["key"] for r in recs) == sorted(
        b["id"] for b in hook.bodies("/json")), recs
    assert len(hook.requests("/json")) == len(arts), "an alert was sent twice"
    c.stop()


def test_out_of_memory_in_classify_or_dead_letter_processes_the_record_again(ctx):
    topic = ctx.topic("na.it.recovery")
    dlq = ctx.topic("na.it.recovery.dlq")
    arts = [article(i + 1, t) for i, t in enumerate(TITLES)]
    records = [("poison", '{"not": "an article"}')]
    records += [(a["id"], json.dumps(a)) for a in arts]
    produce(ctx, topic, records)
    hook = ctx.webhook()
    group = harness.unique_topic("na-it-recovery")
    cfg = config(ctx, topic, group, hook, dlq_topic=dlq)
    c = ctx.proc([ctx.bin("newsalert-consumer"), "--config", cfg, "--exit-eof"] + FAST,
                 name="consumer", env={"NEWSALERT_FAULTS": "classify:2,dlq_alloc:1"})
    assert c.wait(120) == 0, c.tail()
    err = c.stderr_text()
    assert "event=hit point=\"classify\"" in err and "point=\"dlq_alloc\"" in err, \
        "the fault points were not reached"
    assert "event=retry_scheduled kind=record" in err
    urls = sorted(b["article"]["url"] for b in hook.bodies("/json"))
    assert urls == sorted(a["url"] for a in arts), urls
    recs = harness.kcat_consume(ctx.brokers, dlq)
    assert [r["headers"].get("error.stage") for r in recs] == ["decode"], recs
    assert committed(ctx, topic, group).get(0) == len(records)


def test_workers_never_let_an_offset_pass_an_unfinished_article(ctx):
    """With worker threads, later articles finish before an earlier one
    whose classification failed (it is processed again after a backoff):
    the committed offset must stay below that article until its alert was
    delivered (docs/delivery.md invariant 1, with workers)."""
    topic = ctx.topic("na.it.recovery")
    arts = [article(i + 1, "%s, case %d" % (TITLES[i % 3], i)) for i in range(12)]
    produce(ctx, topic, [(a["id"], json.dumps(a)) for a in arts])
    hook = ctx.webhook()
    group = harness.unique_topic("na-it-recovery")
    cfg = config(ctx, topic, group, hook, workers=2)
    c = ctx.proc([ctx.bin("newsalert-consumer"), "--config", cfg] + FAST, name="consumer",
                 env={"NEWSALERT_FAULTS": "classify:1"})
    first = arts[0]["url"]
    seen_before = []

    def first_delivered():
        return any(r.json["article"]["url"] == first for r in hook.requests("/json")
                   if r.status == 200)
    deadline = time.time() + 60
    while not first_delivered():
        assert time.time() < deadline, "the first article's alert never came"
        got = committed(ctx, topic, group).get(0, -1001)
        if not first_delivered():
            seen_before.append(got)
        time.sleep(0.1)
    assert "point=\"classify\"" in c.stderr_text(), "the fault point was not reached"
    assert seen_before and max(seen_before) <= 0, \
        "offset committed past an unfinished article: %s" % sorted(set(seen_before))
    harness.wait_until(lambda: committed(ctx, topic, group).get(0) == len(arts), 60,
                       what="everything committed once it is done")
    assert len(hook.requests("/json")) >= len(arts)
    c.stop()


if __name__ == "__main__":
    harness.main(globals(), timeout=300)
