/*
 * The one-pass matcher's scan: an article's fields read once into hits,
 * and a topic evaluated over them. See docs/rules.md.
 *
 * Matching an article, like a percolator:
 *   1. read each field once (scan_field_fast(), or scan_field() which
 *      tokenises every chunk): bitmaps of its letters and digits and of its
 *      joining bytes; chunks with - ' . or non-ASCII bytes inside go through
 *      the tokeniser (rules_text.c), other words are plain ASCII and are
 *      looked up only when their first three bytes may start a key and, for
 *      small rule sets, when the key database (rules_db.c) found a key's
 *      text at their start;
 *   2. look those words up in the term dictionary: the plural-folded form
 *      as an exact key, and each of its leading substrings whose length
 *      some prefix key has;
 *   3. sort the hits by (key, field, position);
 *   4. the topics posted under the hit keys are the candidates; only they
 *      are evaluated, in rules-file order, with positions for phrases and
 *      NEAR.
 * Every allocation of a call lives in a struct scan on its stack, and the
 * key database's scratch space is taken from an atomic pool, so calls on one
 * rules object may run concurrently.
 */
#include "rules.h"

#include <hs/hs.h>
#include <jansson.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/hash.h"
#include "newsalert/limits.h"
#include "newsalert/util.h"
#include "rules_match.h"
#include "rules_scan.h"

void na_rscan_init(struct scan *s, const na_rules_t *r) {
    memset(s, 0, offsetof(struct scan, bm_local));
    s->r = r;
    na_rtoks_init(&s->toks);
    s->toks.split_decimals = true;
}

void na_rscan_cleanup(struct scan *s) {
    if (s->r && s->r->db_pool) {
        na_rules_db_put(s->r, s->scratch);
    }
    free(s->bm);
    free(s->cx);
    na_rtoks_cleanup(&s->toks);
    free(s->hits);
    free(s->occ);
    free(s->otmp);
    free(s->etmp);
    free(s->ev);
    if (s->kr != s->kr_none) {
        free(s->kr);
    }
}

void *na_rscan_grow(struct scan *s, void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) {
        return p;
    }
    size_t cap2 = *cap ? *cap * 2 : 64;
    while (cap2 < need) {
        cap2 *= 2;
    }
    void *q = realloc(p, cap2 * elem);
    if (!q) {
        s->oom = true;
        return NULL;
    }
    *cap = cap2;
    return q;
}

static void hit_push(struct scan *s, uint32_t key, int field, uint32_t pos,
                     uint32_t pos_end, uint32_t bstart, uint32_t bend) {
    if (s->hits_cnt == s->hits_cap) {
        struct hit *h =
            na_rscan_grow(s, s->hits, &s->hits_cap, s->hits_cnt + 1, sizeof(*h));
        if (!h) {
            return;
        }
        s->hits = h;
    }
    struct hit *h = &s->hits[s->hits_cnt++];
    h->key = key;
    h->pos = pos;
    h->pos_end = pos_end;
    h->bstart = bstart;
    h->bend = bend;
    h->field = (uint8_t)field;
}

static uint32_t key_slot(uint32_t key) {
    return key * 2654435761u;
}

static bool hit_less(const struct hit *x, const struct hit *y) {
    if (x->field != y->field) {
        return x->field < y->field;
    }
    if (x->pos != y->pos) {
        return x->pos < y->pos;
    }
    return x->pos_end < y->pos_end;
}

/* Group the hits by key (a counting sort through a hash map of the keys
 * that occurred) and index the groups, so that an atom finds its hits, in
 * (field, pos, pos_end) order, or learns that it has none, in O(1). */
static na_err_t group_hits(struct scan *s) {
    size_t size = 16;
    uint32_t *slot_of = NULL;
    struct hit *out = NULL;
    if (!s->hits_cnt) {
        s->kr = s->kr_none; /* one empty slot: every key has no hits */
        s->kr_mask = 0;
        return NA_OK;
    }
    while (size < s->hits_cnt * 2) {
        size *= 2;
    }
    s->kr = calloc(size, sizeof(*s->kr));
    if (!s->kr) {
        return NA_ERR_NOMEM;
    }
    s->kr_mask = size - 1;
    if (!s->hits_cnt) {
        return NA_OK;
    }
    slot_of = malloc(s->hits_cnt * sizeof(*slot_of));
    out = malloc(s->hits_cnt * sizeof(*out));
    if (!slot_of || !out) {
        free(slot_of);
        free(out);
        return NA_ERR_NOMEM;
    }
    for (size_t i = 0; i < s->hits_cnt; i++) {
        uint32_t key = s->hits[i].key;
        size_t slot = key_slot(key) & s->kr_mask;
        while (s->kr[slot].cnt && s->kr[slot].key != key) {
            slot = (slot + 1) & s->kr_mask;
        }
        s->kr[slot].key = key;
        s->kr[slot].cnt++;
        slot_of[i] = (uint32_t)slot;
    }
    uint32_t run = 0;
    for (size_t slot = 0; slot < size; slot++) {
        s->kr[slot].first = run;
        run += s->kr[slot].cnt;
    }
    for (size_t i = 0; i < s->hits_cnt; i++) {
        out[s->kr[slot_of[i]].first++] = s->hits[i];
    }
    for (size_t slot = 0; slot < size; slot++) {
        struct krange *k = &s->kr[slot];
        k->first -= k->cnt;
        /* Pushed nearly in order: joined words come after their parts. */
        for (uint32_t i = k->first + 1; i < k->first + k->cnt; i++) {
            struct hit h = out[i];
            uint32_t j = i;
            while (j > k->first && hit_less(&h, &out[j - 1])) {
                out[j] = out[j - 1];
                j--;
            }
            out[j] = h;
        }
    }
    free(slot_of);
    free(s->hits);
    s->hits = out;
    s->hits_cap = s->hits_cnt;
    return NA_OK;
}

/* @returns the hits of key (*first, count), count 0 when none. */
static uint32_t key_hits(const struct scan *s, uint32_t key, uint32_t *first) {
    size_t slot = key_slot(key) & s->kr_mask;
    while (s->kr[slot].cnt) {
        if (s->kr[slot].key == key) {
            *first = s->kr[slot].first;
            return s->kr[slot].cnt;
        }
        slot = (slot + 1) & s->kr_mask;
    }
    *first = 0;
    return 0;
}

/*
 * Byte classes of the chunker: 0 = a separator that ends every word and
 * every hyphenated or dotted compound (ASCII other than letters, digits and
 * - ' .), 1 = ASCII letter or digit, 2 = anything else (- ' . and every
 * byte >= 0x80), which may join, fold or separate: the tokeniser decides.
 */
static const uint8_t chunk_cls[256] = {
    ['0'] = 1,    ['1'] = 1,    ['2'] = 1,    ['3'] = 1,    ['4'] = 1,    ['5'] = 1,
    ['6'] = 1,    ['7'] = 1,    ['8'] = 1,    ['9'] = 1,    ['a'] = 1,    ['b'] = 1,
    ['c'] = 1,    ['d'] = 1,    ['e'] = 1,    ['f'] = 1,    ['g'] = 1,    ['h'] = 1,
    ['i'] = 1,    ['j'] = 1,    ['k'] = 1,    ['l'] = 1,    ['m'] = 1,    ['n'] = 1,
    ['o'] = 1,    ['p'] = 1,    ['q'] = 1,    ['r'] = 1,    ['s'] = 1,    ['t'] = 1,
    ['u'] = 1,    ['v'] = 1,    ['w'] = 1,    ['x'] = 1,    ['y'] = 1,    ['z'] = 1,
    ['A'] = 1,    ['B'] = 1,    ['C'] = 1,    ['D'] = 1,    ['E'] = 1,    ['F'] = 1,
    ['G'] = 1,    ['H'] = 1,    ['I'] = 1,    ['J'] = 1,    ['K'] = 1,    ['L'] = 1,
    ['M'] = 1,    ['N'] = 1,    ['O'] = 1,    ['P'] = 1,    ['Q'] = 1,    ['R'] = 1,
    ['S'] = 1,    ['T'] = 1,    ['U'] = 1,    ['V'] = 1,    ['W'] = 1,    ['X'] = 1,
    ['Y'] = 1,    ['Z'] = 1,    ['-'] = 2,    ['\''] = 2,   ['.'] = 2,
#define NA_HI8(x)                                                                        \
    [x] = 2, [x + 1] = 2, [x + 2] = 2, [x + 3] = 2, [x + 4] = 2, [x + 5] = 2,            \
    [x + 6] = 2, [x + 7] = 2
    NA_HI8(0x80), NA_HI8(0x88), NA_HI8(0x90), NA_HI8(0x98), NA_HI8(0xa0), NA_HI8(0xa8),
    NA_HI8(0xb0), NA_HI8(0xb8), NA_HI8(0xc0), NA_HI8(0xc8), NA_HI8(0xd0), NA_HI8(0xd8),
    NA_HI8(0xe0), NA_HI8(0xe8), NA_HI8(0xf0), NA_HI8(0xf8),
#undef NA_HI8
};

/* Look folded word w[0..len) up as an exact key (after plural folding) and
 * as prefix keys, and push the hits. @p w may be modified past len (one
 * byte for the plural "y"); @p truncated: no exact match. */
static void word_hits(struct scan *s, int field, char *w, size_t len, bool truncated,
                      bool prefixes, uint32_t pos, uint32_t pos_end, uint32_t bstart,
                      uint32_t bend) {
    const na_rules_t *r = s->r;
    const struct na_rbuild *b = &r->b;
    if (b->prefix_lens && prefixes) {
        size_t max = len < 63 ? len : 63;
        uint64_t lens = b->prefix_lens & (((uint64_t)2 << max) - 1);
        while (lens) {
            size_t l = (size_t)__builtin_ctzll(lens);
            lens &= lens - 1;
            uint64_t h = na_rules_quick_hash(w, l, 1);
            uint64_t q = h & r->bloom_mask;
            if (!(r->bloom[q >> 6] & ((uint64_t)1 << (q & 63)))) {
                continue;
            }
            uint32_t key = na_rules_ktab_find(r, w, l, 1, h);
            if (key != NA_RNONE) {
                hit_push(s, key, field, pos, pos_end, bstart, bend);
            }
        }
    }
    if (truncated) {
        return;
    }
    bool y = false;
    size_t n = na_rules_plural_fold(w, len, &y);
    if (y) {
        w[n++] = 'y';
    }
    uint64_t h = na_rules_quick_hash(w, n, 0);
    uint64_t q = h & r->bloom_mask;
    if (r->bloom[q >> 6] & ((uint64_t)1 << (q & 63))) {
        uint32_t key = na_rules_ktab_find(r, w, n, 0, h);
        if (key != NA_RNONE) {
            hit_push(s, key, field, pos, pos_end, bstart, bend);
        }
    }
}

/* The words of chunk text[a..e) through the tokeniser, the first at word
 * position *pos, which is moved past the chunk's last word. */
static na_err_t scan_chunk(struct scan *s, int f, const char *text, size_t a, size_t e,
                           uint32_t *posp, na_rules_word_cb *cb, void *ctx) {
    char w[NA_RULES_QUICK_PAD];
    struct na_rtoks *toks = &s->toks;
    uint32_t pos = *posp;
    toks->cnt = 0;
    toks->text_len = 0;
    if (na_rules_tokenize(text + a, e - a, toks)) {
        return NA_ERR_NOMEM;
    }
    uint32_t next = pos;
    for (size_t k = 0; k < toks->cnt; k++) {
        const struct na_rtok *t = &toks->v[k];
        size_t n = t->fold_len <= NA_RULES_MAX_TERM_BYTES ? t->fold_len
                                                          : NA_RULES_MAX_TERM_BYTES;
        memcpy(w, toks->text + t->fold_off, n);
        if (cb) {
            cb(ctx, w, n, t->truncated, pos + t->pos, pos + t->pos_end,
               (uint32_t)a + t->bstart, (uint32_t)a + t->bend);
        } else {
            word_hits(s, f, w, n, t->truncated, true, pos + t->pos, pos + t->pos_end,
                      (uint32_t)a + t->bstart, (uint32_t)a + t->bend);
        }
        if (pos + t->pos_end + 1 > next) {
            next = pos + t->pos_end + 1;
        }
    }
    *posp = next;
    return NA_OK;
}

/*
 * Find the dictionary hits of one field. The text is cut into chunks at
 * bytes of class 0, where the tokeniser's state always resets, so a chunk
 * of ASCII letters and digits (with - ' . only at its ends, where they
 * separate) is one word folded here by OR 0x20; any other chunk goes
 * through the tokeniser. Both give the same tokens, positions and offsets
 * as tokenising the whole field would (tests compare the two).
 */
static na_err_t scan_field(struct scan *s, int f, const char *text, size_t len,
                           na_rules_word_cb *cb, void *ctx) {
    const unsigned char *p = (const unsigned char *)text;
    char w[NA_RULES_QUICK_PAD];
    uint32_t pos = 0;
    size_t i = 0;

    if (len > UINT32_MAX / 2) {
        len = UINT32_MAX / 2;
    }
    while (i < len) {
        while (i < len && !chunk_cls[p[i]]) {
            i++;
        }
        size_t start = i;
        unsigned kinds = 0;
        while (i < len && chunk_cls[p[i]]) {
            kinds |= chunk_cls[p[i]];
            i++;
        }
        if (start == i) {
            break;
        }
        size_t a = start;
        size_t e = i;
        if (kinds & 2) {
            /* - ' . at the ends of a chunk separate like spaces. */
            while (a < e && (p[a] == '-' || p[a] == '\'' || p[a] == '.')) {
                a++;
            }
            while (e > a && (p[e - 1] == '-' || p[e - 1] == '\'' || p[e - 1] == '.')) {
                e--;
            }
            kinds = 0;
            for (size_t k = a; k < e; k++) {
                kinds |= chunk_cls[p[k]];
            }
            if (a == e) {
                continue;
            }
        }
        if (kinds == 1 && e - a <= NA_RULES_MAX_TERM_BYTES) {
            size_t n = e - a;
            for (size_t k = 0; k < n; k++) {
                w[k] = (char)(p[a + k] | 0x20);
            }
            if (cb) {
                cb(ctx, w, n, false, pos, pos, (uint32_t)a, (uint32_t)e);
            } else {
                word_hits(s, f, w, n, false, true, pos, pos, (uint32_t)a, (uint32_t)e);
            }
            pos++;
            continue;
        }
        if (scan_chunk(s, f, text, a, e, &pos, cb, ctx)) {
            return NA_ERR_NOMEM;
        }
    }
    return s->oom ? NA_ERR_NOMEM : NA_OK;
}

/* ---- the ASCII fast path ---- */

struct db_ctx {
    const unsigned char *p;
    const uint8_t *lens;
    uint64_t *cand;
};

/* A literal ends at @p to: mark its start when a word starts there. */
static int db_hit(unsigned int id, unsigned long long from, unsigned long long to,
                  unsigned int flags, void *ctxp) {
    struct db_ctx *c = ctxp;
    size_t b = (size_t)to - c->lens[id];
    (void)from;
    (void)flags;
    if (b == 0 || chunk_cls[c->p[b - 1]] != 1) {
        c->cand[b >> 6] |= (uint64_t)1 << (b & 63);
    }
    return 0;
}

/* Bitmaps of 64 bytes at @p p: *al ASCII letters and digits, *pu the bytes
 * of chunk class 2 (- ' . and every byte >= 0x80), which may join words
 * (the tokeniser reads their chunks), *hi the bytes >= 0x80 (not made when
 * @p hi is NULL). */
static inline __attribute__((always_inline)) void
block_masks(const unsigned char *p, uint64_t *al, uint64_t *pu, uint64_t *hi) {
    uint64_t am = 0, pm = 0, hm = 0;
#ifdef __SSE2__
    const __m128i lo_a = _mm_set1_epi8((char)(0x80 - 'a'));
    const __m128i lo_0 = _mm_set1_epi8((char)(0x80 - '0'));
    const __m128i lim26 = _mm_set1_epi8((char)(-128 + 26));
    const __m128i lim10 = _mm_set1_epi8((char)(-128 + 10));
    const __m128i x20 = _mm_set1_epi8(0x20);
    for (int j = 0; j < 4; j++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * j));
        __m128i l = _mm_cmplt_epi8(_mm_add_epi8(_mm_or_si128(v, x20), lo_a), lim26);
        __m128i d = _mm_cmplt_epi8(_mm_add_epi8(v, lo_0), lim10);
        __m128i q = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('-')),
                                              _mm_cmpeq_epi8(v, _mm_set1_epi8('.'))),
                                 _mm_cmpeq_epi8(v, _mm_set1_epi8('\'')));
        /* bytes >= 0x80 compare below both limits: keep them out */
        __m128i h = _mm_cmplt_epi8(v, _mm_setzero_si128());
        __m128i w = _mm_andnot_si128(h, _mm_or_si128(l, d));
        am |= (uint64_t)(unsigned)_mm_movemask_epi8(w) << (16 * j);
        pm |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_or_si128(q, h)) << (16 * j);
        if (hi) {
            hm |= (uint64_t)(unsigned)_mm_movemask_epi8(h) << (16 * j);
        }
    }
#else
    for (size_t i = 0; i < 64; i++) {
        uint64_t bit = (uint64_t)1 << i;
        if (chunk_cls[p[i]] == 1) {
            am |= bit;
        } else if (chunk_cls[p[i]] == 2) {
            pm |= bit;
            if (p[i] >= 0x80) {
                hm |= bit;
            }
        }
    }
#endif
    *al = am;
    *pu = pm;
    if (hi) {
        *hi = hm;
    }
}

/* The bitmaps of a field, bit i of word i / 64 for byte i (block_masks()
 * per 64 bytes; the last, short block through a copy padded with NULs,
 * which are separators, so bits past the field are clear). */
static inline __attribute__((always_inline)) void field_masks(const unsigned char *p,
                                                              size_t len, uint64_t *al,
                                                              uint64_t *pu,
                                                              uint64_t *hi) {
    size_t full = len / 64;
    for (size_t k = 0; k < full; k++) {
        block_masks(p + k * 64, &al[k], &pu[k], hi ? &hi[k] : NULL);
    }
    if (len % 64) {
        unsigned char tail[64] = {0};
        memcpy(tail, p + full * 64, len % 64);
        block_masks(tail, &al[full], &pu[full], hi ? &hi[full] : NULL);
    }
}

/* @returns the index of the first clear bit of @p al at or after @p b. */
static size_t run_end(const uint64_t *al, size_t words, size_t b) {
    size_t k = b >> 6;
    uint64_t m = ~al[k] >> (b & 63);
    if (m) {
        return b + (size_t)__builtin_ctzll(m);
    }
    for (k++; k < words; k++) {
        if (~al[k]) {
            return k * 64 + (size_t)__builtin_ctzll(~al[k]);
        }
    }
    return words * 64;
}

#define BM_TEST(m, i) (((m)[(i) >> 6] >> ((i)&63)) & 1u)

/* Runs of letters and digits that start before byte @p b. */
static uint32_t runs_before(const uint64_t *starts, const uint32_t *cum, size_t b) {
    uint64_t below = ((uint64_t)1 << (b & 63)) - 1;
    return cum[b >> 6] + (uint32_t)__builtin_popcountll(starts[b >> 6] & below);
}

/* Where a field's scan stands among its tokenised chunks (scan->cx). */
struct chunks {
    const uint64_t *starts;
    const uint32_t *cum;
    uint32_t runs; /* runs of letters and digits in the field */
    int64_t adj;   /* words minus runs of the tokenised chunks read so far */
    size_t next;   /* next chunk to read */
    size_t cnt;
};

/* Tokenise the chunks that start at or before byte @p b, in order. */
static na_err_t read_chunks(struct scan *s, int f, const char *text, size_t len,
                            struct chunks *ch, size_t b) {
    while (ch->next < ch->cnt && s->cx[ch->next * 2] <= b) {
        size_t ca = s->cx[ch->next * 2];
        size_t ce = s->cx[ch->next * 2 + 1];
        uint32_t before = runs_before(ch->starts, ch->cum, ca);
        uint32_t pos = (uint32_t)((int64_t)before + ch->adj);
        uint32_t pos0 = pos;
        if (scan_chunk(s, f, text, ca, ce, &pos, NULL, NULL)) {
            return NA_ERR_NOMEM;
        }
        uint32_t chunk_runs =
            (ce < len ? runs_before(ch->starts, ch->cum, ce) : ch->runs) - before;
        ch->adj += (int64_t)(pos - pos0) - (int64_t)chunk_runs;
        ch->next++;
    }
    return NA_OK;
}

/* @returns whether pre3 bit q is set in @p table. */
static inline bool pre3_has(const uint64_t *table, uint32_t q) {
    return (table[q >> 6] >> (q & 63)) & 1u;
}

/* @returns whether bitmap @p m has a bit in [a, e). */
static bool bits_any(const uint64_t *m, size_t a, size_t e) {
    for (size_t i = a; i < e;) {
        size_t k = i >> 6;
        size_t lo = i & 63;
        size_t n = e - i < 64 - lo ? e - i : 64 - lo;
        uint64_t v = n == 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1) << lo;
        if (m[k] & v) {
            return true;
        }
        i += n;
    }
    return false;
}

/*
 * May chunk p[cs..ce), which has - ' . or non-ASCII bytes inside, hold a
 * key? Non-ASCII: maybe (accents fold). Otherwise every token the tokeniser
 * makes of it, a part or a joined word, starts at a run of letters and
 * digits, and its first three bytes are the run's, or (joined) the first
 * three letters and digits from there across - and . ; a token shorter
 * than three bytes is a key's whole start, which pre3 marks with every
 * continuation. So a chunk none of whose runs passes pre3 either way holds
 * no key.
 */
static bool chunk_hot(const unsigned char *p, size_t cs, size_t ce, const uint64_t *al,
                      const uint64_t *starts, const uint64_t *hi, const uint64_t *pre3) {
    if (bits_any(hi, cs, ce)) {
        return true;
    }
    for (size_t i = cs; i < ce; i++) {
        if (!BM_TEST(starts, i)) {
            continue;
        }
        unsigned char run[3] = {0, 0, 0};
        unsigned char join[3] = {0, 0, 0};
        size_t nr = 0;
        size_t nj = 0;
        bool in_run = true;
        for (size_t j = i; j < ce && nj < 3; j++) {
            if (BM_TEST(al, j)) {
                join[nj++] = p[j];
                if (in_run) {
                    run[nr++] = p[j];
                }
            } else {
                in_run = false;
            }
        }
        if (pre3_has(pre3, na_rules_pre3(run[0], run[1], run[2])) ||
            pre3_has(pre3, na_rules_pre3(join[0], join[1], join[2]))) {
            return true;
        }
    }
    return false;
}

static inline bool ascii_letter(unsigned char c) {
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

/* Bitmaps of 64 bytes at @p p: *hi the bytes >= 0x80, *jn the bytes - . */
static inline __attribute__((always_inline)) void
block_join_masks(const unsigned char *p, uint64_t *hi, uint64_t *jn) {
    uint64_t hm = 0, jm = 0;
#ifdef __SSE2__
    for (int j = 0; j < 4; j++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * j));
        __m128i q = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('-')),
                                 _mm_cmpeq_epi8(v, _mm_set1_epi8('.')));
        hm |= (uint64_t)(unsigned)_mm_movemask_epi8(v) << (16 * j);
        jm |= (uint64_t)(unsigned)_mm_movemask_epi8(q) << (16 * j);
    }
#else
    for (size_t i = 0; i < 64; i++) {
        hm |= (uint64_t)(p[i] >= 0x80) << i;
        jm |= (uint64_t)(p[i] == '-' || p[i] == '.') << i;
    }
#endif
    *hi = hm;
    *jn = jm;
}

/*
 * Where the key database found no key at a word start, may a field still
 * hold one? Only in a word the database does not see whole: a non-ASCII
 * word (accents fold to keys; conservative: any byte >= 0x80 says yes), or
 * a word the tokeniser joins across - or . ("U.S." is "us", "dual-use"
 * "dualuse"; the tokeniser joins across a hyphen, and across a dot between
 * single letters, never next to a digit ("2.5") nor across an apostrophe).
 * A joined word starts at the run of letters and digits before one of its
 * joins, so for each such join the first three letters or digits from that
 * run, joined across - ' . as in chunk_hot(), must pass pre3. The parts
 * themselves are words the database saw.
 */
static bool field_may_join_key(const unsigned char *p, size_t len, const uint64_t *pre3) {
    for (size_t base = 0; base < len; base += 64) {
        uint64_t hm, jm;
        if (base + 64 <= len) {
            block_join_masks(p + base, &hm, &jm);
        } else {
            unsigned char tail[64] = {0};
            memcpy(tail, p + base, len - base);
            block_join_masks(tail, &hm, &jm);
        }
        if (hm) {
            return true;
        }
        for (; jm; jm &= jm - 1) {
            size_t i = base + (size_t)__builtin_ctzll(jm);
            if (i == 0 || i + 1 >= len || chunk_cls[p[i - 1]] != 1 ||
                !chunk_cls[p[i + 1]] ||
                (p[i] == '.' && ((i >= 2 && chunk_cls[p[i - 2]] == 1) ||
                                 !ascii_letter(p[i - 1]) || !ascii_letter(p[i + 1])))) {
                /* a sentence's full stop, a dash between spaces; a dot joins
                 * only one letter to the next ("U.S.", not "2.5" or "12.5") */
                continue;
            }
            /* A joined word starts at the run before one of its joins. */
            size_t j = i - 1;
            while (j > 0 && chunk_cls[p[j - 1]] == 1) {
                j--;
            }
            unsigned char win[3] = {0, 0, 0};
            size_t n = 0;
            for (size_t k = j; k < len && n < 3 && chunk_cls[p[k]]; k++) {
                if (chunk_cls[p[k]] == 1) {
                    win[n++] = p[k];
                }
            }
            if (pre3_has(pre3, na_rules_pre3(win[0], win[1], win[2]))) {
                return true;
            }
        }
    }
    return false;
}

/* Start of the chunk (bytes of class 1 or 2: al | pu) holding byte @p i. */
static size_t chunk_start(const uint64_t *al, const uint64_t *pu, size_t i) {
    size_t k = i >> 6;
    uint64_t m = ~(al[k] | pu[k]) & (((uint64_t)1 << (i & 63)) - 1);
    while (!m) {
        if (k == 0) {
            return 0;
        }
        k--;
        m = ~(al[k] | pu[k]);
    }
    return k * 64 + 64 - (size_t)__builtin_clzll(m);
}

/* End of the chunk holding byte @p i (bits past the field are clear). */
static size_t chunk_end(const uint64_t *al, const uint64_t *pu, size_t words, size_t i) {
    size_t k = i >> 6;
    uint64_t m = ~(al[k] | pu[k]) & ~(((uint64_t)2 << (i & 63)) - 1);
    while (!m) {
        if (++k == words) {
            return words * 64;
        }
        m = ~(al[k] | pu[k]);
    }
    return k * 64 + (size_t)__builtin_ctzll(m);
}

/* Set bits [a, e) of bitmap @p m. */
static void bits_set(uint64_t *m, size_t a, size_t e) {
    for (size_t i = a; i < e;) {
        size_t k = i >> 6;
        size_t lo = i & 63;
        size_t n = e - i < 64 - lo ? e - i : 64 - lo;
        uint64_t v = n == 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1) << lo;
        m[k] |= v;
        i += n;
    }
}

/*
 * scan_field() with the same hits, without cutting and hashing every word.
 * The text is cut into the same chunks (at bytes of class 0). Chunks that
 * hold - ' . or non-ASCII bytes between their ends are the tokeniser's;
 * every other chunk is one plain ASCII word, looked up (by word_hits() as
 * before) only when it may start a key: its first three bytes pass the
 * pre3 filter, and, when the key database is used, a key's text starts
 * there. A plain word's position is the number of runs of ASCII letters and
 * digits before it, corrected by each tokenised chunk before it by the
 * difference between its words and its runs.
 *
 * Chunks are tokenised lazily: one that may hold a key (chunk_hot()) is
 * read, and so is every chunk before a word that is looked up (its
 * position needs their word counts); the others are skipped. In a field
 * where no word may be a key (most fields, with few rules) nothing is
 * tokenised.
 */
NA_RULES_CLONES static na_err_t scan_field_fast(struct scan *s, int f, const char *text,
                                                size_t len, bool use_db) {
    const unsigned char *p = (const unsigned char *)text;
    const na_rules_t *r = s->r;
    size_t words = (len + 63) / 64;
    size_t cx_cnt = 0;
    size_t hot_end = 0; /* one past the start of the last chunk to read */
    char w[NA_RULES_QUICK_PAD];

    uint64_t *bm = s->bm_local; /* fields up to about 9 KB: no allocation */
    if (words * 7 + 2 > NA_SCAN_BM_LOCAL) {
        bm = na_rscan_grow(s, s->bm, &s->bm_cap, words * 7 + 2, sizeof(*bm));
        if (!bm) {
            return NA_ERR_NOMEM;
        }
        s->bm = bm;
    }
    uint64_t *al = bm; /* and a clear word after the field's */
    uint64_t *pu = al + words + 1;
    uint64_t *cand = pu + words;
    uint64_t *starts = cand + words;
    uint64_t *inside = starts + words;                /* bytes of tokenised chunks */
    uint64_t *hi = inside + words;                    /* bytes >= 0x80 */
    uint32_t *cum = (uint32_t *)(void *)(hi + words); /* words + 1 counts */
    al[words] = 0;
    if (use_db) {
        if (!s->scratch && !(s->scratch = na_rules_db_take(r))) {
            return NA_ERR_NOMEM;
        }
        memset(cand, 0, words * sizeof(*cand));
        struct db_ctx ctx = {p, r->db_lens, cand};
        if (hs_scan(r->db, text, (unsigned)len, 0, s->scratch, db_hit, &ctx) !=
            HS_SUCCESS) {
            return NA_ERR_NOMEM;
        }
        if (!bits_any(cand, 0, len) && !field_may_join_key(p, len, r->pre3)) {
            return NA_OK; /* no word of this field can be a key */
        }
    }
    field_masks(p, len, al, pu, hi);
    uint32_t runs = 0;
    for (size_t k = 0; k < words; k++) {
        uint64_t prev = k ? al[k - 1] >> 63 : 0;
        starts[k] = al[k] & ~((al[k] << 1) | prev);
        cum[k] = runs;
        runs += (uint32_t)__builtin_popcountll(starts[k]);
        inside[k] = 0;
    }
    cum[words] = runs;
    /* The chunks the tokeniser must read, in order. */
    size_t done = 0;
    for (size_t k = 0; k < words; k++) {
        for (uint64_t bits = pu[k]; bits; bits &= bits - 1) {
            size_t i = k * 64 + (size_t)__builtin_ctzll(bits);
            if (i < done) {
                continue;
            }
            size_t cs = chunk_start(al, pu, i);
            size_t ce = chunk_end(al, pu, words, i);
            done = ce;
            /* - ' . at the ends of a chunk separate like spaces. */
            while (cs < ce && (p[cs] == '-' || p[cs] == '\'' || p[cs] == '.')) {
                cs++;
            }
            while (ce > cs &&
                   (p[ce - 1] == '-' || p[ce - 1] == '\'' || p[ce - 1] == '.')) {
                ce--;
            }
            if (!bits_any(pu, cs, ce)) {
                continue; /* one plain word */
            }
            uint32_t *cx =
                na_rscan_grow(s, s->cx, &s->cx_cap, (cx_cnt + 1) * 2, sizeof(*cx));
            if (!cx) {
                return NA_ERR_NOMEM;
            }
            s->cx = cx;
            cx[cx_cnt * 2] = (uint32_t)cs;
            cx[cx_cnt * 2 + 1] = (uint32_t)ce;
            cx_cnt++;
            bits_set(inside, cs, ce);
            if (chunk_hot(p, cs, ce, al, starts, hi, r->pre3)) {
                hot_end = cs + 1;
            }
        }
    }
    /* Plain words in text order, each after the chunks before it. */
    struct chunks ch = {starts, cum, runs, 0, 0, cx_cnt};
    for (size_t k = 0; k < words; k++) {
        uint64_t bits = (use_db ? cand[k] : starts[k]) & ~inside[k];
        for (; bits; bits &= bits - 1) {
            size_t b = k * 64 + (size_t)__builtin_ctzll(bits);
            /* al bits past the field are clear: p[b + 2] is read only inside it */
            unsigned char c1 = BM_TEST(al, b + 1) ? p[b + 1] : 0;
            unsigned char c2 = c1 && BM_TEST(al, b + 2) ? p[b + 2] : 0;
            uint32_t q3 = na_rules_pre3(p[b], c1, c2);
            if (!pre3_has(r->pre3, q3)) {
                continue;
            }
            if (read_chunks(s, f, text, len, &ch, b)) {
                return NA_ERR_NOMEM;
            }
            uint32_t pos = (uint32_t)((int64_t)runs_before(starts, cum, b) + ch.adj);
            size_t e = run_end(al, words, b);
            size_t n = e - b <= NA_RULES_MAX_TERM_BYTES ? e - b : NA_RULES_MAX_TERM_BYTES;
            size_t j = 0;
            for (; j < n && b + j + 8 <= len; j += 8) {
                uint64_t v;
                memcpy(&v, p + b + j, 8);
                v |= 0x2020202020202020ull;
                memcpy(w + j, &v, 8);
            }
            for (; j < n; j++) {
                w[j] = (char)(p[b + j] | 0x20);
            }
            bool pfx = pre3_has(r->pre3 + 512, q3);
            word_hits(s, f, w, n, e - b > NA_RULES_MAX_TERM_BYTES, pfx, pos, pos,
                      (uint32_t)b, (uint32_t)e);
        }
    }
    if (hot_end && read_chunks(s, f, text, len, &ch, hot_end - 1)) {
        return NA_ERR_NOMEM;
    }
    return s->oom ? NA_ERR_NOMEM : NA_OK;
}

void na_rules_field_masks(const char *s, size_t len, uint64_t *al, uint64_t *pu) {
    field_masks((const unsigned char *)s, len, al, pu, NULL);
}

na_err_t na_rules_scan_words(const char *s, size_t len, na_rules_word_cb *cb, void *ctx) {
    struct scan sc;
    na_err_t err;
    na_rscan_init(&sc, NULL);
    err = scan_field(&sc, 0, s, len, cb, ctx);
    na_rscan_cleanup(&sc);
    return err;
}

/* Scan the fields and collect the dictionary hits. */
na_err_t na_rscan_article(struct scan *s, const struct na_article *a) {
    const char *fields[NA_RULES_FIELDS] = {a->title, a->summary, a->content};

    for (int f = 0; f < NA_RULES_FIELDS; f++) {
        const char *text = fields[f] ? fields[f] : "";
        size_t len = strnlen(text, NA_RULES_MAX_FIELD_BYTES);
        s->text[f] = text;
        s->len[f] = len;
        if (!s->r->b.keys_cnt || !len) {
            continue; /* no keys, or no words */
        }
        if (s->r->db_ok && na_rules_db_mode != NA_RULES_DB_OFF && len <= UINT32_MAX / 2) {
            /* Never by default: the database may miss keys (rules_match.h). */
            bool use_db = s->r->db && na_rules_db_mode == NA_RULES_DB_ALWAYS;
            if (scan_field_fast(s, f, text, len, use_db)) {
                return NA_ERR_NOMEM;
            }
        } else if (scan_field(s, f, text, len, NULL, NULL)) {
            return NA_ERR_NOMEM;
        }
    }
    return group_hits(s);
}

/* First hit in [lo, hi) (one key's run) with (field, pos) >= the given. */
static size_t hits_lower(const struct scan *s, size_t lo, size_t hi, uint8_t field,
                         uint32_t pos) {
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct hit *h = &s->hits[mid];
        if (h->field < field || (h->field == field && h->pos < pos)) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Can elements j.. of form follow from position pos in field? Sets the
 * end position and byte end of the first way found. */
static bool chain(const struct scan *s, const struct na_rform *form, uint32_t j,
                  uint8_t field, uint32_t pos, uint32_t *pos_end, uint32_t *bend) {
    uint32_t key = s->r->b.elems[form->elem_first + j];
    uint32_t first;
    uint32_t cnt = key_hits(s, key, &first);
    for (size_t i = hits_lower(s, first, first + cnt, field, pos); i < first + cnt; i++) {
        const struct hit *h = &s->hits[i];
        if (h->field != field || h->pos != pos) {
            break;
        }
        if (j + 1 == form->elem_cnt) {
            *pos_end = h->pos_end;
            *bend = h->bend;
            return true;
        }
        if (chain(s, form, j + 1, field, h->pos_end + 1, pos_end, bend)) {
            return true;
        }
    }
    return false;
}

static int cmp_occ(const void *a, const void *b) {
    const struct occ *x = a;
    const struct occ *y = b;
    if (x->field != y->field) {
        return x->field < y->field ? -1 : 1;
    }
    if (x->pos != y->pos) {
        return x->pos < y->pos ? -1 : 1;
    }
    if (x->pos_end != y->pos_end) {
        return x->pos_end > y->pos_end ? -1 : 1; /* longest first */
    }
    return 0;
}

NA_RULES_DEFINE_SORT(occ_sort, struct occ, cmp_occ)

/* Push the occurrences of an atom onto s->occ, sorted, one per position.
 * @returns how many. */
static size_t atom_occ(struct scan *s, uint32_t atom_idx) {
    const struct na_rbuild *b = &s->r->b;
    const struct na_ratom *atom = &b->atoms[atom_idx];
    size_t first = s->occ_cnt;
    for (uint32_t f = 0; f < atom->form_cnt; f++) {
        const struct na_rform *form = &b->forms[atom->form_first + f];
        uint32_t first_hit;
        uint32_t cnt = key_hits(s, b->elems[form->elem_first], &first_hit);
        for (size_t i = first_hit; i < first_hit + cnt; i++) {
            const struct hit *h = &s->hits[i];
            uint32_t pos_end = h->pos_end;
            uint32_t bend = h->bend;
            if (!(atom->fields & (1u << h->field))) {
                continue;
            }
            if (form->elem_cnt > 1 &&
                !chain(s, form, 1, h->field, h->pos_end + 1, &pos_end, &bend)) {
                continue;
            }
            if (s->occ_cnt == s->occ_cap) {
                struct occ *o =
                    na_rscan_grow(s, s->occ, &s->occ_cap, s->occ_cnt + 1, sizeof(*o));
                if (!o) {
                    s->occ_cnt = first;
                    return 0;
                }
                s->occ = o;
            }
            struct occ *o = &s->occ[s->occ_cnt++];
            o->pos = h->pos;
            o->pos_end = pos_end;
            o->bstart = h->bstart;
            o->bend = bend;
            o->atom = atom_idx;
            o->field = h->field;
            o->used = 0;
        }
    }
    size_t cnt = s->occ_cnt - first;
    if (cnt > 1) {
        /* One form's hits come in order; several forms' need sorting. */
        occ_sort(s, s->occ + first, cnt, &s->otmp, &s->otmp_cap);
        size_t w = first + 1;
        for (size_t i = first + 1; i < s->occ_cnt; i++) {
            if (s->occ[i].field == s->occ[w - 1].field &&
                s->occ[i].pos == s->occ[w - 1].pos) {
                continue;
            }
            s->occ[w++] = s->occ[i];
        }
        s->occ_cnt = w;
    }
    return s->occ_cnt - first;
}

/* 1, 1.5, 1.75, ... -> 2: repeated mentions count, with diminishing returns. */
static double saturate(size_t count) {
    if (count > 32) {
        count = 32;
    }
    return 2.0 - ldexp(1.0, 1 - (int)count);
}

static void ev_push(struct scan *s, uint32_t atom, const struct occ *o, double contrib) {
    if (s->ev_cnt == s->ev_cap) {
        struct ev *e = na_rscan_grow(s, s->ev, &s->ev_cap, s->ev_cnt + 1, sizeof(*e));
        if (!e) {
            return;
        }
        s->ev = e;
    }
    struct ev *e = &s->ev[s->ev_cnt++];
    e->atom = atom;
    e->bstart = o->bstart;
    e->bend = o->bend;
    e->field = o->field;
    e->contrib = contrib;
}

/* Score and evidence of atom's occurrences in s->occ[first..end) (only
 * those marked used when only_used). @returns the score. */
static double occ_score(struct scan *s, uint32_t atom_idx, size_t first, size_t end,
                        bool only_used) {
    const struct na_ratom *atom = &s->r->b.atoms[atom_idx];
    double score = 0;
    for (uint8_t f = 0; f < NA_RULES_FIELDS; f++) {
        size_t count = 0;
        const struct occ *firsto = NULL;
        for (size_t i = first; i < end; i++) {
            const struct occ *o = &s->occ[i];
            if (o->atom != atom_idx || o->field != f || (only_used && !o->used)) {
                continue;
            }
            if (!firsto) {
                firsto = o;
            }
            count++;
        }
        if (!count) {
            continue;
        }
        double c = atom->weight * s->topic->fw[f] * saturate(count);
        score += c;
        if (c > 0) {
            /* weight-0 terms decide truth, not score: not evidence */
            ev_push(s, atom_idx, firsto, atom->weight * s->topic->fw[f]);
        }
    }
    return score;
}

/* Per atom of a NEAR node and field: used occurrences and the first. */
struct near_acc {
    uint32_t cnt[NA_RULES_FIELDS];
    uint32_t first[NA_RULES_FIELDS];
};

/* Atoms of a NEAR node whose indices span at most this many are counted in
 * one pass over the occurrences. */
#define NA_RULES_NEAR_SPAN 256u

/*
 * The score of NEAR @p node from its used occurrences s->occ[l0, r1):
 * occ_score() of each distinct atom, in the node's order (which is also the
 * evidence order). The atoms of one node are usually numbered close
 * together: then one pass counts them all; otherwise one pass per atom.
 */
static double near_score(struct scan *s, const struct na_rnode *node, size_t l0,
                         size_t r1) {
    const struct na_rbuild *b = &s->r->b;
    uint32_t n = node->b + node->c;
    uint32_t amin = UINT32_MAX;
    uint32_t amax = 0;
    double score = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t atom = b->kids[node->a + i];
        amin = atom < amin ? atom : amin;
        amax = atom > amax ? atom : amax;
    }
    if (amax - amin >= NA_RULES_NEAR_SPAN) {
        for (uint32_t i = 0; i < n; i++) {
            uint32_t atom = b->kids[node->a + i];
            bool seen = false;
            for (uint32_t k = 0; k < i; k++) {
                seen = seen || b->kids[node->a + k] == atom;
            }
            if (!seen) {
                score += occ_score(s, atom, l0, r1, true);
            }
        }
        return score;
    }
    struct near_acc acc[NA_RULES_NEAR_SPAN];
    memset(acc, 0, (amax - amin + 1) * sizeof(*acc));
    for (size_t i = l0; i < r1; i++) {
        const struct occ *o = &s->occ[i];
        if (!o->used) {
            continue;
        }
        struct near_acc *a = &acc[o->atom - amin];
        if (!a->cnt[o->field]++) {
            a->first[o->field] = (uint32_t)i;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t atom = b->kids[node->a + i];
        struct near_acc *a = &acc[atom - amin];
        const struct na_ratom *at = &b->atoms[atom];
        for (uint8_t f = 0; f < NA_RULES_FIELDS; f++) {
            if (!a->cnt[f]) {
                continue;
            }
            double c = at->weight * s->topic->fw[f] * saturate(a->cnt[f]);
            score += c;
            if (c > 0) {
                /* weight-0 terms decide truth, not score: not evidence */
                ev_push(s, atom, &s->occ[a->first[f]], at->weight * s->topic->fw[f]);
            }
            a->cnt[f] = 0; /* an atom named twice counts once */
        }
    }
    return score;
}

static bool eval_near(struct scan *s, const struct na_rnode *node, double *score) {
    const struct na_rbuild *b = &s->r->b;
    size_t l0 = s->occ_cnt;
    bool any = false;
    for (uint32_t i = 0; i < node->b; i++) {
        atom_occ(s, b->kids[node->a + i]);
    }
    size_t r0 = s->occ_cnt;
    for (uint32_t i = 0; i < node->c; i++) {
        atom_occ(s, b->kids[node->a + node->b + i]);
    }
    size_t r1 = s->occ_cnt;
    occ_sort(s, s->occ + r0, r1 - r0, &s->otmp, &s->otmp_cap);
    for (size_t i = l0; i < r0; i++) {
        struct occ *lo = &s->occ[i];
        uint32_t from = lo->pos > node->near + NA_RULES_MAX_PHRASE_WORDS
                            ? lo->pos - node->near - NA_RULES_MAX_PHRASE_WORDS
                            : 0;
        /* binary search the first right occurrence at (field, >= from) */
        size_t lo_i = r0;
        size_t hi_i = r1;
        while (lo_i < hi_i) {
            size_t mid = lo_i + (hi_i - lo_i) / 2;
            const struct occ *m = &s->occ[mid];
            if (m->field < lo->field || (m->field == lo->field && m->pos < from)) {
                lo_i = mid + 1;
            } else {
                hi_i = mid;
            }
        }
        for (size_t k = lo_i; k < r1; k++) {
            struct occ *ro = &s->occ[k];
            uint32_t dist;
            if (ro->field != lo->field || ro->pos > lo->pos_end + node->near) {
                break;
            }
            if (ro->pos > lo->pos_end) {
                dist = ro->pos - lo->pos_end;
            } else if (ro->pos_end < lo->pos) {
                dist = lo->pos - ro->pos_end;
            } else {
                continue; /* the same words: not two things near each other */
            }
            if (dist <= node->near) {
                lo->used = ro->used = 1;
                any = true;
            }
        }
    }
    if (any) {
        *score = near_score(s, node, l0, r1);
    }
    s->occ_cnt = l0;
    return any;
}

static bool eval(struct scan *s, uint32_t n, double *score) {
    const struct na_rbuild *b = &s->r->b;
    const struct na_rnode *node = &b->nodes[n];
    size_t mark = s->ev_cnt;
    double sub;
    *score = 0;
    switch (node->kind) {
    case NA_RNODE_ATOM: {
        size_t first = s->occ_cnt;
        size_t cnt = atom_occ(s, node->a);
        if (cnt) {
            *score = occ_score(s, node->a, first, first + cnt, false);
        }
        s->occ_cnt = first;
        return cnt > 0;
    }
    case NA_RNODE_AND:
        for (uint32_t i = 0; i < node->b; i++) {
            if (!eval(s, b->kids[node->a + i], &sub)) {
                s->ev_cnt = mark;
                *score = 0;
                return false;
            }
            *score += sub;
        }
        return true;
    case NA_RNODE_OR: {
        bool any = false;
        for (uint32_t i = 0; i < node->b; i++) {
            size_t kid_mark = s->ev_cnt;
            if (eval(s, b->kids[node->a + i], &sub)) {
                any = true;
                *score += sub;
            } else {
                s->ev_cnt = kid_mark;
            }
        }
        return any;
    }
    case NA_RNODE_NOT: {
        bool r = eval(s, node->a, &sub);
        s->ev_cnt = mark;
        return !r;
    }
    case NA_RNODE_NEAR:
        if (!eval_near(s, node, score)) {
            s->ev_cnt = mark;
            return false;
        }
        return true;
    default:
        return false;
    }
}

/* Evaluate topic t; its evidence is left in s->ev from the mark on. */
void na_rscan_topic_eval(struct scan *s, size_t t, struct na_rules_verdict *v) {
    const struct na_rtopic *topic = &s->r->topics[t];
    double ignored;
    memset(v, 0, sizeof(*v));
    s->topic = topic;
    v->threshold = topic->threshold;
    v->query = eval(s, topic->query, &v->score);
    if (!v->query) {
        v->score = 0;
        return;
    }
    v->score = round(v->score * 1e6) / 1e6;
    if (topic->exclude != NA_RNONE) {
        size_t mark = s->ev_cnt;
        v->excluded = eval(s, topic->exclude, &ignored);
        s->ev_cnt = mark;
    }
    v->matched = !v->excluded && v->score + 1e-9 >= topic->threshold;
}
