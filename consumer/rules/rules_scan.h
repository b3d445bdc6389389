/**
 * @file rules_scan.h
 * @brief Private to the matcher (rules_scan.c scans, rules.c builds the
 *        matches, rules_load.c uses the key table): one article's scan.
 *
 * Every allocation of a call lives in a struct scan on the caller's stack,
 * so calls on one rules object may run concurrently.
 */
#ifndef NEWSALERT_RULES_SCAN_H
#define NEWSALERT_RULES_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "newsalert/article.h"
#include "rules_match.h"

/* @returns the key index of word w[0..len) (a NA_RULES_QUICK_PAD buffer)
 * as a prefix or exact key, NA_RNONE when none; @p h its quick hash. */
static inline uint32_t na_rules_ktab_find(const na_rules_t *r, const char *w, size_t len,
                                          int prefix, uint64_t h) {
    uint32_t hash = (uint32_t)(h >> 32);
    uint64_t w0, w1;
    memcpy(&w0, w, 8);
    memcpy(&w1, w + 8, 8);
    if (len < 8) {
        w0 &= ~(uint64_t)0 >> (8 * (8 - len));
        w1 = 0;
    } else if (len < 16) {
        w1 = len == 8 ? 0 : w1 & (~(uint64_t)0 >> (8 * (16 - len)));
    }
    for (size_t j = hash & r->ktab_mask;; j = (j + 1) & r->ktab_mask) {
        const struct na_rslot *sl = &r->ktab[j];
        if (!sl->len) {
            return NA_RNONE;
        }
        if (sl->hash == hash && sl->len == len && sl->prefix == prefix &&
            sl->w[0] == w0 && sl->w[1] == w1 &&
            (len <= 16 ||
             !memcmp(r->b.strs + r->b.keys[sl->key].str_off + 16, w + 16, len - 16))) {
            return sl->key;
        }
    }
}

/* ================================================================ */
/* Matching                                                         */
/* ================================================================ */

struct hit {
    uint32_t key;
    uint32_t pos;
    uint32_t pos_end;
    uint32_t bstart;
    uint32_t bend;
    uint8_t field;
};

/* One occurrence of an atom. */
struct occ {
    uint32_t pos;
    uint32_t pos_end;
    uint32_t bstart;
    uint32_t bend;
    uint32_t atom;
    uint8_t field;
    uint8_t used;
};

/* The run of s->hits of one key; cnt 0 = empty slot. */
struct krange {
    uint32_t key;
    uint32_t first;
    uint32_t cnt;
};

/* One piece of evidence: an atom's first counted occurrence in a field. */
struct ev {
    uint32_t atom;
    uint32_t bstart;
    uint32_t bend;
    uint8_t field;
    double contrib;
};

/* Bitmap words kept in the scan itself (a field of up to about 9 KB). */
#define NA_SCAN_BM_LOCAL 1024u

struct scan {
    const na_rules_t *r;
    const char *text[NA_RULES_FIELDS];
    size_t len[NA_RULES_FIELDS];
    struct na_rtoks toks; /* scratch: one chunk of a field */
    struct hit *hits;
    size_t hits_cnt;
    size_t hits_cap;
    struct occ *occ;
    size_t occ_cnt;
    size_t occ_cap;
    struct occ *otmp; /* occ_sort() scratch */
    size_t otmp_cap;
    struct ev *etmp; /* ev_sort_*() scratch */
    size_t etmp_cap;
    struct ev *ev;
    size_t ev_cnt;
    size_t ev_cap;
    struct krange *kr; /* hash map: hit key -> its run of hits */
    size_t kr_mask;
    struct krange kr_none[1];      /* kr when there are no hits */
    const struct na_rtopic *topic; /* being evaluated */
    void *scratch;                 /* fast path: from na_rules_db_take() */
    uint64_t *bm;                  /* fast path: bitmaps of one field */
    size_t bm_cap;
    uint32_t *cx; /* fast path: complex chunks of one field, [start, end) pairs */
    size_t cx_cap;
    bool oom;
    /* last: scan_init() does not clear it */
    uint64_t bm_local[NA_SCAN_BM_LOCAL]; /* fast path: bitmaps that fit here */
};

/** @returns @p p grown to hold @p need elements of @p elem bytes (*cap
 *  updated), or NULL with s->oom set (p is then still valid). */
void *na_rscan_grow(struct scan *s, void *p, size_t *cap, size_t need, size_t elem);

/* A stable merge sort of runs (a type, a comparison), the scratch kept in
 * the scan: what occurrences and evidence are sorted with. */
/*
 * A stable merge sort of @p n elements of @p type at @p v by @p cmp, for
 * arrays that are mostly sorted runs already (occurrences of one atom after
 * another, evidence in place order): the runs are found, then merged
 * pairwise through a scratch array kept in the scan (*tmp, *tmp_cap).
 * Sets s->oom and leaves @p v unsorted on no memory.
 */
#define NA_RULES_DEFINE_SORT(name, type, cmp)                                            \
    static void name(struct scan *s, type *v, size_t n, type **tmp, size_t *tmp_cap) {   \
        size_t runs = 1;                                                                 \
        for (size_t i = 1; i < n; i++) {                                                 \
            runs += cmp(&v[i - 1], &v[i]) > 0;                                           \
        }                                                                                \
        if (runs <= 1) {                                                                 \
            return;                                                                      \
        }                                                                                \
        type *t = na_rscan_grow(s, *tmp, tmp_cap, n, sizeof(type));                      \
        if (!t) {                                                                        \
            return;                                                                      \
        }                                                                                \
        *tmp = t;                                                                        \
        type *src = v;                                                                   \
        type *dst = t;                                                                   \
        while (runs > 1) {                                                               \
            size_t i = 0;                                                                \
            runs = 0;                                                                    \
            while (i < n) {                                                              \
                size_t m = i + 1;                                                        \
                while (m < n && cmp(&src[m - 1], &src[m]) <= 0) {                        \
                    m++;                                                                 \
                }                                                                        \
                size_t e = m;                                                            \
                if (m < n) {                                                             \
                    e = m + 1;                                                           \
                    while (e < n && cmp(&src[e - 1], &src[e]) <= 0) {                    \
                        e++;                                                             \
                    }                                                                    \
                }                                                                        \
                size_t a = i, b = m, k = i;                                              \
                while (a < m && b < e) {                                                 \
                    dst[k++] = cmp(&src[b], &src[a]) < 0 ? src[b++] : src[a++];          \
                }                                                                        \
                while (a < m) {                                                          \
                    dst[k++] = src[a++];                                                 \
                }                                                                        \
                while (b < e) {                                                          \
                    dst[k++] = src[b++];                                                 \
                }                                                                        \
                runs++;                                                                  \
                i = e;                                                                   \
            }                                                                            \
            type *x = src;                                                               \
            src = dst;                                                                   \
            dst = x;                                                                     \
        }                                                                                \
        if (src != v) {                                                                  \
            memcpy(v, src, n * sizeof(type));                                            \
        }                                                                                \
    }

/** @brief Make @p s empty for @p r (NULL: a scan that only tokenises). */
void na_rscan_init(struct scan *s, const na_rules_t *r);

/** @brief Free what @p s holds (and give back its scratch space). */
void na_rscan_cleanup(struct scan *s);

/** @brief Read every field of @p a once into s->hits, sorted.
 *  @returns NA_OK or NA_ERR_NOMEM. */
NA_WUR na_err_t na_rscan_article(struct scan *s, const struct na_article *a);

/** @brief Evaluate topic @p t over the scan into @p v (evidence in s->ev). */
void na_rscan_topic_eval(struct scan *s, size_t t, struct na_rules_verdict *v);

#endif
