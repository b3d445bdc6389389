#!/usr/bin/env python3
"""A broker outage longer than the group session (real broker of this file's
own, stopped and started again).

The short soak failed with its "down" webhook faults unanswered, and the
consumer that held every partition when the broker stopped looked stuck:
its session expired during the outage (`SESSTMOUT`, `event=revoked
partitions=6`), the revoke handed an alert in flight over, the offset
commit of the unassign failed ("Waiting for coordinator"), and the group
delivered nothing for half a minute. That member is not stuck: the broker
was still starting (its restart alone takes 10-30 s on a loaded machine),
and once it serves again the group waits session.timeout.ms for the
members it knew before the outage (librdkafka drops its member id when its
session times out, so it rejoins as a new member). docs/operations.md,
"Broker outages", has the sequence.

Asserted: after such an outage both members, the one whose session expired
while it held all partitions and one started during the outage, get
partitions again, the alert whose delivery was in flight and an article
published after the outage reach the receiver, once each, within a bound
counted from the moment the broker serves again (reconnect backoff, the
old member's session, the ledger catch-up)."""

import atexit
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import harness

SESSION_MS = 6000
# After the broker serves again: librdkafka's reconnect backoff (up to
# reconnect.backoff.max.ms, 10 s, with jitter), then the coordinator's
# expiry of the member known from before the outage (one session), then the
# ledger catch-up and the delivery; generous for a loaded machine.
RECOVERY_S = 60


def article(n):
    url = "https://news.test/outage/%d" % n
    return {"schema": "article/v1", "id": hashlib.sha256(url.encode()).hexdigest(),
            "url": url,
            "title": "Beijing bans exports of dual-use items to military end users (%d)" % n,
            "summary": "The commerce ministry banned exports of dual-use items and "
                       "tightened export licences for chip tools.",
            "content": "", "authors": [], "categories": [], "lang": "en",
            "published_at": "2026-01-06T08:00:00Z", "fetched_at": "2026-01-06T08:05:00Z",
            "source": {"id": "t", "name": "Test Wire", "feed_url": "https://news.test/f"}}


def broker(ctx, *args, timeout=240):
    cp = subprocess.run([ctx.src("scripts", "kafka-broker")] + list(args),
                        capture_output=True, text=True, timeout=timeout)
    assert cp.returncode == 0, "kafka-broker %s: %s" % (args[0], cp.stderr[-2000:])
    return cp.stdout.strip()


def produce(brokers, n):
    a = article(n)
    harness.kcat_produce(brokers, "outage.articles", [(a["id"], json.dumps(a))])
    return a


def assigned_after(proc, offset):
    return re.search(r"event=assigned partitions=[1-9]", proc.stderr_text()[offset:])


def test_members_are_assigned_again_after_an_outage_longer_than_the_session(ctx):
    bdir = tempfile.mkdtemp(prefix="na-it-outage-broker.")
    script = ctx.src("scripts", "kafka-broker")
    atexit.register(lambda: (subprocess.run([script, "stop", bdir], capture_output=True),
                             shutil.rmtree(bdir, ignore_errors=True)))
    # As the soak's broker: a member's session on the broker expires fast.
    brokers = broker(ctx, "start", bdir, "broker.session.timeout.ms=3000")
    hook = ctx.webhook()
    cfg = ctx.write("consumer.json", {
        "brokers": brokers, "topic": "outage.articles", "group_id": "outage",
        "dlq_topic": "outage.dlq", "ledger_topic": "outage.alerts",
        "retry_topic": "outage.retry", "park_after": "4s", "stories": False,
        "rules": ctx.src("examples", "rules.json"),
        "deliver_backoff": "100ms", "deliver_backoff_max": "1s", "deliver_timeout": "3s",
        "revoke_timeout": "3s",
        "routes": [{"name": "hook", "url": hook.url("/json"), "format": "json"}],
        "kafka": {"session.timeout.ms": SESSION_MS, "heartbeat.interval.ms": 500}})
    argv = [ctx.bin("newsalert-consumer"), "--config", cfg]
    a = ctx.proc(argv, name="consumer-a")
    a.wait_for_stderr(r"event=assigned partitions=6", 120)
    first = produce(brokers, 1)
    hook.wait_count(1, 60, path="/json")

    # An alert in flight when the broker stops: the receiver holds it.
    hook.hang(5)  # past deliver_timeout: no answer
    second = produce(brokers, 2)
    hook.wait_for(lambda reqs: len(reqs) >= 2, timeout=60, answered=False)
    # The session may expire before the stop returns (the broker's own
    # shutdown takes seconds on a loaded machine).
    mark = len(a.stderr_text())
    broker(ctx, "stop", bdir)
    stopped = time.monotonic()
    # The session expires while the consumer holds every partition.
    a.wait_for_stderr(r"event=revoked partitions=6", 60)
    assert re.search(r'client=newsalert-consumer#\S+ fac="SESSTMOUT"',
                     a.stderr_text()[mark:]), a.tail()
    b = ctx.proc(argv, name="consumer-b")  # joins during the outage
    time.sleep(max(0.0, 12 - (time.monotonic() - stopped)))
    hook.up()
    broker(ctx, "start", bdir)
    back = time.monotonic()
    third = produce(brokers, 3)

    def delivered(art):
        return [b for b in hook.bodies("/json", status=200)
                if isinstance(b, dict) and b.get("article", {}).get("url") == art["url"]]

    harness.wait_until(lambda: delivered(second) and delivered(third), RECOVERY_S,
                       what="the in-flight alert and a new article delivered after "
                            "the outage")
    harness.wait_until(lambda: assigned_after(a, mark) and assigned_after(b, 0), RECOVERY_S,
                       what="both members assigned partitions after the outage")
    print("recovered %.1f s after the broker served again" % (time.monotonic() - back))
    time.sleep(3)  # nothing is sent twice meanwhile
    for art in (first, second, third):
        assert len(delivered(art)) == 1, "article %s delivered %d times" % (
            art["url"], len(delivered(art)))


if __name__ == "__main__":
    for tool in ("kcat", "java"):
        if not shutil.which(tool):
            print("SKIP: %s not installed" % tool if not harness.in_ci()
                  else "FAIL: %s not installed and CI=true" % tool, flush=True)
            sys.exit(1 if harness.in_ci() else harness.SKIP_RETURN_CODE)
    harness.main(globals(), needs_broker=False, timeout=400)
