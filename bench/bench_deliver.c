/*
 * bench_deliver latency BROKERS CONSUMER_BIN RULES N: produce N matching
 * articles, one every 50 ms, with librdkafka (linger.ms 0) to a fresh topic
 * that CONSUMER_BIN (newsalert-consumer, one json route to a receiver in
 * this process) consumes; per alert, the time from just before
 * rd_kafka_producev() to the arrival of the request head at the receiver.
 * Prints latency_p50_ms and latency_p99_ms.
 *
 * bench_deliver N KEEPALIVE CONCURRENCY: POST N alert/v1-sized bodies
 * through the deliverer (libcurl multi) to a receiver in this process
 * (one thread per connection, HTTP/1.1 keep-alive, answers 200 "ok") and
 * print one JSON line: alerts per second. KEEPALIVE 0 sets the route's
 * "keepalive": false (CURLOPT_FORBID_REUSE: one connection per request).
 * Pacing and digests are off for the route: this measures the transport.
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "newsalert/hash.h"

#include "deliver.h"
#include "newsalert/http.h"
#include "newsalert/timeutil.h"
#include "route.h"

static volatile long connections;

/* Latency mode: alert ids awaited and when each request head arrived. */
static pthread_mutex_t lat_lock = PTHREAD_MUTEX_INITIALIZER;
static char (*lat_ids)[NA_SHA256_HEX_LEN + 1];
static int64_t *lat_arrived_us;
static long lat_n;

static void record_arrival(const char *head) {
    const char *h = strcasestr(head, "\r\nwebhook-id: ");
    int64_t now = na_mono_us();
    if (!h || !lat_ids) {
        return;
    }
    h += 14;
    pthread_mutex_lock(&lat_lock);
    for (long i = 0; i < lat_n; i++) {
        if (!lat_arrived_us[i] && !strncmp(h, lat_ids[i], NA_SHA256_HEX_LEN)) {
            lat_arrived_us[i] = now;
        }
    }
    pthread_mutex_unlock(&lat_lock);
}

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
                *end = '\0';
                record_arrival(buf);
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

static int listen_local(int *port) {
    struct sockaddr_in addr;
    socklen_t alen = sizeof(addr);
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) || listen(fd, 512)) {
        return -1;
    }
    getsockname(fd, (struct sockaddr *)&addr, &alen);
    *port = ntohs(addr.sin_port);
    pthread_t t;
    pthread_create(&t, NULL, serve, (void *)(intptr_t)fd);
    pthread_detach(t);
    return 0;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* @returns NA_OK or NA_ERR_NOMEM (the id's SHA-256). */
static na_err_t article_json(char *out, size_t size, const char *tag, long i,
                             char id[65]) {
    char url[256];
    snprintf(url, sizeof(url), "https://wire.example/lat/%s/%ld", tag, i);
    if (na_sha256_hex(url, strlen(url), id)) {
        return NA_ERR_NOMEM;
    }
    snprintf(out, size,
             "{\"schema\":\"article/v1\",\"id\":\"%s\",\"url\":\"%s\","
             "\"title\":\"Beijing bans exports of dual-use items %ld\","
             "\"published_at\":\"2026-11-25T10:00:00Z\","
             "\"fetched_at\":\"2026-11-25T10:00:00Z\"}",
             id, url, i);
    return NA_OK;
}

static na_err_t alert_id_of(const char *article_id, char out[65]) {
    const char *parts[] = {"alert/v1", article_id, "export_controls", NULL};
    return na_sha256_hex_parts(parts, out);
}

static int latency(const char *brokers, const char *consumer_bin, const char *rules,
                   long n) {
    char tag[64], topic[128], cfg_path[] = "/tmp/na-bench-deliver-XXXXXX";
    char errstr[512], body[1024], aid[65];
    int port = 0;
    extern char **environ;

    snprintf(tag, sizeof(tag), "%d.%lld", (int)getpid(), (long long)na_now_ms());
    snprintf(topic, sizeof(topic), "na.bench.deliver.%s", tag);
    lat_n = n + 1;
    lat_ids = calloc((size_t)lat_n, sizeof(*lat_ids));
    lat_arrived_us = calloc((size_t)lat_n, sizeof(*lat_arrived_us));
    int64_t *sent_us = calloc((size_t)lat_n, sizeof(*sent_us));
    if (!lat_ids || !lat_arrived_us || !sent_us || listen_local(&port)) {
        return 1;
    }
    int fd = mkstemp(cfg_path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        return 1;
    }
    fprintf(f,
            "{\"brokers\":\"%s\",\"topic\":\"%s\",\"ledger_topic\":\"%s.alerts\","
            "\"group_id\":\"na-bench-%s\",\"rules\":\"%s\",\"log_level\":\"warn\","
            "\"stories\":false,\"routes\":[{\"name\":\"bench\","
            "\"url\":\"http://127.0.0.1:%d/h\",\"format\":\"json\","
            "\"topics\":[\"export_controls\"]}]}",
            brokers, topic, topic, tag, rules, port);
    fclose(f);

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "linger.ms", "0", errstr, sizeof(errstr))) {
        fprintf(stderr, "bench_deliver: %s\n", errstr);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "bench_deliver: %s\n", errstr);
        return 1;
    }
    /* The alert ids the webhook will see, by index. */
    for (long i = 0; i <= n; i++) {
        char article_id[65];
        if (article_json(body, sizeof(body), tag, i, article_id) ||
            alert_id_of(article_id, aid)) {
            fprintf(stderr, "bench_deliver: no memory\n");
            return 1;
        }
        memcpy(lat_ids[i], aid, sizeof(aid));
    }
    char *argv[] = {(char *)consumer_bin, "--config", cfg_path, NULL};
    pid_t pid;
    if (posix_spawn(&pid, consumer_bin, NULL, NULL, argv, environ)) {
        return 1;
    }
    /* Warm-up: the consumer has its partitions and delivers (index n). */
    bool oom = article_json(body, sizeof(body), tag, n, aid) != NA_OK;
    if (!oom) {
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                          RD_KAFKA_V_VALUE(body, strlen(body)),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    }
    int64_t deadline = na_mono_us() + 90 * 1000000LL;
    while (!oom && !__atomic_load_n(&lat_arrived_us[n], __ATOMIC_SEQ_CST) &&
           na_mono_us() < deadline) {
        rd_kafka_poll(rk, 50);
    }
    for (long i = 0; i < n && !oom; i++) {
        char article_id[65];
        if (article_json(body, sizeof(body), tag, i, article_id)) {
            oom = true;
            break;
        }
        sent_us[i] = na_mono_us();
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(article_id, 64),
                          RD_KAFKA_V_VALUE(body, strlen(body)),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        rd_kafka_poll(rk, 50);
    }
    deadline = na_mono_us() + 30 * 1000000LL;
    long got = 0;
    while (!oom && na_mono_us() < deadline) {
        got = 0;
        pthread_mutex_lock(&lat_lock);
        for (long i = 0; i < n; i++) {
            got += lat_arrived_us[i] != 0;
        }
        pthread_mutex_unlock(&lat_lock);
        if (got == n) {
            break;
        }
        rd_kafka_poll(rk, 100);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    rd_kafka_flush(rk, 5000);
    rd_kafka_destroy(rk);
    unlink(cfg_path);
    if (oom) {
        fprintf(stderr, "bench_deliver: no memory\n");
        return 1;
    }
    if (got < n) {
        fprintf(stderr, "bench_deliver: only %ld of %ld alerts arrived\n", got, n);
        return 1;
    }
    for (long i = 0; i < n; i++) {
        sent_us[i] = lat_arrived_us[i] - sent_us[i];
    }
    qsort(sent_us, (size_t)n, sizeof(*sent_us), cmp_i64);
    printf("{\"bench\":\"deliver\",\"case\":\"produce to webhook, 20 articles/s\","
           "\"metric\":\"latency_p50_ms\",\"value\":%.1f,\"unit\":\"ms\"}\n",
           (double)sent_us[n / 2] / 1000.0);
    printf("{\"bench\":\"deliver\",\"case\":\"produce to webhook, 20 articles/s\","
           "\"metric\":\"latency_p99_ms\",\"value\":%.1f,\"unit\":\"ms\"}\n",
           (double)sent_us[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1000.0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 6 && !strcmp(argv[1], "latency")) {
        return latency(argv[2], argv[3], argv[4], strtol(argv[5], NULL, 10));
    }
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 10000;
    int keepalive = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 1;
    long conc = argc > 3 ? strtol(argv[3], NULL, 10) : 16;
    char url[64], errstr[256], body[2048];
    struct na_routes routes = {NULL, 0};
    int port;

    if (n <= 0 || conc <= 0 || na_http_global_init()) {
        return 2;
    }
    if (listen_local(&port)) {
        return 1;
    }

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", port);
    /* The transport at its concurrency: the route may use every slot. */
    json_t *arr = json_pack("[{s:s, s:s, s:s, s:f, s:f, s:i, s:b, s:i}]", "name", "bench",
                            "url", url, "format", "json", "rate_per_s", 100000.0, "burst",
                            100000.0, "digest_threshold", 0, "keepalive", keepalive,
                            "max_in_flight", (int)(conc > 0 && conc <= 1000 ? conc : 1));
    if (na_routes_parse(arr, &routes, errstr, sizeof(errstr))) {
        fprintf(stderr, "bench_deliver: %s\n", errstr);
        return 1;
    }
    json_decref(arr);
    /* About the size of an alert/v1 document. */
    memset(body, 'x', sizeof(body));
    memcpy(body, "{\"schema\":\"alert/v1\",\"pad\":\"", 28);
    memcpy(body + sizeof(body) - 3, "\"}", 3);
    struct na_deliver_opts opts = {.concurrency = conc,
                                   .timeout_ms = 15000,
                                   .connect_timeout_ms = 15000,
                                   .max_attempts = 3,
                                   .backoff_ms = 100,
                                   .backoff_max_ms = 1000,
                                   .user_agent = "bench",
                                   .hold_until_recorded = false};
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
    printf("{\"bench\":\"deliver\",\"case\":\"%s "
           "concurrency=%ld\",\"metric\":\"alerts_per_s\","
           "\"value\":%.0f,\"unit\":\"1/s\"}\n",
           keepalive ? "keep-alive" : "connection per request", conc,
           (double)done_ok / secs);
    fprintf(stderr, "bench_deliver: %ld of %ld ok in %.2f s over %ld connections\n",
            done_ok, n, secs, connections);
    na_deliver_destroy(d);
    na_routes_cleanup(&routes);
    na_http_global_cleanup();
    return done_ok == n ? 0 : 1;
}
