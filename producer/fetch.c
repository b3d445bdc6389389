#include "fetch.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "newsalert/timeutil.h"
#include "newsalert/util.h"
#include "url.h"

struct transfer {
    CURL *curl;
    struct curl_slist *headers;
    struct na_buf body;
    struct na_fetch_res res;
    size_t max_bytes;
    int64_t start_ms;
    bool perm_chain; /* every response so far was a 301/308 */
    bool cur_perm;   /* the response being read is a 301/308 */
    struct transfer *next;
};

struct na_fetcher_s {
    CURLM *multi;
    struct na_fetch_opts opts;
    char *user_agent;
    char *instance_line; /* "X-Newsalert-Instance: id" or NULL */
    struct transfer *list;
    size_t active;
};

na_fetcher_t *na_fetcher_new(const struct na_fetch_opts *opts) {
    na_fetcher_t *f = calloc(1, sizeof(*f));
    if (!f) {
        return NULL;
    }
    f->opts = *opts;
    f->user_agent = na_strdup(opts->user_agent ? opts->user_agent : "newsalert");
    if (opts->instance_id && *opts->instance_id) {
        struct na_buf line;
        na_buf_init(&line);
        na_buf_printf(&line, "X-Newsalert-Instance: %s", opts->instance_id);
        f->instance_line = na_buf_steal(&line);
    }
    f->multi = curl_multi_init();
    if (!f->multi || !f->user_agent ||
        (opts->instance_id && *opts->instance_id && !f->instance_line)) {
        na_fetcher_destroy(f);
        return NULL;
    }
    /* No CURLMOPT_MAX_HOST_CONNECTIONS or _MAX_TOTAL_CONNECTIONS: libcurl
     * would queue transfers over them with their timeouts running (fetch.h). */
    curl_multi_setopt(f->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    return f;
}

static void transfer_free(na_fetcher_t *f, struct transfer *t) {
    if (t->curl) {
        curl_multi_remove_handle(f->multi, t->curl);
        curl_easy_cleanup(t->curl);
    }
    curl_slist_free_all(t->headers);
    na_buf_cleanup(&t->body);
    free(t->res.etag);
    free(t->res.last_modified);
    free(t->res.retry_after);
    free(t->res.effective_url);
    free(t->res.permanent_url);
    free(t);
}

void na_fetcher_destroy(na_fetcher_t *f) {
    if (!f) {
        return;
    }
    while (f->list) {
        struct transfer *t = f->list;
        f->list = t->next;
        transfer_free(f, t);
    }
    if (f->multi) {
        curl_multi_cleanup(f->multi);
    }
    free(f->user_agent);
    free(f->instance_line);
    free(f);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
    struct transfer *t = userdata;
    size_t n = size * nmemb;
    if (t->body.len + n > t->max_bytes) {
        t->res.too_large = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    na_buf_append(&t->body, ptr, n);
    return t->body.oom ? 0 : n;
}

/* Keep a copy of one response header value, trimmed. Headers of earlier
 * responses in a redirect chain are replaced by later ones. */
static void keep_header(char **dst, const char *v, size_t len) {
    while (len && (v[0] == ' ' || v[0] == '\t')) {
        v++;
        len--;
    }
    while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' ')) {
        len--;
    }
    free(*dst);
    *dst = na_strndup(v, len > 1024 ? 1024 : len);
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata) {
    struct transfer *t = userdata;
    size_t n = size * nitems;
    static const struct {
        const char *name;
        size_t off;
    } wanted[] = {
        {"etag:", offsetof(struct na_fetch_res, etag)},
        {"last-modified:", offsetof(struct na_fetch_res, last_modified)},
        {"retry-after:", offsetof(struct na_fetch_res, retry_after)},
    };
    if (n > 5 && !strncmp(buf, "HTTP/", 5)) {
        /* A new response in a redirect chain: note permanent redirects. Only
         * a leading run of them moves the feed: after a 302 the address we
         * would store is a temporary one. */
        const char *sp = memchr(buf, ' ', n);
        bool perm = sp && (size_t)(sp - buf) + 4 <= n &&
                    (!strncmp(sp + 1, "301", 3) || !strncmp(sp + 1, "308", 3));
        t->cur_perm = perm;
        if (perm) {
            t->res.permanent_redirect = true;
        } else {
            t->perm_chain = false;
        }
        return n;
    }
    if (t->perm_chain && t->cur_perm && n > 9 && !strncasecmp(buf, "location:", 9)) {
        char *loc = NULL;
        char *cur = NULL;
        keep_header(&loc, buf + 9, n - 9);
        curl_easy_getinfo(t->curl, CURLINFO_EFFECTIVE_URL, &cur);
        char *abs = loc ? na_url_resolve(cur, loc) : NULL;
        free(loc);
        if (abs) {
            free(t->res.permanent_url);
            t->res.permanent_url = abs;
        }
    }
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        size_t wl = strlen(wanted[i].name);
        if (n > wl && !strncasecmp(buf, wanted[i].name, wl)) {
            keep_header((char **)((char *)&t->res + wanted[i].off), buf + wl, n - wl);
        }
    }
    return n;
}

na_err_t na_fetcher_add(na_fetcher_t *f, const struct na_fetch_req *req) {
    struct transfer *t = calloc(1, sizeof(*t));
    char line[2048];
    struct curl_slist *h;

    if (!t) {
        return NA_ERR_NOMEM;
    }
    na_buf_init(&t->body);
    t->res.opaque = req->opaque;
    t->perm_chain = true;
    t->max_bytes = f->opts.max_bytes;
    t->curl = curl_easy_init();
    if (!t->curl) {
        transfer_free(f, t);
        return NA_ERR_NOMEM;
    }
    for (size_t i = 0; i < req->headers_cnt; i++) {
        if (!(h = curl_slist_append(t->headers, req->headers[i]))) {
            goto nomem;
        }
        t->headers = h;
    }
    if (f->instance_line) {
        if (!(h = curl_slist_append(t->headers, f->instance_line))) {
            goto nomem;
        }
        t->headers = h;
    }
    if (!(h = curl_slist_append(t->headers,
                                "Accept: application/rss+xml, "
                                "application/atom+xml, application/feed+json, "
                                "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"))) {
        goto nomem;
    }
    t->headers = h;
    if (req->etag) {
        snprintf(line, sizeof(line), "If-None-Match: %s", req->etag);
        if (!(h = curl_slist_append(t->headers, line))) {
            goto nomem;
        }
        t->headers = h;
    }
    if (req->last_modified) {
        snprintf(line, sizeof(line), "If-Modified-Since: %s", req->last_modified);
        if (!(h = curl_slist_append(t->headers, line))) {
            goto nomem;
        }
        t->headers = h;
    }
    CURL *c = t->curl;
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, f->opts.max_redirects);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, f->opts.connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, f->opts.timeout_ms);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, ""); /* all that libcurl decodes */
    curl_easy_setopt(c, CURLOPT_USERAGENT, f->user_agent);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t->res.errstr);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PRIVATE, t);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)f->opts.max_bytes);
    if (curl_multi_add_handle(f->multi, c) != CURLM_OK) {
        goto nomem;
    }
    t->start_ms = na_mono_ms();
    t->next = f->list;
    f->list = t;
    f->active++;
    return NA_OK;
nomem:
    transfer_free(f, t);
    return NA_ERR_NOMEM;
}

static void unlink_transfer(na_fetcher_t *f, struct transfer *t) {
    for (struct transfer **pp = &f->list; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            return;
        }
    }
}

int na_fetcher_run(na_fetcher_t *f, int timeout_ms, na_fetch_done_cb *cb, void *ctx) {
    int running = 0;
    int msgs = 0;
    CURLMsg *msg;

    curl_multi_perform(f->multi, &running);
    if (running > 0 && timeout_ms > 0) {
        curl_multi_poll(f->multi, NULL, 0, timeout_ms, NULL);
        curl_multi_perform(f->multi, &running);
    }
    while ((msg = curl_multi_info_read(f->multi, &msgs))) {
        struct transfer *t = NULL;
        char *url = NULL;
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        t->res.code = msg->data.result;
        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->res.status);
        curl_easy_getinfo(t->curl, CURLINFO_REDIRECT_COUNT, &t->res.redirects);
        curl_easy_getinfo(t->curl, CURLINFO_EFFECTIVE_URL, &url);
        t->res.effective_url = na_strdup(url);
        if (!t->res.errstr[0] && t->res.code) {
            snprintf(t->res.errstr, sizeof(t->res.errstr), "%s",
                     curl_easy_strerror(t->res.code));
        }
        if (t->res.too_large || t->res.code == CURLE_FILESIZE_EXCEEDED) {
            t->res.too_large = true;
            snprintf(t->res.errstr, sizeof(t->res.errstr), "body larger than %zu bytes",
                     t->max_bytes);
        }
        if (!t->body.data) {
            na_buf_append(&t->body, "", 0);
        }
        t->res.body = t->body.data;
        t->res.body_len = t->body.len;
        t->res.elapsed_ms = na_mono_ms() - t->start_ms;
        unlink_transfer(f, t);
        f->active--;
        cb(&t->res, ctx);
        transfer_free(f, t);
    }
    return running;
}

size_t na_fetcher_cancel(na_fetcher_t *f, const void *opaque) {
    size_t n = 0;
    struct transfer **pp = &f->list;
    while (*pp) {
        struct transfer *t = *pp;
        if (t->res.opaque != opaque) {
            pp = &t->next;
            continue;
        }
        *pp = t->next;
        f->active--;
        transfer_free(f, t);
        n++;
    }
    return n;
}

const char *na_fetch_reason(const struct na_fetch_res *res) {
    if (res->too_large) {
        return "too_large";
    }
    switch (res->code) {
    case CURLE_OK:
        break;
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_TOO_MANY_REDIRECTS:
        return "redirects";
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return "dns";
    case CURLE_COULDNT_CONNECT:
        return "connect";
    default:
        return "transport";
    }
    if (res->status == 410) {
        return "http_410";
    }
    if (res->status == 429) {
        return "http_429";
    }
    if (res->status >= 500) {
        return "http_5xx";
    }
    if (res->status >= 400) {
        return "http_4xx";
    }
    if (res->status >= 300 || res->status < 200) {
        return "http_3xx";
    }
    return "ok";
}

size_t na_fetcher_active(const na_fetcher_t *f) {
    return f->active;
}
