#!/usr/bin/env python3
"""SIGHUP makes the producer read its sources file again (real broker;
docs/operations.md, "Signals"): a source added is fetched and its articles
produced, a source removed is fetched no more, the others go on; a file
that does not load is refused and the sources in force stay. Each reload
is logged (event=reloaded / event=reload_failed, what=sources) and counted
in newsalert_reloads_total{what="sources",result=...}."""

import json
import re
import signal
import time
import urllib.request

import harness

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>%s</title>
<item><title>%s story</title><link>http://news.test/reload/%s</link></item>
</channel></rss>"""


def metric(port, name, labels):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode("utf-8")
    m = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else 0.0


def reloads(port, result):
    return metric(port, "newsalert_reloads_total", 'what="sources",result="%s"' % result)


def test_sighup_adds_and_removes_sources_and_refuses_a_broken_file(ctx):
    feeds = ctx.feed_server({"/%s.xml" % n: ((RSS % (n, n, n)).encode(), "application/rss+xml")
                             for n in ("a", "b", "c")})
    topic = ctx.topic("na.it.reload")
    port = harness.free_port()

    def write_sources(ids):
        ctx.write("sources.json", {"sources": [
            {"id": i, "url": feeds.url("/%s.xml" % i), "interval": "1s"} for i in ids]})

    def urls():
        return sorted(json.loads(r["value"])["url"]
                      for r in harness.kcat_consume(ctx.brokers, topic, timeout=30))

    def sighup_and_wait(event):
        since = len(p.stderr_text())
        p.kill(signal.SIGHUP)
        return p.wait_for_stderr(r"(?s).{%d}.*event=%s what=sources\b[^\n]*" % (since, event),
                                 30).group(0).splitlines()[-1]

    write_sources(["a", "b"])
    p = ctx.proc([ctx.bin("newsalert-producer"), "--brokers", ctx.brokers, "--sources",
                  ctx.path("sources.json"), "--state-dir", ctx.path("state"), "--topic",
                  topic, "--http-listen", "127.0.0.1:%d" % port], name="producer")
    harness.wait_until(lambda: len(urls()) == 2, 60, interval=0.5, what="a and b produced")

    # b out, c in.
    write_sources(["a", "c"])
    line = sighup_and_wait("reloaded")
    assert "sources=2" in line, line
    harness.wait_until(lambda: urls() == ["http://news.test/reload/a",
                                          "http://news.test/reload/b",
                                          "http://news.test/reload/c"],
                       60, interval=0.5, what="c's article produced")
    b_fetches, a_fetches = feeds.count("/b.xml"), feeds.count("/a.xml")
    time.sleep(3.5)  # three intervals of one second
    assert feeds.count("/b.xml") <= b_fetches + 1, "b is still fetched after its removal"
    assert feeds.count("/a.xml") >= a_fetches + 2, "a stopped being fetched"
    assert reloads(port, "ok") == 1

    # A broken file: refused, a and c go on.
    with open(ctx.path("sources.json"), "w") as f:
        f.write('{"sources": [{"id": "a", "url": ')
    line = sighup_and_wait("reload_failed")
    assert "kept=old" in line, line
    a_fetches, c_fetches = feeds.count("/a.xml"), feeds.count("/c.xml")
    time.sleep(3.5)
    assert feeds.count("/a.xml") >= a_fetches + 2 and feeds.count("/c.xml") >= c_fetches + 2, \
        "the sources in force stopped after a refused reload"
    assert reloads(port, "failed") == 1 and reloads(port, "ok") == 1
    assert p.alive()
    assert p.stop(60) == 0, p.tail()


if __name__ == "__main__":
    harness.main(globals(), timeout=240)
