/**
 * @file sources.h
 * @brief The list of feeds to poll (sources JSON; see README "Sources").
 *
 *   {"sources": [{"id": "harbour-wire", "name": "Harbour Wire",
 *                 "url": "https://example.org/feed.xml", "interval": "5m",
 *                 "headers": {"Authorization": "Bearer ..."},
 *                 "allow_private_redirects": false,
 *                 "full_text": "auto", "full_text_min_chars": 500,
 *                 "allow_private_addresses": false}]}
 *
 * "headers" go only to the origin (scheme, host, port) of "url", never to
 * where a redirect leads elsewhere. Redirects to loopback, private and
 * link-local addresses are refused unless "allow_private_redirects" (or
 * "allow_private_addresses") is true; "url" itself may be such an address.
 *
 * "full_text" (false, true or "auto") fetches each new item's page and
 * takes its story (fulltext.h); "auto" only when the feed's text has fewer
 * than "full_text_min_chars" characters (default 500). Pages are refused on
 * loopback, private and link-local addresses, first hop included, unless
 * "allow_private_addresses" is true, which also allows the feed's
 * redirects there: it is the wider of the two permissions.
 *
 * "id" (the url when absent) and "url" are at most NA_MAX_URL_BYTES bytes:
 * the id is the key of the source's records in topic mode.
 *
 * A bare top-level array of source objects is accepted too.
 */
#ifndef NEWSALERT_SOURCES_H
#define NEWSALERT_SOURCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "newsalert/err.h"

#define NA_SOURCE_DEFAULT_INTERVAL_MS (5 * 60 * 1000)
#define NA_SOURCE_DEFAULT_FULL_TEXT_MIN_CHARS 500

/** A source's "full_text". */
enum na_fulltext_mode {
    NA_FULLTEXT_OFF = 0, /**< false (default) */
    NA_FULLTEXT_ON,      /**< true: every item's page */
    NA_FULLTEXT_AUTO,    /**< "auto": when the feed's text is short */
};
#define NA_SOURCE_MIN_INTERVAL_MS 1000
/** Longest "interval" and "stale_after", as seconds or as a duration. */
#define NA_SOURCE_MAX_INTERVAL_MS (30LL * 86400 * 1000)

struct na_source {
    char *id;            /**< "id": stable key for seen-state; defaults to url */
    char *name;          /**< "name": display name; defaults to id */
    char *url;           /**< "url": http(s) feed URL (or file:// in tests) */
    int64_t interval_ms; /**< "interval": "90s", "5m", or seconds as a number */
    char **headers;      /**< "headers": "Name: value" lines */
    size_t headers_cnt;
    bool critical; /**< "critical": /readyz fails while this feed is stale */
    bool allow_private_redirects;    /**< "allow_private_redirects": redirects may lead
                                          to loopback, private and link-local
                                          addresses (default false; fetch.h) */
    int64_t stale_after_ms;          /**< "stale_after": no successful fetch for this long
                                          = stale (default 3 intervals, at least 15 min) */
    enum na_fulltext_mode full_text; /**< "full_text": false, true or "auto" */
    size_t full_text_min_chars;      /**< "full_text_min_chars": "auto" fetches the
                                          page below this many characters (500) */
    bool allow_private_addresses;    /**< "allow_private_addresses": pages (and
                                          redirects) may reach loopback, private and
                                          link-local addresses (default false) */
    char *json;                      /**< the source object as compact JSON, "id" included
                                          (the value of a `news.sources` record) */
    char hash[65]; /**< hex SHA-256 of json: changes whenever the entry does */
};

struct na_sources {
    struct na_source *v;
    size_t cnt;
    size_t *by_id; /**< positions in v sorted by id (na_sources_load_buf()), or
                        NULL: na_producer_source_find() then scans */
};

/**
 * @brief Load and validate a sources file: every source has an http(s)
 *        url, ids are unique, unknown keys are errors naming the key. Ids
 *        are checked and indexed (by_id) in O(n log n): a file of
 *        NA_MAX_SOURCES loads in a fraction of a second.
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

/** @brief Free what one source owns and zero it; NULL-safe. */
void na_source_cleanup(struct na_source *src);

/**
 * @brief Parse one source object (a `news.sources` record value).
 * @param key_id the record key: the id, which an "id" member must match.
 * @param src filled on success (release with na_source_cleanup()), zeroed on
 *        failure.
 * @returns NA_OK, NA_ERR_PARSE or NA_ERR_CONFIG with one line in errstr.
 */
NA_WUR na_err_t na_source_parse_json(const char *buf, size_t len, const char *key_id,
                                     struct na_source *src, char *errstr,
                                     size_t errstr_size);

#endif
