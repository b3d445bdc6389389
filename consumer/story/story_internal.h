/*
 * What the story engine's files share (story.c: stories, index, assignment;
 * story_text.c: the features of an article; story_model.c: the model;
 * story_train.c: fitting it). Not for other modules: story.h is the
 * contract.
 */
#ifndef NEWSALERT_STORY_INTERNAL_H
#define NEWSALERT_STORY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rules_text.h"
#include "story.h"

/** Bytes of the title read for features. */
#define NA_STORY_TITLE_BYTES 1024u
/** Bytes of summary and content together read for features: the first
 *  paragraphs tell the event; what follows adds more noise than signal. */
#define NA_STORY_BODY_BYTES 1600u
/** Longest feature text (bytes). */
#define NA_STORY_FEATURE_BYTES 96u

/**
 * A 64-bit hash of @p s[0..len), for the engine's tables (feature keys,
 * the text reader's lexicon): eight bytes at a time, the last eight (or
 * fewer) read once, overlapping, so no byte past the end is read; then
 * MurmurHash3's 64-bit finaliser, so that every bit depends on every
 * byte. Keys live only in memory: the hash may change between versions.
 * With @p dst (not overlapping @p s), the bytes are copied there on the
 * way (the text reader's features are hashed as they are noted): the same
 * loads, each stored as well. Called with a constant NULL, the stores go.
 */
static inline uint64_t na_story_hash_into(char *dst, const char *s, size_t len) {
    const uint64_t k = 0x9e3779b97f4a7c15ull;
    uint64_t h = k ^ ((uint64_t)len * 0xc2b2ae3d27d4eb4full);
    uint64_t b = 0;
    if (len >= 8) {
        size_t i = 0;
        for (; i + 8 < len; i += 8) {
            memcpy(&b, s + i, sizeof(b));
            if (dst) {
                memcpy(dst + i, &b, sizeof(b));
            }
            h = (h ^ b) * k;
            h ^= h >> 29;
        }
        memcpy(&b, s + len - 8, sizeof(b));
        if (dst) {
            memcpy(dst + len - 8, &b, sizeof(b));
        }
    } else if (len >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, s, sizeof(lo));
        memcpy(&hi, s + len - 4, sizeof(hi));
        if (dst) {
            memcpy(dst, &lo, sizeof(lo));
            memcpy(dst + len - 4, &hi, sizeof(hi));
        }
        b = (uint64_t)hi << 32 | lo;
    } else if (len > 0) {
        unsigned char c0 = (unsigned char)s[0], c1 = (unsigned char)s[len / 2];
        unsigned char c2 = (unsigned char)s[len - 1];
        if (dst) {
            dst[0] = (char)c0;
            dst[len / 2] = (char)c1;
            dst[len - 1] = (char)c2;
        }
        b = (uint64_t)c0 | (uint64_t)c1 << 8 | (uint64_t)c2 << 16;
    }
    h = (h ^ b) * k;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static inline uint64_t na_story_hash(const char *s, size_t len) {
    return na_story_hash_into(NULL, s, len);
}

static inline uint64_t na_story_hash_copy(char *dst, const char *s, size_t len) {
    return na_story_hash_into(dst, s, len);
}

/** Kinds of features, one view of the article each (the letter before the
 *  colon of a feature's text). */
enum na_story_kind {
    NA_SK_TERM = 0,   /**< "t:" words */
    NA_SK_NAME = 1,   /**< "e:" names of people, places, organisations */
    NA_SK_FIGURE = 2, /**< "n:" figures with their unit */
    NA_SK_DATE = 3,   /**< "d:" dates mentioned */
    NA_SK_COUNT = 4,
};

/** Views compared between an article and a story: one per kind, and the
 *  title (the article's title features against the titles of the story). */
enum na_story_view {
    NA_SV_TERMS = NA_SK_TERM,
    NA_SV_NAMES = NA_SK_NAME,
    NA_SV_FIGURES = NA_SK_FIGURE,
    NA_SV_DATES = NA_SK_DATE,
    NA_SV_TITLE = NA_SK_COUNT, /**< titles against titles */
    NA_SV_TITLE_TEXT =
        NA_SK_COUNT + 1, /**< the article's title against the story's text */
    NA_SV_TEXT_TITLE =
        NA_SK_COUNT + 2, /**< the article's text against the story's titles */
    NA_SV_COUNT = NA_SK_COUNT + 3,
};

/** The model's inputs for one (article, story) pair, in this order; their
 *  names are na_story_input_names[] (the model file lists them). */
enum na_story_input {
    NA_SX_BIAS,         /**< 1 */
    NA_SX_TERMS,        /**< cosine of the words (TF-IDF) */
    NA_SX_NAMES,        /**< cosine of the names */
    NA_SX_FIGURES,      /**< cosine of the figures */
    NA_SX_DATES,        /**< cosine of the dates mentioned */
    NA_SX_TITLE,        /**< cosine of the article's title and the story's titles */
    NA_SX_FIGURES_BOTH, /**< 1 when both give figures */
    NA_SX_DATES_BOTH,   /**< 1 when both mention dates */
    NA_SX_GAP,          /**< time outside the story's span / window, 0..1 */
    NA_SX_SIZE,         /**< log2 of the story's articles, capped at 1..5 */
    NA_SX_TERMS_NAMES,  /**< terms x names: both views agree */
    NA_SX_SPAN,         /**< the story's span with the article in it / window */
    NA_SX_TITLE_TEXT,   /**< cosine of the article's title and the story's text */
    NA_SX_TEXT_TITLE,   /**< cosine of the article's text and the story's titles */
    NA_SX_COUNT,
};

extern const char *const na_story_input_names[NA_SX_COUNT];

struct na_story_model_s {
    double w[NA_SX_COUNT];
    double threshold; /**< join the best story when its probability >= this */
    json_t *about;    /**< what the file says of its training; may be NULL */
};

/** @returns the probability that the pair of inputs @p x is one event. */
double na_story_model_prob(const na_story_model_t *m, const double x[NA_SX_COUNT]);

/* ---- the features of an article (story_tok.c, story_text.c) ---- */

/**
 * @brief Tokenise @p s[0..len) into @p t (emptied first): the tokens
 *        na_rules_tokenize() gives, with offsets into @p s, faster (chunks
 *        between ASCII white space that are all ASCII take a path written
 *        for them).
 * @returns NA_OK or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_story_tokenize(const char *s, size_t len, struct na_rtoks *t);

/**
 * Called for each feature of a text, possibly several times for one feature.
 * @param text the feature's text, "K:..." (K = t, e, n, d), @p len bytes
 * @returns false to stop (no memory).
 */
typedef bool(na_story_emit_cb)(void *ctx, const char *text, size_t len);

/**
 * A word of a text, as the features read it (na_story_words() fills all
 * but the lexicon's fields, stop and month, which start 0; a demonym's
 * fold becomes its place's).
 */
struct na_story_word {
    uint32_t fold;    /**< offset in na_story_text.arena of the plural-folded,
                           lower-case word; the 2 bytes before it are free for
                           a feature's "K:" */
    uint32_t raw;     /**< offset of the word in the source */
    uint32_t raw_len; /**< its bytes in the source */
    uint16_t len;     /**< bytes at fold */
    bool cap;         /**< starts with an upper-case letter */
    bool acronym;     /**< two or more letters, all upper case */
    bool sent;        /**< first word of a sentence (or line) */
    bool adjacent;    /**< follows the previous word with only spaces between */
    bool digits;      /**< starts with a digit (a figure starts) */
    bool stop;        /**< a stop word */
    uint8_t month;    /**< 1..12 when a month name, else 0 */
};

/** A hyphenated (or dotted) word's joined form, plural-folded: at
 *  na_story_text.arena + off, @p len bytes, the 2 bytes before it free. */
struct na_story_joined {
    uint32_t off;
    uint32_t len;
};

/** Reusable buffers of the text reader. */
struct na_story_text {
    struct na_rtoks toks; /**< chunks that are not ASCII */
    struct na_story_word *w;
    size_t w_cnt;
    size_t w_cap;
    struct na_story_joined *joined;
    size_t joined_cnt;
    size_t joined_cap;
    char *arena; /**< the words' folded forms, each after 2 free bytes */
    size_t arena_len;
    size_t arena_cap;
};

/**
 * @brief Read the words of @p s[0..len) into @p tx (emptied first): the
 *        tokens na_rules_tokenize() gives, one pass, each word with what
 *        the features read of it (struct na_story_word) and each joined
 *        form of a hyphenated word of three or more bytes in
 *        tx->joined, in the order of the text. Chunks between ASCII white
 *        space that are all ASCII take a path written for them; others go
 *        through na_rules_tokenize().
 * @returns NA_OK or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_story_words(struct na_story_text *tx, const char *s, size_t len);

void na_story_text_init(struct na_story_text *tx);
void na_story_text_cleanup(struct na_story_text *tx);

/**
 * @brief Read the features of @p s[0..len) (already cut to what is read),
 *        calling @p emit for each.
 * @returns NA_OK, or NA_ERR_NOMEM (tokenising, or emit returned false).
 */
NA_WUR na_err_t na_story_text_features(struct na_story_text *tx, const char *s,
                                       size_t len, na_story_emit_cb *emit, void *ctx);

/* ---- an article read apart from the engine (story_read.c) ---- */

/** A distinct feature of a read article, in the order its text first gave
 *  it (that order numbers new features and breaks ties of weight). */
struct na_story_pend {
    uint64_t key; /**< na_story_hash() of its text: the engine's key */
    uint32_t off; /**< its text in na_story_read_s.ptext */
    uint8_t len;  /**< bytes (< NA_STORY_FEATURE_BYTES) */
    bool title;   /**< first given by the title */
    uint16_t tf;  /**< times the text gave it (at most UINT16_MAX) */
};
_Static_assert(NA_STORY_FEATURE_BYTES <= UINT8_MAX, "a feature's length fits a byte");

struct na_story_read_s {
    const struct na_article *of; /**< the article read (what it was read from) */
    struct na_story_pend *pend;  /**< its distinct features */
    size_t pend_cnt, pend_cap;
    char *ptext; /**< their texts, one after another (not NUL-terminated) */
    size_t ptext_len, ptext_cap;
    uint32_t *seen; /**< open addressing over pend by key: index + 1; 0 = empty */
    size_t seen_cap;
    char new_id[NA_SHA256_HEX_LEN + 1]; /**< the id of the story it would open */
    bool keep; /**< keep the text reader's buffers between articles */
    bool in_title;
    bool oom;
    struct na_story_text tx; /**< the text reader's buffers */
};

/** @brief Make @p r empty (na_story_read_new() does it for the heap). */
void na_story_read_init(struct na_story_read_s *r, bool keep);

/** @brief Free what @p r holds (not @p r). */
void na_story_read_cleanup(struct na_story_read_s *r);

/* ---- test support (story.c) ---- */

/**
 * @brief Check that the index is whole: every feature of every story has
 *        its posting (pointing back at it, with the same sums) or belongs
 *        to an unlisted feature, each feature counts the stories that have
 *        it, each story's hash index finds each of its features, and an
 *        unlisted feature is too common to be scanned unless noted for
 *        relisting. Builds the stories' indexes that are not kept up.
 * @param unlisted set to the number of features whose postings are
 *        dropped (may be NULL)
 * @returns true when whole; false with what is not in @p why.
 */
bool na_stories_check(na_stories_t *st, size_t *unlisted, char *why, size_t why_size);

/** What na_stories_set_verify() found. */
struct na_story_verify {
    size_t articles;   /**< articles whose scoring was checked */
    size_t candidates; /**< candidates whose dot products were recomputed */
    size_t late_hits;  /**< common features found at the article's index 64 or
                            later (past the first word of score()'s hit mask) */
    size_t cut;        /**< candidates the rank cut dropped */
    size_t bad;        /**< checks that failed */
    char why[256];     /**< the first failure */
};

/**
 * @brief Test support: with @p v (NULL: off), every article's scoring is
 *        checked against a plain computation before the article joins: the
 *        features scanned against the rule (from the rarest, in passes of
 *        lengths 1-4, 5-8, .. 65-128, each in the article's order, while
 *        the budget lasts), and each candidate's dot products against its
 *        own index looked up for every feature of the article (the scanned
 *        ones first, then the others, each in the article's order: the
 *        order the engine adds them in, so the sums must be equal, not
 *        close), and the rank cut (the best ranked kept, those under
 *        NA_STORY_RANK_CUT of the best dropped). Builds the candidates'
 *        indexes; decides nothing.
 */
void na_stories_set_verify(na_stories_t *st, struct na_story_verify *v);

/* ---- training (story_train.c) ---- */

/**
 * Teacher mode (na_stories_set_teacher()): the engine scores the candidates
 * of each article as it would, reports each (inputs, same event?) to this
 * callback, and then puts the article into the story of its labelled event
 * (opening one when none is open), so that the examples are those of a
 * grouping that made no mistake.
 */
typedef void(na_story_example_cb)(void *ctx, const double x[NA_SX_COUNT], bool same);

/**
 * @brief Turn teacher mode on (@p cb non-NULL) or off. In teacher mode
 *        na_stories_assign_labelled() must be used.
 */
void na_stories_set_teacher(na_stories_t *st, na_story_example_cb *cb, void *ctx);

/**
 * @brief As na_stories_assign() in teacher mode: @p event names the article's
 *        labelled event (borrowed; copied into the story it opens).
 * @param positives_missed incremented when a story of the event was open
 *        but not among the candidates (candidate generation lost it).
 */
NA_WUR na_err_t na_stories_assign_labelled(na_stories_t *st, const struct na_article *a,
                                           const char *event,
                                           char story_id[NA_SHA256_HEX_LEN + 1],
                                           size_t *positives_missed);

#endif
