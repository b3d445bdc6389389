"""Scale-out on Kafka: two producer instances share one source list through a
compacted sources topic consumed as one group. Every feed is fetched, none by
both instances at once; when one instance is SIGKILLed, the other takes its
feeds (and their fetch state) over.

The feed server records which instance fetched what and when (the
X-Newsalert-Instance request header)."""

import collections
import re
import signal
import time

import harness

RSS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>{n}</title><link>http://example.org/{n}</link>
<item><title>Story {n}: export licences for dual-use items reviewed</title>
<link>http://example.org/{n}/story</link></item></channel></rss>
"""

FEEDS = 24


def by_feed(reqs):
    out = collections.defaultdict(list)
    for r in reqs:
        out[r.path].append(r)
    return out


def overlaps(reqs):
    """Pairs of requests of one feed by different instances whose
    [arrival, answer] intervals overlap."""
    bad = []
    for path, rs in by_feed(reqs).items():
        rs = sorted(rs, key=lambda r: r.time)
        for a, b in zip(rs, rs[1:]):
            inst_a = a.header("X-Newsalert-Instance")
            inst_b = b.header("X-Newsalert-Instance")
            end_a = a.done if a.done is not None else float("inf")
            if inst_a != inst_b and b.time < end_a:
                bad.append((path, inst_a, inst_b))
    return bad


def test_two_instances_share_feeds_and_survive_a_sigkill(ctx):
    feeds = ctx.feed_server()
    paths = ["/f%02d.xml" % i for i in range(FEEDS)]
    for i, p in enumerate(paths):
        feeds.set(p, RSS.format(n="f%02d" % i))
    sources = [{"id": "f%02d" % i, "url": feeds.url(p), "interval": "1s"}
               for i, p in enumerate(paths)]
    sources_file = ctx.write("sources.json", {"sources": sources})
    stopic = ctx.topic("na.it.sources")
    state = ctx.topic("na.it.fetchstate")
    articles = ctx.topic("na.it.articles")
    group = ctx.topic("na-it-fetchers")
    common = ["--brokers", ctx.brokers, "--sources-topic", stopic, "--state-topic", state]

    load = harness.run([ctx.bin("newsalert-producer"), "sources", "load", sources_file]
                       + common, timeout=60)
    assert load.returncode == 0, load.stderr
    assert "published=%d removed=0" % FEEDS in load.stderr, load.stderr

    def instance(name):
        return ctx.proc([ctx.bin("newsalert-producer")] + common +
                        ["--group-id", group, "--instance-id", name, "--topic", articles,
                         "--state-dir", ctx.path(name),
                         "-X", "session.timeout.ms=6000",
                         "-X", "heartbeat.interval.ms=500"], name=name)

    a = instance("fetcher-a")
    a.wait_for_stderr(r"event=partitions_assigned", 60)
    b = instance("fetcher-b")
    b.wait_for_stderr(r"event=partitions_assigned", 60)
    # A was revoked and got its share back after B joined.
    harness.wait_until(lambda: len(re.findall(r"event=partitions_assigned",
                                              a.stderr_text())) >= 2, 60,
                       what="fetcher-a reassigned")
    time.sleep(2)

    # A stable window: every feed polled, each by exactly one instance.
    t0 = time.monotonic()
    time.sleep(5)
    window = [r for r in feeds.requests() if r.time >= t0]
    owners = {p: {r.header("X-Newsalert-Instance") for r in rs}
              for p, rs in by_feed(window).items()}
    assert set(owners) == set(paths), sorted(set(paths) - set(owners))
    assert all(len(o) == 1 for o in owners.values()), owners
    share = collections.Counter(next(iter(o)) for o in owners.values())
    assert set(share) == {"fetcher-a", "fetcher-b"}, share
    a_feeds = {p for p, o in owners.items() if o == {"fetcher-a"}}

    # SIGKILL A mid-way: B takes over A's feeds once the group notices.
    before = len(re.findall(r"event=partitions_assigned", b.stderr_text()))
    a.kill(signal.SIGKILL)
    assert a.wait(10) == -signal.SIGKILL
    harness.wait_until(lambda: len(re.findall(r"event=partitions_assigned",
                                              b.stderr_text())) > before, 60,
                       what="fetcher-b assigned fetcher-a's partitions")
    t1 = time.monotonic()
    time.sleep(4)
    after = [r for r in feeds.requests() if r.time >= t1]
    owners = {p: {r.header("X-Newsalert-Instance") for r in rs}
              for p, rs in by_feed(after).items()}
    assert set(owners) == set(paths), sorted(set(paths) - set(owners))
    assert all(o == {"fetcher-b"} for o in owners.values()), owners
    assert a_feeds <= set(owners)
    # B loaded A's fetch state: A's feeds answer 304 to B (B sent A's ETags).
    taken = [r for r in after if r.path in a_feeds]
    assert taken and all(r.status == 304 for r in taken[:len(a_feeds)]), \
        [(r.path, r.status) for r in taken[:len(a_feeds)]]

    # Never two instances on one feed at once, over the whole run.
    assert not overlaps(feeds.requests()), overlaps(feeds.requests())[:5]

    # A source removed from the topic stops being polled.
    load = harness.run([ctx.bin("newsalert-producer"), "sources", "load",
                        ctx.write("fewer.json", {"sources": sources[1:]})] + common,
                       timeout=60)
    assert load.returncode == 0 and "removed=1" in load.stderr, load.stderr
    b.wait_for_stderr(r'event=feed_removed feed="f00"', 30)
    t2 = time.monotonic()
    time.sleep(2.5)
    assert not [r for r in feeds.requests(paths[0]) if r.time > t2]
    assert [r for r in feeds.requests(paths[1]) if r.time > t2]
    assert b.stop(30) == 0, b.tail()

    # Every feed's article reached Kafka (a handover may re-publish, never lose).
    recs = harness.kcat_consume(ctx.brokers, articles)
    assert len({r["key"] for r in recs}) == FEEDS, len(recs)
    state_recs = harness.kcat_consume(ctx.brokers, state)
    assert {r["key"] for r in state_recs} == {s["id"] for s in sources}
    # f00's state was tombstoned with its source.
    last = {}
    for rec in sorted(state_recs, key=lambda r: (r["partition"], r["offset"])):
        last[rec["key"]] = rec["value"]
    assert last["f00"] is None and last["f01"]


def test_sources_load_removes_and_updates(ctx):
    feeds = ctx.feed_server()
    stopic = ctx.topic("na.it.sources")
    state = ctx.topic("na.it.fetchstate")
    common = ["--brokers", ctx.brokers, "--sources-topic", stopic, "--state-topic", state]
    one = [{"id": "x", "url": feeds.url("/x.xml")}, {"id": "y", "url": feeds.url("/y.xml")}]
    r = harness.run([ctx.bin("newsalert-producer"), "sources", "load",
                     ctx.write("one.json", {"sources": one})] + common, timeout=60)
    assert r.returncode == 0, r.stderr
    two = [{"id": "x", "url": feeds.url("/x2.xml")}]
    r = harness.run([ctx.bin("newsalert-producer"), "sources", "load",
                     ctx.write("two.json", {"sources": two})] + common, timeout=60)
    assert r.returncode == 0 and "published=1 removed=1" in r.stderr, r.stderr
    recs = harness.kcat_consume(ctx.brokers, stopic)
    last = {}
    for rec in sorted(recs, key=lambda r: (r["partition"], r["offset"])):
        last[rec["key"]] = rec["value"]
    assert last["y"] is None and "/x2.xml" in last["x"], last
    r = harness.run([ctx.bin("newsalert-producer"), "sources", "load",
                     ctx.write("bad.json", {"sources": [{"url": "ftp://x/"}]})] + common)
    assert r.returncode == 1 and "only http and https" in r.stderr, r.stderr
    r = harness.run([ctx.bin("newsalert-producer"), "sources", "load"])
    assert r.returncode == 2


def test_topic_mode_polls_a_source_with_a_long_url(ctx):
    """A source whose id is a URL over 1 KB (a signed URL, a long token) is
    polled in topic mode as in file mode: its record key was cut to 1023
    bytes, so the record named another id (bad_source), its state never
    matched its feed, and each `sources load` removed a key that never
    existed. A key longer than any valid id is a bad record, skipped."""
    feeds = ctx.feed_server()
    feeds.set("/long.xml", RSS.format(n="long"))
    feeds.set("/short.xml", RSS.format(n="short"))
    long_path = "/long.xml?sig=" + "a1b2c3d4" * 140
    long_url = feeds.url(long_path)
    assert len(long_url) > 1100
    sources = [{"url": long_url, "interval": "1s"},
               {"id": "short", "url": feeds.url("/short.xml"), "interval": "1s"}]
    sources_file = ctx.write("sources.json", {"sources": sources})
    stopic = ctx.topic("na.it.sources")
    state = ctx.topic("na.it.fetchstate")
    articles = ctx.topic("na.it.articles")
    group = ctx.topic("na-it-fetchers")
    common = ["--brokers", ctx.brokers, "--sources-topic", stopic, "--state-topic", state]
    load = harness.run([ctx.bin("newsalert-producer"), "sources", "load", sources_file]
                       + common, timeout=60)
    assert load.returncode == 0, load.stderr
    assert "published=2 removed=0" in load.stderr, load.stderr
    # Records no source can have: keys longer than any valid id.
    huge = "http://127.0.0.1/" + "x" * 5000
    harness.kcat_produce(ctx.brokers, stopic, [(huge, '{"url": "%s"}' % huge)])
    harness.kcat_produce(ctx.brokers, state, [(huge, "{}")])

    def instance(name):
        return ctx.proc([ctx.bin("newsalert-producer")] + common +
                        ["--group-id", group, "--instance-id", name, "--topic", articles,
                         "--state-dir", ctx.path(name)], name=name)

    a = instance("fetcher-a")
    feeds.wait_count(2, 60, path="/short.xml")
    time.sleep(1.5)
    assert feeds.count(long_path) >= 1, a.tail()
    assert all(len(r.path) == len(long_path) for r in feeds.requests()
               if r.path.startswith("/long.xml")), feeds.requests()
    a.wait_for_stderr(r"event=bad_source .*longer than any source id", 10)
    assert "differs from the record key" not in a.stderr_text(), a.tail()

    # Publishing the same file again removes nothing: the long key reads back whole.
    load = harness.run([ctx.bin("newsalert-producer"), "sources", "load", sources_file]
                       + common, timeout=60)
    assert load.returncode == 0 and "published=2 removed=0" in load.stderr, load.stderr
    assert "longer than any source id" in load.stderr, load.stderr

    # The long feed's state is published under its whole id and taken up by
    # the next owner: its first request carries the ETag (304).
    assert a.stop(30) == 0, a.tail()
    keys = {r["key"] for r in harness.kcat_consume(ctx.brokers, state)}
    assert long_url in keys, sorted(k[:40] for k in keys)
    t0 = time.monotonic()
    b = instance("fetcher-b")
    feeds.wait_for(lambda rs: [r for r in rs if r.path == long_path and r.time > t0],
                   60, what="fetcher-b polling the long URL")
    taken = [r for r in feeds.requests(long_path) if r.time > t0]
    assert taken[0].status == 304, taken
    b.wait_for_stderr(r"event=state_record_bad .*longer than any source id", 10)
    assert b.stop(30) == 0, b.tail()


if __name__ == "__main__":
    harness.main(globals(), timeout=240)
