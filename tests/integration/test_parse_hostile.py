#!/usr/bin/env python3
"""`newsalert-producer parse` on hostile documents, through the real binary.

Each bad document ends in exit 1 with exactly one line on stderr naming the
problem, or exit 0 with the items that could be recovered; the program never
crashes (a sanitizer report is more than one line), never reads a local file
or the network, and writes only valid UTF-8. No broker needed.
"""

import json
import os
import subprocess

import harness

PROG = "newsalert-producer"


def parse(ctx, path, stdin=None, base_url=None, timeout=60):
    """Run `parse`; return (rc, stdout bytes, stderr text); check the contract."""
    argv = [ctx.bin(PROG), "parse"]
    if base_url:
        argv += ["--base-url", base_url]
    argv.append(path)
    r = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    out, err = r.stdout, r.stderr
    # only valid UTF-8, on both streams
    text = out.decode("utf-8", errors="strict")
    err_text = err.decode("utf-8", errors="strict")
    assert r.returncode in (0, 1), "%s: exit %d, stderr %r" % (path, r.returncode, err_text[-2000:])
    if r.returncode == 1:
        assert out == b"", "%s: output on failure" % path
        lines = err_text.splitlines()
        assert len(lines) == 1, "%s: stderr is not one line: %r" % (path, err_text[-2000:])
        assert lines[0].startswith(PROG + ": parse: "), lines[0]
    else:
        assert err_text == "", "%s: stderr on success: %r" % (path, err_text)
        for line in text.splitlines():
            a = json.loads(line)
            assert a["schema"] == "article/v1", line
    return r.returncode, text, err_text


def fixture(ctx, name):
    d = ctx.src("tests", "data", "feeds", name)
    for f in ("input.xml", "input.json"):
        if os.path.exists(os.path.join(d, f)):
            return os.path.join(d, f)
    raise AssertionError("no input in %s" % d)


def test_malformed_xml(ctx):
    rc, _, err = parse(ctx, fixture(ctx, "malformed-xml"))
    assert rc == 1 and "XML error at line" in err, err


def test_malformed_json(ctx):
    rc, _, err = parse(ctx, fixture(ctx, "malformed-json"))
    assert rc == 1 and "JSON error at line" in err, err


def test_billion_laughs(ctx):
    rc, out, err = parse(ctx, fixture(ctx, "billion-laughs"), timeout=20)
    assert rc == 1 and "entity" in err, err
    # and a wider one, generated: ten levels of ten
    ents = ['<!ENTITY l0 "lol">'] + [
        '<!ENTITY l%d "%s">' % (i, ("&l%d;" % (i - 1)) * 10) for i in range(1, 10)]
    doc = ('<?xml version="1.0"?><!DOCTYPE rss [%s]><rss version="2.0"><channel>'
           '<item><title>&l9;</title><link>https://x.example/a</link></item>'
           '</channel></rss>' % "".join(ents))
    rc, out, err = parse(ctx, ctx.write("laughs.xml", doc), timeout=20)
    assert "lollol" not in out and len(out) < 10000, (rc, len(out))


def test_xxe_never_reads_local_files(ctx):
    token = "na-secret-%d" % os.getpid()
    secret = ctx.write("secret.txt", token + "\n")
    dtd = ctx.write("evil.dtd", '<!ENTITY leak SYSTEM "file://%s">' % secret)
    docs = {
        "general.xml": '<!DOCTYPE rss [<!ENTITY x SYSTEM "file://%s">]>'
                       '<rss version="2.0"><channel><item><title>a &x; b</title>'
                       '<link>https://x.example/a</link><description>&x;</description>'
                       '</item></channel></rss>' % secret,
        "relative.xml": '<!DOCTYPE rss [<!ENTITY x SYSTEM "secret.txt">]>'
                        '<rss version="2.0"><channel><item><title>&x;</title>'
                        '<link>https://x.example/a</link></item></channel></rss>',
        "param.xml": '<!DOCTYPE rss [<!ENTITY %% p SYSTEM "file://%s"> %%p;]>'
                     '<rss version="2.0"><channel><item><title>&leak;</title>'
                     '<link>https://x.example/a</link></item></channel></rss>' % dtd,
        "external-subset.xml": '<!DOCTYPE rss SYSTEM "file://%s">'
                               '<rss version="2.0"><channel><item><title>&leak;</title>'
                               '<link>https://x.example/a</link></item></channel></rss>' % dtd,
        "xinclude.xml": '<rss version="2.0" xmlns:xi="http://www.w3.org/2001/XInclude">'
                        '<channel><item><title>t</title><link>https://x.example/a</link>'
                        '<description><xi:include href="file://%s" parse="text"/>'
                        '</description></item></channel></rss>' % secret,
    }
    for name, doc in docs.items():
        path = ctx.write(name, doc)
        for base in (None, "file://" + ctx.tmp + "/"):
            rc, out, err = parse(ctx, path, base_url=base)
            assert token not in out and token not in err, (name, out, err)


def test_xxe_never_touches_the_network(ctx):
    feed = ctx.feed_server({"/evil.dtd": (b'<!ENTITY leak "NETWORK">', "application/xml-dtd"),
                            "/x": (b"NETWORK", "text/plain")})
    url = feed.url("/evil.dtd")
    docs = [
        '<!DOCTYPE rss SYSTEM "%s"><rss version="2.0"><channel><item><title>&leak;'
        '</title><link>https://x.example/a</link></item></channel></rss>' % url,
        '<!DOCTYPE rss [<!ENTITY x SYSTEM "%s">]><rss version="2.0"><channel><item>'
        '<title>&x;</title><link>https://x.example/a</link></item></channel></rss>'
        % feed.url("/x"),
        '<!DOCTYPE rss [<!ENTITY %% p SYSTEM "%s"> %%p;]><rss version="2.0"><channel>'
        '<item><title>&leak;</title><link>https://x.example/a</link></item>'
        '</channel></rss>' % url,
        '<?xml-stylesheet type="text/xsl" href="%s"?><rss version="2.0"><channel><item>'
        '<title>t</title><link>https://x.example/a</link></item></channel></rss>'
        % feed.url("/x"),
    ]
    for i, doc in enumerate(docs):
        rc, out, err = parse(ctx, ctx.write("net%d.xml" % i, doc),
                             base_url=feed.url("/feed.xml"))
        assert "NETWORK" not in out, out
    assert feed.count() == 0, feed.requests()


def test_100mb_body_refused_by_size(ctx):
    path = ctx.path("big.xml")
    with open(path, "wb") as f:
        f.write(b'<rss version="2.0"><channel><item><title>')
        chunk = b"x" * (1 << 20)
        for _ in range(100):
            f.write(chunk)
        f.write(b"</title></item></channel></rss>")
    rc, _, err = parse(ctx, path, timeout=30)
    assert rc == 1 and "larger than" in err, err
    with open(path, "rb") as f:
        rc, _, err = parse(ctx, "-", stdin=f.read(), timeout=30)
    assert rc == 1 and "larger than" in err, err


def test_invalid_utf8_recovered(ctx):
    rc, out, _ = parse(ctx, fixture(ctx, "invalid-utf8"))
    assert rc == 0 and out.count("\n") >= 1
    assert "\ufffd" in out, out
    rc, out, _ = parse(ctx, fixture(ctx, "json-invalid-utf8"))
    assert rc == 0 and out.count("\n") == 2 and "\ufffd" in out, out
    # bad bytes and raw control bytes inside JSON strings cost those bytes only
    doc = b'{"version":"https://jsonfeed.org/version/1.1","items":[{"id":"1",' \
          b'"url":"https://x.example/a","title":"bad \xff\xfe bytes\x00\x01"}]}'
    rc, out, err = parse(ctx, "-", stdin=doc)
    assert rc == 0 and json.loads(out)["title"] == "bad \ufffd\ufffd bytes", (rc, out, err)


def test_wrong_json_types_recovered(ctx):
    rc, out, _ = parse(ctx, fixture(ctx, "wrong-json-types"))
    assert rc == 0 and out.count("\n") >= 1, out
    for doc in (b'{"version":"https://jsonfeed.org/version/1.1","items":{}}',
                b'{"version":7,"items":[1,"a",null,[],{"title":{"x":1},"url":5}]}',
                b'[{"items":[]}]', b'"just a string"', b"null"):
        parse(ctx, "-", stdin=doc)


def test_deep_nesting_10000(ctx):
    rc, _, err = parse(ctx, fixture(ctx, "deep-xml-10000"))
    assert rc == 1 and "nesting deeper than" in err, err
    rc, _, err = parse(ctx, fixture(ctx, "deep-json-10000"))
    assert rc == 1 and "nesting deeper than" in err, err
    rc, _, err = parse(ctx, "-", stdin=b'{"items":' + b"[" * 10000 + b"]" * 10000 + b"}")
    assert rc == 1 and "nesting deeper than" in err, err


def test_every_fixture_keeps_the_contract(ctx):
    root = ctx.src("tests", "data", "feeds")
    n = 0
    for name in sorted(os.listdir(root)):
        if os.path.isdir(os.path.join(root, name)):
            rc, _, err = parse(ctx, fixture(ctx, name),
                               base_url="https://feeds.example.org/%s/" % name)
            want_error = os.path.exists(os.path.join(root, name, "expected-error.txt"))
            assert (rc == 1) == want_error, (name, rc, err)
            n += 1
    assert n >= 30, n


if __name__ == "__main__":
    harness.main(globals(), needs_broker=False)
