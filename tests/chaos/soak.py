#!/usr/bin/env python3
"""Fault-injection soak of the whole pipeline on a real Kafka broker.

    python3 tests/chaos/soak.py --build BUILD_DIR [--seed N] [--duration S]
                                [--kill-every S] [--long-outage S]

Runs a local feed server that keeps publishing new articles, the producer,
the consumer (plus a second consumer instance that comes and goes, forcing
rebalances) and two local webhook receivers (generic JSON and Slack), on a
broker of its own (scripts/kafka-broker). Meanwhile it SIGKILLs the producer
and the consumer (also while alerts are in flight, i.e. between delivery and
commit) at moments drawn from the recorded seed, restarts the broker (once
for longer than the producer's message timeout), and puts every webhook
fault on both receivers on a fixed schedule: 500s, 429 with Retry-After, a
hang past the request timeout, an outage (longer than park_after: the route
is parked on the retry topic and its alerts come back from there), 400s (the
alert is refused for good). Every consumer process also starts with fault
points armed (NEWSALERT_FAULTS): a classification, ledger writes and
dead-letter writes fail and must be retried.

The articles come from a labelled fixture (tests/data/soak/articles.jsonl:
each article with the alerts it must raise, written by hand); each one
published gets a serial number, so that every item is new.

Then it stops the faults, lets the pipeline drain, and judges:
  - every webhook fault kind was drawn and answered at least once;
  - every article the feeds published is in news.articles (none lost), and
    none was republished under a second id;
  - every (article, topic) pair the fixture labels reached every route (or
    its dead-letter copy, when the route refused it), and nothing else did;
  - copies (an alert a route received more than once): the documented
    window is a consumer killed between sending an alert and the broker's
    confirmation of its ledger record, which sends it again; so every copy
    must follow its own such kill (at most one re-send of an alert per route
    per kill that caught it in the window);
  - the dead-letter topic holds exactly the alerts a route refused with a
    400 (each refused alert is there or, after a kill, was delivered), and
    nothing else;
  - resident memory of the daemons stayed under --max-rss-mb (measure it on
    a build without sanitizers: docs/reliability.md).
It prints the counts and exits 1 on any failure, 0 otherwise.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

# ---------------------------------------------------------------- articles

FIXTURE = os.path.join(ROOT, "tests", "data", "soak", "articles.jsonl")


def load_fixture(path):
    """[(title, text, frozenset of topics)], from a labelled JSON-lines file."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            d = json.loads(line)
            if not (isinstance(d.get("title"), str) and isinstance(d.get("text"), str) and
                    isinstance(d.get("alerts"), list)):
                raise ValueError("%s:%d: want title, text and alerts" % (path, n))
            out.append((d["title"], d["text"], frozenset(d["alerts"])))
    if not out:
        raise ValueError("%s: no articles" % path)
    return out


class FeedStream:
    """Feeds that keep publishing: every tick one new item lands on a random
    feed; each document keeps its newest `keep` items, like a real feed."""

    def __init__(self, server, rng, articles, feeds=4, keep=40):
        self.server = server
        self.rng = rng
        self.articles = articles
        self.keep = keep
        self.items = {i: [] for i in range(feeds)}
        self.published = []  # canonical URLs of every item ever published
        self.labels = {}  # canonical URL -> the topics its article must alert
        self.lock = threading.Lock()
        self.seq = 0
        for i in self.items:
            self._render(i)

    def path(self, i):
        return "/feed%d.xml" % i

    def publish(self):
        with self.lock:
            self.seq += 1
            n = self.seq
            feed = self.rng.randrange(len(self.items))
            title, text, topics = self.rng.choice(self.articles)
            # The serial number makes every item new (the producer drops an
            # item whose text it has seen under another link); no rule
            # matches it.
            title = "%s (item %d)" % (title, n)
            text = "%s Reference %d." % (text, n)
            url = "https://soak.example/%d/story-%d" % (feed, n)
            pub = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
            self.items[feed].insert(0, (url, title, text, pub))
            del self.items[feed][self.keep:]
            self.published.append(url)
            self.labels[url] = topics
            self._render(feed)

    def _render(self, i):
        def esc(s):
            return s.replace("&", "&amp;").replace("<", "&lt;")
        items = "".join(
            "<item><title>%s</title><link>%s</link><guid>%s</guid><pubDate>%s</pubDate>"
            "<description>%s</description></item>" % (esc(t), u, u, p, esc(x))
            for u, t, x, p in self.items[i])
        doc = ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
               "<title>Soak feed %d</title><link>https://soak.example/%d/</link>%s"
               "</channel></rss>" % (i, i, items))
        self.server.set(self.path(i), doc, "application/rss+xml")


# ---------------------------------------------------------------- processes

def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Daemon:
    """A daemon the soak restarts after every kill, tracking its peak RSS."""

    def __init__(self, name, argv, tmp, env=None):
        self.name = name
        self.argv = argv
        self.tmp = tmp
        self.env = env
        self.proc = None
        self.generation = 0
        self.kills = 0
        self.peak_rss_kb = 0
        self.peak_gen = None  # the process (log file name) that peaked
        self.exits = []
        # time.time() of every end without a clean stop (SIGKILL, an exit by
        # itself, a stop that failed): the moments that may leave an alert
        # delivered but not yet in the ledger.
        self.deaths = []
        self.ended = True  # no process, or its end was noted (killed, stopped)

    def start(self):
        self.ended = False
        self.generation += 1
        self.proc = harness.Proc(self.argv, self.tmp, env=self.env,
                                 name="%s-%d" % (self.name, self.generation))

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def sample(self):
        if self.alive():
            kb = rss_kb(self.proc.pid)
            if kb > self.peak_rss_kb:
                self.peak_rss_kb, self.peak_gen = kb, self.proc.name

    def kill(self):
        if self.alive():
            self.proc.kill(signal.SIGKILL)
            self.proc.wait(10)
            self.kills += 1
            self.deaths.append(time.time())
        self.ended = True

    def exited_by_itself(self):
        """True (once) when the process ended without a kill or a stop; that
        end counts as a death."""
        if self.ended or self.proc is None or self.alive():
            return False
        self.ended = True
        self.exits.append(self.proc.returncode)
        self.deaths.append(time.time())
        return True

    def stop(self, timeout=60):
        if self.proc is not None:
            self.ended = True
            rc = self.proc.stop(timeout)
            self.exits.append(rc)
            if rc != 0:
                self.deaths.append(time.time())
            return rc
        return None


class BrokerBounce(threading.Thread):
    """Stop the broker, wait `pause` seconds, start it again, in a thread of
    its own so that the fault schedule goes on meanwhile."""

    def __init__(self, script, broker_dir, pause):
        super().__init__(daemon=True)
        self.script, self.broker_dir, self.pause = script, broker_dir, pause
        self.error = None

    def run(self):
        try:
            sh([self.script, "stop", self.broker_dir])
            print("soak: broker down for %.1f s" % self.pause, flush=True)
            time.sleep(self.pause)
            sh([self.script, "start", self.broker_dir], timeout=180)
            print("soak: broker up again", flush=True)
        except Exception as e:  # reported by check() on the main thread
            self.error = e

    def check(self):
        if self.error is not None:
            raise RuntimeError("broker restart failed: %s" % self.error)


def sh(argv, timeout=120):
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if cp.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(argv), cp.stderr[-2000:]))
    return cp.stdout


def alert_id(article_id, topic):
    h = hashlib.sha256()
    for part in ("alert/v1", article_id, topic):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


# ---------------------------------------------------------------- the soak

# Webhook faults, in the order the schedule puts them on each receiver, and
# what a receiver answers while one is on (0: no answer at all).
# "rate" first on each receiver: it needs traffic (one request in 2 s is
# accepted), which a route parked by an earlier fault no longer has.
WEBHOOK_FAULTS = ("rate", "fail", "hang", "down", "reject")
FAULT_STATUS = {"fail": 500, "rate": 429, "hang": 0, "down": 503, "reject": 400}

# Fault points armed in every consumer process the soak starts
# (docs/reliability.md): classifying, writing ledger records and writing
# dead-letter copies fail now and then; each must be retried, nothing lost.
CONSUMER_FAULTS = ("classify:2,ledger_record:2,ledger_delivery:2,dlq_produce:1,"
                   "dlq_delivery:1")


def fault_schedule(duration, per_kind):
    """The webhook faults: each kind `per_kind` times on each receiver, at
    evenly spaced moments (a fixed schedule, so that a short run has every
    kind; how long each lasts is drawn from the seed when it starts).
    Returns [(t, "webhook", (receiver, kind))] and the spacing."""
    hooks = ("json", "slack")
    n = per_kind * len(WEBHOOK_FAULTS) * len(hooks)
    gap = duration / (n + 1)
    out = []
    for k in range(n):
        # Each kind on one receiver, then on the other: a receiver's faults
        # come every second slot.
        kind = WEBHOOK_FAULTS[(k // len(hooks)) % len(WEBHOOK_FAULTS)]
        hook = hooks[k % len(hooks)]
        out.append(((k + 1) * gap, "webhook", (hook, kind)))
    return out, gap


# The receivers stay quiet this long before the verdict: longer than the
# consumer's handover_grace (15 s), for which a member that took partitions
# from a killed one holds the alerts of the records it reads again.
QUIET_S = 30


def ledger_confirmations(brokers, topic):
    """{(alert id, route): time.time() the broker appended the first ledger
    record that holds the route as delivered}. The soak's broker stamps
    records with LogAppendTime, so a record's timestamp is when it was
    confirmed."""
    out = {}
    for r in harness.kcat_consume(brokers, topic, timeout=60):
        if not r["value"]:
            continue
        for route, d in (json.loads(r["value"]).get("deliveries") or {}).items():
            if d.get("outcome") in ("delivered", "digest"):
                key = (r["key"], route)
                out[key] = min(out.get(key, float("inf")), r["ts"] / 1000.0)
    return out


def copies_report(requests, deaths, confirmed):
    """(copies, unexplained, examples, most from one death) of one route.

    A copy is a receipt (answered 200) of an alert after its first. The
    documented window: a consumer that dies after sending an alert and
    before the broker confirmed its ledger record sends it again. So a copy
    is explained by a consumer death after the previous receipt (the send
    had happened) and not after the ledger confirmed that delivery
    (`confirmed(alert id)`, None when never). Half a second of slack covers
    a record appended just after the death. Two copies need two deaths.
    """
    seen = {}
    copies = unexplained = 0
    examples = []
    per_death = {}
    kinds = {"in_flight": 0, "answered": 0}
    for r in sorted(requests, key=lambda r: r.wall):
        if r.status != 200:
            continue
        wid = r.header("webhook-id")
        prev = seen.get(wid)
        seen[wid] = (r.wall, r.wall + ((r.done or r.time) - r.time))
        if prev is None:
            continue
        prev, prev_done = prev
        copies += 1
        conf = confirmed(wid)
        why = [t for t in deaths if prev < t < r.wall and (conf is None or conf > t - 0.5)]
        if why:
            per_death[why[0]] = per_death.get(why[0], 0) + 1
            # Still unanswered when the consumer died, or answered and not
            # yet in the ledger.
            kinds["in_flight" if prev_done >= why[0] else "answered"] += 1
        else:
            unexplained += 1
            if len(examples) < 5:
                examples.append(wid)
    copies_report.kinds = kinds
    return copies, unexplained, examples, max(per_death.values(), default=0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--duration", type=float, default=120, help="seconds of faults")
    ap.add_argument("--kill-every", type=float, default=6,
                    help="mean seconds between daemon kills and rebalances")
    ap.add_argument("--broker-restarts", type=int, default=1)
    ap.add_argument("--long-outage", type=float, default=15,
                    help="seconds of the one long broker outage (> message timeout)")
    ap.add_argument("--publish-every", type=float, default=0.4)
    ap.add_argument("--no-rebalances", dest="rebalances", action="store_false",
                    help="no second consumer (to tell its faults from the others)")
    ap.add_argument("--webhook-faults", type=int, default=1,
                    help="times each webhook fault hits each receiver")
    ap.add_argument("--down-max", type=float, default=20,
                    help="longest webhook outage, seconds (full run: minutes)")
    ap.add_argument("--resume-max", type=float, default=60,
                    help="longest wait, after the broker is back, for a receiver to "
                         "answer before the webhook faults go on")
    ap.add_argument("--fixture", default=FIXTURE,
                    help="labelled articles (JSON lines: title, text, alerts)")
    ap.add_argument("--max-rss-mb", type=float, default=200)
    ap.add_argument("--drain", type=float, default=240, help="max seconds to drain")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--max-resent-per-kill", type=float, default=None,
                    help="fail when a route received more re-sent requests (copies) "
                         "than this many per consumer kill (off by default)")
    args = ap.parse_args()

    # SIGTERM (ctest's timeout, a user) still runs the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    rng = random.Random(seed)
    articles = load_fixture(args.fixture)
    print("soak: seed=%d duration=%ss kill_every=%ss broker_restarts=%d fixture=%s "
          "(%d articles)" % (seed, args.duration, args.kill_every, args.broker_restarts,
                             os.path.relpath(args.fixture, ROOT), len(articles)), flush=True)
    tmp = tempfile.mkdtemp(prefix="na-soak-")
    broker_dir = os.path.join(tmp, "broker")
    os.makedirs(broker_dir)
    bin_dir = os.path.abspath(args.build)
    counts = {"producer_kills": 0, "consumer_kills": 0, "broker_restarts": 0,
              "rebalances": 0, "webhook_faults": 0}
    drawn = {k: 0 for k in WEBHOOK_FAULTS}
    timeline = []  # (seconds since the start, what) of every fault, for a failed run
    daemons = []
    servers = []
    ok = False
    try:
        # LogAppendTime: a ledger record's timestamp says when the broker
        # confirmed it (the verdict's window for copies).
        brokers = sh([os.path.join(ROOT, "scripts", "kafka-broker"), "start", broker_dir,
                      "broker.session.timeout.ms=3000",
                      "log.message.timestamp.type=LogAppendTime"]).strip()
        print("soak: broker %s" % brokers, flush=True)
        topic, dlq, ledger = "soak.articles", "soak.dlq", "soak.alerts"
        retry = "soak.retry"

        feeds = harness.FeedServer()
        servers.append(feeds)
        stream = FeedStream(feeds, rng, articles)
        hooks = {"json": harness.WebhookReceiver(), "slack": harness.WebhookReceiver()}
        servers.extend(hooks.values())

        sources = {"sources": [{"id": "soak%d" % i, "name": "Soak %d" % i,
                                "url": feeds.url(stream.path(i)), "interval": "1s"}
                               for i in stream.items]}
        with open(os.path.join(tmp, "sources.json"), "w") as f:
            json.dump(sources, f)
        consumer_cfg = {
            "brokers": brokers, "topic": topic, "dlq_topic": dlq, "ledger_topic": ledger,
            "group_id": "soak", "retry_topic": retry,
            # An outage longer than this parks the route: its alerts go to
            # the retry topic and come back from there once it answers.
            "park_after": "4s",
            "rules": os.path.join(ROOT, "examples", "rules.json"),
            # Story grouping off: the fixture's articles would fold into a
            # few stories; the verdict counts one alert per (article, topic).
            "stories": False,
            "deliver_max_attempts": 1000, "deliver_backoff": "100ms",
            "deliver_backoff_max": "2s", "deliver_timeout": "3s", "drain_timeout": "5s",
            # Digests fold many alerts into one message whose webhook-id is
            # the digest's own; the verdict counts alerts, so keep them apart.
            "routes": [{"name": "generic", "url": hooks["json"].url("/json"), "format": "json",
                        "digest_threshold": 1000000},
                       {"name": "desk", "url": hooks["slack"].url("/slack"),
                        "format": "slack", "digest_threshold": 1000000,
                        "rate_per_s": 50, "burst": 50}],
            "kafka": {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}}
        with open(os.path.join(tmp, "consumer.json"), "w") as f:
            json.dump(consumer_cfg, f)

        producer = Daemon("producer", [
            os.path.join(bin_dir, "newsalert-producer"), "--brokers", brokers,
            "--sources", os.path.join(tmp, "sources.json"), "--state-dir",
            os.path.join(tmp, "state"), "--topic", topic,
            "-X", "message.timeout.ms=8000"], tmp)
        faults = {"NEWSALERT_FAULTS": CONSUMER_FAULTS}
        consumer = Daemon("consumer", [os.path.join(bin_dir, "newsalert-consumer"),
                                       "--config", os.path.join(tmp, "consumer.json")], tmp,
                          env=faults)
        second = Daemon("consumer-b", consumer.argv, tmp, env=faults)
        daemons.extend([producer, consumer, second])
        producer.start()
        consumer.start()

        # The schedule, drawn from the seed up front so a run can be replayed:
        # kills and rebalances at exponential gaps, webhook faults on a fixed
        # grid (every kind on both receivers), broker restarts evenly spaced.
        events = []
        t = 3.0
        while t < args.duration:
            t += rng.expovariate(1.0 / args.kill_every)
            what = rng.choice(["kill_producer", "kill_consumer", "kill_consumer_inflight",
                               "rebalance"])
            if what != "rebalance" or args.rebalances:
                events.append((t, what, None))
        wh_events, wh_gap = fault_schedule(args.duration, args.webhook_faults)
        for i in range(args.broker_restarts):
            events.append((args.duration * (i + 1) / (args.broker_restarts + 1),
                           "broker_long" if i == 0 else "broker", None))
        events.sort(key=lambda e: e[0])
        # A receiver's faults come every 2 * wh_gap seconds (they alternate
        # between the two); one lasts less than that, so none cuts the next.
        fault_max = max(4.0, 2 * wh_gap - 1.0)
        script = os.path.join(ROOT, "scripts", "kafka-broker")
        active = []  # webhook faults on: [hook name, kind, since, min_end, need, began]
        bounce = None  # the broker restart under way (a thread: the schedule goes on)
        start = time.monotonic()
        next_pub = start
        # The webhook faults run on a clock of their own that stands still
        # while the pipeline cannot deliver: from a broker stop until a
        # receiver answers again after the broker is back (its start alone
        # takes 10-30 s on a loaded machine, and the group then waits
        # session.timeout.ms for the members it knew before; no alert can
        # reach a receiver meanwhile, so a fault drawn then would go
        # unanswered whatever the consumer does). At most --resume-max
        # seconds after the broker is back.
        wh = {"paused": 0.0, "since": None, "back": None}

        def wh_now(now):
            return now - start - wh["paused"] - (now - wh["since"] if wh["since"] else 0.0)

        def wh_pause(now):
            if wh["since"] is None:
                wh["since"], wh["back"] = now, None
                timeline.append((round(now - start, 2), "webhook_clock_stopped", None))

        def wh_resume_maybe(now):
            if wh["since"] is None or (bounce is not None and bounce.is_alive()):
                return
            if wh["back"] is None:
                wh["back"] = now
            answered = any(r.time > wh["back"] for h in hooks.values()
                           for r in h.requests())
            if answered or now - wh["back"] > args.resume_max:
                wh["paused"] += now - wh["since"]
                wh["since"] = None
                timeline.append((round(now - start, 2), "webhook_clock_started",
                                 round(wh["paused"], 2)))

        def end_faults(now, force=False):
            """A fault ends once it lasted its time AND the receiver answered
            it `need` times (a consumer down meanwhile sends nothing), or
            after fault_max seconds (both on the webhook clock)."""
            t = wh_now(now)
            for f in list(active):
                name, kind, since, min_end, need, began = f
                seen = sum(1 for r in hooks[name].requests()
                           if r.time >= since and r.status == FAULT_STATUS[kind])
                if force or (t >= min_end and seen >= need) or t >= began + fault_max:
                    hooks[name].up()
                    active.remove(f)

        def start_fault(name, kind, when):
            h = hooks[name]
            # A fault of this receiver still on ends now: its end must not
            # end the new one (both set the receiver's mode).
            for f in [f for f in active if f[0] == name]:
                active.remove(f)
            h.up()
            counts["webhook_faults"] += 1
            drawn[kind] += 1
            now = time.monotonic()
            t = wh_now(now)
            timeline.append((round(now - start, 2), "webhook", [name, kind]))
            print("soak: t=%.1f webhook %s on %s (webhook clock %.1f)" % (
                now - start, kind, name, when), flush=True)
            if kind == "fail":
                h.fail_next(rng.randrange(3, 20))  # ends by itself
            elif kind == "reject":
                # A 400: the alert is refused for good and must go to the
                # dead-letter topic (with its offset kept until it is
                # there), not vanish.
                h.fail_next(rng.randrange(1, 4), status=400)
            elif kind == "rate":
                # One request every 2 s, where alerts come about once a
                # second: 429s with Retry-After, whatever the traffic.
                h.rate_limit(0.5, retry_after=1)
                active.append([name, kind, now, t + rng.uniform(2, 6), 3, t])
            elif kind == "hang":
                h.hang(5)  # past the consumer's 3 s request timeout
                active.append([name, kind, now, t + rng.uniform(3, 8), 1, t])
            else:
                h.down(503, retry_after=1)
                lasts = rng.uniform(min(5, args.down_max), args.down_max)
                active.append([name, kind, now, t + lasts, 1, t])

        def waiting(when, wait_webhooks):
            """Go on publishing, ending and starting webhook faults and
            restarting daemons that exited until `when` (seconds since the
            start), and with `wait_webhooks` until the webhook clock reached
            `when` too (every webhook fault started, the last one with its
            time)."""
            nonlocal next_pub
            while True:
                now = time.monotonic()
                if now - start >= when and (not wait_webhooks or (
                        not wh_events and wh["since"] is None and wh_now(now) >= when)):
                    break
                if now >= next_pub:
                    stream.publish()
                    next_pub = now + args.publish_every
                wh_resume_maybe(now)
                end_faults(now)
                if wh["since"] is None and wh_events and wh_now(now) >= wh_events[0][0]:
                    t, _, (name, kind) = wh_events.pop(0)
                    start_fault(name, kind, t)
                for d in daemons:
                    d.sample()
                    if d.exited_by_itself():
                        print("soak: %s exited by itself (%s); stderr:\n%s" % (
                            d.name, d.proc.returncode, d.proc.tail(3)), flush=True)
                        if len(d.exits) > 20:
                            raise RuntimeError("%s keeps exiting by itself" % d.name)
                        if d is not second:  # the next rebalance starts it
                            d.start()
                time.sleep(0.05)

        for when, what, arg in events + [(args.duration, "end", None)]:
            waiting(when, what == "end")
            if what == "end":
                break
            timeline.append((round(time.monotonic() - start, 2), what, arg))
            if what == "kill_producer":
                producer.kill()
                time.sleep(rng.uniform(0, 1.5))
                producer.start()
            elif what in ("kill_consumer", "kill_consumer_inflight"):
                if what == "kill_consumer_inflight":
                    # Alerts in flight: the receivers answer slowly, so a kill
                    # lands between delivery and commit.
                    for h in hooks.values():
                        h.latency(0.3)
                    time.sleep(rng.uniform(0.2, 1.0))
                consumer.kill()
                for h in hooks.values():
                    h.latency(0)
                time.sleep(rng.uniform(0, 1.0))
                consumer.start()
            elif what == "rebalance":
                counts["rebalances"] += 1
                if second.alive():
                    second.stop(15)
                else:
                    second.start()
            elif what in ("broker", "broker_long"):
                counts["broker_restarts"] += 1
                pause = args.long_outage if what == "broker_long" else rng.uniform(1, 4)
                if bounce is not None:
                    bounce.join()
                    bounce.check()
                bounce = BrokerBounce(script, broker_dir, pause)
                bounce.start()
                wh_pause(time.monotonic())
        end_faults(time.monotonic(), force=True)
        if bounce is not None:
            bounce.join()
            bounce.check()
        counts["producer_kills"] = producer.kills
        counts["consumer_kills"] = consumer.kills + second.kills

        # Drain: no more faults or new articles; wait until the topic holds
        # every published article and the receivers stop receiving.
        print("soak: faults over; draining", flush=True)
        if second.alive():
            second.stop(15)
        for h in hooks.values():
            h.up()
        deadline = time.monotonic() + args.drain
        published = set(stream.published)
        records = []
        while time.monotonic() < deadline:
            for d in (producer, consumer):
                d.sample()
                if d.exited_by_itself():
                    d.start()
            records = harness.kcat_consume(brokers, topic, timeout=60)
            urls = {json.loads(r["value"]).get("url") for r in records if r["value"]}
            if published <= urls:
                break
            time.sleep(2)
        quiet_since, last = time.monotonic(), -1
        while time.monotonic() < deadline:
            n = sum(len(h.requests()) for h in hooks.values())
            if n != last:
                last, quiet_since = n, time.monotonic()
            elif time.monotonic() - quiet_since > QUIET_S:
                break
            consumer.sample()
            time.sleep(1)
        producer.stop(30)
        consumer.stop(30)

        # ---------------------------------------------------------- verdict
        records = harness.kcat_consume(brokers, topic, timeout=60)
        values = {}
        per_key = {}
        for r in records:
            per_key[r["key"]] = per_key.get(r["key"], 0) + 1
            values.setdefault(r["key"], r["value"])
        urls = {}
        for key, value in values.items():
            urls.setdefault(json.loads(value)["url"], set()).add(key)
        lost_articles = sorted(published - set(urls))
        second_ids = sorted(u for u, ids in urls.items() if len(ids) > 1)
        republished = sum(n - 1 for n in per_key.values())

        # What must arrive comes from the fixture's labels, not from the
        # rules engine under test.
        expected = set()
        for url, ids in urls.items():
            for topic_name in stream.labels.get(url, ()):
                for aid in ids:
                    expected.add(alert_id(aid, topic_name))

        deaths = consumer.deaths + second.deaths
        # Dead-letter copies: an alert a route refused (400) belongs there,
        # keyed by its alert id, with the route in a header; nothing else.
        dlq_records = harness.kcat_consume(brokers, dlq, timeout=60)
        dead = {name: set() for name in hooks}
        hook_of = {"generic": "json", "desk": "slack"}
        stray_dlq = []
        for r in dlq_records:
            name = hook_of.get(r["headers"].get("route"))
            if name is None:
                stray_dlq.append(r["headers"])
            else:
                dead[name].add(r["key"])
        confirmed = ledger_confirmations(brokers, ledger)
        route_of = {"json": "generic", "slack": "desk"}
        answered = {k: 0 for k in WEBHOOK_FAULTS}
        verdict = {}
        for name, h in hooks.items():
            reqs = h.requests()
            for kind, status in FAULT_STATUS.items():
                answered[kind] += sum(1 for r in reqs if r.status == status)
            got = [r.header("webhook-id") for r in reqs if r.status == 200]
            uniq = set(got)
            rejected = {r.header("webhook-id") for r in reqs if r.status == 400}
            copies, unexplained, examples, most = copies_report(
                reqs, deaths, lambda aid, route=route_of[name]: confirmed.get((aid, route)))
            kinds = dict(copies_report.kinds)
            verdict[name] = {"received": len(got), "unique": len(uniq), "copies": copies,
                             "kinds": kinds,
                             "unexplained": unexplained, "examples": examples,
                             "most": most, "lost": len(expected - uniq - dead[name]),
                             "unexpected": len(uniq - expected),
                             "dead": len(dead[name]), "rejected": len(rejected),
                             "dead_unrejected": sorted(dead[name] - rejected),
                             "rejected_lost": sorted(rejected - dead[name] - uniq)}
        peak = {d.name: round(d.peak_rss_kb / 1024, 1) for d in (producer, consumer, second)}

        print("soak: seed=%d" % seed)
        print("soak: faults %s" % json.dumps(counts, sort_keys=True))
        print("soak: webhook faults drawn %s, requests answered so %s" % (
            json.dumps(drawn), json.dumps(answered)))
        print("soak: articles published=%d in_topic=%d lost=%d republished=%d "
              "second_ids=%d" % (len(published), len(urls), len(lost_articles),
                                 republished, len(second_ids)))
        print("soak: alerts expected=%d (fixture labels)" % len(expected))
        for name, v in verdict.items():
            print("soak: route %-7s received=%d unique=%d lost=%d unexpected=%d copies=%d "
                  "(consumer kills %d, most copies after one kill %d, copies outside "
                  "the window %d)" % (name, v["received"], v["unique"], v["lost"],
                                      v["unexpected"], v["copies"], len(deaths), v["most"],
                                      v["unexplained"]))
        kills = max(len(deaths), 1)
        print("soak: re-sent requests per route after %d consumer kills: %s" % (
            len(deaths), ", ".join(
                "%s %d (%.1f per kill, at most %d after one; %d still in flight at the "
                "kill, %d answered before it)" % (
                    name, v["copies"], v["copies"] / kills, v["most"],
                    v["kinds"]["in_flight"], v["kinds"]["answered"])
                for name, v in verdict.items())))
        for name, v in verdict.items():
            print("soak: route %-7s refused (400) %d alerts, dead-lettered %d" % (
                name, v["rejected"], v["dead"]))
        print("soak: dlq=%d peak_rss_mb=%s (in %s; bound %s MB)" % (
            len(dlq_records), json.dumps(peak),
            ", ".join(str(d.peak_gen) for d in (producer, consumer, second)),
            args.max_rss_mb))
        for name, v in verdict.items():
            got = {r.header("webhook-id") for r in hooks[name].requests() if r.status == 200}
            if v["lost"]:
                print("soak: route %s lost: %s" % (name,
                                                  sorted(expected - got - dead[name])[:10]))
            if v["unexpected"]:
                print("soak: route %s unexpected: %s" % (name, sorted(got - expected)[:10]))
            if v["unexplained"]:
                print("soak: route %s copies outside the window (no consumer kill between "
                      "a receipt and the ledger record): %s" % (name, v["examples"]))
        failures = []
        for kind in WEBHOOK_FAULTS:
            if not drawn[kind] or not answered[kind]:
                failures.append("webhook fault %s drawn %d times, %d requests answered so" %
                                (kind, drawn[kind], answered[kind]))
        if lost_articles:
            failures.append("articles lost: %s" % lost_articles[:5])
        if second_ids:
            failures.append("articles republished under a second id: %s" % second_ids[:5])
        for name, v in verdict.items():
            if v["lost"]:
                failures.append("route %s lost %d alerts" % (name, v["lost"]))
            if v["unexpected"]:
                failures.append("route %s received %d unexpected alerts" % (name,
                                                                           v["unexpected"]))
            # The documented window: a kill between sending an alert and its
            # ledger record re-sends that alert, once per such kill. Any other
            # copy breaks "never twice".
            if v["unexplained"]:
                failures.append("route %s received %d copies outside the window of a "
                                "consumer kill" % (name, v["unexplained"]))
            if v["dead_unrejected"]:
                failures.append("route %s: %d alerts in the dead-letter topic that it never "
                                "refused: %s" % (name, len(v["dead_unrejected"]),
                                                 v["dead_unrejected"][:5]))
            if v["rejected_lost"]:
                failures.append("route %s: %d refused alerts neither dead-lettered nor "
                                "delivered: %s" % (name, len(v["rejected_lost"]),
                                                   v["rejected_lost"][:5]))
        if stray_dlq:
            failures.append("%d records in the dead-letter topic without a route: %s" % (
                len(stray_dlq), stray_dlq[:3]))
        if args.max_resent_per_kill is not None:
            for name, v in verdict.items():
                if v["copies"] > args.max_resent_per_kill * len(deaths):
                    failures.append("route %s: %d re-sent requests after %d consumer "
                                    "kills, over %.1f per kill" % (
                                        name, v["copies"], len(deaths),
                                        args.max_resent_per_kill))
        for name, mb in peak.items():
            if mb > args.max_rss_mb:
                failures.append("%s peak RSS %.1f MB over %s MB" % (name, mb,
                                                                  args.max_rss_mb))
        for f in failures:
            print("soak: FAIL %s" % f)
        ok = not failures
        print("soak: %s" % ("PASS" if ok else "FAIL"), flush=True)
    finally:
        for d in daemons:
            if d.alive():
                d.proc.kill(signal.SIGKILL)
        for s in servers:
            s.close()
        subprocess.run([os.path.join(ROOT, "scripts", "kafka-broker"), "stop", broker_dir],
                       capture_output=True)
        if args.keep or not ok:
            # What happened when: the faults and every webhook request (time
            # in seconds from the start, status, webhook-id), to read a failure.
            try:
                with open(os.path.join(tmp, "timeline.json"), "w") as f:
                    wall0 = time.time() - (time.monotonic() - start)
                    json.dump({"faults": timeline, "deaths": {
                        d.name: [round(t - wall0, 2) for t in d.deaths] for d in daemons},
                        "requests": {name: [(round(r.time - start, 2), r.status,
                                             r.header("webhook-id"),
                                             round((r.done or r.time) - start, 3))
                                            for r in h.requests()]
                                     for name, h in hooks.items()}}, f)
            except NameError:
                pass  # failed before the run began
            print("soak: files kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
