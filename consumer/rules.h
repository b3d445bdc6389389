/**
 * @file rules.h
 * @brief Topic rules: compiled once, evaluated per article.
 *
 * The rules language is documented in docs/rules.md.
 */
#ifndef NEWSALERT_RULES_H
#define NEWSALERT_RULES_H

#include <stddef.h>

#include "newsalert/article.h"
#include "newsalert/err.h"

typedef struct na_rules_s na_rules_t;

/** One matched term, as evidence for a topic. */
struct na_evidence {
    char *term;        /**< the query term or phrase as written in the rule */
    char *matched;     /**< the text as it stood in the article */
    const char *field; /**< static: "title", "summary" or "content" */
    size_t offset;     /**< byte offset of the match in that field */
};

/** One topic that an article matched. */
struct na_match {
    char *topic;
    double score;
    double threshold;
    struct na_evidence *evidence;
    size_t evidence_cnt;
    char *snippet; /**< up to ~200 bytes of text around the strongest match */
};

struct na_classification {
    struct na_match *matches; /**< in rules-file topic order */
    size_t matches_cnt;
};

/**
 * @brief Compile rules from a JSON file.
 * @param rulesp set to new rules; destroy with na_rules_destroy().
 * @returns NA_OK, or NA_ERR_IO / NA_ERR_PARSE / NA_ERR_CONFIG with one line
 *          in errstr naming the file, the topic, and the line and column.
 */
NA_WUR na_err_t na_rules_load_file(const char *path, na_rules_t **rulesp, char *errstr,
                                   size_t errstr_size);

/** @brief As na_rules_load_file() from a buffer; @p name is used in errors. */
NA_WUR na_err_t na_rules_load_buf(const char *buf, size_t len, const char *name,
                                  na_rules_t **rulesp, char *errstr, size_t errstr_size);

/** @brief NULL-safe. */
void na_rules_destroy(na_rules_t *rules);

/** @returns borrowed version string (hash of the rules text), valid until destroy. */
const char *na_rules_version(const na_rules_t *rules);

/** @returns the number of topics. */
size_t na_rules_topic_count(const na_rules_t *rules);

/**
 * @brief Classify @p a. Thread-safe for concurrent calls on one rules object.
 * @param out filled with the matched topics (zero or more); release with
 *        na_classification_cleanup().
 */
NA_WUR na_err_t na_rules_classify(const na_rules_t *rules, const struct na_article *a,
                                  struct na_classification *out);

void na_classification_cleanup(struct na_classification *c);

#endif
