#include "deliver.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "newsalert/fault.h"
#include "newsalert/hash.h"
#include "newsalert/http.h"
#include "newsalert/limits.h"
#include "newsalert/log.h"
#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

/* Most alerts folded into one digest message; the rest wait for the next. */
#define DIGEST_MAX_ITEMS 200
/* Response bytes kept (Discord's 429 JSON body). */
#define RESPONSE_KEEP_BYTES 4096

struct rstate;

/* An alert inside a digest job. */
struct member {
    void *opaque;
    char alert_id[NA_SHA256_HEX_LEN + 1];
    struct job *job; /* its own job, sent alone if the digest is refused */
};

struct job {
    const struct na_route *route;
    struct rstate *rs;
    char alert_id[NA_SHA256_HEX_LEN + 1];
    char *body;
    size_t len;
    void *opaque;
    struct na_digest_item *item; /* NULL: never folded into a digest */
    struct member *members;      /* digest job: the alerts it carries */
    size_t members_cnt;
    bool alone;   /* a digest carrying it was refused: never folded again */
    uint64_t seq; /* submission order (a digest: its first alert's) */
    int attempts;
    int64_t not_before_ms;
    CURL *curl;                 /* while in flight */
    struct curl_slist *headers; /* while in flight */
    char *retry_after;
    double rl_reset_after_s; /* X-RateLimit-Reset-After, -1 if absent */
    long rl_remaining;       /* X-RateLimit-Remaining, -1 if absent */
    char response[RESPONSE_KEEP_BYTES + 1];
    size_t response_bytes;
    long status;
    char error[CURL_ERROR_SIZE];
    struct job *next;
};

/* Per-route state: FIFO of jobs not in flight, token bucket, pauses. */
struct rstate {
    const struct na_route *route;
    struct job *head, *tail;
    size_t pending; /* alerts of this route not ended */
    double tokens;
    int64_t refill_ms;
    int64_t blocked_until_ms; /* 429, empty Discord bucket, or after a failure */
    size_t active;            /* transfers in flight */
    bool failing;             /* last outcome was a failure: one probe at a time */
    int64_t failing_since_ms; /* first failure of the current run of them */
    size_t unrecorded;        /* hold_until_recorded: alerts answered 2xx whose
                                 records the caller has not confirmed */
};

struct na_deliver_s {
    struct na_deliver_opts opts;
    char *user_agent;
    CURLM *multi;
    CURL **idle; /* easy handles kept for connection reuse */
    size_t idle_cnt;
    struct rstate **routes; /* each allocated once: jobs point at them */
    size_t routes_cnt;
    struct job *active; /* in flight */
    size_t active_cnt;
    size_t pending;
    uint64_t seq;         /* of the last job submitted */
    int64_t performed_us; /* na_mono_us() of the last curl_multi_perform() */
};

/* A zero-timeout run drives the transfers at most this often (µs) unless it
 * started one: curl_multi_perform() polls every transfer's socket, and a
 * consumer reading a backlog runs the deliverer once per record (seven
 * poll(2) calls per article, half the daemon's CPU, before this). */
#define NA_DELIVER_PERFORM_GAP_US 1000

na_deliver_t *na_deliver_new(const struct na_deliver_opts *opts) {
    na_deliver_t *d = calloc(1, sizeof(*d));
    if (!d) {
        return NULL;
    }
    d->opts = *opts;
    d->user_agent = na_strdup(opts->user_agent ? opts->user_agent : "newsalert");
    d->multi = curl_multi_init();
    d->idle = calloc((size_t)opts->concurrency + 1, sizeof(*d->idle));
    if (!d->multi || !d->user_agent || !d->idle) {
        na_deliver_destroy(d);
        return NULL;
    }
    curl_multi_setopt(d->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, opts->concurrency);
    return d;
}

static void job_free(struct job *j) {
    free(j->body);
    free(j->retry_after);
    curl_slist_free_all(j->headers);
    na_digest_item_free(j->item);
    for (size_t i = 0; i < j->members_cnt; i++) {
        if (j->members[i].job) {
            job_free(j->members[i].job);
        }
    }
    free(j->members);
    free(j);
}

void na_deliver_destroy(na_deliver_t *d) {
    if (!d) {
        return;
    }
    while (d->active) {
        struct job *j = d->active;
        d->active = j->next;
        curl_multi_remove_handle(d->multi, j->curl);
        curl_easy_cleanup(j->curl);
        job_free(j);
    }
    for (size_t r = 0; r < d->routes_cnt; r++) {
        while (d->routes[r]->head) {
            struct job *j = d->routes[r]->head;
            d->routes[r]->head = j->next;
            job_free(j);
        }
        free(d->routes[r]);
    }
    free(d->routes);
    for (size_t i = 0; i < d->idle_cnt; i++) {
        curl_easy_cleanup(d->idle[i]);
    }
    free(d->idle);
    if (d->multi) {
        curl_multi_cleanup(d->multi);
    }
    free(d->user_agent);
    free(d);
}

void na_deliver_forget_routes(na_deliver_t *d) {
    size_t kept = 0;
    for (size_t r = 0; r < d->routes_cnt; r++) {
        if (d->routes[r]->head || d->routes[r]->pending) {
            d->routes[kept++] = d->routes[r];
        } else {
            free(d->routes[r]);
        }
    }
    d->routes_cnt = kept;
}

static struct rstate *route_state(na_deliver_t *d, const struct na_route *route) {
    for (size_t i = 0; i < d->routes_cnt; i++) {
        if (d->routes[i]->route == route) {
            return d->routes[i];
        }
    }
    struct rstate **n = realloc(d->routes, (d->routes_cnt + 1) * sizeof(*n));
    if (!n) {
        return NULL;
    }
    d->routes = n;
    struct rstate *rs = calloc(1, sizeof(*rs));
    if (!rs) {
        return NULL;
    }
    n[d->routes_cnt++] = rs;
    rs->route = route;
    rs->tokens = route->burst > 0 ? route->burst : 1;
    rs->refill_ms = na_mono_ms();
    return rs;
}

static void push_tail(struct rstate *rs, struct job *j) {
    j->next = NULL;
    if (rs->tail) {
        rs->tail->next = j;
    } else {
        rs->head = j;
    }
    rs->tail = j;
}

static void push_head(struct rstate *rs, struct job *j) {
    j->next = rs->head;
    rs->head = j;
    if (!rs->tail) {
        rs->tail = j;
    }
}

/* Put a job that was taken from the queue (tried, or a refused digest's
 * alert) back in its submission order: several that failed together come
 * back in the order they were submitted, not reversed. */
static void push_back_in_order(struct rstate *rs, struct job *j) {
    struct job **pp = &rs->head;
    while (*pp && (*pp)->seq < j->seq) {
        pp = &(*pp)->next;
    }
    j->next = *pp;
    *pp = j;
    if (!j->next) {
        rs->tail = j;
    }
}

static struct job *pop_head(struct rstate *rs) {
    struct job *j = rs->head;
    rs->head = j->next;
    if (!rs->head) {
        rs->tail = NULL;
    }
    j->next = NULL;
    return j;
}

na_err_t na_deliver_submit(na_deliver_t *d, const struct na_route *route,
                           const char *alert_id, char *body, size_t len,
                           struct na_digest_item *item, void *opaque) {
    struct job *j = na_fault("deliver_job") ? NULL : calloc(1, sizeof(*j));
    struct rstate *rs = j ? route_state(d, route) : NULL;
    if (!j || !rs) {
        free(j);
        return NA_ERR_NOMEM;
    }
    j->route = route;
    j->rs = rs;
    snprintf(j->alert_id, sizeof(j->alert_id), "%s", alert_id);
    j->body = body;
    j->len = len;
    j->opaque = opaque;
    j->item = item;
    j->seq = ++d->seq;
    push_tail(rs, j);
    rs->pending++;
    d->pending++;
    return NA_OK;
}

na_err_t na_deliver_submit_steal(na_deliver_t *d, const struct na_route *route,
                                 const char *alert_id, char *body, size_t len,
                                 struct na_digest_item *item, void *opaque) {
    na_err_t err = na_deliver_submit(d, route, alert_id, body, len, item, opaque);
    if (err) {
        free(body);
        na_digest_item_free(item);
    }
    return err;
}

static bool job_has(const struct job *j, const char *alert_id) {
    if (!j->members) {
        return !strcmp(j->alert_id, alert_id);
    }
    for (size_t i = 0; i < j->members_cnt; i++) {
        if (!strcmp(j->members[i].alert_id, alert_id)) {
            return true;
        }
    }
    return false;
}

bool na_deliver_has(const na_deliver_t *d, const struct na_route *route,
                    const char *alert_id) {
    for (size_t i = 0; i < d->routes_cnt; i++) {
        if (d->routes[i]->route != route) {
            continue;
        }
        for (const struct job *j = d->routes[i]->head; j; j = j->next) {
            if (job_has(j, alert_id)) {
                return true;
            }
        }
    }
    for (const struct job *j = d->active; j; j = j->next) {
        if (j->route == route && job_has(j, alert_id)) {
            return true;
        }
    }
    return false;
}

/* Offer the alerts of the queued digest @p dj to @p cb. @returns how many
 * it took (their member jobs freed, their slots in @p dj NULL). */
static size_t take_members(na_deliver_t *d, struct rstate *rs, struct job *dj,
                           na_deliver_take_cb *cb, void *ctx) {
    size_t taken = 0;
    for (size_t i = 0; i < dj->members_cnt; i++) {
        struct job *mj = dj->members[i].job;
        if (!mj) {
            continue;
        }
        struct na_deliver_queued q = {mj->route, mj->alert_id, mj->opaque,  mj->body,
                                      mj->len,   mj->item,     dj->attempts};
        if (!cb(&q, ctx)) {
            continue;
        }
        mj->body = NULL; /* the callback's now */
        mj->item = NULL;
        job_free(mj);
        dj->members[i].job = NULL;
        rs->pending--;
        d->pending--;
        taken++;
    }
    return taken;
}

size_t na_deliver_take(na_deliver_t *d, const struct na_route *route,
                       na_deliver_take_cb *cb, void *ctx) {
    size_t taken = 0;
    for (size_t r = 0; r < d->routes_cnt; r++) {
        struct rstate *rs = d->routes[r];
        if (route && rs->route != route) {
            continue;
        }
        struct job **pp = &rs->head;
        rs->tail = NULL;
        while (*pp) {
            struct job *j = *pp;
            size_t n;
            if (j->members && (n = take_members(d, rs, j, cb, ctx))) {
                /* The digest lists alerts that went: the others take its
                 * place alone, in order, as alerts being retried (its
                 * attempts and backoff), and are not folded again. */
                struct job *after = j->next;
                *pp = after;
                for (size_t i = 0; i < j->members_cnt; i++) {
                    struct job *mj = j->members[i].job;
                    if (!mj) {
                        continue;
                    }
                    j->members[i].job = NULL;
                    mj->alone = true;
                    mj->attempts = j->attempts;
                    mj->not_before_ms = j->not_before_ms;
                    mj->next = after;
                    *pp = mj;
                    rs->tail = mj;
                    pp = &mj->next;
                }
                j->members_cnt = 0;
                job_free(j);
                taken += n;
                continue;
            }
            struct na_deliver_queued q = {j->route, j->alert_id, j->opaque,  j->body,
                                          j->len,   j->item,     j->attempts};
            if (j->members || !cb(&q, ctx)) {
                rs->tail = j;
                pp = &j->next;
                continue;
            }
            *pp = j->next;
            j->body = NULL; /* the callback's now */
            j->item = NULL;
            rs->pending--;
            d->pending--;
            job_free(j);
            taken++;
        }
    }
    return taken;
}

static size_t job_count(const struct job *j, bool (*pred)(void *opaque, void *ctx),
                        void *ctx) {
    size_t n = 0;
    if (!j->members) {
        n += !pred || pred(j->opaque, ctx);
    }
    for (size_t i = 0; i < j->members_cnt; i++) {
        n += !pred || pred(j->members[i].opaque, ctx);
    }
    return n;
}

size_t na_deliver_route_count(const na_deliver_t *d, const struct na_route *route,
                              bool in_flight, bool queued,
                              bool (*pred)(void *opaque, void *ctx), void *ctx) {
    size_t n = 0;
    for (const struct job *j = d->active; in_flight && j; j = j->next) {
        n += j->route == route ? job_count(j, pred, ctx) : 0;
    }
    for (size_t r = 0; queued && r < d->routes_cnt; r++) {
        for (const struct job *j = d->routes[r]->head; d->routes[r]->route == route && j;
             j = j->next) {
            n += job_count(j, pred, ctx);
        }
    }
    return n;
}

int64_t na_deliver_route_failing_since(const na_deliver_t *d,
                                       const struct na_route *route) {
    for (size_t i = 0; i < d->routes_cnt; i++) {
        if (d->routes[i]->route == route) {
            return d->routes[i]->failing_since_ms;
        }
    }
    return 0;
}

size_t na_deliver_route_pending(const na_deliver_t *d, const struct na_route *route) {
    for (size_t i = 0; i < d->routes_cnt; i++) {
        if (d->routes[i]->route == route) {
            return d->routes[i]->pending;
        }
    }
    return 0;
}

char *na_deliver_sign(const unsigned char *key, size_t key_len, const char *msg_id,
                      long long timestamp, const char *body, size_t len) {
    struct na_buf content;
    unsigned char mac[NA_SHA256_LEN];
    char *b64 = NULL;
    char *sig = NULL;

    na_buf_init(&content);
    na_buf_printf(&content, "%s.%lld.", msg_id, timestamp);
    na_buf_append(&content, body, len);
    if (!content.oom && !na_hmac_sha256(key, key_len, content.data, content.len, mac)) {
        b64 = na_base64_encode(mac, sizeof(mac));
    }
    if (b64) {
        size_t n = strlen(b64) + 4;
        sig = malloc(n);
        if (sig) {
            snprintf(sig, n, "v1,%s", b64);
        }
    }
    free(b64);
    na_buf_cleanup(&content);
    return sig;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
    struct job *j = userdata;
    size_t n = size * nmemb;
    /* The first RESPONSE_KEEP_BYTES are kept (a 429's JSON); the rest drained. */
    if (j->response_bytes < RESPONSE_KEEP_BYTES) {
        size_t keep = RESPONSE_KEEP_BYTES - j->response_bytes;
        keep = keep < n ? keep : n;
        memcpy(j->response + j->response_bytes, ptr, keep);
        j->response[j->response_bytes + keep] = '\0';
    }
    j->response_bytes += n;
    return n;
}

/* @returns the value of header line @p buf if it is @p name, trimmed, into
 * @p val. */
static bool header_value(const char *buf, size_t n, const char *name, char *val,
                         size_t val_size) {
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(buf, name, nl) || buf[nl] != ':') {
        return false;
    }
    const char *v = buf + nl + 1;
    size_t len = n - nl - 1;
    while (len && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' ')) {
        len--;
    }
    snprintf(val, val_size, "%.*s", (int)(len < val_size ? len : val_size - 1), v);
    return true;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata) {
    struct job *j = userdata;
    size_t n = size * nitems;
    char val[64];
    if (header_value(buf, n, "x-ratelimit-remaining", val, sizeof(val))) {
        char *end;
        long x = strtol(val, &end, 10);
        j->rl_remaining = end != val && x >= 0 ? x : -1;
    } else if (header_value(buf, n, "x-ratelimit-reset-after", val, sizeof(val))) {
        char *end;
        double x = strtod(val, &end);
        j->rl_reset_after_s = end != val && x >= 0 && x < 86400 ? x : -1;
    } else if (n > 12 && !strncasecmp(buf, "retry-after:", 12)) {
        size_t len = n - 12;
        const char *v = buf + 12;
        while (len && (*v == ' ' || *v == '\t')) {
            v++;
            len--;
        }
        while (len && (v[len - 1] == '\r' || v[len - 1] == '\n')) {
            len--;
        }
        free(j->retry_after);
        j->retry_after = na_strndup(v, len > 128 ? 128 : len);
    }
    return n;
}

/* Append "Name: value" (value NULL: @p name is the whole line). */
static int append_header(struct curl_slist **list, const char *name, const char *value) {
    char line[512];
    if (value) {
        snprintf(line, sizeof(line), "%s: %s", name, value);
    } else {
        snprintf(line, sizeof(line), "%s", name);
    }
    struct curl_slist *n = curl_slist_append(*list, line);
    if (!n) {
        return -1;
    }
    *list = n;
    return 0;
}

static na_err_t start(na_deliver_t *d, struct job *j) {
    CURL *c = d->idle_cnt ? d->idle[--d->idle_cnt] : curl_easy_init();
    char ts[32];
    long long now_s = (long long)(na_now_ms() / 1000);
    if (!c) {
        return NA_ERR_NOMEM;
    }
    curl_easy_reset(c);
    j->curl = c;
    j->error[0] = '\0';
    j->status = 0;
    j->response_bytes = 0;
    j->response[0] = '\0';
    j->rl_remaining = -1;
    j->rl_reset_after_s = -1;
    free(j->retry_after);
    j->retry_after = NULL;
    curl_slist_free_all(j->headers);
    j->headers = NULL;
    snprintf(ts, sizeof(ts), "%lld", now_s);
    if (append_header(&j->headers, "Content-Type", "application/json") ||
        append_header(&j->headers, "webhook-id", j->alert_id) ||
        append_header(&j->headers, "Idempotency-Key", j->alert_id) ||
        append_header(&j->headers, "Expect:", NULL)) {
        return NA_ERR_NOMEM;
    }
    if (j->route->key) {
        char *sig = na_deliver_sign(j->route->key, j->route->key_len, j->alert_id, now_s,
                                    j->body, j->len);
        if (!sig || append_header(&j->headers, "webhook-timestamp", ts) ||
            append_header(&j->headers, "webhook-signature", sig)) {
            free(sig);
            return NA_ERR_NOMEM;
        }
        free(sig);
    }
    curl_easy_setopt(c, CURLOPT_URL, j->route->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* 3xx is a failure */
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, j->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt(c, CURLOPT_USERAGENT, d->user_agent);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, d->opts.timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, d->opts.connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, j);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, j->error);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PRIVATE, j);
    /* keepalive false (a benchmark's baseline): one connection per request. */
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, j->route->keepalive ? 0L : 1L);
    if (curl_multi_add_handle(d->multi, c) != CURLM_OK) {
        return NA_ERR_NOMEM;
    }
    j->attempts++;
    return NA_OK;
}

static void release_handle(na_deliver_t *d, struct job *j) {
    curl_multi_remove_handle(d->multi, j->curl);
    if (d->idle_cnt < (size_t)d->opts.concurrency) {
        d->idle[d->idle_cnt++] = j->curl; /* keeps its connection cache warm */
    } else {
        curl_easy_cleanup(j->curl);
    }
    j->curl = NULL;
}

static int64_t backoff_ms(const na_deliver_t *d, const struct job *j) {
    int64_t delay = d->opts.backoff_ms;
    for (int i = 1; i < j->attempts && delay < d->opts.backoff_max_ms; i++) {
        delay *= 2;
    }
    if (delay > d->opts.backoff_max_ms) {
        delay = d->opts.backoff_max_ms;
    }
    /* Full jitter in [delay/2, delay]: spreads a burst of retries out. */
    if (delay > 1) {
        delay = delay / 2 + (int64_t)(random() % (delay / 2 + 1));
    }
    return delay;
}

static void route_metric(const struct na_route *r, const char *name, const char *help) {
    char esc[256], labels[300];
    snprintf(labels, sizeof(labels), "route=\"%s\"",
             na_metrics_label_escape(r->name, esc, sizeof(esc)));
    na_metrics_inc(name, help, labels);
}

static void refill(struct rstate *rs, int64_t now) {
    const struct na_route *r = rs->route;
    double burst = r->burst > 0 ? r->burst : 1;
    double rate = r->rate_per_s > 0 ? r->rate_per_s : 1;
    rs->tokens += (double)(now - rs->refill_ms) * rate / 1000.0;
    if (rs->tokens > burst) {
        rs->tokens = burst;
    }
    rs->refill_ms = now;
}

/* When more than the route's digest_threshold fresh alerts wait, fold them
 * (up to DIGEST_MAX_ITEMS, in queue order) into one digest job at the head
 * of the queue. Alerts already tried, or without a digest item, stay
 * single. */
static void fold_digest(struct rstate *rs) {
    const struct na_route *r = rs->route;
    size_t fresh = 0;
    struct job *dj = NULL;
    const struct na_digest_item **items = NULL;
    struct na_buf body;

    /* A head that is being retried goes alone first: a route that is down
     * is probed with one alert, and the backlog is folded once it answers. */
    if (r->digest_threshold <= 0 || !r->format->render_digest || !rs->head ||
        rs->head->attempts) {
        return;
    }
    for (struct job *j = rs->head; j; j = j->next) {
        fresh += !j->attempts && j->item && !j->members && !j->alone;
    }
    /* A flood is more fresh alerts than the threshold AND than the bucket
     * can pay for now; a queue that waits only for a free transfer slot is
     * not one. */
    if (fresh <= (size_t)r->digest_threshold || (double)fresh <= rs->tokens) {
        return;
    }
    if (fresh > DIGEST_MAX_ITEMS) {
        fresh = DIGEST_MAX_ITEMS;
    }
    na_buf_init(&body);
    dj = calloc(1, sizeof(*dj));
    items = calloc(fresh, sizeof(*items));
    if (!dj || !items || !(dj->members = calloc(fresh, sizeof(*dj->members)))) {
        goto fail;
    }
    size_t n = 0;
    for (struct job *j = rs->head; j && n < fresh; j = j->next) {
        if (!j->attempts && j->item && !j->members && !j->alone) {
            items[n++] = j->item;
        }
    }
    if (r->format->render_digest(items, n, &body) || body.oom) {
        goto fail;
    }
    /* The digest's id (its webhook-id) is a hash of its alerts' ids. */
    const char *parts[DIGEST_MAX_ITEMS + 2];
    parts[0] = "digest/v1";
    for (size_t i = 0; i < n; i++) {
        parts[i + 1] = items[i]->alert_id;
    }
    parts[n + 1] = NULL;
    if (na_sha256_hex_parts(parts, dj->alert_id)) {
        goto fail; /* no memory: the alerts stay single */
    }
    /* Move the members out of the queue. */
    struct job **pp = &rs->head;
    size_t m = 0;
    rs->tail = NULL;
    while (*pp) {
        struct job *j = *pp;
        if (m < n && !j->attempts && j->item && !j->members && !j->alone) {
            dj->members[m].opaque = j->opaque;
            memcpy(dj->members[m].alert_id, j->alert_id, sizeof(j->alert_id));
            dj->members[m].job = j;
            m++;
            *pp = j->next;
            j->next = NULL;
            continue;
        }
        rs->tail = j;
        pp = &j->next;
    }
    dj->members_cnt = m;
    dj->seq = m ? dj->members[0].job->seq : 0;
    dj->route = r;
    dj->rs = rs;
    dj->len = body.len;
    dj->body = na_buf_steal(&body);
    push_head(rs, dj);
    route_metric(r, "newsalert_consumer_digests_total",
                 "Digest messages made from a flood of alerts.");
    na_log(NA_LOG_INFO, "deliver", "digest", "route=%s alerts=%zu digest=%s",
           na_log_q(r->name), m, dj->alert_id);
    free(items);
    return;
fail:
    na_log(NA_LOG_WARN, "deliver", "digest_failed", "route=%s", na_log_q(r->name));
    free(items);
    if (dj) {
        free(dj->members);
        free(dj);
    }
    na_buf_cleanup(&body);
}

/* Requests @p rs may have in flight now: an answered request whose alerts
 * are not recorded yet keeps one slot (hold_until_recorded). */
static bool route_has_slot(const na_deliver_t *d, const struct rstate *rs) {
    long max = rs->route->max_in_flight;
    return max <= 0 ||
           rs->active + (d->opts.hold_until_recorded && rs->unrecorded > 0) < (size_t)max;
}

void na_deliver_recorded(na_deliver_t *d, const struct na_route *route, size_t n) {
    for (size_t i = 0; i < d->routes_cnt; i++) {
        if (d->routes[i]->route == route) {
            struct rstate *rs = d->routes[i];
            rs->unrecorded -= n < rs->unrecorded ? n : rs->unrecorded;
            return;
        }
    }
}

static void start_due(na_deliver_t *d) {
    int64_t now = na_mono_ms();
    for (size_t r = 0; r < d->routes_cnt; r++) {
        struct rstate *rs = d->routes[r];
        refill(rs, now);
        /* After a failure the route is half-open: one probe at a time until
         * a request succeeds. */
        while (rs->head && d->active_cnt < (size_t)d->opts.concurrency &&
               rs->blocked_until_ms <= now && rs->tokens >= 1.0 &&
               !(rs->failing && rs->active) && route_has_slot(d, rs)) {
            if (rs->head->not_before_ms > now) {
                break; /* FIFO per route: the head's backoff holds the rest */
            }
            fold_digest(rs);
            struct job *j = pop_head(rs);
            if (start(d, j)) {
                if (j->curl) {
                    release_handle(d, j);
                }
                j->not_before_ms = now + 1000;
                push_head(rs, j);
                break;
            }
            rs->tokens -= 1.0;
            rs->active++;
            j->next = d->active;
            d->active = j;
            d->active_cnt++;
        }
    }
}

/* Earliest moment a waiting job may start (its backoff, its route's pause
 * and its route's next token). */
static int64_t next_wake_ms(const na_deliver_t *d) {
    int64_t next = INT64_MAX;
    if (d->active_cnt >= (size_t)d->opts.concurrency) {
        /* Nothing starts before a transfer ends: wait on the sockets (a
         * due head here made the consumer's loop spin). */
        return next;
    }
    for (size_t r = 0; r < d->routes_cnt; r++) {
        const struct rstate *rs = d->routes[r];
        if (!rs->head || (rs->failing && rs->active)) {
            continue; /* nothing waits, or a probe is out: its end wakes us */
        }
        if (!route_has_slot(d, rs)) {
            if (rs->active) {
                continue; /* a transfer's end wakes us */
            }
            /* Waiting for the caller's record: look again shortly. */
            int64_t soon = na_mono_ms() + 1;
            next = soon < next ? soon : next;
            continue;
        }
        int64_t t = rs->head->not_before_ms;
        if (rs->blocked_until_ms > t) {
            t = rs->blocked_until_ms;
        }
        if (rs->tokens < 1.0) {
            double rate = rs->route->rate_per_s > 0 ? rs->route->rate_per_s : 1;
            int64_t tok =
                rs->refill_ms + (int64_t)((1.0 - rs->tokens) * 1000.0 / rate) + 1;
            if (tok > t) {
                t = tok;
            }
        }
        if (t < next) {
            next = t;
        }
    }
    return next;
}

static void unlink_active(na_deliver_t *d, struct job *j) {
    for (struct job **pp = &d->active; *pp; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            d->active_cnt--;
            return;
        }
    }
}

/* Discord's 429 body: {"retry_after": seconds (float), "global": bool}. */
static int64_t retry_after_body_ms(const char *body) {
    json_error_t jerr;
    json_t *root = body && *body == '{' ? json_loads(body, 0, &jerr) : NULL;
    json_t *v = json_object_get(root, "retry_after");
    int64_t ms = -1;
    if (json_is_number(v) && json_number_value(v) >= 0 && json_number_value(v) < 86400) {
        ms = (int64_t)(json_number_value(v) * 1000.0) + 1;
    }
    json_decref(root);
    return ms;
}

/*
 * The service refused a digest (a 4xx other than 429: too large, a format
 * it does not take): its alerts go back to the head of the route's queue,
 * in order, each to be sent alone and to succeed or fail on its own; none
 * is dead-lettered for the digest's sake.
 */
static void unfold_digest(struct rstate *rs, struct job *dj) {
    for (size_t i = dj->members_cnt; i-- > 0;) {
        struct job *mj = dj->members[i].job;
        dj->members[i].job = NULL;
        mj->alone = true;
        push_back_in_order(rs, mj);
    }
    route_metric(dj->route, "newsalert_consumer_digests_refused_total",
                 "Digests a route refused (4xx): their alerts were sent one by one.");
    na_log(NA_LOG_WARN, "deliver", "digest_refused",
           "route=%s digest=%s status=%ld alerts=%zu err=%s", na_log_q(dj->route->name),
           dj->alert_id, dj->status, dj->members_cnt, na_log_q(dj->error));
    dj->members_cnt = 0;
    job_free(dj);
}

/* @p j failed and is tried again: when it may start (its backoff, or
 * longer if the service said so). The whole route waits: a down or
 * throttling service gets one probe per backoff period, not one per queued
 * alert. @returns the delay (ms). */
static int64_t hold_route(const na_deliver_t *d, struct rstate *rs, struct job *j,
                          int64_t now) {
    int64_t delay = backoff_ms(d, j);
    int64_t ra = na_http_retry_after_ms(j->retry_after, na_now_ms() / 1000);
    int64_t body_ra = j->status == 429 ? retry_after_body_ms(j->response) : -1;
    if (ra > delay) {
        delay = ra;
    }
    if (body_ra > delay) {
        delay = body_ra;
    }
    j->not_before_ms = now + delay;
    if (j->not_before_ms > rs->blocked_until_ms) {
        rs->blocked_until_ms = j->not_before_ms;
    }
    return delay;
}

static void log_retry(const struct job *j, int64_t delay) {
    na_log(NA_LOG_WARN, "deliver", "retry",
           "route=%s alert=%s attempt=%d status=%ld err=%s retry_in_ms=%lld",
           na_log_q(j->route->name), j->alert_id, j->attempts, j->status,
           na_log_q(j->error), (long long)delay);
}

/* The done callback kept @p kj (an alert whose attempts ran out, see
 * na_delivery_result.keep): back to its place in the queue, tried again
 * after @p failed's backoff (hold_route()) like any retry; it ends in a
 * later callback. @p failed is the job that failed: @p kj itself, or the
 * digest that carried it. */
static void keep_job(na_deliver_t *d, const struct job *failed, struct job *kj,
                     int64_t delay) {
    /* A digest's alert goes on alone, as one being retried (not folded
     * again while the route fails). */
    kj->attempts = failed->attempts;
    kj->not_before_ms = failed->not_before_ms;
    kj->rs->pending++;
    d->pending++;
    log_retry(kj, delay);
    push_back_in_order(kj->rs, kj);
}

/* A job ended: every alert it carries ends, in queue order (but one the
 * callback keeps, after a RETRY failure). */
static void finish(na_deliver_t *d, struct job *j, na_outcome_t outcome,
                   na_deliver_done_cb *cb, void *ctx) {
    bool keep = false;
    int64_t delay = -1; /* of the alerts kept: hold_route() once */
    struct na_delivery_result res = {
        .route = j->route,
        .alert_id = j->alert_id,
        .body = j->body,
        .len = j->len,
        .outcome = outcome,
        .status = j->status,
        .attempts = j->attempts,
        .error = j->error,
        .digest_cnt = j->members_cnt,
    };
    if (outcome == NA_OUTCOME_OK && d->opts.hold_until_recorded) {
        j->rs->unrecorded += j->members ? j->members_cnt : 1;
    }
    if (!j->members) {
        res.body_take = &j->body;
        res.keep = outcome == NA_OUTCOME_RETRY ? &keep : NULL;
        d->pending--;
        j->rs->pending--;
        cb(j->opaque, &res, ctx);
        if (keep) {
            keep_job(d, j, j, hold_route(d, j->rs, j, na_mono_ms()));
            return;
        }
    }
    for (size_t i = 0; i < j->members_cnt; i++) {
        struct job *mj = j->members[i].job;
        res.alert_id = j->members[i].alert_id;
        /* Each alert of a digest carries its own rendering (what a
         * dead-letter copy should hold), not the digest's. */
        res.body = mj ? mj->body : j->body;
        res.len = mj ? mj->len : j->len;
        res.body_take = mj ? &mj->body : NULL;
        keep = false;
        res.keep = outcome == NA_OUTCOME_RETRY && mj ? &keep : NULL;
        d->pending--;
        j->rs->pending--;
        cb(j->members[i].opaque, &res, ctx);
        if (keep) {
            if (delay < 0) {
                delay = hold_route(d, j->rs, j, na_mono_ms());
            }
            j->members[i].job = NULL; /* not freed with the digest */
            keep_job(d, j, mj, delay);
        }
    }
    job_free(j);
}

void na_deliver_run(na_deliver_t *d, int timeout_ms, na_deliver_done_cb *cb, void *ctx) {
    int running = 0;
    int msgs = 0;
    CURLMsg *msg;

    size_t active = d->active_cnt;
    start_due(d);
    int64_t now_us = na_mono_us();
    if (timeout_ms > 0 || d->active_cnt != active ||
        now_us - d->performed_us >= NA_DELIVER_PERFORM_GAP_US) {
        curl_multi_perform(d->multi, &running);
        d->performed_us = now_us;
    }
    if (timeout_ms > 0 && d->pending) {
        int64_t wake = next_wake_ms(d) - na_mono_ms();
        int wait = timeout_ms;
        if (wake < wait) {
            wait = wake < 0 ? 0 : (int)wake;
        }
        if (running) {
            curl_multi_poll(d->multi, NULL, 0, wait, NULL);
        } else if (wait > 0) {
            na_sleep_ms(wait);
        }
        curl_multi_perform(d->multi, &running);
    }
    while ((msg = curl_multi_info_read(d->multi, &msgs))) {
        struct job *j = NULL;
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
        CURLcode code = msg->data.result;
        curl_easy_getinfo(j->curl, CURLINFO_RESPONSE_CODE, &j->status);
        release_handle(d, j);
        unlink_active(d, j);
        if (code && !j->error[0]) {
            snprintf(j->error, sizeof(j->error), "%s", curl_easy_strerror(code));
        } else if (!code && (j->status < 200 || j->status >= 300)) {
            snprintf(j->error, sizeof(j->error), "HTTP %ld", j->status);
        }
        na_outcome_t outcome = na_http_classify(code, j->status);
        struct rstate *rs = j->rs;
        rs->active--;
        rs->failing = outcome == NA_OUTCOME_RETRY;
        int64_t now = na_mono_ms();
        if (outcome != NA_OUTCOME_RETRY) {
            rs->failing_since_ms = 0; /* it answered (2xx, or a 4xx for this alert) */
        } else if (!rs->failing_since_ms) {
            rs->failing_since_ms = now;
        }
        /* Discord: an empty bucket pauses the route until it refills. */
        if (j->rl_remaining == 0 && j->rl_reset_after_s >= 0) {
            int64_t until = now + (int64_t)(j->rl_reset_after_s * 1000.0) + 1;
            if (until > rs->blocked_until_ms) {
                rs->blocked_until_ms = until;
            }
        }
        if (outcome == NA_OUTCOME_RETRY && j->attempts < d->opts.max_attempts) {
            int64_t delay = hold_route(d, rs, j, now);
            if (j->status == 429) {
                route_metric(j->route, "newsalert_consumer_route_throttled_total",
                             "Requests a route answered 429 (rate limited).");
            }
            log_retry(j, delay);
            push_back_in_order(rs, j);
            continue;
        }
        if (outcome == NA_OUTCOME_DROP && j->members && !code) {
            unfold_digest(rs, j);
            continue;
        }
        finish(d, j, outcome, cb, ctx);
    }
    start_due(d);
}

size_t na_deliver_pending(const na_deliver_t *d) {
    return d->pending;
}
