/* Delivery against a scripted HTTP server on 127.0.0.1 (a thread of this
 * test): retries on 5xx and 429 with Retry-After, drop on 4xx, give-up after
 * max_attempts, signing headers, keep-alive reuse. */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "deliver.h"
#include "format.h"
#include "newsalert/http.h"
#include "newsalert/timeutil.h"
#include "route.h"

#define MAX_REQ 32

struct server {
    int fd;
    int port;
    const char *script[MAX_REQ]; /* full responses, in order; then 200 */
    int requests;
    int connections;
    char headers[MAX_REQ][2048];
    char bodies[MAX_REQ][1024];
    int64_t at_ms[MAX_REQ];
    pthread_t thread;
    volatile int stop;
};

static ssize_t read_request(int c, char *head, size_t head_size, char *body,
                            size_t body_size) {
    size_t n = 0;
    while (n < head_size - 1) {
        ssize_t r = read(c, head + n, 1);
        if (r <= 0) {
            return -1;
        }
        n++;
        head[n] = '\0';
        if (n >= 4 && !memcmp(head + n - 4, "\r\n\r\n", 4)) {
            break;
        }
    }
    const char *cl = strcasestr(head, "content-length:");
    size_t len = cl ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
    size_t got = 0;
    while (got < len) {
        char tmp[512];
        size_t want = len - got < sizeof(tmp) ? len - got : sizeof(tmp);
        ssize_t r = read(c, tmp, want);
        if (r <= 0) {
            return -1;
        }
        if (got + (size_t)r < body_size) {
            memcpy(body + got, tmp, (size_t)r);
            body[got + (size_t)r] = '\0';
        }
        got += (size_t)r;
    }
    return (ssize_t)len;
}

static void *serve(void *arg) {
    struct server *s = arg;
    while (!s->stop) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) {
            break;
        }
        s->connections++;
        for (;;) {
            int i = s->requests;
            if (i >= MAX_REQ) {
                break;
            }
            if (read_request(c, s->headers[i], sizeof(s->headers[i]), s->bodies[i],
                             sizeof(s->bodies[i])) < 0) {
                break;
            }
            s->at_ms[i] = na_mono_ms();
            const char *resp = s->script[i]
                                   ? s->script[i]
                                   : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            s->requests++;
            if (write(c, resp, strlen(resp)) < 0) {
                break;
            }
        }
        close(c);
    }
    return NULL;
}

static void server_start(struct server *s) {
    struct sockaddr_in addr;
    socklen_t alen = sizeof(addr);
    int one = 1;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(s->fd, 8), 0);
    getsockname(s->fd, (struct sockaddr *)&addr, &alen);
    s->port = ntohs(addr.sin_port);
    pthread_create(&s->thread, NULL, serve, s);
}

static void server_stop(struct server *s) {
    s->stop = 1;
    shutdown(s->fd, SHUT_RDWR);
    close(s->fd);
    pthread_join(s->thread, NULL);
}

struct outcome {
    int calls;
    na_outcome_t outcome;
    long status;
    int attempts;
};

static void on_done(void *opaque, const struct na_delivery_result *res, void *ctx) {
    struct outcome *o = ctx;
    (void)opaque;
    o->calls++;
    o->outcome = res->outcome;
    o->status = res->status;
    o->attempts = res->attempts;
}

/* Deliver one alert to @p s with @p opts; run until it ended (30 s at most). */
static struct outcome deliver_with(struct server *s, const char *secret,
                                   const struct na_deliver_opts *opts) {
    struct na_routes routes = {NULL, 0};
    char url[64], errstr[256];
    struct outcome o = {0, NA_OUTCOME_FATAL, 0, 0};
    json_t *arr;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", s->port);
    arr = secret ? json_pack("[{s:s, s:s}]", "url", url, "secret", secret)
                 : json_pack("[{s:s}]", "url", url);
    assert_int_equal(na_routes_parse(arr, &routes, errstr, sizeof(errstr)), NA_OK);
    json_decref(arr);
    na_deliver_t *d = na_deliver_new(opts);
    const char *alert_id =
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_int_equal(na_deliver_submit_steal(d, &routes.v[0], alert_id,
                                             strdup("{\"a\":1}"), 7, NULL, NULL),
                     NA_OK);
    int64_t deadline = na_mono_ms() + 30000;
    while (na_deliver_pending(d) && na_mono_ms() < deadline) {
        na_deliver_run(d, 50, on_done, &o);
    }
    na_deliver_destroy(d);
    na_routes_cleanup(&routes);
    return o;
}

static struct outcome deliver_one(struct server *s, const char *secret,
                                  int max_attempts) {
    struct na_deliver_opts opts = {1, 5000, 5000, max_attempts, 50, 200, "test", false};
    return deliver_with(s, secret, &opts);
}

static void test_retries_5xx_then_succeeds_on_one_connection(void **state) {
    (void)state;
    struct server s;
    memset(&s, 0, sizeof(s));
    s.script[0] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
    s.script[1] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
    server_start(&s);
    struct outcome o = deliver_one(&s, NULL, 5);
    server_stop(&s);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.outcome, NA_OUTCOME_OK);
    assert_int_equal(o.status, 200);
    assert_int_equal(o.attempts, 3);
    assert_int_equal(s.requests, 3);
    assert_int_equal(s.connections, 1); /* keep-alive across retries */
    assert_string_equal(s.bodies[2], "{\"a\":1}");
    assert_non_null(strcasestr(s.headers[0], "webhook-id: 0123456789abcdef"));
    assert_null(strcasestr(s.headers[0], "webhook-signature"));
}

static void test_429_retry_after_is_honoured(void **state) {
    (void)state;
    struct server s;
    memset(&s, 0, sizeof(s));
    s.script[0] = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n"
                  "Content-Length: 0\r\n\r\n";
    server_start(&s);
    struct outcome o = deliver_one(&s, NULL, 5);
    server_stop(&s);
    assert_int_equal(o.outcome, NA_OUTCOME_OK);
    assert_int_equal(s.requests, 2);
    /* Backoff alone would be <= 50 ms; Retry-After says 1 s. */
    assert_true(s.at_ms[1] - s.at_ms[0] >= 950);
}

static void test_4xx_is_dropped_without_retry(void **state) {
    (void)state;
    struct server s;
    memset(&s, 0, sizeof(s));
    s.script[0] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    server_start(&s);
    struct outcome o = deliver_one(&s, NULL, 5);
    server_stop(&s);
    assert_int_equal(o.outcome, NA_OUTCOME_DROP);
    assert_int_equal(o.status, 400);
    assert_int_equal(s.requests, 1);
}

static void test_gives_up_after_max_attempts(void **state) {
    (void)state;
    struct server s;
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < MAX_REQ; i++) {
        s.script[i] = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";
    }
    server_start(&s);
    struct outcome o = deliver_one(&s, NULL, 3);
    server_stop(&s);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.outcome, NA_OUTCOME_RETRY);
    assert_int_equal(o.attempts, 3);
    assert_int_equal(s.requests, 3);
}

/* Retry backoff (docs/delivery.md, "Retry"): the delay before attempt k+1
 * is deliver_backoff doubled k-1 times, capped at deliver_backoff_max, with
 * jitter in [delay/2, delay]. Measured as the gaps between attempts at the
 * server: no gap below its lower bound (the client waits at least that long
 * after it read the answer), none above its upper bound plus slack for a
 * loaded machine, and the capped gaps do not all fall on one value. */
static void test_backoff_doubles_with_jitter_up_to_its_cap(void **state) {
    (void)state;
    enum { FAILS = 9 };
    const int64_t base_ms = 100, cap_ms = 800, slack_ms = 400;
    struct server s;
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < FAILS; i++) {
        s.script[i] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
    }
    server_start(&s);
    struct na_deliver_opts opts = {1,       5000,   5000,   FAILS + 1,
                                   base_ms, cap_ms, "test", false};
    struct outcome o = deliver_with(&s, NULL, &opts);
    server_stop(&s);
    assert_int_equal(o.outcome, NA_OUTCOME_OK);
    assert_int_equal(o.attempts, FAILS + 1);
    assert_int_equal(s.requests, FAILS + 1);
    int64_t delay = base_ms, capped_min = INT64_MAX, capped_max = 0;
    for (int k = 1; k <= FAILS; k++) {
        int64_t gap = s.at_ms[k] - s.at_ms[k - 1];
        print_message("attempt %d after %lld ms (backoff %lld, jitter [%lld, %lld])\n",
                      k + 1, (long long)gap, (long long)delay, (long long)(delay / 2),
                      (long long)delay);
        if (gap < delay / 2 - 2 || gap > delay + slack_ms) {
            fail_msg("gap before attempt %d: %lld ms, want %lld..%lld (+%lld slack)",
                     k + 1, (long long)gap, (long long)(delay / 2), (long long)delay,
                     (long long)slack_ms);
        }
        if (delay == cap_ms) {
            capped_min = gap < capped_min ? gap : capped_min;
            capped_max = gap > capped_max ? gap : capped_max;
        }
        delay = delay * 2 > cap_ms ? cap_ms : delay * 2;
    }
    /* Six gaps at the cap, each drawn from [400, 800]: all within 40 ms of
     * each other would mean no jitter (odds about 1 in 10,000 otherwise). */
    assert_true(capped_max > 0);
    if (capped_max - capped_min < 40) {
        fail_msg("capped gaps all within %lld ms: no jitter",
                 (long long)(capped_max - capped_min));
    }
}

static void test_redirect_is_a_failure(void **state) {
    (void)state;
    struct server s;
    memset(&s, 0, sizeof(s));
    s.script[0] = "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\n"
                  "Content-Length: 0\r\n\r\n";
    server_start(&s);
    struct outcome o = deliver_one(&s, NULL, 5);
    server_stop(&s);
    assert_int_equal(o.outcome, NA_OUTCOME_DROP);
    assert_int_equal(s.requests, 1);
}

static void test_signed_requests_carry_standard_webhooks_headers(void **state) {
    (void)state;
    struct server s;
    memset(&s, 0, sizeof(s));
    server_start(&s);
    struct outcome o = deliver_one(&s, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 5);
    server_stop(&s);
    assert_int_equal(o.outcome, NA_OUTCOME_OK);
    const char *ts = strcasestr(s.headers[0], "webhook-timestamp: ");
    const char *sig = strcasestr(s.headers[0], "webhook-signature: v1,");
    assert_non_null(ts);
    assert_non_null(sig);
    /* Recompute the signature from what the receiver saw. */
    long long t = strtoll(ts + 19, NULL, 10);
    size_t key_len;
    unsigned char *key = na_base64_decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &key_len);
    char *want = na_deliver_sign(
        key, key_len, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        t, s.bodies[0], strlen(s.bodies[0]));
    assert_memory_equal(sig + 19, want, strlen(want));
    free(want);
    free(key);
}

static void test_unreachable_endpoint_is_retried(void **state) {
    (void)state;
    struct server s;
    memset(&s, 0, sizeof(s));
    server_start(&s);
    server_stop(&s); /* port now closed: connection refused */
    struct outcome o = deliver_one(&s, NULL, 2);
    assert_int_equal(o.outcome, NA_OUTCOME_RETRY);
    assert_int_equal(o.attempts, 2);
    assert_int_equal(o.status, 0);
}

/* ---- per-route pacing, digests, service rate-limit signals ---- */

struct many {
    int calls;
    int ok;
    size_t digest_cnt[64];
};

static void on_many(void *opaque, const struct na_delivery_result *res, void *ctx) {
    struct many *m = ctx;
    (void)opaque;
    if (m->calls < 64) {
        m->digest_cnt[m->calls] = res->digest_cnt;
    }
    m->calls++;
    m->ok += res->outcome == NA_OUTCOME_OK;
}

static struct na_digest_item *item_new(int i) {
    struct na_digest_item *it = calloc(1, sizeof(*it));
    char title[64];
    snprintf(it->alert_id, sizeof(it->alert_id), "%064d", i);
    snprintf(title, sizeof(title), "Story number %d", i);
    it->topic = strdup("taiwan");
    it->title = strdup(title);
    it->url = strdup("https://example.com/a");
    it->source = strdup("Wire");
    it->score = 5;
    return it;
}

/* Submit @p n alerts to one route described by @p route_json (its "url" is
 * filled in) and run until all ended or 15 s passed. @returns ms taken. */
static int64_t deliver_many(struct server *s, json_t *route_json, int n, bool items,
                            struct many *m, size_t *pending_after_submit) {
    struct na_routes routes = {NULL, 0};
    char url[64], errstr[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", s->port);
    json_object_set_new(route_json, "url", json_string(url));
    json_t *arr = json_pack("[o]", route_json);
    assert_int_equal(na_routes_parse(arr, &routes, errstr, sizeof(errstr)), NA_OK);
    json_decref(arr);
    struct na_deliver_opts opts = {4, 5000, 5000, 5, 50, 200, "test", false};
    na_deliver_t *d = na_deliver_new(&opts);
    for (int i = 0; i < n; i++) {
        char id[NA_SHA256_HEX_LEN + 1];
        char body[32];
        snprintf(id, sizeof(id), "%064d", i);
        snprintf(body, sizeof(body), "{\"a\":%d}", i);
        assert_int_equal(na_deliver_submit_steal(d, &routes.v[0], id, strdup(body),
                                                 strlen(body), items ? item_new(i) : NULL,
                                                 NULL),
                         NA_OK);
    }
    if (pending_after_submit) {
        *pending_after_submit = na_deliver_route_pending(d, &routes.v[0]);
    }
    int64_t t0 = na_mono_ms();
    while (na_deliver_pending(d) && na_mono_ms() < t0 + 15000) {
        na_deliver_run(d, 50, on_many, m);
    }
    int64_t took = na_mono_ms() - t0;
    assert_int_equal(na_deliver_route_pending(d, &routes.v[0]), 0);
    na_deliver_destroy(d);
    na_routes_cleanup(&routes);
    return took;
}

static void test_token_bucket_paces_a_route(void **state) {
    (void)state;
    struct server s;
    struct many m = {0};
    size_t pending = 0;
    memset(&s, 0, sizeof(s));
    server_start(&s);
    deliver_many(&s,
                 json_pack("{s:f, s:f, s:i}", "rate_per_s", 5.0, "burst", 1.0,
                           "digest_threshold", 0),
                 4, true, &m, &pending);
    server_stop(&s);
    assert_int_equal(pending, 4);
    assert_int_equal(m.ok, 4);
    assert_int_equal(s.requests, 4);
    /* 5 per second with a bucket of one: about 200 ms apart. */
    for (int i = 1; i < 4; i++) {
        assert_true(s.at_ms[i] - s.at_ms[i - 1] >= 150);
    }
}

/* Run @p d for @p ms (50 ms slices). */
static void run_for(na_deliver_t *d, struct many *m, int ms) {
    int64_t until = na_mono_ms() + ms;
    while (na_mono_ms() < until) {
        na_deliver_run(d, 50, on_many, m);
    }
}

/* With hold_until_recorded, an answered request keeps its route's slot
 * until the caller says it is recorded: with max_in_flight 1 (the parsed
 * default) the next request starts only then, so a crash re-sends at most
 * one request a route. */
static void test_an_answered_request_holds_its_route_until_recorded(void **state) {
    (void)state;
    struct na_routes parsed = {NULL, 0};
    char err[256];
    json_t *bad =
        json_pack("[{s:s, s:i}]", "url", "http://127.0.0.1:1/", "max_in_flight", 0);
    assert_int_equal(na_routes_parse(bad, &parsed, err, sizeof(err)), NA_ERR_CONFIG);
    assert_non_null(strstr(err, "max_in_flight"));
    json_decref(bad);
    na_routes_cleanup(&parsed);
    {
        struct server s;
        struct many m = {0};
        struct na_routes routes = {NULL, 0};
        char url[64], errstr[256];
        memset(&s, 0, sizeof(s));
        server_start(&s);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", s.port);
        json_t *arr = json_pack("[{s:s, s:f, s:f, s:i}]", "url", url, "rate_per_s",
                                1000.0, "burst", 1000.0, "digest_threshold", 0);
        assert_int_equal(na_routes_parse(arr, &routes, errstr, sizeof(errstr)), NA_OK);
        json_decref(arr);
        assert_int_equal(routes.v[0].max_in_flight, 1);
        struct na_deliver_opts opts = {4, 5000, 5000, 5, 50, 200, "test", true};
        na_deliver_t *d = na_deliver_new(&opts);
        for (int i = 0; i < 3; i++) {
            char id[NA_SHA256_HEX_LEN + 1];
            snprintf(id, sizeof(id), "%064d", i);
            assert_int_equal(
                na_deliver_submit_steal(d, &routes.v[0], id, strdup("{}"), 2, NULL, NULL),
                NA_OK);
        }
        run_for(d, &m, 600);
        /* the first answered, the rest wait for its record */
        assert_int_equal(m.ok, 1);
        assert_int_equal(s.requests, 1);
        na_deliver_recorded(d, &routes.v[0], 1);
        run_for(d, &m, 600);
        assert_int_equal(m.ok, 2);
        assert_int_equal(s.requests, 2);
        na_deliver_recorded(d, &routes.v[0], 1);
        run_for(d, &m, 600);
        assert_int_equal(m.ok, 3);
        assert_int_equal(s.requests, 3);
        assert_int_equal(na_deliver_pending(d), 0);
        na_deliver_destroy(d);
        na_routes_cleanup(&routes);
        server_stop(&s);
    }
}

/* Ten alerts with digest lines at once to a route with a bucket of one and
 * a digest threshold of 3, @p rate_per_s; the server answers @p first to
 * the first request and 200 to the rest. */
static void deliver_flood(struct server *s, double rate_per_s, const char *first,
                          struct many *m) {
    memset(s, 0, sizeof(*s));
    s->script[0] = first;
    server_start(s);
    deliver_many(s,
                 json_pack("{s:f, s:f, s:i}", "rate_per_s", rate_per_s, "burst", 1.0,
                           "digest_threshold", 3),
                 10, true, m, NULL);
    server_stop(s);
}

static void test_flood_becomes_one_digest(void **state) {
    (void)state;
    struct server s;
    struct many m = {0};
    deliver_flood(&s, 1.0, NULL, &m);
    assert_int_equal(s.requests, 1);
    assert_int_equal(m.calls, 10);
    assert_int_equal(m.ok, 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(m.digest_cnt[i], 10);
    }
    assert_non_null(strstr(s.bodies[0], "\"schema\":\"alert-digest/v1\""));
    assert_non_null(strstr(s.bodies[0], "\"count\":10"));
}

/* A digest the service refuses (400) is not the alerts' fault: each is then
 * sent alone, none is dead-lettered for it, and none is folded again. */
static void test_refused_digest_is_sent_one_by_one(void **state) {
    (void)state;
    struct server s;
    struct many m = {0};
    deliver_flood(&s, 40.0,
                  "HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n\r\ntoo long!!!",
                  &m);
    assert_int_equal(s.requests, 11);
    assert_non_null(strstr(s.bodies[0], "\"schema\":\"alert-digest/v1\""));
    for (int i = 1; i < 11; i++) { /* alone, in their order */
        char want[32];
        snprintf(want, sizeof(want), "{\"a\":%d}", i - 1);
        assert_string_equal(s.bodies[i], want);
    }
    assert_int_equal(m.calls, 10);
    assert_int_equal(m.ok, 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(m.digest_cnt[i], 0);
    }
}

/* Tallies digest sizes: how many results came from a digest of each size. */
struct sizes {
    int calls;
    int ok;
    size_t largest;
    int by_size[512];
};

static void on_sizes(void *opaque, const struct na_delivery_result *res, void *ctx) {
    struct sizes *z = ctx;
    (void)opaque;
    z->calls++;
    z->ok += res->outcome == NA_OUTCOME_OK;
    z->largest = res->digest_cnt > z->largest ? res->digest_cnt : z->largest;
    if (res->digest_cnt < 512) {
        z->by_size[res->digest_cnt]++;
    }
}

/* A flood larger than a digest holds (docs/delivery.md: up to 200 alerts
 * per digest) leaves as several digests, none over 200, every alert in
 * exactly one of them. */
static void test_a_digest_carries_at_most_200_alerts(void **state) {
    (void)state;
    enum { N = 450 };
    struct server s;
    struct sizes z;
    struct na_routes routes = {NULL, 0};
    char url[64], errstr[256];
    memset(&s, 0, sizeof(s));
    memset(&z, 0, sizeof(z));
    server_start(&s);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", s.port);
    json_t *arr = json_pack("[{s:s, s:f, s:f, s:i}]", "url", url, "rate_per_s", 5.0,
                            "burst", 1.0, "digest_threshold", 3);
    assert_int_equal(na_routes_parse(arr, &routes, errstr, sizeof(errstr)), NA_OK);
    json_decref(arr);
    struct na_deliver_opts opts = {4, 5000, 5000, 5, 50, 200, "test", false};
    na_deliver_t *d = na_deliver_new(&opts);
    for (int i = 0; i < N; i++) {
        char id[NA_SHA256_HEX_LEN + 1];
        snprintf(id, sizeof(id), "%064d", i);
        assert_int_equal(na_deliver_submit_steal(d, &routes.v[0], id, strdup("{\"a\":1}"),
                                                 7, item_new(i), NULL),
                         NA_OK);
    }
    int64_t deadline = na_mono_ms() + 30000;
    while (na_deliver_pending(d) && na_mono_ms() < deadline) {
        na_deliver_run(d, 50, on_sizes, &z);
    }
    na_deliver_destroy(d);
    na_routes_cleanup(&routes);
    server_stop(&s);
    assert_int_equal(z.calls, N);
    assert_int_equal(z.ok, N);
    if (z.largest > 200) {
        fail_msg("a digest carried %zu alerts (at most 200)", z.largest);
    }
    /* 200 + 200 + 50: three digest messages, each alert in one. */
    assert_int_equal(z.by_size[0], 0);
    assert_int_equal(z.by_size[200], 400);
    assert_int_equal(z.by_size[50], 50);
    assert_int_equal(s.requests, 3);
    for (int i = 0; i < 3; i++) {
        assert_non_null(strstr(s.bodies[i], "\"schema\":\"alert-digest/v1\""));
        assert_non_null(strstr(s.bodies[i], i < 2 ? "\"count\":200" : "\"count\":50"));
    }
}

static void test_few_alerts_are_not_digested(void **state) {
    (void)state;
    struct server s;
    struct many m = {0};
    memset(&s, 0, sizeof(s));
    server_start(&s);
    /* Under the threshold: singles, paced; alerts without items never fold. */
    deliver_many(&s,
                 json_pack("{s:f, s:f, s:i}", "rate_per_s", 20.0, "burst", 1.0,
                           "digest_threshold", 3),
                 3, true, &m, NULL);
    deliver_many(&s,
                 json_pack("{s:f, s:f, s:i}", "rate_per_s", 20.0, "burst", 1.0,
                           "digest_threshold", 1),
                 3, false, &m, NULL);
    server_stop(&s);
    assert_int_equal(s.requests, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(m.digest_cnt[i], 0);
    }
}

static void test_discord_429_body_retry_after(void **state) {
    (void)state;
    struct server s;
    struct many m = {0};
    memset(&s, 0, sizeof(s));
    s.script[0] =
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
        "Content-Length: 41\r\n\r\n{\"retry_after\": 1.2, \"global\": false}   ";
    server_start(&s);
    deliver_many(&s, json_pack("{s:s}", "format", "discord"), 1, true, &m, NULL);
    server_stop(&s);
    assert_int_equal(m.ok, 1);
    assert_int_equal(s.requests, 2);
    /* No Retry-After header: the JSON body's 1.2 s rules (backoff is <= 50 ms). */
    assert_true(s.at_ms[1] - s.at_ms[0] >= 1150);
}

static void test_discord_empty_bucket_pauses_the_route(void **state) {
    (void)state;
    struct server s;
    struct many m = {0};
    memset(&s, 0, sizeof(s));
    s.script[0] = "HTTP/1.1 204 No Content\r\nX-RateLimit-Limit: 5\r\n"
                  "X-RateLimit-Remaining: 0\r\nX-RateLimit-Reset-After: 0.8\r\n"
                  "Content-Length: 0\r\n\r\n";
    s.script[1] = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";
    server_start(&s);
    deliver_many(&s,
                 json_pack("{s:s, s:f, s:f, s:i}", "format", "discord", "rate_per_s",
                           100.0, "burst", 1.0, "digest_threshold", 0),
                 2, true, &m, NULL);
    server_stop(&s);
    assert_int_equal(m.ok, 2);
    assert_true(s.at_ms[1] - s.at_ms[0] >= 780);
}

static void test_keepalive_false_opens_a_connection_per_request(void **state) {
    (void)state;
    struct server s1, s2;
    struct many m = {0};
    memset(&s1, 0, sizeof(s1));
    memset(&s2, 0, sizeof(s2));
    server_start(&s1);
    /* One request at a time (the test server serves one connection at once). */
    deliver_many(&s1,
                 json_pack("{s:b, s:i, s:f, s:f}", "keepalive", 0, "digest_threshold", 0,
                           "rate_per_s", 20.0, "burst", 1.0),
                 5, true, &m, NULL);
    server_stop(&s1);
    server_start(&s2);
    deliver_many(&s2,
                 json_pack("{s:i, s:f, s:f}", "digest_threshold", 0, "rate_per_s", 20.0,
                           "burst", 1.0),
                 5, false, &m, NULL);
    server_stop(&s2);
    assert_int_equal(s1.requests, 5);
    assert_int_equal(s1.connections, 5);
    assert_int_equal(s2.requests, 5);
    assert_int_equal(s2.connections, 1);
}

static void test_route_failure_pauses_the_whole_route(void **state) {
    (void)state;
    struct server s;
    struct many m = {0};
    memset(&s, 0, sizeof(s));
    s.script[0] = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
                  "Content-Length: 0\r\n\r\n";
    server_start(&s);
    deliver_many(&s,
                 json_pack("{s:f, s:f, s:i}", "rate_per_s", 100.0, "burst", 1.0,
                           "digest_threshold", 0),
                 3, true, &m, NULL);
    server_stop(&s);
    assert_int_equal(m.ok, 3);
    assert_int_equal(s.requests, 4);
    /* The 503's Retry-After holds every alert of the route, not just the one
     * that failed. */
    assert_true(s.at_ms[1] - s.at_ms[0] >= 950);
}

/* Regression: alerts in flight together that all failed went back to the
 * queue in reverse order (each pushed to the head), so the route got them
 * out of order once it recovered. */
static void test_failed_alerts_are_retried_in_their_order(void **state) {
    (void)state;
    struct server s;
    struct many m = {0};
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 3; i++) {
        s.script[i] = "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n"
                      "Content-Length: 0\r\n\r\n";
    }
    server_start(&s);
    deliver_many(&s,
                 json_pack("{s:f, s:f, s:i}", "rate_per_s", 100.0, "burst", 3.0,
                           "digest_threshold", 0),
                 3, false, &m, NULL);
    server_stop(&s);
    assert_int_equal(m.ok, 3);
    /* The first three ran at once and failed; the retries keep the order.
     * (A request curl re-sends on a connection the server had just closed
     * may repeat one: compare the first time each body came back.) */
    assert_true(s.requests >= 6);
    char seen[3] = {0};
    int order[3], n = 0;
    for (int i = 3; i < s.requests && n < 3; i++) {
        int a = s.bodies[i][5] - '0';
        if (a >= 0 && a < 3 && !seen[a]) {
            seen[a] = 1;
            order[n++] = a;
        }
    }
    assert_int_equal(n, 3);
    assert_int_equal(order[0], 0);
    assert_int_equal(order[1], 1);
    assert_int_equal(order[2], 2);
}

/* ---- alerts the caller keeps past max_attempts (parked alerts) ---- */

struct kept {
    int calls;
    int ok;
    int failed; /* ended RETRY, not kept */
    int kept;
    int last_attempts;
};

/* Keeps every alert whose id ends in an even digit; the others end. */
static void on_kept(void *opaque, const struct na_delivery_result *res, void *ctx) {
    struct kept *k = ctx;
    (void)opaque;
    k->calls++;
    k->last_attempts = res->attempts;
    if (res->outcome == NA_OUTCOME_OK) {
        assert_null(res->keep);
        assert_int_equal(res->digest_cnt, 0);
        k->ok++;
        return;
    }
    assert_int_equal(res->outcome, NA_OUTCOME_RETRY);
    assert_non_null(res->keep);
    if ((res->alert_id[NA_SHA256_HEX_LEN - 1] - '0') % 2 == 0) {
        *res->keep = true;
        k->kept++;
        return;
    }
    k->failed++;
}

/* Submit @p n alerts (ids and bodies numbered from 0) to @p s with
 * @p max_attempts and run until all ended or 15 s passed. */
static void deliver_kept(struct server *s, json_t *route_json, int n, int max_attempts,
                         struct kept *k) {
    struct na_routes routes = {NULL, 0};
    char url[64], errstr[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", s->port);
    json_object_set_new(route_json, "url", json_string(url));
    json_t *arr = json_pack("[o]", route_json);
    assert_int_equal(na_routes_parse(arr, &routes, errstr, sizeof(errstr)), NA_OK);
    json_decref(arr);
    struct na_deliver_opts opts = {4, 5000, 5000, max_attempts, 50, 200, "test", false};
    na_deliver_t *d = na_deliver_new(&opts);
    for (int i = 0; i < n; i++) {
        char id[NA_SHA256_HEX_LEN + 1];
        char body[32];
        snprintf(id, sizeof(id), "%064d", i);
        snprintf(body, sizeof(body), "{\"a\":%d}", i);
        assert_int_equal(na_deliver_submit_steal(d, &routes.v[0], id, strdup(body),
                                                 strlen(body), item_new(i), NULL),
                         NA_OK);
    }
    int64_t deadline = na_mono_ms() + 15000;
    while (na_deliver_pending(d) && na_mono_ms() < deadline) {
        na_deliver_run(d, 50, on_kept, k);
    }
    assert_int_equal(na_deliver_pending(d), 0);
    na_deliver_destroy(d);
    na_routes_cleanup(&routes);
}

/* An alert whose attempts ran out and that the caller keeps (a parked
 * alert younger than park_max_age) is tried again, as the head of its
 * route's queue: the alerts behind it wait, and go once it got through. */
static void test_a_kept_alert_is_tried_past_max_attempts_at_its_place(void **state) {
    (void)state;
    struct server s;
    struct kept k = {0};
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 4; i++) {
        s.script[i] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
    }
    server_start(&s);
    deliver_kept(&s,
                 json_pack("{s:f, s:f, s:i}", "rate_per_s", 100.0, "burst", 1.0,
                           "digest_threshold", 0),
                 2, 2, &k);
    server_stop(&s);
    /* Alert 0 ran out at its 2nd, 3rd and 4th attempts, got through at its
     * 5th; alert 1 went after it, at once. */
    assert_int_equal(k.kept, 3);
    assert_int_equal(k.failed, 0);
    assert_int_equal(k.ok, 2);
    assert_int_equal(k.calls, 5);
    assert_int_equal(s.requests, 6);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(s.bodies[i], "{\"a\":0}");
    }
    assert_string_equal(s.bodies[5], "{\"a\":1}");
}

/* A digest that ran out of attempts: the alerts the caller keeps go on
 * alone, in their order (not folded again while the route fails); the
 * others end. */
static void test_kept_alerts_of_a_failed_digest_go_on_alone(void **state) {
    (void)state;
    struct server s;
    struct kept k = {0};
    memset(&s, 0, sizeof(s));
    s.script[0] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
    server_start(&s);
    deliver_kept(&s,
                 json_pack("{s:f, s:f, s:i}", "rate_per_s", 50.0, "burst", 1.0,
                           "digest_threshold", 3),
                 10, 1, &k);
    server_stop(&s);
    assert_int_equal(k.failed, 5);
    assert_int_equal(k.kept, 5);
    assert_int_equal(k.ok, 5);
    assert_int_equal(s.requests, 6);
    assert_non_null(strstr(s.bodies[0], "\"schema\":\"alert-digest/v1\""));
    for (int i = 1; i < 6; i++) {
        char want[32];
        snprintf(want, sizeof(want), "{\"a\":%d}", 2 * (i - 1));
        assert_string_equal(s.bodies[i], want);
    }
}

/* Takes the alerts whose id ends in an even digit (every alert with @c all). */
struct taker {
    bool all;
    int taken;
    int attempts;
};

static bool take_even(struct na_deliver_queued *q, void *ctx) {
    struct taker *t = ctx;
    if (!t->all && (q->alert_id[NA_SHA256_HEX_LEN - 1] - '0') % 2) {
        return false;
    }
    t->taken++;
    t->attempts = q->attempts;
    free(q->body);
    na_digest_item_free(q->item);
    return true;
}

/* Submit ten alerts with digest lines to @p route and run until their
 * digest was answered (the server's first answer: 503) and waits for its
 * retry (two seconds' backoff at least). */
static na_deliver_t *digest_waiting(struct server *s, const struct na_route *route) {
    struct na_deliver_opts opts = {4, 5000, 5000, 5, 2000, 2000, "test", false};
    na_deliver_t *d = na_deliver_new(&opts);
    int before = s->requests;
    for (int i = 0; i < 10; i++) {
        char id[NA_SHA256_HEX_LEN + 1];
        char body[32];
        snprintf(id, sizeof(id), "%064d", i);
        snprintf(body, sizeof(body), "{\"a\":%d}", i);
        assert_int_equal(na_deliver_submit_steal(d, route, id, strdup(body), strlen(body),
                                                 item_new(i), NULL),
                         NA_OK);
    }
    int64_t deadline = na_mono_ms() + 5000;
    struct many m = {0};
    while ((s->requests == before ||
            na_deliver_route_count(d, route, true, false, NULL, NULL)) &&
           na_mono_ms() < deadline) {
        na_deliver_run(d, 20, on_many, &m);
    }
    assert_int_equal(s->requests, before + 1);
    assert_non_null(strstr(s->bodies[before], "\"schema\":\"alert-digest/v1\""));
    assert_int_equal(m.calls, 0);
    assert_int_equal(na_deliver_pending(d), 10);
    return d;
}

/* Regression: a digest waiting for a retry was never offered to
 * na_deliver_take(), so its alerts stayed in memory: a parked route's
 * digest was dead-lettered after deliver_max_attempts instead of going to
 * the retry topic (and every new alert of the route queued behind it),
 * and one of partitions given up went on being retried by the member that
 * had handed it over, after the new owner had sent its alerts too. Now
 * its alerts are offered one by one; those left go on alone, in order,
 * not in a digest that lists the ones taken. */
static void test_a_digest_waiting_for_a_retry_gives_up_its_alerts(void **state) {
    (void)state;
    struct server s;
    struct na_routes routes = {NULL, 0};
    char url[64], errstr[256];
    memset(&s, 0, sizeof(s));
    s.script[0] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
    s.script[6] = s.script[0];
    server_start(&s);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", s.port);
    json_t *arr = json_pack("[{s:s, s:f, s:f, s:i}]", "url", url, "rate_per_s", 40.0,
                            "burst", 1.0, "digest_threshold", 3);
    assert_int_equal(na_routes_parse(arr, &routes, errstr, sizeof(errstr)), NA_OK);
    json_decref(arr);

    /* Half of them taken: the other half are sent one by one. */
    na_deliver_t *d = digest_waiting(&s, &routes.v[0]);
    struct taker t = {false, 0, 0};
    assert_int_equal(na_deliver_take(d, NULL, take_even, &t), 5);
    assert_int_equal(t.taken, 5);
    assert_int_equal(t.attempts, 1);
    assert_int_equal(na_deliver_pending(d), 5);
    assert_int_equal(na_deliver_route_pending(d, &routes.v[0]), 5);
    struct many m = {0};
    int64_t deadline = na_mono_ms() + 15000;
    while (na_deliver_pending(d) && na_mono_ms() < deadline) {
        na_deliver_run(d, 50, on_many, &m);
    }
    assert_int_equal(m.calls, 5);
    assert_int_equal(m.ok, 5);
    assert_int_equal(s.requests, 6);
    for (int i = 1; i < 6; i++) {
        char want[32];
        snprintf(want, sizeof(want), "{\"a\":%d}", 2 * i - 1);
        assert_string_equal(s.bodies[i], want);
        assert_int_equal(m.digest_cnt[i - 1], 0);
    }
    na_deliver_destroy(d);

    /* All of them taken: nothing is left to send. */
    d = digest_waiting(&s, &routes.v[0]);
    t.all = true;
    t.taken = 0;
    assert_int_equal(na_deliver_take(d, &routes.v[0], take_even, &t), 10);
    assert_int_equal(na_deliver_pending(d), 0);
    assert_int_equal(na_deliver_route_count(d, &routes.v[0], true, true, NULL, NULL), 0);
    run_for(d, &m, 300);
    assert_int_equal(s.requests, 7);
    assert_int_equal(m.calls, 5);
    na_deliver_destroy(d);
    na_routes_cleanup(&routes);
    server_stop(&s);
}

static int setup(void **state) {
    (void)state;
    return na_http_global_init() ? -1 : 0;
}

static int teardown(void **state) {
    (void)state;
    na_http_global_cleanup();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retries_5xx_then_succeeds_on_one_connection),
        cmocka_unit_test(test_429_retry_after_is_honoured),
        cmocka_unit_test(test_4xx_is_dropped_without_retry),
        cmocka_unit_test(test_gives_up_after_max_attempts),
        cmocka_unit_test(test_backoff_doubles_with_jitter_up_to_its_cap),
        cmocka_unit_test(test_redirect_is_a_failure),
        cmocka_unit_test(test_signed_requests_carry_standard_webhooks_headers),
        cmocka_unit_test(test_unreachable_endpoint_is_retried),
        cmocka_unit_test(test_token_bucket_paces_a_route),
        cmocka_unit_test(test_flood_becomes_one_digest),
        cmocka_unit_test(test_refused_digest_is_sent_one_by_one),
        cmocka_unit_test(test_a_digest_carries_at_most_200_alerts),
        cmocka_unit_test(test_few_alerts_are_not_digested),
        cmocka_unit_test(test_discord_429_body_retry_after),
        cmocka_unit_test(test_discord_empty_bucket_pauses_the_route),
        cmocka_unit_test(test_keepalive_false_opens_a_connection_per_request),
        cmocka_unit_test(test_route_failure_pauses_the_whole_route),
        cmocka_unit_test(test_failed_alerts_are_retried_in_their_order),
        cmocka_unit_test(test_an_answered_request_holds_its_route_until_recorded),
        cmocka_unit_test(test_a_kept_alert_is_tried_past_max_attempts_at_its_place),
        cmocka_unit_test(test_kept_alerts_of_a_failed_digest_go_on_alone),
        cmocka_unit_test(test_a_digest_waiting_for_a_retry_gives_up_its_alerts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
