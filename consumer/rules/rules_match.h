/**
 * @file rules_match.h
 * @brief The top layer of the rules engine, private to it (rules.c loads
 *        and matches, rules_db.c keeps the ASCII fast path's key database)
 *        and to its tests and benchmarks: the compiled rules object.
 *
 * The compiled rules are flat arrays addressed by index (nodes, atoms,
 * forms, elements, keys, postings), so a compiled rules object is a handful
 * of allocations and is never written after na_rules_load_buf() returns;
 * that is what makes concurrent na_rules_classify() calls safe.
 * See docs/rules.md for the language and the invariants.
 */
#ifndef NEWSALERT_RULES_MATCH_H
#define NEWSALERT_RULES_MATCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "newsalert/err.h"
#include "rules.h"
#include "rules_query.h"

/** Most topics in one rules file. */
#define NA_RULES_MAX_TOPICS 100000u
/** Most parties reported per matched watchlist topic. */
#define NA_RULES_MAX_PARTIES 64u
/** Most evidence entries reported per matched topic. */
#define NA_RULES_MAX_EVIDENCE 32u
/** Longest snippet (bytes, including the "…" marks). */
#define NA_RULES_SNIPPET_BYTES 200u
/** Longest "matched" text in one evidence entry (bytes). */
#define NA_RULES_MATCHED_BYTES 120u
/** Bytes of each article field that are scanned; the rest is ignored. */
#define NA_RULES_MAX_FIELD_BYTES (1024u * 1024u)

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

/**
 * @brief The scan's bitmaps of @p s[0..len), bit i of word i / 64 for byte
 *        i: @p al the ASCII letters and digits, @p pu the bytes that may join
 *        or fold words (- ' . and every byte >= 0x80); (len + 63) / 64 words
 *        each, bits past len clear. A chunk (a run of al | pu) whose inside
 *        has no pu byte is one plain ASCII word, as the matcher reads it.
 */
void na_rules_field_masks(const char *s, size_t len, uint64_t *al, uint64_t *pu);

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
    uint32_t *watch_topics; /**< indices of the watchlist topics, in order */
    size_t watch_cnt;
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
    void *db;         /**< hs_database_t */
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

/** How fields are scanned: AUTO (the default) and BITMAP use the bitmaps
 *  and the pre3 filter; OFF sends every field through the tokeniser;
 *  ALWAYS also looks up only the words at whose start the key database
 *  (at most NA_RULES_DB_MAX_LITS literals) reported a key. ALWAYS is for
 *  the benchmarks only, never the default: libvectorscan 5.4.9 misses
 *  literals (sets of 2 to 6, depending on where the text sits in memory;
 *  docs/rules.md), so its reports cannot decide which words are looked
 *  up. For tests and benchmarks that compare them; not thread-safe. */
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

/** The fast scans (the query topics' and the watchlists') are built twice
 *  where the compiler can pick at run time: for CPUs with AVX2, BMI and
 *  POPCNT, and for any x86-64. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NA_RULES_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define NA_RULES_CLONES
#endif

#endif
