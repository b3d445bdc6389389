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
 * Redirects are followed here, not by libcurl (CURLOPT_FOLLOWLOCATION is
 * off): libcurl would send the same CURLOPT_HTTPHEADER list to every hop
 * (it drops only Authorization and cookies when the host changes), and no
 * callback can change a request's headers between hops. So each hop of a
 * 301/302/303/307/308 chain is a request of its own on the same handle, to
 * the absolute Location libcurl resolved (CURLINFO_REDIRECT_URL), with:
 * - the caller's headers (a source's "headers") only when the hop's origin
 *   (scheme, host, port; na_url_origin()) is the origin of headers_origin;
 *   the fetcher's own (User-Agent, Accept, X-Newsalert-Instance, the
 *   validators) on every hop. User info rides only in the URL itself, which
 *   a Location to another origin does not carry over;
 * - unless allow_private, a check of the address every redirect hop
 *   connects to: loopback, private, link-local, unspecified, multicast,
 *   reserved and carrier-grade NAT addresses, IPv4 and IPv6 (also as
 *   IPv4-mapped, NAT64 and 6to4 addresses), are refused. The check runs on
 *   the address libcurl is about to connect to (CURLOPT_OPENSOCKETFUNCTION:
 *   no connection is even opened) and on the address of the connection a
 *   request is about to be sent on, new or reused (CURLOPT_PREREQFUNCTION),
 *   so a name that resolves to a public address first and to a private one
 *   at connect time (DNS rebinding) is still refused. The first hop is
 *   checked only with check_first (a URL that came from a redirect, such as
 *   a moved feed's), since a configured URL may well be internal. Through a
 *   proxy, the address checked is the proxy's;
 * - one timeout for the whole chain, and the redirect cap.
 * A refused hop ends the transfer with redirect_refused set and errstr
 * naming the URL (redacted: na_conf_redact_url_query()) and the address.
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
#include <sys/socket.h>
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

struct na_fetch_res;

/** Called once per finished transfer; @p res is borrowed for the call. */
typedef void(na_fetch_done_cb)(struct na_fetch_res *res, void *ctx);

struct na_fetch_req {
    const char *url;
    char *const *headers; /**< "Name: value" lines, copied; sent only to the
                               origin of headers_origin */
    size_t headers_cnt;
    const char *headers_origin; /**< URL whose origin may receive headers
                                     (the source's configured URL), or NULL:
                                     headers go nowhere */
    bool allow_private;         /**< redirects may reach private addresses */
    bool check_first;           /**< check the first hop's address too (the
                                     URL came from a redirect) */
    const char *etag;           /**< If-None-Match, or NULL */
    const char *last_modified;  /**< If-Modified-Since, or NULL */
    void *opaque;               /**< handed back in the result */
    const char *accept;         /**< Accept line value, or NULL: feed types */
    long timeout_ms;            /**< whole chain, or 0: opts.timeout_ms */
    size_t max_bytes;           /**< body cap, or 0: opts.max_bytes */
    const char *refuse_hint;    /**< ends a refusal's errstr, or NULL: "redirect
                                     targets must be public unless the source
                                     sets allow_private_redirects" */
    na_fetch_done_cb *done;     /**< this transfer's result goes here instead
                                     of to na_fetcher_run()'s callback, or NULL */
    void *done_ctx;             /**< handed to @p done */
};

struct na_fetch_res {
    void *opaque;
    CURLcode code;
    long status; /**< HTTP status, 0 without a response */
    char *body;  /**< NUL-terminated, body_len bytes (decoded) */
    size_t body_len;
    bool too_large;          /**< the body passed max_bytes; transfer aborted */
    bool redirect_refused;   /**< a hop led to a private address or away from
                                  http(s); errstr says where */
    bool addr_refused;       /**< of those: the address was refused */
    char *etag;              /**< response ETag or NULL */
    char *last_modified;     /**< response Last-Modified or NULL */
    char *retry_after;       /**< response Retry-After or NULL */
    char *content_type;      /**< response Content-Type or NULL */
    char *effective_url;     /**< after redirects */
    long redirects;          /**< redirects followed */
    bool permanent_redirect; /**< a 301/308 was among them */
    char *permanent_url;     /**< where the leading run of 301/308 redirects led
                                  (absolute), or NULL: the feed's new address */
    int64_t elapsed_ms;
    char errstr[CURL_ERROR_SIZE];
};

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
 *          "too_large", "redirect_refused", "redirects", "connect", "dns",
 *          "transport", "http_5xx", "http_429", "http_4xx", "http_410",
 *          "http_3xx", or "ok".
 */
const char *na_fetch_reason(const struct na_fetch_res *res);

/**
 * @brief Whether a redirect may connect to @p sa (see the file comment).
 * @returns NULL for a public address, else a static name of its class:
 *          "loopback", "private", "link-local", "unspecified", "multicast",
 *          "reserved", "shared (carrier-grade NAT)" or "not an IP".
 */
const char *na_fetch_addr_class(const struct sockaddr *sa);

/** @returns transfers queued or running. */
size_t na_fetcher_active(const na_fetcher_t *f);

#endif
