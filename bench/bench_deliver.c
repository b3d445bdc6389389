/*
 * bench_deliver N KEEPALIVE CONCURRENCY: POST N alert/v1-sized bodies
 * through the deliverer (libcurl multi) to a receiver in this process
 * (one thread per connection, HTTP/1.1 keep-alive, answers 200 "ok") and
 * print one JSON line: alerts per second. KEEPALIVE 0 sets the route's
 * "keepalive": false (CURLOPT_FORBID_REUSE: one connection per request).
 * Pacing and digests are off for the route: this measures the transport.
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "deliver.h"
#include "newsalert/http.h"
#include "newsalert/timeutil.h"
#include "route.h"

static volatile long connections;

static void *serve_conn(void *arg) {
    int c = (int)(intptr_t)arg;
    char buf[65536];
    size_t have = 0;
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    for (;;) {
        char *end = have ? memmem(buf, have, "\r\n\r\n", 4) : NULL;
        if (end) {
            size_t head = (size_t)(end + 4 - buf);
            const char *cl = strcasestr(buf, "content-length:");
            size_t len = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
            if (have >= head + len) {
                if (write(c, resp, sizeof(resp) - 1) < 0) {
                    break;
                }
                memmove(buf, buf + head + len, have - head - len);
                have -= head + len;
                continue;
            }
        }
        if (have == sizeof(buf) - 1) {
            break;
        }
        ssize_t r = read(c, buf + have, sizeof(buf) - 1 - have);
        if (r <= 0) {
            break;
        }
        have += (size_t)r;
        buf[have] = '\0';
    }
    close(c);
    return NULL;
}

static void *serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    for (;;) {
        int c = accept(fd, NULL, NULL);
        pthread_t t;
        int one = 1;
        if (c < 0) {
            break;
        }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        __atomic_add_fetch(&connections, 1, __ATOMIC_RELAXED);
        pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)c);
        pthread_detach(t);
    }
    return NULL;
}

static long done_ok;

static void on_done(void *opaque, const struct na_delivery_result *res, void *ctx) {
    (void)opaque;
    (void)ctx;
    done_ok += res->outcome == NA_OUTCOME_OK;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 10000;
    int keepalive = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 1;
    long conc = argc > 3 ? strtol(argv[3], NULL, 10) : 16;
    struct sockaddr_in addr;
    socklen_t alen = sizeof(addr);
    int one = 1;
    char url[64], errstr[256], body[2048];
    struct na_routes routes = {NULL, 0};
    pthread_t t;

    if (n <= 0 || conc <= 0 || na_http_global_init()) {
        return 2;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) || listen(fd, 512)) {
        return 1;
    }
    getsockname(fd, (struct sockaddr *)&addr, &alen);
    pthread_create(&t, NULL, serve, (void *)(intptr_t)fd);
    pthread_detach(t);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", ntohs(addr.sin_port));
    json_t *arr = json_pack("[{s:s, s:s, s:s, s:f, s:f, s:i, s:b}]", "name", "bench", "url",
                            url, "format", "json", "rate_per_s", 100000.0, "burst",
                            100000.0, "digest_threshold", 0, "keepalive", keepalive);
    if (na_routes_parse(arr, &routes, errstr, sizeof(errstr))) {
        fprintf(stderr, "bench_deliver: %s\n", errstr);
        return 1;
    }
    json_decref(arr);
    /* About the size of an alert/v1 document. */
    memset(body, 'x', sizeof(body));
    memcpy(body, "{\"schema\":\"alert/v1\",\"pad\":\"", 28);
    memcpy(body + sizeof(body) - 3, "\"}", 3);
    struct na_deliver_opts opts = {conc, 15000, 15000, 3, 100, 1000, "bench"};
    na_deliver_t *d = na_deliver_new(&opts);
    int64_t t0 = na_mono_us();
    for (long i = 0; i < n; i++) {
        char id[NA_SHA256_HEX_LEN + 1];
        snprintf(id, sizeof(id), "%064ld", i);
        if (na_deliver_submit_steal(d, &routes.v[0], id, strndup(body, sizeof(body) - 1),
                                    sizeof(body) - 1, NULL, NULL)) {
            return 1;
        }
    }
    while (na_deliver_pending(d)) {
        na_deliver_run(d, 10, on_done, NULL);
    }
    double secs = (double)(na_mono_us() - t0) / 1e6;
    printf("{\"bench\":\"deliver\",\"case\":\"%s concurrency=%ld\",\"metric\":\"alerts_per_s\","
           "\"value\":%.0f,\"unit\":\"1/s\"}\n",
           keepalive ? "keep-alive" : "connection per request", conc, (double)done_ok / secs);
    fprintf(stderr, "bench_deliver: %ld of %ld ok in %.2f s over %ld connections\n", done_ok,
            n, secs, connections);
    na_deliver_destroy(d);
    na_routes_cleanup(&routes);
    na_http_global_cleanup();
    return done_ok == n ? 0 : 1;
}
