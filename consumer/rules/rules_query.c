/*
 * The query language of a topic (docs/rules.md) compiled into the flat
 * arrays of struct na_rbuild: a recursive-descent parser over a small
 * lexer, and the term dictionary (an open-addressing hash table of exact
 * words and prefixes) that the matcher looks every article token up in.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_query.h"

/* ---- growable arrays ---- */

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) {
        return 0;
    }
    size_t cap2 = *cap ? *cap : 16;
    while (cap2 < need) {
        if (cap2 > SIZE_MAX / 2 / elem) {
            return -1;
        }
        cap2 *= 2;
    }
    void *q = realloc(*p, cap2 * elem);
    if (!q) {
        return -1;
    }
    *p = q;
    *cap = cap2;
    return 0;
}

#define GROW(arr, cnt, cap, n) grow((void **)&(arr), &(cap), (cnt) + (n), sizeof(*(arr)))

void na_rbuild_cleanup(struct na_rbuild *b) {
    if (!b) {
        return;
    }
    free(b->nodes);
    free(b->kids);
    free(b->atoms);
    free(b->forms);
    free(b->elems);
    free(b->keys);
    free(b->slots);
    free(b->strs);
    memset(b, 0, sizeof(*b));
}

/* @returns the offset of a copy of s in b->strs, or UINT32_MAX. */
static uint32_t str_add(struct na_rbuild *b, const char *s, size_t len) {
    if (b->strs_len + len > UINT32_MAX - 1 ||
        GROW(b->strs, b->strs_len, b->strs_cap, len + 1)) {
        return UINT32_MAX;
    }
    uint32_t off = (uint32_t)b->strs_len;
    memcpy(b->strs + off, s, len);
    b->strs[off + len] = '\0';
    b->strs_len += len + 1;
    return off;
}

/* ---- the term dictionary ---- */

static uint32_t key_hash(const char *s, size_t len, int prefix) {
    char w[NA_RULES_QUICK_PAD] = {0};
    memcpy(w, s, len < NA_RULES_MAX_TERM_BYTES + 1 ? len : NA_RULES_MAX_TERM_BYTES + 1);
    return len <= NA_RULES_MAX_TERM_BYTES + 1 ? na_rules_key_hash(w, len, prefix) : 0;
}

uint32_t na_rules_key_find(const struct na_rbuild *b, const char *s, size_t len,
                           int prefix, uint32_t hash) {
    if (!b->slots_cnt) {
        return NA_RNONE;
    }
    size_t mask = b->slots_cnt - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        uint32_t k = b->slots[i];
        if (!k) {
            return NA_RNONE;
        }
        const struct na_rkey *key = &b->keys[k - 1];
        if (key->hash == hash && key->len == len && key->prefix == prefix &&
            !memcmp(b->strs + key->str_off, s, len)) {
            return k - 1;
        }
    }
}

static int slots_rehash(struct na_rbuild *b, size_t cnt) {
    uint32_t *slots = calloc(cnt, sizeof(*slots));
    if (!slots) {
        return -1;
    }
    for (size_t k = 0; k < b->keys_cnt; k++) {
        size_t i = b->keys[k].hash & (cnt - 1);
        while (slots[i]) {
            i = (i + 1) & (cnt - 1);
        }
        slots[i] = (uint32_t)(k + 1);
    }
    free(b->slots);
    b->slots = slots;
    b->slots_cnt = cnt;
    return 0;
}

uint32_t na_rules_key_add(struct na_rbuild *b, const char *s, size_t len, int prefix) {
    uint32_t hash = key_hash(s, len, prefix);
    uint32_t k = na_rules_key_find(b, s, len, prefix, hash);
    if (k != NA_RNONE) {
        return k;
    }
    if (b->keys_cnt >= UINT32_MAX - 1 || GROW(b->keys, b->keys_cnt, b->keys_cap, 1)) {
        return NA_RNONE;
    }
    if ((b->keys_cnt + 1) * 2 > b->slots_cnt &&
        slots_rehash(b, b->slots_cnt ? b->slots_cnt * 2 : 256)) {
        return NA_RNONE;
    }
    uint32_t off = str_add(b, s, len);
    if (off == UINT32_MAX) {
        return NA_RNONE;
    }
    struct na_rkey *key = &b->keys[b->keys_cnt];
    memset(key, 0, sizeof(*key));
    key->str_off = off;
    key->len = (uint16_t)len;
    key->prefix = (uint8_t)prefix;
    key->hash = hash;
    size_t i = hash & (b->slots_cnt - 1);
    while (b->slots[i]) {
        i = (i + 1) & (b->slots_cnt - 1);
    }
    b->slots[i] = (uint32_t)(b->keys_cnt + 1);
    if (prefix) {
        b->prefix_lens |= (uint64_t)1 << len;
    }
    return (uint32_t)b->keys_cnt++;
}

/* ---- lexer ---- */

enum qt {
    QT_EOF = 0,
    QT_LPAREN,
    QT_RPAREN,
    QT_AND,
    QT_OR,
    QT_NOT,
    QT_NEAR,
    QT_FIELD,
    QT_WORD,
    QT_PHRASE
};

struct qtok {
    enum qt type;
    size_t off;      /* where the token starts (for errors) */
    size_t text_off; /* WORD: the word; PHRASE: between the quotes */
    size_t text_len;
    unsigned near;  /* NEAR/n */
    uint8_t fields; /* FIELD */
    double weight;  /* ^w after a WORD, PHRASE or ')'; 1 when none */
};

struct qp {
    struct na_rbuild *b;
    const char *q;
    size_t len;
    size_t pos;
    struct qtok tok;
    uint8_t scope;
    unsigned depth;
    size_t nodes;
    size_t err_off;
    bool failed;
    bool oom;
    char *errstr;
    size_t errstr_size;
    struct na_rtoks toks;
};

static void fail(struct qp *p, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct qp *p, size_t off, const char *fmt, ...) {
    va_list ap;
    if (p->failed) {
        return;
    }
    p->failed = true;
    p->err_off = off;
    va_start(ap, fmt);
    vsnprintf(p->errstr, p->errstr_size, fmt, ap);
    va_end(ap);
}

static void fail_oom(struct qp *p) {
    if (!p->failed) {
        fail(p, 0, "out of memory");
    }
    p->oom = true;
}

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_word_stop(char c) {
    return is_space(c) || c == '(' || c == ')' || c == '"' || c == '^';
}

static bool word_is(const char *s, size_t len, const char *w) {
    return strlen(w) == len && !memcmp(s, w, len);
}

/* Read "^w" at p->pos, if there is one, into p->tok.weight. */
static void lex_weight(struct qp *p) {
    char buf[32];
    size_t start = p->pos;
    size_t n = 0;
    p->tok.weight = 1.0;
    if (p->pos >= p->len || p->q[p->pos] != '^') {
        return;
    }
    p->pos++;
    while (p->pos < p->len &&
           ((p->q[p->pos] >= '0' && p->q[p->pos] <= '9') || p->q[p->pos] == '.')) {
        if (n + 1 < sizeof(buf)) {
            buf[n++] = p->q[p->pos];
        }
        p->pos++;
    }
    buf[n] = '\0';
    char *end = NULL;
    errno = 0;
    double w = n ? strtod(buf, &end) : -1.0;
    if (!n || errno || !end || *end || !isfinite(w) || w < 0 || w > NA_RULES_MAX_WEIGHT ||
        (p->pos < p->len && !is_word_stop(p->q[p->pos]))) {
        fail(p, start, "bad weight after '^' (a number from 0 to %g)",
             NA_RULES_MAX_WEIGHT);
        return;
    }
    p->tok.weight = w;
}

static void lex(struct qp *p) {
    const char *q = p->q;
    memset(&p->tok, 0, sizeof(p->tok));
    p->tok.weight = 1.0;
    while (p->pos < p->len && is_space(q[p->pos])) {
        p->pos++;
    }
    p->tok.off = p->pos;
    if (p->pos >= p->len) {
        p->tok.type = QT_EOF;
        return;
    }
    char c = q[p->pos];
    if (c == '(') {
        p->tok.type = QT_LPAREN;
        p->pos++;
        return;
    }
    if (c == ')') {
        p->tok.type = QT_RPAREN;
        p->pos++;
        lex_weight(p);
        return;
    }
    if (c == '^') {
        fail(p, p->pos, "'^' must directly follow a term, phrase or ')'");
        return;
    }
    if (c == '"') {
        const char *close = memchr(q + p->pos + 1, '"', p->len - p->pos - 1);
        if (!close) {
            fail(p, p->pos, "unterminated phrase (missing '\"')");
            return;
        }
        p->tok.type = QT_PHRASE;
        p->tok.text_off = p->pos + 1;
        p->tok.text_len = (size_t)(close - (q + p->pos + 1));
        p->pos = (size_t)(close - q) + 1;
        lex_weight(p);
        return;
    }
    size_t start = p->pos;
    while (p->pos < p->len && !is_word_stop(q[p->pos])) {
        p->pos++;
    }
    const char *w = q + start;
    size_t wlen = p->pos - start;
    const char *colon = memchr(w, ':', wlen);
    if (colon) {
        size_t flen = (size_t)(colon - w);
        if (word_is(w, flen, "title")) {
            p->tok.fields = NA_RULES_F_TITLE;
        } else if (word_is(w, flen, "body")) {
            p->tok.fields = NA_RULES_F_BODY;
        } else {
            fail(p, start,
                 "unknown field \"%.*s\" (fields are title: and body:; "
                 "quote a phrase to search for a colon)",
                 (int)(flen > 40 ? 40 : flen), w);
            return;
        }
        p->tok.type = QT_FIELD;
        p->pos = start + flen + 1;
        if (p->pos >= p->len || is_space(q[p->pos])) {
            fail(p, start,
                 "a field scope must be followed directly by a term, phrase "
                 "or '('");
        }
        return;
    }
    if (word_is(w, wlen, "AND")) {
        p->tok.type = QT_AND;
        return;
    }
    if (word_is(w, wlen, "OR")) {
        p->tok.type = QT_OR;
        return;
    }
    if (word_is(w, wlen, "NOT")) {
        p->tok.type = QT_NOT;
        return;
    }
    if (wlen >= 4 && !memcmp(w, "NEAR", 4)) {
        long long n = 0;
        size_t i = 5;
        if (wlen < 6 || w[4] != '/') {
            fail(p, start, "NEAR needs a distance, as in NEAR/5");
            return;
        }
        for (; i < wlen && w[i] >= '0' && w[i] <= '9' && n <= NA_RULES_MAX_NEAR; i++) {
            n = n * 10 + (w[i] - '0');
        }
        if (i != wlen || n < 1 || n > NA_RULES_MAX_NEAR) {
            fail(p, start, "bad NEAR distance (NEAR/n with n from 1 to %u)",
                 NA_RULES_MAX_NEAR);
            return;
        }
        p->tok.type = QT_NEAR;
        p->tok.near = (unsigned)n;
        return;
    }
    if (word_is(w, wlen, "and") || word_is(w, wlen, "or") || word_is(w, wlen, "not") ||
        word_is(w, wlen, "near") || (wlen > 5 && !memcmp(w, "near/", 5))) {
        fail(p, start,
             "operators are upper-case: write %s, or quote \"%.*s\" to search "
             "for the word",
             wlen == 3 && w[0] == 'a' ? "AND"
             : wlen == 2              ? "OR"
             : wlen == 3              ? "NOT"
                                      : "NEAR/n",
             (int)(wlen > 8 ? 8 : wlen), w);
        return;
    }
    p->tok.type = QT_WORD;
    p->tok.text_off = start;
    p->tok.text_len = wlen;
    lex_weight(p);
}

/* ---- builders ---- */

static uint32_t node_add(struct qp *p, uint8_t kind, uint32_t a, uint32_t b, uint32_t c) {
    struct na_rbuild *bd = p->b;
    if (p->failed) {
        return NA_RNONE;
    }
    if (++p->nodes > NA_RULES_MAX_NODES) {
        fail(p, p->tok.off, "query has more than %u terms and operators",
             NA_RULES_MAX_NODES);
        return NA_RNONE;
    }
    if (GROW(bd->nodes, bd->nodes_cnt, bd->nodes_cap, 1)) {
        fail_oom(p);
        return NA_RNONE;
    }
    struct na_rnode *n = &bd->nodes[bd->nodes_cnt];
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->a = a;
    n->b = b;
    n->c = c;
    return (uint32_t)bd->nodes_cnt++;
}

/* Append ids as a contiguous run of kids; @returns its start. */
static uint32_t kids_add(struct qp *p, const uint32_t *ids, size_t cnt) {
    struct na_rbuild *b = p->b;
    if (GROW(b->kids, b->kids_cnt, b->kids_cap, cnt)) {
        fail_oom(p);
        return NA_RNONE;
    }
    uint32_t first = (uint32_t)b->kids_cnt;
    memcpy(b->kids + first, ids, cnt * sizeof(*ids));
    b->kids_cnt += cnt;
    return first;
}

struct idlist {
    uint32_t *v;
    size_t cnt;
    size_t cap;
};

static int idlist_push(struct qp *p, struct idlist *l, uint32_t id) {
    if (GROW(l->v, l->cnt, l->cap, 1)) {
        fail_oom(p);
        return -1;
    }
    l->v[l->cnt++] = id;
    return 0;
}

/* Add one element (key) to the current form. */
static int elem_add(struct qp *p, const char *s, size_t len, int prefix) {
    struct na_rbuild *b = p->b;
    uint32_t k = na_rules_key_add(b, s, len, prefix);
    if (k == NA_RNONE || GROW(b->elems, b->elems_cnt, b->elems_cap, 1)) {
        fail_oom(p);
        return -1;
    }
    b->elems[b->elems_cnt++] = k;
    return 0;
}

static int form_begin(struct qp *p) {
    struct na_rbuild *b = p->b;
    if (GROW(b->forms, b->forms_cnt, b->forms_cap, 1)) {
        fail_oom(p);
        return -1;
    }
    b->forms[b->forms_cnt].elem_first = (uint32_t)b->elems_cnt;
    b->forms[b->forms_cnt].elem_cnt = 0;
    b->forms_cnt++;
    return 0;
}

static void form_end(struct qp *p) {
    struct na_rform *f = &p->b->forms[p->b->forms_cnt - 1];
    f->elem_cnt = (uint32_t)(p->b->elems_cnt - f->elem_first);
}

/* Tokenise one word of a query into p->toks (cleared first). */
static int word_tokens(struct qp *p, const char *w, size_t len, size_t off) {
    p->toks.cnt = 0;
    p->toks.text_len = 0;
    if (na_rules_tokenize(w, len, &p->toks)) {
        fail_oom(p);
        return -1;
    }
    for (size_t i = 0; i < p->toks.cnt; i++) {
        if (p->toks.v[i].truncated) {
            fail(p, off, "term longer than %u bytes", NA_RULES_MAX_TERM_BYTES);
            return -1;
        }
    }
    return 0;
}

/* Add the stemmed parts (not joined tokens) of p->toks as elements. */
static int parts_add(struct qp *p, size_t off, size_t *words) {
    char stem[NA_RULES_MAX_TERM_BYTES + 2];
    for (size_t i = 0; i < p->toks.cnt; i++) {
        const struct na_rtok *t = &p->toks.v[i];
        if (t->pos != t->pos_end) {
            continue;
        }
        if (++*words > NA_RULES_MAX_PHRASE_WORDS) {
            fail(p, off, "phrase of more than %u words", NA_RULES_MAX_PHRASE_WORDS);
            return -1;
        }
        size_t n = na_rtok_stem(&p->toks, t, stem);
        if (elem_add(p, stem, n, 0)) {
            return -1;
        }
    }
    return 0;
}

/* A prefix element from "word*" (star already removed). */
static int prefix_add(struct qp *p, const char *w, size_t len, size_t off) {
    if (word_tokens(p, w, len, off)) {
        return -1;
    }
    if (p->toks.cnt != 1) {
        fail(p, off, "a '*' prefix must be one word of letters and digits");
        return -1;
    }
    const struct na_rtok *t = &p->toks.v[0];
    if (t->fold_len < NA_RULES_MIN_PREFIX || t->fold_len >= 64) {
        fail(p, off, "a prefix before '*' needs %u to 63 letters", NA_RULES_MIN_PREFIX);
        return -1;
    }
    return elem_add(p, p->toks.text + t->fold_off, t->fold_len, 1);
}

static uint32_t atom_begin(struct qp *p, size_t text_off, size_t text_len) {
    struct na_rbuild *b = p->b;
    if (GROW(b->atoms, b->atoms_cnt, b->atoms_cap, 1)) {
        fail_oom(p);
        return NA_RNONE;
    }
    uint32_t off = str_add(b, p->q + text_off, text_len);
    if (off == UINT32_MAX) {
        fail_oom(p);
        return NA_RNONE;
    }
    struct na_ratom *a = &b->atoms[b->atoms_cnt];
    memset(a, 0, sizeof(*a));
    a->text_off = off;
    a->text_len = (uint32_t)text_len;
    a->form_first = (uint32_t)b->forms_cnt;
    a->weight = p->tok.weight;
    a->fields = p->scope;
    return (uint32_t)b->atoms_cnt++;
}

static void atom_end(struct qp *p, uint32_t atom) {
    struct na_ratom *a = &p->b->atoms[atom];
    a->form_cnt = (uint32_t)(p->b->forms_cnt - a->form_first);
}

static uint32_t parse_word(struct qp *p) {
    const char *w = p->q + p->tok.text_off;
    size_t len = p->tok.text_len;
    size_t off = p->tok.text_off;
    const char *star = memchr(w, '*', len);
    uint32_t atom = atom_begin(p, off, len);
    if (atom == NA_RNONE) {
        return NA_RNONE;
    }
    if (star) {
        if (star != w + len - 1) {
            fail(p, off + (size_t)(star - w), "'*' is allowed only at the end of a word");
            return NA_RNONE;
        }
        if (form_begin(p) || prefix_add(p, w, len - 1, off)) {
            return NA_RNONE;
        }
        form_end(p);
    } else {
        size_t words = 0;
        if (word_tokens(p, w, len, off)) {
            return NA_RNONE;
        }
        if (!p->toks.cnt) {
            fail(p, off, "term \"%.*s\" has no letters or digits",
                 (int)(len > 40 ? 40 : len), w);
            return NA_RNONE;
        }
        if (form_begin(p) || parts_add(p, off, &words)) {
            return NA_RNONE;
        }
        form_end(p);
        /* "dual-use": also the joined word "dualuse" */
        const struct na_rtok *last = &p->toks.v[p->toks.cnt - 1];
        if (last->pos != last->pos_end && last->pos == 0 &&
            last->pos_end == p->toks.v[p->toks.cnt - 2].pos) {
            char stem[NA_RULES_MAX_TERM_BYTES + 2];
            size_t n = na_rtok_stem(&p->toks, last, stem);
            if (form_begin(p) || elem_add(p, stem, n, 0)) {
                return NA_RNONE;
            }
            form_end(p);
        }
    }
    atom_end(p, atom);
    return node_add(p, NA_RNODE_ATOM, atom, 0, 0);
}

static uint32_t parse_phrase(struct qp *p) {
    const char *s = p->q + p->tok.text_off;
    size_t len = p->tok.text_len;
    size_t words = 0;
    size_t i = 0;
    uint32_t atom = atom_begin(p, p->tok.text_off, len);
    if (atom == NA_RNONE || form_begin(p)) {
        return NA_RNONE;
    }
    while (i < len) {
        while (i < len && is_space(s[i])) {
            i++;
        }
        size_t start = i;
        while (i < len && !is_space(s[i])) {
            i++;
        }
        if (i == start) {
            break;
        }
        const char *w = s + start;
        size_t wlen = i - start;
        size_t off = p->tok.text_off + start;
        const char *star = memchr(w, '*', wlen);
        if (star && star != w + wlen - 1) {
            fail(p, off + (size_t)(star - w), "'*' is allowed only at the end of a word");
            return NA_RNONE;
        }
        if (star) {
            if (++words > NA_RULES_MAX_PHRASE_WORDS) {
                fail(p, off, "phrase of more than %u words", NA_RULES_MAX_PHRASE_WORDS);
                return NA_RNONE;
            }
            if (prefix_add(p, w, wlen - 1, off)) {
                return NA_RNONE;
            }
        } else if (word_tokens(p, w, wlen, off) || parts_add(p, off, &words)) {
            return NA_RNONE;
        }
    }
    if (!words) {
        fail(p, p->tok.off, "empty phrase");
        return NA_RNONE;
    }
    form_end(p);
    atom_end(p, atom);
    return node_add(p, NA_RNODE_ATOM, atom, 0, 0);
}

static uint32_t parse_or(struct qp *p);

static uint32_t parse_primary(struct qp *p) {
    uint8_t saved_scope = p->scope;
    uint32_t n = NA_RNONE;
    if (p->failed) {
        return NA_RNONE;
    }
    if (p->tok.type == QT_FIELD) {
        if (p->scope != NA_RULES_F_ALL && p->scope != p->tok.fields) {
            fail(p, p->tok.off, "field scope inside a different field scope");
            return NA_RNONE;
        }
        p->scope = p->tok.fields;
        size_t off = p->tok.off;
        lex(p);
        if (p->failed) {
            return NA_RNONE;
        }
        if (p->tok.type != QT_LPAREN && p->tok.type != QT_WORD &&
            p->tok.type != QT_PHRASE) {
            fail(p, off, "a field scope must be followed by a term, phrase or '('");
            return NA_RNONE;
        }
    }
    switch (p->tok.type) {
    case QT_LPAREN: {
        size_t off = p->tok.off;
        size_t atoms_before = p->b->atoms_cnt;
        if (++p->depth > NA_RULES_MAX_DEPTH) {
            fail(p, off, "parentheses and NOT nested deeper than %u", NA_RULES_MAX_DEPTH);
            return NA_RNONE;
        }
        lex(p);
        if (p->tok.type == QT_RPAREN && !p->failed) {
            fail(p, off, "empty parentheses");
            return NA_RNONE;
        }
        n = parse_or(p);
        if (p->failed) {
            return NA_RNONE;
        }
        if (p->tok.type != QT_RPAREN) {
            fail(p, off, "'(' is never closed");
            return NA_RNONE;
        }
        p->depth--;
        for (size_t i = atoms_before; i < p->b->atoms_cnt; i++) {
            p->b->atoms[i].weight *= p->tok.weight;
        }
        break;
    }
    case QT_WORD:
        n = parse_word(p);
        break;
    case QT_PHRASE:
        n = parse_phrase(p);
        break;
    case QT_EOF:
        fail(p, p->tok.off, "expected a term, phrase or '(' at the end of the query");
        return NA_RNONE;
    default:
        fail(p, p->tok.off, "expected a term, phrase or '(' but found %s",
             p->tok.type == QT_RPAREN ? "')'"
             : p->tok.type == QT_NEAR ? "NEAR"
             : p->tok.type == QT_AND  ? "AND"
             : p->tok.type == QT_OR   ? "OR"
                                      : "NOT");
        return NA_RNONE;
    }
    p->scope = saved_scope;
    if (!p->failed) {
        lex(p);
    }
    return p->failed ? NA_RNONE : n;
}

/* An operand of NEAR: an atom, or an OR of atoms. Collects its atoms. */
static int near_operand(struct qp *p, uint32_t n, size_t off, struct idlist *atoms) {
    const struct na_rnode *node = &p->b->nodes[n];
    if (node->kind == NA_RNODE_ATOM) {
        return idlist_push(p, atoms, node->a);
    }
    if (node->kind == NA_RNODE_OR) {
        for (uint32_t i = 0; i < node->b; i++) {
            const struct na_rnode *kid = &p->b->nodes[p->b->kids[node->a + i]];
            if (kid->kind != NA_RNODE_ATOM) {
                break;
            }
            if (idlist_push(p, atoms, kid->a)) {
                return -1;
            }
            if (i + 1 == node->b) {
                return 0;
            }
        }
    }
    fail(p, off, "NEAR works between terms, phrases and ( .. OR .. ) groups of them");
    return -1;
}

static uint32_t parse_near(struct qp *p) {
    size_t off = p->tok.off;
    uint32_t left = parse_primary(p);
    struct idlist atoms = {0};
    uint32_t n = left;
    if (p->failed || p->tok.type != QT_NEAR) {
        return n;
    }
    unsigned dist = p->tok.near;
    lex(p);
    size_t roff = p->tok.off;
    uint32_t right = parse_primary(p);
    size_t lcnt;
    if (p->failed || near_operand(p, left, off, &atoms)) {
        goto out;
    }
    lcnt = atoms.cnt;
    if (near_operand(p, right, roff, &atoms)) {
        goto out;
    }
    if (p->tok.type == QT_NEAR) {
        fail(p, p->tok.off, "NEAR joins two operands; combine more with AND");
        goto out;
    }
    uint32_t first = kids_add(p, atoms.v, atoms.cnt);
    if (first == NA_RNONE) {
        goto out;
    }
    n = node_add(p, NA_RNODE_NEAR, first, (uint32_t)lcnt, (uint32_t)(atoms.cnt - lcnt));
    if (n != NA_RNONE) {
        p->b->nodes[n].near = (uint16_t)dist;
    }
out:
    free(atoms.v);
    return p->failed ? NA_RNONE : n;
}

static uint32_t parse_unary(struct qp *p) {
    if (p->tok.type != QT_NOT) {
        return parse_near(p);
    }
    size_t off = p->tok.off;
    if (++p->depth > NA_RULES_MAX_DEPTH) {
        fail(p, off, "parentheses and NOT nested deeper than %u", NA_RULES_MAX_DEPTH);
        return NA_RNONE;
    }
    lex(p);
    if (p->failed) {
        return NA_RNONE;
    }
    if (p->tok.type == QT_EOF || p->tok.type == QT_RPAREN || p->tok.type == QT_OR ||
        p->tok.type == QT_AND) {
        fail(p, off, "NOT needs an operand");
        return NA_RNONE;
    }
    uint32_t kid = parse_unary(p);
    p->depth--;
    if (p->failed) {
        return NA_RNONE;
    }
    return node_add(p, NA_RNODE_NOT, kid, 0, 0);
}

/* AND (written, or implied by adjacency) of unary operands. */
static uint32_t parse_and(struct qp *p) {
    struct idlist kids = {0};
    uint32_t n = parse_unary(p);
    if (p->failed || idlist_push(p, &kids, n)) {
        goto out;
    }
    while (p->tok.type != QT_EOF && p->tok.type != QT_OR && p->tok.type != QT_RPAREN) {
        if (p->tok.type == QT_AND) {
            size_t off = p->tok.off;
            lex(p);
            if (p->failed) {
                goto out;
            }
            if (p->tok.type == QT_EOF || p->tok.type == QT_OR ||
                p->tok.type == QT_RPAREN || p->tok.type == QT_AND) {
                fail(p, off, "AND needs an operand on each side");
                goto out;
            }
        }
        n = parse_unary(p);
        if (p->failed || idlist_push(p, &kids, n)) {
            goto out;
        }
    }
    if (kids.cnt > 1) {
        uint32_t first = kids_add(p, kids.v, kids.cnt);
        if (first != NA_RNONE) {
            n = node_add(p, NA_RNODE_AND, first, (uint32_t)kids.cnt, 0);
        }
    }
out:
    free(kids.v);
    return p->failed ? NA_RNONE : n;
}

/* Same words after folding, same fields? */
static bool atoms_same(const struct na_rbuild *b, uint32_t x, uint32_t y) {
    const struct na_ratom *ax = &b->atoms[x];
    const struct na_ratom *ay = &b->atoms[y];
    if (ax->form_cnt != ay->form_cnt || ax->fields != ay->fields) {
        return false;
    }
    for (uint32_t f = 0; f < ax->form_cnt; f++) {
        const struct na_rform *fx = &b->forms[ax->form_first + f];
        const struct na_rform *fy = &b->forms[ay->form_first + f];
        if (fx->elem_cnt != fy->elem_cnt ||
            memcmp(b->elems + fx->elem_first, b->elems + fy->elem_first,
                   fx->elem_cnt * sizeof(*b->elems))) {
            return false;
        }
    }
    return true;
}

/* An OR of two terms that fold alike ("ban OR bans") would count the same
 * words twice in the score: refuse it. */
static void or_check_repeats(struct qp *p, const struct idlist *kids,
                             const struct idlist *offs) {
    const struct na_rbuild *b = p->b;
    for (size_t i = 0; i < kids->cnt; i++) {
        const struct na_rnode *x = &b->nodes[kids->v[i]];
        if (x->kind != NA_RNODE_ATOM) {
            continue;
        }
        for (size_t k = 0; k < i; k++) {
            const struct na_rnode *y = &b->nodes[kids->v[k]];
            if (y->kind == NA_RNODE_ATOM && atoms_same(b, x->a, y->a)) {
                const struct na_ratom *ax = &b->atoms[x->a];
                const struct na_ratom *ay = &b->atoms[y->a];
                fail(p, offs->v[i],
                     "\"%.*s\" repeats \"%.*s\" (the same words after folding); "
                     "keep one",
                     (int)(ax->text_len > 40 ? 40 : ax->text_len), b->strs + ax->text_off,
                     (int)(ay->text_len > 40 ? 40 : ay->text_len),
                     b->strs + ay->text_off);
                return;
            }
        }
    }
}

static uint32_t parse_or(struct qp *p) {
    struct idlist kids = {0};
    struct idlist offs = {0}; /* where each operand starts, for errors */
    uint32_t n = NA_RNONE;
    if (p->tok.type == QT_OR || p->tok.type == QT_AND) {
        fail(p, p->tok.off, "%s needs an operand on each side",
             p->tok.type == QT_OR ? "OR" : "AND");
        return NA_RNONE;
    }
    if (idlist_push(p, &offs, (uint32_t)p->tok.off)) {
        goto out;
    }
    n = parse_and(p);
    if (p->failed || idlist_push(p, &kids, n)) {
        goto out;
    }
    while (p->tok.type == QT_OR) {
        size_t off = p->tok.off;
        lex(p);
        if (p->failed) {
            goto out;
        }
        if (p->tok.type == QT_EOF || p->tok.type == QT_OR || p->tok.type == QT_RPAREN ||
            p->tok.type == QT_AND) {
            fail(p, off, "OR needs an operand on each side");
            goto out;
        }
        if (idlist_push(p, &offs, (uint32_t)p->tok.off)) {
            goto out;
        }
        n = parse_and(p);
        if (p->failed || idlist_push(p, &kids, n)) {
            goto out;
        }
    }
    if (kids.cnt > 1) {
        or_check_repeats(p, &kids, &offs);
        uint32_t first = p->failed ? NA_RNONE : kids_add(p, kids.v, kids.cnt);
        if (first != NA_RNONE) {
            n = node_add(p, NA_RNODE_OR, first, (uint32_t)kids.cnt, 0);
        }
    }
out:
    free(kids.v);
    free(offs.v);
    return p->failed ? NA_RNONE : n;
}

/* True when the node can only be true if some term outside NOT occurs. */
static bool needs_hit(const struct na_rbuild *b, uint32_t n) {
    const struct na_rnode *node = &b->nodes[n];
    switch (node->kind) {
    case NA_RNODE_ATOM:
    case NA_RNODE_NEAR:
        return true;
    case NA_RNODE_NOT:
        return false;
    case NA_RNODE_AND:
        for (uint32_t i = 0; i < node->b; i++) {
            if (needs_hit(b, b->kids[node->a + i])) {
                return true;
            }
        }
        return false;
    default:
        for (uint32_t i = 0; i < node->b; i++) {
            if (!needs_hit(b, b->kids[node->a + i])) {
                return false;
            }
        }
        return true;
    }
}

/* 1-based column in characters of byte offset off in s. */
static size_t column_of(const char *s, size_t len, size_t off) {
    size_t col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80) {
            col++;
        }
    }
    return col;
}

na_err_t na_rules_query_compile(struct na_rbuild *b, const char *const *clauses,
                                size_t clauses_cnt, bool positive, uint32_t *root,
                                size_t *err_clause, size_t *err_col, char *errstr,
                                size_t errstr_size) {
    struct qp p;
    struct idlist roots = {0};
    size_t total = 0;
    na_err_t err = NA_OK;

    memset(&p, 0, sizeof(p));
    p.b = b;
    p.errstr = errstr;
    p.errstr_size = errstr_size;
    na_rtoks_init(&p.toks);
    p.toks.split_decimals = true;
    *err_clause = 0;
    *err_col = 1;
    if (!clauses_cnt) {
        fail(&p, 0, "empty query");
        goto out;
    }
    for (size_t i = 0; i < clauses_cnt; i++) {
        total += strlen(clauses[i]);
    }
    if (total > NA_RULES_MAX_QUERY_BYTES) {
        fail(&p, 0, "query longer than %u bytes", NA_RULES_MAX_QUERY_BYTES);
        goto out;
    }
    for (size_t i = 0; i < clauses_cnt; i++) {
        *err_clause = i;
        p.q = clauses[i];
        p.len = strlen(clauses[i]);
        p.pos = 0;
        p.scope = NA_RULES_F_ALL;
        p.depth = 0;
        lex(&p);
        if (p.failed) {
            goto out;
        }
        if (p.tok.type == QT_EOF) {
            fail(&p, 0, "empty query");
            goto out;
        }
        uint32_t n = parse_or(&p);
        if (p.failed) {
            goto out;
        }
        if (p.tok.type != QT_EOF) {
            fail(&p, p.tok.off, "unexpected %s",
                 p.tok.type == QT_RPAREN ? "')'" : "text after the end of the query");
            goto out;
        }
        if (positive && !needs_hit(b, n)) {
            fail(&p, 0,
                 "the query can match without any of its terms (it needs a term "
                 "outside NOT)");
            goto out;
        }
        if (idlist_push(&p, &roots, n)) {
            goto out;
        }
    }
    if (roots.cnt == 1) {
        *root = roots.v[0];
    } else {
        uint32_t first = kids_add(&p, roots.v, roots.cnt);
        if (first != NA_RNONE) {
            *root = node_add(&p, NA_RNODE_OR, first, (uint32_t)roots.cnt, 0);
        }
    }
out:
    if (p.failed) {
        err = p.oom ? NA_ERR_NOMEM : NA_ERR_CONFIG;
        if (p.q) {
            *err_col = column_of(p.q, p.len, p.err_off);
        }
    }
    free(roots.v);
    na_rtoks_cleanup(&p.toks);
    return err;
}
