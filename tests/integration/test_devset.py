#!/usr/bin/env python3
"""Structure and composition of the labelled development set data/dev.jsonl.

The set is what `newsalert-consumer eval` measures the shipped rules on
(issue 5, point 6); data/README.md describes it. These checks keep it usable:
every line a valid article with known labels, enough articles and hard
negatives, enough positives per topic, and story keys that group reports of
one event from different outlets within a few days.
"""

import collections
import datetime
import json
import re

import harness

TOPICS = ("export_controls", "rare_earths", "taiwan")
REQUIRED = {"id": str, "title": str, "text": str, "published_at": str,
            "source": str, "labels": list, "story": str}
MIN_ARTICLES = 150
MIN_PER_TOPIC = 40
MIN_WORDS, MAX_WORDS = 80, 250
# Articles sharing a story key report one event: all within this span.
STORY_SPAN = datetime.timedelta(days=4)
# The seed event (DESIGN.md): China's dual-use export ban on Japan, 2026-01-06.
BAN_STORY = "cn-jp-dualuse-ban-2026"


def load(ctx):
    """Return the parsed records of data/dev.jsonl, failing on any bad line."""
    path = ctx.src("data", "dev.jsonl")
    recs = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            assert line.endswith("\n"), "line %d: no trailing newline" % n
            assert line.strip(), "line %d: empty" % n
            try:
                r = json.loads(line)
            except ValueError as e:
                raise AssertionError("line %d: not JSON: %s" % (n, e)) from None
            assert isinstance(r, dict), "line %d: not an object" % n
            recs.append((n, r))
    return recs


def parse_time(s):
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s), s
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ")


def test_every_line_is_a_valid_article(ctx):
    ids = set()
    for n, r in load(ctx):
        for key, typ in REQUIRED.items():
            assert isinstance(r.get(key), typ), "line %d: %s missing or not %s" % (
                n, key, typ.__name__)
        for key in ("id", "title", "text", "source", "story"):
            assert r[key].strip(), "line %d: empty %s" % (n, key)
        assert "note" not in r or isinstance(r["note"], str), "line %d: note" % n
        extra = set(r) - set(REQUIRED) - {"note"}
        assert not extra, "line %d: unknown fields %s" % (n, sorted(extra))
        assert re.fullmatch(r"dev-\d{3,}", r["id"]), "line %d: id %r" % (n, r["id"])
        assert r["id"] not in ids, "line %d: duplicate id %s" % (n, r["id"])
        ids.add(r["id"])
        assert all(t in TOPICS for t in r["labels"]), "line %d: labels %r" % (
            n, r["labels"])
        assert len(set(r["labels"])) == len(r["labels"]), "line %d: repeated label" % n
        parse_time(r["published_at"])
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", r["story"]), \
            "line %d: story key %r" % (n, r["story"])
        words = len(r["text"].split())
        assert MIN_WORDS <= words <= MAX_WORDS, "line %d (%s): %d words" % (
            n, r["id"], words)


def test_composition(ctx):
    recs = [r for _, r in load(ctx)]
    assert len(recs) >= MIN_ARTICLES, "%d articles, want >= %d" % (
        len(recs), MIN_ARTICLES)
    negatives = sum(1 for r in recs if not r["labels"])
    assert 3 * negatives >= len(recs), "%d hard negatives of %d, want >= 1/3" % (
        negatives, len(recs))
    per = collections.Counter(t for r in recs for t in r["labels"])
    for t in TOPICS:
        assert per[t] >= MIN_PER_TOPIC, "%s: %d positives, want >= %d" % (
            t, per[t], MIN_PER_TOPIC)
    multi = sum(1 for r in recs if len(r["labels"]) >= 2)
    assert multi >= 10, "only %d articles with two or more topics" % multi
    # Borderline decisions are explained.
    notes = sum(1 for r in recs if r.get("note"))
    assert notes >= 20, "only %d articles carry a note" % notes


def test_story_keys(ctx):
    recs = [r for _, r in load(ctx)]
    stories = collections.defaultdict(list)
    for r in recs:
        stories[r["story"]].append(r)
    ban = stories.get(BAN_STORY, [])
    assert len(ban) >= 4, "%s has %d articles, want >= 4" % (BAN_STORY, len(ban))
    assert all("export_controls" in r["labels"] for r in ban), BAN_STORY
    grouped = [k for k, v in stories.items() if len(v) >= 2]
    assert len(grouped) >= 10, "only %d stories with several articles" % len(grouped)
    assert sum(1 for k in grouped if len(stories[k]) >= 3) >= 5
    for k in grouped:
        v = stories[k]
        times = [parse_time(r["published_at"]) for r in v]
        assert max(times) - min(times) <= STORY_SPAN, "story %s spans %s" % (
            k, max(times) - min(times))
        sources = [r["source"] for r in v]
        assert len(set(sources)) == len(sources), "story %s repeats an outlet" % k
        # Reports of one event share at least one topic (or are all negative).
        common = set(v[0]["labels"]).intersection(*(set(r["labels"]) for r in v))
        assert common or not any(r["labels"] for r in v), \
            "story %s: articles share no topic" % k
    # Other stories of the same weeks as the ban stay separate keys.
    t0 = parse_time(ban[0]["published_at"])
    near = {r["story"] for r in recs if r["labels"]
            and abs(parse_time(r["published_at"]) - t0) <= datetime.timedelta(days=14)}
    assert len(near - {BAN_STORY}) >= 2, "no other positive stories near the ban"


if __name__ == "__main__":
    harness.main(globals(), needs_broker=False)
