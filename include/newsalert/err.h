/**
 * @file err.h
 * @brief The one error type of newsalert.
 *
 * Append-only: new codes go at the end, before NA_ERR__END, so numbers in
 * logs and metrics stay stable across versions. Functions that return an
 * na_err_t are NA_WUR; callers test `if (err)`.
 */
#ifndef NEWSALERT_ERR_H
#define NEWSALERT_ERR_H

#define NA_WUR __attribute__((warn_unused_result))

typedef enum {
    NA_OK = 0,
    NA_ERR_NOMEM,       /**< allocation failed */
    NA_ERR_INVALID,     /**< bad input: malformed bytes, wrong type, bad value */
    NA_ERR_IO,          /**< file or socket I/O failed (see errno in errstr) */
    NA_ERR_PARSE,       /**< a document could not be parsed */
    NA_ERR_TOO_LARGE,   /**< input exceeded a cap from limits.h */
    NA_ERR_NOT_FOUND,   /**< a named thing does not exist */
    NA_ERR_KAFKA,       /**< librdkafka reported an error */
    NA_ERR_HTTP,        /**< an HTTP transfer failed */
    NA_ERR_TIMEOUT,     /**< a deadline passed */
    NA_ERR_UNSUPPORTED, /**< input is valid but of a kind we do not handle */
    NA_ERR_CONFIG,      /**< configuration is invalid */
    NA_ERR_USAGE,       /**< bad command-line usage */
    NA_ERR_AUTH,        /**< the broker refused us or we refused it (SASL, TLS) */
    NA_ERR__END
} na_err_t;

/**
 * @brief Outcome of talking to an external system (Kafka, HTTP). Each such
 *        system has exactly one function that maps its results onto this.
 */
typedef enum {
    NA_OUTCOME_OK = 0, /**< done */
    NA_OUTCOME_RETRY,  /**< transient: try again later (timeouts, 5xx, 429) */
    NA_OUTCOME_DROP,   /**< permanent for this item: dead-letter it (4xx) */
    NA_OUTCOME_FATAL   /**< permanent for the whole process */
} na_outcome_t;

/** @returns a static, human-readable name of @p err. */
const char *na_err2str(na_err_t err);

/** @returns a static name ("ok", "retry", "drop", "fatal"). */
const char *na_outcome2str(na_outcome_t outcome);

#endif
