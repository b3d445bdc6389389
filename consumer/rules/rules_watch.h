/**
 * @file rules_watch.h
 * @brief Watchlist topics, private to the rules engine: a list of parties
 *        (companies, people, vessels) read from a restricted-party list and
 *        found in article text by name (rules_watch.c). rules_load.c loads
 *        one per watchlist topic; rules.c turns its hits into a match with
 *        the parties as evidence. See docs/rules.md, "Watchlists".
 *
 * What a name matches: its words, folded by the rules tokeniser (case,
 * accents, punctuation; no plural folding), side by side in one field. A
 * trailing legal form ("Co., Ltd.", "LLC", "GmbH", "有限公司") is optional
 * in the text. A name or alias of fewer letters than the list's
 * exact_case_below (after its legal form is taken off) matches only where
 * the text spells it exactly as listed, so "Star" and "Ace" on a list do not
 * fire on "star" and "ace" in prose. An individual listed as "SURNAME,
 * Given" also matches "Given SURNAME". At one place of the text the longest
 * name wins, and names do not overlap.
 *
 * Ownership: na_watch_load() returns a new list (na_watch_destroy()); it is
 * never written afterwards, so any number of threads may na_watch_scan()
 * with it. A scan's hits belong to the caller's struct na_watch_hits.
 */
#ifndef NEWSALERT_RULES_WATCH_H
#define NEWSALERT_RULES_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "newsalert/err.h"

/** Largest watchlist file read (bytes): the published lists are 10-40 MB. */
#define NA_WATCH_MAX_FILE_BYTES (512u * 1024u * 1024u)
/** Longest field of one row (bytes); a longer one rejects its row. */
#define NA_WATCH_MAX_FIELD_BYTES (64u * 1024u)
/** Longest name or alias (bytes) and most words in one. */
#define NA_WATCH_MAX_NAME_BYTES 1024u
#define NA_WATCH_MAX_WORDS 32u
/** Most aliases of one entry; the rest are skipped with a message. */
#define NA_WATCH_MAX_ALIASES 512u
/** Most entries in one list. */
#define NA_WATCH_MAX_ENTRIES 4000000u
/** Messages about rejected rows kept (and logged) per load; the rest are
 *  counted only. */
#define NA_WATCH_MAX_MESSAGES 100u
/** Most name occurrences recorded per article (the rest are not counted). */
#define NA_WATCH_MAX_HITS 4096u
/** Default of a watchlist topic's "exact_case_below" (letters). */
#define NA_WATCH_EXACT_CASE_BELOW 5u

typedef struct na_watch_s na_watch_t;

enum na_watch_format {
    NA_WATCH_CSL_CSV = 0, /**< the Consolidated Screening List's CSV */
    NA_WATCH_CSL_JSON,    /**< its JSON export: {"results": [..]} or [..] */
    NA_WATCH_NAMES        /**< one name per line */
};

/** @returns 0 and sets *f for "csl-csv", "csl-json" or "names"; -1 else. */
int na_watch_format_parse(const char *name, enum na_watch_format *f);

/** The published fields of one entry. */
enum na_watch_col {
    NA_WATCH_NAME = 0, /**< the listed name */
    NA_WATCH_SOURCE,   /**< source list ("Entity List (EL) - Bureau of ...") */
    NA_WATCH_PROGRAMS, /**< programs, "; "-separated */
    NA_WATCH_COUNTRY,  /**< countries of its addresses, nationalities and
                            citizenships, "; "-separated, in list order */
    NA_WATCH_TYPE,     /**< "Entity", "Individual", "Vessel", ... or "" */
    NA_WATCH_ID,       /**< _id, else entity_number, else "" */
    NA_WATCH_COLS
};

/**
 * @brief Read and compile the list in @p path.
 * @param exact_case_below names of fewer letters match only as listed.
 * @param topic the topic's name, for messages and the metrics' label.
 * @param watchp set to a new list (na_watch_destroy()); NULL on failure.
 * @returns NA_OK, also when some rows were rejected: each is counted
 *          (newsalert_watchlist_rows_rejected_total{topic}), and the first
 *          NA_WATCH_MAX_MESSAGES are logged (event=watchlist_row_rejected)
 *          and kept (na_watch_message()) as `FILE:LINE: reason`. Otherwise
 *          NA_ERR_IO (cannot read), NA_ERR_TOO_LARGE, NA_ERR_CONFIG (no
 *          name column, not a list, no entry loaded) or NA_ERR_NOMEM, with
 *          one line `FILE[:LINE]: reason` in @p errstr.
 */
NA_WUR na_err_t na_watch_load(const char *path, enum na_watch_format format,
                              unsigned exact_case_below, const char *topic,
                              na_watch_t **watchp, char *errstr, size_t errstr_size);

/** @brief NULL-safe. */
void na_watch_destroy(na_watch_t *w);

/** @returns borrowed hex SHA-256 of the file as read, valid until destroy. */
const char *na_watch_digest(const na_watch_t *w);

/** @returns entries loaded; @p rejected (if not NULL) set to rows rejected. */
size_t na_watch_entry_count(const na_watch_t *w, size_t *rejected);

/** @returns borrowed message @p i (< number kept) about a rejected row or
 *           skipped alias, `FILE:LINE: reason`, or NULL. */
const char *na_watch_message(const na_watch_t *w, size_t i);

/** @returns borrowed field @p c of entry @p e ("" when the list has none). */
const char *na_watch_entry_str(const na_watch_t *w, uint32_t e, enum na_watch_col c);

/** @returns the entry a pattern (a compiled name or alias) belongs to. */
uint32_t na_watch_pattern_entry(const na_watch_t *w, uint32_t pat);

/** @returns borrowed name or alias of pattern @p pat, as listed. */
const char *na_watch_pattern_label(const na_watch_t *w, uint32_t pat);

/** One name found in a field. */
struct na_watch_hit {
    uint32_t pat;    /**< pattern (na_watch_pattern_entry() for the entry) */
    uint32_t bstart; /**< bytes of the field, legal form in the text included */
    uint32_t bend;
    uint8_t field; /**< enum na_rules_field */
};

/** Hits of one article, in field order then text order. _init/_cleanup. */
struct na_watch_hits {
    struct na_watch_hit *v;
    size_t cnt;
    size_t cap;
    size_t dropped; /**< past NA_WATCH_MAX_HITS */
};

void na_watch_hits_init(struct na_watch_hits *h);
void na_watch_hits_cleanup(struct na_watch_hits *h);

/**
 * @brief Find the listed names in field @p field, text @p s[0..len) (any
 *        bytes: invalid UTF-8 separates words), appending to @p out.
 *        Thread-safe on one list.
 * @returns NA_OK or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_watch_scan(const na_watch_t *w, int field, const char *s, size_t len,
                              struct na_watch_hits *out);

/** How na_watch_scan() reads words: FAST (the default) its own pass over
 *  the scanner's bitmaps, hashing plain words in place; WORDS through
 *  na_rules_scan_words() and a callback per word. Both give the same hits;
 *  for tests and benchmarks that compare them; not thread-safe. */
enum na_watch_scan_mode { NA_WATCH_SCAN_FAST = 0, NA_WATCH_SCAN_WORDS };
extern enum na_watch_scan_mode na_watch_scan_mode;

/** Memory held by a list (bytes), for benchmarks. */
size_t na_watch_bytes(const na_watch_t *w);

#endif
