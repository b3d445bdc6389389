/**
 * @file rules.h
 * @brief Topic rules: compiled once, evaluated per article.
 *
 * The rules language, the matching and scoring, and the engine's invariants
 * are documented in docs/rules.md. A compiled rules object is immutable:
 * any number of threads may classify with it at once.
 */
#ifndef NEWSALERT_RULES_H
#define NEWSALERT_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "newsalert/article.h"
#include "newsalert/err.h"

typedef struct na_rules_s na_rules_t;

/** One matched term, as evidence for a topic: the term's first counted
 *  occurrence in one field. */
struct na_evidence {
    char *term;        /**< the query term or phrase as written in the rule */
    char *matched;     /**< the text as it stood in the article (valid UTF-8) */
    const char *field; /**< static: "title", "summary" or "content" */
    size_t offset;     /**< byte offset of the match in that field */
};

/** A listed party that an article names: the evidence of a watchlist topic
 *  (docs/rules.md, "Watchlists"). Strings are "" when the list has none. */
struct na_party {
    char *name;        /**< the entry's name as listed */
    char *alias;       /**< the name or alias that matched, as listed */
    char *source;      /**< source list ("Entity List (EL) - Bureau of Industry ...") */
    char *programs;    /**< programs, "; "-separated */
    char *country;     /**< countries of its addresses, nationalities, citizenships */
    char *type;        /**< "Entity", "Individual", "Vessel", ... */
    char *id;          /**< the list's id of the entry */
    char *matched;     /**< the text as it stood in the article (valid UTF-8) */
    const char *field; /**< static: where it first occurs */
    size_t offset;     /**< byte offset there */
    size_t count;      /**< occurrences in the article */
};

/** One topic that an article matched. */
struct na_match {
    char *topic;
    double score; /**< >= threshold */
    double threshold;
    struct na_evidence *evidence; /**< by field, then offset; at most 32 */
    size_t evidence_cnt;
    char *snippet; /**< at most 200 bytes (valid UTF-8, "…" where cut) around the
                        strongest match, from the body when the body matched */
    struct na_party *parties; /**< watchlist topics: the parties named, in
                                   order of first occurrence; at most 64 */
    size_t parties_cnt;
    char *strings; /**< when set: the one block that holds the strings of the
                        evidence and the parties (a watchlist topic's) */
};

struct na_classification {
    struct na_match *matches; /**< in rules-file topic order */
    size_t matches_cnt;
};

/**
 * @brief Compile rules from a JSON file (at most NA_MAX_CONFIG_BYTES).
 * @param rulesp set to new rules; destroy with na_rules_destroy(). NULL on
 *        failure.
 * @returns NA_OK, or NA_ERR_IO / NA_ERR_TOO_LARGE / NA_ERR_PARSE (JSON
 *          syntax) / NA_ERR_CONFIG (anything else) / NA_ERR_NOMEM, with one
 *          line in errstr: `FILE:LINE:COL: topic "NAME": message`, where a
 *          query error also names the column within the query string.
 */
NA_WUR na_err_t na_rules_load_file(const char *path, na_rules_t **rulesp, char *errstr,
                                   size_t errstr_size);

/** @brief As na_rules_load_file() from a buffer; @p name is used in errors. */
NA_WUR na_err_t na_rules_load_buf(const char *buf, size_t len, const char *name,
                                  na_rules_t **rulesp, char *errstr, size_t errstr_size);

/** @brief NULL-safe. */
void na_rules_destroy(na_rules_t *rules);

/** @returns borrowed version string, valid until destroy: the first 12 hex
 *           digits of the SHA-256 of the rules text. */
const char *na_rules_version(const na_rules_t *rules);

/** @returns the number of topics. */
size_t na_rules_topic_count(const na_rules_t *rules);

/**
 * @brief What loading the watchlists of @p rules left out (rows rejected,
 *        aliases skipped): message @p i, `FILE:LINE: reason`, or NULL past
 *        the last kept (each list keeps its first 100).
 * @returns borrowed, valid until destroy.
 */
const char *na_rules_watch_message(const na_rules_t *rules, size_t i);

/** @returns rows rejected over all watchlists; @p entries (if not NULL) set
 *           to the entries loaded. */
size_t na_rules_watch_rejected(const na_rules_t *rules, size_t *entries);

/**
 * @brief Classify @p a. Thread-safe for concurrent calls on one rules object.
 *        Any bytes are accepted (invalid UTF-8 separates words); each field
 *        is scanned up to its first 1 MiB.
 * @param out filled with the matched topics (zero or more); release with
 *        na_classification_cleanup(), also after an error (it is then empty).
 * @returns NA_OK or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_rules_classify(const na_rules_t *rules, const struct na_article *a,
                                  struct na_classification *out);

/**
 * @brief The parties of a watchlist match as JSON, as alert/v1 and
 *        `classify` print them: [{"name","alias","source","programs",
 *        "country","type","id","matched","field","offset","count"}]
 *        (programs and country as "; "-separated strings, as listed).
 * @returns new array (empty for a query topic), or NULL on no memory.
 */
struct json_t;
struct json_t *na_match_parties_json(const struct na_match *m);

/** @brief Free everything @p c owns and zero it. NULL-safe. */
void na_classification_cleanup(struct na_classification *c);

/* ---- explanation, for `rules test` ---- */

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
