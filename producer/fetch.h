/**
 * @file fetch.h
 * @brief Concurrent HTTP GETs of feeds with libcurl multi.
 *
 * One fetcher drives many transfers from the calling thread: na_fetcher_run()
 * performs I/O for up to timeout_ms and calls the done callback (in that same
 * thread) for every finished transfer. Limits: connect and total timeouts, a
 * redirect cap, a body size cap (the transfer is aborted the moment the cap
 * is passed), gzip/deflate.
 *
 * Every transfer added starts at once: its timeouts run from na_fetcher_add().
 * How many run at once, in total and per host, is the caller's to limit
 * (the producer's scheduler does, with queues of its own): libcurl's
 * connection limits would queue transfers inside the multi handle while
 * their timeouts run, so a transfer could time out before it started.
 */
#ifndef NEWSALERT_FETCH_H
#define NEWSALERT_FETCH_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "newsalert/err.h"

typedef struct na_fetcher_s na_fetcher_t;

struct na_fetch_opts {
    long connect_timeout_ms; /**< "fetch_connect_timeout" */
    long timeout_ms;         /**< whole transfer, "fetch_timeout" */
    long max_redirects;
    size_t max_bytes;        /**< body cap, "fetch_max_bytes" */
    const char *user_agent;  /**< "user_agent" */
    const char *instance_id; /**< sent as X-Newsalert-Instance, or NULL */
};

struct na_fetch_req {
    const char *url;
    char *const *headers; /**< "Name: value" lines, borrowed for the call */
    size_t headers_cnt;
    const char *etag;          /**< If-None-Match, or NULL */
    const char *last_modified; /**< If-Modified-Since, or NULL */
    void *opaque;              /**< handed back in the result */
};

struct na_fetch_res {
    void *opaque;
    CURLcode code;
    long status; /**< HTTP status, 0 without a response */
    char *body;  /**< NUL-terminated, body_len bytes (decoded) */
    size_t body_len;
    bool too_large;          /**< the body passed max_bytes; transfer aborted */
    char *etag;              /**< response ETag or NULL */
    char *last_modified;     /**< response Last-Modified or NULL */
    char *retry_after;       /**< response Retry-After or NULL */
    char *effective_url;     /**< after redirects */
    long redirects;          /**< redirects followed */
    bool permanent_redirect; /**< a 301/308 was among them */
    char *permanent_url;     /**< where the leading run of 301/308 redirects led
                                  (absolute), or NULL: the feed's new address */
    int64_t elapsed_ms;
    char errstr[CURL_ERROR_SIZE];
};

/** Called once per finished transfer; @p res is borrowed for the call. */
typedef void(na_fetch_done_cb)(struct na_fetch_res *res, void *ctx);

/** @returns new fetcher; destroy with na_fetcher_destroy(); NULL on no memory. */
na_fetcher_t *na_fetcher_new(const struct na_fetch_opts *opts);

/** @brief Abort all transfers (no callbacks) and free; NULL-safe. */
void na_fetcher_destroy(na_fetcher_t *f);

/** @brief Queue a GET; strings in @p req are copied. */
NA_WUR na_err_t na_fetcher_add(na_fetcher_t *f, const struct na_fetch_req *req);

/**
 * @brief Perform I/O for at most @p timeout_ms and report finished transfers.
 * @returns the number of transfers still running.
 */
int na_fetcher_run(na_fetcher_t *f, int timeout_ms, na_fetch_done_cb *cb, void *ctx);

/**
 * @brief Abort every transfer whose opaque is @p opaque, without callback.
 * @returns the number aborted.
 */
size_t na_fetcher_cancel(na_fetcher_t *f, const void *opaque);

/**
 * @returns a static, metric-friendly reason for a failed result: "timeout",
 *          "too_large", "redirects", "connect", "dns", "transport", "http_5xx",
 *          "http_429", "http_4xx", "http_410", "http_3xx", or "ok".
 */
const char *na_fetch_reason(const struct na_fetch_res *res);

/** @returns transfers queued or running. */
size_t na_fetcher_active(const na_fetcher_t *f);

#endif
