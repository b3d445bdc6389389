"""Full text from the page (docs/producer.md, "Full text"), through the
producer itself, against the real broker: the page's story in content, the
feed's text in summary, robots.txt obeyed, internal addresses refused,
failures that never delay or lose an item, page edits that are not news,
and every item a feed carries.

The feed server is on 127.0.0.1, so sources that should reach their pages
set "allow_private_addresses": true.
"""

import json
import os
import re
import signal
import time

import harness

SRC = os.environ.get("NA_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
PAGES = os.path.join(SRC, "tests", "data", "pages")


def page(name):
    with open(os.path.join(PAGES, name, "page.html"), "rb") as f:
        html = f.read()
    with open(os.path.join(PAGES, name, "expected.txt"), encoding="utf-8") as f:
        text = f.read()
    return html, text


def words(text):
    return re.findall(r"\w+", (text or "").lower())


def recall(got, want):
    g, w = words(got), words(want)
    pool = {}
    for x in g:
        pool[x] = pool.get(x, 0) + 1
    hit = 0
    for x in w:
        if pool.get(x, 0):
            pool[x] -= 1
            hit += 1
    return hit / max(1, len(w))


def rss(base, items):
    return ('<?xml version="1.0"?>\n<rss version="2.0"><channel><title>Wire</title>'
            "<link>%s/</link>\n%s</channel></rss>\n" % (base, "".join(items)))


def item(title, link, text, guid=None, author=None):
    return ("<item><title>%s</title><link>%s</link><guid>%s</guid>%s"
            "<description>%s</description></item>\n"
            % (title, link, guid or link, "<author>%s</author>" % author if author else "",
               text))


def metric(path, name, **labels):
    with open(path) as f:
        for line in f:
            if line.startswith(name + "{") and \
                    all('%s="%s"' % kv in line for kv in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def need_broker(ctx):
    if not ctx.brokers:
        raise harness.Skip("no broker (NA_TEST_BROKERS unset)")


def producer_argv(ctx, sources, topic, name, extra=()):
    cfg = ctx.write(name + "-sources.json", {"sources": sources})
    return [ctx.bin("newsalert-producer"), "--brokers", ctx.brokers, "--sources", cfg,
            "--state-dir", ctx.path(name + "-state"), "--topic", topic,
            "--metrics-file", ctx.path(name + ".prom"), "--log-level", "debug"] + list(extra)


def run_once(ctx, sources, topic, name="producer", extra=(), timeout=60):
    p = ctx.proc(producer_argv(ctx, sources, topic, name, ["--once"] + list(extra)),
                 name=name)
    assert p.wait(timeout) == 0, p.tail()
    return p, ctx.path(name + ".prom")


def records(ctx, topic, n, timeout=30):
    recs = harness.kcat_consume(ctx.brokers, topic, count=n, timeout=timeout)
    out = {}
    for r in recs:
        art = json.loads(r["value"])
        out[(art["url"] or art["title"]).rsplit("/", 1)[-1]] = (art, r["headers"])
    return out


def test_page_story_goes_to_content_feed_text_to_summary(ctx):
    need_broker(ctx)
    feeds = ctx.feed_server()
    base = feeds.url("").rstrip("/")
    html, want = page("regional-daily-sidebar")
    live_html, live_want = page("live-blog-posts")
    feeds.set("/robots.txt", "User-agent: *\nDisallow: /admin/\n", "text/plain")
    feeds.set("/business/port-strike", html, "text/html; charset=utf-8")
    feeds.set("/live/minerals", live_html, "text/html")
    feeds.set("/wire.xml", rss(base, [
        item("Port strike", base + "/business/port-strike", "Dock workers walk out."),
        item("Minerals live", base + "/live/minerals", "Reaction as it happens.",
             author="desk@wire.example (Wire desk)"),
    ]))
    topic = ctx.topic("na.it.fulltext")
    p, prom = run_once(ctx, [{"id": "wire", "url": feeds.url("/wire.xml"),
                              "full_text": True, "allow_private_addresses": True,
                              "headers": {"Authorization": "Bearer feed-only"}}], topic)
    recs = records(ctx, topic, 2)
    art, hdrs = recs["port-strike"]
    assert hdrs.get("full-text") == "ok", hdrs
    assert "full-text-reason" not in hdrs, hdrs
    assert art["summary"] == "Dock workers walk out.", art["summary"]
    assert recall(art["content"], want) >= 0.95, art["content"]
    assert "Most read" not in art["content"] and "Coastal Media Group" not in art["content"]
    # the page's byline and time where the feed has none
    assert art["authors"] == ["Karin Holm"], art["authors"]
    assert art["published_at"] == "2026-03-03T06:42:00Z", art["published_at"]
    live, lhdrs = recs["minerals"]
    assert lhdrs.get("full-text") == "ok", lhdrs
    assert recall(live["content"], live_want) >= 0.9, live["content"]
    assert live["authors"] == ["Wire desk"], live["authors"]  # the feed's own stays
    # robots.txt read once for the origin, before the pages; pages asked
    # for as HTML, with the source's headers on its own origin only
    assert feeds.count("/robots.txt") == 1, feeds.requests()
    first_page = min(r.time for r in feeds.requests() if r.path.startswith(("/business",
                                                                            "/live")))
    assert feeds.requests("/robots.txt")[0].time < first_page
    req = feeds.requests("/business/port-strike")[0]
    assert "text/html" in req.header("Accept"), req.headers
    assert req.header("User-Agent", "").startswith("newsalert/"), req.headers
    assert req.header("Authorization") == "Bearer feed-only", req.headers
    assert metric(prom, "newsalert_producer_full_text_total", feed="wire", result="ok") == 2
    p.wait_for_stderr(r"event=summary [^\n]*full_text_ok=2 full_text_failed=0", 1)


def test_internal_addresses_refused_without_permission(ctx):
    need_broker(ctx)
    feeds = ctx.feed_server()
    base = feeds.url("").rstrip("/")
    html, _ = page("regional-daily-sidebar")
    feeds.set("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    feeds.set("/internal/page", html, "text/html")
    feeds.set("/wire.xml", rss(base, [
        item("Internal", base + "/internal/page", "The feed's own teaser."),
    ]))
    topic = ctx.topic("na.it.fulltext")
    t0 = time.monotonic()
    # the feed itself may be internal (its URL is configured); its items'
    # pages may not, and allow_private_redirects does not change that
    p, prom = run_once(ctx, [{"id": "wire", "url": feeds.url("/wire.xml"),
                              "full_text": True, "allow_private_redirects": True}], topic)
    assert time.monotonic() - t0 < 30
    (art, hdrs), = records(ctx, topic, 1).values()
    assert hdrs.get("full-text") == "failed", hdrs
    assert hdrs.get("full-text-reason") == "private_address", hdrs
    assert art["summary"] == "The feed's own teaser." and art["content"] == "", art
    # no request ever reached the server for the page or its robots.txt
    assert feeds.count("/internal/page") == 0 and feeds.count("/robots.txt") == 0, \
        feeds.requests()
    line = p.wait_for_stderr(r"event=full_text_failed [^\n]*", 1).group(0)
    assert "reason=private_address" in line and "127.0.0.1" in line, line
    assert "allow_private_addresses" in line, line
    assert metric(prom, "newsalert_producer_full_text_failures_total", feed="wire",
                  reason="private_address") == 1


def test_robots_disallow_keeps_the_feed_text(ctx):
    need_broker(ctx)
    feeds = ctx.feed_server()
    base = feeds.url("").rstrip("/")
    html, want = page("wire-dateline")
    feeds.set("/robots.txt",
              "User-agent: otherbot\nDisallow: /\n\n"
              "User-agent: newsalert\nDisallow: /members/\n", "text/plain")
    feeds.set("/members/story-one", html, "text/html")
    feeds.set("/open/story-two", html, "text/html")
    feeds.set("/wire.xml", rss(base, [
        item("Members only", base + "/members/story-one", "Teaser for members."),
        item("Open", base + "/open/story-two", "Teaser for all."),
    ]))
    topic = ctx.topic("na.it.fulltext")
    p, prom = run_once(ctx, [{"id": "wire", "url": feeds.url("/wire.xml"),
                              "full_text": True, "allow_private_addresses": True}], topic)
    recs = records(ctx, topic, 2)
    members, mh = recs["story-one"]
    opened, oh = recs["story-two"]
    assert mh.get("full-text") == "disallowed" and mh.get("full-text-reason") == "robots", mh
    assert members["content"] == "" and members["summary"] == "Teaser for members."
    assert oh.get("full-text") == "ok", oh
    assert recall(opened["content"], want) >= 0.95
    assert feeds.count("/members/story-one") == 0, feeds.requests()
    assert feeds.count("/robots.txt") == 1
    assert metric(prom, "newsalert_producer_full_text_total", feed="wire",
                  result="disallowed") == 1
    assert metric(prom, "newsalert_producer_full_text_failures_total", feed="wire",
                  reason="robots") == 1


def test_page_failures_never_delay_or_lose_items(ctx):
    need_broker(ctx)
    feeds = ctx.feed_server()
    base = feeds.url("").rstrip("/")
    # "localhost" is another origin on the same server: the slow page there
    # does not hold the slot of the others
    other = base.replace("127.0.0.1", "localhost")
    html, _ = page("paywall-teaser")
    feeds.set("/robots.txt", "", "text/plain")
    feeds.set("/slow", html, "text/html")
    feeds.hang("/slow", 120)
    feeds.set("/no-story", "<p>Too short.</p>", "text/html")
    feeds.set("/pdf", b"%PDF-1.7\n", "application/pdf")
    feeds.fail("/gone", 404)
    feeds.fail("/broken", 503, retry_after=600)
    feeds.set("/after-broken", html, "text/html")
    feeds.set("/wire.xml", rss(base, [
        item("Slow", other + "/slow", "Slow teaser."),
        item("No story", base + "/no-story", "No story teaser."),
        item("PDF", base + "/pdf", "PDF teaser."),
        item("Gone", base + "/gone", "Gone teaser."),
        item("Broken", base + "/broken", "Broken teaser."),
        item("After", base + "/after-broken", "After teaser."),
        # no link: nothing to fetch
        '<item><title>Unlinked</title><guid isPermaLink="false">u-1</guid>'
        "<description>Unlinked teaser.</description></item>",
        item("Mail", "mailto:desk@wire.example", "Mail teaser."),
    ]))
    topic = ctx.topic("na.it.fulltext")
    t0 = time.monotonic()
    # one transfer per origin at a time: its pages go in feed order
    p, prom = run_once(ctx, [{"id": "wire", "url": feeds.url("/wire.xml"),
                              "full_text": True, "allow_private_addresses": True}], topic,
                       extra=["--full-text-wait", "4s", "--fetch-per-host", "1"])
    took = time.monotonic() - t0
    recs = records(ctx, topic, 8)
    reasons = {k: (v[1].get("full-text"), v[1].get("full-text-reason"))
               for k, v in recs.items()}
    for art, hdrs in recs.values():
        assert art["summary"].endswith("teaser.") and art["content"] == "", art
    assert reasons == {
        "slow": ("failed", "wait"),
        "no-story": ("failed", "no_text"),
        "pdf": ("failed", "not_html"),
        "gone": ("failed", "http_4xx"),
        "broken": ("failed", "http_5xx"),
        # the 503 (Retry-After 600 s) backs the site off: not asked again
        "after-broken": ("failed", "backoff"),
        "Unlinked": ("failed", "no_link"),
        "Mail": ("failed", "no_link"),  # the parser keeps http(s) links only
    }, reasons
    assert feeds.count("/after-broken") == 0
    assert took < 4 + 20, took  # the wait, not the hang, bounds the run
    assert metric(prom, "newsalert_producer_full_text_failures_total", feed="wire",
                  reason="wait") == 1


def test_page_edit_is_not_a_new_article_and_conditional_get(ctx):
    need_broker(ctx)
    feeds = ctx.feed_server()
    base = feeds.url("").rstrip("/")
    v1, want1 = page("german-sections")
    v2, _ = page("spanish-utf8")
    feeds.set("/robots.txt", "User-agent: *\nDisallow:\n", "text/plain")
    feeds.set("/story", v1, "text/html")
    # without validators the feed is parsed on every poll: the seen-state
    # decides, not a 304
    # teasers long enough for a content fingerprint (seen.h), so that an
    # edit of the feed's text is seen
    t1 = "The first teaser of the story, as the feed carried it."
    t2 = "The second teaser of the story, edited by the desk."
    feeds.set("/wire.xml", rss(base, [item("Story", base + "/story", t1)]),
              etag=False, last_modified=False)
    topic = ctx.topic("na.it.fulltext")
    p = ctx.proc(producer_argv(ctx, [{"id": "wire", "url": feeds.url("/wire.xml"),
                                      "interval": "1s", "full_text": True,
                                      "allow_private_addresses": True}], topic, "daemon"),
                 name="daemon")
    (rec,) = harness.kcat_consume(ctx.brokers, topic, count=1, timeout=30)
    art = json.loads(rec["value"])
    assert rec["headers"]["revision"] == "1" and rec["headers"]["full-text"] == "ok"
    assert recall(art["content"], want1) >= 0.95
    # the page is edited, the feed is not: nothing new, the page not asked again
    feeds.set("/story", v2, "text/html")
    n = feeds.count("/wire.xml")
    feeds.wait_count(n + 3, 30, path="/wire.xml")
    assert len(harness.kcat_consume(ctx.brokers, topic)) == 1
    assert feeds.count("/story") == 1
    # the page back as it was and the feed's item edited: revision 2, the
    # page asked for with its validators, a 304, the story from the cache
    feeds.set("/story", v1, "text/html")
    feeds.set("/wire.xml", rss(base, [item("Story", base + "/story", t2)]),
              etag=False, last_modified=False)
    recs = harness.kcat_consume(ctx.brokers, topic, count=2, timeout=30)
    art2 = json.loads(recs[1]["value"])
    assert recs[1]["headers"]["revision"] == "2", recs[1]["headers"]
    assert recs[1]["headers"]["full-text"] == "ok", recs[1]["headers"]
    assert art2["summary"] == t2 and art2["content"] == art["content"], art2
    second = feeds.requests("/story")[1]
    assert second.header("If-None-Match") == feeds.etag("/story"), second.headers
    assert second.status == 304
    p.kill(signal.SIGTERM)
    assert p.wait(30) == 0, p.tail()


def test_auto_fetches_only_short_items(ctx):
    need_broker(ctx)
    feeds = ctx.feed_server()
    base = feeds.url("").rstrip("/")
    html, _ = page("court-report-blockquote")
    feeds.set("/robots.txt", "", "text/plain")
    feeds.set("/short", html, "text/html")
    feeds.set("/long", html, "text/html")
    long_text = "A whole paragraph of text in the feed itself. " * 6
    feeds.set("/wire.xml", rss(base, [
        item("Short", base + "/short", "Just a line."),
        item("Long", base + "/long", long_text),
    ]))
    topic = ctx.topic("na.it.fulltext")
    run_once(ctx, [{"id": "wire", "url": feeds.url("/wire.xml"), "full_text": "auto",
                    "full_text_min_chars": 200, "allow_private_addresses": True}], topic)
    recs = records(ctx, topic, 2)
    assert recs["short"][1].get("full-text") == "ok", recs["short"][1]
    assert "full-text" not in recs["long"][1], recs["long"][1]
    assert recs["long"][0]["summary"] == long_text.strip()
    assert feeds.count("/long") == 0 and feeds.count("/short") == 1


def test_shutdown_produces_items_still_waiting(ctx):
    need_broker(ctx)
    feeds = ctx.feed_server()
    base = feeds.url("").rstrip("/")
    feeds.set("/robots.txt", "", "text/plain")
    feeds.set("/hang", "<p>never</p>", "text/html")
    feeds.hang("/hang", 120)
    feeds.set("/wire.xml", rss(base, [item("Hang", base + "/hang", "Held teaser.")]))
    topic = ctx.topic("na.it.fulltext")
    p = ctx.proc(producer_argv(ctx, [{"id": "wire", "url": feeds.url("/wire.xml"),
                                      "full_text": True, "allow_private_addresses": True}],
                               topic, "daemon", ["--full-text-wait", "300s"]), name="daemon")
    feeds.wait_for(lambda rs: any(r.path == "/hang" for r in rs), 30, "the page request",
                   answered=False)
    t0 = time.monotonic()
    p.kill(signal.SIGTERM)
    assert p.wait(30) == 0, p.tail()
    assert time.monotonic() - t0 < 20
    (rec,) = harness.kcat_consume(ctx.brokers, topic, count=1, timeout=30)
    assert rec["headers"].get("full-text") == "failed", rec["headers"]
    assert rec["headers"].get("full-text-reason") == "shutdown", rec["headers"]
    assert json.loads(rec["value"])["summary"] == "Held teaser."


def test_pages_share_the_per_host_budget(ctx):
    need_broker(ctx)
    feeds = ctx.feed_server()
    base = feeds.url("").rstrip("/")
    html, _ = page("minimal-no-body")
    feeds.set("/robots.txt", "", "text/plain")
    paths = ["/p%d" % i for i in range(5)]
    for path in paths:
        feeds.set(path, html, "text/html")
        feeds.hang(path, 0.4)
    feeds.set("/wire.xml", rss(base, [item("P%d" % i, base + path, "Teaser %d." % i)
                                      for i, path in enumerate(paths)]))
    topic = ctx.topic("na.it.fulltext")
    run_once(ctx, [{"id": "wire", "url": feeds.url("/wire.xml"), "full_text": True,
                    "allow_private_addresses": True}], topic,
             extra=["--fetch-per-host", "1"])
    recs = records(ctx, topic, 5)
    assert all(h.get("full-text") == "ok" for _, h in recs.values()), recs
    spans = sorted((r.time, r.done) for r in feeds.requests() if r.path in paths)
    assert len(spans) == 5
    for (s1, e1), (s2, _) in zip(spans, spans[1:]):
        assert s2 >= e1 - 0.05, spans  # one at a time on this host


def test_every_item_a_feed_carries_is_produced(ctx):
    """Through the daemon: each feed format's fixture of every combination
    (tests/data/feeds/*-every-item: one item per field that alone makes an
    article, and one with none) gives one record per article, and the item
    with none is counted, not produced."""
    need_broker(ctx)
    feeds = ctx.feed_server()
    fixtures = {"rss": ("rss-every-item/input.xml", "application/rss+xml"),
                "rdf": ("rdf-every-item/input.xml", "application/rdf+xml"),
                "atom": ("atom-every-item/input.xml", "application/atom+xml"),
                "json": ("jsonfeed-every-item/input.json", "application/feed+json")}
    want = {}
    sources = []
    for fmt, (path, ctype) in fixtures.items():
        folder = os.path.join(SRC, "tests", "data", "feeds", os.path.dirname(path))
        with open(os.path.join(SRC, "tests", "data", "feeds", path), "rb") as f:
            feeds.set("/" + fmt, f.read(), ctype)
        with open(os.path.join(folder, "expected.jsonl")) as f:
            want[fmt] = sum(1 for line in f if line.strip())
        sources.append({"id": fmt, "url": feeds.url("/" + fmt)})
    topic = ctx.topic("na.it.fulltext")
    _, prom = run_once(ctx, sources, topic)
    total = sum(want.values())
    recs = harness.kcat_consume(ctx.brokers, topic, count=total, timeout=30)
    got = {}
    for r in recs:
        got[r["headers"]["source"]] = got.get(r["headers"]["source"], 0) + 1
    assert got == want, (got, want)
    assert len({json.loads(r["value"])["id"] for r in recs}) == total
    time.sleep(1)
    assert len(harness.kcat_consume(ctx.brokers, topic)) == total  # the empty items are not
    for fmt in ("rss", "rdf", "atom", "jsonfeed"):
        assert metric(prom, "newsalert_feed_items_empty_total", format=fmt) == 1, fmt


if __name__ == "__main__":
    harness.main(globals())
