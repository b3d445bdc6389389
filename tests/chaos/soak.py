#!/usr/bin/env python3
"""Fault-injection soak of the whole pipeline on a real Kafka broker.

    python3 tests/chaos/soak.py --build build-test [--seed N] [--duration S]
                                [--kill-every S] [--long-outage S]

Runs a local feed server that keeps publishing new articles, the producer,
the consumer (plus a second consumer instance that comes and goes, forcing
rebalances) and two local webhook receivers (generic JSON and Slack), on a
broker of its own (scripts/kafka-broker). Meanwhile, at random moments drawn
from the recorded seed, it SIGKILLs the producer and the consumer (also while
alerts are in flight, i.e. between delivery and commit), restarts the broker
(once for longer than the producer's message timeout), and makes the
receivers answer 500s, 429 with Retry-After, hang, and go down.

Then it stops the faults, lets the pipeline drain, and judges:
  - every article the feeds published is in news.articles (none lost);
  - no article was republished under a second id;
  - every (article, topic) pair the rules select reached every route
    exactly once after the receiver dedups by the alert id header
    (webhook-id); copies before dedup are counted and reported;
  - nothing went to the dead-letter topic;
  - resident memory of both daemons stayed under --max-rss-mb.
It prints the counts and exits 1 on any loss (and on unexpected alerts, DLQ
records or memory over the bound), 0 otherwise.
"""

import argparse
import hashlib
import json
import os
import random
import re
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

PLACES = ["Tokyo", "Berlin", "Ottawa", "Canberra", "Seoul", "Brussels", "Manila", "Hanoi"]
FIRMS = ["Kestrel Microsystems", "Orin Metals", "Halden Optics", "Sable Chemicals",
         "Vantor Devices", "Mirel Magnetics", "Corvid Instruments", "Pellan Alloys"]
TEMPLATES = [
    # (title, text) with {place}, {firm}, {n}; the rules decide the topics.
    ("{place} tightens export licences for chip tools after review {n}",
     "The trade ministry in {place} said exporters of advanced lithography and etching "
     "equipment will need an individual export licence from next month. {firm} said the "
     "new export controls on dual-use items would delay shipments. Review number {n}."),
    ("Beijing bans dual-use exports to {firm} in dispute {n}",
     "China's commerce ministry banned exports of dual-use items to {firm}, citing "
     "national security, and placed the company on its export control list. Officials in "
     "{place} protested the export ban. Case {n}."),
    ("Neodymium and dysprosium prices jump as rare earth supply tightens {n}",
     "Prices of neodymium and dysprosium rose for a third week as buyers in {place} "
     "scrambled for rare earth magnets. {firm} said its rare earth inventory would last "
     "two months. Report {n}."),
    ("{firm} opens rare earth separation plant near {place} {n}",
     "{firm} began separating rare earth elements at a new plant, producing neodymium "
     "and praseodymium oxide for permanent magnets outside China. Plant {n}."),
    ("PLA drills around Taiwan enter second day, Taipei says {n}",
     "China's Eastern Theater Command sent warships and aircraft into the Taiwan Strait "
     "for a second day of drills, and Taiwan's defence ministry in Taipei said it tracked "
     "the ships. Officials in {place} urged restraint across the strait. Drill {n}."),
    ("Taiwan's legislature passes special defence budget {n}",
     "Lawmakers in Taipei approved extra defence spending on missiles and drones, as "
     "President Lai Ching-te warned of growing military pressure from Beijing on Taiwan. "
     "Vote {n}."),
    ("China curbs rare earth magnet exports, {firm} warns of shortages {n}",
     "Beijing's new export licensing for rare earth magnets and processing technology "
     "left {firm} in {place} short of neodymium magnets, the company said. Notice {n}."),
    # Unrelated stories that share words.
    ("Rare earthworm species found in {place} park {n}",
     "Volunteers counting wildlife in a park near {place} found a rare earthworm not seen "
     "there for decades. The survey also recorded beetles and moths. Survey {n}."),
    ("{place} exports rose 4% in October, statistics office says {n}",
     "Exports of machinery and wine rose 4 per cent in October from a year earlier, the "
     "statistics office in {place} said, while imports fell. Release {n}."),
    ("Thai green curry festival draws crowds in {place} {n}",
     "Cooks from Bangkok served green curry and mango sticky rice at a street festival in "
     "{place}; organisers expect more visitors next year. Festival {n}."),
    ("Parental controls come to {firm} tablets {n}",
     "{firm} added parental controls and screen-time limits to its tablets sold in "
     "{place}, letting parents block apps at bedtime. Update {n}."),
]


class FeedStream:
    """Feeds that keep publishing: every tick one new item lands on a random
    feed; each document keeps its newest `keep` items, like a real feed."""

    def __init__(self, server, rng, feeds=4, keep=40):
        self.server = server
        self.rng = rng
        self.keep = keep
        self.items = {i: [] for i in range(feeds)}
        self.published = []  # canonical URLs of every item ever published
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
            title, text = self.rng.choice(TEMPLATES)
            fill = {"place": self.rng.choice(PLACES), "firm": self.rng.choice(FIRMS), "n": n}
            url = "https://soak.example/%d/story-%d" % (feed, n)
            pub = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
            self.items[feed].insert(0, (url, title.format(**fill), text.format(**fill), pub))
            del self.items[feed][self.keep:]
            self.published.append(url)
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

    def __init__(self, name, argv, tmp):
        self.name = name
        self.argv = argv
        self.tmp = tmp
        self.proc = None
        self.generation = 0
        self.kills = 0
        self.peak_rss_kb = 0
        self.peak_gen = None  # the process (log file name) that peaked
        self.exits = []

    def start(self):
        self.generation += 1
        self.proc = harness.Proc(self.argv, self.tmp,
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

    def stop(self, timeout=60):
        if self.proc is not None:
            rc = self.proc.stop(timeout)
            self.exits.append(rc)
            return rc
        return None


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

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--duration", type=float, default=120, help="seconds of faults")
    ap.add_argument("--kill-every", type=float, default=6,
                    help="mean seconds between daemon kills")
    ap.add_argument("--broker-restarts", type=int, default=1)
    ap.add_argument("--long-outage", type=float, default=15,
                    help="seconds of the one long broker outage (> message timeout)")
    ap.add_argument("--publish-every", type=float, default=0.4)
    ap.add_argument("--down-max", type=float, default=20,
                    help="longest webhook outage, seconds (full run: minutes)")
    ap.add_argument("--max-rss-mb", type=float, default=200)
    ap.add_argument("--drain", type=float, default=240, help="max seconds to drain")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    # SIGTERM (ctest's timeout, a user) still runs the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    rng = random.Random(seed)
    print("soak: seed=%d duration=%ss kill_every=%ss broker_restarts=%d" % (
        seed, args.duration, args.kill_every, args.broker_restarts), flush=True)
    tmp = tempfile.mkdtemp(prefix="na-soak-")
    broker_dir = os.path.join(tmp, "broker")
    os.makedirs(broker_dir)
    bin_dir = os.path.abspath(args.build)
    counts = {"producer_kills": 0, "consumer_kills": 0, "broker_restarts": 0,
              "rebalances": 0, "webhook_faults": 0}
    daemons = []
    servers = []
    ok = False
    try:
        brokers = sh([os.path.join(ROOT, "scripts", "kafka-broker"), "start", broker_dir,
                      "broker.session.timeout.ms=3000"]).strip()
        print("soak: broker %s" % brokers, flush=True)
        topic, dlq = "soak.articles", "soak.dlq"

        feeds = harness.FeedServer()
        servers.append(feeds)
        stream = FeedStream(feeds, rng)
        hooks = {"json": harness.WebhookReceiver(), "slack": harness.WebhookReceiver()}
        servers.extend(hooks.values())

        sources = {"sources": [{"id": "soak%d" % i, "name": "Soak %d" % i,
                                "url": feeds.url(stream.path(i)), "interval": "1s"}
                               for i in stream.items]}
        with open(os.path.join(tmp, "sources.json"), "w") as f:
            json.dump(sources, f)
        consumer_cfg = {
            "brokers": brokers, "topic": topic, "dlq_topic": dlq, "group_id": "soak",
            "rules": os.path.join(ROOT, "examples", "rules.json"),
            # Story grouping off: the soak's templated articles would fold into
            # a few stories; the verdict counts one alert per (article, topic).
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
        consumer = Daemon("consumer", [os.path.join(bin_dir, "newsalert-consumer"),
                                       "--config", os.path.join(tmp, "consumer.json")], tmp)
        second = Daemon("consumer-b", consumer.argv, tmp)
        daemons.extend([producer, consumer, second])
        producer.start()
        consumer.start()

        # Fault schedule, drawn from the seed up front so a run can be replayed.
        t_end = time.monotonic() + args.duration
        events = []
        t = 3.0
        while t < args.duration:
            t += rng.expovariate(1.0 / args.kill_every)
            events.append((t, rng.choice(["kill_producer", "kill_consumer",
                                          "kill_consumer_inflight", "webhook",
                                          "rebalance"])))
        for i in range(args.broker_restarts):
            events.append((args.duration * (i + 1) / (args.broker_restarts + 1),
                           "broker_long" if i == 0 else "broker"))
        events.sort()
        start = time.monotonic()
        next_pub = start
        for when, what in events + [(args.duration, "end")]:
            while time.monotonic() - start < when:
                now = time.monotonic()
                if now >= next_pub:
                    stream.publish()
                    next_pub = now + args.publish_every
                for d in daemons:
                    d.sample()
                    if d is not second and d.proc is not None and not d.alive():
                        d.exits.append(d.proc.returncode)
                        print("soak: %s exited by itself (%s); restarting; stderr:\n%s" % (
                            d.name, d.proc.returncode, d.proc.tail(3)), flush=True)
                        if len(d.exits) > 20:
                            raise RuntimeError("%s keeps exiting by itself" % d.name)
                        d.start()
                time.sleep(0.05)
            if what == "end":
                break
            if what == "kill_producer":
                producer.kill()
                counts["producer_kills"] += 1
                time.sleep(rng.uniform(0, 1.5))
                producer.start()
            elif what in ("kill_consumer", "kill_consumer_inflight"):
                if what == "kill_consumer_inflight":
                    # Alerts in flight: the receivers answer slowly, so a kill
                    # lands between delivery and commit.
                    for h in hooks.values():
                        h.slow(0.3)
                    time.sleep(rng.uniform(0.2, 1.0))
                consumer.kill()
                counts["consumer_kills"] += 1
                for h in hooks.values():
                    h.up()
                time.sleep(rng.uniform(0, 1.0))
                consumer.start()
            elif what == "webhook":
                h = rng.choice(list(hooks.values()))
                mode = rng.choice(["fail", "rate", "hang", "down"])
                counts["webhook_faults"] += 1
                if mode == "fail":
                    h.fail_next(rng.randrange(3, 20))
                elif mode == "rate":
                    h.rate_limit(2, retry_after=1)
                    threading.Timer(rng.uniform(2, 6), h.up).start()
                elif mode == "hang":
                    h.slow(5)  # past the consumer's 3 s request timeout
                    threading.Timer(rng.uniform(3, 8), h.up).start()
                else:
                    h.down(503, retry_after=1)
                    threading.Timer(rng.uniform(min(5, args.down_max), args.down_max),
                                    h.up).start()
            elif what == "rebalance":
                counts["rebalances"] += 1
                if second.alive():
                    second.stop(15)
                else:
                    second.start()
            elif what in ("broker", "broker_long"):
                counts["broker_restarts"] += 1
                script = os.path.join(ROOT, "scripts", "kafka-broker")
                sh([script, "stop", broker_dir])
                pause = args.long_outage if what == "broker_long" else rng.uniform(1, 4)
                print("soak: broker down for %.1f s" % pause, flush=True)
                time.sleep(pause)
                sh([script, "start", broker_dir], timeout=180)
        counts["producer_kills"] = producer.kills
        counts["consumer_kills"] = consumer.kills

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
                if not d.alive():
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
            elif time.monotonic() - quiet_since > 15:
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

        cls = subprocess.run([os.path.join(bin_dir, "newsalert-consumer"), "classify",
                              "--rules", os.path.join(ROOT, "examples", "rules.json")],
                             input="\n".join(values.values()) + "\n", capture_output=True,
                             text=True, timeout=120)
        if cls.returncode != 0:
            raise RuntimeError("classify failed: " + cls.stderr[-2000:])
        expected = set()
        for line in cls.stdout.splitlines():
            d = json.loads(line)
            for t in d["topics"]:
                expected.add(alert_id(d["id"], t["topic"]))

        verdict = {}
        for name, h in hooks.items():
            got = [r.header("webhook-id") for r in h.requests() if r.status == 200]
            uniq = set(got)
            verdict[name] = {"received": len(got), "unique": len(uniq),
                             "duplicated": len(got) - len(uniq),
                             "lost": len(expected - uniq),
                             "unexpected": len(uniq - expected)}
        dlq_records = harness.kcat_consume(brokers, dlq, timeout=60)
        peak = {d.name: round(d.peak_rss_kb / 1024, 1) for d in (producer, consumer, second)}

        print("soak: seed=%d" % seed)
        print("soak: faults %s" % json.dumps(counts, sort_keys=True))
        print("soak: articles published=%d in_topic=%d lost=%d republished=%d "
              "second_ids=%d" % (len(published), len(urls), len(lost_articles),
                                 republished, len(second_ids)))
        print("soak: alerts expected=%d" % len(expected))
        for name, v in verdict.items():
            print("soak: route %-7s received=%d unique=%d duplicated=%d lost=%d "
                  "unexpected=%d" % (name, v["received"], v["unique"], v["duplicated"],
                                     v["lost"], v["unexpected"]))
        print("soak: dlq=%d peak_rss_mb=%s (in %s)" % (
            len(dlq_records), json.dumps(peak),
            ", ".join(str(d.peak_gen) for d in (producer, consumer, second))))
        for name, v in verdict.items():
            if v["lost"]:
                got = {r.header("webhook-id") for r in hooks[name].requests()
                       if r.status == 200}
                print("soak: route %s lost: %s" % (name, sorted(expected - got)[:10]))
        failures = []
        if lost_articles:
            failures.append("articles lost: %s" % lost_articles[:5])
        if second_ids:
            failures.append("articles republished under a second id: %s" % second_ids[:5])
        for name, v in verdict.items():
            if v["lost"]:
                failures.append("route %s lost %d alerts" % (name, v["lost"]))
            # Duplicates are reported, not failed: a crash between a 2xx and the
            # ledger write re-sends once, and the webhook-id header lets the
            # receiver drop that copy (which is what "unique" counts).
            if v["unexpected"]:
                failures.append("route %s received %d unexpected alerts" % (name,
                                                                           v["unexpected"]))
        if dlq_records:
            failures.append("%d records in the dead-letter topic" % len(dlq_records))
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
            print("soak: files kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
