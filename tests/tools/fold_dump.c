/*
 * fold_dump: what the rules tokeniser makes of each single code point, for
 * tests/integration/test_folding.py, which checks the folding tables
 * against Unicode's decompositions.
 *
 *   fold_dump [--changed] FIRST-LAST..
 *
 * FIRST and LAST are hex code points (inclusive; surrogates are skipped).
 * For each code point, its UTF-8 form alone is tokenised and one line is
 * printed: "XXXX<TAB>-" when it makes no word (a separator or an ignorable),
 * else "XXXX<TAB>w<TAB>FOLDED" with the folded word as UTF-8. With
 * --changed only the code points whose folded word differs from their own
 * UTF-8 form are printed. Exit 0, or 2 on bad usage, 1 out of memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_text.h"

static size_t encode(unsigned long cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static int parse_range(const char *arg, unsigned long *first, unsigned long *last) {
    char *end = NULL;
    errno = 0;
    *first = strtoul(arg, &end, 16);
    if (errno || end == arg || *end != '-') {
        return -1;
    }
    const char *s = end + 1;
    *last = strtoul(s, &end, 16);
    if (errno || end == s || *end || *last > 0x10ffff || *first > *last) {
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int i = 1;
    int changed = 0;
    int rc = 0;

    if (i < argc && !strcmp(argv[i], "--changed")) {
        changed = 1;
        i++;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: fold_dump [--changed] FIRST-LAST..\n");
        return 2;
    }
    for (; i < argc; i++) {
        unsigned long first;
        unsigned long last;
        if (parse_range(argv[i], &first, &last)) {
            fprintf(stderr, "fold_dump: bad range '%s' (want hex FIRST-LAST)\n", argv[i]);
            return 2;
        }
        for (unsigned long cp = first; cp <= last; cp++) {
            if (cp >= 0xd800 && cp <= 0xdfff) {
                continue;
            }
            char in[4];
            size_t n = encode(cp, in);
            struct na_rtoks t;
            na_rtoks_init(&t);
            if (na_rules_tokenize(in, n, &t)) {
                na_rtoks_cleanup(&t);
                fprintf(stderr, "fold_dump: out of memory\n");
                return 1;
            }
            if (!t.cnt) {
                if (!changed) {
                    printf("%04lX\t-\n", cp);
                }
            } else {
                const char *f = t.text + t.v[0].fold_off;
                size_t fl = t.v[0].fold_len;
                if (!changed || fl != n || memcmp(f, in, n)) {
                    printf("%04lX\tw\t%.*s\n", cp, (int)fl, f);
                }
                if (t.cnt != 1) {
                    fprintf(stderr, "fold_dump: U+%04lX made %zu words\n", cp, t.cnt);
                    rc = 1;
                }
            }
            na_rtoks_cleanup(&t);
        }
    }
    if (fflush(stdout)) {
        rc = 1;
    }
    return rc;
}
