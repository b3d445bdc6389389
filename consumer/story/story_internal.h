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

#include "rules_text.h"
#include "story.h"

/** Bytes of the title read for features. */
#define NA_STORY_TITLE_BYTES 1024u
/** Bytes of summary and content together read for features: the first
 *  paragraphs tell the event; what follows adds more noise than signal. */
#define NA_STORY_BODY_BYTES 1600u
/** Longest feature text (bytes). */
#define NA_STORY_FEATURE_BYTES 96u

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

/** Reusable buffers of the text reader. */
struct na_story_text {
    struct na_rtoks toks;
    struct na_story_word *w;
    size_t w_cap;
    char *stems;
    size_t stems_cap;
};

void na_story_text_init(struct na_story_text *tx);
void na_story_text_cleanup(struct na_story_text *tx);

/**
 * @brief Read the features of @p s[0..len) (already cut to what is read),
 *        calling @p emit for each.
 * @returns NA_OK, or NA_ERR_NOMEM (tokenising, or emit returned false).
 */
NA_WUR na_err_t na_story_text_features(struct na_story_text *tx, const char *s,
                                       size_t len, na_story_emit_cb *emit, void *ctx);

/* ---- test support (story.c) ---- */

/**
 * @brief Check that the index is whole: every feature of every story has
 *        its posting (pointing back at it, with the same sums) or belongs
 *        to an unlisted feature, each feature counts the stories that have
 *        it, each story's hash index finds each of its features, and an
 *        unlisted feature is too common to be scanned unless noted for
 *        relisting.
 * @param unlisted set to the number of features whose postings are
 *        dropped (may be NULL)
 * @returns true when whole; false with what is not in @p why.
 */
bool na_stories_check(const na_stories_t *st, size_t *unlisted, char *why,
                      size_t why_size);

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
