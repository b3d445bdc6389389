/**
 * @file sources.h
 * @brief The list of feeds to poll (sources JSON; see README "Sources").
 *
 *   {"sources": [{"id": "harbour-wire", "name": "Harbour Wire",
 *                 "url": "https://example.org/feed.xml", "interval": "5m",
 *                 "headers": {"Authorization": "Bearer ..."}}]}
 *
 * A bare top-level array of source objects is accepted too.
 */
#ifndef NEWSALERT_SOURCES_H
#define NEWSALERT_SOURCES_H

#include <stddef.h>
#include <stdint.h>

#include "newsalert/err.h"

#define NA_SOURCE_DEFAULT_INTERVAL_MS (5 * 60 * 1000)
#define NA_SOURCE_MIN_INTERVAL_MS 1000

struct na_source {
    char *id;            /**< "id": stable key for seen-state; defaults to url */
    char *name;          /**< "name": display name; defaults to id */
    char *url;           /**< "url": http(s) feed URL (or file:// in tests) */
    int64_t interval_ms; /**< "interval": "90s", "5m", or seconds as a number */
    char **headers;      /**< "headers": "Name: value" lines */
    size_t headers_cnt;
};

struct na_sources {
    struct na_source *v;
    size_t cnt;
};

/**
 * @brief Load and validate a sources file: every source has an http(s)
 *        url, ids are unique, unknown keys are errors naming the key.
 * @param out filled on success (release with na_sources_cleanup()), left
 *        empty on failure.
 */
NA_WUR na_err_t na_sources_load_file(const char *path, struct na_sources *out,
                                     char *errstr, size_t errstr_size);

/** @brief As na_sources_load_file() from a buffer; @p name is used in errors. */
NA_WUR na_err_t na_sources_load_buf(const char *buf, size_t len, const char *name,
                                    struct na_sources *out, char *errstr,
                                    size_t errstr_size);

void na_sources_cleanup(struct na_sources *s);

#endif
