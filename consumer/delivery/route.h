/**
 * @file route.h
 * @brief Where alerts go: named webhook routes with a format, a topic filter
 *        and a minimum score (the consumer config's "routes", or --webhook).
 */
#ifndef NEWSALERT_ROUTE_H
#define NEWSALERT_ROUTE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "newsalert/err.h"

struct na_format;

struct na_route {
    char *name;
    char *url;                      /**< secret: never logged in full */
    const struct na_format *format; /**< from "format" (default "json") */
    char **topics;                  /**< empty = every topic */
    size_t topics_cnt;
    double min_score;
    char *secret;       /**< Standard Webhooks secret ("whsec_..."), or NULL */
    unsigned char *key; /**< decoded secret */
    size_t key_len;
    double rate_per_s;     /**< "rate_per_s": pacing (default: the format's) */
    double burst;          /**< "burst": token bucket size (default: the format's) */
    long digest_threshold; /**< "digest_threshold": more fresh alerts waiting
                                than this leave as one digest (0: never) */
    long max_queue;        /**< "max_queue": alerts queued or in flight before
                                the consumer pauses (0: max_pending) */
    bool keepalive;        /**< "keepalive": reuse connections (default true) */
    long max_in_flight;    /**< "max_in_flight": requests at once (parsed
                                default 1; 0: no limit). With a deliverer
                                that holds answered requests until they are
                                recorded, such a request keeps a slot. */
};

#define NA_ROUTE_DIGEST_THRESHOLD 10
#define NA_ROUTE_MAX_QUEUE_DEFAULT 0
#define NA_ROUTE_MAX_IN_FLIGHT_DEFAULT 1

struct na_routes {
    struct na_route *v;
    size_t cnt;
};

/**
 * @brief Parse a JSON array of routes:
 *        [{"name", "url", "format", "topics", "min_score", "secret",
 *          "rate_per_s", "burst", "digest_threshold", "max_queue", "keepalive",
 *          "max_in_flight"}].
 *        Unknown keys are errors naming the key; url must be http(s).
 * @param out appended to; release with na_routes_cleanup().
 */
NA_WUR na_err_t na_routes_parse(json_t *arr, struct na_routes *out, char *errstr,
                                size_t errstr_size);

/** @brief Add the one-route shortcut of --webhook URL. */
NA_WUR na_err_t na_routes_add_url(struct na_routes *out, const char *url,
                                  const char *format, char *errstr, size_t errstr_size);

void na_routes_cleanup(struct na_routes *routes);

/** @returns true when @p route takes alerts of @p topic with @p score. */
bool na_route_wants(const struct na_route *route, const char *topic, double score);

/** @returns new JSON array describing the routes with URLs and secrets redacted. */
json_t *na_routes_dump(const struct na_routes *routes);

#endif
