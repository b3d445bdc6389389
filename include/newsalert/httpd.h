/**
 * @file httpd.h
 * @brief The daemons' operations listener (libmicrohttpd): /healthz,
 *        /readyz, /metrics, /status.json and a read-only status page at /.
 *
 * Threading: the server answers on a thread of its own and never touches
 * daemon state. The daemon's main loop publishes a snapshot of its state
 * (a JSON status document, below) with na_httpd_publish_steal() about once a
 * second; every endpoint except /metrics (the metrics registry is
 * thread-safe) reads only the latest snapshot, under a mutex.
 *
 * Endpoints (GET and HEAD only; other methods get 405):
 *
 * | path           | 200 when                               | body                      |
 * |----------------|----------------------------------------|---------------------------|
 * | `/healthz`     | the main loop published within stall_ms | `{"status":"ok"}`        |
 * | `/readyz`      | the snapshot says `"ready": true`      |
 * `{"ready":..,"reasons":[..]}` | | `/metrics`     | always | Prometheus text 0.0.4     |
 * | `/status.json` | a snapshot exists                      | the snapshot              |
 * | `/`            | always                                 | HTML status page          |
 *
 * Before the first snapshot /readyz answers 503 ("starting"); when the last
 * snapshot is older than stall_ms both /healthz and /readyz answer 503 (the
 * main loop is stuck: restarting helps). Failing answers are 503 with a JSON
 * body naming the reasons.
 *
 * The status document (every member optional; unknown members ignored;
 * times are RFC 3339 UTC strings; text is untrusted and is HTML-escaped on
 * the page; links are shown only for http and https URLs):
 *
 *     {
 *       "daemon": "newsalert-consumer", "version": "0.1.0",
 *       "started_at": "2026-01-06T08:00:00Z",
 *       "ready": true,                       // what /readyz answers
 *       "not_ready": ["kafka: not connected", "feed wire (critical) stale 7200 s"],
 *       "kafka": {"connected": true, "brokers": "kafka:9092"},
 *       "rules": {"version": "3f2a..", "topics": 3, "loaded_at": "..."},
 *       "feeds": [{"id": "wire", "name": "Harbour Wire", "url": "https://..",
 *                  "critical": true, "status": "ok|not_modified|error|pending",
 *                  "http_status": 200, "error": "..", "last_fetch": "..",
 *                  "last_success": "..", "stale_s": 42, "stale": false,
 *                  "fetches": 10, "errors": 0}],
 *       "routes": [{"name": "desk", "format": "slack", "healthy": true,
 *                   "sent": 12, "failed": 0, "retries": 1, "pending": 0,
 *                   "last_status": 200, "last_error": "", "last_success": ".."}],
 *       "alerts": [{"at": "..", "topic": "taiwan", "score": 7.5, "title": "..",
 *                   "url": "https://..", "source": "Harbour Wire",
 *                   "published_at": "..",
 *                   "routes": [{"name": "desk", "outcome":
 * "sent|retrying|dead_lettered"}], "evidence": [{"term": "taiwan", "matched": "Taiwan",
 *                                 "field": "title"}]}]   // newest first
 *     }
 *
 * Route URLs are secrets: a daemon never puts them in the document.
 */
#ifndef NEWSALERT_HTTPD_H
#define NEWSALERT_HTTPD_H

#include <jansson.h>
#include <stdint.h>

#include "newsalert/err.h"
#include "newsalert/util.h"

typedef struct na_httpd_s na_httpd_t;

struct na_httpd_opts {
    const char *listen;      /**< "127.0.0.1:9464", "[::1]:9464", ":9464" (all IPv4);
                                  port 0 picks a free port (see na_httpd_port()) */
    const char *daemon_name; /**< shown on the page: "newsalert-producer" */
    int64_t stall_ms;        /**< /healthz fails when no snapshot came for this long
                                  (0: 60 s) */
};

/** Most alerts shown on the status page. */
#define NA_HTTPD_MAX_ALERTS 50

/**
 * @brief Start the listener on its own thread.
 * @param httpdp set to a new listener; stop with na_httpd_stop().
 * @returns NA_OK, NA_ERR_CONFIG (bad listen address) or NA_ERR_IO (cannot
 *          bind: errstr says which address and why).
 */
NA_WUR na_err_t na_httpd_start(const struct na_httpd_opts *opts, na_httpd_t **httpdp,
                               char *errstr, size_t errstr_size);

/** @returns the port the listener is bound to. */
int na_httpd_port(const na_httpd_t *httpd);

/**
 * @brief Publish a new status snapshot (any thread).
 * @param status taken (also on failure); the JSON document described above.
 */
void na_httpd_publish_steal(na_httpd_t *httpd, json_t *status);

/**
 * Longest a request may take, from its connection's start (or the answer
 * before it on that connection) to its answer sent (ms). libmicrohttpd's
 * 10 s timeout counts only silence: a client sending a byte every few
 * seconds would otherwise hold its connection for ever, and 16 such
 * connections take every one its address may open.
 */
#define NA_HTTPD_REQUEST_MS 30000

/**
 * @brief Close the connections whose request has taken longer than
 *        NA_HTTPD_REQUEST_MS at @p now_ms (na_mono_ms() time); counted in
 *        newsalert_http_requests_cut_total and logged. Each
 *        na_httpd_publish_steal() calls it; NULL-safe.
 * @returns how many were closed.
 */
size_t na_httpd_reap(na_httpd_t *httpd, int64_t now_ms);

/** @brief Stop the listener and free it; NULL-safe. Waits for in-flight answers. */
void na_httpd_stop(na_httpd_t *httpd);

/**
 * @brief Render the status page for @p status (NULL: "starting").
 * @param age_ms how old the snapshot is (shown when large).
 * @returns new NUL-terminated HTML; free(). NULL on no memory.
 */
char *na_httpd_render_page(const char *daemon_name, const json_t *status, int64_t age_ms);

/**
 * @brief Append @p s to @p buf HTML-escaped (& < > " ' as entities, control
 *        bytes dropped). Exposed for tests.
 */
void na_httpd_html_escape(struct na_buf *buf, const char *s);

#endif
