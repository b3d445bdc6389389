#!/usr/bin/env python3
"""Self-test of tests/integration/harness.py: feed server, webhook receiver,
processes, the runner shim, and (with a broker) the kcat helpers."""

import http.client as http_client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import harness


def http(url, data=None, headers=None, method=None, timeout=5):
    """Return (status, headers, body) without raising on non-2xx."""
    if isinstance(data, (dict, list)):
        data = json.dumps(data).encode("utf-8")
        headers = dict(headers or {}, **{"Content-Type": "application/json"})
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>a</title><link>http://example.test/a</link></item></channel></rss>"""


# ---------------------------------------------------------------- FeedServer

def test_feed_serves_and_records(ctx):
    feed = ctx.feed_server({"/a.xml": (RSS, "application/rss+xml")})
    status, hdrs, body = http(feed.url("/a.xml"), headers={"User-Agent": "probe/1"})
    assert status == 200, status
    assert body == RSS
    assert hdrs["Content-Type"] == "application/rss+xml"
    assert hdrs["ETag"].startswith('"') and hdrs["ETag"].endswith('"'), hdrs["ETag"]
    assert hdrs["Last-Modified"].endswith("GMT"), hdrs["Last-Modified"]
    status, _, _ = http(feed.url("/missing.xml"))
    assert status == 404, status
    reqs = feed.requests()
    assert [r.path for r in reqs] == ["/a.xml", "/missing.xml"], reqs
    assert reqs[0].header("user-agent") == "probe/1"
    assert [r.status for r in reqs] == [200, 404]


def test_feed_conditional_get_304(ctx):
    feed = ctx.feed_server({"/a.xml": (RSS, "application/rss+xml")})
    _, hdrs, _ = http(feed.url("/a.xml"))
    etag, lm = hdrs["ETag"], hdrs["Last-Modified"]

    status, hdrs2, body = http(feed.url("/a.xml"), headers={"If-None-Match": etag})
    assert status == 304, status
    assert body == b""
    assert hdrs2["ETag"] == etag
    status, _, _ = http(feed.url("/a.xml"), headers={"If-Modified-Since": lm})
    assert status == 304, status
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.1.3).
    status, _, _ = http(feed.url("/a.xml"),
                        headers={"If-None-Match": '"other"', "If-Modified-Since": lm})
    assert status == 200, status
    old = harness.http_date(time.time() - 3600)
    status, _, _ = http(feed.url("/a.xml"), headers={"If-Modified-Since": old})
    assert status == 200, status

    # Same body again: validators unchanged. New body: new ETag, 200.
    feed.set("/a.xml", RSS, "application/rss+xml")
    assert feed.etag("/a.xml") == etag
    feed.set("/a.xml", RSS.replace(b"<title>a", b"<title>b"), "application/rss+xml")
    status, hdrs3, body = http(feed.url("/a.xml"), headers={"If-None-Match": etag})
    assert status == 200, status
    assert hdrs3["ETag"] != etag
    assert b"<title>b" in body
    assert [r.status for r in feed.requests()] == [200, 304, 304, 200, 200, 200]


def test_feed_fault_statuses(ctx):
    feed = ctx.feed_server({"/a.xml": (RSS, "application/rss+xml")})
    feed.fail("/a.xml", 503, retry_after=7)
    for _ in range(2):
        status, hdrs, _ = http(feed.url("/a.xml"))
        assert status == 503, status
        assert hdrs["Retry-After"] == "7"
    feed.clear_fault("/a.xml")
    assert http(feed.url("/a.xml"))[0] == 200

    feed.fail("/a.xml", 500, count=2)
    statuses = [http(feed.url("/a.xml"))[0] for _ in range(3)]
    assert statuses == [500, 500, 200], statuses

    feed.fail("/a.xml", 429, retry_after=1, count=1)
    status, hdrs, _ = http(feed.url("/a.xml"))
    assert (status, hdrs["Retry-After"]) == (429, "1")


def test_feed_hang_and_redirect(ctx):
    feed = ctx.feed_server({"/a.xml": (RSS, "application/rss+xml")})
    feed.hang("/a.xml")
    t0 = time.monotonic()
    try:
        http(feed.url("/a.xml"), timeout=0.5)
        raise AssertionError("a hanging path answered")
    except (socket.timeout, TimeoutError, urllib.error.URLError):
        pass
    assert time.monotonic() - t0 >= 0.4
    feed.wait_for(lambda rs: len(rs) == 1, 2, answered=False)
    feed.clear_fault()
    assert http(feed.url("/a.xml"))[0] == 200

    feed.hang("/a.xml", seconds=0.3, count=1)
    t0 = time.monotonic()
    assert http(feed.url("/a.xml"))[0] == 200
    assert time.monotonic() - t0 >= 0.25

    feed.redirect("/old.xml", feed.url("/a.xml"))
    status, _, body = http(feed.url("/old.xml"))
    assert (status, body) == (200, RSS)
    assert [r.path for r in feed.requests()][-2:] == ["/old.xml", "/a.xml"]
    assert feed.requests("/old.xml")[0].status == 301


# ----------------------------------------------------------- WebhookReceiver

def test_webhook_records_posts(ctx):
    hook = ctx.webhook()
    status, _, body = http(hook.url("/slack"), {"text": "hi"}, {"X-Alert-Id": "a1"})
    assert (status, body) == (200, b"ok")
    http(hook.url("/slack"), {"text": "again"}, {"X-Alert-Id": "a1"})
    http(hook.url("/slack"), {"text": "other"}, {"X-Alert-Id": "a2"})
    assert http(hook.url("/slack"))[0] == 405  # GET
    reqs = hook.requests()
    assert len(reqs) == 4
    assert reqs[0].json == {"text": "hi"}
    assert reqs[0].header("content-type") == "application/json"
    assert reqs[0].body == b'{"text": "hi"}'
    groups = hook.unique_by_header("X-Alert-Id")
    assert list(groups) == ["a1", "a2", None], list(groups)
    assert len(groups["a1"]) == 2
    assert hook.bodies(status=200) == [{"text": "hi"}, {"text": "again"}, {"text": "other"}]


def test_webhook_fail_n_then_up(ctx):
    hook = ctx.webhook()
    hook.fail_next(2)
    statuses = [http(hook.url("/h"), {"n": i})[0] for i in range(4)]
    assert statuses == [500, 500, 200, 200], statuses
    hook.set_mode("fail-1")
    assert [http(hook.url("/h"), {})[0] for _ in range(2)] == [500, 200]
    hook.down()
    assert http(hook.url("/h"), {})[0] == 503
    hook.up()
    assert http(hook.url("/h"), {})[0] == 200
    assert [r.status for r in hook.requests()] == [500, 500, 200, 200, 500, 200, 503, 200]


def test_webhook_rate_limit_429(ctx):
    hook = ctx.webhook()
    hook.rate_limit(3)
    results = [http(hook.url("/h"), {"i": i}) for i in range(5)]
    statuses = [s for s, _, _ in results]
    assert statuses == [200, 200, 200, 429, 429], statuses
    assert results[3][1]["Retry-After"] == "1"
    time.sleep(1.1)
    assert http(hook.url("/h"), {})[0] == 200
    hook.set_mode("up")
    assert all(http(hook.url("/h"), {})[0] == 200 for _ in range(5))
    # Below one a second: one request every 1/per_s seconds.
    hook.rate_limit(0.5)
    assert [http(hook.url("/h"), {})[0] for _ in range(2)] == [200, 429]
    time.sleep(1.2)
    assert http(hook.url("/h"), {})[0] == 429
    time.sleep(0.9)
    assert http(hook.url("/h"), {})[0] == 200


def test_webhook_slow_size_limit_and_wait(ctx):
    hook = ctx.webhook(max_body_bytes=100)
    hook.slow(0.3)
    t0 = time.monotonic()
    assert http(hook.url("/h"), {"x": 1})[0] == 200
    assert time.monotonic() - t0 >= 0.25
    hook.up()
    assert http(hook.url("/h"), {"x": "y" * 200})[0] == 413
    got = hook.wait_count(2, 1)
    assert [r.status for r in got] == [200, 413]
    t0 = time.monotonic()
    try:
        hook.wait_for(lambda rs: len(rs) >= 3, 0.3)
        raise AssertionError("wait_for returned without the requests")
    except TimeoutError as e:
        assert "saw 2 request(s)" in str(e), e
    assert time.monotonic() - t0 >= 0.25


def test_webhook_hang_answers_nothing_and_latency_adds_to_any_mode(ctx):
    hook = ctx.webhook()
    hook.hang(0.3)
    t0 = time.monotonic()
    try:
        http(hook.url("/h"), {"x": 1}, timeout=5)
        raise AssertionError("a hung request got an answer")
    except (urllib.error.URLError, ConnectionError, http_client.HTTPException):
        pass
    assert time.monotonic() - t0 >= 0.25
    assert [r.status for r in hook.requests()] == [0]
    hook.set_mode("hang-0.1")
    hook.up()
    hook.latency(0.3)
    hook.fail_next(1)
    t0 = time.monotonic()
    assert http(hook.url("/h"), {})[0] == 500
    assert http(hook.url("/h"), {})[0] == 200
    assert time.monotonic() - t0 >= 0.55
    hook.latency(0)
    t0 = time.monotonic()
    assert http(hook.url("/h"), {})[0] == 200
    assert time.monotonic() - t0 < 0.25


# --------------------------------------------------------- Proc and helpers

def test_proc_capture_kill_wait(ctx):
    p = ctx.proc([sys.executable, "-c",
                  "import sys; print('out'); sys.stderr.write('ready\\n'); sys.exit(3)"])
    assert p.wait(10) == 3
    assert p.stdout_text() == "out\n"
    assert p.stderr_text() == "ready\n"

    q = ctx.proc([sys.executable, "-c",
                  "import sys, time; sys.stderr.write('up\\n'); sys.stderr.flush(); "
                  "time.sleep(60)"])
    q.wait_for_stderr(r"^up$", 10)
    try:
        q.wait(0.2)
        raise AssertionError("wait returned for a sleeping process")
    except TimeoutError:
        pass
    q.kill(signal.SIGTERM)
    assert q.wait(10) == -signal.SIGTERM
    q.kill()  # no-op once exited


def test_free_port_and_unique_topic(ctx):
    port = harness.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
    names = {harness.unique_topic("news.articles") for _ in range(50)}
    assert len(names) == 50
    for n in names:
        assert n.startswith("news.articles.%d-" % os.getpid()), n
        assert len(n) < 249
    try:
        harness.unique_topic("bad topic")
        raise AssertionError("bad prefix accepted")
    except ValueError:
        pass


RUNNER_DEMO = """
import sys
sys.path.insert(0, %r)
import harness

def test_ok(ctx):
    assert ctx.tmp and ctx.build.endswith("bdir")

def test_bad(ctx):
    ctx.proc([sys.executable, "-c", "import sys; sys.stderr.write('boom-from-child')"]).wait(5)
    assert 1 == 2, "one is not two"

def test_skipped(ctx):
    raise harness.Skip("not today")

if __name__ == "__main__":
    harness.main(globals(), needs_broker=%r)
"""


def test_runner_shim(ctx):
    here = os.path.dirname(os.path.abspath(__file__))
    demo = ctx.write("demo.py", RUNNER_DEMO % (here, False))
    # The failing demo keeps its temp folder: keep it inside ours. Outside
    # CI first (CI unset), whatever this run's environment says.
    env = {"TMPDIR": ctx.tmp, "CI": None}
    cp = harness.run([sys.executable, demo, "--build", ctx.path("bdir")], timeout=60,
                     env=env)
    assert cp.returncode == 1, (cp.returncode, cp.stdout, cp.stderr)
    lines = cp.stdout.splitlines()
    assert any(l.startswith("PASS test_ok") for l in lines), cp.stdout
    assert "FAIL test_bad: one is not two" in lines, cp.stdout
    assert "Traceback" in cp.stdout and "boom-from-child" in cp.stdout, cp.stdout
    assert "temp files kept in %s/" % ctx.tmp in cp.stdout, cp.stdout
    assert "SKIP test_skipped: not today" in lines, cp.stdout
    assert lines[-1] == "1 passed, 1 failed", lines[-1]

    cp = harness.run([sys.executable, demo, "--build", "bdir", "-k", "ok"], timeout=60,
                     env=env)
    assert cp.returncode == 0 and cp.stdout.splitlines()[-1] == "1 passed, 0 failed", \
        cp.stdout

    # A skip is reported to ctest as a skip (SKIP_RETURN_CODE), not a pass.
    cp = harness.run([sys.executable, demo, "--build", "bdir", "-k", "skipped"],
                     timeout=60, env=env)
    assert cp.returncode == harness.SKIP_RETURN_CODE == 77, (cp.returncode, cp.stdout)
    assert "SKIP test_skipped: not today" in cp.stdout.splitlines(), cp.stdout
    demo2 = ctx.write("demo2.py", RUNNER_DEMO % (here, True))
    cp = harness.run([sys.executable, demo2, "--build", "bdir"], timeout=60,
                     env=dict(env, NA_TEST_BROKERS=None))
    assert cp.returncode == harness.SKIP_RETURN_CODE, cp.returncode
    assert cp.stdout.strip() == harness.SKIP_NO_BROKER, cp.stdout

    # With CI=true a skip is a failure: of one test, and of a file without
    # its broker.
    ci = dict(env, CI="true")
    cp = harness.run([sys.executable, demo, "--build", "bdir", "-k", "skipped"],
                     timeout=60, env=ci)
    assert cp.returncode == 1, (cp.returncode, cp.stdout)
    assert "FAIL test_skipped: skipped in CI (CI=true): not today" in \
        cp.stdout.splitlines(), cp.stdout
    cp = harness.run([sys.executable, demo2, "--build", "bdir"], timeout=60,
                     env=dict(ci, NA_TEST_BROKERS=None))
    assert cp.returncode == 1, (cp.returncode, cp.stdout)
    assert cp.stdout.startswith("FAIL: no broker"), cp.stdout


# ------------------------------------------------------------- kcat helpers

def test_kcat_roundtrip(ctx):
    if not ctx.brokers:
        raise harness.Skip("no broker (NA_TEST_BROKERS unset)")
    topic = ctx.topic("na.selftest")
    harness.kcat_produce(ctx.brokers, topic, [("k1", "v1"), ("k2", '{"a": 1}')],
                         headers={"schema": "test/v1"})
    harness.kcat_produce(ctx.brokers, topic, ["plain"])
    got = harness.kcat_consume(ctx.brokers, topic, count=3, timeout=30)
    assert sorted(m["value"] for m in got) == sorted(['{"a": 1}', "plain", "v1"]), got
    by_val = {m["value"]: m for m in got}
    assert by_val["v1"]["key"] == "k1"
    assert by_val["v1"]["headers"] == {"schema": "test/v1"}
    assert by_val["plain"]["headers"] == {}
    assert isinstance(by_val["v1"]["ts"], int)


if __name__ == "__main__":
    harness.main(globals(), needs_broker=False)
