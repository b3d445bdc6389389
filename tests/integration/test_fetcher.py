"""The fetcher against misbehaving HTTP feeds: hangs, a body that never ends,
a 100 MB body, 500s, a redirect loop, 404, 410, permanent redirects,
Retry-After, <ttl>; and dedup of edited and re-GUIDed items.

Most tests run the daemon with --dry-run (no Kafka needed): each bad feed
must give one clear log line naming it, a metric, and the good feeds must
keep their schedule. The dedup test needs the real broker (skipped without).
"""

import email.utils
import hashlib
import json
import os
import re
import signal
import time

import harness

RSS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>{name}</title><link>http://example.org/</link>
{extra}
<item><title>{name}: rare earth export rules tightened again</title>
<link>http://example.org/{name}/1</link><guid>{name}-1</guid>
<description>Officials announced new licence rules for {name}.</description></item>
</channel></rss>
"""


def rss(name, extra=""):
    return RSS.format(name=name, extra=extra)


def start(ctx, feeds, sources, extra=(), name="producer"):
    cfg = ctx.write(name + "-sources.json", {"sources": sources})
    metrics = ctx.path(name + ".prom")
    argv = [ctx.bin("newsalert-producer"), "--dry-run", "--sources", cfg,
            "--state-dir", ctx.path(name + "-state"), "--metrics-file", metrics,
            "--fetch-timeout", "2s", "--fetch-connect-timeout", "1s",
            "--retry-base", "1s", "--retry-max", "4s", "--fetch-per-host", "16",
            "--log-level", "info"] + list(extra)
    return ctx.proc(argv, name=name), cfg, metrics


def src(feeds, fid, path, interval="1s", **extra):
    return dict({"id": fid, "url": feeds.url(path), "interval": interval}, **extra)


def events(proc, event):
    """Parsed logfmt lines of one event."""
    out = []
    for line in proc.stderr_text().splitlines():
        if " event=%s " % event not in line + " ":
            continue
        out.append(dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line)))
    return [{k: v.strip('"') for k, v in d.items()} for d in out]


def feed_file(state_dir, feed_id):
    """Path of a feed's state file (producer/seen.h: STATE_DIR/seen/ and 32
    hex digits of the SHA-256 of the feed id)."""
    name = hashlib.sha256(feed_id.encode()).hexdigest()[:32]
    return os.path.join(state_dir, "seen", name)


def feed_state(state_dir, feed_id):
    """The "state" members of a feed's file (validators, url, ttl...), or
    None when the feed has no file."""
    try:
        with open(feed_file(state_dir, feed_id), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    assert data[:8] == b"NASEEN3\n", data[:16]
    head = json.loads(data[8:data.index(b"\n", 8)])
    assert head["feed"] == feed_id, head
    return head["state"]


def gaps(reqs):
    ts = [r.time for r in reqs]
    return [b - a for a, b in zip(ts, ts[1:])]


def metric(path, name, **labels):
    """Value of one series in the metrics file, or None."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all('%s="%s"' % (k, v) in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_bad_feeds_each_log_a_line_and_a_metric_and_good_feeds_keep_time(ctx):
    feeds = ctx.feed_server()
    feeds.set("/ok.xml", rss("ok"))
    feeds.set("/hang.xml", rss("hang"))
    feeds.hang("/hang.xml")
    feeds.drip("/drip.xml")
    feeds.stream("/big.xml", 100 * 1024 * 1024)
    feeds.fail("/e500.xml", 500)
    feeds.redirect("/loop.xml", "/loop.xml", status=302)
    feeds.set("/broken.xml", "<rss><channel><item><title>x</titl")
    bad = {"hang": ("/hang.xml", "timeout"), "drip": ("/drip.xml", "timeout"),
           "big": ("/big.xml", "too_large"), "e500": ("/e500.xml", "http_5xx"),
           "loop": ("/loop.xml", "redirects"), "missing": ("/missing.xml", "http_4xx")}
    sources = [src(feeds, "ok", "/ok.xml")]
    # The test server is on 127.0.0.1: its redirects need the source's consent.
    sources += [src(feeds, fid, path, allow_private_redirects=(fid == "loop"))
                for fid, (path, _) in bad.items()]
    sources.append(src(feeds, "broken", "/broken.xml"))
    p, _, metrics = start(ctx, feeds, sources, ["--fetch-timeout", "3s"])

    time.sleep(9)
    p.stop()
    errs = events(p, "fetch_error")
    for fid, (_, reason) in bad.items():
        mine = [e for e in errs if e.get("feed") == fid]
        assert mine, "no fetch_error line for %s:\n%s" % (fid, p.tail())
        assert all(e["reason"] == reason for e in mine), (fid, mine)
        assert metric(metrics, "newsalert_producer_fetch_errors_total", feed=fid,
                      reason=reason) >= 1, fid
    parse = [e for e in events(p, "feed_parse_error") if e.get("feed") == "broken"]
    assert parse and parse[0]["err"], p.tail()
    assert metric(metrics, "newsalert_producer_parse_errors_total", feed="broken") >= 1
    # Backoff: 1 s, 2 s, 4 s...: a failing feed is not hammered.
    assert len(feeds.requests("/e500.xml")) <= 5, gaps(feeds.requests("/e500.xml"))
    # The good feed kept its 1 s rhythm through all of it.
    ok = feeds.requests("/ok.xml")
    # (1 s +-10 %, plus slack for a loaded machine; far below the 3 s a
    # blocked loop would show)
    assert len(ok) >= 6, len(ok)
    assert max(gaps(ok)) < 2.2, gaps(ok)
    # No 100 MB buffered: the transfer stopped at the cap.
    assert re.search(r'feed="big".*too_large|reason="too_large"', open(metrics).read())


def test_one_hanging_feed_never_delays_the_others(ctx):
    feeds = ctx.feed_server()
    names = ["a", "b", "c", "d", "e"]
    for n in names:
        feeds.set("/%s.xml" % n, rss(n))
    feeds.set("/slow.xml", rss("slow"))
    feeds.hang("/slow.xml")  # held until the client gives up
    sources = [src(feeds, n, "/%s.xml" % n) for n in names]
    sources.append(src(feeds, "slow", "/slow.xml"))
    # One connection per host: the hanging transfer must not hold the others.
    p, _, _ = start(ctx, feeds, sources, ["--fetch-timeout", "5s",
                                          "--fetch-per-host", "2"])
    time.sleep(8)
    p.stop()
    for n in names:
        reqs = feeds.requests("/%s.xml" % n)
        assert len(reqs) >= 5, (n, len(reqs))
        assert max(gaps(reqs)) < 2.5, (n, gaps(reqs))
    assert any(e.get("feed") == "slow" and e["reason"] == "timeout"
               for e in events(p, "fetch_error")), p.tail()


def test_retry_after_both_forms_and_exponential_backoff(ctx):
    feeds = ctx.feed_server()
    feeds.set("/secs.xml", rss("secs"))
    feeds.set("/date.xml", rss("date"))
    feeds.fail("/secs.xml", 503, retry_after=3, count=1)
    feeds.fail("/date.xml", 429, count=1,
               retry_after=email.utils.formatdate(time.time() + 4, usegmt=True))
    feeds.fail("/e500.xml", 500)
    p, _, _ = start(ctx, feeds, [src(feeds, "secs", "/secs.xml"),
                                 src(feeds, "date", "/date.xml"),
                                 src(feeds, "e500", "/e500.xml")],
                    ["--retry-base", "300ms", "--retry-max", "10s"])
    time.sleep(7)
    p.stop()
    g = gaps(feeds.requests("/secs.xml"))
    assert g and g[0] >= 2.9, g
    g = gaps(feeds.requests("/date.xml"))
    assert g and g[0] >= 2.5, g  # an HTTP date has whole seconds
    # 0.3, 0.6, 1.2, 2.4 s (+-20 %): growing, none shorter than the one before
    # by more than jitter allows.
    g = gaps(feeds.requests("/e500.xml"))
    assert len(g) >= 3, g
    assert g[2] > g[0] * 1.5, g


def test_ttl_holds_the_next_poll(ctx):
    feeds = ctx.feed_server()
    feeds.set("/ttl.xml", rss("ttl", "<ttl>60</ttl>"))
    feeds.set("/plain.xml", rss("plain"))
    p, _, _ = start(ctx, feeds, [src(feeds, "ttl", "/ttl.xml"),
                                 src(feeds, "plain", "/plain.xml")])
    time.sleep(5)
    p.stop()
    assert feeds.count("/ttl.xml") == 1
    assert feeds.count("/plain.xml") >= 4
    assert feed_state(ctx.path("producer-state"), "ttl")["ttl"] == 60


def test_moved_feed_is_polled_at_its_new_url_and_gone_feed_is_retired(ctx):
    feeds = ctx.feed_server()
    feeds.set("/new.xml", rss("moved"))
    feeds.redirect("/old.xml", feeds.url("/new.xml"), status=301)
    feeds.set("/new308.xml", rss("moved308"))
    feeds.redirect("/old308.xml", "/new308.xml", status=308)
    feeds.set("/tmp-target.xml", rss("temp"))
    feeds.redirect("/temp.xml", "/tmp-target.xml", status=302)
    feeds.fail("/gone.xml", 410)
    # The test server is on 127.0.0.1: its redirects need the source's consent.
    local = {"allow_private_redirects": True}
    sources = [src(feeds, "moved", "/old.xml", **local),
               src(feeds, "moved308", "/old308.xml", **local),
               src(feeds, "temp", "/temp.xml", **local), src(feeds, "gone", "/gone.xml")]
    p, cfg, metrics = start(ctx, feeds, sources)
    time.sleep(5)
    # 301/308: one request to the old address, the rest straight to the new one.
    assert feeds.count("/old.xml") == 1 and feeds.count("/new.xml") >= 3
    assert feeds.count("/old308.xml") == 1 and feeds.count("/new308.xml") >= 3
    # 302 is temporary: the old address stays.
    assert feeds.count("/temp.xml") >= 3
    moved = events(p, "feed_moved")
    assert {e["feed"] for e in moved} == {"moved", "moved308"}, moved
    # 410: retired loudly, and never polled again...
    assert feeds.count("/gone.xml") == 1
    retired = events(p, "feed_retired")
    assert len(retired) == 1 and retired[0]["feed"] == "gone" and \
        retired[0]["level"] == "error", retired
    # ...until its sources entry changes (the file is re-read).
    feeds.clear_fault("/gone.xml")
    feeds.set("/gone.xml", rss("gone"))
    sources[3]["interval"] = "2s"
    ctx.write("producer-sources.json", {"sources": sources})
    feeds.wait_count(2, timeout=10, path="/gone.xml")
    p.stop()
    assert metric(metrics, "newsalert_producer_feeds_retired_total", feed="gone") == 1
    assert events(p, "feed_unretired")[0]["feed"] == "gone"
    state_dir = ctx.path("producer-state")
    assert feed_state(state_dir, "moved")["url"] == feeds.url("/new.xml")
    assert feed_state(state_dir, "moved308")["url"] == feeds.url("/new308.xml")
    assert "retired" not in feed_state(state_dir, "gone")
    # A restart keeps polling the new address.
    feeds.clear()
    p2, _, _ = start(ctx, feeds, sources, name="producer")
    time.sleep(2.5)
    p2.stop()
    assert feeds.count("/old.xml") == 0 and feeds.count("/new.xml") >= 1


def test_sources_file_changes_apply_while_running(ctx):
    feeds = ctx.feed_server()
    for n in ("a", "b", "c", "d"):
        feeds.set("/%s.xml" % n, rss(n))
    # d has no id: its URL, with a password and a token, is its id, shown
    # redacted wherever it is logged (its removal too).
    d_url = feeds.url("/d.xml").replace("http://", "http://alice:PLANTEDPW@", 1) + \
        "?token=PLANTEDTOKEN"
    p, cfg, _ = start(ctx, feeds, [src(feeds, "a", "/a.xml"), src(feeds, "b", "/b.xml"),
                                   {"url": d_url, "interval": "1s"}])
    feeds.wait_count(2, timeout=10, path="/b.xml")
    feeds.wait_count(1, timeout=10, path="/d.xml?token=PLANTEDTOKEN")
    ctx.write("producer-sources.json",
              {"sources": [src(feeds, "a", "/a.xml"), src(feeds, "c", "/c.xml")]})
    p.wait_for_stderr(r"event=sources_reloaded", 10)
    t = time.monotonic()
    feeds.wait_count(2, timeout=10, path="/c.xml")
    # A broken file is reported and the feeds polled so far go on.
    ctx.write("producer-sources.json", "{broken")
    p.wait_for_stderr(r"event=sources_reload_failed", 10)
    t_broken = time.monotonic()
    time.sleep(1.5)
    p.stop()
    assert not [r for r in feeds.requests("/b.xml") if r.time > t + 0.2]
    assert [r for r in feeds.requests("/a.xml") if r.time > t_broken]
    assert [r for r in feeds.requests("/c.xml") if r.time > t_broken]
    removed = sorted(e["feed"] for e in events(p, "feed_removed"))
    assert len(removed) == 2 and removed[0] == "b", removed
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/d\.xml\?\*\*\*~[0-9a-f]{8}",
                        removed[1]), removed
    assert "PLANTED" not in p.stderr_text()
    # b's state stays for the grace period.
    assert feed_state(ctx.path("producer-state"), "b") is not None
    assert feed_state(ctx.path("producer-state"), "c") is not None


def test_removed_feed_keeps_its_state_for_the_grace_period(ctx):
    """state_grace counts from the feed's removal, not from the last sources
    change: a feed removed after a long run keeps its state (ids,
    validators) for the grace period, so an entry taken out by mistake and
    put back does not publish its items again. Once removed for longer, a
    restart forgets it."""
    feeds = ctx.feed_server()
    for n in ("a", "b"):
        feeds.set("/%s.xml" % n, rss(n))
    state = ctx.path("producer-state")
    both = [src(feeds, "a", "/a.xml"), src(feeds, "b", "/b.xml")]
    # A restart: the feeds have their state when the producer starts.
    p0, _, _ = start(ctx, feeds, both, ["--state-grace", "4s", "--once"])
    assert p0.wait(30) == 0, p0.tail()
    assert feed_state(state, "b") is not None
    p, _, _ = start(ctx, feeds, both, ["--state-grace", "4s"])
    feeds.wait_count(2, timeout=10, path="/b.xml")
    # Longer than the grace period with b in the sources all along.
    time.sleep(5.5)
    assert feed_state(state, "b") is not None
    ctx.write("producer-sources.json", {"sources": [src(feeds, "a", "/a.xml")]})
    p.wait_for_stderr(r"event=sources_reloaded", 10)
    removed_at = time.monotonic()
    time.sleep(1.5)  # a removal would be written by now
    assert not events(p, "state_pruned"), events(p, "state_pruned")
    assert feed_state(state, "b") is not None
    p.stop()
    # Removed for longer than the grace period: the next start forgets b.
    time.sleep(max(0.0, removed_at + 5 - time.monotonic()))
    p2, _, _ = start(ctx, feeds, [src(feeds, "a", "/a.xml")],
                     ["--state-grace", "4s", "--once"], name="producer")
    assert p2.wait(30) == 0, p2.tail()
    assert [e["feeds"] for e in events(p2, "state_pruned")] == ["1"]
    assert feed_state(state, "b") is None
    assert feed_state(state, "a") is not None


def test_instance_header_and_user_agent(ctx):
    feeds = ctx.feed_server()
    feeds.set("/a.xml", rss("a"))
    p, _, _ = start(ctx, feeds, [src(feeds, "a", "/a.xml")],
                    ["--once", "--instance-id", "fetcher-7"])
    assert p.wait(30) == 0, p.tail()
    r = feeds.requests("/a.xml")[0]
    assert r.header("X-Newsalert-Instance") == "fetcher-7"
    assert r.header("User-Agent").startswith("newsalert/")
    assert "gzip" in r.header("Accept-Encoding", "")


def test_state_migrates_seen_json_and_survives_a_corrupt_feed_file(ctx):
    feeds = ctx.feed_server()
    for n in ("a", "b"):
        feeds.set("/%s.xml" % n, rss(n))
    state = ctx.path("state")
    os.makedirs(os.path.join(state, "seen"))
    # The state of an older version: one seen.json with a's validator.
    with open(os.path.join(state, "seen.json"), "w") as f:
        json.dump({"version": 2, "feeds": {"a": {
            "etag": feeds.etag("/a.xml"), "seq": 0, "ids": {}, "fps": {}}}}, f)
    # b's file is corrupt, and killed saves left temporary files.
    with open(feed_file(state, "b"), "wb") as f:
        f.write(b"NASEEN3\n{\"feed\":\"b\"")
    stale = [os.path.join(state, "seen.json.tmp.4242"),
             feed_file(state, "a") + ".tmp.777"]
    for path in stale:
        with open(path, "w") as f:
            f.write("half written")
    cfg = ctx.write("sources.json", {"sources": [src(feeds, "a", "/a.xml"),
                                                 src(feeds, "b", "/b.xml")]})
    metrics = ctx.path("producer.prom")
    argv = [ctx.bin("newsalert-producer"), "--once", "--dry-run", "--sources", cfg,
            "--state-dir", state, "--metrics-file", metrics]

    def once(name):
        p = ctx.proc(argv, name=name)
        assert p.wait(60) == 0, p.tail()
        m = re.findall(r"event=summary (.*)", p.stderr_text())[-1]
        return p, {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m)}

    p, s = once("first")
    # a kept its validator through the migration: 304. b starts empty.
    assert feeds.requests("/a.xml")[0].header("If-None-Match") == feeds.etag("/a.xml")
    assert feeds.requests("/b.xml")[0].header("If-None-Match") is None
    assert s["not_modified"] == 1 and s["produced"] == 1, s
    corrupt = events(p, "state_file_corrupt")
    assert len(corrupt) == 1 and corrupt[0]["file"] == feed_file(state, "b"), corrupt
    assert metric(metrics, "newsalert_producer_state_corrupt_total") == 1
    assert os.path.exists(feed_file(state, "b") + ".corrupt")
    assert not os.path.exists(os.path.join(state, "seen.json"))
    assert os.path.exists(os.path.join(state, "seen.json.migrated"))
    assert not [path for path in stale if os.path.exists(path)]
    assert feed_state(state, "b")["etag"] == feeds.etag("/b.xml")
    # From the files alone: both feeds answer 304, nothing is reported.
    p, s = once("second")
    assert s["not_modified"] == 2 and s["produced"] == 0, s
    assert not events(p, "state_file_corrupt")


ITEMS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Desk</title><link>{base}/</link>
<item><title>Rare earth export curbs tighten</title><link>{link}</link>
<description>{text}</description></item>
<item><title>Taiwan strait drills announced today</title><guid isPermaLink="false">{guid}</guid>
<description>Exercises near the median line, the ministry said.</description></item>
</channel></rss>
"""


def test_edited_item_is_an_update_and_a_new_guid_is_not_new(ctx):
    if not ctx.brokers:
        raise harness.Skip("no broker (NA_TEST_BROKERS unset)")
    feeds = ctx.feed_server()
    base = feeds.url("").rstrip("/")
    feeds.set("/desk.xml", ITEMS.format(base=base, link=base + "/a", guid="g-1",
                                        text="Licences now needed for seven elements."))
    topic = ctx.topic("na.it.fetcher")
    cfg = ctx.write("sources.json", {"sources": [{"id": "desk",
                                                  "url": feeds.url("/desk.xml")}]})
    argv = [ctx.bin("newsalert-producer"), "--once", "--brokers", ctx.brokers,
            "--sources", cfg, "--state-dir", ctx.path("state"), "--topic", topic]

    def once(name):
        p = ctx.proc(argv, name=name)
        assert p.wait(60) == 0, p.tail()
        m = re.findall(r"event=summary (.*)", p.stderr_text())[-1]
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m)}

    s = once("first")
    assert s["produced"] == 2, s
    # Edited text under a tracking-decorated link (same canonical URL), and the
    # link-less item under a new GUID with the same text.
    feeds.set("/desk.xml", ITEMS.format(
        base=base, link=base + "/a?utm_source=rss#top", guid="g-2",
        text="Licences now needed for nine elements, up from seven."))
    s = once("second")
    assert s["produced"] == 1 and s["updates"] == 1 and s["skipped_dup"] == 1, s
    s = once("third")
    assert s["produced"] == 0, s

    recs = harness.kcat_consume(ctx.brokers, topic, count=3, timeout=30)
    by_key = {}
    for r in recs:
        by_key.setdefault(r["key"], []).append(r)
    assert len(by_key) == 2, by_key.keys()
    edited = [v for v in by_key.values() if len(v) == 2][0]
    assert [r["headers"].get("revision") for r in edited] == ["1", "2"]
    assert "nine elements" in json.loads(edited[1]["value"])["summary"]
    assert json.loads(edited[1]["value"])["url"] == base + "/a"


def producer_once(ctx, sources, topic, name, state="state"):
    """One --once round against the real broker; the summary line's counters."""
    cfg = ctx.write(name + "-sources.json", {"sources": sources})
    argv = [ctx.bin("newsalert-producer"), "--once", "--brokers", ctx.brokers,
            "--sources", cfg, "--state-dir", ctx.path(state), "--topic", topic]
    p = ctx.proc(argv, name=name)
    assert p.wait(120) == 0, p.tail()
    m = re.findall(r"event=summary (.*)", p.stderr_text())[-1]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m)}


def test_feed_with_more_items_than_the_history_is_not_new_again(ctx):
    if not ctx.brokers:
        raise harness.Skip("no broker (NA_TEST_BROKERS unset)")
    feeds = ctx.feed_server()
    n = 2500  # more than the 2,048 ids a feed used to keep
    items = "".join(
        "<item><title>Archive item %d</title><link>http://example.org/a/%d</link>"
        "<description>Entry %d of a long archive feed.</description></item>\n"
        % (i, i, i) for i in range(n))
    feeds.set("/archive.xml", '<?xml version="1.0"?>\n<rss version="2.0"><channel>'
              "<title>Archive</title><link>http://example.org/</link>\n%s"
              "</channel></rss>\n" % items, etag=False, last_modified=False)
    topic = ctx.topic("na.it.archive")
    sources = [{"id": "archive", "url": feeds.url("/archive.xml")}]
    s = producer_once(ctx, sources, topic, "first")
    assert s["items"] == n and s["produced"] == n and s["delivered"] == n, s
    for name in ("second", "third"):
        s = producer_once(ctx, sources, topic, name)
        assert s["items"] == n and s["skipped_seen"] == n and s["produced"] == 0, \
            (name, s)
    assert len(harness.kcat_consume(ctx.brokers, topic, timeout=30)) == n


def test_same_text_twice_in_one_document_is_a_duplicate_and_its_id_is_kept(ctx):
    """Issue: an item with the text of an earlier item of the same document
    (another link and GUID) was counted as seen, not as a duplicate, and its
    id was never remembered."""
    if not ctx.brokers:
        raise harness.Skip("no broker (NA_TEST_BROKERS unset)")
    feeds = ctx.feed_server()
    text = "Licences are now needed for exports of seven rare earth elements."
    two = "".join(
        "<item><title>Export rules</title><link>http://example.org/%s</link>"
        "<guid>%s</guid><description>%s</description></item>\n" % (g, g, text)
        for g in ("wire-1", "wire-1-copy"))

    def serve(items):
        feeds.set("/twice.xml", '<?xml version="1.0"?>\n<rss version="2.0"><channel>'
                  "<title>Twice</title><link>http://example.org/</link>\n%s"
                  "</channel></rss>\n" % items, etag=False, last_modified=False)

    serve(two)
    topic = ctx.topic("na.it.twice")
    sources = [{"id": "twice", "url": feeds.url("/twice.xml")}]
    s = producer_once(ctx, sources, topic, "first")
    assert s["produced"] == 1 and s["skipped_dup"] == 1 and s["skipped_seen"] == 0, s
    s = producer_once(ctx, sources, topic, "second")
    assert s["produced"] == 0 and s["skipped_seen"] == 2 and s["skipped_dup"] == 0, s
    # The first item leaves the feed: the copy is known by its own id.
    serve(two[two.index("</item>") + 8:])
    s = producer_once(ctx, sources, topic, "third")
    assert s["items"] == 1 and s["skipped_seen"] == 1 and s["skipped_dup"] == 0, s
    assert len(harness.kcat_consume(ctx.brokers, topic, timeout=20)) == 1


HEADLINE = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Wire</title><link>http://example.org/</link>
<item><title>China bans dual-use exports to Japanese military users</title>
<guid isPermaLink="false">wire-2026-0106-1</guid>{body}</item>
</channel></rss>
"""


def test_headline_only_item_gets_its_body_as_revision_2(ctx):
    if not ctx.brokers:
        raise harness.Skip("no broker (NA_TEST_BROKERS unset)")
    feeds = ctx.feed_server()
    # No validators: every poll reads the whole document and goes through
    # the seen-state (a 304 would prove nothing).
    feeds.set("/wire.xml", HEADLINE.format(body=""), etag=False, last_modified=False)
    topic = ctx.topic("na.it.headline")
    sources = [{"id": "wire", "url": feeds.url("/wire.xml")}]
    s = producer_once(ctx, sources, topic, "first")
    assert s["produced"] == 1, s
    # Minutes later the text follows under the same guid.
    feeds.set("/wire.xml", HEADLINE.format(
        body="<description>The Ministry of Commerce banned exports of dual-use "
             "items to Japanese military end users, citing rare earths.</description>"),
        etag=False, last_modified=False)
    s = producer_once(ctx, sources, topic, "second")
    assert s["produced"] == 1 and s["updates"] == 1 and s["skipped_seen"] == 0, s
    s = producer_once(ctx, sources, topic, "third")
    assert s["items"] == 1 and s["skipped_seen"] == 1 and s["produced"] == 0, s
    recs = harness.kcat_consume(ctx.brokers, topic, count=2, timeout=30)
    assert len(recs) == 2 and recs[0]["key"] == recs[1]["key"], recs
    assert [r["headers"].get("revision") for r in recs] == ["1", "2"], recs
    assert "Ministry of Commerce" in json.loads(recs[1]["value"])["summary"]


STORIES = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Desk</title><link>http://example.org/</link>
{items}</channel></rss>
"""
STORY = ("<item><title>Story {n}: export controls on dual-use items</title>"
         "<link>http://example.org/s/{n}</link><description>Report {n} on the "
         "ministry's new licence rules.</description></item>\n")


def serve_moved_feed(feeds):
    """/a.xml (story 1) and /b.xml (stories 1 and 2) with one ETag and one
    Last-Modified: /b.xml answers 304 to what /a.xml told."""
    when = int(time.time()) - 3600
    for path, ns in (("/a.xml", [1]), ("/b.xml", [1, 2])):
        feeds.set(path, STORIES.format(items="".join(STORY.format(n=n) for n in ns)),
                  etag='"shared-etag"', last_modified=when)


def test_new_url_does_not_inherit_the_old_urls_validators_on_start(ctx):
    if not ctx.brokers:
        raise harness.Skip("no broker (NA_TEST_BROKERS unset)")
    feeds = ctx.feed_server()
    serve_moved_feed(feeds)
    topic = ctx.topic("na.it.newurl")
    s = producer_once(ctx, [{"id": "desk", "url": feeds.url("/a.xml")}], topic, "a")
    assert s["produced"] == 1, s
    # The source's url changed while the producer was stopped.
    s = producer_once(ctx, [{"id": "desk", "url": feeds.url("/b.xml")}], topic, "b")
    req = feeds.requests("/b.xml")[0]
    assert req.header("If-None-Match") is None and \
        req.header("If-Modified-Since") is None, req.headers
    # Story 2 is new; story 1, known from the old URL, is not published again.
    assert s["not_modified"] == 0 and s["produced"] == 1 and s["skipped_seen"] == 1, s
    recs = harness.kcat_consume(ctx.brokers, topic, count=2, timeout=30)
    assert sorted(json.loads(r["value"])["url"] for r in recs) == [
        "http://example.org/s/1", "http://example.org/s/2"]


def conditional_requests(feeds, path):
    return [r for r in feeds.requests(path) if r.header("If-None-Match")]


def test_new_url_does_not_inherit_the_old_urls_validators_on_reload(ctx):
    if not ctx.brokers:
        raise harness.Skip("no broker (NA_TEST_BROKERS unset)")
    feeds = ctx.feed_server()
    serve_moved_feed(feeds)
    topic = ctx.topic("na.it.newurl")
    cfg = ctx.write("sources.json", {"sources": [
        {"id": "desk", "url": feeds.url("/a.xml"), "interval": "1s"}]})
    p = ctx.proc([ctx.bin("newsalert-producer"), "--brokers", ctx.brokers,
                  "--sources", cfg, "--state-dir", ctx.path("state"), "--topic", topic],
                 name="producer")
    # The validators of /a.xml are stored once it asks with them.
    harness.wait_until(lambda: conditional_requests(feeds, "/a.xml"), 30,
                       what="a conditional request to /a.xml")
    ctx.write("sources.json", {"sources": [
        {"id": "desk", "url": feeds.url("/b.xml"), "interval": "1s"}]})
    p.kill(signal.SIGHUP)
    feeds.wait_count(1, timeout=30, path="/b.xml")
    first = feeds.requests("/b.xml")[0]
    assert first.header("If-None-Match") is None, first.headers
    recs = harness.kcat_consume(ctx.brokers, topic, count=2, timeout=30)
    assert sorted(json.loads(r["value"])["url"] for r in recs) == [
        "http://example.org/s/1", "http://example.org/s/2"]
    feeds.wait_count(3, timeout=30, path="/b.xml")  # the new URL's validators now
    assert p.stop() == 0, p.tail()
    assert len(harness.kcat_consume(ctx.brokers, topic, timeout=30)) == 2
    assert events(p, "feed_url_changed")[0]["feed"] == "desk", p.tail()


def test_new_url_does_not_inherit_the_old_urls_validators_in_topic_mode(ctx):
    if not ctx.brokers:
        raise harness.Skip("no broker (NA_TEST_BROKERS unset)")
    feeds = ctx.feed_server()
    serve_moved_feed(feeds)
    topic = ctx.topic("na.it.newurl")
    common = ["--brokers", ctx.brokers, "--sources-topic", ctx.topic("na.it.sources"),
              "--state-topic", ctx.topic("na.it.fetchstate")]

    def load(path):
        cfg = ctx.write("sources.json", {"sources": [
            {"id": "desk", "url": feeds.url(path), "interval": "1s"}]})
        r = harness.run([ctx.bin("newsalert-producer"), "sources", "load", cfg] + common,
                        timeout=60)
        assert r.returncode == 0, r.stderr

    load("/a.xml")
    p = ctx.proc([ctx.bin("newsalert-producer")] + common +
                 ["--group-id", ctx.topic("na-it-newurl"), "--topic", topic,
                  "--state-dir", ctx.path("state")], name="producer")
    harness.wait_until(lambda: conditional_requests(feeds, "/a.xml"), 60,
                       what="a conditional request to /a.xml")
    load("/b.xml")
    feeds.wait_count(1, timeout=30, path="/b.xml")
    first = feeds.requests("/b.xml")[0]
    assert first.header("If-None-Match") is None, first.headers
    recs = harness.kcat_consume(ctx.brokers, topic, count=2, timeout=30)
    assert sorted(json.loads(r["value"])["url"] for r in recs) == [
        "http://example.org/s/1", "http://example.org/s/2"]
    assert p.stop() == 0, p.tail()


def test_removed_feeds_late_deliveries_do_not_bring_its_state_back_in_topic_mode(ctx):
    """Issue: in topic mode a feed removed (tombstone) while its articles
    waited for Kafka got its seen-state made again by their delivery
    reports, and nothing ever pruned it: memory kept per removal."""
    if not ctx.brokers:
        raise harness.Skip("no broker (NA_TEST_BROKERS unset)")
    feeds = ctx.feed_server()
    feeds.set("/gone.xml", rss("gone"))
    common = ["--brokers", ctx.brokers, "--sources-topic", ctx.topic("na.it.sources"),
              "--state-topic", ctx.topic("na.it.fetchstate")]

    def load(sources):
        cfg = ctx.write("sources.json", {"sources": sources})
        r = harness.run([ctx.bin("newsalert-producer"), "sources", "load", cfg] + common,
                        timeout=60)
        assert r.returncode == 0, r.stderr

    load([{"id": "gone", "url": feeds.url("/gone.xml"), "interval": "1h"}])
    metrics = ctx.path("producer.prom")
    # Records wait 8 s before they are sent: the tombstone comes first.
    p = ctx.proc([ctx.bin("newsalert-producer")] + common +
                 ["--group-id", ctx.topic("na-it-gone"), "--topic", ctx.topic("na.it.gone"),
                  "--state-dir", ctx.path("state"), "--metrics-file", metrics,
                  "--log-level", "debug", "-X", "linger.ms=8000"], name="producer")
    feeds.wait_count(1, timeout=60, path="/gone.xml")
    load([])
    p.wait_for_stderr(r"event=feed_removed feed=\"gone\"", 30)
    p.wait_for_stderr(r"event=delivered feed=\"gone\"", 30)
    text = p.stderr_text()
    assert text.index("event=feed_removed") < text.index("event=delivered"), p.tail()
    assert p.stop() == 0, p.tail()
    assert metric(metrics, "newsalert_producer_state_feeds") == 0, p.tail()


if __name__ == "__main__":
    harness.main(globals(), needs_broker=False, timeout=120)
