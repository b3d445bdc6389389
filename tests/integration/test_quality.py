#!/usr/bin/env python3
"""Quality of the shipped rules and of story grouping (issue 5, point 6).

Runs the real `newsalert-consumer eval --json` with examples/rules.json on
data/dev.jsonl and fails when any topic's F1 drops below 0.95; checks the
text form of eval and the `stories` command on the development set.
"""

import collections
import itertools
import json
import os
import subprocess

import harness

GOAL_F1 = 0.95
TOPICS = ("export_controls", "rare_earths", "taiwan")


def run(ctx, *args, stdin=None):
    p = subprocess.run([ctx.bin("newsalert-consumer")] + list(args), input=stdin,
                       capture_output=True, text=True, timeout=120, cwd=ctx.source)
    return p


def test_shipped_rules_reach_goal_f1(ctx):
    p = run(ctx, "eval", "--rules", ctx.src("examples", "rules.json"), "--json",
            ctx.src("data", "dev.jsonl"))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["articles"] >= 150, out
    for t in TOPICS:
        m = out["topics"][t]
        print("%-16s precision %.3f recall %.3f f1 %.3f tp %d fp %d fn %d" % (
            t, m["precision"], m["recall"], m["f1"], m["tp"], m["fp"], m["fn"]))
        assert m["tp"] + m["fn"] >= 40, (t, m)
        tp, fp, fn = m["tp"], m["fp"], m["fn"]
        p_, r_ = tp / max(1, tp + fp), tp / max(1, tp + fn)
        f1 = 2 * p_ * r_ / (p_ + r_) if p_ + r_ else 0.0
        assert abs(f1 - m["f1"]) < 1e-4, (t, m)
        assert m["f1"] >= GOAL_F1, "%s: F1 %.3f below %.2f" % (t, m["f1"], GOAL_F1)


def test_eval_counts_and_usage(ctx):
    data = ctx.write("d.jsonl", "\n".join(json.dumps(r) for r in [
        {"title": "China bans exports of gallium", "text": "The commerce ministry "
         "said exports of gallium would require licences.", "labels": ["export_controls"]},
        {"title": "Night markets in Taipei", "text": "Food stalls were busy.",
         "labels": ["taiwan"]},
        {"title": "A recipe", "text": "Green curry with rice.", "labels": [],
         "story": "x"},
    ]) + "\n")
    p = run(ctx, "eval", "--rules", ctx.src("examples", "rules.json"), "--json", data)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)["topics"]
    assert out["export_controls"]["tp"] == 1 and out["export_controls"]["fp"] == 0
    assert out["taiwan"]["fn"] == 1 and out["taiwan"]["recall"] == 0.0
    p = run(ctx, "eval", "--rules", ctx.src("examples", "rules.json"), data)
    assert p.returncode == 0 and "taiwan" in p.stdout and "fn:" in p.stdout, p.stdout
    assert run(ctx, "eval", "--rules", ctx.src("examples", "rules.json")).returncode == 2
    bad = ctx.write("bad.jsonl", '{"title": "x", "text": "y"}\n')
    assert run(ctx, "eval", "--rules", ctx.src("examples", "rules.json"),
               bad).returncode == 1


def test_eval_bad_lines_named_and_others_scored(ctx):
    """A bad line is named on stderr and the run goes on: eval and stories
    --eval still print their figures over the other lines (exit 1); a file
    that cannot be read gives no figures."""
    good = [
        {"title": "China bans exports of gallium", "text": "The commerce ministry "
         "said exports of gallium would require licences.", "labels": ["export_controls"],
         "event": "gallium", "published_at": "2026-01-05T08:00:00Z"},
        {"title": "Beijing bans gallium exports", "text": "Exports of gallium now "
         "need a licence, the commerce ministry said.", "labels": ["export_controls"],
         "event": "gallium", "published_at": "2026-01-05T09:00:00Z"},
    ]
    lines = [json.dumps(good[0]),
             '{"title": "x", "labels": "export_controls", "event": "e"}',
             "not json",
             json.dumps(dict(good[1], published_at=10 ** 15)),
             json.dumps(good[1])]
    data = ctx.write("mixed.jsonl", "\n".join(lines) + "\n")
    p = run(ctx, "eval", "--rules", ctx.src("examples", "rules.json"), "--json", data)
    assert p.returncode == 1, (p.returncode, p.stderr)
    for n in (2, 3, 4):
        assert "mixed.jsonl:%d:" % n in p.stderr, p.stderr
    out = json.loads(p.stdout)
    assert out["articles"] == 2, out
    assert out["topics"]["export_controls"]["tp"] == 2, out
    p = run(ctx, "eval", "--rules", ctx.src("examples", "rules.json"), data)
    assert p.returncode == 1 and "2 articles" in p.stdout, (p.stdout, p.stderr)
    p = run(ctx, "stories", "--eval", data, "--json")
    assert p.returncode == 1, (p.returncode, p.stderr)
    for n in (3, 4):
        assert "mixed.jsonl:%d:" % n in p.stderr, p.stderr
    out = json.loads(p.stdout)
    # line 2 is a story line (no labels needed): 3 articles, 2 events
    assert out["articles"] == 3 and out["events"] == 2, out
    missing = ctx.write("gone.jsonl", "")
    os.unlink(missing)
    for args in (["eval", "--rules", ctx.src("examples", "rules.json"), "--json", missing],
                 ["stories", "--eval", missing, "--json"]):
        p = run(ctx, *args)
        assert p.returncode == 1 and p.stdout == "", (args, p.stdout, p.stderr)
        assert "gone.jsonl" in p.stderr, p.stderr


def test_byte_order_mark_before_first_line(ctx):
    """A file saved with a byte order mark: classify reads its first line
    as the JSON article it is, and rules test reads its first case (JSON
    lines and a JSON array)."""
    bom = b"\xef\xbb\xbf"
    art = {"id": "a1", "title": "China bans exports of gallium",
           "text": "The commerce ministry said exports of gallium need licences."}
    data = ctx.write("bom.jsonl", bom + (json.dumps(art) + "\n").encode())
    p = run(ctx, "classify", "--rules", ctx.src("examples", "rules.json"), data)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["id"] == "a1" and out["title"] == art["title"], out
    case = dict(art, name="gallium", labels=["export_controls", "rare_earths"])
    for name, text in (("cases.jsonl", json.dumps(case) + "\n"),
                       ("cases.json", json.dumps([case]))):
        cases = ctx.write(name, bom + text.encode())
        p = run(ctx, "rules", "test", cases, "--rules", ctx.src("examples", "rules.json"))
        assert p.returncode == 0 and "1 passed, 0 failed" in p.stdout, (p.stdout,
                                                                          p.stderr)


def test_stories_on_dev_set(ctx):
    recs = [json.loads(line) for line in open(ctx.src("data", "dev.jsonl"),
                                                encoding="utf-8")]
    recs.sort(key=lambda r: (r["published_at"], r["id"]))
    stdin = "".join(json.dumps(r) + "\n" for r in recs)
    p = run(ctx, "stories", "--window", "3d", stdin=stdin)
    assert p.returncode == 0, p.stderr
    got = dict(line.split("\t") for line in p.stdout.splitlines())
    assert len(got) == len(recs)
    gold = {r["id"]: r["story"] for r in recs}
    tp = fp = fn = 0
    for a, b in itertools.combinations(gold, 2):
        g, s = gold[a] == gold[b], got[a] == got[b]
        tp += g and s
        fp += s and not g
        fn += g and not s
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    print("stories: pairwise precision %.3f recall %.3f (tp %d fp %d fn %d)" % (
        precision, recall, tp, fp, fn))
    assert precision >= 0.95 and recall >= 0.5, (precision, recall)
    # Same input, same stories: ids depend on the articles only.
    again = run(ctx, "stories", "--window", "3d", stdin=stdin)
    assert again.stdout == p.stdout
    sizes = collections.Counter(got.values())
    assert max(sizes.values()) <= 12, sizes.most_common(3)
    assert run(ctx, "stories", "--window", "soon").returncode == 2


if __name__ == "__main__":
    harness.main(globals(), needs_broker=False)
