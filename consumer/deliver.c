#include "deliver.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "newsalert/hash.h"
#include "newsalert/http.h"
#include "newsalert/limits.h"
#include "newsalert/log.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

struct job {
    const struct na_route *route;
    char alert_id[NA_SHA256_HEX_LEN + 1];
    char *body;
    size_t len;
    void *opaque;
    int attempts;
    int64_t not_before_ms;
    CURL *curl;                 /* while in flight */
    struct curl_slist *headers; /* while in flight */
    char *retry_after;
    size_t response_bytes;
    long status;
    char error[CURL_ERROR_SIZE];
    struct job *next;
};

struct na_deliver_s {
    struct na_deliver_opts opts;
    char *user_agent;
    CURLM *multi;
    CURL **idle;         /* easy handles kept for connection reuse */
    size_t idle_cnt;
    struct job *waiting; /* not in flight: new or backing off */
    struct job *active;  /* in flight */
    size_t active_cnt;
    size_t pending;
};

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
    while (d->waiting) {
        struct job *j = d->waiting;
        d->waiting = j->next;
        job_free(j);
    }
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

na_err_t na_deliver_submit_steal(na_deliver_t *d, const struct na_route *route,
                                 const char *alert_id, char *body, size_t len,
                                 void *opaque) {
    struct job *j = calloc(1, sizeof(*j));
    if (!j) {
        free(body);
        return NA_ERR_NOMEM;
    }
    j->route = route;
    snprintf(j->alert_id, sizeof(j->alert_id), "%s", alert_id);
    j->body = body;
    j->len = len;
    j->opaque = opaque;
    j->next = d->waiting;
    d->waiting = j;
    d->pending++;
    return NA_OK;
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
    (void)ptr;
    j->response_bytes += size * nmemb; /* drained, not kept */
    return size * nmemb;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata) {
    struct job *j = userdata;
    size_t n = size * nitems;
    if (n > 12 && !strncasecmp(buf, "retry-after:", 12)) {
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

static void start_due(na_deliver_t *d) {
    int64_t now = na_mono_ms();
    struct job **pp = &d->waiting;
    while (*pp && d->active_cnt < (size_t)d->opts.concurrency) {
        struct job *j = *pp;
        if (j->not_before_ms > now) {
            pp = &j->next;
            continue;
        }
        if (start(d, j)) {
            if (j->curl) {
                release_handle(d, j);
            }
            j->not_before_ms = now + 1000;
            pp = &j->next;
            continue;
        }
        *pp = j->next;
        j->next = d->active;
        d->active = j;
        d->active_cnt++;
    }
}

static int64_t next_wake_ms(const na_deliver_t *d) {
    int64_t next = INT64_MAX;
    for (const struct job *j = d->waiting; j; j = j->next) {
        if (j->not_before_ms < next) {
            next = j->not_before_ms;
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

void na_deliver_run(na_deliver_t *d, int timeout_ms, na_deliver_done_cb *cb, void *ctx) {
    int running = 0;
    int msgs = 0;
    CURLMsg *msg;

    start_due(d);
    curl_multi_perform(d->multi, &running);
    if (timeout_ms > 0 && d->pending) {
        int64_t wake = next_wake_ms(d) - na_mono_ms();
        int wait = timeout_ms;
        if (!running && wake < wait) {
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
        if (outcome == NA_OUTCOME_RETRY && j->attempts < d->opts.max_attempts) {
            int64_t delay = backoff_ms(d, j);
            int64_t ra = na_http_retry_after_ms(j->retry_after, na_now_ms() / 1000);
            if (ra > delay) {
                delay = ra;
            }
            j->not_before_ms = na_mono_ms() + delay;
            na_log(NA_LOG_WARN, "deliver", "retry",
                   "route=%s alert=%s attempt=%d status=%ld err=%s retry_in_ms=%lld",
                   na_log_q(j->route->name), j->alert_id, j->attempts, j->status,
                   na_log_q(j->error), (long long)delay);
            j->next = d->waiting;
            d->waiting = j;
            continue;
        }
        struct na_delivery_result res = {
            .route = j->route,
            .alert_id = j->alert_id,
            .body = j->body,
            .len = j->len,
            .outcome = outcome,
            .status = j->status,
            .attempts = j->attempts,
            .error = j->error,
        };
        d->pending--;
        cb(j->opaque, &res, ctx);
        job_free(j);
    }
    start_due(d);
}

size_t na_deliver_pending(const na_deliver_t *d) {
    return d->pending;
}
