/**
 * @file seen.h
 * @brief The producer's seen-state: per feed, the HTTP validators (ETag,
 *        Last-Modified) and the ids of recently produced articles.
 *
 * Invariants: an id is added only after Kafka confirmed its delivery, so a
 * crash may re-publish but never loses an article; the file is replaced
 * atomically (na_write_file_atomic), so kill -9 leaves the old or the new
 * state; each feed remembers at most NA_SEEN_IDS_PER_FEED ids, oldest
 * forgotten first.
 */
#ifndef NEWSALERT_SEEN_H
#define NEWSALERT_SEEN_H

#include <stdbool.h>
#include <stddef.h>

#include "newsalert/err.h"

typedef struct na_seen_s na_seen_t;

/**
 * @brief Load the state from @p path; a missing file is an empty state.
 * @param seenp set to new state; destroy with na_seen_destroy().
 * @returns NA_OK, or NA_ERR_IO / NA_ERR_PARSE (a corrupt file is reported,
 *          never silently replaced).
 */
NA_WUR na_err_t na_seen_load(const char *path, na_seen_t **seenp, char *errstr,
                             size_t errstr_size);

void na_seen_destroy(na_seen_t *seen);

/** @brief Write the state atomically if it changed since the last save. */
NA_WUR na_err_t na_seen_save(na_seen_t *seen, char *errstr, size_t errstr_size);

bool na_seen_has(const na_seen_t *seen, const char *feed_id, const char *article_id);

/** @brief Remember @p article_id for @p feed_id (evicting the oldest past the cap). */
NA_WUR na_err_t na_seen_add(na_seen_t *seen, const char *feed_id, const char *article_id);

/** @returns borrowed validator ("etag" or "last_modified") or NULL; valid until changed. */
const char *na_seen_validator(const na_seen_t *seen, const char *feed_id, const char *name);

/** @brief Set both validators of a feed (NULL clears one). */
NA_WUR na_err_t na_seen_set_validators(na_seen_t *seen, const char *feed_id,
                                       const char *etag, const char *last_modified);

/** @returns the number of ids remembered for @p feed_id. */
size_t na_seen_count(const na_seen_t *seen, const char *feed_id);

#endif
