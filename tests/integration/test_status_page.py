#!/usr/bin/env python3
"""The status page at / in a real browser (headless Chromium), served by the
operations listener (common/httpd.c) through tests/tools/status_page_demo.

No broker needed. Without a `chromium` binary the browser tests skip (the
HTTP-level checks still run). NA_UPDATE_SCREENSHOT=1 also copies the
screenshot to docs/status-page.png.
"""

import html.parser
import os
import re
import shutil
import struct
import subprocess
import urllib.request

import harness


def start_demo(ctx):
    p = ctx.proc([ctx.bin("status_page_demo"), "127.0.0.1:0"], name="status_page_demo")
    harness.wait_until(lambda: "port=" in p.stdout_text(), 10, what="demo port")
    port = int(re.search(r"port=(\d+)", p.stdout_text()).group(1))
    return p, "http://127.0.0.1:%d" % port


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.headers, r.read().decode("utf-8")


class Text(html.parser.HTMLParser):
    """Collects the visible text, the tags seen and the link targets."""

    def __init__(self):
        super().__init__()
        self.text, self.tags, self.hrefs = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k == "href":
                self.hrefs.append(v)

    def handle_data(self, data):
        self.text.append(data)


def parse(page):
    t = Text()
    t.feed(page)
    return " ".join(" ".join(t.text).split()), t.tags, t.hrefs


def check_page_content(page):
    text, tags, hrefs = parse(page)
    # What an operator needs to see, as text.
    for want in ("Feeds (3)", "Harbour Wire", "Lantern Daily", "(critical)", "stale",
                 "Routes (2)", "trade-desk", "failing", "HTTP 500 after 10 attempts",
                 "Last alerts (3)", "export_controls", "dual-use items",
                 "China bans dual-use exports to Japanese military end users",
                 "not ready", "feed lantern-daily (critical) stale for 7260 s"):
        assert want in text, "missing %r in page text" % want
    # Hostile text shows as text, never as markup.
    assert 'Rare-earth magnets in focus as <Beijing> tightens controls & "lists"' in text
    assert "The Meridian Post <script>alert(1)</script>" in text
    assert "script" not in tags, tags
    assert not any(h.startswith("javascript:") for h in hrefs), hrefs
    assert "https://harbour-wire.example/2026/01/06/dual-use-ban" in hrefs


def test_page_over_http(ctx):
    _, base = start_demo(ctx)
    status, headers, page = get(base + "/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src" not in headers["Content-Security-Policy"]
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    check_page_content(page)
    status, headers, body = get(base + "/metrics")
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "newsalert_consumer_articles_consumed_total 1" in body


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise harness.Skip("no chromium binary (Debian package chromium)")


def browser(ctx, *args):
    profile = ctx.path("chromium-profile")
    os.makedirs(profile, exist_ok=True)
    argv = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
            "--user-data-dir=" + profile] + list(args)
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=120)


def test_chromium_renders_the_page_without_javascript(ctx):
    _, base = start_demo(ctx)
    # --dump-dom prints the DOM after loading: what the browser built.
    r = browser(ctx, "--disable-javascript", "--dump-dom", base + "/")
    dom = r.stdout.decode("utf-8", "replace")
    assert "<table" in dom, "no table in the rendered DOM:\n%s\n%s" % (
        dom[:2000], r.stderr.decode("utf-8", "replace")[-2000:])
    check_page_content(dom)


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


def test_chromium_screenshot(ctx):
    _, base = start_demo(ctx)
    shot = ctx.path("status-page.png")
    r = browser(ctx, "--hide-scrollbars", "--screenshot=" + shot, "--window-size=1200,900",
                base + "/")
    assert os.path.exists(shot), r.stderr.decode("utf-8", "replace")[-2000:]
    w, h = png_size(shot)
    assert (w, h) == (1200, 900), (w, h)
    # A blank page compresses to almost nothing; a rendered table does not.
    assert os.path.getsize(shot) > 20000, os.path.getsize(shot)
    if os.environ.get("NA_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ctx.src("docs", "status-page.png"))


if __name__ == "__main__":
    harness.main(globals(), needs_broker=False, timeout=180)
