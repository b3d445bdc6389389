#!/usr/bin/env python3
"""The status of running daemons (real broker; docs/operations.md, "HTTP
endpoints"; the document's shape is in include/newsalert/httpd.h).

While the consumer and the producer run, GET /status.json and the status
page at /: every field says what happened (routes with what they sent and
failed, the last alerts with their evidence, feeds with their state), the
page shows it as escaped text, and no route URL leaks. test_status_page.py
checks the page's rendering with a fixed document; this checks what the
daemons put in it."""

import hashlib
import html
import json
import re
import time
import urllib.error
import urllib.request

import harness

FAST = ["--deliver-backoff", "100ms", "--deliver-backoff-max", "200ms",
        "--deliver-max-attempts", "2",
        "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"]


def http_get(url, timeout=5):
    """(status, content type, body text), without raising on non-2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode("utf-8")
    except (urllib.error.URLError, ConnectionError):
        return 0, None, ""


def status(base):
    code, ctype, body = http_get(base + "/status.json")
    assert code == 200 and ctype.startswith("application/json"), (code, ctype, body)
    return json.loads(body), body


def version(ctx, prog):
    out = harness.run([ctx.bin(prog), "--version"], timeout=30).stdout
    return re.match(r"%s (\S+)" % prog, out).group(1)


def article(n, title, summary):
    url = "https://news.test/status/%d" % n
    return {"schema": "article/v1", "id": hashlib.sha256(url.encode()).hexdigest(),
            "url": url, "title": title, "summary": summary, "content": "",
            "authors": [], "categories": [], "lang": "en",
            "published_at": "2026-06-0%dT08:00:00Z" % n,
            "fetched_at": "2026-06-0%dT08:05:00Z" % n,
            "source": {"id": "wire", "name": "Harbour <Wire> & Co",
                       "feed_url": "https://news.test/f"}}


ARTICLES = [
    article(1, "Beijing bans dual-use exports to Japanese military end users",
            "The commerce ministry banned exports of dual-use items to military end users."),
    article(2, "PLA drills around Taiwan <script>alert(1)</script> enter a second day",
            "Warships and aircraft entered the Taiwan Strait; Taipei's defence ministry "
            "tracked the ships."),
]


def test_consumer_status_while_running(ctx):
    good, bad = ctx.webhook(), ctx.webhook(ok_status=400)
    topic = ctx.topic("na.it.status")
    harness.kcat_produce(ctx.brokers, topic, [(a["id"], json.dumps(a)) for a in ARTICLES])
    port = harness.free_port()
    cfg = ctx.write("consumer.json", {
        "brokers": ctx.brokers, "topic": topic, "group_id": harness.unique_topic("na-st"),
        "dlq_topic": ctx.topic("na.it.status.dlq"),
        "ledger_topic": ctx.topic("na.it.status.alerts"),
        "rules": ctx.src("examples", "rules.json"), "stories": False,
        "http_listen": "127.0.0.1:%d" % port,
        "routes": [{"name": "desk", "url": good.url("/hook/SECRET1"), "format": "json",
                    "digest_threshold": 0},
                   {"name": "archive", "url": bad.url("/hook/SECRET2"), "format": "slack",
                    "digest_threshold": 0}]})
    c = ctx.proc([ctx.bin("newsalert-consumer"), "--config", cfg] + FAST, name="consumer")
    base = "http://127.0.0.1:%d" % port
    # Two alerts (export_controls, taiwan): taken by desk, refused by archive.
    good.wait_count(2, 60)
    bad.wait_count(2, 60)

    def settled():
        doc, body = status(base)
        routes = {r["name"]: r for r in doc.get("routes", [])}
        return (routes.get("desk", {}).get("sent") == 2 and
                routes.get("archive", {}).get("failed") == 2 and
                len(doc.get("alerts", [])) == 2) and (doc, body)

    doc, body = harness.wait_until(settled, 30, interval=0.5, what="the status to show "
                                   "what was sent and what failed")
    started = re.search(r"event=started .*rules=(\w+) topics=(\d+)", c.stderr_text())
    assert doc["daemon"] == "newsalert-consumer"
    assert doc["version"] == version(ctx, "newsalert-consumer")
    assert doc["ready"] is True and doc["not_ready"] == [], doc
    assert doc["kafka"] == {"connected": True, "brokers": ctx.brokers}, doc["kafka"]
    assert doc["rules"]["version"] == started.group(1), (doc["rules"], started.group(0))
    assert doc["rules"]["topics"] == int(started.group(2)) == 3, doc["rules"]
    routes = {r["name"]: r for r in doc["routes"]}
    assert list(routes) == ["desk", "archive"], doc["routes"]
    assert routes["desk"] == {"name": "desk", "format": "json", "healthy": True,
                              "parked": False, "sent": 2, "failed": 0, "pending": 0}, \
        routes["desk"]
    assert routes["archive"] == {"name": "archive", "format": "slack", "healthy": False,
                                 "parked": False, "sent": 0, "failed": 2, "pending": 0}, \
        routes["archive"]
    # The last alerts, newest first, with their evidence.
    alerts = doc["alerts"]
    assert [a["topic"] for a in alerts] == ["taiwan", "export_controls"], alerts
    assert [a["url"] for a in alerts] == [ARTICLES[1]["url"], ARTICLES[0]["url"]]
    assert alerts[0]["title"] == ARTICLES[1]["title"]
    assert all(a["source"] == "Harbour <Wire> & Co" for a in alerts), alerts
    assert all(a["evidence"] and a["score"] > 0 and a["at"] for a in alerts), alerts
    assert alerts[1]["published_at"] == "2026-06-01T08:00:00Z", alerts[1]
    assert {e["field"] for a in alerts for e in a["evidence"]} <= {"title", "summary",
                                                                   "content"}
    # Route URLs are secrets.
    assert "SECRET" not in body and "/hook/" not in body

    code, ctype, page = http_get(base + "/")
    assert code == 200 and ctype == "text/html; charset=utf-8", (code, ctype)
    assert "SECRET" not in page
    assert "<script>alert(1)</script>" not in page, "article text reached the page as markup"
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    text = " ".join(text.split())
    for want in ("newsalert-consumer", "Routes (2)", "desk", "archive", "Last alerts (2)",
                 ARTICLES[0]["title"], ARTICLES[1]["title"], "Harbour <Wire> & Co",
                 "export_controls", "taiwan"):
        assert want in text, "status page lacks %r" % want
    assert c.stop(60) == 0, c.tail()


RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Ops</title>
<item><title>Story %d</title><link>http://news.test/status-feed/%d</link></item>
</channel></rss>"""


def test_producer_status_while_running(ctx):
    feeds = ctx.feed_server({"/ok.xml": ((RSS % (1, 1)).encode(), "application/rss+xml")})
    feeds.fail("/down.xml", 503)
    port = harness.free_port()
    sources = ctx.write("sources.json", {"sources": [
        {"id": "ok", "name": "Harbour Wire", "url": feeds.url("/ok.xml"), "interval": "1s",
         "critical": True},
        {"id": "down", "name": "Lantern <Daily>", "url": feeds.url("/down.xml"),
         "interval": "1s", "stale_after": "1h"}]})
    topic = ctx.topic("na.it.status.produced")
    p = ctx.proc([ctx.bin("newsalert-producer"), "--brokers", ctx.brokers, "--sources",
                  sources, "--state-dir", ctx.path("state"), "--topic", topic,
                  "--http-listen", "127.0.0.1:%d" % port], name="producer")
    base = "http://127.0.0.1:%d" % port

    def settled():
        if http_get(base + "/healthz")[0] != 200:
            return None
        doc, _ = status(base)
        byid = {f["id"]: f for f in doc.get("feeds", [])}
        return (byid.get("ok", {}).get("status") == "ok" and
                byid.get("down", {}).get("status") == "error") and doc

    doc = harness.wait_until(settled, 60, interval=0.5, what="both feeds fetched")
    harness.kcat_consume(ctx.brokers, topic, count=1, timeout=30)
    assert doc["daemon"] == "newsalert-producer"
    assert doc["version"] == version(ctx, "newsalert-producer")
    assert doc["ready"] is True and doc["not_ready"] == [], doc
    assert doc["kafka"] == {"connected": True, "brokers": ctx.brokers}, doc["kafka"]
    byid = {f["id"]: f for f in doc["feeds"]}
    assert sorted(byid) == ["down", "ok"], doc["feeds"]
    ok, down = byid["ok"], byid["down"]
    assert (ok["name"], ok["url"], ok["critical"], ok["stale"]) == (
        "Harbour Wire", feeds.url("/ok.xml"), True, False), ok
    assert 0 <= ok["stale_s"] < 30, ok
    assert (down["name"], down["critical"], down["stale"]) == (
        "Lantern <Daily>", False, False), down
    assert down["stale_s"] == -1, down  # never fetched successfully

    code, ctype, page = http_get(base + "/")
    assert code == 200 and ctype == "text/html; charset=utf-8", (code, ctype)
    assert "Lantern <Daily>" not in page and "Lantern &lt;Daily&gt;" in page
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
    for want in ("newsalert-producer", "Feeds (2)", "Harbour Wire", "Lantern <Daily>",
                 "(critical)"):
        assert want in text, "status page lacks %r" % want
    assert p.stop(60) == 0, p.tail()


if __name__ == "__main__":
    harness.main(globals(), timeout=240)
