"""What the producer writes to Kafka, read back with kcat from the real
broker: article times and record timestamps (DESIGN.md, article/v1), and
article ids of items that share one document (live blogs).
"""

import datetime
import email.utils
import json
import re
import time

import harness

DAY_MS = 24 * 3600 * 1000
# news.articles retention (README, "Topics"): 30 days.
RETENTION_MS = 30 * DAY_MS

ITEM = """<item><title>{title}</title><link>{link}</link><guid>{guid}</guid>
{date}<description>{text}</description></item>
"""


def rss(base, items):
    return ("<?xml version=\"1.0\"?>\n<rss version=\"2.0\"><channel><title>Desk</title>"
            "<link>%s/</link>\n%s</channel></rss>\n" % (base, "".join(items)))


def item(title, link, guid, text, pub=None):
    date = "<pubDate>%s</pubDate>" % pub if pub else ""
    return ITEM.format(title=title, link=link, guid=guid, date=date, text=text)


def rfc822(ts):
    return email.utils.formatdate(ts, usegmt=True)


def unix(rfc3339):
    return int(datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
               .timestamp())


def metric(path, name, **labels):
    with open(path) as f:
        for line in f:
            if line.startswith(name + "{") and \
                    all('%s="%s"' % kv in line for kv in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def run_once(ctx, feeds, topic, sources, name="producer"):
    cfg = ctx.write(name + "-sources.json", {"sources": sources})
    metrics = ctx.path(name + ".prom")
    p = ctx.proc([ctx.bin("newsalert-producer"), "--once", "--brokers", ctx.brokers,
                  "--sources", cfg, "--state-dir", ctx.path("state"), "--topic", topic,
                  "--metrics-file", metrics, "--log-level", "debug"], name=name)
    assert p.wait(60) == 0, p.tail()
    return p, metrics


def need_broker(ctx):
    if not ctx.brokers:
        raise harness.Skip("no broker (NA_TEST_BROKERS unset)")


def test_future_dated_item_is_published_at_its_fetch_time(ctx):
    need_broker(ctx)
    feeds = ctx.feed_server()
    base = feeds.url("").rstrip("/")
    feeds.set("/desk.xml", rss(base, [
        item("Rare earth quota set for 2099", base + "/future", "f-1",
             "A date far in the future, as a broken feed writes it.",
             "Thu, 01 Jan 2099 08:00:00 GMT"),
    ]))
    topic = ctx.topic("na.it.records")
    t0 = time.time()
    p, metrics = run_once(ctx, feeds, topic,
                          [{"id": "desk", "url": feeds.url("/desk.xml")}])
    t1 = time.time()
    (rec,) = harness.kcat_consume(ctx.brokers, topic, count=1, timeout=30)
    art = json.loads(rec["value"])
    fetched = unix(art["fetched_at"])
    assert int(t0) <= fetched <= t1 + 1, (t0, art["fetched_at"], t1)
    assert unix(art["published_at"]) <= fetched, art["published_at"]
    assert art["published_at"] == art["fetched_at"], art
    assert rec["ts"] <= fetched * 1000 <= t1 * 1000, (rec["ts"], fetched)
    line = p.wait_for_stderr(r"level=warn [^\n]*event=future_dated [^\n]*", 1).group(0)
    assert 'feed="desk"' in line and "published_at=2099-01-01T08:00:00Z" in line, line
    assert metric(metrics, "newsalert_producer_future_dated_total", feed="desk") == 1


def test_record_timestamps_follow_the_published_time_within_bounds(ctx):
    need_broker(ctx)
    feeds = ctx.feed_server()
    base = feeds.url("").rstrip("/")
    now = int(time.time())
    recent = now - 2 * 3600
    old = 978307200  # 2001-01-01: long before the retention window
    feeds.set("/desk.xml", rss(base, [
        item("Export licence rules published", base + "/recent", "r-1",
             "Published two hours before the fetch.", rfc822(recent)),
        item("Archive: the 2001 rare earth report", base + "/old", "o-1",
             "Published long before the retention window.", rfc822(old)),
        item("Undated notice on dual-use items", base + "/undated", "u-1",
             "This item carries no date at all."),
        item("Quota for the year 2099 announced", base + "/future", "f-1",
             "Dated in the future by a broken feed.", "2099-01-01T08:00:00Z"),
    ]))
    topic = ctx.topic("na.it.records")
    t0 = time.time()
    run_once(ctx, feeds, topic, [{"id": "desk", "url": feeds.url("/desk.xml")}])
    t1 = time.time()
    recs = harness.kcat_consume(ctx.brokers, topic, count=4, timeout=30)
    by_path = {json.loads(r["value"])["url"].rsplit("/", 1)[1]: r for r in recs}
    assert sorted(by_path) == ["future", "old", "recent", "undated"], by_path.keys()
    for name, rec in by_path.items():
        art = json.loads(rec["value"])
        fetched_ms = unix(art["fetched_at"]) * 1000
        assert int(t0) * 1000 <= fetched_ms <= t1 * 1000, (name, art["fetched_at"])
        # Never later than the fetch, never older than retention minus a day.
        assert rec["ts"] <= fetched_ms, (name, rec["ts"], fetched_ms)
        assert rec["ts"] >= fetched_ms - (RETENTION_MS - DAY_MS), (name, rec["ts"])
        if art["published_at"] is not None:
            assert unix(art["published_at"]) * 1000 <= fetched_ms, (name, art)
    # The published time itself when it lies inside those bounds.
    assert by_path["recent"]["ts"] == recent * 1000
    assert unix(json.loads(by_path["recent"]["value"])["published_at"]) == recent
    # An old article keeps its true date; only its timestamp is lifted.
    old_art = json.loads(by_path["old"]["value"])
    assert unix(old_art["published_at"]) == old, old_art["published_at"]
    assert by_path["old"]["ts"] == \
        unix(old_art["fetched_at"]) * 1000 - (RETENTION_MS - DAY_MS)
    # Without a date: the fetch time.
    undated = json.loads(by_path["undated"]["value"])
    assert undated["published_at"] is None, undated
    assert by_path["undated"]["ts"] == unix(undated["fetched_at"]) * 1000
    # In the future: the fetch time, in the value and the timestamp.
    fut = json.loads(by_path["future"]["value"])
    assert fut["published_at"] == fut["fetched_at"], fut
    assert by_path["future"]["ts"] == unix(fut["fetched_at"]) * 1000


def summary(proc):
    m = re.findall(r"event=summary (.*)", proc.stderr_text())[-1]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m)}


POSTS = {
    1: ("Live: drills begin around Taiwan", "Exercises began at dawn, the ministry said."),
    2: ("Coast guard vessels enter the zone", "Four vessels entered the zone at 08:10."),
    3: ("Ministry responds to the drills", "The ministry said it was monitoring closely."),
}


def live_blog(base, posts):
    return rss(base, [item(POSTS[n][0], base + "/live/taiwan#post-%d" % n,
                           "live-taiwan-%d" % n, POSTS[n][1]) for n in posts])


def test_live_blog_posts_are_each_produced(ctx):
    """Issue: posts of one live page (distinct guids, links that differ in
    the fragment) got one id, so the second was never produced."""
    need_broker(ctx)
    feeds = ctx.feed_server()
    base = feeds.url("").rstrip("/")
    topic = ctx.topic("na.it.records")
    sources = [{"id": "live", "url": feeds.url("/live.xml")}]
    feeds.set("/live.xml", live_blog(base, [1]))
    p, _ = run_once(ctx, feeds, topic, sources, name="first")
    assert summary(p)["produced"] == 1, summary(p)
    # The page grows: each new post is news; the first one is not new again
    # (its link now keeps the fragment, its text is known).
    feeds.set("/live.xml", live_blog(base, [3, 2, 1]))
    p, _ = run_once(ctx, feeds, topic, sources, name="second")
    s = summary(p)
    assert s["produced"] == 2 and s["skipped_dup"] == 1, s
    p, _ = run_once(ctx, feeds, topic, sources, name="third")
    assert summary(p)["produced"] == 0, summary(p)

    recs = harness.kcat_consume(ctx.brokers, topic, count=3, timeout=30)
    arts = [json.loads(r["value"]) for r in recs]
    assert len({r["key"] for r in recs}) == 3, [r["key"] for r in recs]
    assert all(r["key"] == a["id"] for r, a in zip(recs, arts))
    by_title = {a["title"]: a for a in arts}
    assert by_title[POSTS[2][0]]["url"] == base + "/live/taiwan#post-2"
    assert by_title[POSTS[3][0]]["url"] == base + "/live/taiwan#post-3"
    # Alone on its link, the first post had the page's id, as before.
    assert by_title[POSTS[1][0]]["url"] == base + "/live/taiwan"


def test_stop_is_acted_on_while_the_kafka_queue_is_full(ctx):
    """Issue: with the producer queue full, producing an item waited for room
    (up to the message timeout) without going back to the main loop, so
    SIGTERM was not acted on. The items not produced are not noted as seen:
    the next run produces them."""
    need_broker(ctx)
    feeds = ctx.feed_server()
    base = feeds.url("").rstrip("/")
    feeds.set("/desk.xml", rss(base, [
        item("Queue item %d" % i, base + "/q/%d" % i, "q-%d" % i,
             "Body of queued item number %d." % i) for i in range(3)]))
    topic = ctx.topic("na.it.queuefull")
    sources = [{"id": "desk", "url": feeds.url("/desk.xml")}]
    cfg = ctx.write("full-sources.json", {"sources": sources})
    # Room for one message, held 60 s before it is sent: the second item
    # finds the queue full for a minute.
    p = ctx.proc([ctx.bin("newsalert-producer"), "--brokers", ctx.brokers,
                  "--sources", cfg, "--state-dir", ctx.path("state"), "--topic", topic,
                  "-X", "queue.buffering.max.messages=1", "-X", "linger.ms=60000",
                  "--log-level", "debug"], name="full")
    feeds.wait_count(1, timeout=30, path="/desk.xml")
    time.sleep(1)
    t0 = time.monotonic()
    p.kill()
    assert p.wait(20) == 0, p.tail()
    assert time.monotonic() - t0 < 15, p.tail()
    assert "produce_failed" in p.stderr_text(), p.tail()
    again, _ = run_once(ctx, feeds, topic, sources, name="again")
    summary = re.findall(r"event=summary (.*)", again.stderr_text())[-1]
    assert " produced=2 " in " %s " % summary, summary
    recs = harness.kcat_consume(ctx.brokers, topic, count=3, timeout=30)
    assert sorted(json.loads(r["value"])["url"] for r in recs) == [
        base + "/q/%d" % i for i in range(3)], recs
    assert len(set(r["key"] for r in recs)) == 3, recs


if __name__ == "__main__":
    harness.main(globals(), needs_broker=False, timeout=120)
