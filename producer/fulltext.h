/**
 * @file fulltext.h
 * @brief The full-text stage of the producer: an item's page fetched,
 *        politely and safely, and its story extracted (docs/producer.md,
 *        "Full text").
 *
 * What it decides. For each item submitted (an article the producer is
 * about to produce from a source with "full_text"), the stage fetches the
 * item's link and extracts the story (extract.h), then reports the item
 * exactly once to the done callback: OK with the page's text and metadata,
 * DISALLOWED (robots.txt), or FAILED with a reason. The caller produces
 * the item either way: a page never loses an item, and never holds it
 * longer than wait_ms ("full_text_wait") from its submission.
 *
 * Politeness and safety:
 * - Slots: every transfer (pages and robots.txt) takes a slot of the
 *   caller's scheduler first (the slots callbacks): the same transfers at
 *   once, in total and per origin, as feeds ("fetch_concurrency",
 *   "fetch_per_host"). Pages of an origin wait in that origin's queue,
 *   first come first served; their waiting counts in wait_ms.
 * - robots.txt (robots.h) of each origin is fetched before its first page,
 *   kept for NA_FULLTEXT_ROBOTS_TTL_MS, and obeyed: a disallowed page is
 *   not fetched (DISALLOWED, reason "robots"). A missing robots.txt (4xx,
 *   or more redirects than allowed) allows everything; an unreachable one
 *   (5xx, 429, timeout, no connection) allows nothing until it is asked
 *   again after a backoff (FAILED, reason "robots_unreachable"), as RFC
 *   9309 section 2.3.1 says. The status decides also when the body is over
 *   NA_ROBOTS_MAX_BYTES: only a 2xx body is read as rules (its start).
 * - Addresses: only http(s) links; unless the item's source allows
 *   private addresses, every hop of a page or robots.txt fetch, the first
 *   included, is refused when it would connect to a loopback, private,
 *   link-local or otherwise internal address (fetch.h; FAILED, reason
 *   "private_address"). Redirects capped as for feeds.
 * - Conditional GET: a page's ETag and Last-Modified are kept with its
 *   extracted story in a cache of at most NA_FULLTEXT_CACHE_BYTES (least
 *   recently used first out); the next fetch of that URL is conditional,
 *   and a 304 gives the cached story.
 * - Backoff: a page or robots.txt fetch that fails in a way worth retrying
 *   (timeout, connection, DNS, 5xx, 429) backs the origin off: its pages
 *   are not fetched (FAILED, reason "backoff") for retry_base doubled per
 *   failure in a row up to retry_max, or longer when Retry-After asks. A
 *   success ends it. Items are never retried later: they go out with the
 *   feed's text at once.
 * - Timeouts and size: a transfer lasts at most timeout_ms and what is
 *   left of its first item's wait; a body at most max_bytes.
 *
 * Failure reasons (the "full-text-reason" header and the metric label):
 * "robots", "robots_unreachable", "private_address", "redirect_refused",
 * "backoff", "wait" (full_text_wait passed), "timeout", "too_large",
 * "redirects", "connect", "dns", "transport", "http_4xx", "http_410",
 * "http_429", "http_5xx", "http_3xx", "not_html", "no_text", "parse",
 * "not_modified" (a 304 for a page no longer cached), "nomem", and what
 * the caller passes to na_fulltext_cancel() ("cancelled", "shutdown").
 *
 * Ownership and threading: the caller's main thread runs everything: the
 * done callback is called from na_fulltext_run(), na_fulltext_cancel()
 * and from the fetcher's callbacks (inside na_fetcher_run()), never from
 * na_fulltext_submit(). The stage borrows the fetcher; the caller keeps it
 * alive until na_fulltext_destroy().
 */
#ifndef NEWSALERT_FULLTEXT_H
#define NEWSALERT_FULLTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "extract.h"
#include "fetch.h"
#include "newsalert/article.h"
#include "newsalert/err.h"
#include "sources.h"

/** How long robots.txt rules are kept (RFC 9309: no more than 24 h). */
#define NA_FULLTEXT_ROBOTS_TTL_MS (24LL * 3600 * 1000)
/** Memory for extracted pages kept for conditional GETs (bytes). */
#define NA_FULLTEXT_CACHE_BYTES (32u * 1024u * 1024u)
/** Most origins whose robots.txt and backoff are remembered. */
#define NA_FULLTEXT_MAX_SITES 10000u

enum na_fulltext_status {
    NA_FULLTEXT_OK = 0,     /**< the page's story: res->page */
    NA_FULLTEXT_FAILED,     /**< the feed's text stays; res->reason says why */
    NA_FULLTEXT_DISALLOWED, /**< robots.txt forbids the page; reason "robots" */
};

struct na_fulltext_result {
    enum na_fulltext_status status;
    const char *reason;            /**< static token, "ok" for OK */
    const char *detail;            /**< one line, borrowed for the call, or NULL */
    const struct na_extract *page; /**< OK: borrowed for the call */
};

/** One item's outcome; called exactly once per submitted item. */
typedef void(na_fulltext_done_cb)(void *item, const struct na_fulltext_result *res,
                                  void *ctx);

/** What the caller's scheduler answers when a transfer asks for a slot. */
enum na_fulltext_slot {
    NA_FULLTEXT_SLOT_OK = 0, /**< taken: call release() when it ends */
    NA_FULLTEXT_SLOT_HOST,   /**< the origin of that URL is at its limit */
    NA_FULLTEXT_SLOT_ALL,    /**< no transfer at all may start now */
};

struct na_fulltext_slots {
    enum na_fulltext_slot (*acquire)(void *ctx, const char *url);
    void (*release)(void *ctx, const char *url);
    void *ctx;
};

struct na_fulltext_opts {
    int64_t wait_ms;        /**< "full_text_wait" */
    int64_t retry_base_ms;  /**< "retry_base": first backoff of an origin */
    int64_t retry_max_ms;   /**< "retry_max" */
    long timeout_ms;        /**< "fetch_timeout", per transfer */
    size_t max_bytes;       /**< body cap: min("fetch_max_bytes", NA_MAX_PAGE_BYTES) */
    const char *user_agent; /**< "user_agent": robots.txt groups by its token */
};

typedef struct na_fulltext_s na_fulltext_t;

/**
 * @returns new stage; destroy with na_fulltext_destroy(); NULL on no
 *          memory. @p fetcher, @p slots and the callback are borrowed.
 */
na_fulltext_t *na_fulltext_new(const struct na_fulltext_opts *opts, na_fetcher_t *fetcher,
                               const struct na_fulltext_slots *slots,
                               na_fulltext_done_cb *done, void *done_ctx);

/**
 * @brief Free the stage, its caches and its queued work; items still
 *        pending are dropped without a callback (call na_fulltext_cancel()
 *        first to report them) and transfers in flight are cancelled
 *        (their slots released). NULL-safe.
 */
void na_fulltext_destroy(na_fulltext_t *ft);

/** One item to fetch the page of. Strings are copied. */
struct na_fulltext_req {
    const char *url;      /**< the item's link */
    bool allow_private;   /**< the source's "allow_private_addresses" */
    char *const *headers; /**< the source's "headers" lines */
    size_t headers_cnt;
    const char *headers_origin; /**< they go only to this URL's origin */
    const void *owner;          /**< key for na_fulltext_cancel() (the feed) */
    void *item;                 /**< handed back to the done callback */
};

/**
 * @brief Want the page of one item.
 * @returns NA_OK: the done callback will report @p req->item once, later;
 *          NA_ERR_INVALID (not an http(s) URL) or NA_ERR_NOMEM: it never
 *          will, the item is the caller's to produce.
 */
NA_WUR na_err_t na_fulltext_submit(na_fulltext_t *ft, const struct na_fulltext_req *req);

/**
 * @brief Start the transfers that may start, report the items whose wait
 *        passed and those decided without a transfer (backoff, robots.txt
 *        known).
 * @returns ms until the next item's wait ends (the caller's loop may sleep
 *          that long), or -1 when no item waits.
 */
int64_t na_fulltext_run(na_fulltext_t *ft);

/**
 * @brief Report now, as FAILED with @p reason (static), every item of
 *        @p owner (NULL: every item). Their transfers go on, for the cache.
 * @returns the number of items reported.
 */
size_t na_fulltext_cancel(na_fulltext_t *ft, const void *owner, const char *reason);

/** @returns items submitted and not yet reported. */
size_t na_fulltext_pending(const na_fulltext_t *ft);

/**
 * @brief Test support: the most entries in one bucket of the stage's
 *        tables (pages waiting, sites, page cache), which every look-up of
 *        a key there may walk. A test bounds it where timing would be a
 *        guess.
 */
size_t na_fulltext_longest_chain(const na_fulltext_t *ft);

/**
 * @brief Does an item of a source with @p mode want its page? ON: yes;
 *        AUTO: when its text (content, else summary) has fewer than
 *        @p min_chars characters; OFF: no.
 */
bool na_fulltext_wanted(enum na_fulltext_mode mode, const struct na_article *a,
                        size_t min_chars);

/**
 * @brief Put a page's story into the item's article: the page's text in
 *        content, the feed's own text in summary (its summary, else its
 *        content, cut to NA_MAX_SUMMARY_BYTES); authors, published_at,
 *        lang and title from the page only where the feed had none.
 * @returns NA_OK or NA_ERR_NOMEM (@p a is unchanged then).
 */
NA_WUR na_err_t na_fulltext_apply(struct na_article *a, const struct na_extract *x);

#endif
