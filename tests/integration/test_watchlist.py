#!/usr/bin/env python3
"""Watchlist topics in the daemon and the commands (real broker): alerts name
the listed parties (alert/v1 `parties`); SIGHUP reads the list again, a list
with bad rows loads the rest (each row logged with its line, counted in
newsalert_watchlist_rows_rejected_total), and a list that cannot load keeps
the one in force and says which file and line; `classify`, `rules test` and
`eval` work with the bundled example list."""

import json
import re
import time

import harness
import test_ops as ops

HEADER = ("_id,source,entity_number,type,programs,name,title,addresses,"
          "federal_register_notice,start_date,end_date,standard_order,"
          "license_requirement,license_policy,call_sign,vessel_type,gross_tonnage,"
          "gross_registered_tonnage,vessel_flag,vessel_owner,remarks,source_list_url,"
          "alt_names,citizenships,dates_of_birth,nationalities,places_of_birth,"
          "source_information_url,ids\n")


def row(id_, name, alt="", programs="EAR", source="Entity List (EL) - Bureau of Industry "
        "and Security", typ="Entity", address="1 Quay Road, Valletta, MT"):
    f = [""] * 29
    f[0], f[1], f[3], f[4], f[5], f[7], f[22] = id_, source, typ, programs, name, address, alt
    return ",".join('"%s"' % x.replace('"', '""') if x else "" for x in f) + "\n"


def parties(hook):
    """{article url: [(party name, alias)]} of the alerts answered 200."""
    out = {}
    for b in hook.bodies("/json", status=200):
        out[b["article"]["url"]] = [(p["name"], p["alias"]) for p in b.get("parties", [])]
    return out


def test_sighup_reloads_the_watchlist_and_keeps_it_when_the_new_one_fails(ctx):
    ops.require_listener(ctx, "newsalert-consumer")
    ctx.write("list.csv", HEADER + row("w1", "Brannock Logistics Ltd."))
    rules = ctx.write("rules.json", {"topics": [
        {"name": "parties", "watchlist": "list.csv", "format": "csl-csv"}]})
    hook = ctx.webhook()
    c = ops.Consumer(ctx, rules, hook)

    a1 = ops.article(1, "Brannock Logistics and Fenwhistle Polymers sign a deal")
    ops.produce(ctx, c.topic, [a1])
    harness.wait_until(lambda: a1["url"] in parties(hook), 60, what="alert 1")
    body = [b for b in hook.bodies("/json", status=200) if b["article"]["url"] == a1["url"]][0]
    assert body["topic"] == "parties"
    p = body["parties"]
    assert [(x["name"], x["source"], x["programs"], x["country"]) for x in p] == [
        ("Brannock Logistics Ltd.", "Entity List (EL) - Bureau of Industry and Security",
         "EAR", "MT")], p

    # A new list, with a bad row among good ones: the rest loads, the row is
    # named with its line and counted.
    ctx.write("list.csv", HEADER + row("w1", "Brannock Logistics Ltd.")
              + row("w2", "Fenwhistle Polymers", alt="Fenwhistle")
              + 'w3,SDN,,Entity,,"Broken"Row' + "," * 23 + "\n"
              + row("w4", "...")
              + row("w5", "Isolde Maritime"))
    mark = len(c.proc.stderr_text())
    ops.reload_and_wait(c.proc, "reloaded", mark)
    log = c.proc.stderr_text()[mark:]
    assert re.search(r"event=watchlist_row_rejected.*line=4 .*text after the closing "
                     r"quote", log), log
    assert re.search(r"event=watchlist_row_rejected.*line=5 .*has no letters", log), log
    a2 = ops.article(2, "Fenwhistle and Isolde Maritime in talks")
    ops.produce(ctx, c.topic, [a2])
    harness.wait_until(lambda: a2["url"] in parties(hook), 60, what="alert 2")
    assert sorted(parties(hook)[a2["url"]]) == [("Fenwhistle Polymers", "Fenwhistle"),
                                                ("Isolde Maritime", "Isolde Maritime")]
    m = ops.scrape(c.port)
    assert ops.metric(m, "newsalert_watchlist_rows_rejected_total", 'topic="parties"') == 2

    # A list that cannot load (no name column): refused with its file and
    # line, the list in force stays.
    mark = len(c.proc.stderr_text())
    ctx.write("list.csv", "_id,source\nw1,x\n")
    ops.reload_and_wait(c.proc, "reload_failed", mark)
    log = c.proc.stderr_text()[mark:]
    assert "list.csv:1: the header has no" in log, log
    a3 = ops.article(3, "Isolde Maritime again")
    ops.produce(ctx, c.topic, [a3])
    harness.wait_until(lambda: a3["url"] in parties(hook), 60, what="alert 3 (old list)")
    time.sleep(1.0)
    assert len(hook.bodies("/json", status=200)) == 3, "extra alerts"
    m = ops.scrape(c.port)
    assert ops.metric(m, "newsalert_reloads_total", 'what="rules",result="ok"') == 1
    assert ops.metric(m, "newsalert_reloads_total", 'what="rules",result="failed"') == 1
    rc = c.proc.stop(60)
    assert rc == 0, "consumer exited %s:\n%s" % (rc, c.proc.tail())


def test_commands_work_with_the_example_watchlist(ctx):
    rules = ctx.src("examples", "watchlist-rules.json")
    consumer = ctx.bin("newsalert-consumer")
    r = harness.run([consumer, "rules", "test", ctx.src("examples", "watchlist.tests.jsonl"),
                     "--rules", rules], timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^12 passed, 0 failed$", r.stdout, re.M), r.stdout
    r = harness.run([consumer, "eval", "--rules", rules, "--json",
                     ctx.src("examples", "watchlist.tests.jsonl")], timeout=60)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)["topics"]["restricted_parties"]
    assert (got["tp"], got["fp"], got["fn"]) == (9, 0, 0), got
    text = "Quillfeather Photonics sold lasers to Arkady Semyonovich Volkovar.\n"
    r = harness.run([consumer, "classify", "--rules", rules, "-"], timeout=60, stdin=text)
    assert r.returncode == 0, r.stderr
    topics = json.loads(r.stdout)["topics"]
    assert [t["topic"] for t in topics] == ["restricted_parties"]
    ps = topics[0]["parties"]
    assert [(p["name"], p["alias"], p["matched"], p["country"]) for p in ps] == [
        ("Shenzhen Quillfeather Photonics Co., Ltd.", "Quillfeather Photonics",
         "Quillfeather Photonics", "CN"),
        ("VOLKOVAR, Arkady Semyonovich", "VOLKOVAR, Arkady Semyonovich",
         "Arkady Semyonovich Volkovar", "RU")], ps
    # the example list is our own: invented entries, marked as such
    with open(ctx.src("examples", "watchlist.csv"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert lines[0].startswith("_id,source,entity_number,type,programs,name,")
    assert all("Invented entry" in line for line in lines[1:]), "an entry not marked invented"


def party_scores(ctx, part):
    """(tp, fp, fn) of listed parties named, from classify output."""
    path = ctx.src("data", "watchlist", part + ".jsonl")
    with open(path, encoding="utf-8") as f:
        want = {d["id"]: set(d["parties"]) for d in map(json.loads, f)}
    r = harness.run([ctx.bin("newsalert-consumer"), "classify", "--rules",
                     ctx.src("data", "watchlist", "rules.json"), path], timeout=60)
    assert r.returncode == 0, r.stderr
    tp = fp = fn = 0
    for line in r.stdout.splitlines():
        d = json.loads(line)
        got = {p["name"] for t in d["topics"] for p in t.get("parties", [])}
        tp += len(got & want[d["id"]])
        fp += len(got - want[d["id"]])
        fn += len(want[d["id"]] - got)
    return tp, fp, fn


def test_development_list_figures(ctx):
    for part, n in (("dev", 30), ("heldout", 30)):
        tp, fp, fn = party_scores(ctx, part)
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        print("%s: parties tp %d fp %d fn %d (precision %.3f, recall %.3f)"
              % (part, tp, fp, fn, precision, recall))
        assert precision >= 0.95 and recall >= 0.95, part
        r = harness.run([ctx.bin("newsalert-consumer"), "eval", "--json", "--rules",
                         ctx.src("data", "watchlist", "rules.json"),
                         ctx.src("data", "watchlist", part + ".jsonl")], timeout=60)
        assert json.loads(r.stdout)["articles"] == n
    with open(ctx.src("data", "watchlist", "parties.csv"), encoding="utf-8") as f:
        rows = f.read().splitlines()[1:]
    assert len(rows) == 28 and all("not for screening" in r for r in rows)


if __name__ == "__main__":
    harness.main(globals())
