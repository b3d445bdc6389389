#include "fetch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "newsalert/config.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"
#include "url.h"

struct transfer {
    CURL *curl;
    struct curl_slist *headers; /* this hop's request headers */
    struct na_buf body;
    struct na_fetch_res res;
    size_t max_bytes;
    int64_t start_ms;
    int64_t deadline_ms; /* start_ms + timeout: for the whole redirect chain */
    char *url;           /* this hop's URL */
    char *origin;        /* the origin the source's own headers may go to, or NULL */
    char **custom;       /* the source's header lines (copies) */
    size_t custom_cnt;
    char *etag; /* request validators (copies) */
    char *last_modified;
    char *accept;    /* "Accept: ..." line (copy) or NULL: feed types */
    char *hint;      /* refuse_hint (copy) or NULL */
    long timeout_ms; /* the chain's */
    na_fetch_done_cb *done;
    void *done_ctx;
    bool allow_private;
    bool check_addr;   /* this hop may not reach a private address */
    bool perm_chain;   /* every redirect so far was a 301/308 */
    char refused[128]; /* "127.0.0.1, a loopback address" once one was refused */
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
    free(t->res.content_type);
    free(t->res.effective_url);
    free(t->res.permanent_url);
    free(t->url);
    free(t->origin);
    for (size_t i = 0; i < t->custom_cnt; i++) {
        free(t->custom[i]);
    }
    free(t->custom);
    free(t->etag);
    free(t->last_modified);
    free(t->accept);
    free(t->hint);
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

/* ---------------------------------------------------------------------------
 * addresses a redirect may not reach */

static const char *ipv4_class(uint32_t a) {
    if (a >> 24 == 0) {
        return "unspecified";
    }
    if (a >> 24 == 127) {
        return "loopback";
    }
    if (a >> 24 == 10 || (a & 0xfff00000u) == 0xac100000u ||
        (a & 0xffff0000u) == 0xc0a80000u) {
        return "private";
    }
    if ((a & 0xffff0000u) == 0xa9fe0000u) {
        return "link-local";
    }
    if ((a & 0xffc00000u) == 0x64400000u) {
        return "shared (carrier-grade NAT)";
    }
    if ((a & 0xffffff00u) == 0xc0000000u || (a & 0xfffe0000u) == 0xc6120000u) {
        return "reserved";
    }
    if (a >> 28 == 0xe) {
        return "multicast";
    }
    if (a >> 28 == 0xf) {
        return "reserved";
    }
    return NULL;
}

static uint32_t be32(const uint8_t *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

const char *na_fetch_addr_class(const struct sockaddr *sa) {
    static const uint8_t zero[12] = {0};
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
        return ipv4_class(ntohl(sin->sin_addr.s_addr));
    }
    if (sa->sa_family != AF_INET6) {
        return "not an IP";
    }
    const uint8_t *b = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
    if (!memcmp(b, zero, 12)) {
        uint32_t low = be32(b + 12);
        return low == 0 ? "unspecified" : low == 1 ? "loopback" : ipv4_class(low);
    }
    if (!memcmp(b, mapped, 12) || !memcmp(b, nat64, 12)) {
        return ipv4_class(be32(b + 12)); /* IPv4 in IPv6 clothing */
    }
    if (b[0] == 0x20 && b[1] == 0x02) {
        return ipv4_class(be32(b + 2)); /* 6to4 */
    }
    if ((b[0] & 0xfe) == 0xfc) {
        return "private"; /* unique local */
    }
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) {
        return "link-local";
    }
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) {
        return "private"; /* site-local, deprecated */
    }
    if (b[0] == 0xff) {
        return "multicast";
    }
    return NULL;
}

/* Refuse @p sa for @p t when this hop is checked; note why. */
static bool refuse_addr(struct transfer *t, const struct sockaddr *sa) {
    char ip[INET6_ADDRSTRLEN] = "?";
    const char *cls;
    if (!t->check_addr || !(cls = na_fetch_addr_class(sa))) {
        return false;
    }
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, ip,
                  sizeof(ip));
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                  ip, sizeof(ip));
    }
    snprintf(t->refused, sizeof(t->refused), "%s, a%s %s address", ip,
             strchr("aeiou", cls[0]) ? "n" : "", cls);
    return true;
}

/* Every new connection: a checked hop never even connects to a refused
 * address (the address is the one resolved for this very connection, so a
 * name that resolves elsewhere a moment later changes nothing). */
static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose,
                                    struct curl_sockaddr *address) {
    struct transfer *t = clientp;
    (void)purpose;
    if (refuse_addr(t, &address->addr)) {
        return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype, address->protocol);
}

/* Every request, new connection or reused one, before it is sent. */
static int on_prereq(void *clientp, char *primary_ip, char *local_ip, int primary_port,
                     int local_port) {
    struct transfer *t = clientp;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    if (!t->check_addr) {
        return CURL_PREREQFUNC_OK;
    }
    memset(&sin, 0, sizeof(sin));
    memset(&sin6, 0, sizeof(sin6));
    if (primary_ip && inet_pton(AF_INET, primary_ip, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        return refuse_addr(t, (struct sockaddr *)&sin) ? CURL_PREREQFUNC_ABORT
                                                       : CURL_PREREQFUNC_OK;
    }
    if (primary_ip && inet_pton(AF_INET6, primary_ip, &sin6.sin6_addr) == 1) {
        sin6.sin6_family = AF_INET6;
        return refuse_addr(t, (struct sockaddr *)&sin6) ? CURL_PREREQFUNC_ABORT
                                                        : CURL_PREREQFUNC_OK;
    }
    snprintf(t->refused, sizeof(t->refused), "an address that is not an IP (%s)",
             primary_ip ? primary_ip : "none");
    return CURL_PREREQFUNC_ABORT;
}

/* ---------------------------------------------------------------------------
 * responses */

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

/* Keep a copy of one response header value, trimmed. */
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
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        size_t wl = strlen(wanted[i].name);
        if (n > wl && !strncasecmp(buf, wanted[i].name, wl)) {
            keep_header((char **)((char *)&t->res + wanted[i].off), buf + wl, n - wl);
        }
    }
    return n;
}

/* ---------------------------------------------------------------------------
 * hops: libcurl does not follow redirects (FOLLOWLOCATION is off); each hop
 * is a request of its own on the same handle, see fetch.h */

static na_err_t add_line(struct curl_slist **list, const char *line) {
    struct curl_slist *h = curl_slist_append(*list, line);
    if (!h) {
        return NA_ERR_NOMEM;
    }
    *list = h;
    return NA_OK;
}

/* The request headers of this hop: the source's own only on its origin. */
static na_err_t hop_headers(na_fetcher_t *f, struct transfer *t) {
    struct curl_slist *list = NULL;
    char line[2048];
    char *origin = na_url_origin(t->url);
    bool own = origin && t->origin && !strcmp(origin, t->origin);
    na_err_t err = NA_OK;

    free(origin);
    for (size_t i = 0; own && i < t->custom_cnt && !err; i++) {
        err = add_line(&list, t->custom[i]);
    }
    if (!err && f->instance_line) {
        err = add_line(&list, f->instance_line);
    }
    if (!err) {
        err = add_line(&list, t->accept
                                  ? t->accept
                                  : "Accept: application/rss+xml, application/atom+xml, "
                                    "application/feed+json, application/xml;q=0.9, "
                                    "text/xml;q=0.9, */*;q=0.8");
    }
    if (!err && t->etag) {
        snprintf(line, sizeof(line), "If-None-Match: %s", t->etag);
        err = add_line(&list, line);
    }
    if (!err && t->last_modified) {
        snprintf(line, sizeof(line), "If-Modified-Since: %s", t->last_modified);
        err = add_line(&list, line);
    }
    if (err) {
        curl_slist_free_all(list);
        return err;
    }
    curl_slist_free_all(t->headers);
    t->headers = list;
    curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, t->headers);
    return NA_OK;
}

/* Start the hop to t->url; the handle is not in the multi handle. */
static na_err_t hop_start(na_fetcher_t *f, struct transfer *t) {
    int64_t left_ms = t->deadline_ms - na_mono_ms();
    if (hop_headers(f, t)) {
        return NA_ERR_NOMEM;
    }
    t->res.errstr[0] = '\0';
    t->refused[0] = '\0';
    curl_easy_setopt(t->curl, CURLOPT_URL, t->url);
    curl_easy_setopt(t->curl, CURLOPT_TIMEOUT_MS, (long)(left_ms < 1 ? 1 : left_ms));
    return curl_multi_add_handle(f->multi, t->curl) == CURLM_OK ? NA_OK : NA_ERR_NOMEM;
}

static bool is_redirect(long status) {
    return status == 301 || status == 302 || status == 303 || status == 307 ||
           status == 308;
}

/* Follow the redirect of the hop just done to @p target (absolute, from
 * CURLINFO_REDIRECT_URL). @returns true when the next hop runs; false with
 * t->res.code and errstr set when the chain ends here. */
static bool next_hop(na_fetcher_t *f, struct transfer *t, long status,
                     const char *target) {
    bool perm = status == 301 || status == 308;
    char *origin = na_url_origin(target);
    char *next = NULL;

    if (t->res.redirects >= f->opts.max_redirects) {
        t->res.code = CURLE_TOO_MANY_REDIRECTS;
        snprintf(t->res.errstr, sizeof(t->res.errstr), "Maximum (%ld) redirects followed",
                 f->opts.max_redirects);
        free(origin);
        return false;
    }
    if (!origin) {
        char *shown = na_conf_redact_url_query(target);
        t->res.code = CURLE_UNSUPPORTED_PROTOCOL;
        t->res.redirect_refused = true;
        snprintf(t->res.errstr, sizeof(t->res.errstr),
                 "redirect to %s refused: only http and https are followed",
                 shown ? shown : "?");
        free(shown);
        return false;
    }
    free(origin);
    if (!(next = na_strdup(target))) {
        t->res.code = CURLE_OUT_OF_MEMORY;
        return false;
    }
    if (perm) {
        t->res.permanent_redirect = true;
        if (t->perm_chain) {
            /* only a leading run of 301/308 moves the feed: after a 302 the
             * address would be a temporary one */
            free(t->res.permanent_url);
            t->res.permanent_url = na_strdup(target);
        }
    } else {
        t->perm_chain = false;
    }
    t->res.redirects++;
    curl_multi_remove_handle(f->multi, t->curl);
    free(t->url);
    t->url = next;
    na_buf_cleanup(&t->body);
    na_buf_init(&t->body);
    free(t->res.etag);
    free(t->res.last_modified);
    free(t->res.retry_after);
    t->res.etag = t->res.last_modified = t->res.retry_after = NULL;
    t->check_addr = !t->allow_private;
    if (na_mono_ms() >= t->deadline_ms) {
        t->res.code = CURLE_OPERATION_TIMEDOUT;
        snprintf(t->res.errstr, sizeof(t->res.errstr),
                 "Operation timed out after %lld ms (%ld redirects)",
                 (long long)(na_mono_ms() - t->start_ms), t->res.redirects);
        return false;
    }
    if (hop_start(f, t)) {
        t->res.code = CURLE_OUT_OF_MEMORY;
        return false;
    }
    return true;
}

na_err_t na_fetcher_add(na_fetcher_t *f, const struct na_fetch_req *req) {
    struct transfer *t = calloc(1, sizeof(*t));
    if (!t) {
        return NA_ERR_NOMEM;
    }
    na_buf_init(&t->body);
    t->res.opaque = req->opaque;
    t->perm_chain = true;
    t->max_bytes = req->max_bytes ? req->max_bytes : f->opts.max_bytes;
    t->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : f->opts.timeout_ms;
    t->done = req->done;
    t->done_ctx = req->done_ctx;
    t->allow_private = req->allow_private;
    t->check_addr = req->check_first && !req->allow_private;
    t->curl = curl_easy_init();
    t->url = na_strdup(req->url);
    if (!t->curl || !t->url ||
        (req->headers_cnt &&
         !(t->custom = calloc(req->headers_cnt, sizeof(*t->custom))))) {
        goto nomem;
    }
    if (req->headers_origin) {
        t->origin = na_url_origin(req->headers_origin); /* NULL: sent nowhere */
    }
    for (size_t i = 0; i < req->headers_cnt; i++) {
        if (!(t->custom[i] = na_strdup(req->headers[i]))) {
            goto nomem;
        }
        t->custom_cnt++;
    }
    if ((req->etag && !(t->etag = na_strdup(req->etag))) ||
        (req->last_modified && !(t->last_modified = na_strdup(req->last_modified))) ||
        (req->refuse_hint && !(t->hint = na_strdup(req->refuse_hint)))) {
        goto nomem;
    }
    if (req->accept) {
        struct na_buf line;
        na_buf_init(&line);
        na_buf_printf(&line, "Accept: %s", req->accept);
        if (!(t->accept = na_buf_steal(&line))) {
            goto nomem;
        }
    }
    CURL *c = t->curl;
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* next_hop() follows */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, f->opts.connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, ""); /* all that libcurl decodes */
    curl_easy_setopt(c, CURLOPT_USERAGENT, f->user_agent);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, t);
    curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(c, CURLOPT_PREREQDATA, t);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t->res.errstr);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PRIVATE, t);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->max_bytes);
    t->start_ms = na_mono_ms();
    t->deadline_ms = t->start_ms + t->timeout_ms;
    if (hop_start(f, t)) {
        goto nomem;
    }
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

/* The chain of @p t ended with @p code and @p status: report and free it. */
static void finish(na_fetcher_t *f, struct transfer *t, CURLcode code, long status,
                   na_fetch_done_cb *cb, void *ctx) {
    if (!t->res.code) {
        t->res.code = code;
    }
    t->res.status = status;
    t->res.effective_url = na_strdup(t->url);
    if (t->res.code && t->refused[0]) {
        char *shown = na_conf_redact_url_query(t->url);
        t->res.redirect_refused = true;
        t->res.addr_refused = true;
        snprintf(t->res.errstr, sizeof(t->res.errstr), "%s leads to %s; %s",
                 shown ? shown : "?", t->refused,
                 t->hint ? t->hint
                         : "redirect targets must be public unless the source sets "
                           "allow_private_redirects");
        free(shown);
    }
    if (!t->res.code) {
        char *ct = NULL;
        if (curl_easy_getinfo(t->curl, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct) {
            t->res.content_type = na_strndup(ct, strlen(ct) > 256 ? 256 : strlen(ct));
        }
    }
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
    if (t->done) {
        t->done(&t->res, t->done_ctx);
    } else {
        cb(&t->res, ctx);
    }
    transfer_free(f, t);
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
        char *target = NULL;
        long status = 0;
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        /* msg is gone once the handle leaves the multi handle: copy first */
        CURLcode code = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
        if (code == CURLE_OK && is_redirect(status) &&
            curl_easy_getinfo(t->curl, CURLINFO_REDIRECT_URL, &target) == CURLE_OK &&
            target) {
            char *copy = na_strdup(target); /* libcurl's is gone with the next hop */
            bool more = copy ? next_hop(f, t, status, copy) : false;
            if (!copy) {
                t->res.code = CURLE_OUT_OF_MEMORY;
            }
            free(copy);
            if (more) {
                running++;
                continue;
            }
        }
        finish(f, t, code, status, cb, ctx);
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
    if (res->redirect_refused) {
        return "redirect_refused";
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
