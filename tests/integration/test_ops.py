#!/usr/bin/env python3
"""Operations on a real broker: SIGHUP reloads the rules mid-stream (the new
rule applies, no message is lost, a broken file keeps the old rules), and
/metrics scraped during a run counts what happened (producer and consumer),
and a feed's series leave /metrics when the feed leaves the sources (SIGHUP)
or the instance (topic mode).

SIGHUP also swaps in the config file's routes once the old ones are quiet."""

import hashlib
import json
import re
import signal
import time
import urllib.error
import urllib.request

import harness

FAST = ["--deliver-backoff", "100ms", "--deliver-backoff-max", "1s",
        "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"]

RULES_V1 = {"topics": [{"name": "alpha", "threshold": 1, "query": "zebra"}]}
RULES_V2 = {"topics": [{"name": "alpha", "threshold": 1, "query": "zebra"},
                       {"name": "beta", "threshold": 1, "query": "quokka"}]}


def require_listener(ctx, prog):
    r = harness.run([ctx.bin(prog), "--help"], timeout=30)
    if "--http-listen" not in r.stdout:
        raise AssertionError("%s has no --http-listen yet: daemon.h/httpd.h are not wired "
                           "into it (see docs/operations.md)" % prog)


def http_get(url, timeout=5):
    """(status, body text) without raising on non-2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8")
    except (urllib.error.URLError, ConnectionError):
        return 0, ""  # not listening (yet)


def scrape(port):
    """{(name, labels): value} of the daemon's /metrics."""
    status, text = http_get("http://127.0.0.1:%d/metrics" % port)
    assert status == 200, status
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$", line)
        if m:
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def metric(metrics, name, labels=""):
    return metrics.get((name, "{%s}" % labels if labels else ""), 0.0)


def metric_sum(metrics, name, label):
    """Sum of `name` over every label set that holds `label` (feed="x")."""
    return sum(v for (n, labels), v in metrics.items() if n == name and label in labels)


def article(n, title):
    url = "http://news.test/ops/%d" % n
    return {"schema": "article/v1", "id": hashlib.sha256(url.encode()).hexdigest(),
            "url": url, "title": title, "summary": "", "content": "", "authors": [],
            "categories": [], "lang": "en", "published_at": None,
            "fetched_at": "2026-01-06T09:00:00Z",
            "source": {"id": "ops", "name": "Ops Wire", "feed_url": "http://news.test/f"}}


def produce(ctx, topic, articles):
    harness.kcat_produce(ctx.brokers, topic,
                         [(a["id"], json.dumps(a)) for a in articles])


class Consumer:
    def __init__(self, ctx, rules_path, hook, name="consumer"):
        self.ctx = ctx
        self.topic = ctx.topic("na.ops.articles")
        self.port = harness.free_port()
        self.cfg = {
            "brokers": ctx.brokers, "topic": self.topic,
            "dlq_topic": ctx.topic("na.ops.dlq"), "ledger_topic": ctx.topic("na.ops.alerts"),
            "group_id": harness.unique_topic("na-ops-group"), "rules": rules_path,
            "http_listen": "127.0.0.1:%d" % self.port,
            # The test's articles are one templated story told many times;
            # it counts one alert per article, so grouping is off.
            "stories": False,
            "routes": [{"name": "hook", "url": hook.url("/json"), "format": "json",
                        "digest_threshold": 1000000}]}
        self.cfg_path = ctx.write(name + ".json", self.cfg)
        self.proc = ctx.proc([ctx.bin("newsalert-consumer"), "--config", self.cfg_path]
                             + FAST, name=name)
        harness.wait_until(lambda: http_get(self.url("/readyz"))[0] == 200, 60,
                           what="consumer /readyz 200")

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)


def alerts(hook):
    """[(article url, topic)] answered 200."""
    return [(b["article"]["url"], b["topic"]) for b in hook.bodies("/json", status=200)]


def reload_and_wait(proc, event, since):
    """SIGHUP, then the log line event=<event> after offset `since` of stderr."""
    proc.kill(signal.SIGHUP)
    deadline = time.time() + 15
    while time.time() < deadline:
        text = proc.stderr_text()[since:]
        if re.search(r"event=%s\b.*what=rules|\"event\":\"%s\".*\"what\":\"rules\""
                     % (event, event), text):
            return
        if not proc.alive():
            raise AssertionError("the consumer died on SIGHUP (exit %s)" % proc.returncode)
        time.sleep(0.1)
    raise AssertionError("no event=%s what=rules logged within 15 s of SIGHUP" % event)


def test_sighup_swaps_routes_without_losing_a_message(ctx):
    rules = ctx.write("rules.json", RULES_V1)
    hook = ctx.webhook()
    c = Consumer(ctx, rules, hook)
    n = 6
    produce(ctx, c.topic, [article(300 + i, "zebra spotted, note %d" % i) for i in range(n)])
    harness.wait_until(lambda: len(alerts(hook)) >= n, 60, what="alerts on the old route")
    # The config file now names another route; SIGHUP swaps it in.
    c.cfg["routes"] = [{"name": "hook2", "url": hook.url("/json2"), "format": "json",
                        "digest_threshold": 1000000}]
    ctx.write(c.cfg_path.rsplit("/", 1)[1], c.cfg)
    since = len(c.proc.stderr_text())
    c.proc.kill(signal.SIGHUP)
    harness.wait_until(lambda: "event=routes_swapped" in c.proc.stderr_text()[since:], 30,
                       what="event=routes_swapped")
    batch = [article(400 + i, "zebra spotted again, note %d" % i) for i in range(n)]
    produce(ctx, c.topic, batch)
    harness.wait_until(lambda: len(hook.bodies("/json2", status=200)) >= n, 60,
                       what="alerts on the new route")
    assert len(alerts(hook)) == n, "the old route got alerts after the swap"
    got = {b["article"]["url"] for b in hook.bodies("/json2", status=200)}
    assert got == {a["url"] for a in batch}
    assert c.proc.alive()


def test_sighup_reloads_rules_mid_stream_without_losing_a_message(ctx):
    require_listener(ctx, "newsalert-consumer")
    rules = ctx.write("rules.json", RULES_V1)
    hook = ctx.webhook()
    c = Consumer(ctx, rules, hook)
    n = 8
    batch1 = [article(i, "zebra and quokka seen, part %d" % i) for i in range(n)]
    batch2 = [article(100 + i, "zebra and quokka again, part %d" % i) for i in range(n)]
    batch3 = [article(200 + i, "zebra and quokka once more, part %d" % i) for i in range(n)]

    produce(ctx, c.topic, batch1)
    harness.wait_until(lambda: len(alerts(hook)) >= n, 60, what="batch 1 alerts")

    ctx.write("rules.json", RULES_V2)
    reload_and_wait(c.proc, "reloaded", 0)
    produce(ctx, c.topic, batch2)
    harness.wait_until(lambda: len(alerts(hook)) >= 3 * n, 60, what="batch 2 alerts")

    # A broken rules file: refused, the rules in force stay.
    mark = len(c.proc.stderr_text())
    with open(rules, "w") as f:
        f.write('{"topics": [{"name": "alpha", "query": ')
    reload_and_wait(c.proc, "reload_failed", mark)
    produce(ctx, c.topic, batch3)
    harness.wait_until(lambda: len(alerts(hook)) >= 5 * n, 60, what="batch 3 alerts")
    time.sleep(1.0)  # anything extra would show up now

    got = alerts(hook)
    assert len(got) == len(set(got)), "duplicate alerts"
    want = {(a["url"], "alpha") for a in batch1 + batch2 + batch3}
    want |= {(a["url"], "beta") for a in batch2 + batch3}
    assert set(got) == want, "missing %s, unexpected %s" % (
        sorted(want - set(got))[:5], sorted(set(got) - want)[:5])

    m = scrape(c.port)
    assert metric(m, "newsalert_reloads_total", 'what="rules",result="ok"') == 1
    assert metric(m, "newsalert_reloads_total", 'what="rules",result="failed"') == 1
    assert metric(m, "newsalert_consumer_articles_consumed_total") == 3 * n
    rc = c.proc.stop(60)
    assert rc == 0, "consumer exited %s:\n%s" % (rc, c.proc.tail())


def test_consumer_metrics_scraped_during_a_run_match_what_happened(ctx):
    require_listener(ctx, "newsalert-consumer")
    rules = ctx.write("rules.json", RULES_V2)
    hook = ctx.webhook()
    c = Consumer(ctx, rules, hook)
    status, body = http_get(c.url("/healthz"))
    assert status == 200, body
    good = [article(i, "zebra %d" % i) for i in range(6)] + \
        [article(50 + i, "zebra and quokka %d" % i) for i in range(4)] + \
        [article(90 + i, "nothing to see %d" % i) for i in range(3)]
    produce(ctx, c.topic, good)
    harness.kcat_produce(ctx.brokers, c.topic, [("poison-1", "not json at all"),
                                               ("poison-2", "{\"schema\": 1}")])
    want_alerts = 6 + 4 * 2
    harness.wait_until(lambda: len(alerts(hook)) >= want_alerts, 60, what="alerts")
    # The receiver records a 200 before the consumer has read the answer and
    # counted it: wait for the counters, not only for the receiver.
    harness.wait_until(
        lambda: (lambda m: metric(m, "newsalert_consumer_articles_consumed_total") >= 15 and
                 metric(m, "newsalert_consumer_alerts_sent_total", 'route="hook"') >=
                 want_alerts)(scrape(c.port)),
        30, what="consumed and sent counters")
    m = scrape(c.port)
    assert metric(m, "newsalert_consumer_articles_consumed_total") == len(good) + 2
    assert metric(m, "newsalert_consumer_poison_records_total") == 2
    assert metric(m, "newsalert_consumer_alerts_sent_total", 'route="hook"') == \
        len(hook.bodies("/json", status=200)) == want_alerts
    assert metric(m, "newsalert_consumer_alerts_dead_lettered_total", 'route="hook"') == 0
    assert metric(m, "newsalert_consumer_classify_seconds_count") == len(good)
    # A gauge set once per loop turn: it may lag the counters by a turn.
    harness.wait_until(lambda: metric(scrape(c.port), "newsalert_consumer_alerts_pending")
                       == 0, 10, what="no alert pending")

    status, body = http_get(c.url("/readyz"))
    assert status == 200, body
    status, body = http_get(c.url("/status.json"))
    assert status == 200
    doc = json.loads(body)
    assert doc.get("ready") is True
    assert "hook.url" not in body and hook.url("/json") not in body, "route URL leaked"

    # SIGTERM: drains and exits 0 well within the drain deadline.
    t0 = time.time()
    rc = c.proc.stop(60)
    assert rc == 0, "consumer exited %s:\n%s" % (rc, c.proc.tail())
    assert time.time() - t0 < 30


RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Ops</title>
%s</channel></rss>"""


def test_producer_metrics_scraped_during_a_run_match_what_happened(ctx):
    require_listener(ctx, "newsalert-producer")
    items = "".join("<item><title>Story %d</title><link>http://news.test/p/%d</link>"
                    "<guid>http://news.test/p/%d</guid></item>" % (i, i, i) for i in range(5))
    feeds = ctx.feed_server({"/ok.xml": ((RSS % items).encode(), "application/rss+xml")})
    feeds.fail("/down.xml", 503)
    port = harness.free_port()
    sources = ctx.write("sources.json", {"sources": [
        {"id": "ok", "url": feeds.url("/ok.xml"), "interval": "1s"},
        {"id": "down", "url": feeds.url("/down.xml"), "interval": "1s"}]})
    topic = ctx.topic("na.ops.produced")
    p = ctx.proc([ctx.bin("newsalert-producer"), "--brokers", ctx.brokers, "--sources",
                  sources, "--state-dir", ctx.path("state"), "--topic", topic,
                  "--http-listen", "127.0.0.1:%d" % port], name="producer")
    harness.wait_until(lambda: http_get("http://127.0.0.1:%d/healthz" % port)[0] == 200, 60,
                       what="producer /healthz 200")

    def settled():
        m = scrape(port)
        return (metric(m, "newsalert_producer_articles_delivered_total") >= 5 and
                metric(m, "newsalert_producer_not_modified_total", 'feed="ok"') >= 1 and
                metric_sum(m, "newsalert_producer_fetch_errors_total", 'feed="down"') >= 1
                ) and m
    m = harness.wait_until(settled, 60, interval=0.3, what="producer counters")
    assert metric(m, "newsalert_producer_articles_produced_total") == 5
    assert metric(m, "newsalert_producer_articles_delivered_total") == 5
    assert metric(m, "newsalert_producer_delivery_errors_total") == 0
    # Every fetch of down.xml failed and was counted as a fetch error.
    assert metric_sum(m, "newsalert_producer_fetch_errors_total", 'feed="down"') == \
        feeds.count("/down.xml"), feeds.count("/down.xml")
    assert metric_sum(m, "newsalert_producer_fetch_errors_total", 'feed="ok"') == 0
    # Every answered fetch of ok.xml is counted (one may be in flight now).
    fetches = metric(m, "newsalert_producer_fetches_total", 'feed="ok"')
    assert feeds.count("/ok.xml") - 1 <= fetches <= feeds.count("/ok.xml"), (
        fetches, feeds.count("/ok.xml"))
    assert metric(m, "newsalert_producer_feed_last_success_seconds", 'feed="ok"') > \
        time.time() - 60
    records = harness.kcat_consume(ctx.brokers, topic, count=5, timeout=30)
    assert len(records) == 5
    rc = p.stop(60)
    assert rc == 0, "producer exited %s:\n%s" % (rc, p.tail())


def test_producer_readyz_fails_while_a_critical_feed_is_stale(ctx):
    items = "<item><title>Story</title><link>http://news.test/r/1</link></item>"
    feeds = ctx.feed_server({"/ok.xml": ((RSS % items).encode(), "application/rss+xml")})
    feeds.fail("/critical.xml", 503)
    port = harness.free_port()
    sources = ctx.write("sources.json", {"sources": [
        {"id": "ok", "url": feeds.url("/ok.xml"), "interval": "1s", "critical": True},
        {"id": "critical", "url": feeds.url("/critical.xml"), "interval": "1s",
         "critical": True, "stale_after": "2s"},
        {"id": "minor", "url": feeds.url("/missing.xml"), "interval": "1s",
         "stale_after": "1s"}]})
    p = ctx.proc([ctx.bin("newsalert-producer"), "--brokers", ctx.brokers, "--sources",
                  sources, "--state-dir", ctx.path("state"), "--topic",
                  ctx.topic("na.ops.ready"), "--http-listen", "127.0.0.1:%d" % port,
                  # Failed fetches back off; keep the backoff short so that
                  # recovery shows within the test's wait.
                  "--retry-base", "1s", "--retry-max", "2s"],
                 name="producer")
    url = "http://127.0.0.1:%d" % port
    # Stale after 2 s without a successful fetch: not ready, and says which.
    status, body = harness.wait_until(
        lambda: (lambda r: r if r[0] == 503 else None)(http_get(url + "/readyz")), 30,
        what="/readyz 503")
    assert "critical" in body and "stale" in body and "minor" not in body, body
    assert http_get(url + "/healthz")[0] == 200
    doc = json.loads(http_get(url + "/status.json")[1])
    byid = {f["id"]: f for f in doc["feeds"]}
    assert byid["critical"]["stale"] and byid["critical"]["critical"]
    assert byid["minor"]["stale"] and not byid["minor"]["critical"]
    assert not byid["ok"]["stale"]
    # The feed recovers: ready again.
    feeds.clear_fault("/critical.xml")
    feeds.set("/critical.xml", (RSS % items).encode(), "application/rss+xml")
    harness.wait_until(lambda: http_get(url + "/readyz")[0] == 200, 60, what="/readyz 200")
    assert p.stop(60) == 0


def feeds_in(metrics):
    """The feed ids that have at least one series in a scrape."""
    out = set()
    for (_, labels) in metrics:
        m = re.search(r'(?:^\{|,)feed="([^"]*)"', labels)
        if m:
            out.add(m.group(1))
    return out


def test_removed_feed_series_leave_metrics_on_sighup(ctx):
    # Regression: the series of a feed removed from the sources stayed in
    # /metrics for ever with frozen values, so the shipped Grafana staleness
    # panel showed the removed feed as ever more stale. They now go with the
    # feed, and come back from zero when it returns.
    require_listener(ctx, "newsalert-producer")
    item = "<item><title>Story</title><link>http://news.test/g/%s</link></item>"
    feeds = ctx.feed_server({
        "/keep.xml": ((RSS % (item % "k")).encode(), "application/rss+xml"),
        "/gone.xml": ((RSS % (item % "g")).encode(), "application/rss+xml")})
    port = harness.free_port()
    both = {"sources": [{"id": "keep", "url": feeds.url("/keep.xml"), "interval": "1s"},
                        {"id": "gone", "url": feeds.url("/gone.xml"), "interval": "1s"}]}
    sources = ctx.write("sources.json", both)
    p = ctx.proc([ctx.bin("newsalert-producer"), "--brokers", ctx.brokers, "--sources",
                  sources, "--state-dir", ctx.path("state"), "--topic",
                  ctx.topic("na.ops.removed"), "--http-listen", "127.0.0.1:%d" % port],
                 name="producer")
    url = "http://127.0.0.1:%d" % port
    harness.wait_until(lambda: http_get(url + "/healthz")[0] == 200, 60,
                       what="producer /healthz 200")

    def fetched(feed):
        m = scrape(port)
        return (metric(m, "newsalert_producer_fetches_total", 'feed="%s"' % feed) >= 2 and
                metric(m, "newsalert_producer_feed_last_success_seconds",
                       'feed="%s"' % feed) > 0) and m
    harness.wait_until(lambda: fetched("keep") and fetched("gone"), 60,
                       what="both feeds fetched")

    ctx.write("sources.json", {"sources": both["sources"][:1]})
    p.kill(signal.SIGHUP)
    p.wait_for_stderr(r'event=feed_removed feed="gone"', 30)
    m = scrape(port)
    assert "gone" not in feeds_in(m), sorted(k for k in m if 'feed="gone"' in k[1])
    assert "keep" in feeds_in(m)
    # The status document follows within its 1 s publishing period.
    harness.wait_until(lambda: [f["id"] for f in json.loads(
        http_get(url + "/status.json")[1])["feeds"]] == ["keep"], 10,
        what="status.json without the removed feed")
    # Still gone a few polls of the other feed later, and keep goes on.
    before = metric(m, "newsalert_producer_fetches_total", 'feed="keep"')
    harness.wait_until(lambda: metric(scrape(port), "newsalert_producer_fetches_total",
                                      'feed="keep"') >= before + 2, 30,
                       what="keep fetched twice more")
    assert "gone" not in feeds_in(scrape(port))

    # Back in the sources: its series start again from zero.
    sent_before = feeds.count("/gone.xml")
    ctx.write("sources.json", both)
    p.kill(signal.SIGHUP)
    m = harness.wait_until(lambda: fetched("gone"), 30, what="gone fetched again")
    assert metric(m, "newsalert_producer_fetches_total", 'feed="gone"') <= \
        feeds.count("/gone.xml") - sent_before
    assert p.stop(60) == 0, p.tail()


def test_an_instance_drops_the_series_of_feeds_it_loses_in_topic_mode(ctx):
    # Topic mode: when a second instance joins, the first loses some feeds
    # (revocation) and their series leave its /metrics; a source tombstone
    # removes the feed's series from its owner.
    require_listener(ctx, "newsalert-producer")
    feeds = ctx.feed_server()
    ids = ["t%02d" % i for i in range(8)]
    for i in ids:
        feeds.set("/%s.xml" % i, (RSS % ("<item><title>Story %s</title>"
                                         "<link>http://news.test/t/%s</link></item>"
                                         % (i, i))).encode(), "application/rss+xml")
    sources = [{"id": i, "url": feeds.url("/%s.xml" % i), "interval": "1s"} for i in ids]
    common = ["--brokers", ctx.brokers, "--sources-topic", ctx.topic("na.ops.sources"),
              "--state-topic", ctx.topic("na.ops.fetchstate")]
    load = harness.run([ctx.bin("newsalert-producer"), "sources", "load",
                        ctx.write("sources.json", {"sources": sources})] + common,
                       timeout=60)
    assert load.returncode == 0, load.stderr
    group = ctx.topic("na-ops-fetchers")
    articles = ctx.topic("na.ops.articles")
    ports = {}

    def instance(name):
        ports[name] = harness.free_port()
        p = ctx.proc([ctx.bin("newsalert-producer")] + common +
                     ["--group-id", group, "--instance-id", name, "--topic", articles,
                      "--state-dir", ctx.path(name),
                      "--http-listen", "127.0.0.1:%d" % ports[name],
                      "-X", "session.timeout.ms=6000",
                      "-X", "heartbeat.interval.ms=500"], name=name)
        harness.wait_until(
            lambda: http_get("http://127.0.0.1:%d/healthz" % ports[name])[0] == 200, 60,
            what="%s /healthz 200" % name)
        return p

    def fetched_feeds(name):
        m = scrape(ports[name])
        return {f for f in feeds_in(m)
                if metric(m, "newsalert_producer_fetches_total", 'feed="%s"' % f) > 0}

    a = instance("fetcher-a")
    harness.wait_until(lambda: fetched_feeds("fetcher-a") == set(ids), 60,
                       what="fetcher-a fetching every feed")
    b = instance("fetcher-b")
    b.wait_for_stderr(r"event=partitions_assigned", 60)
    harness.wait_until(lambda: len(re.findall(r"event=partitions_assigned",
                                              a.stderr_text())) >= 2, 60,
                       what="fetcher-a reassigned")

    def split():
        fa, fb = feeds_in(scrape(ports["fetcher-a"])), feeds_in(scrape(ports["fetcher-b"]))
        return fa | fb == set(ids) and not fa & fb and fb and (fa, fb)
    fa, fb = harness.wait_until(split, 60, what="each feed's series on one instance only")
    print("fetcher-a has %s, fetcher-b has %s" % (sorted(fa), sorted(fb)))

    # A tombstone: the feed's series leave its owner.
    victim = sorted(fb)[0]
    owner = "fetcher-b"
    load = harness.run([ctx.bin("newsalert-producer"), "sources", "load",
                        ctx.write("fewer.json", {"sources": [s for s in sources
                                                             if s["id"] != victim]})]
                       + common, timeout=60)
    assert load.returncode == 0 and "removed=1" in load.stderr, load.stderr
    harness.wait_until(lambda: victim not in feeds_in(scrape(ports[owner])), 30,
                       what="the removed source's series gone from %s" % owner)
    assert victim not in feeds_in(scrape(ports["fetcher-a"]))
    assert a.stop(30) == 0, a.tail()
    assert b.stop(30) == 0, b.tail()


if __name__ == "__main__":
    harness.main(globals(), needs_broker=True, timeout=240)
