/**
 * @file deliver.h
 * @brief Webhook delivery with libcurl multi: concurrent POSTs over kept-
 *        alive connections, retries with exponential backoff and jitter,
 *        Retry-After honoured, Standard Webhooks signing.
 *
 * Single-threaded: submit, run and the done callback all happen on the
 * caller's thread. An alert ends exactly once, in the done callback, with
 * NA_OUTCOME_OK (2xx) or a final failure (DROP, or RETRY after the last
 * attempt) that the caller dead-letters; or the callback keeps an alert
 * whose attempts ran out (na_delivery_result.keep), and it ends in a later
 * callback.
 *
 * Per route: a FIFO queue, a token bucket (route rate_per_s / burst, else
 * the format's defaults), a route-wide pause after a failure, a 429's
 * Retry-After (or Discord's "retry_after" body) and Discord's
 * X-RateLimit-Remaining: 0 / X-RateLimit-Reset-After. When more than the
 * route's digest_threshold fresh alerts wait, they leave as ONE digest
 * message (the format's render_digest) and each ends with digest_cnt > 0.
 */
#ifndef NEWSALERT_DELIVER_H
#define NEWSALERT_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "newsalert/err.h"
#include "route.h"

typedef struct na_deliver_s na_deliver_t;

struct na_deliver_opts {
    long concurrency; /**< transfers at once ("deliver_concurrency") */
    long timeout_ms;  /**< per attempt ("deliver_timeout") */
    long connect_timeout_ms;
    int max_attempts;       /**< then the job fails ("deliver_max_attempts") */
    int64_t backoff_ms;     /**< first retry delay ("deliver_backoff") */
    int64_t backoff_max_ms; /**< cap ("deliver_backoff_max") */
    const char *user_agent;
    /** An answered (2xx) request keeps its slot of the route's
     *  max_in_flight until the caller says its alerts are recorded
     *  (na_deliver_recorded()): with max_in_flight 1, a route's next
     *  request starts only once the previous one is recorded, so a crash
     *  re-sends at most one request per route. */
    bool hold_until_recorded;
};

struct na_delivery_result {
    const struct na_route *route;
    const char *alert_id;
    const char *body; /**< the alert's payload, len bytes (for the dead-letter
                           copy; a digest's alerts each get their own) */
    size_t len;
    /** The callback may take the body instead of copying it: `char *b =
     *  *res->body_take; *res->body_take = NULL;` and free() b later. NULL
     *  when the body cannot be taken. */
    char **body_take;
    /** RETRY after the last attempt: the callback may set `*res->keep =
     *  true` (and leave the body) to keep trying instead. The alert goes
     *  back to its place in its route's queue, tried again after a backoff
     *  that goes on growing up to backoff_max_ms, and the callback
     *  is called again when that attempt ends (or the alert is taken out
     *  with na_deliver_take()). NULL for any other outcome. */
    bool *keep;
    na_outcome_t outcome;
    long status; /**< last HTTP status (0: no response) */
    int attempts;
    const char *error; /**< last error text */
    size_t digest_cnt; /**< > 0: sent inside a digest of this many alerts */
};

/** @p res is borrowed for the call; @p opaque is what na_deliver_submit() got. */
typedef void(na_deliver_done_cb)(void *opaque, const struct na_delivery_result *res,
                                 void *ctx);

/** @returns new deliverer; destroy with na_deliver_destroy(). */
na_deliver_t *na_deliver_new(const struct na_deliver_opts *opts);

/** @brief Abort everything without callbacks; NULL-safe. */
void na_deliver_destroy(na_deliver_t *d);

/**
 * @brief Queue one POST of @p body to @p route, as na_deliver_submit_steal()
 *        does, but @p body and @p item are taken only on success: on
 *        failure (NA_ERR_NOMEM) they are still the caller's, to try again.
 */
NA_WUR na_err_t na_deliver_submit(na_deliver_t *d, const struct na_route *route,
                                  const char *alert_id, char *body, size_t len,
                                  struct na_digest_item *item, void *opaque);

/**
 * @brief Queue one POST of @p body to @p route.
 * @param body taken (also on failure); free()d by the deliverer.
 * @param item taken (also on failure), or NULL: what a digest line shows;
 *        without it the alert is never folded into a digest.
 * @param route borrowed; must outlive the job.
 */
NA_WUR na_err_t na_deliver_submit_steal(na_deliver_t *d, const struct na_route *route,
                                        const char *alert_id, char *body, size_t len,
                                        struct na_digest_item *item, void *opaque);

/**
 * @returns true when @p alert_id is queued or in flight to @p route (alone
 *          or in a digest). Linear in the route's queue (bounded by its
 *          max_queue).
 */
bool na_deliver_has(const na_deliver_t *d, const struct na_route *route,
                    const char *alert_id);

/** A queued alert offered to na_deliver_take()'s callback. */
struct na_deliver_queued {
    const struct na_route *route;
    const char *alert_id;
    void *opaque; /**< what na_deliver_submit_steal() got */
    char *body;   /**< the callback owns it once it takes the job */
    size_t len;
    struct na_digest_item *item; /**< likewise (may be NULL) */
    int attempts;                /**< made so far */
};

/** @returns true to take the job out of the deliverer (it then ends without
 *  a done callback; body and item are the callback's to free). */
typedef bool(na_deliver_take_cb)(struct na_deliver_queued *q, void *ctx);

/**
 * @brief Offer every queued alert of @p route (NULL: of every route) that
 *        is not in flight, in queue order, to @p cb: a route that is given
 *        up on for now (parked) or a partition that went to another
 *        consumer. A digest waiting for a retry offers its alerts one by
 *        one; once one is taken, the others leave it and go on alone, in
 *        order (as alerts being retried: never folded again).
 * @returns alerts taken.
 */
size_t na_deliver_take(na_deliver_t *d, const struct na_route *route,
                       na_deliver_take_cb *cb, void *ctx);

/**
 * @returns alerts of @p route in flight (@p in_flight) and/or queued (@p
 *          queued) for which @p pred (NULL: any) returns true; @p pred gets
 *          each one's opaque.
 */
size_t na_deliver_route_count(const na_deliver_t *d, const struct na_route *route,
                              bool in_flight, bool queued,
                              bool (*pred)(void *opaque, void *ctx), void *ctx);

/**
 * @returns since when (na_mono_ms()) @p route has been failing: its last
 *          request ended in a failure and none succeeded since; 0 when it
 *          is not failing.
 */
int64_t na_deliver_route_failing_since(const na_deliver_t *d,
                                       const struct na_route *route);

/** @returns alerts of @p route not yet ended (the route's queue bound). */
size_t na_deliver_route_pending(const na_deliver_t *d, const struct na_route *route);

/**
 * @brief Forget the state (pacing, pauses) of routes with nothing queued, so
 *        that routes may be freed and replaced (a SIGHUP reload of routes).
 *        Call only when na_deliver_pending() is 0.
 */
void na_deliver_forget_routes(na_deliver_t *d);

/**
 * @brief Start due jobs, perform I/O for at most @p timeout_ms, and call
 *        @p cb for each job that ended.
 */
void na_deliver_run(na_deliver_t *d, int timeout_ms, na_deliver_done_cb *cb, void *ctx);

/**
 * @brief @p n alerts of @p route that ended NA_OUTCOME_OK are recorded:
 *        their request's slot is free (see hold_until_recorded). A route
 *        the deliverer forgot is ignored.
 */
void na_deliver_recorded(na_deliver_t *d, const struct na_route *route, size_t n);

/** @returns jobs not yet ended (waiting, backing off or in flight). */
size_t na_deliver_pending(const na_deliver_t *d);

/**
 * @brief Standard Webhooks signature of @p body: "v1,<base64 HMAC-SHA256 of
 *        id.timestamp.body>".
 * @returns new string; free(); NULL on failure.
 */
char *na_deliver_sign(const unsigned char *key, size_t key_len, const char *msg_id,
                      long long timestamp, const char *body, size_t len);

#endif
