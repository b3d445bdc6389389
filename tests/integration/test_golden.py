#!/usr/bin/env python3
"""What users see stays byte for byte the same across refactors: classify,
stories, replay --dry-run and the daemon's --print over the sample articles
(tests/data/golden/articles.jsonl: the example feeds parsed, with fixed
fetch times), compared with the outputs recorded in tests/data/golden/.

A change that is meant to change these outputs records them again with
NA_GOLDEN_UPDATE=1 and says why in its commit."""

import json
import os
import time

import harness

UPDATE = os.environ.get("NA_GOLDEN_UPDATE") == "1"


def golden(ctx, name, got):
    path = ctx.src("tests", "data", "golden", name)
    if UPDATE:
        with open(path, "w", encoding="utf-8") as f:
            f.write(got)
        return
    with open(path, encoding="utf-8") as f:
        want = f.read()
    if got != want:
        gl, wl = got.splitlines(), want.splitlines()
        for i, (g, w) in enumerate(zip(gl, wl)):
            if g != w:
                raise AssertionError("%s differs at line %d:\n got  %s\n want %s"
                                     % (name, i + 1, g[:300], w[:300]))
        raise AssertionError("%s: %d lines, want %d" % (name, len(gl), len(wl)))


def articles(ctx):
    return ctx.src("tests", "data", "golden", "articles.jsonl")


def test_classify_and_stories_print_what_they_printed(ctx):
    rules = ctx.src("examples", "rules.json")
    cp = harness.run([ctx.bin("newsalert-consumer"), "classify", "--rules", rules,
                      articles(ctx)], timeout=60)
    assert cp.returncode == 0, cp.stderr
    golden(ctx, "classify.out", cp.stdout)
    cp = harness.run([ctx.bin("newsalert-consumer"), "stories", "--window", "168h",
                      articles(ctx)], timeout=60)
    assert cp.returncode == 0, cp.stderr
    golden(ctx, "stories.out", cp.stdout)


def produce(ctx, topic):
    lines = []
    for l in open(articles(ctx), encoding="utf-8"):
        a = json.loads(l)
        ts = int(time.mktime(time.strptime(a["published_at"], "%Y-%m-%dT%H:%M:%SZ"))
                 - time.timezone) * 1000
        lines.append("%d\t0\t%s\t%s\n" % (ts, a["id"], json.dumps(a, ensure_ascii=False)))
    cp = harness.run([ctx.bin("newsalert-produce-at"), "-b", ctx.brokers, "-t", topic,
                      "-p", "1", "-r", str(10 * 365 * 24 * 3600 * 1000)],
                     stdin="".join(lines), timeout=60)
    assert cp.returncode == 0, cp.stderr


def test_replay_dry_run_and_daemon_print_what_they_printed(ctx):
    """Whatever the worker threads (none, the default, four): the same
    lines in the same order."""
    topic = ctx.topic("na.it.golden")
    produce(ctx, topic)
    for workers in ("-1", "0", "4"):
        cfg = ctx.write("consumer%s.json" % workers, {
            "brokers": ctx.brokers, "topic": topic,
            "group_id": harness.unique_topic("na-it-golden"),
            "dlq_topic": ctx.topic("na.it.golden.dlq"),
            "ledger_topic": ctx.topic("na.it.golden.alerts"),
            "retry_topic": ctx.topic("na.it.golden.retry"),
            # the sample articles are months old
            "ledger_horizon": "0", "rules": ctx.src("examples", "rules.json"),
            "workers": int(workers)})
        cp = harness.run([ctx.bin("newsalert-consumer"), "replay", "--config", cfg,
                          "--from", "beginning", "--to", "end", "--dry-run"],
                         timeout=120)
        assert cp.returncode == 0, cp.stderr
        golden(ctx, "replay-dry-run.out", cp.stdout)
        cp = harness.run([ctx.bin("newsalert-consumer"), "--config", cfg, "--exit-eof",
                          "--print"], timeout=120)
        assert cp.returncode == 0, cp.stderr
        golden(ctx, "print.out", cp.stdout)


if __name__ == "__main__":
    harness.main(globals(), timeout=300)
