"""The prefetch refill on a real broker (common/kafka.c, na_kafka_refill).

librdkafka 2.0 stops fetching once the consumer queue holds
queued.max.messages.kbytes and looks again only on its broker thread's next
pass, up to a second later. The daemon and replay wake it when the queue
they filled is down to half (a metadata request). A backlog several times
the bound (1 MiB here, 12 MB of articles in 3 partitions) is read by both:
every record exactly once, offsets committed to the end, and refills sent
(each program's summary line counts them). Without the refill both read
the same records, a second per bound's worth later: how fast is
bench/run pipeline's to say (docs/benchmarks.md), not a test's."""

import hashlib
import json
import re
import time

import harness

ARTICLES = 2400
PARTITIONS = 3
BOUND_KB = 1024
FILLER = ("The port authority said shipping volumes were steady this quarter, "
          "with container traffic up slightly and bulk cargo flat. ") * 36


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def backlog(ctx):
    topic = ctx.topic("na.it.prefetch")
    t0 = int(time.time()) - 86400
    rows = []
    for i in range(ARTICLES):
        url = "https://news.test/prefetch/%d" % i
        ts = t0 + i * 30
        art = {"schema": "article/v1", "id": hashlib.sha256(url.encode()).hexdigest(),
               "url": url, "title": "Harbour report %d" % i, "summary": FILLER,
               "content": "", "authors": [], "categories": [], "lang": "en",
               "published_at": iso(ts), "fetched_at": iso(ts + 60),
               "source": {"id": "prefetch", "name": "Prefetch Wire",
                          "feed_url": "https://news.test/feed"}}
        rows.append("%d\t%d\t%s\t%s" % (ts * 1000, i % PARTITIONS, art["id"],
                                        json.dumps(art, separators=(",", ":"))))
    assert len(rows[0]) > 4000  # a backlog of about 12 times the bound
    cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", topic,
                      "-p", str(PARTITIONS)], stdin="\n".join(rows) + "\n", timeout=120)
    assert cp.returncode == 0, cp.stderr
    return topic


def config(ctx, topic, group):
    return ctx.write(group + ".json", {
        "brokers": ctx.brokers, "topic": topic, "group_id": group,
        "dlq_topic": topic + ".dlq", "ledger_topic": topic + ".alerts",
        "rules": ctx.src("examples", "rules.json"), "routes": [], "stories": False})


def summary(proc, event):
    m = re.findall(r"comp=%s event=summary (.*)" % event, proc.stderr_text())
    assert m, "no summary line; stderr tail:\n" + proc.tail()
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m[-1])}


def test_replay_refills_a_bounded_prefetch_and_reads_every_record_once(ctx):
    topic = backlog(ctx)
    cfg = config(ctx, topic, "na-it-prefetch-replay")
    p = ctx.proc([ctx.bin("newsalert-consumer"), "replay", "--config", cfg,
                  "--from", "beginning", "--to", "end", "--dry-run", "--progress", "none",
                  "-X", "queued.max.messages.kbytes=%d" % BOUND_KB])
    assert p.wait(120) == 0, p.tail()
    s = summary(p, "replay")
    assert s["read"] == ARTICLES and s["articles"] == ARTICLES, s
    assert s["refills"] > 0, s


def test_daemon_refills_a_bounded_prefetch_and_commits_to_the_end(ctx):
    topic = backlog(ctx)
    group = "na-it-prefetch-daemon"
    cfg = config(ctx, topic, group)
    p = ctx.proc([ctx.bin("newsalert-consumer"), "--config", cfg, "--exit-eof",
                  "-X", "queued.max.messages.kbytes=%d" % BOUND_KB])
    assert p.wait(180) == 0, p.tail()
    s = summary(p, "consumer")
    assert s["consumed"] == ARTICLES and s["poison"] == 0, s
    assert s["refills"] > 0, s
    cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", topic,
                      "-G", group], timeout=60)
    assert cp.returncode == 0, cp.stderr
    committed = dict(tuple(int(x) for x in line.split()) for line in cp.stdout.splitlines())
    assert sum(committed.values()) == ARTICLES, committed


def test_daemon_knows_the_end_of_a_backlog_from_the_fetch_that_brought_it(ctx):
    """--exit-eof ends when the last records of every partition are read: the
    fetch that brought them named the partition's end (its high watermark).
    librdkafka's end-of-partition event comes only after a further fetch,
    which the broker holds for fetch.wait.max.ms (500 ms by default) when
    nothing is new. The summary counts the partitions whose end the daemon
    learnt from their last record (ends=): every one of the three here.
    How much sooner the daemon ends is bench/run pipeline's to say
    (docs/benchmarks.md "The end of a backlog"), not a test's."""
    topic = ctx.topic("na.it.prefetch.end")
    t0 = int(time.time()) - 86400
    rows = []
    for i in range(90):
        url = "https://news.test/end/%d" % i
        art = {"schema": "article/v1", "id": hashlib.sha256(url.encode()).hexdigest(),
               "url": url, "title": "Harbour note %d" % i, "summary": FILLER[:400],
               "content": "", "authors": [], "categories": [], "lang": "en",
               "published_at": iso(t0 + i), "fetched_at": iso(t0 + i + 60),
               "source": {"id": "end", "name": "End Wire",
                          "feed_url": "https://news.test/feed"}}
        rows.append("%d\t%d\t%s\t%s" % ((t0 + i) * 1000, i % PARTITIONS, art["id"],
                                        json.dumps(art, separators=(",", ":"))))
    cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", topic,
                      "-p", str(PARTITIONS)], stdin="\n".join(rows) + "\n", timeout=120)
    assert cp.returncode == 0, cp.stderr
    group = harness.unique_topic("na-it-prefetch-end")
    p = ctx.proc([ctx.bin("newsalert-consumer"), "--config", config(ctx, topic, group),
                  "--exit-eof"])
    assert p.wait(120) == 0, p.tail()
    s = summary(p, "consumer")
    assert s["consumed"] == 90 and s["poison"] == 0, s
    assert s["ends"] == PARTITIONS, s
    cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", topic,
                      "-G", group], timeout=60)
    assert cp.returncode == 0, cp.stderr
    committed = dict(tuple(int(x) for x in line.split()) for line in cp.stdout.splitlines())
    assert committed == {0: 30, 1: 30, 2: 30}, committed

if __name__ == "__main__":
    harness.main(globals())
