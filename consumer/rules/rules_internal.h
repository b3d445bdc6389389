/**
 * @file rules_internal.h
 * @brief Private to the rules engine (rules.c, rules_text.c, rules_query.c)
 *        and its command-line front end (cmd_classify.c) and tests.
 *
 * The compiled rules are flat arrays addressed by index (nodes, atoms,
 * forms, elements, keys, postings), so a compiled rules object is a handful
 * of allocations and is never written after na_rules_load_buf() returns;
 * that is what makes concurrent na_rules_classify() calls safe.
 * See docs/rules.md for the language and the invariants.
 */
#ifndef NEWSALERT_RULES_INTERNAL_H
#define NEWSALERT_RULES_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "newsalert/err.h"
#include "rules.h"

/* Caps on rules input (a rules file is input like any other). */
/** Longest query (or exclude) text of one topic, all clauses together (bytes). */
#define NA_RULES_MAX_QUERY_BYTES (64u * 1024u)
/** Deepest nesting of parentheses and NOT in one query. */
#define NA_RULES_MAX_DEPTH 32u
/** Most topics in one rules file. */
#define NA_RULES_MAX_TOPICS 100000u
/** Most query nodes (terms and operators) in one query. */
#define NA_RULES_MAX_NODES 4096u
/** Longest single query term after folding (bytes). */
#define NA_RULES_MAX_TERM_BYTES 64u
/** Most words in one phrase. */
#define NA_RULES_MAX_PHRASE_WORDS 16u
/** Largest n of NEAR/n. */
#define NA_RULES_MAX_NEAR 100u
/** Shortest prefix before a '*' (folded bytes). */
#define NA_RULES_MIN_PREFIX 3u
/** Largest term weight (^w) and field weight. */
#define NA_RULES_MAX_WEIGHT 100.0
/** Most evidence entries reported per matched topic. */
#define NA_RULES_MAX_EVIDENCE 32u
/** Longest snippet (bytes, including the "…" marks). */
#define NA_RULES_SNIPPET_BYTES 200u
/** Longest "matched" text in one evidence entry (bytes). */
#define NA_RULES_MATCHED_BYTES 120u
/** Bytes of each article field that are scanned; the rest is ignored. */
#define NA_RULES_MAX_FIELD_BYTES (1024u * 1024u)

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

/* ---- text: folding and tokenising (rules_text.c) ---- */

/**
 * One token of a text. Positions count words: the parts of a hyphenated
 * word take one position each, and the whole word is one more token that
 * spans them (pos .. pos_end), so "dual-use" yields "dual"@p, "use"@p+1
 * and "dualuse"@p..p+1.
 */
struct na_rtok {
    uint32_t bstart;   /**< byte offset of the first byte in the source */
    uint32_t bend;     /**< byte offset just past the last byte */
    uint32_t pos;      /**< word position */
    uint32_t pos_end;  /**< last word position covered (== pos unless joined) */
    uint32_t fold_off; /**< folded form in na_rtoks.text */
    uint16_t fold_len; /**< folded form length (bytes), before plural folding */
    uint16_t stem_len; /**< stem = fold[0..stem_len) + ("y" if stem_y) */
    uint8_t stem_y;
    uint8_t truncated; /**< longer than NA_RULES_MAX_TERM_BYTES: only the first
                            bytes are kept, for prefixes; no exact match */
};

/** A tokenised text. _init/_cleanup. */
struct na_rtoks {
    struct na_rtok *v;
    size_t cnt;
    size_t cap;
    char *text; /**< folded forms, back to back (not NUL-separated) */
    size_t text_len;
    size_t text_cap;
    bool oom;
};

void na_rtoks_init(struct na_rtoks *t);
void na_rtoks_cleanup(struct na_rtoks *t);

/**
 * @brief Tokenise @p s[0..len): case and accent folding, split on anything
 *        that is not a letter or digit, "'s" dropped, hyphenated words as
 *        parts plus the joined word, CJK ideographs and kana one token each.
 *        Invalid UTF-8 bytes are separators. Appends to @p t (which starts
 *        at position 0 when empty).
 * @returns NA_OK or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_rules_tokenize(const char *s, size_t len, struct na_rtoks *t);

/** A word as the matcher sees it: folded form (before plural folding),
 *  word positions and byte offsets. */
typedef void(na_rules_word_cb)(void *ctx, const char *fold, size_t len, bool truncated,
                               uint32_t pos, uint32_t pos_end, uint32_t bstart,
                               uint32_t bend);

/**
 * @brief The words of @p s[0..len) as the matcher reads them (chunks of
 *        ASCII letters and digits folded directly, the rest through
 *        na_rules_tokenize()), for tests that compare the two.
 * @returns NA_OK or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_rules_scan_words(const char *s, size_t len, na_rules_word_cb *cb,
                                    void *ctx);

/** @brief Write the plural-folded form of @p tok into @p buf (at least
 *         fold_len + 1 bytes); @returns its length. */
size_t na_rtok_stem(const struct na_rtoks *t, const struct na_rtok *tok, char *buf);

/** @brief Plural folding of an ASCII-lower-case word in place semantics:
 *         @returns the stem length and sets *y when "y" must be appended. */
size_t na_rules_plural_fold(const char *w, size_t len, bool *y);

/* ---- compiled query (rules_query.c builds, rules.c evaluates) ---- */

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

/** A slot of na_rules_s.ktab; len 0 is an empty slot (keys are never empty). */
struct na_rslot {
    uint64_t w[2];  /**< the key's first 16 bytes, zero-padded */
    uint32_t hash;  /**< na_rules_key_hash() */
    uint32_t key;   /**< key index */
    uint8_t len;    /**< key length (at most NA_RULES_MAX_TERM_BYTES) */
    uint8_t prefix; /**< a prefix key */
    uint8_t pad[6];
};

/** Scratch spaces kept for reuse between calls (more are made and freed). */
#define NA_RULES_DB_POOL 8u

struct na_rules_s {
    char version[13];
    struct na_rtopic *topics;
    size_t topics_cnt;
    struct na_rbuild b;
    uint32_t *posts;
    size_t posts_cnt;
    /** One bit per na_rules_quick_hash() of every key (exact and prefix): a
     *  word whose bit is clear is no key, without touching the dictionary. */
    uint64_t *bloom;
    uint64_t bloom_mask; /**< bits - 1 */
    /** The dictionary as the scan reads it: open addressing on
     *  na_rules_key_hash(), a key's first 16 bytes kept in its slot, so a
     *  probe touches one cache line; ktab_mask + 1 slots, half empty. */
    struct na_rslot *ktab;
    size_t ktab_mask;
    uint8_t *req; /**< topics[t].req of every topic, packed for candidates() */
    /* The ASCII fast path (rules_db.c): one multi-literal database of every
     * key that an ASCII word can hit, so that only the words starting with
     * some key's text are looked up. NULL db with db_ok: no key can match
     * ASCII text; !db_ok: no fast path (every field is tokenised). */
    bool db_ok;
    void *db; /**< hs_database_t */
    /** The database is used by default (NA_RULES_DB_AUTO): no literal is
     *  shorter than NA_RULES_DB_MIN_LIT. */
    bool db_pays;
    uint8_t *db_lens; /**< literal length by pattern id */
    /** One bit per first three bytes of a word (na_rules_pre3()): set when
     *  some key an ASCII word can hit starts so; then (from bit 32768) the
     *  same for the prefix keys alone. */
    uint64_t *pre3;
    void *db_scratch; /**< hs_scratch_t prototype, cloned for the pool */
    /** NA_RULES_DB_POOL idle scratch spaces (or NULL): the one thing written
     *  after loading, atomically, by concurrent calls */
    _Atomic(void *) *db_pool;
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

/* ---- the ASCII fast path's key database (rules_db.c) ---- */

/**
 * @brief Build @p r's literal database from its keys: a prefix key's text,
 *        an exact key's text without a final "y" (so "policies" is found by
 *        "polic"); keys that no ASCII word can hit are left out. A build
 *        failure other than no memory only leaves the fast path off.
 * @returns NA_OK or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_rules_db_build(na_rules_t *r);

/** @returns the na_rules_s.pre3 bit of a word's first three bytes, 0 for
 *           those past its end. */
static inline uint32_t na_rules_pre3(unsigned char c0, unsigned char c1,
                                     unsigned char c2) {
    return (uint32_t)(c0 & 0x1fu) << 10 | (uint32_t)(c1 & 0x1fu) << 5 | (c2 & 0x1fu);
}

/** @brief Free the database and scratch spaces of @p r. */
void na_rules_db_free(na_rules_t *r);

/** @returns a scratch space for one scan (to give back with
 *           na_rules_db_put()), or NULL on no memory. */
void *na_rules_db_take(const na_rules_t *r);

/** @brief Give back a scratch space from na_rules_db_take() (NULL is ignored). */
void na_rules_db_put(const na_rules_t *r, void *scratch);

/** How fields are scanned: AUTO (the default) and ALWAYS use the bitmaps
 *  and the pre3 filter, and the key database when there is one (at most
 *  NA_RULES_DB_MAX_LITS literals; AUTO only when it pays: db_pays); OFF
 *  sends every field through the tokeniser; BITMAP never uses the
 *  database. For tests and benchmarks that compare them; not thread-safe. */
enum na_rules_db_mode {
    NA_RULES_DB_AUTO = 0,
    NA_RULES_DB_OFF,
    NA_RULES_DB_BITMAP,
    NA_RULES_DB_ALWAYS
};
extern enum na_rules_db_mode na_rules_db_mode;

/** Most literals for which a key database is built: with more, literal
 *  hits inside words cost more than the pre3 filter saves. */
#define NA_RULES_DB_MAX_LITS 256u
/** Shortest literal with which the database pays by default: "us", "and",
 *  "law" occur inside so many words that their hits cost more than the
 *  pre3 filter (the shipped rules: 21,700 articles/s without, 20,300 with). */
#define NA_RULES_DB_MIN_LIT 4u

/* ---- explanation for `rules test` ---- */

/** Why a topic did or did not match one article. */
struct na_rules_verdict {
    bool query;    /**< the query was true */
    bool excluded; /**< the exclude query was true */
    double score;  /**< the query's score (0 when false) */
    double threshold;
    bool matched; /**< query && !excluded && score >= threshold */
};

/** @returns borrowed name of topic @p i (< na_rules_topic_count()). */
const char *na_rules_topic_name(const na_rules_t *rules, size_t i);

/** @returns the index of topic @p name, or -1. */
long na_rules_topic_index(const na_rules_t *rules, const char *name);

/**
 * @brief Evaluate topic @p topic on @p a whether or not it is a candidate,
 *        and say why it matched or not. Thread-safe like na_rules_classify().
 */
NA_WUR na_err_t na_rules_explain(const na_rules_t *rules, const struct na_article *a,
                                 size_t topic, struct na_rules_verdict *v);

#endif
