#!/usr/bin/env python3
"""The rules tokeniser's folding tables against Unicode's own data (issue 20,
point 3).

consumer/rules/rules_text.c folds letters through hand-written tables; one of them
had 129 entries for 128 code points and folded Ţ to "s". This test derives
the expected folding of every code point the tables cover from Python's
unicodedata (the compatibility decomposition, combining marks dropped, lower
case) and compares it with what the real tokeniser makes of that code point
(tests/tools/fold_dump). The letters that fold although Unicode gives them
no decomposition are listed in EXCEPTIONS, each with its reason. No broker
is needed.
"""

import json
import os
import subprocess
import unicodedata

import harness

# The blocks the folding tables of rules_text.c cover, as inclusive ranges.
COVERED = (
    (0x0000, 0x007F, "ASCII"),
    (0x00C0, 0x00FF, "Latin-1 Supplement letters"),
    (0x0100, 0x017F, "Latin Extended-A"),
    (0x0218, 0x021B, "Romanian S and T with comma below"),
    (0x0386, 0x03CE, "Greek"),
    (0x0400, 0x045F, "Cyrillic"),
    (0xFF01, 0xFF5E, "fullwidth ASCII"),
)

# Letters that fold to something other than the lower-cased base of their
# decomposition, on purpose: code point -> (folded, reason).
STROKE = "the stroke is part of the letter in Unicode (no decomposition); " \
         "its base letter is what an ASCII spelling writes"
EXCEPTIONS = {
    0x00C6: ("ae", "ligature Æ, no decomposition; written ae in ASCII"),
    0x00E6: ("ae", "ligature æ, no decomposition; written ae in ASCII"),
    0x00D0: ("d", "eth Ð, no decomposition; transliterated d"),
    0x00F0: ("d", "eth ð, no decomposition; transliterated d"),
    0x00D8: ("o", "Ø: " + STROKE),
    0x00F8: ("o", "ø: " + STROKE),
    0x00DE: ("th", "thorn Þ, no decomposition; transliterated th"),
    0x00FE: ("th", "thorn þ, no decomposition; transliterated th"),
    0x00DF: ("ss", "sharp s, no decomposition; its Unicode case folding is ss "
                   "and STRASSE spells it so"),
    0x0110: ("d", "Đ: " + STROKE),
    0x0111: ("d", "đ: " + STROKE),
    0x0126: ("h", "Ħ: " + STROKE),
    0x0127: ("h", "ħ: " + STROKE),
    0x0131: ("i", "dotless ı: Turkish pairs I/ı and İ/i; all four fold to i "
                  "so that ISTANBUL, Istanbul and İstanbul agree"),
    0x0138: ("k", "kra ĸ, no decomposition; Greenlandic writes it k since 1973"),
    0x013F: ("l", "Ŀ decomposes to L + middle dot U+00B7, which is punctuation, "
                  "not part of the word"),
    0x0140: ("l", "ŀ decomposes to l + middle dot U+00B7, which is punctuation, "
                  "not part of the word"),
    0x0141: ("l", "Ł: " + STROKE),
    0x0142: ("l", "ł: " + STROKE),
    0x0149: ("n", "ŉ decomposes to U+02BC (an apostrophe) + n; apostrophes are "
                  "not letters of a word"),
    0x014A: ("n", "eng Ŋ, no decomposition; transliterated n"),
    0x014B: ("n", "eng ŋ, no decomposition; transliterated n"),
    0x0152: ("oe", "ligature Œ, no decomposition; written oe in ASCII"),
    0x0153: ("oe", "ligature œ, no decomposition; written oe in ASCII"),
    0x0166: ("t", "Ŧ: " + STROKE),
    0x0167: ("t", "ŧ: " + STROKE),
    0x03C2: ("\u03c3", "final sigma ς is σ at a word's end: Σ lower-cases to σ and "
                       "Unicode case folding maps ς to σ, so ΟΔΥΣΣΕΑΣ matches "
                       "οδυσσεας"),
}


def decomposed_fold(cp):
    """The lower-cased base letter(s) of cp's compatibility decomposition."""
    d = unicodedata.normalize("NFKD", chr(cp))
    return "".join(c for c in d if not unicodedata.category(c).startswith("M")).lower()


def covered(cp):
    return any(lo <= cp <= hi for lo, hi, _ in COVERED)


def dump(ctx, *args):
    p = subprocess.run([ctx.bin("fold_dump")] + list(args), capture_output=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    out = {}
    for line in p.stdout.decode("utf-8").splitlines():
        f = line.split("\t")
        assert len(f) in (2, 3), line
        out[int(f[0], 16)] = f[2] if f[1] == "w" else None
    return out


def test_every_covered_code_point_folds_as_unicode_decomposes_it(ctx):
    got = dump(ctx, *["%X-%X" % (lo, hi) for lo, hi, _ in COVERED])
    bad = []
    checked = 0
    for lo, hi, block in COVERED:
        for cp in range(lo, hi + 1):
            cat = unicodedata.category(chr(cp))
            if cat == "Cn":
                continue  # unassigned: no data to check against
            checked += 1
            if cat[0] in "LN":
                want = EXCEPTIONS.get(cp, (decomposed_fold(cp),))[0]
                if got[cp] != want:
                    bad.append("U+%04X %s (%s): folds to %r, want %r"
                               % (cp, chr(cp), block, got[cp], want))
            elif got[cp] is not None:
                bad.append("U+%04X %r (%s, %s) is not a letter but makes the word %r"
                           % (cp, chr(cp), block, cat, got[cp]))
    print("%d code points checked, %d exceptions" % (checked, len(EXCEPTIONS)))
    assert not bad, "%d code points fold wrongly:\n%s" % (len(bad), "\n".join(bad))


def test_exceptions_are_needed_and_covered(ctx):
    """Each exception departs from Unicode's decomposition (else it is not an
    exception and must go) and lies in a covered block."""
    for cp, (want, reason) in EXCEPTIONS.items():
        assert covered(cp), "U+%04X is not in a covered block" % cp
        assert reason, cp
        assert decomposed_fold(cp) != want, \
            "U+%04X: Unicode already folds it to %r; drop the exception" % (cp, want)


def test_no_code_point_folds_outside_the_checked_blocks(ctx):
    """A folding range added to rules_text.c without adding it to COVERED
    would go unchecked: every code point the tokeniser changes must lie in a
    covered block."""
    changed = dump(ctx, "--changed", "0-10FFFF")
    outside = ["U+%04X %s -> %r" % (cp, chr(cp), f)
               for cp, f in sorted(changed.items()) if not covered(cp)]
    want = {cp for lo, hi, _ in COVERED for cp in range(lo, hi + 1)
            if unicodedata.category(chr(cp))[0] in "LN"
            and EXCEPTIONS.get(cp, (decomposed_fold(cp),))[0] != chr(cp)}
    inside = {cp for cp in changed if covered(cp)}
    assert inside == want, sorted(inside ^ want)
    assert not outside, "folded outside the checked blocks:\n%s" % "\n".join(outside[:50])


def test_precomposed_and_decomposed_spellings_fold_alike(ctx):
    """Text may come in either normal form; a word must match the same both
    ways (the tokeniser ignores combining marks), through the real
    `classify` command."""
    words = ["\u0162iriac", "\u0218tefan", "\u0104\u0107\u0118", "\u0401\u0436",
             "\u0419\u043e\u0434", "\u0386\u03b8\u03ae\u03bd\u03b1", "\u0170r\u00fc"]
    rules = os.path.join(ctx.tmp, "rules.json")
    with open(rules, "w", encoding="utf-8") as f:
        json.dump({"topics": [{"name": "w%d" % i, "query": w} for i, w in enumerate(words)]},
                  f, ensure_ascii=False)
    lines = []
    for i, w in enumerate(words):
        for form in (w, unicodedata.normalize("NFD", w), w.upper(), w.lower()):
            lines.append((i, form))
    stdin = "".join(json.dumps({"id": "%064x" % n, "title": form}, ensure_ascii=False) + "\n"
                    for n, (_, form) in enumerate(lines))
    p = subprocess.run([ctx.bin("newsalert-consumer"), "classify", "--rules", rules],
                       input=stdin, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    out = [json.loads(x) for x in p.stdout.splitlines()]
    assert len(out) == len(lines), p.stdout
    for (i, form), o in zip(lines, out):
        got = sorted(t["topic"] for t in o["topics"])
        assert got == ["w%d" % i], (form, [hex(ord(c)) for c in form], got)


if __name__ == "__main__":
    harness.main(globals(), needs_broker=False)
