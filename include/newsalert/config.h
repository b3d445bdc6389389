/**
 * @file config.h
 * @brief Declarative configuration tables.
 *
 * A daemon describes its settings once, as a table of entries (key, type,
 * default, field offset, description). The same key is the JSON key in the
 * config file, the flag `--key-with-dashes`, and the environment variable
 * `NEWSALERT_KEY_IN_CAPS`. Precedence: flag > env > file > default; the
 * caller applies them in the reverse order. Unknown keys are errors that
 * name the key.
 */
#ifndef NEWSALERT_CONFIG_H
#define NEWSALERT_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "newsalert/err.h"

enum na_conf_type {
    NA_CONF_STRING,   /**< char * (owned by the struct; freed by na_conf_cleanup) */
    NA_CONF_INT,      /**< long long */
    NA_CONF_BOOL,     /**< int 0/1; true/false/1/0/yes/no/on/off */
    NA_CONF_DURATION, /**< long long milliseconds; "250ms", "30s", "5m", or seconds */
    NA_CONF_DOUBLE,   /**< double */
};

#define NA_CONF_SECRET 0x1 /**< redacted in --dump-config and logs */

struct na_conf_entry {
    const char *key;
    enum na_conf_type type;
    size_t offset;   /**< offsetof() the field in the config struct */
    const char *def; /**< default as text, or NULL */
    const char *desc;
    int flags;
    long long min; /**< for INT / DURATION: inclusive range (both 0: unchecked) */
    long long max;
};

#define NA_CONF_END                                                                      \
    { NULL, NA_CONF_STRING, 0, NULL, NULL, 0, 0, 0 }

/** @brief Set every field of @p obj to its default. */
NA_WUR na_err_t na_conf_defaults(const struct na_conf_entry *table, void *obj,
                                 char *errstr, size_t errstr_size);

/** @returns the entry for @p key ("state_dir"; "state-dir" is accepted too), or NULL. */
const struct na_conf_entry *na_conf_find(const struct na_conf_entry *table,
                                         const char *key);

/**
 * @brief Parse @p value as the entry's type and store it.
 * @param origin "flag", "env NEWSALERT_X" or the file name, used in errors.
 */
NA_WUR na_err_t na_conf_set(const struct na_conf_entry *e, void *obj, const char *value,
                            const char *origin, char *errstr, size_t errstr_size);

/**
 * @brief Apply a config file's top-level object. Keys in @p skip (NULL-
 *        terminated; e.g. "kafka", "routes") are left to the caller.
 */
NA_WUR na_err_t na_conf_apply_json(const struct na_conf_entry *table, void *obj,
                                   json_t *root, const char *name,
                                   const char *const *skip, char *errstr,
                                   size_t errstr_size);

/** @brief Apply every set `NEWSALERT_<KEY>` variable of the table. */
NA_WUR na_err_t na_conf_apply_env(const struct na_conf_entry *table, void *obj,
                                  char *errstr, size_t errstr_size);

/** @returns new JSON object of the resolved values, secrets as "***". */
json_t *na_conf_dump(const struct na_conf_entry *table, const void *obj);

/** @brief Print one help line per entry: flag, env, default, description. */
void na_conf_help(const struct na_conf_entry *table, FILE *fp);

/** @brief Free the strings the table's fields own. */
void na_conf_cleanup(const struct na_conf_entry *table, void *obj);

/**
 * @brief What went wrong in JSON text that could not be parsed, without
 *        the text where it went wrong: the parser quotes up to 20 bytes of
 *        it ("near '\"hunter2'"), which in a config or sources file may be
 *        a secret (an unterminated password), and an error may be logged.
 *        Line and column locate it.
 * @returns @p buf.
 */
const char *na_json_error_shown(const json_error_t *jerr, char *buf, size_t size);

/**
 * @brief Read and parse a JSON config file (at most NA_MAX_CONFIG_BYTES).
 * @returns new reference in *root, or an error naming file, line and column
 *          (not the text there: na_json_error_shown()).
 */
NA_WUR na_err_t na_conf_load_file(const char *path, json_t **root, char *errstr,
                                  size_t errstr_size);

/**
 * @brief Read a secret kept in a file (a webhook URL, a signing secret, a
 *        password): the whole file, at most NA_MAX_SECRET_BYTES, trailing
 *        newlines and spaces dropped; it must not be empty nor hold another
 *        line. A relative @p path is taken in $CREDENTIALS_DIRECTORY when
 *        that is set (systemd's LoadCredential=), else in the working folder.
 * @returns NA_OK with a new string in *@p out (free()), or NA_ERR_IO /
 *          NA_ERR_CONFIG with errstr naming the file, never its content.
 */
NA_WUR na_err_t na_conf_read_secret(const char *path, char **out, char *errstr,
                                    size_t errstr_size);

/**
 * @returns a redacted copy of a URL for logs, for URLs whose path is a
 *          secret (webhooks): "scheme://host[:port]/" and three asterisks,
 *          user info dropped;
 *          new string, free(); NULL on no memory.
 */
char *na_conf_redact_url(const char *url);

/**
 * @returns a redacted copy of a URL for logs, metrics and status pages, for
 *          URLs whose secrets sit in user info or query (feeds):
 *          "scheme://host[:port]/path?" and three asterisks (or "#" and
 *          them for a fragment alone), user info dropped; new string,
 *          free(); NULL on no memory.
 */
char *na_conf_redact_url_query(const char *url);

/**
 * @returns how a source id is shown in logs, errors, metrics and the status
 *          page: an id is the source's URL when the entry names none, so
 *          one with user info, a query or a fragment is redacted
 *          (na_conf_redact_url_query()) with the first 8 hex digits of its
 *          SHA-256 after a '~', which keeps ids of one redacted form apart
 *          ("https://feeds.example/rss?***~1a2b3c4d"); any other id as it
 *          is. New string, free(); NULL on no memory.
 */
char *na_conf_shown_id(const char *id);

/**
 * @brief na_conf_shown_id() into @p buf ("?" on no memory; cut to fit).
 * @returns @p buf
 */
const char *na_conf_shown_id_buf(const char *id, char *buf, size_t size);

#endif
