#!/usr/bin/env python3
"""The documentation against the code, so that the two stay in step.

- Every metric the code registers is in docs/operations.md's metrics table,
  and every metric the docs name exists in the code.
- The configuration tables of docs/producer.md and docs/delivery.md list
  exactly the keys of the programs' --help, with the same defaults, and
  each range they state is the one the program enforces (both bounds are
  accepted, one past either is refused).
- Every route key the code reads is in docs/delivery.md and in the
  consumer's --help.
- Every `event=NAME` the docs name is logged by the code.
- The fault points of docs/reliability.md are exactly the code's.
- Every flag of README's program table is an option of the programs.

No broker: the programs are only asked for --help and --check-config.
"""

import glob
import os
import re
import subprocess

import harness

DURATION = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000}


def code_text(ctx):
    """{path: text} of every C file of the daemons and their library."""
    out = {}
    for folder in ("common", "producer", "consumer"):
        for path in glob.glob(ctx.src(folder, "**", "*.c"), recursive=True):
            with open(path, encoding="utf-8") as f:
                out[os.path.relpath(path, ctx.source)] = f.read()
    return out


def doc(ctx, name):
    with open(ctx.src(name), encoding="utf-8") as f:
        return f.read()


def all_docs(ctx):
    names = ["README.md"] + sorted(os.path.relpath(p, ctx.source)
                                   for p in glob.glob(ctx.src("docs", "*.md")))
    return {n: doc(ctx, n) for n in names}


def section(text, heading):
    """The text of the Markdown section whose heading starts with @heading."""
    m = re.search(r"^#+ " + re.escape(heading) + r".*$", text, re.M)
    assert m, "no section %r" % heading
    rest = text[m.end():]
    nxt = re.search(r"^## ", rest, re.M)
    return rest[:nxt.start()] if nxt else rest


def metric_names_in(text):
    """Metric names in backticks; `_x` or `..._x` after a full name in the
    same line or table cell stands for the same component's newsalert_<c>_x."""
    names = set()
    for line in text.splitlines():
        comp = None
        for tok in re.findall(r"`((?:\.\.\.)?_?[a-z0-9_]+)`", line):
            if tok.startswith("newsalert_"):
                names.add(tok)
                comp = re.match(r"newsalert_[a-z]+_", tok).group(0)
            elif tok.lstrip(".").startswith("_") and comp:
                names.add(comp + tok.lstrip(".")[1:])
    return names


def test_every_metric_is_documented_and_every_documented_metric_exists(ctx):
    code = set()
    for text in code_text(ctx).values():
        code.update(re.findall(r'"(newsalert_[a-z0-9_]+)"', text))
    assert len(code) > 40, code
    table = metric_names_in(section(doc(ctx, "docs/operations.md"), "Metrics"))
    missing = sorted(code - table)
    assert not missing, "registered but not in docs/operations.md, Metrics: %s" % missing
    for name, text in all_docs(ctx).items():
        for m in sorted(metric_names_in(text)):
            base = re.sub(r"_(bucket|sum|count)$", "", m)
            assert m in code or base in code, "%s names %s, which no code registers" % (
                name, m)


def help_keys(ctx, prog, *args):
    """{key: default or None} from `prog [args] --help`."""
    r = subprocess.run([ctx.bin(prog)] + list(args) + ["--help"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30, env=clean_env())
    text = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, text
    keys = {}
    for m in re.finditer(r'env NEWSALERT_[A-Z0-9_]+, key "([a-z0-9_]+)"(?:, default ?(.*))?$',
                         text, re.M):
        keys[m.group(1)] = m.group(2) if m.group(2) else None
    assert len(keys) > 20, text
    return keys, text


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("NEWSALERT_")}


def doc_table(ctx, name):
    """[(key, default, range)] of the "Configuration (keys" table of @name."""
    rows = []
    for line in section(doc(ctx, name), "Configuration (keys").splitlines():
        m = re.match(r"\| `([a-z0-9_]+)` \|\s*([^|]*?)\s*\|\s*([^|]*?)\s*\|", line)
        if m:
            rows.append((m.group(1), m.group(2).strip(), m.group(3).strip()))
    assert len(rows) > 20, name
    return rows


def to_ms(text):
    m = re.fullmatch(r"(-?[0-9]+)(ms|s|m|h|d)?", text)
    assert m, "not a number or duration: %r" % text
    return int(m.group(1)) * DURATION[m.group(2)] if m.group(2) else int(m.group(1))


# Keys whose range is checked with another key set, so that a rule between
# keys does not refuse a bound: story_window up to 365d needs a ledger
# horizon at least as long (0: keep every alert).
COMPANIONS = {"story_window": ["--ledger-horizon", "0"]}


def check_config(ctx, prog, key, value):
    flag = "--" + key.replace("_", "-")
    r = subprocess.run([ctx.bin(prog), flag, value] + COMPANIONS.get(key, [])
                       + ["--check-config"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30,
                       env=clean_env())
    return r.returncode, r.stdout.decode("utf-8", "replace")


def check_table(ctx, prog, name, version):
    keys, _ = help_keys(ctx, prog)
    rows = doc_table(ctx, name)
    documented = [k for k, _, _ in rows]
    assert len(documented) == len(set(documented)), "%s: a key twice" % name
    assert sorted(documented) == sorted(keys), (
        "%s and %s --help differ: only in the docs %s, only in the program %s" % (
            name, prog, sorted(set(documented) - set(keys)),
            sorted(set(keys) - set(documented))))
    ranged = 0
    for key, default, rng in rows:
        want = keys[key]
        if default.startswith("("):
            assert not want, "%s: %s: the program's default is %r" % (name, key, want)
        else:
            assert default.replace("VERSION", version) == want, (
                "%s: %s: default %r, the program's %r" % (name, key, default, want))
        m = re.fullmatch(r"(-?[0-9]+(?:ms|s|m|h|d)?) – ([0-9]+(?:ms|s|m|h|d)?)", rng)
        if not m:
            assert not rng or not re.match(r"-?[0-9]", rng), (
                "%s: %s: range %r is not LOW – HIGH" % (name, key, rng))
            continue
        ranged += 1
        duration = bool(re.search(r"[a-z]$", m.group(1) + m.group(2)))
        lo, hi = to_ms(m.group(1)), to_ms(m.group(2))
        for value, ok in ((lo, True), (hi, True), (lo - 1, False), (hi + 1, False)):
            text = "%dms" % value if duration else str(value)
            rc, out = check_config(ctx, prog, key, text)
            if ok:
                assert rc == 0, "%s: %s %s: refused (%s)" % (prog, key, text, out.strip())
            else:
                assert rc != 0 and key in out, "%s: %s %s: accepted, documented range %s" % (
                    prog, key, text, rng)
    assert ranged >= 10, name


def program_version(ctx):
    r = subprocess.run([ctx.bin("newsalert-producer"), "--version"], stdout=subprocess.PIPE,
                       timeout=30)
    return r.stdout.decode().split()[1]


def test_producer_configuration_table_matches_the_program(ctx):
    check_table(ctx, "newsalert-producer", "docs/producer.md", program_version(ctx))


def test_consumer_configuration_table_matches_the_program(ctx):
    check_table(ctx, "newsalert-consumer", "docs/delivery.md", program_version(ctx))
    # replay takes the consumer's keys, so the table is its table too.
    replay, _ = help_keys(ctx, "newsalert-consumer", "replay")
    consumer, _ = help_keys(ctx, "newsalert-consumer")
    assert replay == consumer


def test_route_keys_are_documented(ctx):
    text = code_text(ctx)["consumer/delivery/route.c"]
    body = text[text.index("static na_err_t parse_route("):]
    body = body[:body.index("\n}\n")]
    keys = set(re.findall(r'strcmp\(key, "([a-z_]+)"\)', body))
    assert {"name", "url", "format", "max_in_flight"} <= keys, keys
    routes = section(doc(ctx, "docs/delivery.md"), "Configuration (routes)")
    _, helptext = help_keys(ctx, "newsalert-consumer")
    for k in sorted(keys):
        assert "`%s`" % k in routes, "route key %s not in docs/delivery.md" % k
        assert '"%s"' % k in helptext, "route key %s not in newsalert-consumer --help" % k


def logged_events(ctx):
    """Every literal that can be the event argument of na_log()."""
    events = set()
    for text in code_text(ctx).values():
        for m in re.finditer(r"na_log\(\s*[^,]+,\s*[^,]+,\s*((?:[^,\"]|\"[^\"]*\")+),", text):
            events.update(re.findall(r'"([a-z0-9_]+)"', m.group(1)))
    return events


def test_documented_log_events_exist(ctx):
    events = logged_events(ctx)
    assert {"alert_sent", "reloaded", "hit"} <= events
    for name, text in all_docs(ctx).items():
        for ev in sorted(set(re.findall(r"event=([a-z0-9_]+)", text))):
            assert ev in events, "%s: event=%s is logged nowhere" % (name, ev)


def test_fault_points_match_docs(ctx):
    code = set()
    for text in code_text(ctx).values():
        code.update(re.findall(r'na_fault\("([a-z0-9_]+)"\)', text))
    table = section(doc(ctx, "docs/reliability.md"), "Fault points")
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", table, re.M))
    assert code and code == documented, (
        "fault points only in the code %s, only in docs/reliability.md %s" % (
            sorted(code - documented), sorted(documented - code)))


def test_readme_program_flags_exist(ctx):
    flags = set()
    helps = [["newsalert-producer"], ["newsalert-producer", "parse"],
             ["newsalert-consumer"], ["newsalert-consumer", "classify"],
             ["newsalert-consumer", "rules", "test"], ["newsalert-consumer", "eval"],
             ["newsalert-consumer", "stories"], ["newsalert-consumer", "replay"]]
    for argv in helps:
        r = subprocess.run([ctx.bin(argv[0])] + argv[1:] + ["--help"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30,
                           env=clean_env())
        flags.update(re.findall(r"--[a-z][a-z0-9-]*", r.stdout.decode("utf-8", "replace")))
    readme = doc(ctx, "README.md")
    rows = [ln for ln in section(readme, "Programs").splitlines()
            if ln.startswith("| `newsalert-")]
    assert len(rows) >= 8, rows
    for ln in rows:
        for flag in re.findall(r"--[a-z][a-z0-9-]*", ln):
            assert flag in flags, "README names %s, which no program takes" % flag


if __name__ == "__main__":
    harness.main(globals(), needs_broker=False, timeout=240)
