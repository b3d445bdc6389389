/*
 * na_article_from_json(): a strict single-pass reader of article/v1.
 *
 * The record is read once, front to back, without a tree: the members the
 * article has are decoded straight into its strings (each string checked
 * and unescaped once, then cut at its cap on a UTF-8 boundary), and every
 * other member is checked and skipped without building anything.
 *
 * Contract (article.h; docs/benchmarks.md, "decode", says why this reader
 * exists): it accepts exactly the documents that jansson's
 * json_loadb(JSON_REJECT_DUPLICATES) accepts, and makes of them the article
 * that the jansson decoder it replaced made (tests/ref/article_jansson.c,
 * which the unit test and the fuzz target fuzz_article compare it with).
 * What that means, as jansson 2.14 behaves:
 *
 *  - RFC 8259 JSON; the top-level value is an object or an array (a
 *    top-level array is well-formed JSON, then refused as not an article);
 *    white space is space, tab, CR and LF only; nothing may follow the
 *    value but white space.
 *  - Object member names are unique in every object, at every depth,
 *    compared after unescaping ("a" and "\u0061" are the same name).
 *  - Strings: no control bytes (below 0x20), escapes as RFC 8259 lists
 *    them, \u0000 refused (in values and names), a \uD800-\uDBFF escape
 *    must be followed by a \uDC00-\uDFFF one and a lone low surrogate is
 *    refused; raw bytes must be valid UTF-8 (no overlongs, no surrogates,
 *    nothing above U+10FFFF) anywhere in the document.
 *  - Numbers: an integer (no fraction, no exponent) must fit in a signed
 *    64-bit integer; a real must not overflow a double (strtod() giving
 *    HUGE_VAL with ERANGE; underflow to 0 is fine).
 *  - Nesting: a value deeper than 2048 (the top-level value is at depth 1,
 *    each member or element one deeper, scalars included) is refused.
 *  - One quirk kept: jansson skips a single NUL byte right after a number or
 *    after true, false or null ("[1\0]" is [1]); any other NUL byte is an
 *    error.
 *
 * Errors: a document jansson refuses is NA_ERR_PARSE with "JSON error at
 * line L column C: TEXT" (L from 1, C the character on that line, from 1;
 * TEXT may differ from jansson's). For a document it accepts, the checks
 * run in the order the jansson decoder ran them, so the first failing
 * field gives the same na_err_t and the same message.
 */
#include "newsalert/article.h"

#include <errno.h>
#include <math.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/limits.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

/* jansson's JSON_PARSER_MAX_DEPTH. */
#define MAX_DEPTH 2048u
/* Member names kept for the duplicate check without allocating. */
#define KEYS_INLINE 64u

/* A string as read: the bytes between its quotes and its decoded length. */
struct span {
    const char *b;
    const char *e;
    size_t dlen; /* bytes once unescaped */
    bool esc;    /* has escapes: b..e is not the text itself */
};

/* One member name of one object (obj), for the duplicate check. */
struct key {
    const char *s;
    uint32_t len;
    uint32_t obj;
    uint32_t hash;
};

struct reader {
    const char *start;
    const char *p;
    const char *end;
    uint32_t objects; /* serial of the last object opened */
    struct key *keys; /* open addressing, keys_cap a power of two */
    size_t keys_cap;
    size_t keys_cnt;
    size_t probes; /* slots of keys looked at by the duplicate check */
    char **names;  /* decoded names that had escapes, owned */
    size_t names_cnt;
    size_t names_cap;
    const char *err_at; /* where a syntax error is */
    char err[96];       /* its text */
    struct key keys_inline[KEYS_INLINE];
};

/* What a member of the article turned out to be. */
enum state { ST_ABSENT = 0, ST_OK, ST_BAD_TYPE, ST_BAD_ITEM, ST_BAD_TIME };

enum kind { K_STR_LOCAL, K_STR, K_LIST, K_TIME, K_OBJECT };

/* The members the article has, in the order the jansson decoder checked
 * them (which decides the error of a record with several bad fields). */
enum field {
    F_SCHEMA,
    F_ID,
    F_URL,
    F_TITLE,
    F_SUMMARY,
    F_CONTENT,
    F_LANG,
    F_AUTHORS,
    F_CATEGORIES,
    F_PUBLISHED,
    F_FETCHED,
    F_SOURCE,
    F_SOURCE_ID,
    F_SOURCE_NAME,
    F_SOURCE_FEED_URL,
    F_COUNT
};

struct field_def {
    const char *key;
    size_t key_len;
    enum kind kind;
    size_t max;     /* cap: bytes of a string, entries of a list */
    size_t off;     /* offsetof the char * (lists: char **) in na_article */
    size_t cnt_off; /* lists: offsetof the count */
};

#define KEY(k) k, sizeof(k) - 1
#define STR(k, m, f)                                                                     \
    { KEY(k), K_STR, m, offsetof(struct na_article, f), 0 }
#define LIST(k, m, f)                                                                    \
    {                                                                                    \
        KEY(k), K_LIST, m, offsetof(struct na_article, f),                               \
            offsetof(struct na_article, f##_cnt)                                         \
    }
#define TIME(k, f)                                                                       \
    { KEY(k), K_TIME, 0, offsetof(struct na_article, f), 0 }

static const struct field_def fields[F_COUNT] = {
    [F_SCHEMA] = {KEY("schema"), K_STR_LOCAL, 64, 0, 0},
    [F_ID] = {KEY("id"), K_STR_LOCAL, 128, 0, 0},
    [F_URL] = STR("url", NA_MAX_URL_BYTES, url),
    [F_TITLE] = STR("title", NA_MAX_TITLE_BYTES, title),
    [F_SUMMARY] = STR("summary", NA_MAX_SUMMARY_BYTES, summary),
    [F_CONTENT] = STR("content", NA_MAX_CONTENT_BYTES, content),
    [F_LANG] = STR("lang", 64, lang),
    [F_AUTHORS] = LIST("authors", NA_MAX_AUTHORS, authors),
    [F_CATEGORIES] = LIST("categories", NA_MAX_CATEGORIES, categories),
    [F_PUBLISHED] = TIME("published_at", published_at),
    [F_FETCHED] = TIME("fetched_at", fetched_at),
    [F_SOURCE] = {KEY("source"), K_OBJECT, 0, 0, 0},
    [F_SOURCE_ID] = STR("id", 256, source_id),
    [F_SOURCE_NAME] = STR("name", 1024, source_name),
    [F_SOURCE_FEED_URL] = STR("feed_url", NA_MAX_URL_BYTES, source_feed_url),
};

/* Per member: what it was, and what cannot go into the article directly. */
struct found {
    enum state st[F_COUNT];
    size_t bad_item[F_COUNT]; /* ST_BAD_ITEM: index of the first non-string */
    char schema[64 + 1];
    char id[128 + 1];
};

__attribute__((format(printf, 3, 4))) static na_err_t
fail(struct reader *r, const char *at, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
    r->err_at = at;
    return NA_ERR_PARSE;
}

static na_err_t fail_end(struct reader *r) {
    return fail(r, r->end, "premature end of input");
}

static void skip_ws(struct reader *r) {
    const char *p = r->p;
    while (p < r->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
        p++;
    }
    r->p = p;
}

/* jansson puts back the byte after a number or a literal and, when that
 * byte is NUL, loses it (its one-byte stream buffer reads NUL as empty): a
 * single NUL there is skipped. */
static void skip_token_nul(struct reader *r) {
    if (r->p < r->end && *r->p == '\0') {
        r->p++;
    }
}

/* ---- strings ---- */

/* Bytes that end a run of plain text in a string: quote, backslash,
 * control bytes and everything from 0x80 (checked as UTF-8). */
static bool plain(unsigned char c) {
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Whether any of the 8 bytes at @p p is not plain(); may say yes for a
 * word of plain bytes after a byte that is not, never no for one that
 * has one. */
static bool special8(const unsigned char *p) {
    const uint64_t ones = 0x0101010101010101u;
    const uint64_t highs = 0x8080808080808080u;
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    uint64_t q = v ^ (ones * '"');
    uint64_t b = v ^ (ones * '\\');
    uint64_t t = ((q - ones) & ~q) | ((b - ones) & ~b) | (v - ones * 0x20) | v;
    return (t & highs) != 0;
}

/* Length of the valid UTF-8 sequence at @p p (lead byte >= 0x80), or 0:
 * jansson's utf8_check_first() and utf8_check_full(). */
static size_t utf8_seq(const unsigned char *p, size_t avail) {
    unsigned c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0xc2 || c > 0xf4) {
        return 0;
    }
    if (c < 0xe0) {
        n = 2;
        cp = c & 0x1f;
    } else if (c < 0xf0) {
        n = 3;
        cp = c & 0x0f;
    } else {
        n = 4;
        cp = c & 0x07;
    }
    if (avail < n) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || (n == 3 && cp < 0x800) ||
        (n == 4 && cp < 0x10000)) {
        return 0;
    }
    return n;
}

static int hex_digit(unsigned char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* The four hex digits at @p p (at least 4 bytes), or -1. */
static int32_t hex4(const unsigned char *p) {
    int32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(p[i]);
        if (d < 0) {
            return -1;
        }
        v = (v << 4) | d;
    }
    return v;
}

static size_t utf8_len(uint32_t cp) {
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

static size_t utf8_put(uint32_t cp, char *out) {
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

/* The escape whose backslash is at @p p (checked by scan_string()): its
 * code point, and in *next the byte after it. */
static uint32_t escape_value(const unsigned char *p, const unsigned char **next) {
    switch (p[1]) {
    case 'b':
        *next = p + 2;
        return '\b';
    case 'f':
        *next = p + 2;
        return '\f';
    case 'n':
        *next = p + 2;
        return '\n';
    case 'r':
        *next = p + 2;
        return '\r';
    case 't':
        *next = p + 2;
        return '\t';
    case 'u':
        break;
    default: /* '"', '\\', '/' */
        *next = p + 2;
        return p[1];
    }
    uint32_t cp = (uint32_t)hex4(p + 2);
    *next = p + 6;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        uint32_t lo = (uint32_t)hex4(p + 8);
        *next = p + 12;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    return cp;
}

/*
 * Check the string whose opening quote is at r->p as jansson does and
 * leave r->p after its closing quote; @p s gets its bytes and decoded
 * length. Plain text goes 8 bytes at a time.
 */
static na_err_t scan_string(struct reader *r, struct span *s) {
    const unsigned char *p = (const unsigned char *)r->p + 1;
    const unsigned char *end = (const unsigned char *)r->end;
    size_t shrink = 0; /* bytes the escapes lose once decoded */
    bool esc = false;

    for (;;) {
        while (end - p >= 8 && !special8(p)) {
            p += 8;
        }
        while (p < end && plain(*p)) {
            p++;
        }
        if (p == end) {
            return fail_end(r);
        }
        unsigned char c = *p;
        if (c == '"') {
            break;
        }
        if (c == '\\') {
            esc = true;
            if (end - p < 2) {
                return fail_end(r);
            }
            switch (p[1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                p += 2;
                shrink += 1;
                continue;
            case 'u':
                break;
            default:
                return fail(r, (const char *)p, "invalid escape");
            }
            if (end - p < 6) {
                return fail_end(r);
            }
            int32_t cp = hex4(p + 2);
            if (cp < 0) {
                return fail(r, (const char *)p, "invalid escape");
            }
            if (cp == 0) {
                return fail(r, (const char *)p, "\\u0000 is not allowed");
            }
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                return fail(r, (const char *)p, "invalid Unicode '\\u%04X'",
                            (unsigned)cp);
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                int32_t lo = -1;
                if (end - p >= 12 && p[6] == '\\' && p[7] == 'u') {
                    lo = hex4(p + 8);
                }
                if (lo < 0xdc00 || lo > 0xdfff) {
                    return fail(r, (const char *)p, "invalid Unicode '\\u%04X'",
                                (unsigned)cp);
                }
                p += 12;
                shrink += 12 - 4;
                continue;
            }
            p += 6;
            shrink += 6 - utf8_len((uint32_t)cp);
            continue;
        }
        if (c < 0x20) {
            return fail(r, (const char *)p, "control character 0x%x", c);
        }
        size_t n = utf8_seq(p, (size_t)(end - p));
        if (!n) {
            return fail(r, (const char *)p, "unable to decode byte 0x%x", c);
        }
        p += n;
    }
    s->b = r->p + 1;
    s->e = (const char *)p;
    s->dlen = (size_t)(s->e - s->b) - shrink;
    s->esc = esc;
    r->p = (const char *)p + 1;
    return NA_OK;
}

/* Write the text of @p s into @p dst (room for min(s->dlen, max) bytes),
 * cut to at most @p max bytes on a code point boundary as na_utf8_cut()
 * cuts; NUL-terminates it. @returns its length. */
static size_t decode_into(const struct span *s, char *dst, size_t max) {
    size_t out = 0;
    if (!s->esc) {
        out = na_utf8_cut(s->b, s->dlen, max);
        memcpy(dst, s->b, out);
        dst[out] = '\0';
        return out;
    }
    const unsigned char *p = (const unsigned char *)s->b;
    const unsigned char *e = (const unsigned char *)s->e;
    while (p < e) {
        const unsigned char *bs = memchr(p, '\\', (size_t)(e - p));
        const unsigned char *run_end = bs ? bs : e;
        size_t run = (size_t)(run_end - p);
        if (run > max - out) {
            size_t n = na_utf8_cut((const char *)p, run, max - out);
            memcpy(dst + out, p, n);
            out += n;
            break;
        }
        memcpy(dst + out, p, run);
        out += run;
        if (!bs) {
            break;
        }
        char u[4];
        size_t n = utf8_put(escape_value(bs, &p), u);
        if (n > max - out) {
            break;
        }
        memcpy(dst + out, u, n);
        out += n;
    }
    dst[out] = '\0';
    return out;
}

/* A new string of the text of @p s cut to @p max bytes, or NULL. */
static char *decode_new(const struct span *s, size_t max) {
    char *dst = malloc((s->dlen < max ? s->dlen : max) + 1);
    if (dst) {
        decode_into(s, dst, max);
    }
    return dst;
}

/* ---- member names and the duplicate check ---- */

/* Random per process, as jansson seeds its own tables: with a basis
 * known in advance, names that all share one probe chain cost nothing to
 * make (in FNV-1a the last bytes steer the low bits), and a record of them
 * takes n²/2 probes, seconds of CPU for one record. */
static uint32_t key_hash(const char *s, size_t len, uint32_t obj) {
    uint32_t h = 2166136261u ^ (uint32_t)na_hash_seed() ^ (obj * 0x9e3779b1u);
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    }
    /* The table takes the low bits, which in FNV-1a depend on the low bits
     * of each byte only: mix the high ones in. */
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static void key_put(struct key *tab, size_t cap, const struct key *k) {
    size_t i = k->hash & (cap - 1);
    while (tab[i].s) {
        i = (i + 1) & (cap - 1);
    }
    tab[i] = *k;
}

/* Remember name @p s of object @p obj; NA_ERR_PARSE when that object has
 * it already. */
static na_err_t key_add(struct reader *r, const char *s, size_t len, uint32_t obj,
                        const char *at) {
    struct key k = {s, (uint32_t)len, obj, key_hash(s, len, obj)};
    size_t i = k.hash & (r->keys_cap - 1);
    r->probes++;
    while (r->keys[i].s) {
        const struct key *o = &r->keys[i];
        if (o->hash == k.hash && o->obj == obj && o->len == k.len &&
            !memcmp(o->s, s, len)) {
            return fail(r, at, "duplicate object key");
        }
        i = (i + 1) & (r->keys_cap - 1);
        r->probes++;
    }
    if ((r->keys_cnt + 1) * 2 > r->keys_cap) {
        size_t cap = r->keys_cap * 2;
        struct key *tab = calloc(cap, sizeof(*tab));
        if (!tab) {
            return NA_ERR_NOMEM;
        }
        for (size_t j = 0; j < r->keys_cap; j++) {
            if (r->keys[j].s) {
                key_put(tab, cap, &r->keys[j]);
            }
        }
        if (r->keys != r->keys_inline) {
            free(r->keys);
        }
        r->keys = tab;
        r->keys_cap = cap;
    }
    key_put(r->keys, r->keys_cap, &k);
    r->keys_cnt++;
    return NA_OK;
}

/* Read the member name at r->p (a quote, checked by the caller) and the
 * colon after it; check it is new in object @p obj. *name and *len give
 * its text (the input itself unless it has escapes). */
static na_err_t read_name(struct reader *r, uint32_t obj, const char **name,
                          size_t *len) {
    const char *at = r->p;
    struct span s;
    na_err_t err = scan_string(r, &s);
    if (err) {
        return err;
    }
    if (!s.esc) {
        *name = s.b;
    } else {
        if (r->names_cnt == r->names_cap) {
            size_t cap = r->names_cap ? r->names_cap * 2 : 8;
            char **n = realloc(r->names, cap * sizeof(*n));
            if (!n) {
                return NA_ERR_NOMEM;
            }
            r->names = n;
            r->names_cap = cap;
        }
        char *d = decode_new(&s, s.dlen);
        if (!d) {
            return NA_ERR_NOMEM;
        }
        r->names[r->names_cnt++] = d;
        *name = d;
    }
    *len = s.dlen;
    if ((err = key_add(r, *name, *len, obj, at))) {
        return err;
    }
    skip_ws(r);
    if (r->p == r->end) {
        return fail_end(r);
    }
    if (*r->p != ':') {
        return fail(r, r->p, "':' expected");
    }
    r->p++;
    skip_ws(r);
    return NA_OK;
}

/* ---- numbers, literals and values skipped ---- */

static bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Whether the real number @p b..e overflows a double as jansson sees it:
 * strtod() in the current locale (jansson swaps the '.' for the locale's
 * decimal point) gives HUGE_VAL with ERANGE. */
static na_err_t real_overflows(const char *b, size_t len, bool *overflow) {
    char local[64];
    char *buf = len < sizeof(local) ? local : malloc(len + 1);
    char point[4];
    if (!buf) {
        return NA_ERR_NOMEM;
    }
    memcpy(buf, b, len);
    buf[len] = '\0';
    snprintf(point, sizeof(point), "%#.0f", 1.0); /* "1." in the locale */
    char *dot = memchr(buf, '.', len);
    if (dot) {
        *dot = point[1];
    }
    errno = 0;
    double v = strtod(buf, NULL);
    *overflow = (v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE;
    if (buf != local) {
        free(buf);
    }
    return NA_OK;
}

/* Check the number at r->p (a '-' or a digit) and skip it. */
static na_err_t scan_number(struct reader *r) {
    const char *b = r->p;
    const char *p = b;
    const char *end = r->end;
    bool neg = false;
    bool real = false;

    if (*p == '-') {
        neg = true;
        p++;
    }
    const char *digits = p;
    if (p < end && *p == '0') {
        p++;
        if (p < end && is_digit(*p)) {
            return fail(r, p, "invalid token");
        }
    } else if (p < end && is_digit(*p)) {
        while (p < end && is_digit(*p)) {
            p++;
        }
    } else {
        return p < end ? fail(r, p, "invalid token") : fail_end(r);
    }
    size_t int_len = (size_t)(p - digits);
    if (p < end && *p == '.') {
        real = true;
        p++;
        if (p == end || !is_digit(*p)) {
            return p < end ? fail(r, p, "invalid token") : fail_end(r);
        }
        while (p < end && is_digit(*p)) {
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        real = true;
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p == end || !is_digit(*p)) {
            return p < end ? fail(r, p, "invalid token") : fail_end(r);
        }
        while (p < end && is_digit(*p)) {
            p++;
        }
    }
    if (!real) {
        /* json_int_t is a signed 64-bit integer */
        const char *lim = neg ? "9223372036854775808" : "9223372036854775807";
        if (int_len > 19 || (int_len == 19 && memcmp(digits, lim, 19) > 0)) {
            return fail(r, b, neg ? "too big negative integer" : "too big integer");
        }
    } else {
        bool overflow;
        if (real_overflows(b, (size_t)(p - b), &overflow)) {
            return NA_ERR_NOMEM;
        }
        if (overflow) {
            return fail(r, b, "real number overflow");
        }
    }
    r->p = p;
    skip_token_nul(r);
    return NA_OK;
}

enum literal { L_TRUE, L_FALSE, L_NULL };

/* Check the literal at r->p and skip it: jansson reads the whole run of
 * letters, which must be true, false or null. */
static na_err_t scan_literal(struct reader *r, enum literal *lit) {
    const char *b = r->p;
    const char *p = b;
    while (p < r->end && is_alpha(*p)) {
        p++;
    }
    size_t n = (size_t)(p - b);
    if (n == 4 && !memcmp(b, "true", 4)) {
        *lit = L_TRUE;
    } else if (n == 4 && !memcmp(b, "null", 4)) {
        *lit = L_NULL;
    } else if (n == 5 && !memcmp(b, "false", 5)) {
        *lit = L_FALSE;
    } else {
        return fail(r, b, "invalid token");
    }
    r->p = p;
    skip_token_nul(r);
    return NA_OK;
}

static na_err_t skip_value(struct reader *r, unsigned depth);

/* After a member or element: a comma (true in *more) or @p close. */
static na_err_t after_item(struct reader *r, char close, bool *more) {
    skip_ws(r);
    if (r->p == r->end) {
        return fail_end(r);
    }
    if (*r->p == ',') {
        r->p++;
        skip_ws(r);
        *more = true;
        return NA_OK;
    }
    if (*r->p == close) {
        r->p++;
        *more = false;
        return NA_OK;
    }
    return fail(r, r->p, close == '}' ? "'}' expected" : "']' expected");
}

/* The object at r->p ('{'), a value at @p depth: checked and skipped. */
static na_err_t skip_object(struct reader *r, unsigned depth) {
    uint32_t obj = ++r->objects;
    bool more = true;
    na_err_t err;
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return NA_OK;
    }
    while (more) {
        const char *name;
        size_t len;
        if (r->p == r->end) {
            return fail_end(r);
        }
        if (*r->p != '"') {
            return fail(r, r->p, "string or '}' expected");
        }
        if ((err = read_name(r, obj, &name, &len)) || (err = skip_value(r, depth + 1)) ||
            (err = after_item(r, '}', &more))) {
            return err;
        }
    }
    return NA_OK;
}

/* The array at r->p ('['), a value at @p depth: checked and skipped. */
static na_err_t skip_array(struct reader *r, unsigned depth) {
    bool more = true;
    na_err_t err;
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        return NA_OK;
    }
    while (more) {
        if ((err = skip_value(r, depth + 1)) || (err = after_item(r, ']', &more))) {
            return err;
        }
    }
    return NA_OK;
}

/* Check and skip the value at r->p, at @p depth. */
static na_err_t skip_value(struct reader *r, unsigned depth) {
    struct span s;
    enum literal lit;
    if (depth > MAX_DEPTH) {
        return fail(r, r->p, "maximum parsing depth reached");
    }
    if (r->p == r->end) {
        return fail_end(r);
    }
    switch (*r->p) {
    case '{':
        return skip_object(r, depth);
    case '[':
        return skip_array(r, depth);
    case '"':
        return scan_string(r, &s);
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        return scan_number(r);
    default:
        if (is_alpha(*r->p)) {
            return scan_literal(r, &lit);
        }
        return fail(r, r->p, "invalid token");
    }
}

/* ---- the article's members ---- */

/* Whether the value at r->p is null; if so, skip it. Anything else is left
 * for the caller. */
static bool take_null(struct reader *r) {
    const char *p = r->p;
    if (r->end - p >= 4 && !memcmp(p, "null", 4) && !(r->end - p > 4 && is_alpha(p[4]))) {
        r->p += 4;
        skip_token_nul(r);
        return true;
    }
    return false;
}

/* A string member: into the article (or @p f's buffer for schema and id).
 * A value of another type is checked, skipped and marked. */
static na_err_t read_str(struct reader *r, enum field fld, struct na_article *a,
                         struct found *f, unsigned depth) {
    const struct field_def *def = &fields[fld];
    struct span s;
    na_err_t err;
    if (take_null(r)) {
        return NA_OK;
    }
    if (r->p == r->end || *r->p != '"') {
        f->st[fld] = ST_BAD_TYPE;
        return skip_value(r, depth);
    }
    if ((err = scan_string(r, &s))) {
        return err;
    }
    f->st[fld] = ST_OK;
    if (def->kind == K_STR_LOCAL) {
        decode_into(&s, fld == F_SCHEMA ? f->schema : f->id, def->max);
        return NA_OK;
    }
    char **out = (char **)((char *)a + def->off);
    *out = decode_new(&s, def->max);
    return *out ? NA_OK : NA_ERR_NOMEM;
}

/* A list member (authors, categories): its strings added as
 * na_article_list_add() adds them; an item that is no string marks it. */
static na_err_t read_list(struct reader *r, enum field fld, struct na_article *a,
                          struct found *f, unsigned depth) {
    const struct field_def *def = &fields[fld];
    char ***list = (char ***)((char *)a + def->off);
    size_t *cnt = (size_t *)((char *)a + def->cnt_off);
    bool more = true;
    na_err_t err;
    char local[256];

    if (take_null(r)) {
        return NA_OK;
    }
    if (r->p == r->end || *r->p != '[') {
        f->st[fld] = ST_BAD_TYPE;
        return skip_value(r, depth);
    }
    f->st[fld] = ST_OK;
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        return NA_OK;
    }
    for (size_t i = 0; more; i++) {
        if (r->p < r->end && *r->p == '"') {
            struct span s;
            if ((err = scan_string(r, &s))) {
                return err;
            }
            /* Past the cap or after a bad item nothing is added. */
            if (f->st[fld] == ST_OK && *cnt < def->max && s.dlen) {
                char *item = s.dlen < sizeof(local) ? local : malloc(s.dlen + 1);
                if (!item) {
                    return NA_ERR_NOMEM;
                }
                decode_into(&s, item, s.dlen);
                err = na_article_list_add(list, cnt, def->max, item);
                if (item != local) {
                    free(item);
                }
                if (err) {
                    return err;
                }
            }
        } else {
            if (f->st[fld] == ST_OK) {
                f->st[fld] = ST_BAD_ITEM;
                f->bad_item[fld] = i;
            }
            if ((err = skip_value(r, depth + 1))) {
                return err;
            }
        }
        if ((err = after_item(r, ']', &more))) {
            return err;
        }
    }
    return NA_OK;
}

/* A time member (RFC 3339 string). */
static na_err_t read_time(struct reader *r, enum field fld, struct na_article *a,
                          struct found *f, unsigned depth) {
    int64_t *out = (int64_t *)((char *)a + fields[fld].off);
    struct span s;
    char local[64];
    na_err_t err;

    if (take_null(r)) {
        return NA_OK;
    }
    if (r->p == r->end || *r->p != '"') {
        f->st[fld] = ST_BAD_TIME;
        return skip_value(r, depth);
    }
    if ((err = scan_string(r, &s))) {
        return err;
    }
    char *text = s.dlen < sizeof(local) ? local : malloc(s.dlen + 1);
    if (!text) {
        return NA_ERR_NOMEM;
    }
    decode_into(&s, text, s.dlen);
    f->st[fld] = na_time_parse_rfc3339(text, out) ? ST_BAD_TIME : ST_OK;
    if (text != local) {
        free(text);
    }
    return NA_OK;
}

/* Which member @p name is in the article (top level) or in its source;
 * F_COUNT for none. */
static enum field lookup(const char *name, size_t len, bool in_source) {
    enum field first = in_source ? F_SOURCE_ID : F_SCHEMA;
    enum field last = in_source ? F_SOURCE_FEED_URL : F_SOURCE;
    for (enum field i = first; i <= last; i++) {
        if (fields[i].key_len == len && !memcmp(fields[i].key, name, len)) {
            return i;
        }
    }
    return F_COUNT;
}

static na_err_t read_member(struct reader *r, enum field fld, struct na_article *a,
                            struct found *f, unsigned depth);

/* An object of known members (the article at depth 1, its source at 2). */
static na_err_t read_object(struct reader *r, bool in_source, struct na_article *a,
                            struct found *f, unsigned depth) {
    uint32_t obj = ++r->objects;
    bool more = true;
    na_err_t err;
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return NA_OK;
    }
    while (more) {
        const char *name;
        size_t len;
        if (r->p == r->end) {
            return fail_end(r);
        }
        if (*r->p != '"') {
            return fail(r, r->p, "string or '}' expected");
        }
        if ((err = read_name(r, obj, &name, &len))) {
            return err;
        }
        /* Known members sit at depth 2 or 3: only skip_value() can go
         * deep enough to meet MAX_DEPTH. */
        enum field fld = lookup(name, len, in_source);
        err = fld == F_COUNT ? skip_value(r, depth + 1)
                             : read_member(r, fld, a, f, depth + 1);
        if (err || (err = after_item(r, '}', &more))) {
            return err;
        }
    }
    return NA_OK;
}

static na_err_t read_member(struct reader *r, enum field fld, struct na_article *a,
                            struct found *f, unsigned depth) {
    switch (fields[fld].kind) {
    case K_STR_LOCAL:
    case K_STR:
        return read_str(r, fld, a, f, depth);
    case K_LIST:
        return read_list(r, fld, a, f, depth);
    case K_TIME:
        return read_time(r, fld, a, f, depth);
    case K_OBJECT:
        break;
    }
    if (take_null(r)) {
        return NA_OK;
    }
    if (r->p == r->end || *r->p != '{') {
        f->st[fld] = ST_BAD_TYPE;
        return skip_value(r, depth);
    }
    f->st[fld] = ST_OK;
    return read_object(r, true, a, f, depth);
}

/* The whole document. *is_object tells whether the top level was an
 * object (the article) rather than an array. */
static na_err_t read_document(struct reader *r, struct na_article *a, struct found *f,
                              bool *is_object) {
    na_err_t err;
    skip_ws(r);
    if (r->p == r->end) {
        return fail(r, r->p, "'[' or '{' expected");
    }
    if (*r->p == '{') {
        *is_object = true;
        err = read_object(r, false, a, f, 1);
    } else if (*r->p == '[') {
        *is_object = false;
        err = skip_array(r, 1);
    } else {
        return fail(r, r->p, "'[' or '{' expected");
    }
    if (err) {
        return err;
    }
    skip_ws(r);
    if (r->p != r->end) {
        return fail(r, r->p, "end of file expected");
    }
    return NA_OK;
}

/* The checks of a well-formed document, in the jansson decoder's order. */
static na_err_t check_found(const struct found *f, struct na_article *a, char *errstr,
                            size_t errstr_size) {
    for (enum field i = 0; i < F_COUNT; i++) {
        const char *key = fields[i].key;
        switch (f->st[i]) {
        case ST_ABSENT:
        case ST_OK:
            break;
        case ST_BAD_TYPE:
            snprintf(errstr, errstr_size, "field \"%s\" is not %s", key,
                     fields[i].kind == K_LIST     ? "an array"
                     : fields[i].kind == K_OBJECT ? "an object"
                                                  : "a string");
            return NA_ERR_INVALID;
        case ST_BAD_ITEM:
            snprintf(errstr, errstr_size, "field \"%s\"[%zu] is not a string", key,
                     f->bad_item[i]);
            return NA_ERR_INVALID;
        case ST_BAD_TIME:
            snprintf(errstr, errstr_size, "field \"%s\" is not an RFC 3339 time", key);
            return NA_ERR_INVALID;
        }
        if (i == F_SCHEMA && f->st[i] == ST_OK && strcmp(f->schema, NA_ARTICLE_SCHEMA)) {
            snprintf(errstr, errstr_size, "unsupported schema \"%.64s\"", f->schema);
            return NA_ERR_UNSUPPORTED;
        }
        if (i == F_ID) {
            if (f->st[i] != ST_OK || strlen(f->id) != NA_SHA256_HEX_LEN ||
                strspn(f->id, "0123456789abcdef") != NA_SHA256_HEX_LEN) {
                snprintf(errstr, errstr_size,
                         "field \"id\" is missing or not 64 hex digits");
                return NA_ERR_INVALID;
            }
            memcpy(a->id, f->id, NA_SHA256_HEX_LEN + 1);
        }
    }
    return NA_OK;
}

/* Line (from 1) and character on it (from 1) of @p at, as jansson counts:
 * a character is a byte that does not continue a UTF-8 sequence. */
static void where(const char *start, const char *at, int *line, int *column) {
    *line = 1;
    *column = 1;
    for (const char *p = start; p < at; p++) {
        if (*p == '\n') {
            (*line)++;
            *column = 1;
        } else if (((unsigned char)*p & 0xc0) != 0x80) {
            (*column)++;
        }
    }
}

na_err_t na_article_from_json_probes(const char *buf, size_t len, struct na_article *a,
                                     char *errstr, size_t errstr_size, size_t *probes) {
    struct reader r;
    struct found f;
    bool is_object = false;
    na_err_t err;

    *probes = 0;
    if (len > NA_MAX_ARTICLE_BYTES) {
        snprintf(errstr, errstr_size, "article of %zu bytes exceeds %u", len,
                 NA_MAX_ARTICLE_BYTES);
        return NA_ERR_TOO_LARGE;
    }
    if (!buf) {
        snprintf(errstr, errstr_size, "JSON error at line 1 column 1: no input");
        return NA_ERR_PARSE;
    }
    memset(&r, 0, sizeof(r));
    memset(&f, 0, sizeof(f));
    r.start = r.p = buf;
    r.end = buf + len;
    r.keys = r.keys_inline;
    r.keys_cap = KEYS_INLINE;

    err = read_document(&r, a, &f, &is_object);
    *probes = r.probes;
    if (err == NA_ERR_PARSE) {
        int line, column;
        where(r.start, r.err_at, &line, &column);
        snprintf(errstr, errstr_size, "JSON error at line %d column %d: %s", line, column,
                 r.err);
    } else if (!err && !is_object) {
        snprintf(errstr, errstr_size, "article is not a JSON object");
        err = NA_ERR_INVALID;
    } else if (!err) {
        err = check_found(&f, a, errstr, errstr_size);
    }
    if (err) {
        na_article_cleanup(a);
    }
    if (r.keys != r.keys_inline) {
        free(r.keys);
    }
    for (size_t i = 0; i < r.names_cnt; i++) {
        free(r.names[i]);
    }
    free(r.names);
    return err;
}

na_err_t na_article_from_json(const char *buf, size_t len, struct na_article *a,
                              char *errstr, size_t errstr_size) {
    size_t probes;
    return na_article_from_json_probes(buf, len, a, errstr, errstr_size, &probes);
}
