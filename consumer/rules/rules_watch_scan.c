/*
 * Watchlist topics: finding a list's names in a field (na_watch_scan()):
 * reading the field's words from the rules scanner's bitmaps (scan_fast())
 * or through na_rules_scan_words(), looking them up in the list's
 * dictionary, walking the trie from each that can start a name, and
 * recording the hits. See rules_watch.c for how a list is compiled and
 * scanned, rules_watch.h for what matches.
 */
#include "rules_watch.h"

#include <stdlib.h>
#include <string.h>

#include "rules_match.h"
#include "rules_query.h"
#include "rules_text.h"
#include "rules_watch_internal.h"

/* May folded word of quick hash h be in the dictionary? */
static inline bool bloom_has(const na_watch_t *w, uint64_t h) {
    uint64_t b = na_watch_bloom_bits(h);
    return (w->bloom[h & w->bloom_mask] & b) == b;
}

/* May the words of quick hashes h0 then h1 start a name of two or more words? */
static inline bool pair_has(const na_watch_t *w, uint64_t h0, uint64_t h1) {
    uint64_t k = na_watch_pair_key(h0, h1);
    return (w->pair[(k >> 34) & w->pair_mask] >> (k >> 58)) & 1u;
}

/* The scan's lookup: @returns the id of folded word s[0..len) (a
 * NA_RULES_QUICK_PAD buffer) of quick hash h, or NA_WNONE; *root set to the
 * trie node it starts. */
static inline uint32_t scan_find(const na_watch_t *w, const char *s, size_t len,
                                 uint64_t h, uint32_t *root, uint8_t *flags) {
    uint32_t hash = (uint32_t)(h >> 32);
    uint64_t w0, w1;
    memcpy(&w0, s, 8);
    memcpy(&w1, s + 8, 8);
    if (len < 8) {
        w0 &= ~(uint64_t)0 >> (8 * (8 - len));
        w1 = 0;
    } else if (len < 16) {
        w1 = len == 8 ? 0 : w1 & (~(uint64_t)0 >> (8 * (16 - len)));
    }
    for (size_t j = hash & w->stab_mask;; j = (j + 1) & w->stab_mask) {
        const struct na_wsslot *sl = &w->stab[j];
        if (!sl->id1) {
            return NA_WNONE;
        }
        if (sl->hash == hash && sl->len == len && sl->w[0] == w0 && sl->w[1] == w1 &&
            (len <= 16 ||
             !memcmp(w->pool + w->toks[sl->id1 - 1].off + 16, s + 16, len - 16))) {
            *root = sl->root;
            *flags = sl->flags;
            return sl->id1 - 1;
        }
    }
}

/* ---- scanning ---- */

/* A word of the field that the dictionary knows, or (a plain word that
 * the word filter passed, WREC_LAZY) may know: looked up by rec_resolve()
 * only where a name could start or go on there. */
struct wrec {
    uint64_t h; /* quick hash of a WREC_LAZY word */
    uint32_t tok;
    uint32_t root;  /* the trie node the word starts, or NA_WNONE */
    uint32_t flags; /* NA_WROOT_ENDS, NA_WROOT_KIDS, WREC_LAZY */
    uint32_t pos;
    uint32_t pos_end;
    uint32_t bstart;
    uint32_t bend;
};

#define WREC_LOCAL 256u
#define WREC_LAZY 0x80u /* not looked up yet: tok, root and flags unknown */

/* Look up lazy record r (a plain ASCII word of text). */
static void rec_resolve(const na_watch_t *w, const char *text, struct wrec *r) {
    if (!(r->flags & WREC_LAZY)) {
        return;
    }
    char buf[NA_RULES_QUICK_PAD];
    size_t n = r->bend - r->bstart;
    memset(buf, 0, 16); /* scan_find() reads 16 bytes (and masks them) */
    for (size_t k = 0; k < n; k++) {
        buf[k] = (char)(text[r->bstart + k] | 0x20);
    }
    uint32_t root = NA_WNONE;
    uint8_t flags = 0;
    r->tok = scan_find(w, buf, n, r->h, &root, &flags);
    r->root = root;
    r->flags = flags;
}

struct wscan {
    const na_watch_t *w;
    struct wrec *v;
    size_t cnt;
    size_t cap;
    bool oom;
    struct wrec local[WREC_LOCAL];
};

static bool rec_less(const struct wrec *a, const struct wrec *b) {
    return a->pos != b->pos ? a->pos < b->pos : a->pos_end < b->pos_end;
}

/* The walk from one start: the longest name whose case check passes. */
struct walk {
    const na_watch_t *w;
    const char *text;
    size_t len;
    struct wrec *r;
    size_t n;
    uint32_t path[NA_WATCH_MAX_WORDS];
    bool found;
    uint32_t best_node;
    uint32_t best_end_pos;
    uint32_t best_last; /* record index of the last word */
    uint32_t best_path[NA_WATCH_MAX_WORDS];
    unsigned best_depth;
};

/* Are a[0..n) and b[0..n) the same? Inline: the words compared are short
 * and most differ early ("The" against a listed "THE"). */
static inline bool same_bytes(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            return false;
        }
    }
    return true;
}

/* Does the text of the walked words equal pattern p's listed words? */
static bool case_ok(const struct walk *k, const struct na_wpat *p, unsigned depth) {
    if (!p->exact_cnt) {
        return true;
    }
    if (p->exact_cnt != depth) {
        return false;
    }
    for (unsigned i = 0; i < depth; i++) {
        const struct wrec *rec = &k->r[k->path[i]];
        const struct na_wspan *sp = &k->w->spans[p->exact_first + i];
        if (rec->bend - rec->bstart != sp->len ||
            !same_bytes(k->text + rec->bstart, k->w->pool + sp->off, sp->len)) {
            return false;
        }
    }
    const struct na_wspan *sfx = &k->w->spans[p->exact_first + depth];
    size_t end = k->r[k->path[depth - 1]].bend;
    return !sfx->len || (end + sfx->len <= k->len &&
                         !memcmp(k->text + end, k->w->pool + sfx->off, sfx->len));
}

static void dfs(struct walk *k, size_t i, uint32_t node, unsigned depth) {
    const na_watch_t *w = k->w;
    k->path[depth - 1] = (uint32_t)i;
    uint32_t e0 = w->end_first[node];
    uint32_t e1 = w->end_first[node + 1];
    if (e0 < e1 && (!k->found || k->r[i].pos_end > k->best_end_pos)) {
        for (uint32_t e = e0; e < e1; e++) {
            if (case_ok(k, &w->pats[w->ends[e]], depth)) {
                k->found = true;
                k->best_node = node;
                k->best_end_pos = k->r[i].pos_end;
                k->best_last = (uint32_t)i;
                k->best_depth = depth;
                memcpy(k->best_path, k->path, depth * sizeof(*k->path));
                break;
            }
        }
    }
    if (depth == NA_WATCH_MAX_WORDS) {
        return;
    }
    uint32_t next = k->r[i].pos_end + 1;
    for (size_t j = i + 1; j < k->n && k->r[j].pos <= next; j++) {
        if (k->r[j].pos != next) {
            continue;
        }
        rec_resolve(w, k->text, &k->r[j]);
        if (k->r[j].tok == NA_WNONE) {
            continue;
        }
        uint32_t child = na_watch_edge_find(w, node, k->r[j].tok);
        if (child != NA_WNONE) {
            dfs(k, j, child, depth + 1);
        }
    }
}

/* After a name ending at record i: the legal forms the text adds. @returns
 * the last record of the longest legal form that follows, or i. */
static size_t legal_tail(const na_watch_t *w, const char *text, struct wrec *r, size_t n,
                         size_t i) {
    for (int round = 0; round < 3; round++) {
        /* most names are followed by no word that starts a legal form */
        bool starts = false;
        uint32_t after = r[i].pos_end + 1;
        for (size_t j = i + 1; j < n && r[j].pos <= after && !starts; j++) {
            if (r[j].pos == after) {
                rec_resolve(w, text, &r[j]);
                starts = r[j].tok != NA_WNONE && w->toks[r[j].tok].legal;
            }
        }
        if (!starts) {
            break;
        }
        size_t best = i;
        for (size_t f = 0; f < NA_WATCH_LEGAL_CNT; f++) {
            size_t len = w->legal_len[f];
            size_t cur = i;
            size_t k = 0;
            for (; k < len; k++) {
                uint32_t want = w->legal_words[f * NA_WATCH_LEGAL_MAX_WORDS + k];
                uint32_t next = r[cur].pos_end + 1;
                size_t j = cur + 1;
                while (j < n && r[j].pos <= next) {
                    if (r[j].pos == next) {
                        rec_resolve(w, text, &r[j]);
                        if (r[j].tok == want) {
                            break;
                        }
                    }
                    j++;
                }
                if (j >= n || r[j].pos != next || r[j].tok != want) {
                    break;
                }
                cur = j;
            }
            if (len && k == len && r[cur].pos_end > r[best].pos_end) {
                best = cur;
            }
        }
        if (best == i) {
            break;
        }
        i = best;
    }
    return i;
}

static na_err_t hit_push(struct na_watch_hits *out, uint32_t pat, int field,
                         uint32_t bstart, uint32_t bend) {
    if (out->cnt >= NA_WATCH_MAX_HITS) {
        out->dropped++;
        return NA_OK;
    }
    struct na_watch_hit *h = na_watch_grow(out->v, &out->cap, out->cnt + 1, sizeof(*h));
    if (!h) {
        return NA_ERR_NOMEM;
    }
    out->v = h;
    h = &out->v[out->cnt++];
    h->pat = pat;
    h->bstart = bstart;
    h->bend = bend;
    h->field = (uint8_t)field;
    return NA_OK;
}

void na_watch_hits_init(struct na_watch_hits *h) {
    memset(h, 0, sizeof(*h));
}

void na_watch_hits_cleanup(struct na_watch_hits *h) {
    free(h->v);
    memset(h, 0, sizeof(*h));
}

/* The quick hash of the ASCII word p[0..len) lower-cased, as
 * na_rules_quick_hash() of its folded copy, reading the text in place
 * (8 bytes at a time when @p room says they are there). */
static inline uint64_t lc_hash(const unsigned char *p, size_t len, size_t room) {
    const uint64_t lc = 0x2020202020202020ull;
    uint64_t h = ((uint64_t)len << 1) * 0x9e3779b97f4a7c15ull;
    size_t i = 0;
    uint64_t v;
    if (room < ((len + 7) & ~(size_t)7)) {
        char buf[NA_RULES_QUICK_PAD] = {0};
        for (size_t k = 0; k < len; k++) {
            buf[k] = (char)(p[k] | 0x20);
        }
        return na_rules_quick_hash(buf, len, 0);
    }
    for (; i + 8 <= len; i += 8) {
        memcpy(&v, p + i, 8);
        v |= lc;
        h = (h ^ v) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    if (i < len) {
        memcpy(&v, p + i, 8);
        v = (v | lc) & (~(uint64_t)0 >> (8 * (8 - (len - i))));
        h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
    }
    return h ^ (h >> 29);
}

static void rec_push(struct wscan *ws, uint64_t h, uint32_t tok, uint32_t root,
                     uint8_t flags, uint32_t pos, uint32_t pos_end, uint32_t bstart,
                     uint32_t bend) {
    if (ws->cnt == ws->cap) {
        size_t cap2 = ws->cap * 2;
        struct wrec *v = ws->v == ws->local ? malloc(cap2 * sizeof(*v))
                                            : realloc(ws->v, cap2 * sizeof(*v));
        if (!v) {
            ws->oom = true;
            return;
        }
        if (ws->v == ws->local) {
            memcpy(v, ws->local, sizeof(ws->local));
        }
        ws->v = v;
        ws->cap = cap2;
    }
    struct wrec *r = &ws->v[ws->cnt++];
    r->h = h;
    r->tok = tok;
    r->root = root;
    r->flags = flags;
    r->pos = pos;
    r->pos_end = pos_end;
    r->bstart = bstart;
    r->bend = bend;
}

/* A plain ASCII word p[a..e) at position pos: recorded when the list knows it. */
static inline void plain_word(struct wscan *ws, const unsigned char *p, size_t len,
                              size_t a, size_t e, uint32_t pos) {
    const na_watch_t *w = ws->w;
    size_t n = e - a;
    if (n > NA_RULES_MAX_TERM_BYTES) {
        return; /* no listed word is longer */
    }
    uint64_t h = lc_hash(p + a, n, len - a);
    if (ws->cnt == ws->cap) {
        rec_push(ws, 0, 0, 0, 0, 0, 0, 0, 0); /* grown by one, taken back below */
        if (ws->oom) {
            return;
        }
        ws->cnt--;
    }
    /* written whether or not the word filter passes it, which about half
     * the words do: no branch to mispredict */
    struct wrec *r = &ws->v[ws->cnt];
    r->h = h;
    r->tok = NA_WNONE;
    r->root = NA_WNONE;
    r->flags = WREC_LAZY;
    r->pos = pos;
    r->pos_end = pos;
    r->bstart = (uint32_t)a;
    r->bend = (uint32_t)e;
    ws->cnt += bloom_has(w, h);
}

enum na_watch_scan_mode na_watch_scan_mode = NA_WATCH_SCAN_FAST;

static void on_word(void *ctx, const char *fold, size_t len, bool truncated, uint32_t pos,
                    uint32_t pos_end, uint32_t bstart, uint32_t bend) {
    struct wscan *ws = ctx;
    const na_watch_t *w = ws->w;
    if (truncated) {
        return;
    }
    uint64_t h = na_rules_quick_hash(fold, len, 0);
    if (!bloom_has(w, h)) {
        return;
    }
    uint32_t root = NA_WNONE;
    uint8_t flags = 0;
    uint32_t tok = scan_find(w, fold, len, h, &root, &flags);
    if (tok != NA_WNONE) {
        rec_push(ws, 0, tok, root, flags, pos, pos_end, bstart, bend);
    }
}

#define WMASK_LOCAL 160u /* bitmap words kept on the stack: fields up to 10 KB */

/* Is byte i of bitmap m set? */
static inline bool mbit(const uint64_t *m, size_t i) {
    return (m[i >> 6] >> (i & 63)) & 1u;
}

/* Has bitmap m a bit in [a, e)? */
static inline bool bits_any(const uint64_t *m, size_t a, size_t e) {
    if (a >= e) {
        return false;
    }
    size_t ka = a >> 6;
    size_t ke = (e - 1) >> 6;
    uint64_t first = ~(uint64_t)0 << (a & 63);
    uint64_t last = ~(uint64_t)0 >> (63 - ((e - 1) & 63));
    if (ka == ke) {
        return (m[ka] & first & last) != 0;
    }
    if (m[ka] & first) {
        return true;
    }
    for (size_t k = ka + 1; k < ke; k++) {
        if (m[k]) {
            return true;
        }
    }
    return (m[ke] & last) != 0;
}

/* The first set bit of m in [i, e), or e. */
static inline size_t next_bit(const uint64_t *m, size_t i, size_t e) {
    while (i < e) {
        uint64_t x = m[i >> 6] >> (i & 63);
        if (x) {
            size_t b = i + (size_t)__builtin_ctzll(x);
            return b < e ? b : e;
        }
        i = (i | 63) + 1;
    }
    return e;
}

/* The first clear bit of m in [i, e), or e. */
static inline size_t next_bit_clear(const uint64_t *m, size_t i, size_t e) {
    while (i < e) {
        uint64_t x = ~m[i >> 6] >> (i & 63);
        if (x) {
            size_t b = i + (size_t)__builtin_ctzll(x);
            return b < e ? b : e;
        }
        i = (i | 63) + 1;
    }
    return e;
}

/* The chunk (run of al | pu bytes) holding byte i: [*cs, *ce). */
static void chunk_of(const uint64_t *al, const uint64_t *pu, size_t words, size_t i,
                     size_t *cs, size_t *ce) {
    size_t k = i >> 6;
    /* the last byte of no chunk before i */
    uint64_t m = ~(al[k] | pu[k]) & (((uint64_t)1 << (i & 63)) - 1);
    while (!m && k > 0) {
        k--;
        m = ~(al[k] | pu[k]);
    }
    *cs = m ? k * 64 + 64 - (size_t)__builtin_clzll(m) : 0;
    /* the first byte of no chunk after i */
    k = i >> 6;
    m = ~(al[k] | pu[k]) & (~(uint64_t)0 << (i & 63));
    while (!m && ++k < words) {
        m = ~(al[k] | pu[k]);
    }
    *ce = k < words ? k * 64 + (size_t)__builtin_ctzll(m) : words * 64;
}

/* Tokenise chunk s[ca..ce) and record its known words; the chunk's first
 * word is at position pos. @returns the positions it takes. */
static uint32_t read_chunk(struct wscan *ws, struct na_rtoks *toks, const char *s,
                           size_t ca, size_t ce, uint32_t pos) {
    toks->cnt = 0;
    toks->text_len = 0;
    if (na_rules_tokenize(s + ca, ce - ca, toks)) {
        ws->oom = true;
        return 0;
    }
    uint32_t used = 0;
    for (size_t t = 0; t < toks->cnt; t++) {
        const struct na_rtok *tk = &toks->v[t];
        if (!tk->truncated && tk->fold_len <= NA_RULES_MAX_TERM_BYTES) {
            char f[NA_RULES_QUICK_PAD];
            memset(f, 0, 16);
            memcpy(f, toks->text + tk->fold_off, tk->fold_len);
            uint64_t h = na_rules_quick_hash(f, tk->fold_len, 0);
            uint32_t root = NA_WNONE;
            uint8_t flags = 0;
            uint32_t tok = bloom_has(ws->w, h)
                               ? scan_find(ws->w, f, tk->fold_len, h, &root, &flags)
                               : NA_WNONE;
            if (tok != NA_WNONE) {
                rec_push(ws, 0, tok, root, flags, pos + tk->pos, pos + tk->pos_end,
                         (uint32_t)ca + tk->bstart, (uint32_t)ca + tk->bend);
            }
        }
        if (tk->pos_end + 1 > used) {
            used = tk->pos_end + 1;
        }
    }
    return used;
}

#define CX_COLD 0x80000000u /* on a complex chunk's end: not tokenised */

static inline bool ascii_alnum(unsigned char c) {
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

/* The bytes of a word's first min(n, 8) bytes, for n < 128. */
static const uint64_t head_mask8[128] = {
    0,
    0xffull,
    0xffffull,
    0xffffffull,
    0xffffffffull,
    0xffffffffffull,
    0xffffffffffffull,
    0xffffffffffffffull,
#define M8 0xffffffffffffffffull
#define M8X8 M8, M8, M8, M8, M8, M8, M8, M8
    M8X8,
    M8X8,
    M8X8,
    M8X8,
    M8X8,
    M8X8,
    M8X8,
    M8X8,
    M8X8,
    M8X8,
    M8X8,
    M8X8,
    M8X8,
    M8X8,
    M8X8,
#undef M8X8
#undef M8
};

/* The first min(n, 8) bytes of p[0..n) with 0x20 ORed into each, as
 * na_watch_head_key() takes them; @p room bytes readable at p. A word
 * longer than 127 bytes gets a wrong value, which no caller keeps. */
static inline uint64_t head_bytes(const unsigned char *p, size_t n, size_t room) {
    uint64_t v = 0;
    if (room >= 8) {
        memcpy(&v, p, 8);
    } else {
        for (size_t i = 0; i < room; i++) { /* little-endian, as lc_hash() */
            v |= (uint64_t)p[i] << (8 * i);
        }
    }
    return (v | 0x2020202020202020ull) & head_mask8[n & 127];
}

/* Does the head filter pass the ASCII word p[0..n) (@p room bytes readable)? */
static inline bool head_has(const na_watch_t *w, const unsigned char *p, size_t n,
                            size_t room) {
    uint64_t key = na_watch_head_key(head_bytes(p, n, room), n);
    return (w->head[na_watch_head_word(key, w->head_mask)] >> na_watch_head_bit(key)) &
           1u;
}

/*
 * May the tokeniser make a listed word of complex chunk p[cs..ce)? Only an
 * ASCII chunk is judged (any other may be): its tokens are its runs of
 * letters and digits (less the "s" of a possessive) and its hyphenated (or dotted)
 * words, runs joined across single - and . ("dual-use" -> "dualuse", "U.S."
 * -> "us"), at most 8 and 64 bytes. Every such word is some run joined with
 * none or some of the runs after it across single - or . (the tokeniser
 * joins fewer): each of these is put to the head and word filters. A chunk
 * none of which pass holds no listed word, and it takes at least one
 * position: it is skipped as one position (only the adjacency of the
 * listed words around it matters, which that keeps).
 */
static bool chunk_cold(const na_watch_t *w, const uint64_t *al, const unsigned char *p,
                       size_t len, size_t cs, size_t ce) {
    size_t i = cs;
    for (; i + 8 <= ce; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        if (v & 0x8080808080808080ull) {
            return false;
        }
    }
    for (; i < ce; i++) {
        if (p[i] >= 0x80) {
            return false;
        }
    }
    char buf[NA_RULES_QUICK_PAD];
    i = cs;
    while (i < ce) {
        size_t a = next_bit(al, i, ce);
        if (a >= ce) {
            break;
        }
        size_t e = next_bit_clear(al, a, ce);
        i = e; /* the next start */
        if (e - a == 1 && (p[a] | 0x20) == 's' && a >= cs + 2 && p[a - 1] == '\'' &&
            ascii_alnum(p[a - 2])) {
            continue; /* a possessive's "s": dropped */
        }
        size_t bl = 0;
        for (unsigned parts = 1; parts <= 8; parts++) {
            if (bl + (e - a) > NA_RULES_MAX_TERM_BYTES) {
                break; /* no listed word is longer */
            }
            /* eight bytes at a time where the field has them (what is
             * copied past the run is cleared below) */
            size_t k = a;
            for (; k < e && k + 8 <= len; k += 8) {
                uint64_t v;
                memcpy(&v, p + k, 8);
                v |= 0x2020202020202020ull;
                memcpy(buf + bl + (k - a), &v, 8);
            }
            for (; k < e; k++) {
                buf[bl + (k - a)] = (char)(p[k] | 0x20);
            }
            bl += e - a;
            memset(buf + bl, 0, 8); /* the hashes read whole 8-byte words */
            if (head_has(w, (const unsigned char *)buf, bl, sizeof(buf)) &&
                bloom_has(w, na_rules_quick_hash(buf, bl, 0))) {
                return false;
            }
            if (e + 1 >= ce || (p[e] != '-' && p[e] != '.') || !ascii_alnum(p[e + 1])) {
                break;
            }
            a = e + 1;
            e = next_bit_clear(al, a, ce);
        }
    }
    return true;
}

/* Runs of ASCII letters and digits that start in bitmap word k. */
static inline uint64_t run_starts(const uint64_t *al, size_t k) {
    return al[k] & ~(al[k] << 1 | (k ? al[k - 1] >> 63 : 0));
}

/* The number of runs that start before byte b (cum: scan_fast()'s counts). */
static inline uint32_t runs_before(const uint64_t *al, const uint32_t *cum, size_t words,
                                   size_t b) {
    size_t k = b >> 6;
    if (k >= words) {
        return cum[words];
    }
    uint64_t below = ((uint64_t)1 << (b & 63)) - 1;
    return cum[k] + (uint32_t)__builtin_popcountll(run_starts(al, k) & below);
}

/* One past the last byte of the run that starts at byte a. */
static inline size_t run_end(const uint64_t *al, size_t words, size_t a) {
    size_t k = a >> 6;
    uint64_t x = ~al[k] >> (a & 63); /* bits past the word's end come in clear */
    if (x) {
        return a + (size_t)__builtin_ctzll(x);
    }
    for (k++; k < words; k++) {
        if (~al[k]) {
            return k * 64 + (size_t)__builtin_ctzll(~al[k]);
        }
    }
    return words * 64;
}

#define GATHER_WORDS 16u /* bitmap words per gather(): 1 KiB of text */

/* The head filter's bit for the run of @p n bytes at @p q whose first 8
 * bytes are readable: 1 when it may be a listed word. */
static inline size_t head_pass(const uint64_t *head, uint64_t head_mask,
                               const unsigned char *q, size_t n) {
    uint64_t v;
    memcpy(&v, q, 8);
    v = (v | 0x2020202020202020ull) & head_mask8[n & 127];
    uint64_t key = na_watch_head_key(v, n);
    return (head[na_watch_head_word(key, head_mask)] >> na_watch_head_bit(key)) & 1u;
}

/*
 * The plain words starting in bitmap words [k0, k1) (and those inside
 * complex chunks, which the caller drops) that the head filter passes (a
 * listed word of the same length starts with the same 8 bytes, folded, or
 * a false positive, about one in sixteen), their first bytes into out (at
 * most 32 per bitmap word), without a branch on the filter. Kept apart
 * from the rest of the scan so that its few values stay in registers.
 *
 * A bitmap word whose runs all have 8 bytes readable after their start
 * (all but the field's last 72 bytes) takes the short loop: a run's
 * length from the word's clear bits, or, for the run that goes on into
 * the next word, from that word's (read once per word; a run that also
 * fills the next word is longer than any listed word and takes run_end()).
 * The rest take the careful loop, which reads no byte past the field.
 * @returns their number.
 */
NA_RULES_CLONES static size_t gather(const uint64_t *al, size_t words,
                                     const unsigned char *p, size_t len,
                                     const uint64_t *head, uint64_t head_mask, size_t k0,
                                     size_t k1, uint32_t *out) {
    size_t nc = 0;
    uint64_t carry = k0 ? al[k0 - 1] >> 63 : 0; /* a run goes on into word k */
    /* words before kf have a next word and 8 bytes after each byte */
    size_t kf = len >= 72 ? (len - 72) / 64 + 1 : 0;
    size_t k = k0;
    for (size_t kend = kf < k1 ? kf : k1; k < kend; k++) {
        uint64_t cur = al[k];
        uint64_t st = cur & ~(cur << 1 | carry);
        uint64_t nd = ~cur;
        uint64_t nx = ~al[k + 1];
        /* the length of a run that reaches bit 63, less 64 - its start */
        size_t over = nx ? (size_t)__builtin_ctzll(nx) : 64 * 2;
        const unsigned char *q = p + k * 64;
        carry = cur >> 63;
        for (; st; st &= st - 1) {
            unsigned o = (unsigned)__builtin_ctzll(st);
            uint64_t x = nd >> o;
            size_t n;
            if (__builtin_expect(x != 0, 1)) {
                n = (size_t)__builtin_ctzll(x);
            } else if (over < 64 * 2) {
                n = 64 - o + over;
            } else {
                n = run_end(al, words, k * 64 + o) - (k * 64 + o);
            }
            out[nc] = (uint32_t)(k * 64 + o);
            nc += head_pass(head, head_mask, q + o, n);
        }
    }
    for (; k < k1; k++) {
        uint64_t cur = al[k];
        uint64_t st = cur & ~(cur << 1 | carry);
        size_t base = k * 64;
        carry = cur >> 63;
        for (; st; st &= st - 1) {
            size_t a = base + (size_t)__builtin_ctzll(st);
            uint64_t x = ~cur >> (a & 63); /* bits past the word's end come in clear */
            /* <= len: no bit is set past it */
            size_t n = x ? (size_t)__builtin_ctzll(x) : run_end(al, words, a) - a;
            uint64_t key = na_watch_head_key(a + 8 <= len ? head_bytes(p + a, n, 8)
                                                          : head_bytes(p + a, n, len - a),
                                             n);
            out[nc] = (uint32_t)a;
            nc +=
                (head[na_watch_head_word(key, head_mask)] >> na_watch_head_bit(key)) & 1u;
        }
    }
    return nc;
}

/* Complex chunk c ([start, end | CX_COLD]): read (its listed words recorded
 * at their positions, adj the correction of the chunks before it) unless
 * cold. @returns its positions less its runs. */
static inline __attribute__((always_inline)) int64_t
chunk_read(struct wscan *ws, struct na_rtoks *toks, const char *s, const uint64_t *al,
           const uint32_t *cum, size_t words, const uint32_t *c, int64_t adj) {
    uint32_t rb = runs_before(al, cum, words, c[0]);
    uint32_t re = runs_before(al, cum, words, c[1] & ~CX_COLD);
    uint32_t used = c[1] & CX_COLD ? 1
                                   : read_chunk(ws, toks, s, c[0], c[1],
                                                (uint32_t)((int64_t)rb + adj));
    return (int64_t)used - (int64_t)(re - rb);
}

/*
 * The words of field s[0..len) as the rules scanner reads them (the same
 * words, positions and offsets as na_rules_scan_words(); the unit tests
 * compare the two), recorded when the list's dictionary knows them.
 *
 * From the scanner's bitmaps: a chunk (a run of ASCII letters and digits,
 * - ' . and bytes >= 0x80) that holds - ' . or a byte >= 0x80 between its
 * ends is "complex" and goes through the tokeniser; every other chunk is
 * one run of ASCII letters and digits, a plain word. The complex chunks are
 * found first from the (sparse) bitmap of - ' . and non-ASCII bytes. Then
 * the runs are walked in order: a plain word's position is its run's index
 * corrected by what each complex chunk before it took (its tokens'
 * positions less its runs), and it is hashed (in place) and looked up only
 * when its first 8 bytes and length pass the list's head filter.
 */
NA_RULES_CLONES static na_err_t scan_fast(struct wscan *ws, const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    const na_watch_t *w = ws->w;
    uint64_t al_local[WMASK_LOCAL];
    uint64_t pu_local[WMASK_LOCAL];
    uint32_t cx_local[128];
    uint64_t *al = al_local;
    uint64_t *pu = pu_local;
    uint32_t *cx = cx_local; /* complex chunks: [start, end) pairs */
    size_t cx_cnt = 0;
    size_t cx_cap = sizeof(cx_local) / sizeof(cx_local[0]) / 2;
    uint32_t cum_local[WMASK_LOCAL];
    uint32_t *cum = NULL; /* runs before each bitmap word, and in all */
    struct na_rtoks toks;
    size_t words = (len + 63) / 64;
    na_err_t err = NA_OK;

    na_rtoks_init(&toks);
    toks.split_decimals = true;
    if (words > WMASK_LOCAL) {
        al = malloc(words * sizeof(*al));
        pu = malloc(words * sizeof(*pu));
        if (!al || !pu) {
            err = NA_ERR_NOMEM;
            goto out;
        }
    }
    na_rules_field_masks(s, len, al, pu);
    /* 1. the complex chunks, in order, from the bytes of class 2 */
    size_t seen_end = 0;
    for (size_t k = 0; k < words; k++) {
        for (uint64_t m = pu[k]; m; m &= m - 1) {
            size_t i = k * 64 + (size_t)__builtin_ctzll(m);
            if (i < seen_end) {
                continue; /* in the chunk just looked at */
            }
            if (p[i] < 0x80 && (i + 1 >= len || !(mbit(al, i + 1) || mbit(pu, i + 1)))) {
                /* a - ' . that ends its chunk and is the chunk's first byte
                 * of class 2 (most often a sentence's full stop): one
                 * plain run with a separator after it */
                continue;
            }
            size_t cs, ce;
            chunk_of(al, pu, words, i, &cs, &ce);
            seen_end = ce;
            if (ce > len) {
                ce = len;
            }
            while (cs < ce && (p[cs] == '-' || p[cs] == '\'' || p[cs] == '.')) {
                cs++;
            }
            while (ce > cs &&
                   (p[ce - 1] == '-' || p[ce - 1] == '\'' || p[ce - 1] == '.')) {
                ce--;
            }
            if (!bits_any(pu, cs, ce)) {
                continue; /* one plain run between separators */
            }
            if (cx_cnt == cx_cap) {
                uint32_t *c2 = cx == cx_local ? malloc(cx_cap * 4 * sizeof(*c2))
                                              : realloc(cx, cx_cap * 4 * sizeof(*c2));
                if (!c2) {
                    err = NA_ERR_NOMEM;
                    goto out;
                }
                if (cx == cx_local) {
                    memcpy(c2, cx_local, sizeof(cx_local));
                }
                cx = c2;
                cx_cap *= 2;
            }
            cx[2 * cx_cnt] = (uint32_t)cs;
            cx[2 * cx_cnt + 1] =
                (uint32_t)ce | (chunk_cold(w, al, p, len, cs, ce) ? CX_COLD : 0);
            cx_cnt++;
        }
    }
    /* 2. the runs of letters and digits: the plain words that pass the
     * head filter gathered a slice at a time (gather()), then looked up in
     * order with the complex chunks before each read first */
    cum = words + 1 <= WMASK_LOCAL ? cum_local : malloc((words + 1) * sizeof(*cum));
    if (!cum) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    uint32_t runs = 0;
    for (size_t k = 0; k < words; k++) {
        cum[k] = runs;
        runs += (uint32_t)__builtin_popcountll(run_starts(al, k));
    }
    cum[words] = runs;
    int64_t adj = 0;    /* positions less runs of the complex chunks read */
    size_t next = 0;    /* next complex chunk */
    size_t skip_to = 0; /* plain words before this byte are in a chunk read */
    uint32_t cand[GATHER_WORDS * 32]; /* the words' first bytes */
    for (size_t k0 = 0; k0 < words; k0 += GATHER_WORDS) {
        size_t k1 = words - k0 < GATHER_WORDS ? words : k0 + GATHER_WORDS;
        size_t nc = gather(al, words, p, len, w->head, w->head_mask, k0, k1, cand);
        for (size_t c = 0; c < nc; c++) {
            size_t a = cand[c];
            while (next < cx_cnt && cx[2 * next] <= a) {
                adj += chunk_read(ws, &toks, s, al, cum, words, cx + 2 * next, adj);
                skip_to = cx[2 * next + 1] & ~CX_COLD;
                next++;
            }
            if (a >= skip_to) {
                uint32_t run = runs_before(al, cum, words, a);
                plain_word(ws, p, len, a, run_end(al, words, a),
                           (uint32_t)((int64_t)run + adj));
            }
        }
    }
    for (; next < cx_cnt; next++) {
        adj += chunk_read(ws, &toks, s, al, cum, words, cx + 2 * next, adj);
    }
out:
    if (al != al_local) {
        free(al);
        free(pu);
    }
    if (cx != cx_local) {
        free(cx);
    }
    if (cum != cum_local) {
        free(cum);
    }
    na_rtoks_cleanup(&toks);
    return err ? err : ws->oom ? NA_ERR_NOMEM : NA_OK;
}

na_err_t na_watch_scan(const na_watch_t *w, int field, const char *s, size_t len,
                       struct na_watch_hits *out) {
    struct wscan wsl;
    struct wscan *ws = &wsl;
    na_err_t err = NA_OK;
    if (len > UINT32_MAX / 2) {
        len = UINT32_MAX / 2;
    }
    ws->w = w;
    ws->v = ws->local;
    ws->cnt = 0;
    ws->cap = WREC_LOCAL;
    ws->oom = false;
    if (na_watch_scan_mode == NA_WATCH_SCAN_WORDS) {
        err = na_rules_scan_words(s, len, on_word, ws);
    } else {
        err = scan_fast(ws, s, len);
    }
    if (err) {
        goto out;
    }
    if (ws->oom) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    /* Words come in position order but for joined words, which follow
     * their parts: an insertion sort puts them in place. */
    struct wrec *r = ws->v;
    size_t n = ws->cnt;
    for (size_t i = 1; i < n; i++) {
        if (!rec_less(&r[i], &r[i - 1])) {
            continue; /* in place, as most are */
        }
        struct wrec x = r[i];
        size_t j = i;
        while (j > 0 && rec_less(&x, &r[j - 1])) {
            r[j] = r[j - 1];
            j--;
        }
        r[j] = x;
    }
    struct walk k;
    k.w = w;
    k.text = s;
    k.len = len;
    k.r = r;
    k.n = n;
    bool covered = false;
    uint32_t covered_end = 0;
    for (size_t i = 0; i < n; i++) {
        if (covered && r[i].pos <= covered_end) {
            continue;
        }
        /* a word (maybe) listed right after this one; for a plain word,
         * one that the pairs filter passes after it */
        bool next = false;
        bool pair = false;
        for (size_t j = i + 1; j < n && r[j].pos <= r[i].pos_end + 1; j++) {
            if (r[j].pos == r[i].pos_end + 1) {
                next = true;
                pair = pair || !(r[j].flags & WREC_LAZY) || pair_has(w, r[i].h, r[j].h);
            }
        }
        if (r[i].flags & WREC_LAZY) {
            /* looked up only if a longer name or a one-word name can be here */
            uint64_t one = w->one[(r[i].h >> 24) & w->one_mask];
            uint64_t ends = na_watch_one_bits(r[i].h);
            uint64_t exact = na_watch_one_exact_bits(r[i].h);
            if (!pair && (one & ends) != ends &&
                ((one & exact) != exact ||
                 (s[r[i].bstart] >= 'a' && s[r[i].bstart] <= 'z'))) {
                continue;
            }
            rec_resolve(w, s, &r[i]);
        }
        uint32_t child = r[i].root;
        if (child == NA_WNONE) {
            continue;
        }
        /* Walk only where a name can be found: a one-word name matched
         * folded; one matched as listed, where the text does not start
         * with a lower-case letter; a longer one, where a listed word
         * follows. Most starts ("the", "and", a first name) need none. */
        if (!(r[i].flags & NA_WROOT_ENDS) &&
            !((r[i].flags & NA_WROOT_EXACT) &&
              !(s[r[i].bstart] >= 'a' && s[r[i].bstart] <= 'z'))) {
            if (!(r[i].flags & NA_WROOT_KIDS) || !next) {
                continue;
            }
        }
        k.found = false;
        dfs(&k, i, child, 1);
        if (!k.found) {
            continue;
        }
        size_t last = legal_tail(w, s, r, n, k.best_last);
        uint32_t bstart = r[i].bstart;
        uint32_t bend = r[last].bend;
        memcpy(k.path, k.best_path, k.best_depth * sizeof(*k.path));
        for (uint32_t e = w->end_first[k.best_node]; e < w->end_first[k.best_node + 1];
             e++) {
            const struct na_wpat *p = &w->pats[w->ends[e]];
            if (case_ok(&k, p, k.best_depth) &&
                (err = hit_push(out, w->ends[e], field, bstart, bend))) {
                goto out;
            }
        }
        covered = true;
        covered_end = r[last].pos_end;
    }
out:
    if (ws->v != ws->local) {
        free(ws->v);
    }
    return err;
}
