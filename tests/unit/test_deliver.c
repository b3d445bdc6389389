/* Delivery against a scripted HTTP server on 127.0.0.1 (a thread of this
 * test): retries on 5xx and 429 with Retry-After, drop on 4xx, give-up after
 * max_attempts, signing headers, keep-alive reuse. */
#define _GNU_SOURCE /* strcasestr */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
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

static struct outcome deliver_one(struct server *s, const char *secret, int max_attempts) {
    struct na_routes routes = {NULL, 0};
    char url[64], errstr[256];
    struct outcome o = {0, NA_OUTCOME_FATAL, 0, 0};
    json_t *arr;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", s->port);
    arr = secret ? json_pack("[{s:s, s:s}]", "url", url, "secret", secret)
                 : json_pack("[{s:s}]", "url", url);
    assert_int_equal(na_routes_parse(arr, &routes, errstr, sizeof(errstr)), NA_OK);
    json_decref(arr);
    struct na_deliver_opts opts = {1, 5000, 5000, max_attempts, 50, 200, "test"};
    na_deliver_t *d = na_deliver_new(&opts);
    const char *alert_id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_int_equal(na_deliver_submit_steal(d, &routes.v[0], alert_id, strdup("{\"a\":1}"), 7,
                                             NULL, NULL),
                     NA_OK);
    int64_t deadline = na_mono_ms() + 10000;
    while (na_deliver_pending(d) && na_mono_ms() < deadline) {
        na_deliver_run(d, 50, on_done, &o);
    }
    na_deliver_destroy(d);
    na_routes_cleanup(&routes);
    return o;
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
    char *want = na_deliver_sign(key, key_len,
                                 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
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
        cmocka_unit_test(test_redirect_is_a_failure),
        cmocka_unit_test(test_signed_requests_carry_standard_webhooks_headers),
        cmocka_unit_test(test_unreachable_endpoint_is_retried),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
