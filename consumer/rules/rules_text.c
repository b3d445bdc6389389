/*
 * Folding and tokenising for the rules engine: the same code reads query
 * terms and article text, so both sides always fold alike.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules_text.h"

/* Character classes. */
enum cls {
    CLS_SEP = 0, /* ends a word */
    CLS_WORD,    /* letter or digit: part of a word */
    CLS_IGNORE,  /* invisible inside a word: combining marks, soft hyphen, ZWJ */
    CLS_CJK      /* a word of its own: ideographs, kana */
};

/*
 * Folding tables: each maps a block of code points to the lower-case base
 * letter(s) of its Unicode decomposition, so that a precomposed letter folds
 * as its decomposed spelling does (base letter + combining marks, which the
 * tokeniser ignores). tests/integration/test_folding.py compares every code
 * point these tables cover with Unicode's own decompositions; the letters
 * without a decomposition that fold anyway (ß, æ, ø, ł, ...) are listed
 * there with their reasons. A new table or range goes into that test too.
 */

/* Latin-1 Supplement U+00C0..U+00FF to ASCII: 'A' = "ae", 'T' = "th",
 * 'S' = "ss", '*' = not a letter (multiplication and division signs). */
static const char latin1_fold[] = "aaaaaaAceeeeiiii"  /* U+00C0 */
                                  "dnooooo*ouuuuyTS"  /* U+00D0 */
                                  "aaaaaaAceeeeiiii"  /* U+00E0 */
                                  "dnooooo*ouuuuyTy"; /* U+00F0 */
_Static_assert(sizeof(latin1_fold) - 1 == 0x100 - 0xc0, "one entry per code point");

/* Latin Extended-A U+0100..U+017F to ASCII: 'I' = "ij", 'O' = "oe". */
static const char latin_ext_a_fold[] = "aaaaaaccccccccdd"  /* U+0100 */
                                       "ddeeeeeeeeeegggg"  /* U+0110 */
                                       "gggghhhhiiiiiiii"  /* U+0120 */
                                       "iiIIjjkkklllllll"  /* U+0130 */
                                       "lllnnnnnnnnnoooo"  /* U+0140 */
                                       "ooOOrrrrrrssssss"  /* U+0150 */
                                       "ssttttttuuuuuuuu"  /* U+0160 */
                                       "uuuuwwyyyzzzzzzs"; /* U+0170 */
_Static_assert(sizeof(latin_ext_a_fold) - 1 == 0x180 - 0x100, "one entry per code point");

/* Greek U+0386..U+03CE: capitals lower-cased, tonos and dialytika dropped,
 * final sigma as sigma. Unassigned code points and the ano teleia (a
 * separator) map to themselves. */
static const uint16_t greek_fold[] = {
    0x3b1, 0x387, 0x3b5, 0x3b7, 0x3b9, 0x38b, 0x3bf, 0x38d, /* U+0386 Ά · Έ Ή Ί - Ό - */
    0x3c5, 0x3c9, 0x3b9, 0x3b1, 0x3b2, 0x3b3, 0x3b4, 0x3b5, /* U+038E Ύ Ώ ΐ Α Β Γ Δ Ε */
    0x3b6, 0x3b7, 0x3b8, 0x3b9, 0x3ba, 0x3bb, 0x3bc, 0x3bd, /* U+0396 Ζ Η Θ Ι Κ Λ Μ Ν */
    0x3be, 0x3bf, 0x3c0, 0x3c1, 0x3a2, 0x3c3, 0x3c4, 0x3c5, /* U+039E Ξ Ο Π Ρ - Σ Τ Υ */
    0x3c6, 0x3c7, 0x3c8, 0x3c9, 0x3b9, 0x3c5, 0x3b1, 0x3b5, /* U+03A6 Φ Χ Ψ Ω Ϊ Ϋ ά έ */
    0x3b7, 0x3b9, 0x3c5, 0x3b1, 0x3b2, 0x3b3, 0x3b4, 0x3b5, /* U+03AE ή ί ΰ α β γ δ ε */
    0x3b6, 0x3b7, 0x3b8, 0x3b9, 0x3ba, 0x3bb, 0x3bc, 0x3bd, /* U+03B6 ζ η θ ι κ λ μ ν */
    0x3be, 0x3bf, 0x3c0, 0x3c1, 0x3c3, 0x3c3, 0x3c4, 0x3c5, /* U+03BE ξ ο π ρ ς σ τ υ */
    0x3c6, 0x3c7, 0x3c8, 0x3c9, 0x3b9, 0x3c5, 0x3bf, 0x3c5, /* U+03C6 φ χ ψ ω ϊ ϋ ό ύ */
    0x3c9,                                                  /* U+03CE ώ */
};
_Static_assert(sizeof(greek_fold) / sizeof(greek_fold[0]) == 0x3cf - 0x386,
               "one entry per code point");

/* Cyrillic U+0400..U+045F: capitals lower-cased, letters with a breve,
 * diaeresis, acute or grave to their base (ё→е, й→и, ў→у, ї→і). */
static const uint16_t cyrillic_fold[] = {
    0x435, 0x435, 0x452, 0x433, 0x454, 0x455, 0x456, 0x456, /* U+0400 Ѐ Ё Ђ Ѓ Є Ѕ І Ї */
    0x458, 0x459, 0x45a, 0x45b, 0x43a, 0x438, 0x443, 0x45f, /* U+0408 Ј Љ Њ Ћ Ќ Ѝ Ў Џ */
    0x430, 0x431, 0x432, 0x433, 0x434, 0x435, 0x436, 0x437, /* U+0410 А Б В Г Д Е Ж З */
    0x438, 0x438, 0x43a, 0x43b, 0x43c, 0x43d, 0x43e, 0x43f, /* U+0418 И Й К Л М Н О П */
    0x440, 0x441, 0x442, 0x443, 0x444, 0x445, 0x446, 0x447, /* U+0420 Р С Т У Ф Х Ц Ч */
    0x448, 0x449, 0x44a, 0x44b, 0x44c, 0x44d, 0x44e, 0x44f, /* U+0428 Ш Щ Ъ Ы Ь Э Ю Я */
    0x430, 0x431, 0x432, 0x433, 0x434, 0x435, 0x436, 0x437, /* U+0430 а б в г д е ж з */
    0x438, 0x438, 0x43a, 0x43b, 0x43c, 0x43d, 0x43e, 0x43f, /* U+0438 и й к л м н о п */
    0x440, 0x441, 0x442, 0x443, 0x444, 0x445, 0x446, 0x447, /* U+0440 р с т у ф х ц ч */
    0x448, 0x449, 0x44a, 0x44b, 0x44c, 0x44d, 0x44e, 0x44f, /* U+0448 ш щ ъ ы ь э ю я */
    0x435, 0x435, 0x452, 0x433, 0x454, 0x455, 0x456, 0x456, /* U+0450 ѐ ё ђ ѓ є ѕ і ї */
    0x458, 0x459, 0x45a, 0x45b, 0x43a, 0x438, 0x443, 0x45f, /* U+0458 ј љ њ ћ ќ ѝ ў џ */
};
_Static_assert(sizeof(cyrillic_fold) / sizeof(cyrillic_fold[0]) == 0x460 - 0x400,
               "one entry per code point");

void na_rtoks_init(struct na_rtoks *t) {
    memset(t, 0, sizeof(*t));
}

void na_rtoks_cleanup(struct na_rtoks *t) {
    if (!t) {
        return;
    }
    free(t->v);
    free(t->text);
    memset(t, 0, sizeof(*t));
}

/* Decode one code point at s (len > 0 bytes left); *n = bytes used.
 * @returns the code point, or -1 for an invalid byte (then *n = 1). */
static long decode(const unsigned char *s, size_t len, size_t *n) {
    unsigned char c = s[0];
    size_t need;
    long cp;
    if (c < 0x80) {
        *n = 1;
        return c;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        cp = c & 0x07;
    } else {
        *n = 1;
        return -1;
    }
    if (need > len) {
        *n = 1;
        return -1;
    }
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *n = 1;
            return -1;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
        *n = 1;
        return -1;
    }
    *n = need;
    return cp;
}

static enum cls classify(long cp) {
    if (cp < 0) {
        return CLS_SEP;
    }
    if (cp < 0x80) {
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
            (cp >= '0' && cp <= '9')) {
            return CLS_WORD;
        }
        return CLS_SEP;
    }
    if (cp == 0xad) {
        return CLS_IGNORE; /* soft hyphen */
    }
    if (cp < 0xc0 || cp == 0xd7 || cp == 0xf7) {
        return CLS_SEP; /* C1 controls, Latin-1 punctuation, NBSP, x and / signs */
    }
    if ((cp >= 0x300 && cp <= 0x36f) || cp == 0x200c || cp == 0x200d || cp == 0x2060 ||
        cp == 0xfeff || (cp >= 0xfe00 && cp <= 0xfe0f)) {
        return CLS_IGNORE;
    }
    if (cp == 0x37e || cp == 0x387 || (cp >= 0x55a && cp <= 0x55f) || cp == 0x589 ||
        cp == 0x5be || cp == 0x60c || cp == 0x61b || cp == 0x61f ||
        (cp >= 0x66a && cp <= 0x66d) || cp == 0x6d4 || cp == 0x964 || cp == 0x965) {
        return CLS_SEP; /* Greek, Armenian, Hebrew, Arabic, Devanagari punctuation */
    }
    if ((cp >= 0x2000 && cp <= 0x206f) || (cp >= 0x20a0 && cp <= 0x2bff) ||
        (cp >= 0x2e00 && cp <= 0x2e7f) || (cp >= 0x3000 && cp <= 0x303f) ||
        (cp >= 0xe000 && cp <= 0xf8ff) || (cp >= 0xfe10 && cp <= 0xfe6f) ||
        (cp >= 0xff00 && cp <= 0xff0f) || (cp >= 0xff1a && cp <= 0xff20) ||
        (cp >= 0xff3b && cp <= 0xff40) || (cp >= 0xff5b && cp <= 0xff65) ||
        (cp >= 0xfff0 && cp <= 0xffff) || (cp >= 0x1f000 && cp <= 0x1faff)) {
        return CLS_SEP; /* punctuation, symbols, emoji, private use, specials */
    }
    if ((cp >= 0x3040 && cp <= 0x30ff) || (cp >= 0x3400 && cp <= 0x4dbf) ||
        (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0xf900 && cp <= 0xfaff) ||
        (cp >= 0x20000 && cp <= 0x2ffff)) {
        return CLS_CJK;
    }
    return CLS_WORD;
}

static bool is_hyphen(long cp) {
    return cp == '-' || cp == 0x2010 || cp == 0x2011;
}

static bool is_apostrophe(long cp) {
    return cp == '\'' || cp == 0x2019;
}

/* Is @p cp a decimal digit (Unicode Nd, Basic Multilingual Plane: ASCII,
 * full-width and the digits of other scripts)? Each range is ten code
 * points from its zero. */
static bool is_digit(long cp) {
    static const uint16_t zeros[] = {
        0x30,   0x660,  0x6f0,  0x7c0,  0x966,  0x9e6,  0xa66,  0xae6,  0xb66,  0xbe6,
        0xc66,  0xce6,  0xd66,  0xde6,  0xe50,  0xed0,  0xf20,  0x1040, 0x1090, 0x17e0,
        0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90, 0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620,
        0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10};
    for (size_t i = 0; i < sizeof(zeros) / sizeof(zeros[0]); i++) {
        if (cp >= zeros[i] && cp < zeros[i] + 10) {
            return true;
        }
    }
    return false;
}

static size_t utf8_encode(long cp, char *out) {
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

/* Fold one word character into out (at least 4 bytes); @returns bytes. */
static size_t fold_cp(long cp, char *out) {
    char c = 0;
    if (cp < 0x80) {
        out[0] = (char)((cp >= 'A' && cp <= 'Z') ? cp + 32 : cp);
        return 1;
    }
    if (cp >= 0xc0 && cp <= 0xff) {
        c = latin1_fold[cp - 0xc0];
    } else if (cp >= 0x100 && cp <= 0x17f) {
        c = latin_ext_a_fold[cp - 0x100];
    } else if (cp == 0x218 || cp == 0x219) {
        c = 's'; /* Romanian S and T with comma below */
    } else if (cp == 0x21a || cp == 0x21b) {
        c = 't';
    } else if (cp >= 0xff10 && cp <= 0xff19) {
        c = (char)('0' + (cp - 0xff10)); /* fullwidth digits and letters */
    } else if (cp >= 0xff21 && cp <= 0xff3a) {
        c = (char)('a' + (cp - 0xff21));
    } else if (cp >= 0xff41 && cp <= 0xff5a) {
        c = (char)('a' + (cp - 0xff41));
    }
    switch (c) {
    case 0:
        break;
    case 'A':
        memcpy(out, "ae", 2);
        return 2;
    case 'T':
        memcpy(out, "th", 2);
        return 2;
    case 'S':
        memcpy(out, "ss", 2);
        return 2;
    case 'I':
        memcpy(out, "ij", 2);
        return 2;
    case 'O':
        memcpy(out, "oe", 2);
        return 2;
    default:
        out[0] = c;
        return 1;
    }
    if (cp >= 0x386 && cp <= 0x3ce) {
        cp = greek_fold[cp - 0x386];
    } else if (cp >= 0x400 && cp <= 0x45f) {
        cp = cyrillic_fold[cp - 0x400];
    }
    return utf8_encode(cp, out);
}

size_t na_rules_plural_fold(const char *w, size_t len, bool *y) {
    *y = false;
    if (len < 4 || w[len - 1] != 's') {
        return len;
    }
    char p = w[len - 2];
    if (p == 's' || p == 'u') {
        return len; /* "class", "status" */
    }
    if (p == 'e') {
        char q = w[len - 3];
        if (q == 'i' && len >= 5 && w[len - 4] != 'a' && w[len - 4] != 'e') {
            *y = true; /* "policies" -> "policy" */
            return len - 3;
        }
        if (q == 'x' ||
            (len >= 5 && (q == 'h' && (w[len - 4] == 'c' || w[len - 4] == 's'))) ||
            (len >= 5 && q == 's' && w[len - 4] == 's') ||
            (len >= 5 && q == 'z' && w[len - 4] == 'z')) {
            return len - 2; /* "taxes", "switches", "crashes", "losses", "buzzes" */
        }
    }
    return len - 1;
}

size_t na_rtok_stem(const struct na_rtoks *t, const struct na_rtok *tok, char *buf) {
    memcpy(buf, t->text + tok->fold_off, tok->stem_len);
    if (tok->stem_y) {
        buf[tok->stem_len] = 'y';
        return (size_t)tok->stem_len + 1;
    }
    return tok->stem_len;
}

static void text_append(struct na_rtoks *t, const char *s, size_t n) {
    if (t->oom) {
        return;
    }
    if (t->text_len + n > t->text_cap) {
        size_t cap = t->text_cap ? t->text_cap * 2 : 256;
        while (cap < t->text_len + n) {
            cap *= 2;
        }
        char *p = realloc(t->text, cap);
        if (!p) {
            t->oom = true;
            return;
        }
        t->text = p;
        t->text_cap = cap;
    }
    memcpy(t->text + t->text_len, s, n);
    t->text_len += n;
}

static struct na_rtok *tok_push(struct na_rtoks *t) {
    if (t->oom) {
        return NULL;
    }
    if (t->cnt == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct na_rtok *v = realloc(t->v, cap * sizeof(*v));
        if (!v) {
            t->oom = true;
            return NULL;
        }
        t->v = v;
        t->cap = cap;
    }
    struct na_rtok *tok = &t->v[t->cnt++];
    memset(tok, 0, sizeof(*tok));
    return tok;
}

/* Set the stem of a token whose folded form is complete. */
static void tok_stem(struct na_rtoks *t, struct na_rtok *tok) {
    bool y = false;
    if (tok->truncated) {
        tok->stem_len = tok->fold_len; /* too long to be any term */
        return;
    }
    tok->stem_len =
        (uint16_t)na_rules_plural_fold(t->text + tok->fold_off, tok->fold_len, &y);
    tok->stem_y = y;
}

/* Close a hyphenated (or dotted) word made of tokens first..t->cnt-1 by
 * adding the joined token. */
static void join_parts(struct na_rtoks *t, size_t first) {
    size_t last = t->cnt - 1;
    size_t total = 0;
    if (last <= first || last - first + 1 > 8) {
        return;
    }
    for (size_t i = first; i <= last; i++) {
        if (t->v[i].truncated) {
            return;
        }
        total += t->v[i].fold_len;
    }
    if (total > NA_RULES_MAX_TERM_BYTES) {
        return;
    }
    size_t off = t->text_len;
    for (size_t i = first; i <= last; i++) {
        /* Appending may move t->text; copy through a small buffer. */
        char part[NA_RULES_MAX_TERM_BYTES + 1];
        memcpy(part, t->text + t->v[i].fold_off, t->v[i].fold_len);
        text_append(t, part, t->v[i].fold_len);
    }
    uint32_t pos = t->v[first].pos;
    uint32_t pos_end = t->v[last].pos;
    uint32_t bstart = t->v[first].bstart;
    uint32_t bend = t->v[last].bend;
    struct na_rtok *tok = tok_push(t);
    if (!tok) {
        return;
    }
    tok->bstart = bstart;
    tok->bend = bend;
    tok->pos = pos;
    tok->pos_end = pos_end;
    tok->fold_off = (uint32_t)off;
    tok->fold_len = (uint16_t)total;
    tok_stem(t, tok);
}

na_err_t na_rules_tokenize(const char *s, size_t len, struct na_rtoks *t) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    size_t n;
    uint32_t pos = 0;
    long comp_first = -1; /* first token of the hyphenated word being read */

    if (len > UINT32_MAX / 2) {
        len = UINT32_MAX / 2;
    }
    if (t->cnt) {
        pos = t->v[t->cnt - 1].pos_end + 1;
    }
    while (i < len && !t->oom) {
        long cp = decode(p + i, len - i, &n);
        enum cls cls = classify(cp);
        if (cls == CLS_CJK) {
            if (comp_first >= 0) {
                join_parts(t, (size_t)comp_first);
                comp_first = -1;
            }
            struct na_rtok *tok = tok_push(t);
            if (!tok) {
                break;
            }
            tok->bstart = (uint32_t)i;
            tok->bend = (uint32_t)(i + n);
            tok->pos = tok->pos_end = pos++;
            tok->fold_off = (uint32_t)t->text_len;
            text_append(t, s + i, n);
            tok->fold_len = (uint16_t)n;
            tok->stem_len = (uint16_t)n;
            i += n;
            continue;
        }
        if (cls != CLS_WORD) {
            if (comp_first >= 0) {
                join_parts(t, (size_t)comp_first);
                comp_first = -1;
            }
            i += n;
            continue;
        }
        /* A word: letters, digits and ignorables up to the next other. */
        size_t start = i;
        size_t fold_off = t->text_len;
        size_t fold_len = 0;
        size_t cps = 0;
        long last_cp = -1; /* the word's last letter or digit */
        while (i < len) {
            cp = decode(p + i, len - i, &n);
            cls = classify(cp);
            if (cls == CLS_WORD) {
                char buf[4];
                size_t k = fold_cp(cp, buf);
                last_cp = cp;
                if (fold_len + k <= NA_RULES_MAX_TERM_BYTES) {
                    text_append(t, buf, k);
                    fold_len += k;
                } else {
                    fold_len = NA_RULES_MAX_TERM_BYTES + 1; /* too long: no exact match */
                }
                cps++;
            } else if (cls != CLS_IGNORE) {
                break;
            }
            i += n;
        }
        struct na_rtok *tok = tok_push(t);
        if (!tok) {
            break;
        }
        tok->bstart = (uint32_t)start;
        tok->bend = (uint32_t)i;
        tok->pos = tok->pos_end = pos++;
        tok->fold_off = (uint32_t)fold_off;
        tok->fold_len = (uint16_t)(t->text_len - fold_off);
        tok->truncated = fold_len > NA_RULES_MAX_TERM_BYTES;
        tok_stem(t, tok);
        if (i >= len) {
            break;
        }
        /* What follows the word: "'s", a joining hyphen or dot, or an end. */
        size_t n2 = 0;
        size_t n3 = 0;
        long next = cp;
        long after = -1;
        if (i + n < len) {
            after = decode(p + i + n, len - i - n, &n2);
        }
        if (is_apostrophe(next) && (after == 's' || after == 'S')) {
            long after2 = -1;
            if (i + n + n2 < len) {
                after2 = decode(p + i + n + n2, len - i - n - n2, &n3);
            }
            if (classify(after2) != CLS_WORD) {
                i += n + n2; /* possessive: "Taiwan's" is "Taiwan" */
                if (comp_first >= 0) {
                    join_parts(t, (size_t)comp_first);
                    comp_first = -1;
                }
                continue;
            }
        }
        bool joins = false;
        if (is_hyphen(next) && classify(after) == CLS_WORD) {
            joins = true;
        } else if (next == '.' && cps == 1 && classify(after) == CLS_WORD &&
                   (!t->split_decimals || (!is_digit(last_cp) && !is_digit(after)))) {
            /* "U.S." reads as one word too, when the next part is one
             * letter; digits do not join ("2.5" is 2 and 5, not also 25) */
            long after2 = -1;
            if (i + n + n2 < len) {
                after2 = decode(p + i + n + n2, len - i - n - n2, &n3);
            }
            joins = classify(after2) != CLS_WORD && classify(after2) != CLS_IGNORE;
        }
        if (joins) {
            if (comp_first < 0) {
                comp_first = (long)(t->cnt - 1);
            }
            i += n;
        } else if (comp_first >= 0) {
            join_parts(t, (size_t)comp_first);
            comp_first = -1;
        }
    }
    if (comp_first >= 0 && !t->oom) {
        join_parts(t, (size_t)comp_first);
    }
    return t->oom ? NA_ERR_NOMEM : NA_OK;
}
