/**
 * @file rules_text.h
 * @brief The bottom layer of the rules engine: case and accent folding and
 *        tokenising (rules_text.c). Story grouping tokenises with it too, so
 *        a query term and an article word fold alike everywhere.
 *
 * Depends on nothing else of the engine: rules_query.h builds on it, and
 * rules_match.h on that (text -> query compiler -> matcher).
 *
 * Thread-safe: no state outside the caller's na_rtoks.
 */
#ifndef NEWSALERT_RULES_TEXT_H
#define NEWSALERT_RULES_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "newsalert/err.h"

/** Longest single query term after folding (bytes); longer words are kept
 *  truncated, for prefixes only. */
#define NA_RULES_MAX_TERM_BYTES 64u

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
    /** Set after na_rtoks_init() by every reader of the rules (queries,
     *  article fields, watchlists): a dot joins single letters only, so
     *  "U.S." is also "us" but "2.5" is only "2" and "5". Left false (by
     *  na_rtoks_init()), a dot joins single digits too ("2.5" is also
     *  "25"): the story engine reads its chunks that are not ASCII so, as
     *  its own ASCII reader does, and its decisions are pinned. */
    bool split_decimals;
};

void na_rtoks_init(struct na_rtoks *t);
void na_rtoks_cleanup(struct na_rtoks *t);

/**
 * @brief Tokenise @p s[0..len): case and accent folding, split on anything
 *        that is not a letter or digit, "'s" dropped, hyphenated words as
 *        parts plus the joined word, CJK ideographs and kana one token each,
 *        single letters joined by dots ("U.S.") as parts plus the joined
 *        word (single digits too unless @p t split_decimals is set).
 *        Invalid UTF-8 bytes are separators. Appends to @p t (which starts
 *        at position 0 when empty).
 * @returns NA_OK or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_rules_tokenize(const char *s, size_t len, struct na_rtoks *t);

/** @brief Write the plural-folded form of @p tok into @p buf (at least
 *         fold_len + 1 bytes); @returns its length. */
size_t na_rtok_stem(const struct na_rtoks *t, const struct na_rtok *tok, char *buf);

/** @brief Plural folding of an ASCII-lower-case word in place semantics:
 *         @returns the stem length and sets *y when "y" must be appended. */
size_t na_rules_plural_fold(const char *w, size_t len, bool *y);

#endif
