#include "newsalert/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "newsalert/daemon.h"
#include "newsalert/log.h"
#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"

#define CT_JSON "application/json"
#define CT_HTML "text/html; charset=utf-8"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"
/* The page has no script at all; inline CSS is its only style. */
#define PAGE_CSP                                                                         \
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; "                    \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* One open connection, for the request deadline (na_httpd_reap()). */
struct conn {
    int fd;
    bool cut;      /* shut down once already */
    int64_t since; /* na_mono_ms() when its request's clock started */
    struct conn *prev, *next;
};

struct na_httpd_s {
    struct MHD_Daemon *mhd;
    int port;
    char *daemon_name;
    int64_t stall_ms;
    pthread_mutex_t lock; /* guards status and published_ms */
    json_t *status;
    int64_t published_ms;       /* na_mono_ms() of the last snapshot, 0 = none yet */
    pthread_mutex_t conns_lock; /* guards conns and every conn in it */
    struct conn *conns;
};

/* ---- HTML ---- */

void na_httpd_html_escape(struct na_buf *buf, const char *s) {
    const char *run = s;
    if (!s) {
        return;
    }
    for (; *s; s++) {
        const char *ent = NULL;
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&':
            ent = "&amp;";
            break;
        case '<':
            ent = "&lt;";
            break;
        case '>':
            ent = "&gt;";
            break;
        case '"':
            ent = "&quot;";
            break;
        case '\'':
            ent = "&#39;";
            break;
        default:
            if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
                ent = "";
            }
            break;
        }
        if (ent) {
            na_buf_append(buf, run, (size_t)(s - run));
            na_buf_puts(buf, ent);
            run = s + 1;
        }
    }
    na_buf_append(buf, run, (size_t)(s - run));
}

static const char *jstr(const json_t *obj, const char *key) {
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/* A member as display text: strings as they are, numbers and booleans
 * printed, anything else empty. */
static void put_value(struct na_buf *buf, const json_t *v) {
    char num[64];
    if (json_is_string(v)) {
        na_httpd_html_escape(buf, json_string_value(v));
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
        na_buf_puts(buf, num);
    } else if (json_is_real(v)) {
        snprintf(num, sizeof(num), "%.2f", json_real_value(v));
        na_buf_puts(buf, num);
    } else if (json_is_boolean(v)) {
        na_buf_puts(buf, json_is_true(v) ? "yes" : "no");
    } else {
        na_buf_puts(buf, "&ndash;");
    }
}

static void cell(struct na_buf *buf, const json_t *obj, const char *key) {
    na_buf_puts(buf, "<td>");
    put_value(buf, json_object_get(obj, key));
    na_buf_puts(buf, "</td>");
}

static bool is_web_url(const char *url) {
    return !strncmp(url, "http://", 7) || !strncmp(url, "https://", 8);
}

/* A link when @p url is http(s), else the text alone. */
static void put_link(struct na_buf *buf, const char *url, const char *text) {
    if (url && *url && is_web_url(url)) {
        na_buf_puts(buf, "<a rel=\"noreferrer noopener\" href=\"");
        na_httpd_html_escape(buf, url);
        na_buf_puts(buf, "\">");
        na_httpd_html_escape(buf, text && *text ? text : url);
        na_buf_puts(buf, "</a>");
    } else {
        na_httpd_html_escape(buf, text && *text ? text : url);
    }
}

static void badge(struct na_buf *buf, bool good, const char *text) {
    na_buf_printf(buf, "<span class=\"b %s\">", good ? "ok" : "bad");
    na_httpd_html_escape(buf, text);
    na_buf_puts(buf, "</span>");
}

static void render_feeds(struct na_buf *buf, const json_t *feeds) {
    size_t i;
    const json_t *f;
    na_buf_printf(buf, "<h2>Feeds (%zu)</h2>\n", json_array_size(feeds));
    if (!json_array_size(feeds)) {
        na_buf_puts(buf, "<p>No feeds.</p>\n");
        return;
    }
    na_buf_puts(buf, "<table><thead><tr><th>feed</th><th>status</th><th>HTTP</th>"
                     "<th>last fetch</th><th>last success</th><th>staleness (s)</th>"
                     "<th>fetches</th><th>errors</th><th>last error</th></tr></thead>"
                     "<tbody>\n");
    json_array_foreach(feeds, i, f) {
        const char *status = jstr(f, "status");
        bool stale = json_is_true(json_object_get(f, "stale"));
        bool critical = json_is_true(json_object_get(f, "critical"));
        na_buf_printf(buf, "<tr%s><td>", stale ? " class=\"stale\"" : "");
        put_link(buf, jstr(f, "url"), *jstr(f, "name") ? jstr(f, "name") : jstr(f, "id"));
        if (critical) {
            na_buf_puts(buf, " <small>(critical)</small>");
        }
        na_buf_puts(buf, "</td><td>");
        badge(buf, !strcmp(status, "ok") || !strcmp(status, "not_modified"),
              *status ? status : "unknown");
        if (stale) {
            na_buf_puts(buf, " ");
            badge(buf, false, "stale");
        }
        na_buf_puts(buf, "</td>");
        cell(buf, f, "http_status");
        cell(buf, f, "last_fetch");
        cell(buf, f, "last_success");
        cell(buf, f, "stale_s");
        cell(buf, f, "fetches");
        cell(buf, f, "errors");
        cell(buf, f, "error");
        na_buf_puts(buf, "</tr>\n");
    }
    na_buf_puts(buf, "</tbody></table>\n");
}

static void render_routes(struct na_buf *buf, const json_t *routes) {
    size_t i;
    const json_t *r;
    na_buf_printf(buf, "<h2>Routes (%zu)</h2>\n", json_array_size(routes));
    if (!json_array_size(routes)) {
        na_buf_puts(buf, "<p>No routes: alerts are only logged.</p>\n");
        return;
    }
    na_buf_puts(buf, "<table><thead><tr><th>route</th><th>format</th><th>health</th>"
                     "<th>sent</th><th>failed</th><th>retries</th><th>pending</th>"
                     "<th>last status</th><th>last success</th><th>last error</th></tr>"
                     "</thead><tbody>\n");
    json_array_foreach(routes, i, r) {
        bool healthy = !json_is_false(json_object_get(r, "healthy"));
        na_buf_puts(buf, "<tr>");
        cell(buf, r, "name");
        cell(buf, r, "format");
        na_buf_puts(buf, "<td>");
        badge(buf, healthy, healthy ? "healthy" : "failing");
        na_buf_puts(buf, "</td>");
        cell(buf, r, "sent");
        cell(buf, r, "failed");
        cell(buf, r, "retries");
        cell(buf, r, "pending");
        cell(buf, r, "last_status");
        cell(buf, r, "last_success");
        cell(buf, r, "last_error");
        na_buf_puts(buf, "</tr>\n");
    }
    na_buf_puts(buf, "</tbody></table>\n");
}

static void render_alerts(struct na_buf *buf, const json_t *alerts) {
    size_t i, j;
    const json_t *a, *x;
    size_t n = json_array_size(alerts);
    na_buf_printf(buf, "<h2>Last alerts (%zu)</h2>\n", n);
    if (!n) {
        na_buf_puts(buf, "<p>No alerts yet.</p>\n");
        return;
    }
    na_buf_puts(buf, "<ol class=\"alerts\">\n");
    json_array_foreach(alerts, i, a) {
        if (i >= NA_HTTPD_MAX_ALERTS) {
            break;
        }
        na_buf_puts(buf, "<li><div class=\"head\"><span class=\"topic\">");
        na_httpd_html_escape(buf, jstr(a, "topic"));
        na_buf_puts(buf, "</span> <span class=\"score\">score ");
        put_value(buf, json_object_get(a, "score"));
        na_buf_puts(buf, "</span> ");
        put_link(buf, jstr(a, "url"),
                 *jstr(a, "title") ? jstr(a, "title") : "(untitled)");
        na_buf_puts(buf, "</div>\n<div class=\"meta\">");
        na_httpd_html_escape(buf,
                             *jstr(a, "source") ? jstr(a, "source") : "unknown source");
        na_buf_puts(buf, " &middot; published ");
        put_value(buf, json_object_get(a, "published_at"));
        na_buf_puts(buf, " &middot; alerted ");
        put_value(buf, json_object_get(a, "at"));
        json_array_foreach(json_object_get(a, "routes"), j, x) {
            const char *outcome = jstr(x, "outcome");
            na_buf_puts(buf, j ? ", " : " &middot; ");
            na_httpd_html_escape(buf, jstr(x, "name"));
            na_buf_puts(buf, " ");
            badge(buf, !strcmp(outcome, "sent") || !strcmp(outcome, "retrying"), outcome);
        }
        na_buf_puts(buf, "</div>\n");
        const json_t *story = json_object_get(a, "story");
        json_int_t reports = json_integer_value(json_object_get(story, "articles"));
        const json_t *latest = json_object_get(a, "latest");
        if (reports > 1) {
            na_buf_printf(buf, "<div class=\"story\">same story: %lld reports",
                          (long long)reports);
            if (json_is_object(latest)) {
                na_buf_puts(buf, " &middot; latest: ");
                put_link(buf, jstr(latest, "url"),
                         *jstr(latest, "title") ? jstr(latest, "title") : "(untitled)");
                na_buf_puts(buf, " (");
                na_httpd_html_escape(buf, *jstr(latest, "source") ? jstr(latest, "source")
                                                                  : "unknown source");
                na_buf_puts(buf, ")");
            }
            na_buf_puts(buf, "</div>\n");
        }
        if (json_array_size(json_object_get(a, "evidence"))) {
            na_buf_puts(buf, "<div class=\"ev\">evidence: ");
            json_array_foreach(json_object_get(a, "evidence"), j, x) {
                const char *matched = jstr(x, "matched");
                na_buf_puts(buf, j ? ", <q>" : "<q>");
                na_httpd_html_escape(buf, *matched ? matched : jstr(x, "term"));
                na_buf_puts(buf, "</q>");
                if (*jstr(x, "field")) {
                    na_buf_puts(buf, " <small>(");
                    na_httpd_html_escape(buf, jstr(x, "field"));
                    na_buf_puts(buf, ")</small>");
                }
            }
            na_buf_puts(buf, "</div>\n");
        }
        na_buf_puts(buf, "</li>\n");
    }
    na_buf_puts(buf, "</ol>\n");
}

static const char page_css[] =
    "body{font:15px/1.45 system-ui,sans-serif;margin:1.2em 2em;color:#1b1f23;"
    "background:#fff}h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.15em;"
    "margin:1.4em 0 .4em;border-bottom:1px solid #d0d7de}table{border-collapse:collapse;"
    "width:100%}th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #eaeef2;"
    "vertical-align:top}th{background:#f6f8fa;font-weight:600}tr.stale td{background:"
    "#fff5f5}.b{display:inline-block;padding:0 .5em;border-radius:.8em;font-size:.85em;"
    "font-weight:600}.b.ok{background:#dafbe1;color:#116329}.b.bad{background:#ffebe9;"
    "color:#a40e26}.meta,.sub{color:#57606a;font-size:.9em}ol.alerts{padding-left:1.4em}"
    "ol.alerts li{margin:.6em 0}.topic{font-weight:700}.score{color:#57606a}"
    ".ev{font-size:.9em}q{background:#fff8c5}a{color:#0969da}";

char *na_httpd_render_page(const char *daemon_name, const json_t *status,
                           int64_t age_ms) {
    struct na_buf buf;
    const char *name =
        status && *jstr(status, "daemon") ? jstr(status, "daemon") : daemon_name;
    na_buf_init(&buf);
    na_buf_puts(&buf, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                      "<meta name=\"viewport\" content=\"width=device-width\">"
                      "<meta http-equiv=\"refresh\" content=\"15\"><title>");
    na_httpd_html_escape(&buf, name);
    na_buf_printf(&buf, " status</title><style>%s</style></head><body>\n<h1>", page_css);
    na_httpd_html_escape(&buf, name);
    na_buf_puts(&buf, "</h1>\n<p class=\"sub\">");
    if (!status) {
        na_buf_puts(&buf, "starting: no status yet</p>\n</body></html>\n");
        return buf.oom ? (na_buf_cleanup(&buf), NULL) : na_buf_steal(&buf);
    }
    na_buf_puts(&buf, "version ");
    na_httpd_html_escape(&buf, jstr(status, "version"));
    na_buf_puts(&buf, " &middot; started ");
    na_httpd_html_escape(&buf, jstr(status, "started_at"));
    if (age_ms > 5000) {
        na_buf_printf(&buf, " &middot; status is %lld s old", (long long)(age_ms / 1000));
    }
    na_buf_puts(&buf, "</p>\n<p>");
    bool ready = json_is_true(json_object_get(status, "ready"));
    badge(&buf, ready, ready ? "ready" : "not ready");
    const json_t *why = json_object_get(status, "not_ready");
    size_t i;
    const json_t *v;
    json_array_foreach(why, i, v) {
        na_buf_puts(&buf, i ? "; " : " ");
        na_httpd_html_escape(&buf, json_string_value(v));
    }
    const json_t *kafka = json_object_get(status, "kafka");
    if (kafka) {
        na_buf_puts(&buf, " &middot; Kafka ");
        badge(&buf, json_is_true(json_object_get(kafka, "connected")),
              json_is_true(json_object_get(kafka, "connected")) ? "connected"
                                                                : "not connected");
        if (*jstr(kafka, "brokers")) {
            na_buf_puts(&buf, " ");
            na_httpd_html_escape(&buf, jstr(kafka, "brokers"));
        }
    }
    const json_t *rules = json_object_get(status, "rules");
    if (rules) {
        na_buf_puts(&buf, " &middot; rules ");
        put_value(&buf, json_object_get(rules, "version"));
        na_buf_puts(&buf, " (");
        put_value(&buf, json_object_get(rules, "topics"));
        na_buf_puts(&buf, " topics, loaded ");
        put_value(&buf, json_object_get(rules, "loaded_at"));
        na_buf_puts(&buf, ")");
    }
    na_buf_puts(&buf, "</p>\n");
    if (json_object_get(status, "feeds")) {
        render_feeds(&buf, json_object_get(status, "feeds"));
    }
    if (json_object_get(status, "routes")) {
        render_routes(&buf, json_object_get(status, "routes"));
    }
    if (json_object_get(status, "alerts")) {
        render_alerts(&buf, json_object_get(status, "alerts"));
    }
    na_buf_puts(&buf,
                "<p class=\"sub\">Read-only. Machine-readable: <a href=\"/status.json\">"
                "/status.json</a>, <a href=\"/metrics\">/metrics</a>, "
                "<a href=\"/readyz\">/readyz</a>.</p>\n</body></html>\n");
    if (buf.oom) {
        na_buf_cleanup(&buf);
        return NULL;
    }
    return na_buf_steal(&buf);
}

/* ---- the server ---- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
                             const char *type, char *body, bool head) {
    /* MUST_FREE: libmicrohttpd frees body with free() once sent. */
    size_t len = body ? strlen(body) : 0;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body ? body : (void *)"",
        body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret;
    char labels[96];

    (void)head; /* libmicrohttpd leaves out the body of a HEAD answer itself */
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (!strncmp(type, "text/html", 9)) {
        MHD_add_response_header(resp, "Content-Security-Policy", PAGE_CSP);
        MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    }
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    snprintf(labels, sizeof(labels), "code=\"%u\"", status);
    na_metrics_inc("newsalert_http_requests_total",
                   "Requests answered by the operations listener, by status code.",
                   labels);
    return ret;
}

static char *json_text(json_t *root) {
    char *s = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (s) {
        size_t n = strlen(s);
        char *t = realloc(s, n + 2);
        if (t) {
            t[n] = '\n';
            t[n + 1] = '\0';
            s = t;
        }
    }
    return s;
}

/* Why the daemon is not healthy (stalled loop), or NULL. Lock held. */
static void stall_reason(const struct na_httpd_s *h, char *buf, size_t size) {
    int64_t age = na_mono_ms() - h->published_ms;
    buf[0] = '\0';
    if (h->published_ms && age > h->stall_ms) {
        snprintf(buf, size, "main loop stalled: no status for %lld s",
                 (long long)(age / 1000));
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls) {
    struct na_httpd_s *h = cls;
    bool head = !strcmp(method, MHD_HTTP_METHOD_HEAD);
    char stalled[128];

    (void)version;
    (void)upload_data;
    (void)req_cls;
    if (!head && strcmp(method, MHD_HTTP_METHOD_GET)) {
        *upload_data_size = 0;
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, CT_JSON,
                     json_text(json_pack("{ss}", "error", "method not allowed")), head);
    }
    if (!strcmp(url, "/metrics")) {
        /* Not rendered (no memory): an error, so that a scraper marks the
         * scrape failed instead of reading no series. */
        char *text = na_metrics_render();
        if (!text) {
            na_log(NA_LOG_ERROR, "httpd", "metrics_failed", "err=\"no memory\"");
            return reply(
                conn, MHD_HTTP_SERVICE_UNAVAILABLE, CT_JSON,
                json_text(json_pack("{ss}", "error", "metrics not rendered: no memory")),
                head);
        }
        return reply(conn, MHD_HTTP_OK, CT_METRICS, text, head);
    }

    unsigned code = MHD_HTTP_OK;
    const char *type = CT_JSON;
    char *body = NULL;
    pthread_mutex_lock(&h->lock);
    stall_reason(h, stalled, sizeof(stalled));
    if (!strcmp(url, "/healthz")) {
        code = stalled[0] ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK;
        body = json_text(
            stalled[0] ? json_pack("{ss ss}", "status", "stalled", "reason", stalled)
                       : json_pack("{ss}", "status", "ok"));
    } else if (!strcmp(url, "/readyz")) {
        json_t *reasons = json_array();
        bool ready =
            h->status && json_is_true(json_object_get(h->status, "ready")) && !stalled[0];
        if (!h->status) {
            json_array_append_new(reasons,
                                  json_string("starting: no status published yet"));
        } else if (stalled[0]) {
            json_array_append_new(reasons, json_string(stalled));
        }
        if (h->status && !ready) {
            size_t i;
            json_t *v;
            json_array_foreach(json_object_get(h->status, "not_ready"), i, v) {
                if (json_is_string(v)) {
                    json_array_append(reasons, v);
                }
            }
            if (!json_array_size(reasons)) {
                json_array_append_new(reasons, json_string("not ready"));
            }
        }
        code = ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
        body = json_text(json_pack("{sb so}", "ready", ready, "reasons", reasons));
    } else if (!strcmp(url, "/status.json")) {
        code = h->status ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
        body = json_text(h->status ? json_incref(h->status)
                                   : json_pack("{ss}", "error", "no status yet"));
    } else if (!strcmp(url, "/")) {
        type = CT_HTML;
        body = na_httpd_render_page(h->daemon_name, h->status,
                                    h->published_ms ? na_mono_ms() - h->published_ms : 0);
    } else {
        code = MHD_HTTP_NOT_FOUND;
        body = json_text(json_pack("{ss}", "error", "not found"));
    }
    pthread_mutex_unlock(&h->lock);
    if (!body) {
        return MHD_NO; /* no memory: libmicrohttpd closes the connection */
    }
    return reply(conn, code, type, body, head);
}

/* The connections, so that a request that takes too long can be cut:
 * libmicrohttpd's own timeout counts only silence. Every callback runs on
 * the listener's thread; the list is also read by na_httpd_reap(). A
 * connection leaves the list (here, on CLOSED) before its socket is
 * closed, so a socket in the list is always its own. */
static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code) {
    struct na_httpd_s *h = cls;
    struct conn *c = *socket_ctx;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!info || !(c = calloc(1, sizeof(*c)))) {
            return; /* no memory: this one goes without a deadline */
        }
        c->fd = info->connect_fd;
        c->since = na_mono_ms();
        pthread_mutex_lock(&h->conns_lock);
        c->next = h->conns;
        if (h->conns) {
            h->conns->prev = c;
        }
        h->conns = c;
        pthread_mutex_unlock(&h->conns_lock);
        *socket_ctx = c;
    } else if (c) {
        pthread_mutex_lock(&h->conns_lock);
        if (c->prev) {
            c->prev->next = c->next;
        } else {
            h->conns = c->next;
        }
        if (c->next) {
            c->next->prev = c->prev;
        }
        pthread_mutex_unlock(&h->conns_lock);
        free(c);
        *socket_ctx = NULL;
    }
}

/* A request answered: the next one on the connection gets its own time. */
static void on_completed(void *cls, struct MHD_Connection *mc, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
    struct na_httpd_s *h = cls;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn *c = info ? info->socket_context : NULL;
    (void)req_cls;
    (void)toe;
    if (c) {
        pthread_mutex_lock(&h->conns_lock);
        c->since = na_mono_ms();
        pthread_mutex_unlock(&h->conns_lock);
    }
}

size_t na_httpd_reap(na_httpd_t *httpd, int64_t now_ms) {
    size_t cut = 0;
    if (!httpd) {
        return 0;
    }
    pthread_mutex_lock(&httpd->conns_lock);
    for (struct conn *c = httpd->conns; c; c = c->next) {
        if (!c->cut && now_ms - c->since > NA_HTTPD_REQUEST_MS) {
            /* the listener sees the end of the stream and closes it */
            shutdown(c->fd, SHUT_RDWR);
            c->cut = true;
            cut++;
        }
    }
    pthread_mutex_unlock(&httpd->conns_lock);
    if (cut) {
        na_metric_add(na_metrics_get(NA_METRIC_COUNTER,
                                     "newsalert_http_requests_cut_total",
                                     "Connections closed because their request was "
                                     "not whole and answered in time.",
                                     NULL),
                      (double)cut);
        na_log(NA_LOG_WARN, "httpd", "request_too_slow", "connections=%zu limit_ms=%d",
               cut, NA_HTTPD_REQUEST_MS);
    }
    return cut;
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt,
                                                             va_list ap) {
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = '\0';
    }
    na_log(NA_LOG_WARN, "httpd", "httpd_error", "err=%s", na_log_q(msg));
}

na_err_t na_httpd_start(const struct na_httpd_opts *opts, na_httpd_t **httpdp,
                        char *errstr, size_t errstr_size) {
    struct na_httpd_s *h = NULL;
    struct addrinfo hints, *res = NULL;
    char host[256], portstr[16];
    int port, gai;
    na_err_t err = NA_OK;

    *httpdp = NULL;
    if (na_daemon_parse_listen(opts->listen, host, sizeof(host), &port)) {
        snprintf(errstr, errstr_size, "http_listen: want HOST:PORT, not \"%s\"",
                 opts->listen ? opts->listen : "");
        return NA_ERR_CONFIG;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = host[0] ? AF_UNSPEC : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    gai = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
    if (gai) {
        snprintf(errstr, errstr_size, "http_listen %s: %s", opts->listen,
                 gai_strerror(gai));
        return NA_ERR_CONFIG;
    }
    if (!(h = calloc(1, sizeof(*h)))) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    pthread_mutex_init(&h->lock, NULL);
    pthread_mutex_init(&h->conns_lock, NULL);
    h->stall_ms = opts->stall_ms > 0 ? opts->stall_ms : 60000;
    h->daemon_name = na_strdup(opts->daemon_name ? opts->daemon_name : "newsalert");
    if (!h->daemon_name) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (res->ai_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    /* The logger first, so that libmicrohttpd never writes to stderr itself. */
    h->mhd = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, res->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)64, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)16,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)65536, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
    if (!h->mhd) {
        snprintf(errstr, errstr_size,
                 "http_listen %s: cannot listen (address in use or "
                 "not local?)",
                 opts->listen);
        err = NA_ERR_IO;
        goto out;
    }
    h->port = port;
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_LISTEN_FD);
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    if (info && !getsockname(info->listen_fd, (struct sockaddr *)&ss, &sslen)) {
        h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    }
    na_metric_set(na_metrics_get(NA_METRIC_GAUGE, "newsalert_build_info",
                                 "Always 1; the labels name the build.",
                                 "version=\"" NA_VERSION "\""),
                  1);
    na_log(NA_LOG_INFO, "httpd", "listening", "listen=%s port=%d", na_log_q(opts->listen),
           h->port);
    *httpdp = h;
    h = NULL;
out:
    freeaddrinfo(res);
    if (h) {
        na_httpd_stop(h);
    }
    return err;
}

int na_httpd_port(const na_httpd_t *httpd) {
    return httpd->port;
}

void na_httpd_publish_steal(na_httpd_t *httpd, json_t *status) {
    json_t *old;
    if (!httpd) {
        json_decref(status);
        return;
    }
    pthread_mutex_lock(&httpd->lock);
    old = httpd->status;
    httpd->status = status;
    httpd->published_ms = na_mono_ms();
    pthread_mutex_unlock(&httpd->lock);
    json_decref(old);
    na_httpd_reap(httpd, na_mono_ms());
}

void na_httpd_stop(na_httpd_t *httpd) {
    if (!httpd) {
        return;
    }
    if (httpd->mhd) {
        MHD_stop_daemon(httpd->mhd);
    }
    pthread_mutex_destroy(&httpd->lock);
    pthread_mutex_destroy(&httpd->conns_lock);
    json_decref(httpd->status);
    free(httpd->daemon_name);
    free(httpd);
}
