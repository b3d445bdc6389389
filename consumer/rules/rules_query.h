/**
 * @file rules_query.h
 * @brief The middle layer of the rules engine: the compiled form of a query
 *        (flat arrays addressed by index) and the compiler that builds it
 *        from the query language (rules_query.c). The matcher
 *        (rules_match.h) evaluates it.
 *
 * Ownership: everything lives in one na_rbuild; na_rbuild_cleanup() frees
 * it. Single-threaded while building; read-only afterwards.
 */
#ifndef NEWSALERT_RULES_QUERY_H
#define NEWSALERT_RULES_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "newsalert/err.h"
#include "rules_text.h"

/* Caps on rules input (a rules file is input like any other). */
/** Longest query (or exclude) text of one topic, all clauses together (bytes). */
#define NA_RULES_MAX_QUERY_BYTES (64u * 1024u)
/** Deepest nesting of parentheses and NOT in one query. */
#define NA_RULES_MAX_DEPTH 32u
/** Most query nodes (terms and operators) in one query. */
#define NA_RULES_MAX_NODES 4096u
/** Most words in one phrase. */
#define NA_RULES_MAX_PHRASE_WORDS 16u
/** Largest n of NEAR/n. */
#define NA_RULES_MAX_NEAR 100u
/** Shortest prefix before a '*' (folded bytes). */
#define NA_RULES_MIN_PREFIX 3u
/** Largest term weight (^w) and field weight. */
#define NA_RULES_MAX_WEIGHT 100.0

/* Article fields, in evidence order. */
enum na_rules_field {
    NA_RULES_TITLE = 0,
    NA_RULES_SUMMARY,
    NA_RULES_CONTENT,
    NA_RULES_FIELDS
};

#define NA_RULES_F_TITLE (1u << NA_RULES_TITLE)
#define NA_RULES_F_SUMMARY (1u << NA_RULES_SUMMARY)
#define NA_RULES_F_CONTENT (1u << NA_RULES_CONTENT)
#define NA_RULES_F_BODY (NA_RULES_F_SUMMARY | NA_RULES_F_CONTENT)
#define NA_RULES_F_ALL (NA_RULES_F_TITLE | NA_RULES_F_BODY)

/* ---- compiled query (rules_query.c builds, the matcher evaluates) ---- */

enum na_rnode_kind {
    NA_RNODE_ATOM = 0, /**< a: atom index */
    NA_RNODE_AND,      /**< kids[a .. a+b) */
    NA_RNODE_OR,       /**< kids[a .. a+b) */
    NA_RNODE_NOT,      /**< a: child node */
    NA_RNODE_NEAR      /**< atoms kids[a .. a+b) on the left, then c on the right */
};

struct na_rnode {
    uint8_t kind;
    uint16_t near; /**< n of NEAR/n */
    uint32_t a;
    uint32_t b;
    uint32_t c;
};

/** A term, prefix or phrase as written; matches when any of its forms does. */
struct na_ratom {
    uint32_t text_off; /**< as written, in na_rules_s.strs */
    uint32_t text_len;
    uint32_t form_first; /**< forms[form_first .. +form_cnt) */
    uint32_t form_cnt;
    double weight;  /**< ^w, times the weights of enclosing groups */
    uint8_t fields; /**< NA_RULES_F_* mask from title:/body: scopes */
};

/** A sequence of consecutive words; each element is a key index. */
struct na_rform {
    uint32_t elem_first;
    uint32_t elem_cnt;
};

/** A dictionary key: an exact (plural-folded) word or a prefix. */
struct na_rkey {
    uint32_t str_off;
    uint16_t len;
    uint8_t prefix;
    uint32_t hash;
    uint32_t post_first; /**< posts[post_first .. +post_cnt): candidate topics */
    uint32_t post_cnt;
};

#define NA_RNONE UINT32_MAX

struct na_rtopic {
    char *name;
    char *description;
    double threshold;
    double fw[NA_RULES_FIELDS]; /**< field weights */
    uint32_t query;             /**< root node */
    uint32_t exclude;           /**< root node or NA_RNONE */
    uint8_t req; /**< groups of keys that must all occur: bit g = group g */
    /** A watchlist topic (rules_watch.h): no query, never a candidate by
     *  keys; NULL for a query topic. */
    struct na_watch_s *watch;
};

/** Most key groups of one topic that candidate selection checks. */
#define NA_RULES_MAX_GROUPS 8u
/** A posting: topic index in the low 24 bits, group number above. */
#define NA_RULES_POST_TOPIC(p) ((p)&0xffffffu)
#define NA_RULES_POST_GROUP(p) ((p) >> 24)

/** Growable arrays the compiler appends to; frozen into na_rules_s. */
struct na_rbuild {
    struct na_rnode *nodes;
    size_t nodes_cnt, nodes_cap;
    uint32_t *kids;
    size_t kids_cnt, kids_cap;
    struct na_ratom *atoms;
    size_t atoms_cnt, atoms_cap;
    struct na_rform *forms;
    size_t forms_cnt, forms_cap;
    uint32_t *elems;
    size_t elems_cnt, elems_cap;
    struct na_rkey *keys;
    size_t keys_cnt, keys_cap;
    uint32_t *slots; /**< open addressing: key index + 1, 0 = empty */
    size_t slots_cnt;
    char *strs;
    size_t strs_len, strs_cap;
    uint64_t prefix_lens; /**< bit L set: some prefix key has length L */
};

/** Bytes a buffer given to na_rules_quick_hash() must have: a longest
 *  term, a plural "y", and room to read whole 8-byte words. */
#define NA_RULES_QUICK_PAD (NA_RULES_MAX_TERM_BYTES + 16u)

/**
 * A cheap hash of @p s[0..len) for the key filter (not the dictionary's).
 * Reads whole 8-byte words: @p s must be readable up to len rounded up to
 * 8 (a NA_RULES_QUICK_PAD buffer); bytes past len do not count.
 */
static inline uint64_t na_rules_quick_hash(const char *s, size_t len, int prefix) {
    uint64_t h = ((uint64_t)len << 1 | (uint64_t)prefix) * 0x9e3779b97f4a7c15ull;
    size_t i = 0;
    uint64_t v;
    for (; i + 8 <= len; i += 8) {
        memcpy(&v, s + i, 8);
        h = (h ^ v) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    if (i < len) {
        memcpy(&v, s + i, 8);
        v &= ~(uint64_t)0 >> (8 * (8 - (len - i)));
        h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
    }
    return h ^ (h >> 29);
}

/** @returns the dictionary hash of key (s, len, prefix); @p s as for
 *           na_rules_quick_hash(). */
static inline uint32_t na_rules_key_hash(const char *s, size_t len, int prefix) {
    return (uint32_t)(na_rules_quick_hash(s, len, prefix) >> 32);
}

/** Hash of a key: FNV-1a over the bytes, finished with the kind. */
#define NA_RULES_FNV_INIT 2166136261u
static inline uint32_t na_rules_fnv(uint32_t h, unsigned char c) {
    return (h ^ c) * 16777619u;
}
static inline uint32_t na_rules_hash_fin(uint32_t h, int prefix) {
    h ^= prefix ? 0x9e3779b9u : 0x7f4a7c15u;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    return h;
}

/** @returns the key index of (s, len, prefix), or NA_RNONE. */
uint32_t na_rules_key_find(const struct na_rbuild *b, const char *s, size_t len,
                           int prefix, uint32_t hash);

/** @returns the key index of (s, len, prefix), added if new; NA_RNONE on no memory. */
uint32_t na_rules_key_add(struct na_rbuild *b, const char *s, size_t len, int prefix);

/** @brief Free the arrays of @p b. */
void na_rbuild_cleanup(struct na_rbuild *b);

/**
 * @brief Compile one query (its clauses ORed together) into @p b.
 * @param clauses the query texts; @p clauses_cnt of them.
 * @param root set to the root node index.
 * @param positive true for a topic's query, which must need a term outside
 *        NOT to be true (so that the topic can be found by its terms); false
 *        for exclude queries.
 * @param err_clause, err_col set on error: which clause and the column
 *        (1-based, in characters) within it; errstr gets the message alone.
 * @returns NA_OK, NA_ERR_CONFIG (bad query) or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_rules_query_compile(struct na_rbuild *b, const char *const *clauses,
                                       size_t clauses_cnt, bool positive, uint32_t *root,
                                       size_t *err_clause, size_t *err_col, char *errstr,
                                       size_t errstr_size);

#endif
