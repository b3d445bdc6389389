"""Alert delivery against local receivers that behave like each chat service.

ChatServices serves one path per service and checks every request the way
the service does: payload shape and documented limits (a violation is
answered 400/413 and recorded), its success status (Discord 204 with
X-RateLimit-* headers, Teams 202, ...), 429 above a set rate (Retry-After,
or Discord's JSON body), 500s and outages on demand.

Asserted: after recovery every alert has reached every route exactly once
(as a single message or inside a digest, per the ledger topic), in that
route's format, with no limit violated; and resident memory stays bounded
while a route is down for minutes with thousands of articles arriving.

NA_TEST_OUTAGE_S sets the long outage (default 150 s)."""

import hashlib
import json
import os
import re
import threading
import time

import harness

FAST = ["--deliver-backoff", "200ms", "--deliver-backoff-max", "2s",
        "--deliver-max-attempts", "1000",
        "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"]
ZWSP = "\u200b"
DIGEST_RE = re.compile(r"(\d+) news alerts")


def clen(s):
    return len(s or "")


# --------------------------------------------------------------------------
# per-service validators: return a list of violations (empty = accepted)


def v_slack(req, j):
    out = []
    if not isinstance(j, dict) or not isinstance(j.get("text"), str):
        return ["slack: want an object with text"]
    if clen(j["text"]) > 40000:
        out.append("slack: text > 40000")
    blocks = j.get("blocks") or []
    if len(blocks) > 50:
        out.append("slack: > 50 blocks")
    for b in blocks:
        t = (b.get("text") or {}).get("text") if isinstance(b.get("text"), dict) else None
        if b.get("type") == "section" and clen(t) > 3000:
            out.append("slack: section > 3000")
        if b.get("type") == "header" and clen(t) > 150:
            out.append("slack: header > 150")
    if "link_names" in j or j.get("parse") == "full":
        out.append("slack: link_names/parse full")
    raw = req.body.decode("utf-8")
    for bad in ("<!channel>", "<!here>", "<!everyone>", "<@U"):
        if bad in raw:
            out.append("slack: live mention %s" % bad)
    return out


def v_mattermost(req, j):
    atts = j.get("attachments") if isinstance(j, dict) else None
    if not isinstance(atts, list) or not atts:
        return ["mattermost: want attachments"]
    total = 0
    for a in atts:
        total += sum(clen(a.get(k)) for k in ("fallback", "pretext", "title", "text",
                                               "footer"))
        total += sum(clen(f.get("title")) + clen(f.get("value")) for f in a.get("fields", []))
    out = ["mattermost: attachments %d > 7900" % total] if total > 7900 else []
    if re.search(r"@(channel|all|here)\b", req.body.decode("utf-8")):
        out.append("mattermost: live @channel")
    return out


def v_discord(req, j):
    if not isinstance(j, dict):
        return ["discord: want an object"]
    out = []
    if j.get("allowed_mentions") != {"parse": []}:
        out.append("discord: allowed_mentions not empty")
    embeds = j.get("embeds") or []
    if len(embeds) > 10 or not (embeds or j.get("content")):
        out.append("discord: embeds")
    total = 0
    for e in embeds:
        if clen(e.get("title")) > 256 or clen(e.get("description")) > 4096:
            out.append("discord: title/description")
        if len(e.get("fields", [])) > 25:
            out.append("discord: > 25 fields")
        for f in e.get("fields", []):
            if clen(f.get("name")) > 256 or clen(f.get("value")) > 1024:
                out.append("discord: field")
        total += clen(e.get("title")) + clen(e.get("description")) + clen(
            (e.get("footer") or {}).get("text")) + sum(
            clen(f.get("name")) + clen(f.get("value")) for f in e.get("fields", []))
    if total > 6000 or clen(j.get("content")) > 2000:
        out.append("discord: > 6000 across embeds")
    if re.search(r"@(everyone|here)", req.body.decode("utf-8")):
        out.append("discord: live @everyone")
    return out


def v_teams(req, j):
    if len(req.body) > 28000:
        return ["teams: payload > 28 KB"]
    try:
        att = j["attachments"][0]
        ok = (j["type"] == "message"
              and att["contentType"] == "application/vnd.microsoft.card.adaptive"
              and att["content"]["type"] == "AdaptiveCard"
              and isinstance(att["content"]["body"], list))
    except (KeyError, IndexError, TypeError):
        ok = False
    return [] if ok else ["teams: not a message with an Adaptive Card"]


def v_googlechat(req, j):
    if not isinstance(j, dict) or not (j.get("text") or j.get("cardsV2")):
        return ["googlechat: want text or cardsV2"]
    out = []
    if clen(j.get("text")) > 4096 or len(req.body) > 32000:
        out.append("googlechat: too long")
    if "<users/all>" in req.body.decode("utf-8"):
        out.append("googlechat: live <users/all>")
    return out


def v_json(req, j):
    if not isinstance(j, dict) or j.get("schema") not in ("alert/v1", "alert-digest/v1"):
        return ["json: not alert/v1"]
    if j["schema"] == "alert/v1" and j.get("id") != req.header("webhook-id"):
        return ["json: webhook-id is not the alert id"]
    return []


SERVICES = {
    # path: validator, success status, body
    "/slack": (v_slack, 200, b"ok"),
    "/mattermost": (v_mattermost, 200, b"ok"),
    "/discord": (v_discord, 204, b""),
    "/teams": (v_teams, 202, b"1"),
    "/googlechat": (v_googlechat, 200, b"{}"),
    "/json": (v_json, 200, b"ok"),
}


class ChatServices(harness._Server):
    """One path per service; per path: rate limit (429), injected 500s, down."""

    def __init__(self):
        super().__init__(self._handle)
        self.violations = []
        self.rate = {}      # path -> requests per second accepted
        self.fail = {}      # path -> 500s still to answer
        self.limited = {}   # path -> 429s still to answer before any other check
        self.down = set()   # paths answering 503
        self.hits = {}      # path -> monotonic times of accepted requests
        self.discord_bucket = (5, 2.0)  # 5 per 2 s, like a Discord webhook
        self._start()

    def _decide(self, req):
        path = req.path
        check, ok_status, ok_body = SERVICES[path]
        with self._lock:
            if path in self.down:
                return 503, {"Retry-After": "1"}, b"down"
            if self.fail.get(path, 0) > 0:
                self.fail[path] -= 1
                return 500, {}, b"injected"
            if self.limited.get(path, 0) > 0:
                self.limited[path] -= 1
                return 429, {"Retry-After": "1"}, b"rate limited"
            now = time.monotonic()
            hdrs = {}
            if path == "/discord":
                limit, window = self.discord_bucket
                hits = [t for t in self.hits.get(path, []) if now - t < window]
                if len(hits) >= limit:
                    after = window - (now - hits[0])
                    body = json.dumps({"message": "You are being rate limited.",
                                       "retry_after": round(after, 3), "global": False})
                    return 429, {"X-RateLimit-Limit": str(limit),
                                 "X-RateLimit-Remaining": "0",
                                 "X-RateLimit-Reset-After": "%.3f" % after}, body.encode()
                remaining = limit - len(hits) - 1
                reset = window - (now - hits[0]) if hits else window
                hdrs = {"X-RateLimit-Limit": str(limit),
                        "X-RateLimit-Remaining": str(remaining),
                        "X-RateLimit-Reset-After": "%.3f" % reset,
                        "X-RateLimit-Bucket": "test"}
            elif path in self.rate:
                hits = [t for t in self.hits.get(path, []) if now - t < 1.0]
                if len(hits) >= self.rate[path]:
                    return 429, {"Retry-After": "1"}, b"rate limited"
        try:
            j = json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            j = None
        bad = check(req, j) if j is not None else ["%s: not UTF-8 JSON" % path]
        with self._lock:
            if bad:
                self.violations.extend(bad)
                return (413 if "28 KB" in bad[0] else 400), {}, b"invalid"
            self.hits.setdefault(path, []).append(time.monotonic())
            self.hits[path] = self.hits[path][-50:]
        return ok_status, hdrs, ok_body

    def _handle(self, h, req):
        self._record(req)
        try:
            status, hdrs, body = self._decide(req)
            self._send(h, req, status, body, "application/json", hdrs)
        finally:
            self._answered()

    def accepted(self, path):
        return [r for r in self.requests(path) if r.status is not None and
                200 <= r.status < 300]


# --------------------------------------------------------------------------
# helpers


def alert_id(article_id, topic):
    h = hashlib.sha256()
    for part in ("alert/v1", article_id, topic):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def article(n, prefix="flood"):
    url = "https://wire.example/%s/%d" % (prefix, n)
    return {"schema": "article/v1", "id": hashlib.sha256(url.encode()).hexdigest(),
            "url": url,
            "title": "Beijing bans exports of dual-use items @everyone <!here> %d" % n,
            "summary": "The ministry banned exports of dual-use items; licences revoked.",
            "published_at": "2026-11-25T10:00:00Z", "fetched_at": "2026-11-25T10:00:00Z",
            "source": {"id": "wire", "name": "Wire <b>&</b>",
                       "feed_url": "https://wire.example/feed"}}


def produce_articles(ctx, topic, n, prefix="flood", start=0):
    msgs = []
    for i in range(start, start + n):
        a = article(i, prefix)
        msgs.append((a["id"], json.dumps(a)))
    harness.kcat_produce(ctx.brokers, topic, msgs, timeout=120)
    return [m[0] for m in msgs]


def ledger_state(ctx, topic):
    """{alert id: {route: outcome}} from the last record of each key."""
    last = {}
    for r in harness.ledger_records(ctx.brokers, topic, timeout=60):
        last[r["key"]] = json.loads(r["value"]) if r["value"] else None
    return {k: {route: d["outcome"] for route, d in v["deliveries"].items()}
            for k, v in last.items() if v}


def digest_count(req):
    j = req.json
    if isinstance(j, dict) and j.get("schema") == "alert-digest/v1":
        return j["count"]
    m = DIGEST_RE.search(req.body.decode("utf-8"))
    return int(m.group(1)) if m and not (isinstance(j, dict) and j.get("schema")) else 0


def check_exactly_once(svc, ledger, route, path, want_ids):
    """Every wanted alert reached `route` once: a single message (its
    webhook-id) or a line of one digest; never twice, no extra."""
    ok = svc.accepted(path)
    singles = [r.header("webhook-id") for r in ok if not digest_count(r)]
    digests = [r for r in ok if digest_count(r)]
    assert len(singles) == len(set(singles)), "%s: a single alert accepted twice" % route
    dig_ids = [r.header("webhook-id") for r in digests]
    assert len(dig_ids) == len(set(dig_ids)), "%s: a digest accepted twice" % route
    sent = {a: o[route] for a, o in ledger.items() if route in o}
    assert set(sent) == set(want_ids), "%s: ledger has %d of %d alerts" % (
        route, len(set(sent) & set(want_ids)), len(want_ids))
    assert {a for a, o in sent.items() if o == "delivered"} == set(singles), route
    in_digests = sum(digest_count(r) for r in digests)
    assert in_digests == len([o for o in sent.values() if o == "digest"]), (
        "%s: digests list %d alerts, ledger says %d" % (
            route, in_digests, len([o for o in sent.values() if o == "digest"])))
    return len(singles), len(digests)


def consumer(ctx, topic, ledger, routes, extra=(), name="consumer", env=None, stories=False):
    # Flood articles are near-identical (one story): most tests count alerts
    # per article, so story grouping is on only where a test says so.
    cfg = ctx.write("%s.json" % name, {
        "stories": stories,
        "brokers": ctx.brokers, "topic": topic, "dlq_topic": ctx.topic("na.it.dlq"),
        "group_id": harness.unique_topic("na-it-deliver"), "ledger_topic": ledger,
        "rules": os.environ.get("NA_TEST_RULES") or ctx.src("examples", "rules.json"),
        "routes": routes})
    return ctx.proc([ctx.bin("newsalert-consumer"), "--config", cfg] + FAST + list(extra),
                    name=name, env=env)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# --------------------------------------------------------------------------
# tests


def test_every_service_exactly_once_through_429s_500s_and_an_outage(ctx):
    svc = ChatServices()
    ctx.cleanup(svc.close)
    topic = ctx.topic("na.it.articles")
    ledger = ctx.topic("na.it.alerts")
    ids = produce_articles(ctx, topic, 40)
    want = {alert_id(a, "export_controls") for a in ids}
    svc.rate["/slack"] = 1          # Slack: about one per second
    # A 429 at the first request, as from a workspace already at its limit:
    # the pacing alone may keep every request under the rate (the test
    # failed now and then with "no 429 exercised").
    svc.limited["/slack"] = 1
    svc.rate["/teams"] = 4          # Teams: > 4/s throttled
    svc.rate["/googlechat"] = 1
    svc.fail["/mattermost"] = 3     # three 500s
    svc.down.add("/googlechat")     # down for the first seconds
    routes = [{"name": name, "url": svc.url("/" + name), "format": name,
               "topics": ["export_controls"]}
              for name in ("slack", "mattermost", "discord", "teams", "googlechat")]
    routes.append({"name": "json", "url": svc.url("/json"), "format": "json",
                   "topics": ["export_controls"], "digest_threshold": 0,
                   "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
    c = consumer(ctx, topic, ledger, routes)
    svc.wait_for(lambda rs: len([r for r in rs if r.path == "/googlechat"]) >= 2, 60)
    svc.down.discard("/googlechat")
    # Wait until the ledger has every alert for every route, then stop.
    harness.wait_until(lambda: all(len([1 for o in ledger_state(ctx, ledger).values()
                                        if r["name"] in o]) == len(want) for r in routes),
                       timeout=180, interval=1.0, what="every alert on every route")
    c.kill()
    assert c.wait(60) == 0, c.tail()
    assert not svc.violations, svc.violations[:5]
    state = ledger_state(ctx, ledger)
    report = {}
    for r in routes:
        report[r["name"]] = check_exactly_once(svc, state, r["name"], "/" + r["name"], want)
    # The paced services got a digest instead of 40 messages at 1/s; the
    # json route (digest_threshold 0) got one message per alert.
    assert report["slack"][1] >= 1, report
    assert report["json"] == (len(want), 0), report
    # 429s were answered and honoured: never more than the service allows.
    assert any(r.status == 429 for r in svc.requests("/slack")), "no 429 exercised"
    assert any(r.status == 429 for r in svc.requests("/discord")) or \
        report["discord"][1] >= 1, report
    text = c.stderr_text()
    assert not any(svc.url("/" + r["name"]) in text for r in routes)  # URLs never logged


def test_restart_after_delivery_sends_nothing_again(ctx):
    svc = ChatServices()
    ctx.cleanup(svc.close)
    topic = ctx.topic("na.it.articles")
    ledger = ctx.topic("na.it.alerts")
    ids = produce_articles(ctx, topic, 5, prefix="once")
    want = {alert_id(a, "export_controls") for a in ids}
    routes = [{"name": "discord", "url": svc.url("/discord"), "format": "discord",
               "topics": ["export_controls"]}]
    c = consumer(ctx, topic, ledger, routes, ["--exit-eof"], name="first")
    assert c.wait(120) == 0, c.tail()
    first = len(svc.accepted("/discord"))
    # Same articles again under another group: consumed again, not re-sent.
    c2 = consumer(ctx, topic, ledger, routes, ["--exit-eof"], name="second")
    assert c2.wait(120) == 0, c2.tail()
    assert len(svc.accepted("/discord")) == first
    assert "ledger_skipped=%d" % len(want) in c2.stderr_text()
    check_exactly_once(svc, ledger_state(ctx, ledger), "discord", "/discord", want)


def story_article(url, title, summary, src):
    return {"schema": "article/v1", "id": hashlib.sha256(url.encode()).hexdigest(),
            "url": url, "title": title, "summary": summary,
            "published_at": "2026-11-25T10:00:00Z", "fetched_at": "2026-11-25T10:00:00Z",
            "source": {"id": src, "name": src, "feed_url": "https://%s.example/f" % src}}


STORY_A = story_article(
    "https://a.example/1", "China bans gallium and germanium exports to the United States",
    "China's Ministry of Commerce (MOFCOM) said on 3 December 2026 it will ban exports of "
    "gallium, germanium and antimony to the United States, citing dual-use concerns; "
    "shipments of 5,000 tonnes are affected.", "alpha")
STORY_B = story_article(
    "https://b.example/9", "Beijing halts shipments of gallium, germanium to US",
    "MOFCOM announced a ban on exports of gallium, germanium and antimony to the United "
    "States on 3 December 2026; about 5,000 tonnes of dual-use shipments are affected, the "
    "Ministry of Commerce said.", "beta")
OTHER = story_article(
    "https://c.example/2", "Taiwan Strait drills: PLA ships near Kinmen",
    "The People's Liberation Army held drills near Kinmen in the Taiwan Strait on Tuesday, "
    "Taiwan's defence ministry said.", "gamma")


def test_a_growing_story_updates_its_ledger_record_at_powers_of_two(ctx):
    """Six reports of one story: one alert, five linked reports, and the
    alert's ledger record rewritten (story size, signature) when the story
    reaches 2 and 4 reports, not at every report (each record is ~5 KB that
    every member reads back)."""
    svc = ChatServices()
    ctx.cleanup(svc.close)
    topic = ctx.topic("na.it.articles")
    ledger = ctx.topic("na.it.alerts")
    routes = [{"name": "json", "url": svc.url("/json"), "format": "json",
               "digest_threshold": 0, "topics": ["export_controls"]}]
    reports = [dict(STORY_A, id=hashlib.sha256(b"grow-%d" % i).hexdigest(),
                    url="https://grow%d.example/1" % i,
                    source={"id": "g%d" % i, "name": "g%d" % i,
                            "feed_url": "https://grow%d.example/f" % i})
               for i in range(6)]
    harness.kcat_produce(ctx.brokers, topic, [(reports[0]["id"], json.dumps(reports[0]))])
    c = consumer(ctx, topic, ledger, routes, name="grow", stories=True)
    svc.wait_for(lambda rs: len([r for r in rs if r.status == 200]) >= 1, 60)
    harness.ledger_records(ctx.brokers, ledger, count=1, timeout=30)
    harness.kcat_produce(ctx.brokers, topic,
                         [(r["id"], json.dumps(r)) for r in reports[1:]])
    harness.wait_until(lambda: c.stderr_text().count("event=story_linked") >= 5, 60,
                       what="five linked reports")
    time.sleep(2)  # what was written reaches the topic
    c.kill()
    assert c.wait(60) == 0, c.tail()
    sent = svc.accepted("/json")
    assert len(sent) == 1, [r.json for r in sent]
    alert = sent[0].header("webhook-id")
    sizes = [json.loads(r["value"])["story"]["articles"]
             for r in harness.ledger_records(ctx.brokers, ledger, timeout=30)
             if r["key"] == alert]
    assert sorted(set(sizes)) == [1, 2, 4], sizes
    assert "story_linked=5" in c.stderr_text()


def test_a_story_alerts_each_topic_once_also_after_restart(ctx):
    svc = ChatServices()
    ctx.cleanup(svc.close)
    topic = ctx.topic("na.it.articles")
    ledger = ctx.topic("na.it.alerts")
    routes = [{"name": "json", "url": svc.url("/json"), "format": "json",
               "digest_threshold": 0}]
    harness.kcat_produce(ctx.brokers, topic, [(STORY_A["id"], json.dumps(STORY_A))])
    c = consumer(ctx, topic, ledger, routes, name="first", stories=True)
    svc.wait_for(lambda rs: len([r for r in rs if r.status == 200]) >= 2, 60)
    # A second outlet's article of the same story: linked, not alerted.
    harness.kcat_produce(ctx.brokers, topic, [(STORY_B["id"], json.dumps(STORY_B))])
    c.wait_for_stderr(r"event=story_linked", 60)
    time.sleep(2)
    c.kill()
    assert c.wait(60) == 0, c.tail()
    first = svc.accepted("/json")
    assert sorted(r.json["topic"] for r in first) == ["export_controls", "rare_earths"]
    story_id = first[0].json["story_id"]
    assert all(r.json["story_id"] == story_id and r.json["article_id"] == STORY_A["id"]
               for r in first)
    assert "story_linked=2" in c.stderr_text()  # one per topic
    # Users read the story named (id, reports so far, first seen), not the
    # engine's state; the ledger keeps what restarts need (the signature).
    for r in first:
        assert r.json["story"] == {"id": story_id, "articles": 1,
                                   "first_seen": "2026-11-25T10:00:00Z"}, r.json["story"]
        assert "signature" not in r.body.decode(), r.body[:300]
    recs = {k: v for k, v in ((r["key"], json.loads(r["value"])) for r in
                              harness.ledger_records(ctx.brokers, ledger, timeout=30))}
    assert set(recs) == {r.header("webhook-id") for r in first}
    assert all(v["story"]["id"] == story_id for v in recs.values())
    assert all(isinstance(v["story"]["signature"]["f"], dict) for v in recs.values())

    # replay --dry-run over the same records: nothing to send (the ledger
    # has the story's alerts), and one "linked" line per report and topic.
    cfg = ctx.write("replay.json", {
        "brokers": ctx.brokers, "topic": topic, "ledger_topic": ledger,
        "group_id": harness.unique_topic("na-it-deliver"), "ledger_horizon": "0",
        "rules": os.environ.get("NA_TEST_RULES") or ctx.src("examples", "rules.json"),
        "routes": routes})
    cp = harness.run([ctx.bin("newsalert-consumer"), "replay", "--config", cfg,
                      "--from", "beginning", "--to", "end", "--dry-run"], timeout=120)
    assert cp.returncode == 0, cp.stderr
    lines = [json.loads(l) for l in cp.stdout.splitlines()]
    assert lines and all("linked" in l for l in lines), cp.stdout
    linked_b = [l for l in lines if l["article_id"] == STORY_B["id"]]
    assert sorted(l["topic"] for l in linked_b) == ["export_controls", "rare_earths"], lines
    assert all(l["story_id"] == story_id and l["story"]["articles"] >= 2 and
               l["article"]["source"] == "beta" for l in linked_b), linked_b
    assert "signature" not in cp.stdout

    # Restart under a new group, from the beginning, with a third article of
    # another story: the ledger re-opens the story, so neither A nor B (in
    # whatever order they come) alerts again; only the new story does.
    harness.kcat_produce(ctx.brokers, topic, [(OTHER["id"], json.dumps(OTHER))])
    c2 = consumer(ctx, topic, ledger, routes, ["--exit-eof"], name="second", stories=True)
    assert c2.wait(120) == 0, c2.tail()
    again = svc.accepted("/json")[len(first):]
    assert [r.json["topic"] for r in again] == ["taiwan"], [r.json for r in again]
    assert again[0].json["article_id"] == OTHER["id"]


def test_long_outage_memory_stays_bounded_and_nothing_is_lost(ctx):
    outage_s = float(os.environ.get("NA_TEST_OUTAGE_S", "150"))
    svc = ChatServices()
    ctx.cleanup(svc.close)
    topic = ctx.topic("na.it.articles")
    ledger = ctx.topic("na.it.alerts")
    svc.down.add("/slack")
    routes = [{"name": "slack", "url": svc.url("/slack"), "format": "slack",
               "topics": ["export_controls"], "max_queue": 200, "rate_per_s": 5,
               "burst": 5}]
    env = dict(os.environ)
    # A small ASan quarantine so RSS shows what the program holds.
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=8").lstrip(":")
    c = consumer(ctx, topic, ledger, routes, name="consumer", env=env)
    c.wait_for_stderr(r"event=started", 60)
    samples = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                samples.append((time.monotonic(), rss_kb(c.pid)))
            except OSError:
                return
            stop.wait(2.0)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.monotonic()
    produced = []
    batch = 0
    while time.monotonic() - t0 < outage_s:
        produced += produce_articles(ctx, topic, 100, prefix="outage", start=batch * 100)
        batch += 1
        time.sleep(max(0.0, min(4.0, outage_s - (time.monotonic() - t0))))
    assert len(produced) >= 2000, len(produced)
    c.wait_for_stderr(r"event=paused", 30)
    during = [kb for ts, kb in samples if ts > t0 + outage_s / 3]
    early = [kb for ts, kb in samples if ts <= t0 + outage_s / 3]
    svc.down.discard("/slack")
    want = {alert_id(a, "export_controls") for a in produced}
    harness.wait_until(lambda: len([1 for o in ledger_state(ctx, ledger).values()
                                    if "slack" in o]) == len(want),
                       timeout=240, interval=2.0, what="every alert after recovery")
    stop.set()
    t.join(5)
    c.kill()
    assert c.wait(60) == 0, c.tail()
    assert re.search(r"event=resumed", c.stderr_text()), "never resumed"
    assert not svc.violations, svc.violations[:5]
    singles, digests = check_exactly_once(svc, ledger_state(ctx, ledger), "slack", "/slack",
                                          want)
    # Bounded: the last two thirds of the outage (thousands of articles
    # arriving, the route's queue full, partitions paused) grow RSS by less
    # than 32 MB over its first third.
    assert early and during, samples
    growth_kb = max(during) - max(early)
    print("outage %.0f s: %d articles, RSS first third max %d kB, rest max %d kB, "
          "growth %d kB; recovery: %d singles, %d digests"
          % (outage_s, len(produced), max(early), max(during), growth_kb, singles, digests))
    assert growth_kb < 32 * 1024, samples


if __name__ == "__main__":
    harness.main(globals(), timeout=700)
