#include "newsalert/daemon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/log.h"
#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"

/* Written by the handlers, read by the loops: nothing else is touched in a
 * handler. */
static volatile sig_atomic_t running = 1;
static volatile sig_atomic_t stops;
static volatile sig_atomic_t reload;

static void on_stop(int sig) {
    (void)sig;
    running = 0;
    if (stops < 2) {
        stops++;
    }
}

static void on_hup(int sig) {
    (void)sig;
    reload = 1;
}

na_err_t na_daemon_signals_install(char *errstr, size_t errstr_size) {
    struct sigaction sa;
    static const struct {
        int sig;
        void (*fn)(int);
    } plan[] = {
        {SIGTERM, on_stop}, {SIGINT, on_stop}, {SIGHUP, on_hup}, {SIGPIPE, SIG_IGN}};

    running = 1;
    stops = 0;
    reload = 0;
    for (size_t i = 0; i < sizeof(plan) / sizeof(plan[0]); i++) {
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = plan[i].fn;
        sigemptyset(&sa.sa_mask);
        /* SA_RESTART: a signal does not fail a read() of a config file. */
        sa.sa_flags = SA_RESTART;
        if (sigaction(plan[i].sig, &sa, NULL)) {
            snprintf(errstr, errstr_size, "sigaction(%d): %s", plan[i].sig,
                     strerror(errno));
            return NA_ERR_IO;
        }
    }
    return NA_OK;
}

volatile sig_atomic_t *na_daemon_running(void) {
    return &running;
}

bool na_daemon_should_stop(void) {
    return !running;
}

bool na_daemon_should_abort(void) {
    return stops >= 2;
}

void na_daemon_request_stop(void) {
    on_stop(SIGTERM);
}

bool na_daemon_take_reload(void) {
    if (!reload) {
        return false;
    }
    reload = 0;
    return true;
}

void na_daemon_request_reload(void) {
    reload = 1;
}

int64_t na_daemon_deadline(int64_t timeout_ms) {
    return na_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
}

int na_daemon_deadline_left_ms(int64_t deadline, int max_ms) {
    int64_t left = deadline - na_mono_ms();
    if (left <= 0 || na_daemon_should_abort()) {
        return 0;
    }
    return left < max_ms ? (int)left : max_ms;
}

int na_daemon_parse_listen(const char *listen, char *host, size_t host_size, int *port) {
    const char *colon;
    const char *h = listen;
    size_t hlen;
    long long p;
    char *end = NULL;

    if (!listen || !*listen) {
        return -1;
    }
    if (*listen == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':') {
            return -1;
        }
        h = listen + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || memchr(listen, ':', (size_t)(colon - listen))) {
            return -1; /* no port, or a bare IPv6 address without brackets */
        }
        hlen = (size_t)(colon - listen);
    }
    if (hlen >= host_size) {
        return -1;
    }
    errno = 0;
    p = strtoll(colon + 1, &end, 10);
    if (!colon[1] || *end || errno || p < 0 || p > 65535) {
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

static na_err_t check_values(const char *log_format, const char *http_listen,
                             char *errstr, size_t errstr_size) {
    char host[256];
    int port;
    if (log_format && strcmp(log_format, "logfmt") && strcmp(log_format, "json")) {
        snprintf(errstr, errstr_size, "log_format: want logfmt|json, not \"%s\"",
                 log_format);
        return NA_ERR_CONFIG;
    }
    if (http_listen && *http_listen &&
        na_daemon_parse_listen(http_listen, host, sizeof(host), &port)) {
        snprintf(errstr, errstr_size,
                 "http_listen: want HOST:PORT, [V6]:PORT or :PORT, not \"%s\"",
                 http_listen);
        return NA_ERR_CONFIG;
    }
    return NA_OK;
}

static const char *string_field(const struct na_conf_entry *table, const void *obj,
                                const char *key) {
    const struct na_conf_entry *e = na_conf_find(table, key);
    if (!e || e->type != NA_CONF_STRING) {
        return NULL;
    }
    return *(char *const *)((const char *)obj + e->offset);
}

na_err_t na_daemon_conf_check(const struct na_conf_entry *table, const void *obj,
                              char *errstr, size_t errstr_size) {
    const char *level = string_field(table, obj, "log_level");
    enum na_log_level parsed;
    if (level && na_log_level_parse(level, &parsed)) {
        snprintf(errstr, errstr_size, "log_level: want error|warn|info|debug, not \"%s\"",
                 level);
        return NA_ERR_CONFIG;
    }
    return check_values(string_field(table, obj, "log_format"),
                        string_field(table, obj, "http_listen"), errstr, errstr_size);
}

na_err_t na_daemon_conf_apply(const struct na_daemon_conf *dc, char *errstr,
                              size_t errstr_size) {
    na_err_t err = check_values(dc->log_format, dc->http_listen, errstr, errstr_size);
    if (err) {
        return err;
    }
    na_log_set_format(dc->log_format && !strcmp(dc->log_format, "json")
                          ? NA_LOG_FORMAT_JSON
                          : NA_LOG_FORMAT_LOGFMT);
    return NA_OK;
}

void na_daemon_kafka_gauges(rd_kafka_t *rk, const char *client) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    char labels[512], esc[300];

    snprintf(labels, sizeof(labels), "client=\"%s\"",
             na_metrics_label_escape(client, esc, sizeof(esc)));
    na_metric_set(
        na_metrics_get(NA_METRIC_GAUGE, "newsalert_kafka_queue_messages",
                       "Messages and requests waiting in a Kafka client's queues.",
                       labels),
        (double)rd_kafka_outq_len(rk));
    if (rd_kafka_type(rk) != RD_KAFKA_CONSUMER || rd_kafka_assignment(rk, &parts)) {
        return;
    }
    if (!rd_kafka_position(rk, parts)) {
        for (int i = 0; i < parts->cnt; i++) {
            const rd_kafka_topic_partition_t *tp = &parts->elems[i];
            int64_t lo = -1, hi = -1;
            if (tp->offset < 0 ||
                rd_kafka_get_watermark_offsets(rk, tp->topic, tp->partition, &lo, &hi) ||
                hi < 0) {
                continue; /* nothing consumed yet, or no watermark seen yet */
            }
            snprintf(labels, sizeof(labels), "topic=\"%s\",partition=\"%d\"",
                     na_metrics_label_escape(tp->topic, esc, sizeof(esc)),
                     (int)tp->partition);
            na_metric_set(na_metrics_get(NA_METRIC_GAUGE,
                                         "newsalert_consumer_lag_messages",
                                         "Records behind the high watermark, per "
                                         "assigned partition.",
                                         labels),
                          (double)(hi > tp->offset ? hi - tp->offset : 0));
        }
    }
    rd_kafka_topic_partition_list_destroy(parts);
}

na_err_t na_daemon_reload(const char *comp, const struct na_reload_ops *ops, void *ctx) {
    char errstr[1024];
    char desc[256];
    char labels[128];
    int64_t t0 = na_mono_ms();
    na_err_t err;

    errstr[0] = '\0';
    err = ops->load(ctx, errstr, sizeof(errstr));
    snprintf(labels, sizeof(labels), "what=\"%s\",result=\"%s\"", ops->what,
             err ? "failed" : "ok");
    na_metrics_inc("newsalert_reloads_total", "Reloads asked for by SIGHUP, by outcome.",
                   labels);
    if (err) {
        if (ops->discard) {
            ops->discard(ctx);
        }
        na_log(NA_LOG_ERROR, comp, "reload_failed", "what=%s err=%s kept=old", ops->what,
               na_log_q(errstr[0] ? errstr : na_err2str(err)));
        return err;
    }
    ops->commit(ctx);
    desc[0] = '\0';
    if (ops->describe) {
        ops->describe(ctx, desc, sizeof(desc));
    }
    na_log(NA_LOG_INFO, comp, "reloaded", "what=%s ms=%lld%s%s", ops->what,
           (long long)(na_mono_ms() - t0), desc[0] ? " " : "", desc);
    return NA_OK;
}

int na_daemon_setup(const char *prog, const char *log_level,
                    const struct na_daemon_conf *dc) {
    enum na_log_level level;
    char errstr[512];
    if (na_log_level_parse(log_level, &level)) {
        fprintf(stderr, "%s: log_level: want error|warn|info|debug\n", prog);
        return 2;
    }
    na_log_set_level(level);
    if (na_daemon_conf_apply(dc, errstr, sizeof(errstr)) ||
        na_daemon_signals_install(errstr, sizeof(errstr))) {
        fprintf(stderr, "%s: %s\n", prog, errstr);
        return 1;
    }
    return 0;
}
