/*
 * Watchlist topics: a restricted-party list read from the Consolidated
 * Screening List's CSV or JSON, or from one name per line, compiled into a
 * trie of folded words, and found in article text in one pass per field.
 * See rules_watch.h for what matches and docs/rules.md, "Watchlists".
 *
 * Compiling: each name and alias is tokenised as the rules language folds
 * text (rules_text.c). Its parts (one word per position; "Al-Noor" gives
 * "al" and "noor") less a trailing legal form are its core; the core's
 * words, as word ids of the list's dictionary, are a path in a trie whose
 * node records that the pattern ends there. A hyphenated or dotted core is
 * also added with its joined words ("alnoor"). An individual's
 * "SURNAME, Given" is also added as "Given SURNAME".
 *
 * Scanning a field (scan_fast()): the same words, positions and offsets
 * as the rules scanner reads (na_rules_scan_words(); NA_WATCH_SCAN_WORDS
 * reads them through it, for tests), from the scanner's bitmaps. A plain
 * ASCII word is looked up only when its first 8 bytes and length can be a
 * listed word's (the head filter, one bit per run without a branch, 16
 * bits per listed word) and the word filter passes it (three bits in one
 * 64-bit word per listed word; 4 bits per listed word), hashed in place; a
 * slot of the dictionary holds a word's first 16 bytes and the trie node it
 * starts. Chunks with - ' . or non-ASCII bytes go through the tokeniser,
 * but for ASCII ones that no listed word can come from (chunk_cold(), the
 * same two filters on every word the tokeniser could make of it), which
 * count as one word. The listed words found, in position order, are walked
 * down the trie from each one that can start a name there: a one-word name
 * (the one-word filter tells those matched folded from those matched as
 * listed, which need a text not starting in lower case), or a listed word
 * right after it whose pair with it the pairs filter passes (a name's first
 * two words, 8 bits per pair); the longest name found at a place wins and the
 * walk goes on after it. "SURNAME, Given Middle" is also added as "Given SURNAME";
 * symbols written onto a short (exact-case) name are part of its spelling.
 *
 * This file holds the list object (destroy, accessors) and the primitives
 * the loader and the scan share: the string pool, the dictionary of folded
 * words and the trie (rules_watch_internal.h). The list readers and
 * freezing are in rules_watch_load.c, the scanning in rules_watch_scan.c.
 */
#include "rules_watch.h"

#include <stdlib.h>
#include <string.h>

#include "rules_query.h"
#include "rules_watch_internal.h"

/* ---- small growable arrays ---- */

void *na_watch_grow(void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) {
        return p;
    }
    size_t cap2 = *cap ? *cap : 16;
    while (cap2 < need) {
        cap2 *= 2;
    }
    void *q = realloc(p, cap2 * elem);
    if (q) {
        *cap = cap2;
    }
    return q;
}

/* @returns the pool offset of a NUL-terminated copy of s[0..len), or 0 on
 * no memory (offset 0 is the empty string, so "" costs nothing). */
uint32_t na_watch_pool_add(na_watch_t *w, const char *s, size_t len) {
    if (!len) {
        return 0;
    }
    if (w->pool_len + len + 1 > UINT32_MAX) {
        return 0;
    }
    char *p = na_watch_grow(w->pool, &w->pool_cap, w->pool_len + len + 1, 1);
    if (!p) {
        return 0;
    }
    w->pool = p;
    uint32_t off = (uint32_t)w->pool_len;
    memcpy(p + off, s, len);
    p[off + len] = '\0';
    w->pool_len += len + 1;
    return off;
}

/* ---- dictionary of folded words ---- */

/* @returns the id of a folded word w[0..len) (a NA_RULES_QUICK_PAD buffer
 * for the scan, any buffer when h is given), NA_WNONE if absent. */
static inline uint32_t dict_find(const na_watch_t *w, const char *s, size_t len,
                                 uint64_t h) {
    uint32_t hash = (uint32_t)(h >> 32);
    for (size_t j = hash & w->dict_mask;; j = (j + 1) & w->dict_mask) {
        const struct na_wdslot *sl = &w->dict[j];
        if (!sl->id1) {
            return NA_WNONE;
        }
        if (sl->hash == hash) {
            const struct na_wtok *t = &w->toks[sl->id1 - 1];
            if (t->len == len && !memcmp(w->pool + t->off, s, len)) {
                return sl->id1 - 1;
            }
        }
    }
}

na_err_t na_watch_dict_rehash(na_watch_t *w, size_t slots) {
    struct na_wdslot *d = calloc(slots, sizeof(*d));
    if (!d) {
        return NA_ERR_NOMEM;
    }
    for (size_t i = 0; i < w->toks_cnt; i++) {
        const struct na_wtok *t = &w->toks[i];
        uint32_t hash = (uint32_t)(na_watch_word_hash(w->pool + t->off, t->len) >> 32);
        size_t j = hash & (slots - 1);
        while (d[j].id1) {
            j = (j + 1) & (slots - 1);
        }
        d[j].hash = hash;
        d[j].id1 = (uint32_t)i + 1;
    }
    free(w->dict);
    w->dict = d;
    w->dict_mask = slots - 1;
    return NA_OK;
}

/* @returns the id of folded word s[0..len), added if new; NA_WNONE on no memory. */
uint32_t na_watch_dict_add(na_watch_t *w, const char *s, size_t len) {
    uint64_t h = na_watch_word_hash(s, len);
    uint32_t id = dict_find(w, s, len, h);
    if (id != NA_WNONE) {
        return id;
    }
    if ((w->toks_cnt + 1) * 2 > w->dict_mask + 1 &&
        na_watch_dict_rehash(w, (w->dict_mask + 1) * 2)) {
        return NA_WNONE;
    }
    struct na_wtok *t = na_watch_grow(w->toks, &w->toks_cap, w->toks_cnt + 1, sizeof(*t));
    if (!t) {
        return NA_WNONE;
    }
    w->toks = t;
    uint32_t off = na_watch_pool_add(w, s, len);
    if (!off) {
        return NA_WNONE;
    }
    id = (uint32_t)w->toks_cnt++;
    w->toks[id].off = off;
    w->toks[id].len = (uint16_t)len;
    w->toks[id].legal = 0;
    uint32_t hash = (uint32_t)(h >> 32);
    size_t j = hash & w->dict_mask;
    while (w->dict[j].id1) {
        j = (j + 1) & w->dict_mask;
    }
    w->dict[j].hash = hash;
    w->dict[j].id1 = id + 1;
    return id;
}

/* ---- the trie ---- */

na_err_t na_watch_edges_rehash(na_watch_t *w, size_t slots) {
    struct na_wedge *e = calloc(slots, sizeof(*e));
    if (!e) {
        return NA_ERR_NOMEM;
    }
    for (size_t i = 0; w->edges && i <= w->edges_mask; i++) {
        if (!w->edges[i].key) {
            continue;
        }
        size_t j = na_watch_edge_slot(w->edges[i].key, slots - 1);
        while (e[j].key) {
            j = (j + 1) & (slots - 1);
        }
        e[j] = w->edges[i];
    }
    free(w->edges);
    w->edges = e;
    w->edges_mask = slots - 1;
    return NA_OK;
}

/* @returns the child of node by word tok, made if new; NA_WNONE on no memory. */
uint32_t na_watch_edge_add(na_watch_t *w, uint32_t node, uint32_t tok) {
    uint32_t child = na_watch_edge_find(w, node, tok);
    if (child != NA_WNONE) {
        return child;
    }
    if ((w->edges_cnt + 1) * 2 > w->edges_mask + 1 &&
        na_watch_edges_rehash(w, (w->edges_mask + 1) * 2)) {
        return NA_WNONE;
    }
    uint64_t key = ((uint64_t)node << 32 | tok) + 1;
    size_t j = na_watch_edge_slot(key, w->edges_mask);
    while (w->edges[j].key) {
        j = (j + 1) & w->edges_mask;
    }
    w->edges[j].key = key;
    w->edges[j].child = w->nodes_cnt++;
    w->edges_cnt++;
    return w->edges[j].child;
}

/* ---- the list object ---- */

void na_watch_destroy(na_watch_t *w) {
    if (!w) {
        return;
    }
    for (size_t i = 0; i < w->msgs_cnt; i++) {
        free(w->msgs[i]);
    }
    free(w->msgs);
    free(w->pool);
    free(w->entries);
    free(w->pats);
    free(w->spans);
    free(w->toks);
    free(w->dict);
    free(w->bloom);
    free(w->stab);
    free(w->one);
    free(w->head);
    free(w->pair);
    free(w->edges);
    free(w->end_first);
    free(w->ends);
    free(w);
}

const char *na_watch_digest(const na_watch_t *w) {
    return w->digest;
}

size_t na_watch_entry_count(const na_watch_t *w, size_t *rejected) {
    if (rejected) {
        *rejected = w->rejected;
    }
    return w->entries_cnt;
}

const char *na_watch_message(const na_watch_t *w, size_t i) {
    return i < w->msgs_cnt ? w->msgs[i] : NULL;
}

const char *na_watch_entry_str(const na_watch_t *w, uint32_t e, enum na_watch_col c) {
    if (e >= w->entries_cnt || c >= NA_WATCH_COLS) {
        return "";
    }
    return w->pool + w->entries[e].col[c];
}

uint32_t na_watch_pattern_entry(const na_watch_t *w, uint32_t pat) {
    return w->pats[pat].entry;
}

const char *na_watch_pattern_label(const na_watch_t *w, uint32_t pat) {
    return w->pool + w->pats[pat].label;
}

size_t na_watch_bytes(const na_watch_t *w) {
    return w->pool_cap + w->entries_cap * sizeof(*w->entries) +
           w->pats_cap * sizeof(*w->pats) + w->spans_cap * sizeof(*w->spans) +
           w->toks_cap * sizeof(*w->toks) + (w->dict_mask + 1) * sizeof(*w->dict) +
           (w->bloom_mask + 1) * 8 + (w->stab_mask + 1) * sizeof(*w->stab) +
           (w->one ? (w->one_mask + 1) * 8 : 0) + (w->head ? (w->head_mask + 1) * 8 : 0) +
           (w->edges_mask + 1) * sizeof(*w->edges) +
           ((size_t)w->nodes_cnt + 1) * sizeof(*w->end_first) +
           (w->end_first ? w->end_first[w->nodes_cnt] : 0) * sizeof(*w->ends);
}
