#!/usr/bin/env python3
"""Several consumers in one group, stories on, partitions moving between
them every few seconds (real broker).

Regression: the ledger was read once at start, a revoke did not wait for
the alerts in flight, and story state lived in each process. So after a
rebalance the new owner re-sent alerts the old owner was still sending,
and a follow-up report on another member's partition opened its own story
and alerted again. Now every member follows the ledger (what the others
delivered, handed over and opened as stories), a revoke finishes or hands
over what is in flight, and a new owner catches the ledger up before it
reads (docs/delivery.md, "Consumer groups").

Asserted: each event raises exactly one alert per topic it matches, and no
alert reaches the receiver twice, while a third member joins and leaves
the group every few seconds."""

import hashlib
import json
import random
import signal
import time

import harness

FAST = ["--deliver-backoff", "100ms", "--deliver-backoff-max", "1s",
        "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500",
        "-X", "auto.commit.interval.ms=300", "--revoke-timeout", "5s"]

# Six events of the same weeks; three reports each, written alike so that
# grouping them is not what this test measures (docs/rules.md has that).
EVENTS = [
    ("gallium", "Beijing bans gallium and germanium exports to Micron suppliers",
     "Mofcom spokesman He Yadong said gallium, germanium and antimony shipments to "
     "Idaho and Virginia plants of Micron suppliers are barred from 1 April."),
    ("magnets", "Dysprosium magnet exports from Baotou need licences, says Inner Mongolia",
     "Baotou regional officials in Inner Mongolia said neodymium and dysprosium magnet "
     "exports by Ningbo Yunsheng and JL Mag now need a licence per shipment."),
    ("drills", "Strait Thunder drills: PLA warships circle Kinmen and Matsu",
     "The Eastern Theater Command sent 21 warships and the Shandong carrier near Kinmen "
     "and Matsu in the Strait Thunder drills, Taipei's defence ministry said."),
    ("entity", "BIS adds Hefei and Wuxi chip foundries to the Entity List",
     "The Bureau of Industry and Security placed CXMT in Hefei and Hua Hong in Wuxi on "
     "the Entity List, barring exports of Lam Research and KLA tools to them."),
    ("lithography", "The Hague curbs ASML immersion scanner exports",
     "Minister Reinette Klever said ASML's NXT:1980i immersion scanners now need a Dutch "
     "export licence before any shipment leaves Veldhoven."),
    ("arms", "Pentagon clears NASAMS missile sale to Taipei worth 1.9 billion dollars",
     "The Defense Security Cooperation Agency cleared a NASAMS air defence sale to "
     "Taipei worth 1.9 billion dollars; Beijing's Zhu Fenglian called it a provocation."),
]
OUTLETS = ["Wire One", "Daily Two", "Courier Three"]


def report(event, n):
    key, title, body = event
    url = "https://news%d.test/%s" % (n, key)
    # All on one day (the story window is measured in article time).
    t = "2026-03-10T%02d:%02d:00Z" % (8 + EVENTS.index(event), 10 * n)
    return {"schema": "article/v1", "id": hashlib.sha256(url.encode()).hexdigest(),
            "url": url, "title": title if n == 0 else "%s (%s)" % (title, OUTLETS[n]),
            "summary": body, "content": body + " Officials confirmed the move.",
            "authors": [], "categories": [], "lang": "en", "published_at": t,
            "fetched_at": t,
            "source": {"id": "o%d" % n, "name": OUTLETS[n],
                       "feed_url": "https://news%d.test/feed" % n}}


def produce(ctx, topic, articles, partitions=None):
    lines = "".join("%d\t-1\t%s\t%s\n" % (int(time.time()) * 1000, a["id"], json.dumps(a))
                    for a in articles)
    argv = [ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", topic]
    if partitions:
        argv += ["-p", str(partitions)]
    cp = harness.run(argv, stdin=lines, timeout=60)
    assert cp.returncode == 0, cp.stderr


def stop(member):
    """SIGTERM a member once it runs (its handlers are set); it must drain,
    hand over and exit 0."""
    harness.wait_until(lambda: "event=started" in member.stderr_text(), 60,
                       what="%s started" % member.name)
    member.kill(signal.SIGTERM)
    assert member.wait(60) == 0, member.tail()


def test_one_alert_per_story_and_none_twice_while_partitions_move(ctx):
    topic = ctx.topic("na.it.group")
    produce(ctx, topic, [], partitions=4)
    hook = ctx.webhook()
    group = harness.unique_topic("na-it-group")
    cfg = ctx.write("consumer.json", {
        "brokers": ctx.brokers, "topic": topic, "group_id": group,
        "dlq_topic": ctx.topic("na.it.group.dlq"),
        "ledger_topic": ctx.topic("na.it.group.alerts"),
        "rules": ctx.src("examples", "rules.json"), "stories": True,
        "routes": [{"name": "hook", "url": hook.url("/json"), "format": "json"}]})
    argv = [ctx.bin("newsalert-consumer"), "--config", cfg] + FAST
    members = [ctx.proc(argv, name="member-%d" % i) for i in (1, 2)]
    harness.wait_until(lambda: all("event=assigned" in m.stderr_text() for m in members),
                       60, what="both members assigned")

    rng = random.Random(20261203)
    churn = None
    churns = 0
    next_churn = time.monotonic()
    # Reports go out in rounds: every event's first report, then the second
    # reports, then the third; each on whichever partition its key hashes to.
    for n in range(3):
        order = list(EVENTS)
        rng.shuffle(order)
        for event in order:
            produce(ctx, topic, [report(event, n)])
            time.sleep(1.0)
            if time.monotonic() >= next_churn:
                if churn is None:
                    churn = ctx.proc(argv, name="churn-%d" % churns)
                else:
                    stop(churn)
                    churn = None
                churns += 1
                next_churn = time.monotonic() + 3.0
    if churn is not None:
        stop(churn)
    assert churns >= 5, churns

    # Every report consumed and settled: the group's committed offsets reach
    # the end of every partition.
    def settled():
        cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", topic,
                          "-G", group], timeout=60)
        offs = [int(l.split()[1]) for l in cp.stdout.splitlines()]
        ends = {}
        for r in harness.kcat_consume(ctx.brokers, topic):
            ends[r["partition"]] = max(ends.get(r["partition"], 0), r["offset"] + 1)
        return cp.returncode == 0 and sum(max(o, 0) for o in offs) == sum(ends.values())
    harness.wait_until(settled, 120, interval=1, what="every report committed")
    for m in members:
        stop(m)

    sent = [r for r in hook.requests("/json") if r.status == 200]
    ids = [r.header("webhook-id") for r in sent]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    assert not dup, "alerts received twice: %s" % dup
    per_event = {}
    for r in sent:
        key = r.json["article"]["url"].rsplit("/", 1)[1]
        per_event.setdefault((key, r.json["topic"]), []).append(r.json["article"]["url"])
    extra = {k: v for k, v in per_event.items() if len(v) > 1}
    assert not extra, "events alerted more than once per topic: %s" % extra
    assert {k for k, _ in per_event} == {e[0] for e in EVENTS}, per_event


if __name__ == "__main__":
    harness.main(globals(), timeout=600)
