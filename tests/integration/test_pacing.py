#!/usr/bin/env python3
"""Pacing per route, measured at the receiver (real broker; docs/delivery.md,
"Pacing and failures").

- The token bucket: a route with rate_per_s R sends about R requests a
  second, however many alerts wait.
- Under 429s: a receiver that takes fewer requests than the route's rate
  and answers the rest 429 with Retry-After. After a 429 the whole route
  waits Retry-After before its next request (then one probe, then its
  bucket), so the receiver sees at most about one bucket per Retry-After
  instead of the route's own rate, it takes about what it can, and every
  alert arrives once. Measured as requests per second at the receiver, not
  only "a 429 happened"."""

import hashlib
import json
import time

import harness

FAST = ["--deliver-backoff", "100ms", "--deliver-backoff-max", "1s",
        "--deliver-max-attempts", "1000",
        "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"]

EVENTS = ["Beijing bans exports of dual-use items to military end users",
          "Washington adds chip toolmakers to the export control entity list",
          "Tokyo tightens export licences for semiconductor equipment",
          "Seoul restricts exports of lithography tools to sanctioned buyers"]


def articles(n):
    out = []
    for i in range(n):
        url = "https://news.test/pacing/%d" % i
        out.append({"schema": "article/v1",
                    "id": hashlib.sha256(url.encode()).hexdigest(), "url": url,
                    "title": "%s, notice %d" % (EVENTS[i % len(EVENTS)], i),
                    "summary": "The commerce ministry announced the export ban.",
                    "published_at": "2026-05-01T08:00:00Z",
                    "fetched_at": "2026-05-01T08:05:00Z",
                    "source": {"id": "t", "name": "Test Wire",
                               "feed_url": "https://news.test/f"}})
    return out


def run_route(ctx, hook, n, route):
    """Produce n articles (one export_controls alert each), start a consumer
    whose one route is `route` to `hook`, wait until every alert was taken;
    return (articles, accepted requests) with the consumer stopped."""
    arts = articles(n)
    topic = ctx.topic("na.it.pacing")
    harness.kcat_produce(ctx.brokers, topic, [(a["id"], json.dumps(a)) for a in arts])
    cfg = ctx.write("consumer.json", {
        "brokers": ctx.brokers, "topic": topic, "group_id": harness.unique_topic("na-pace"),
        "dlq_topic": ctx.topic("na.it.pacing.dlq"),
        "ledger_topic": ctx.topic("na.it.pacing.alerts"),
        "rules": ctx.src("examples", "rules.json"), "stories": False,
        "routes": [dict(route, name="paced", url=hook.url("/json"), format="json",
                        digest_threshold=0)]})
    c = ctx.proc([ctx.bin("newsalert-consumer"), "--config", cfg] + FAST, name="consumer")
    ok = hook.wait_for(lambda rs: len([r for r in rs if r.status == 200]) >= n, 120,
                       what="%d alerts taken" % n)
    assert c.stop(60) == 0, c.tail()
    return arts, [r for r in ok if r.status == 200]


def max_in_window(times, window):
    """Most requests that arrived within any `window` seconds."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_token_bucket_paces_a_route_at_its_rate(ctx):
    hook = ctx.webhook()
    arts, ok = run_route(ctx, hook, 16, {"rate_per_s": 4, "burst": 1})
    times = sorted(r.time for r in hook.requests())
    rate = (len(times) - 1) / (times[-1] - times[0])
    most = max_in_window(times, 1.0)
    print("token bucket 4/s: %d requests in %.2f s = %.2f/s, at most %d in any second"
          % (len(times), times[-1] - times[0], rate, most))
    assert len(times) == len(arts), "want one request per alert, saw %d" % len(times)
    # 4 a second with a bucket of one: 15 gaps of 250 ms (a loaded machine
    # may only stretch them).
    assert 2.5 <= rate <= 4.4, "%.2f requests/s for a route paced at 4/s" % rate
    assert most <= 5, "%d requests within one second at 4/s" % most
    assert {r.json["article"]["url"] for r in ok} == {a["url"] for a in arts}


def test_429s_slow_the_route_to_what_the_receiver_takes(ctx):
    hook = ctx.webhook()
    hook.rate_limit(2, retry_after=1)  # takes 2 a second, 429 + Retry-After: 1 beyond
    n = 20
    arts, ok = run_route(ctx, hook, n, {"rate_per_s": 20, "burst": 5})
    reqs = sorted(hook.requests(), key=lambda r: r.time)
    span = reqs[-1].time - reqs[0].time
    throttled = [r for r in reqs if r.status == 429]
    rate_all = len(reqs) / span
    rate_ok = len(ok) / span
    print("receiver takes 2/s, route paced at 20/s: %d requests (%d answered 429) in "
          "%.2f s: %.2f requests/s, %.2f accepted/s, at most %d in any second"
          % (len(reqs), len(throttled), span, rate_all, rate_ok,
             max_in_window([r.time for r in reqs], 1.0)))
    assert throttled, "the receiver never answered 429"
    # Every alert once.
    assert sorted(r.json["article"]["url"] for r in ok) == sorted(a["url"] for a in arts)
    # Retry-After: 1 holds the whole route: no request starts between a
    # 429's answer and a second later (those already on their way when it
    # was answered arrive within a few milliseconds).
    for t in throttled:
        early = [r for r in reqs if t.done + 0.2 < r.time < t.done + 0.95]
        assert not early, "requests %.2f s after a 429 with Retry-After: 1" % (
            early[0].time - t.done)
    # So the receiver sees at most about one bucket (5) per Retry-After
    # (1 s), not the route's own 20/s, and takes about what it can (2/s).
    # (The route does not lower its rate to what the receiver takes: after
    # each pause it spends its whole bucket again, and most of it is
    # answered 429; printed above.)
    assert rate_all <= 5 / 1.0 + 1, "%.2f requests/s at a receiver that takes 2/s" % (
        rate_all)
    assert rate_ok >= 1.0, "%.2f alerts/s accepted where 2/s are taken" % rate_ok


if __name__ == "__main__":
    harness.main(globals(), timeout=240)
