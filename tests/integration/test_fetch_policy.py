"""How the producer fetches: per-host queueing that leaves each transfer its
whole timeout; redirects that keep a source's headers on its own origin and
refuse private addresses; feed URLs with secrets never shown.

Most tests run the daemon with --dry-run (no Kafka needed).
"""

import json
import re
import signal
import time

import harness

RSS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>{name}</title><link>http://example.org/</link>
<item><title>{name}: rare earth export rules tightened again</title>
<link>http://example.org/{name}/1</link><guid>{name}-1</guid>
<description>Officials announced new licence rules for {name}.</description></item>
</channel></rss>
"""


def rss(name):
    return RSS.format(name=name)


def start(ctx, sources, extra=(), name="producer", once=False):
    cfg = ctx.write(name + "-sources.json", {"sources": sources})
    metrics = ctx.path(name + ".prom")
    argv = [ctx.bin("newsalert-producer"), "--dry-run", "--sources", cfg,
            "--state-dir", ctx.path(name + "-state"), "--metrics-file", metrics,
            "--fetch-timeout", "5s", "--fetch-connect-timeout", "2s",
            "--retry-base", "1s", "--retry-max", "4s", "--log-level", "info"]
    if once:
        argv.append("--once")
    return ctx.proc(argv + list(extra), name=name), metrics


def events(proc, event):
    """Parsed logfmt lines of one event."""
    out = []
    for line in proc.stderr_text().splitlines():
        if " event=%s " % event not in line + " ":
            continue
        out.append(dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line)))
    return [{k: v.strip('"') for k, v in d.items()} for d in out]


def test_per_host_queue_leaves_each_transfer_its_timeout(ctx):
    """Issue: with 8 feeds on one host answering in 2 s, --fetch-per-host 1
    and --fetch-timeout 5s, 6 failed ("Failed to resolve host ... after 0
    ms"): their timeouts ran while libcurl queued them for the host."""
    feeds = ctx.feed_server()
    names = ["f%d" % i for i in range(8)]
    for n in names:
        feeds.set("/%s.xml" % n, rss(n))
        feeds.hang("/%s.xml" % n, seconds=2)
    sources = [{"id": n, "url": feeds.url("/%s.xml" % n), "interval": "1h"}
               for n in names]
    p, _ = start(ctx, sources, ["--fetch-per-host", "1", "--fetch-concurrency", "32"],
                 once=True)
    assert p.wait(120) == 0, p.tail()
    assert not events(p, "fetch_error"), events(p, "fetch_error")
    fetched = {e["feed"] for e in events(p, "fetched")}
    assert fetched == set(names), (fetched, p.tail())
    # One at a time on that host: no two requests were in flight together.
    reqs = sorted(feeds.requests(), key=lambda r: r.time)
    assert len(reqs) == 8, reqs
    for a, b in zip(reqs, reqs[1:]):
        assert b.time >= a.done - 0.05, "overlap: %r %r" % (a, b)
    # Each transfer was timed from its own start (about 2 s), not from when
    # it was queued (up to 16 s).
    ms = sorted(int(e["ms"]) for e in events(p, "fetched"))
    assert ms[-1] < 5000, ms


def test_waiting_for_a_host_holds_no_global_slot(ctx):
    """Feeds queued for a busy host leave fetch_concurrency to other hosts:
    before, a queued transfer held a global slot and a new feed of another
    host waited for the slow host's transfers."""
    slow = ctx.feed_server()
    fast = ctx.feed_server()
    for i in range(3):
        slow.set("/s%d.xml" % i, rss("s%d" % i))
        slow.hang("/s%d.xml" % i, seconds=4)
    fast.set("/quick.xml", rss("quick"))
    sources = [{"id": "s%d" % i, "url": slow.url("/s%d.xml" % i), "interval": "1h"}
               for i in range(3)]
    p, _ = start(ctx, sources, ["--fetch-per-host", "1", "--fetch-concurrency", "2",
                                "--fetch-timeout", "10s"])
    # One slow transfer runs, two wait for the host.
    slow.wait_for(lambda rs: len(rs) >= 1, 20, answered=False)
    sources.append({"id": "quick", "url": fast.url("/quick.xml"), "interval": "1s"})
    ctx.write("producer-sources.json", {"sources": sources})
    p.kill(signal.SIGHUP)
    fast.wait_count(1, timeout=20, path="/quick.xml")
    slow.wait_for(lambda rs: len(rs) >= 2, 20, answered=False)
    first_quick = fast.requests("/quick.xml")[0].time
    second_slow = sorted(r.time for r in slow.requests())[1]
    # The other host's feed went out while the first slow one still ran.
    assert first_quick < second_slow, (first_quick, second_slow)
    p.stop()
    assert not events(p, "fetch_error"), events(p, "fetch_error")


def metric(path, name, **labels):
    """Value of one series in the metrics file, or None."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        if line.startswith(name + "{") and \
                all('%s="%s"' % kv in line for kv in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_source_headers_never_reach_another_origin(ctx):
    """Issue: the fetcher followed redirects with the source's headers, so an
    X-Api-Key reached the redirect target (libcurl drops only Authorization
    when the host changes)."""
    home = ctx.feed_server()
    other = ctx.feed_server()  # another port: another origin
    other.set("/feed.xml", rss("elsewhere"))
    home.redirect("/away.xml", other.url("/feed.xml"), status=302)
    home.set("/target.xml", rss("same"))
    home.redirect("/same.xml", "/target.xml", status=302)
    headers = {"X-Api-Key": "k-123", "Authorization": "Bearer t-456"}
    local = {"allow_private_redirects": True, "headers": headers, "interval": "1h"}
    sources = [dict({"id": "away", "url": home.url("/away.xml")}, **local),
               dict({"id": "same", "url": home.url("/same.xml")}, **local)]
    p, _ = start(ctx, sources, once=True)
    assert p.wait(60) == 0, p.tail()
    assert {e["feed"] for e in events(p, "fetched")} == {"away", "same"}, p.tail()
    # The source's own origin gets its headers, on every hop that stays there.
    for path in ("/away.xml", "/same.xml", "/target.xml"):
        (r,) = home.requests(path)
        assert r.header("X-Api-Key") == "k-123", (path, r.header_list)
        assert r.header("Authorization") == "Bearer t-456", (path, r.header_list)
    # Another origin gets none of them, but the fetcher's own.
    (r,) = other.requests("/feed.xml")
    names = {k.lower() for k, _ in r.header_list}
    assert "x-api-key" not in names and "authorization" not in names, r.header_list
    assert r.header("User-Agent", "").startswith("newsalert/")


def test_redirects_to_private_addresses_are_refused(ctx):
    """Issue: redirects were followed to any host, internal ones included.
    Targets that are (or resolve to) loopback, private or link-local
    addresses are refused unless the source allows them; the source's own
    URL may be internal (here 127.0.0.1)."""
    home = ctx.feed_server()
    inside = ctx.feed_server()
    inside.set("/internal.xml", rss("internal"))
    home.redirect("/loop.xml", inside.url("/internal.xml"), status=302)
    home.redirect("/name.xml", "http://localhost:%d/internal.xml" % inside.port,
                  status=301)
    home.redirect("/v6.xml", "http://[::1]:%d/internal.xml" % inside.port, status=302)
    home.redirect("/allowed.xml", inside.url("/internal.xml"), status=302)
    # same origin: the kept-alive connection is reused, and checked all the same
    home.set("/self-target.xml", rss("self"))
    home.redirect("/self.xml", "/self-target.xml", status=302)
    # Loopback targets only: a test that failed must not reach real private
    # or link-local hosts (test_fetch.c covers those address classes).
    want = {"loop": "loopback", "name": "loopback", "v6": "loopback",
            "self": "loopback"}
    sources = [{"id": fid, "url": home.url("/%s.xml" % fid), "interval": "1h"}
               for fid in want]
    sources.append({"id": "allowed", "url": home.url("/allowed.xml"), "interval": "1h",
                    "allow_private_redirects": True})
    p, metrics = start(ctx, sources, once=True)
    p.wait(60)
    errs = {e["feed"]: e for e in events(p, "fetch_error")}
    for fid, cls in want.items():
        e = errs.get(fid)
        assert e and e["reason"] == "redirect_refused", (fid, e, p.tail())
        assert "a %s address" % cls in e["err"] and \
            "allow_private_redirects" in e["err"], e
        assert metric(metrics, "newsalert_producer_fetch_errors_total", feed=fid,
                      reason="redirect_refused") == 1, fid
    # Nothing reached the internal server but the allowed feed's request.
    assert len(inside.requests()) == 1, inside.requests()
    assert not home.requests("/self-target.xml")
    assert "allowed" in {e["feed"] for e in events(p, "fetched")}, p.tail()
    # The 301 to an internal name did not move the feed there.
    assert not events(p, "feed_moved"), events(p, "feed_moved")


def http_get(url):
    import urllib.request
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode("utf-8", "replace")


def test_feed_url_secrets_never_shown(ctx):
    """Feed URLs with a token in the query or user:password in them appear
    in no log line, no metric and no status document: query and user info
    are redacted as webhook URLs are."""
    feeds = ctx.feed_server()
    feeds.fail("/tok.xml", 500)
    feeds.redirect("/old.xml", "/new.xml?token=SECRET-T3", status=301)
    feeds.set("/new.xml", rss("moved"))
    feeds.set("/broken.xml", "<rss><channel><item><title>broken</titl")
    secret_url = feeds.url("/tok.xml?token=SECRET-T1").replace(
        "http://", "http://reader:PASSW0RD-X@")
    port = harness.free_port()
    sources = [
        # without an id, the URL is the id (and the name)
        {"url": secret_url, "interval": "1s"},
        {"id": "moving", "url": feeds.url("/old.xml?token=SECRET-T2"), "interval": "1s",
         "allow_private_redirects": True, "critical": True},
        {"id": "broken", "url": feeds.url("/broken.xml?token=SECRET-T4"),
         "interval": "1s"},
    ]
    p, metrics = start(ctx, sources, ["--http-listen", "127.0.0.1:%d" % port])
    p.wait_for_stderr(r"event=feed_moved ", 20)
    p.wait_for_stderr(r"event=feed_parse_error ", 20)
    p.wait_for_stderr(r"event=fetch_error [^\n]*status=500", 20)
    # The sources file changes: feed_changed names the URL too.
    sources[0]["interval"] = "2s"
    ctx.write("producer-sources.json", {"sources": sources})
    p.kill(signal.SIGHUP)
    p.wait_for_stderr(r"event=feed_changed ", 20)
    shown = {"metrics": http_get("http://127.0.0.1:%d/metrics" % port),
             "status.json": http_get("http://127.0.0.1:%d/status.json" % port),
             "status page": http_get("http://127.0.0.1:%d/" % port)}
    time.sleep(5.5)  # the metrics file is rewritten every 5 s
    p.stop()
    shown["stderr"] = p.stderr_text()
    shown["stdout"] = p.stdout_text()
    with open(metrics) as f:
        shown["metrics file"] = f.read()
    for where, text in shown.items():
        for secret in ("SECRET-T", "PASSW0RD-X", "reader:", "token="):
            assert secret not in text, "%s shows %r:\n%s" % (where, secret, text[-3000:])
    # What is shown instead: the redacted URL, with a hash for the URL-as-id.
    status = json.loads(shown["status.json"])
    urls = {f["url"] for f in status["feeds"]}
    assert feeds.url("/tok.xml?***") in urls and feeds.url("/old.xml?***") in urls, urls
    ids = {f["id"] for f in status["feeds"]}
    assert any(re.fullmatch(re.escape(feeds.url("/tok.xml?***")) + r"~[0-9a-f]{8}", i)
               for i in ids), ids
    assert 'feed="moving"' in shown["metrics"]
    moved = events(p, "feed_moved")[0]
    assert moved["to"] == feeds.url("/new.xml?***"), moved


if __name__ == "__main__":
    harness.main(globals(), needs_broker=False, timeout=180)
