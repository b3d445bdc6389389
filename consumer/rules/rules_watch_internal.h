/**
 * @file rules_watch_internal.h
 * @brief Watchlist topics, private to rules_watch.c (the list object, its
 *        dictionary of folded words and its trie), rules_watch_load.c (the
 *        list readers and freezing) and rules_watch_scan.c (finding the
 *        names in a field): the compiled list and the primitives both the
 *        loader and the scan use. See rules_watch.c for how a list is
 *        compiled and scanned, rules_watch.h for the API.
 */
#ifndef NEWSALERT_RULES_WATCH_INTERNAL_H
#define NEWSALERT_RULES_WATCH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "newsalert/err.h"
#include "newsalert/hash.h"
#include "rules_query.h"
#include "rules_watch.h"

#define NA_WNONE UINT32_MAX

/* Legal forms that a name may end with and the text may leave out
 * (legal_forms[] in rules_watch_load.c, which checks the count). */
#define NA_WATCH_LEGAL_CNT 60u
#define NA_WATCH_LEGAL_MAX_WORDS 8u

struct na_wentry {
    uint32_t col[NA_WATCH_COLS]; /* pool offsets; 0 is "" */
};

struct na_wpat {
    uint32_t entry;
    uint32_t label;       /* pool offset of the name or alias as listed */
    uint32_t exact_first; /* spans[exact_first .. +exact_cnt): listed words */
    uint16_t exact_cnt;   /* 0: folded match */
};

struct na_wspan {
    uint32_t off;
    uint32_t len;
};

/* A dictionary slot: quick-hash high half and word id + 1 (0 = empty). */
struct na_wdslot {
    uint32_t hash;
    uint32_t id1;
};

/* A slot of the scan's dictionary (built at freeze): a word's first 16
 * bytes kept in the slot, so a probe for a word of up to 16 bytes touches
 * one cache line, and the trie node the word starts (NA_WNONE if none). */
struct na_wsslot {
    uint32_t hash;
    uint32_t id1; /* word id + 1; 0 = empty */
    uint32_t root;
    uint16_t len;
    uint8_t flags; /* NA_WROOT_ENDS, NA_WROOT_KIDS of the root node */
    uint8_t pad;
    uint64_t w[2];
};
#define NA_WROOT_ENDS 1u /* a name of this one word, matched folded */
#define NA_WROOT_KIDS 2u /* names that go on after this word */
#define NA_WROOT_EXACT                                                                   \
    4u /* a name of this one word, matched as listed (and listed                         \
          with no lower-case ASCII letter first) */

struct na_wtok {
    uint32_t off; /* folded word in the pool */
    uint16_t len;
    uint8_t legal; /* first word of some legal form */
};

/* A trie edge: key (parent << 32 | word) + 1 (0 = empty) -> child. */
struct na_wedge {
    uint64_t key;
    uint32_t child;
};

struct na_watch_s {
    char digest[NA_SHA256_HEX_LEN + 1];
    char *pool;
    size_t pool_len, pool_cap;
    struct na_wentry *entries;
    size_t entries_cnt, entries_cap;
    struct na_wpat *pats;
    size_t pats_cnt, pats_cap;
    struct na_wspan *spans;
    size_t spans_cnt, spans_cap;
    struct na_wtok *toks;
    size_t toks_cnt, toks_cap;
    struct na_wdslot *dict;
    size_t dict_mask;
    uint64_t *bloom;     /* blocked filter: three bits of one 64-bit word per word */
    uint64_t bloom_mask; /* words - 1 */
    struct na_wsslot *stab;
    size_t stab_mask;
    /* two bits per listed word that is a one-word name (NA_WROOT_ENDS,
     * na_watch_one_bits(); NA_WROOT_EXACT, na_watch_one_exact_bits(), in
     * the same 64-bit word): a listed word of the text that the pairs
     * filter does not pass is looked up only when this passes it, as a
     * name matched folded, or as one matched as listed where the text does
     * not start with a lower-case letter */
    uint64_t *one;
    uint64_t one_mask; /* words - 1 */
    /* the pairs filter: one bit per pair of a name's first two words
     * (na_watch_pair_key() of their quick hashes), 8 bits per pair: a
     * listed word of the text that starts no one-word name is looked up
     * only when it and the word after it pass it */
    uint64_t *pair;
    uint64_t pair_mask; /* words - 1 */
    /* the head filter: one bit per dictionary word, keyed on its first 8
     * bytes and its length (na_watch_head_key()), 16 bits per word: the
     * first look at a plain word of the text, made for every word without
     * a branch */
    uint64_t *head;
    uint64_t head_mask; /* words - 1 */
    struct na_wedge *edges;
    size_t edges_mask, edges_cnt;
    uint32_t nodes_cnt;
    uint32_t *end_first; /* nodes_cnt + 1: ends[end_first[n] .. end_first[n+1]) */
    uint32_t *ends;
    /* legal forms as word ids: legal_words[i * NA_WATCH_LEGAL_MAX_WORDS ..], legal_len[i]
     */
    uint32_t legal_words[NA_WATCH_LEGAL_CNT * NA_WATCH_LEGAL_MAX_WORDS];
    uint8_t legal_len[NA_WATCH_LEGAL_CNT];
    size_t rejected;
    char **msgs;
    size_t msgs_cnt;
};

/* ---- small growable arrays (rules_watch.c) ---- */

/* @returns p grown to hold need elements of elem bytes (*cap updated), or
 * NULL on no memory (p unchanged and still owned by the caller). */
void *na_watch_grow(void *p, size_t *cap, size_t need, size_t elem);

/* @returns the pool offset of a NUL-terminated copy of s[0..len), or 0 on
 * no memory (offset 0 is the empty string, so "" costs nothing). */
uint32_t na_watch_pool_add(na_watch_t *w, const char *s, size_t len);

/* ---- dictionary of folded words (rules_watch.c) ---- */

static inline uint64_t na_watch_word_hash(const char *s, size_t len) {
    char buf[NA_RULES_QUICK_PAD] = {0};
    memcpy(buf, s, len);
    return na_rules_quick_hash(buf, len, 0);
}

static inline uint64_t na_watch_bloom_bits(uint64_t h) {
    return (uint64_t)1 << ((h >> 40) & 63) | (uint64_t)1 << ((h >> 46) & 63) |
           (uint64_t)1 << ((h >> 52) & 63);
}

/* The bit of na_watch_s.one, word (h >> 24) & one_mask, for quick hash h. */
static inline uint64_t na_watch_one_bits(uint64_t h) {
    return (uint64_t)1 << (h & 63) | (uint64_t)1 << ((h >> 6) & 63);
}

/* The bits of na_watch_s.one for a one-word name matched as listed. */
static inline uint64_t na_watch_one_exact_bits(uint64_t h) {
    return (uint64_t)1 << ((h >> 12) & 63) | (uint64_t)1 << ((h >> 18) & 63);
}

/* The head filter's key of a word of @p len bytes whose first
 * min(len, 8) bytes, with 0x20 ORed into each, are @p v (little-endian,
 * zero above them). The length is added, not multiplied in: the multiply
 * carries it into the high bits the filter reads, and the scan computes
 * this for every run of letters and digits of the text. */
static inline uint64_t na_watch_head_key(uint64_t v, size_t len) {
    return (v + (uint64_t)len) * 0xff51afd7ed558ccdull;
}

/* The word of na_watch_s.head for key k (its high bits, the best mixed). */
static inline size_t na_watch_head_word(uint64_t k, uint64_t head_mask) {
    return (size_t)(k >> 34) & head_mask;
}

/* The bit in that word. */
static inline unsigned na_watch_head_bit(uint64_t k) {
    return (unsigned)(k >> 58);
}

/* The pairs filter's key of words of quick hashes h0 then h1. */
static inline uint64_t na_watch_pair_key(uint64_t h0, uint64_t h1) {
    return (h0 * 0x9e3779b97f4a7c15ull ^ h1) * 0xff51afd7ed558ccdull;
}

/* Make the dictionary @p slots (a power of two) slots. */
NA_WUR na_err_t na_watch_dict_rehash(na_watch_t *w, size_t slots);

/* @returns the id of folded word s[0..len), added if new; NA_WNONE on no memory. */
uint32_t na_watch_dict_add(na_watch_t *w, const char *s, size_t len);

/* ---- the trie (rules_watch.c) ---- */

static inline size_t na_watch_edge_slot(uint64_t key, size_t mask) {
    return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 29) & mask;
}

static inline uint32_t na_watch_edge_find(const na_watch_t *w, uint32_t node,
                                          uint32_t tok) {
    uint64_t key = ((uint64_t)node << 32 | tok) + 1;
    for (size_t j = na_watch_edge_slot(key, w->edges_mask);;
         j = (j + 1) & w->edges_mask) {
        if (w->edges[j].key == key) {
            return w->edges[j].child;
        }
        if (!w->edges[j].key) {
            return NA_WNONE;
        }
    }
}

/* Make the edge table @p slots (a power of two) slots. */
NA_WUR na_err_t na_watch_edges_rehash(na_watch_t *w, size_t slots);

/* @returns the child of node by word tok, made if new; NA_WNONE on no memory. */
uint32_t na_watch_edge_add(na_watch_t *w, uint32_t node, uint32_t tok);

#endif
