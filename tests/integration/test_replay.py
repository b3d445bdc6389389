"""Replay on a real broker: articles produced with known message timestamps
(their published times) across several partitions, one partition left
empty, then `newsalert-consumer replay` over time windows, offsets and whole
topics.

Asserts: a time window returns exactly the articles published inside it
(also when timestamps are out of order within a partition); offsets ranges
are exclusive at the end; a replay after a full live run sends no alert twice
(ledger); a replay with new rules sends only the new alerts; backtests print
gained and lost alerts per topic; the live group's committed offsets are
unchanged; ranges in the future or before the oldest retained record return
nothing and say so (exit 0); Ctrl-C stops cleanly and the printed command
resumes without duplicates, appending to --output FILE (the two runs' lines
are those of one uninterrupted run); progress is a bar on a terminal and log lines
otherwise; the live consumer raises no alert for records older than the
ledger horizon."""

import hashlib
import json
import os
import pty
import re
import select
import shlex
import signal
import subprocess
import time

import harness

HOUR = 3600
PARTITIONS = 4  # articles go to 0..2; partition 3 stays empty
FAST_RETRY = ["--deliver-backoff", "100ms", "--deliver-backoff-max", "1s"]

TEMPLATES = [
    ("China bans exports of dual-use items to Japanese military end users #%d",
     "The commerce ministry announced an export ban on dual-use items.",
     ["export_controls"]),
    ("Taiwan Strait: PLA drills encircle Taiwan #%d",
     "China's military held drills around Taiwan.", ["taiwan"]),
    ("Rare earth prices jump as China tightens rare earth export curbs #%d",
     "Rare earth magnets and refining.", ["export_controls", "rare_earths"]),
    ("Local football club wins the cup #%d", "A match report.", []),
]


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def make_article(i, published):
    title, summary, topics = TEMPLATES[i % len(TEMPLATES)]
    url = "https://news.test/replay/%d" % i
    art = {"schema": "article/v1", "id": hashlib.sha256(url.encode()).hexdigest(),
           "url": url, "title": title % i, "summary": summary, "content": "",
           "authors": [], "categories": [], "lang": "en",
           "published_at": iso(published), "fetched_at": iso(published + 60),
           "source": {"id": "replay", "name": "Replay Wire",
                      "feed_url": "https://news.test/feed"}}
    return art, topics


class Topic:
    """A topic of articles stamped every `spacing` seconds (10 minutes) from t0
    (2 days ago)."""

    def __init__(self, ctx, count=36, spacing=600, produce_args=()):
        self.ctx = ctx
        self.name = ctx.topic("na.it.replay")
        self.dlq = ctx.topic("na.it.replay.dlq")
        self.ledger = ctx.topic("na.it.replay.alerts")
        self.t0 = (int(time.time()) // HOUR - 48) * HOUR
        self.articles = []  # (article, topics, ts, partition)
        rows = []
        for i in range(count):
            art, topics = make_article(i, self.t0 + i * spacing)
            self.articles.append((art, topics, self.t0 + i * spacing, i % 3))
        # Out of order within each partition: neighbours swapped, as
        # interleaved feeds deliver them.
        for part in range(3):
            mine = [i for i in range(count) if i % 3 == part]
            for k in range(0, len(mine) - 1, 2):
                mine[k], mine[k + 1] = mine[k + 1], mine[k]
            for i in mine:
                art, _, ts, _ = self.articles[i]
                rows.append("%d\t%d\t%s\t%s" % (ts * 1000, part, art["id"],
                                                json.dumps(art, separators=(",", ":"))))
        self.produce(rows, create=True, extra=produce_args)

    def produce(self, rows, create=False, extra=()):
        argv = [self.ctx.bin("newsalert-produce-at"), "-b", self.ctx.brokers,
                "-t", self.name] + list(extra)
        if create:
            argv += ["-p", str(PARTITIONS)]
        cp = harness.run(argv, stdin="\n".join(rows) + "\n", timeout=120)
        assert cp.returncode == 0, cp.stderr

    def config(self, name, routes=(), group="na-it-unused", rules=None, stories=False):
        # The templated articles here would fold into a few stories; most
        # tests count one alert per (article, topic), so grouping is off
        # unless a test asks for it.
        return self.ctx.write(name + ".json", {
            "brokers": self.ctx.brokers, "topic": self.name, "dlq_topic": self.dlq,
            "ledger_topic": self.ledger, "group_id": group,
            "rules": rules or self.ctx.src("examples", "rules.json"),
            "routes": list(routes), "stories": stories})

    def replay(self, cfg, *args, timeout=120, name=None):
        p = self.ctx.proc([self.ctx.bin("newsalert-consumer"), "replay", "--config", cfg,
                           "--progress", "log", "--progress-interval", "200ms"]
                          + FAST_RETRY + list(args), name=name)
        rc = p.wait(timeout)
        return rc, p

    def live(self, cfg, name):
        p = self.ctx.proc([self.ctx.bin("newsalert-consumer"), "--config", cfg,
                           "--exit-eof"] + FAST_RETRY, name=name)
        rc = p.wait(180)
        assert rc == 0, "live consumer exited %s:\n%s" % (rc, p.tail())
        return p

    def committed(self, group):
        cp = harness.run([self.ctx.bin("newsalert-produce-at"), "-b", self.ctx.brokers,
                          "-t", self.name, "-G", group], timeout=60)
        assert cp.returncode == 0, cp.stderr
        return dict(tuple(int(x) for x in line.split()) for line in cp.stdout.splitlines())

    def alerts(self, pred=lambda a: True, rules_topics=None):
        """Expected (article url, topic) pairs of articles matching pred."""
        out = set()
        for art, topics, ts, part in self.articles:
            if pred((art, topics, ts, part)):
                for t in topics:
                    if rules_topics is None or t in rules_topics:
                        out.add((art["url"], t))
        return out


def summary(proc):
    m = re.findall(r"event=summary (.*)", proc.stderr_text())
    assert m, "no summary line; stderr tail:\n" + proc.tail()
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m[-1])}


def read_ids(path):
    with open(path) as f:
        return [json.loads(line)["id"] for line in f if line.strip()]


def delivered(hook, path="/json"):
    return [(b["article"]["url"], b["topic"]) for b in hook.bodies(path, status=200)]


def extra_rules(ctx):
    """examples/rules.json plus a 'football' topic, without 'taiwan'."""
    with open(ctx.src("examples", "rules.json")) as f:
        rules = json.load(f)
    rules["topics"] = [t for t in rules["topics"] if t["name"] != "taiwan"]
    rules["topics"].append({"name": "football", "query": "football", "threshold": 1})
    return ctx.write("new-rules.json", rules)


def test_time_window_returns_exactly_the_articles_inside_it(ctx):
    topic = Topic(ctx)
    cfg = topic.config("replay")
    lo, hi = topic.t0 + 50 * 60, topic.t0 + 150 * 60  # i = 5 .. 14
    out = ctx.path("window.jsonl")
    rc, p = topic.replay(cfg, "--from", iso(lo), "--to", iso(hi), "--output", out,
                         "--lateness", "1h")
    assert rc == 0, p.tail()
    want = sorted(a["id"] for a, _, ts, _ in topic.articles if lo <= ts < hi)
    got = read_ids(out)
    assert len(want) == 10
    assert sorted(got) == want, "window returned %d articles, want %d" % (len(got),
                                                                          len(want))
    s = summary(p)
    assert s["articles"] == 10 and s["interrupted"] == 0, s
    # Classified lines have classify's shape.
    with open(out) as f:
        line = json.loads(f.readline())
    assert set(line) == {"id", "title", "topics"}

    # Whole topic, beginning to end: every article once; the empty
    # partition 3 does not hold the replay up.
    out_all = ctx.path("all.jsonl")
    rc, p = topic.replay(cfg, "--from", "beginning", "--to", "end", "--output", out_all,
                         timeout=60)
    assert rc == 0, p.tail()
    assert sorted(read_ids(out_all)) == sorted(a["id"] for a, _, _, _ in topic.articles)

    # Offsets: partition 0 from 2 up to (not including) 5, nothing else.
    out_off = ctx.path("offsets.jsonl")
    rc, p = topic.replay(cfg, "--from", "0:2", "--to", "0:5", "--output", out_off)
    assert rc == 0, p.tail()
    part0 = harness.kcat_consume(ctx.brokers, topic.name, extra=["-p", "0"])
    assert [r["offset"] for r in part0][:6] == list(range(6))
    assert read_ids(out_off) == [r["key"] for r in part0[2:5]]

    # The same lines produced to a topic, keyed by article id.
    out_topic = ctx.topic("na.it.replay.classified")
    rc, p = topic.replay(cfg, "--from", iso(lo), "--to", iso(hi), "--output-topic",
                         out_topic)
    assert rc == 0, p.tail()
    recs = harness.kcat_consume(ctx.brokers, out_topic, count=10, timeout=30)
    assert sorted(r["key"] for r in recs) == want
    assert all(json.loads(r["value"])["id"] == r["key"] for r in recs)
    assert len(harness.kcat_consume(ctx.brokers, out_topic)) == 10

    # Dry run: the alerts it would send, alert/v1, one per (article, topic).
    rc, p = topic.replay(cfg, "--from", iso(lo), "--to", iso(hi), "--dry-run")
    assert rc == 0, p.tail()
    alerts = [json.loads(line) for line in p.stdout_lines()]
    assert all(a["schema"] == "alert/v1" for a in alerts)
    got = {(a["article"]["url"], a["topic"]) for a in alerts}
    assert len(got) == len(alerts)
    assert got == topic.alerts(lambda x: lo <= x[2] < hi)


def test_future_and_before_retention_return_nothing_and_say_so(ctx):
    topic = Topic(ctx, count=6)
    cfg = topic.config("replay")
    now = int(time.time())
    rc, p = topic.replay(cfg, "--from", iso(now + 86400), "--to", iso(now + 2 * 86400),
                         "--dry-run")
    assert rc == 0, p.tail()
    assert p.stdout_text() == ""
    assert "nothing to replay: the range starts in the future" in p.stderr_text()
    rc, p = topic.replay(cfg, "--from", "2020-01-01T00:00:00Z", "--to",
                         "2020-02-01T00:00:00Z", "--dry-run")
    assert rc == 0, p.tail()
    assert p.stdout_text() == ""
    assert "nothing to replay: the range ends before the oldest record still retained" \
        in p.stderr_text()
    # A topic that does not exist is an error, not an empty range.
    cfg2 = ctx.write("missing.json", dict(json.load(open(cfg)), topic=ctx.topic("na.none")))
    rc, p = topic.replay(cfg2, "--from", "beginning", "--to", "end", "--dry-run")
    assert rc == 1 and "newsalert-consumer replay:" in p.stderr_text(), p.tail()


def test_log_format_json_applies_to_replay(ctx):
    # Regression: replay took log_format (flag or config) and ignored it:
    # its log lines stayed logfmt, which a JSON log pipeline refuses.
    topic = Topic(ctx, count=6)
    cfg = topic.config("replay")
    rc, p = topic.replay(cfg, "--from", "beginning", "--to", "end", "--dry-run",
                         "--log-format", "json")
    assert rc == 0, p.tail()
    lines = [line for line in p.stderr_text().splitlines() if line.strip()]
    events = [json.loads(line) for line in lines if line.startswith("{")]
    assert [e["event"] for e in events if e.get("event") == "summary"] == ["summary"], \
        p.tail()
    assert not [line for line in lines if "event=" in line], p.tail()


def test_replay_after_live_run_sends_no_duplicate_and_keeps_group_offsets(ctx):
    topic = Topic(ctx, count=24)
    hook = ctx.webhook()
    routes = [{"name": "generic", "url": hook.url("/json"), "format": "json"}]
    group = harness.unique_topic("na-it-replay-group")
    topic.live(topic.config("live", routes, group=group), "live-1")
    first = delivered(hook)
    assert set(first) == topic.alerts() and len(first) == len(set(first))
    before = topic.committed(group)
    assert sum(o for o in before.values() if o > 0) == len(topic.articles), before

    # Replay everything to the same routes: the ledger has every alert.
    rc, p = topic.replay(topic.config("replay", routes, group=group), "--from",
                         "beginning", "--to", "end", "--routes", name="replay-same")
    assert rc == 0, p.tail()
    assert delivered(hook) == first, "the replay sent an alert again"
    s = summary(p)
    assert s["sent"] == 0 and s["already_sent"] == len(first), s

    # New rules: only the alerts they add are sent (football); nothing the
    # live run sent goes out again, and taiwan (dropped) is not "unsent".
    new_rules = extra_rules(ctx)
    rc, p = topic.replay(topic.config("replay-new", routes, group=group, rules=new_rules),
                         "--from", "beginning", "--to", "end", "--routes",
                         name="replay-new")
    assert rc == 0, p.tail()
    again = delivered(hook)[len(first):]
    football = {(a["url"], "football") for a, _, _, _ in topic.articles
                if "football" in a["title"]}
    assert football and set(again) == football and len(again) == len(football)

    # The live group's committed offsets did not move, and the group goes on
    # from where it was: new articles only.
    assert topic.committed(group) == before
    art, topics = make_article(1000, int(time.time()) - 60)
    topic.produce(["%d\t-1\t%s\t%s" % ((int(time.time()) - 60) * 1000, art["id"],
                                       json.dumps(art))])
    n = len(delivered(hook))
    live2 = topic.live(topic.config("live", routes, group=group), "live-2")
    assert summary(live2)["consumed"] == 1
    assert set(delivered(hook)[n:]) == {(art["url"], t) for t in topics}


def test_replay_groups_stories_as_the_live_consumer_does(ctx):
    # With story grouping on (the default), alert ids are per story and
    # topic; a replay must make the same ids, or the ledger would not know
    # them and every story would be alerted again.
    topic = Topic(ctx, count=24)
    hook = ctx.webhook()
    routes = [{"name": "generic", "url": hook.url("/json"), "format": "json"}]
    group = harness.unique_topic("na-it-replay-group")
    topic.live(topic.config("live", routes, group=group, stories=True), "live-1")
    first = hook.bodies("/json", status=200)
    assert first and len(first) < len(topic.alerts()), "no story was grouped"
    rc, p = topic.replay(topic.config("replay", routes, group=group, stories=True),
                         "--from", "beginning", "--to", "end", "--routes",
                         name="replay-stories")
    assert rc == 0, p.tail()
    assert len(hook.bodies("/json", status=200)) == len(first), \
        "the replay alerted a story again"
    s = summary(p)
    assert s["sent"] == 0 and s["already_sent"] > 0, s


def test_two_replays_that_fetch_differently_print_the_same_lines(ctx):
    # Stories group articles in the order they come; a replay reads its
    # partitions in parallel, and the fetches interleave them differently
    # each run. The replay merges the partitions (oldest record first,
    # once every partition has one), so that one topic gives one set of
    # stories, alert ids and lines however the records were fetched: here
    # one run fetches a record batch (one record) at a time from each
    # partition in turn, the other each partition's records at once.
    topic = Topic(ctx, count=90, spacing=300, produce_args=["-X", "batch.num.messages=1"])
    cfg = topic.config("replay", stories=True)
    outs = []
    for name, extra in (("small-fetches", ["-X", "max.partition.fetch.bytes=1"]),
                        ("large-fetches", [])):
        rc, p = topic.replay(cfg, "--from", "beginning", "--to", "end", "--dry-run",
                             *extra, name=name)
        assert rc == 0, p.tail()
        outs.append(p.stdout_lines())
    alerts = [json.loads(x) for x in outs[0] if '"schema":"alert/v1"' in x]
    linked = [json.loads(x) for x in outs[0] if x.startswith('{"linked"')]
    assert alerts and linked, outs[0][:5]
    assert outs[0] == outs[1], "\n".join(
        "%s\n  %s" % (a[:120], b[:120]) for a, b in zip(*outs) if a != b)


def test_poison_records_in_the_merge_are_counted_and_the_rest_goes_on(ctx):
    # Records that are not article/v1 (not JSON, JSON of another shape, an
    # article/v1 cut short) in several partitions go through replay's
    # merge like any other: each is counted as poison and skipped, the
    # articles around them raise their alerts, and two runs that fetch
    # differently still print the same lines.
    topic = Topic(ctx, count=30, spacing=300)
    t = (topic.t0 + 15 * 300) * 1000
    bad = ["not json at all", json.dumps({"schema": "other/v1", "x": 1}),
           '{"schema":"article/v1","id":"' + "a" * 64 + '","title":"cut']
    topic.produce(["%d\t%d\tpoison-%d\t%s" % (t + k, k, k, v) for k, v in enumerate(bad)])
    cfg = topic.config("replay", stories=True)
    outs = []
    for name, extra in (("small-fetches", ["-X", "max.partition.fetch.bytes=1"]),
                        ("large-fetches", [])):
        rc, p = topic.replay(cfg, "--from", "beginning", "--to", "end", "--dry-run",
                             *extra, name=name)
        assert rc == 0, p.tail()
        s = summary(p)
        assert s["read"] == 33 and s["poison"] == 3 and s["articles"] == 30, s
        outs.append(p.stdout_lines())
    assert any('"schema":"alert/v1"' in x for x in outs[0]), outs[0][:3]
    assert outs[0] == outs[1]


def test_backtest_prints_gained_and_lost_per_topic(ctx):
    topic = Topic(ctx, count=12)
    cfg = topic.config("replay", rules=extra_rules(ctx))
    rc, p = topic.replay(cfg, "--from", "beginning", "--to", "end", "--baseline-rules",
                         ctx.src("examples", "rules.json"))
    assert rc == 0, p.tail()
    out = p.stdout_text()
    titles_football = [a["title"] for a, _, _, _ in topic.articles if "football" in a["title"]]
    titles_taiwan = [a["title"] for a, t, _, _ in topic.articles if "taiwan" in t]
    assert "football: +%d -0" % len(titles_football) in out, out
    assert "taiwan: +0 -%d" % len(titles_taiwan) in out, out
    assert "export_controls: +0 -0" in out and "rare_earths: +0 -0" in out, out
    for t in titles_football:
        assert "+ football  %s  (" % t in out
    for t in titles_taiwan:
        assert "- taiwan  %s  (" % t in out


def test_ctrl_c_stops_cleanly_and_the_resume_command_finishes_the_job(ctx):
    topic = Topic(ctx, count=24)
    hook = ctx.webhook()
    hook.slow(0.4)
    routes = [{"name": "generic", "url": hook.url("/json"), "format": "json"}]
    cfg = topic.config("replay", routes)
    p = ctx.proc([ctx.bin("newsalert-consumer"), "replay", "--config", cfg, "--from",
                  "beginning", "--to", "end", "--routes", "--progress", "log",
                  "--progress-interval", "100ms", "--max-pending", "2",
                  "--deliver-concurrency", "1", "--drain-timeout", "5s"], name="replay-1")
    hook.wait_for(lambda reqs: len(reqs) >= 3, timeout=60, answered=False)
    p.kill(signal.SIGINT)
    rc = p.wait(30)
    err = p.stderr_text()
    assert rc == 1, err
    assert re.search(r"interrupted after \d+ of %d records" % len(topic.articles), err), err
    assert re.search(r"partition 0: next offset \d+ \(range 0\.\.\d+\)", err), err
    assert "event=progress" in err and "eta_s=" in err
    m = re.search(r"resume with:\n  (.*)\n", err)
    assert m, err
    argv = shlex.split(m.group(1))
    assert argv[:2] == ["newsalert-consumer", "replay"] and "--from" in argv
    first = delivered(hook)
    assert first and len(first) < len(topic.alerts())
    hook.up()
    p2 = ctx.proc([ctx.bin("newsalert-consumer")] + argv[1:], name="replay-2")
    rc = p2.wait(120)
    assert rc == 0, p2.tail()
    got = delivered(hook)
    assert len(got) == len(set(got)), "an alert was sent twice across the resume"
    assert set(got) == topic.alerts()


def output_lines(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert not text or text.endswith("\n"), "a partial last line in %s" % path
    return text.splitlines()


def one_shot_output(ctx, topic, cfg):
    """The --output lines of an uninterrupted replay of the whole topic."""
    path = os.path.join(ctx.tmp, "one-shot.jsonl")
    rc, p = topic.replay(cfg, "--from", "beginning", "--to", "end", "--output", path,
                         timeout=600, name="replay-one-shot")
    assert rc == 0, p.tail()
    return output_lines(path)


def interrupt_and_resume(ctx, argv, path, wait, name):
    """Run replay argv, SIGINT it once wait(proc) says so, check that it
    stopped partway, then run the printed resume command. Returns the lines
    of path after the first run and after the resumed one."""
    p = ctx.proc(argv, name=name + "-1")
    wait(p)
    p.kill(signal.SIGINT)
    rc = p.wait(60)
    err = p.stderr_text()
    assert rc == 1, "the replay ended (rc %s) before the interrupt; stderr:\n%s" % (rc, err)
    m = re.search(r"resume with:\n  (.*)\n", err)
    assert m, err
    resume = shlex.split(m.group(1))
    assert resume[:2] == ["newsalert-consumer", "replay"], resume
    assert resume.count("--append") <= 1, resume
    first = output_lines(path)
    p2 = ctx.proc([ctx.bin("newsalert-consumer")] + resume[1:], name=name + "-2")
    rc = p2.wait(600)
    assert rc == 0, p2.tail()
    return first, output_lines(path)


def test_resume_appends_to_the_output_file(ctx):
    # Regression: the printed resume command kept --output FILE and the
    # resumed run truncated FILE, so the first run's lines were lost. It now
    # carries --append; the two runs together write exactly the lines of an
    # uninterrupted run, none lost, none twice.
    topic = Topic(ctx, count=20000, spacing=6)
    cfg = topic.config("replay")
    want = one_shot_output(ctx, topic, cfg)
    assert len(want) == len(topic.articles)
    path = os.path.join(ctx.tmp, "out.jsonl")
    argv = [ctx.bin("newsalert-consumer"), "replay", "--config", cfg, "--from",
            "beginning", "--to", "end", "--output", path, "--progress", "log",
            "--progress-interval", "50ms"]
    first, both = interrupt_and_resume(
        ctx, argv, path, lambda p: p.wait_for_stderr(r"event=progress done=[1-9][0-9]{3}", 120),
        "replay")
    print("first run wrote %d of %d lines" % (len(first), len(want)))
    assert 0 < len(first) < len(want), len(first)
    assert both[:len(first)] == first, "the resumed run changed the first run's lines"
    assert len(both) == len(set(both)), "a line was written twice across the resume"
    assert sorted(both) == sorted(want)


def test_resume_with_routes_writes_each_output_line_once(ctx):
    # With --routes, an article's alerts may still be in flight when Ctrl-C
    # comes; the resume offset is then below articles already read. Their
    # --output lines are written only once everything below them is
    # finished, so the resumed run (--append) neither repeats nor loses one.
    topic = Topic(ctx, count=24)
    want = one_shot_output(ctx, topic, topic.config("one-shot"))
    hook = ctx.webhook()
    hook.slow(0.4)
    routes = [{"name": "generic", "url": hook.url("/json"), "format": "json"}]
    cfg = topic.config("replay", routes)
    path = os.path.join(ctx.tmp, "out.jsonl")
    argv = [ctx.bin("newsalert-consumer"), "replay", "--config", cfg, "--from",
            "beginning", "--to", "end", "--routes", "--output", path, "--progress",
            "none", "--max-pending", "4", "--deliver-concurrency", "1",
            "--drain-timeout", "1s"]
    first, both = interrupt_and_resume(
        ctx, argv, path,
        lambda p: hook.wait_for(lambda reqs: len(reqs) >= 3, timeout=60, answered=False),
        "replay-routes")
    print("first run wrote %d of %d lines" % (len(first), len(want)))
    assert len(first) < len(want), len(first)
    assert both[:len(first)] == first
    assert len(both) == len(set(both)), "a line was written twice across the resume"
    assert sorted(both) == sorted(want)
    # Deliveries abandoned at the drain deadline are sent again (at least
    # once); none is lost.
    assert set(delivered(hook)) == topic.alerts()


def test_records_older_than_the_ledger_horizon_raise_no_alert(ctx):
    # The ledger forgets alerts past ledger_horizon, so a record older than
    # that (a consumer far behind, a group reset to the beginning) raises no
    # alert: the ledger could not tell whether it was sent. Counted, logged.
    # Its age is the later of its fetch time and its record timestamp.
    topic = Topic(ctx, count=12)  # fetched 42 to 48 hours ago
    now = int(time.time())
    fresh = [make_article(100 + i, now - 600) + (now - 600,) for i in range(4)]
    # Published 40 days ago but fetched now (a new source's archive): the
    # record's timestamp (its published time) is old, the fetch is not, so
    # it alerts. And one fetched 40 days ago but written now by another
    # writer (record timestamp now) alerts too.
    archive, archive_topics = make_article(200, now - 40 * 86400)
    archive["fetched_at"] = iso(now - 300)
    fresh.append((archive, archive_topics, now - 40 * 86400))
    copied, copied_topics = make_article(201, now - 40 * 86400)
    fresh.append((copied, copied_topics, now - 60))
    topic.produce(["%d\t-1\t%s\t%s" % (ts * 1000, art["id"], json.dumps(art))
                   for art, _, ts in fresh])
    hook = ctx.webhook()
    routes = [{"name": "generic", "url": hook.url("/json"), "format": "json"}]
    with open(topic.config("horizon", routes,
                           group=harness.unique_topic("na-it-horizon"))) as f:
        conf = json.load(f)
    conf["ledger_horizon"] = "1d"
    p = topic.live(ctx.write("horizon-1d.json", conf), "live-horizon")
    s = summary(p)
    assert s["consumed"] == 18 and s["too_old"] == 12, s
    want = {(art["url"], t) for art, topics, _ in fresh for t in topics}
    got = delivered(hook)
    assert want and sorted(got) == sorted(want), (got, want)
    assert len(re.findall(r"event=too_old ", p.stderr_text())) == 12

    # A horizon shorter than the story window is refused at start.
    conf["stories"] = True
    conf["story_window"] = "3d"
    bad = ctx.proc([ctx.bin("newsalert-consumer"), "--config",
                    ctx.write("horizon-bad.json", conf), "--exit-eof"], name="horizon-bad")
    assert bad.wait(60) != 0
    assert "ledger_horizon" in bad.stderr_text() and "story_window" in bad.stderr_text()


def test_progress_bar_on_a_terminal(ctx):
    topic = Topic(ctx, count=8)
    cfg = topic.config("replay")
    master, slave = pty.openpty()
    proc = subprocess.Popen([ctx.bin("newsalert-consumer"), "replay", "--config", cfg,
                             "--from", "beginning", "--to", "end", "--dry-run",
                             "--log-level", "error"],
                            stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    data = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.5)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        elif proc.poll() is not None:
            break
    rc = proc.wait(30)
    os.close(master)
    text = data.decode("utf-8", "replace")
    assert rc == 0, text
    assert "100.0%" in text and "msg/s" in text and "ETA" in text and "8/8" in text, text
    assert "event=progress" not in text


if __name__ == "__main__":
    harness.main(globals())
