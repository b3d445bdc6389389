#include "producer.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "feed.h"
#include "fetch.h"
#include "newsalert/http.h"
#include "newsalert/limits.h"
#include "newsalert/log.h"
#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"
#include "seen.h"
#include "sources.h"

#define C(f) offsetof(struct na_producer_conf, f)
const struct na_conf_entry na_producer_conf_table[] = {
    {"brokers", NA_CONF_STRING, C(brokers), "127.0.0.1:9092",
     "Kafka bootstrap servers HOST:PORT[,..]", 0, 0, 0},
    {"sources", NA_CONF_STRING, C(sources), "/etc/newsalert/sources.json",
     "sources JSON file", 0, 0, 0},
    {"state_dir", NA_CONF_STRING, C(state_dir), "/var/lib/newsalert",
     "folder for the seen-state (seen.json)", 0, 0, 0},
    {"topic", NA_CONF_STRING, C(topic), NA_TOPIC_ARTICLES, "topic articles go to", 0, 0,
     0},
    {"fetch_concurrency", NA_CONF_INT, C(fetch_concurrency), "32",
     "concurrent feed transfers", 0, 1, 10000},
    {"fetch_per_host", NA_CONF_INT, C(fetch_per_host), "4",
     "concurrent connections per host", 0, 1, 1000},
    {"fetch_timeout", NA_CONF_DURATION, C(fetch_timeout_ms), "30s",
     "whole-transfer timeout per feed", 0, 100, 3600000},
    {"fetch_connect_timeout", NA_CONF_DURATION, C(fetch_connect_timeout_ms), "10s",
     "connect timeout per feed", 0, 100, 600000},
    {"fetch_max_bytes", NA_CONF_INT, C(fetch_max_bytes), "16777216",
     "largest feed body accepted (bytes)", 0, 1024, NA_MAX_FEED_BYTES},
    {"fetch_max_redirects", NA_CONF_INT, C(fetch_max_redirects), "5",
     "redirects followed per fetch", 0, 0, 20},
    {"retry_max", NA_CONF_DURATION, C(retry_max_ms), "1h",
     "longest backoff after failed fetches", 0, 1000, 86400000},
    {"flush_timeout", NA_CONF_DURATION, C(flush_timeout_ms), "30s",
     "how long shutdown waits for Kafka deliveries", 0, 0, 3600000},
    {"user_agent", NA_CONF_STRING, C(user_agent), NA_HTTP_USER_AGENT,
     "User-Agent sent to feeds", 0, 0, 0},
    {"log_level", NA_CONF_STRING, C(log_level), "info", "error|warn|info|debug", 0, 0, 0},
    {"create_topics", NA_CONF_BOOL, C(create_topics), "true",
     "create the articles topic (partitions, retention) when missing", 0, 0, 0},
    {"once", NA_CONF_BOOL, C(once), "false",
     "one round: fetch every feed once, wait for deliveries, exit", 0, 0, 0},
    NA_CONF_END,
};
#undef C

struct feed_state {
    const struct na_source *src;
    int64_t next_due_ms;
    bool in_flight;      /* a fetch is running */
    size_t pending;      /* produced messages without a delivery report */
    bool failed;         /* a delivery of the current batch failed */
    bool fetched;        /* at least one fetch completed (for --once) */
    char *new_etag;      /* validators to keep once the batch is delivered */
    char *new_lm;
    unsigned errors_in_row;
};

struct msg_ctx {
    struct feed_state *feed;
    char id[NA_SHA256_HEX_LEN + 1];
};

struct producer {
    const struct na_producer_conf *conf;
    struct na_producer_stats *stats;
    rd_kafka_t *rk;
    na_seen_t *seen;
    na_fetcher_t *fetcher;
    struct na_sources sources;
    struct feed_state *feeds;
    int64_t last_save_ms;
    bool fatal;
};

/* Per-feed counter: newsalert_producer_<what>_total{feed="<id>"}. */
static void feed_inc(const struct feed_state *fs, const char *name, const char *help) {
    char esc[256], labels[300];
    snprintf(labels, sizeof(labels), "feed=\"%s\"",
             na_metrics_label_escape(fs->src->id, esc, sizeof(esc)));
    na_metrics_inc(name, help, labels);
}

static void finish_batch(struct producer *p, struct feed_state *fs) {
    na_err_t err;
    if (fs->failed) {
        /* Something of this batch was not persisted: forget the validators so
         * the next fetch is unconditional and the item is produced again. */
        err = na_seen_set_validators(p->seen, fs->src->id, NULL, NULL);
    } else {
        err = na_seen_set_validators(p->seen, fs->src->id, fs->new_etag, fs->new_lm);
    }
    if (err) {
        na_log(NA_LOG_ERROR, "producer", "state_error", "feed=%s err=%s",
               na_log_q(fs->src->id), na_err2str(err));
    }
    free(fs->new_etag);
    free(fs->new_lm);
    fs->new_etag = fs->new_lm = NULL;
    fs->failed = false;
}

/* Delivery reports run inside rd_kafka_poll()/rd_kafka_flush(), on the main
 * thread. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque) {
    struct producer *p = opaque;
    struct msg_ctx *ctx = rkm->_private;
    struct feed_state *fs = ctx->feed;

    if (rkm->err) {
        p->stats->delivery_errors++;
        na_metrics_inc("newsalert_producer_delivery_errors_total",
                       "Articles Kafka did not confirm.", NULL);
        fs->failed = true;
        na_log(NA_LOG_ERROR, "producer", "delivery_failed",
               "feed=%s article=%s err=%s persisted=%d", na_log_q(fs->src->id), ctx->id,
               na_log_q(rd_kafka_err2str(rkm->err)), (int)rd_kafka_message_status(rkm));
        if (na_kafka_classify(rkm->err, 0) == NA_OUTCOME_FATAL) {
            p->fatal = true;
        }
    } else {
        p->stats->delivered++;
        na_metrics_inc("newsalert_producer_articles_delivered_total",
                       "Articles confirmed by Kafka.", NULL);
        if (na_seen_add(p->seen, fs->src->id, ctx->id)) {
            fs->failed = true;
        }
        na_log(NA_LOG_DEBUG, "producer", "delivered", "feed=%s article=%s partition=%d "
               "offset=%lld", na_log_q(fs->src->id), ctx->id, (int)rkm->partition,
               (long long)rkm->offset);
    }
    if (--fs->pending == 0) {
        finish_batch(p, fs);
    }
    free(ctx);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    struct producer *p = opaque;
    char fatal[512];
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        na_log(NA_LOG_ERROR, "producer", "kafka_fatal", "err=%s", na_log_q(fatal));
        p->fatal = true;
        return;
    }
    na_log(NA_LOG_WARN, "producer", "kafka_error", "err=%s reason=%s",
           na_log_q(rd_kafka_err2name((rd_kafka_resp_err_t)err)), na_log_q(reason));
}

/* Message timestamp per DESIGN.md: the published time when known, never
 * later than the fetch, never so old that retention would delete it before
 * anyone consumed it. */
static int64_t message_ts_ms(const struct na_article *a) {
    int64_t fetched_ms = a->fetched_at * 1000;
    int64_t floor_ms = fetched_ms - (NA_ARTICLES_RETENTION_MS - 24LL * 3600 * 1000);
    int64_t ts = a->published_at == NA_TIME_UNKNOWN ? fetched_ms : a->published_at * 1000;
    if (ts > fetched_ms) {
        ts = fetched_ms;
    }
    if (ts < floor_ms) {
        ts = floor_ms;
    }
    return ts;
}

static na_err_t produce_article(struct producer *p, struct feed_state *fs,
                                const struct na_article *a) {
    char *json = na_article_to_json(a);
    rd_kafka_headers_t *hdrs = NULL;
    struct msg_ctx *ctx = NULL;
    rd_kafka_resp_err_t kerr;

    if (!json || !(ctx = calloc(1, sizeof(*ctx)))) {
        free(json);
        return NA_ERR_NOMEM;
    }
    ctx->feed = fs;
    memcpy(ctx->id, a->id, sizeof(ctx->id));
    hdrs = rd_kafka_headers_new(3);
    rd_kafka_header_add(hdrs, "content-type", -1, NA_ARTICLE_CONTENT_TYPE, -1);
    rd_kafka_header_add(hdrs, "schema", -1, NA_ARTICLE_SCHEMA, -1);
    rd_kafka_header_add(hdrs, "source", -1, fs->src->id, -1);
    for (;;) {
        /* F_FREE: librdkafka frees json (malloc'd by jansson) once sent; on
         * failure ownership stays with us, as does the headers list. */
        kerr = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(p->conf->topic),
                                 RD_KAFKA_V_KEY(a->id, NA_SHA256_HEX_LEN),
                                 RD_KAFKA_V_VALUE(json, strlen(json)),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                                 RD_KAFKA_V_TIMESTAMP(message_ts_ms(a)),
                                 RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(ctx),
                                 RD_KAFKA_V_END);
        if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            break;
        }
        rd_kafka_poll(p->rk, 100);
    }
    if (kerr) {
        na_log(NA_LOG_ERROR, "producer", "produce_failed", "feed=%s article=%s err=%s",
               na_log_q(fs->src->id), a->id, na_log_q(rd_kafka_err2str(kerr)));
        rd_kafka_headers_destroy(hdrs);
        free(json);
        free(ctx);
        return NA_ERR_KAFKA;
    }
    fs->pending++;
    p->stats->produced++;
    na_metrics_inc("newsalert_producer_articles_produced_total",
                   "Articles handed to Kafka.", NULL);
    return NA_OK;
}

static int64_t jitter(int64_t ms, int pct) {
    if (ms <= 0) {
        return 0;
    }
    int64_t span = ms * pct / 100;
    return ms - span + (span ? (int64_t)(random() % (2 * span + 1)) : 0);
}

static void schedule_error(struct producer *p, struct feed_state *fs, const char *retry_after) {
    int64_t delay = 30000;
    for (unsigned i = 0; i < fs->errors_in_row && delay < p->conf->retry_max_ms; i++) {
        delay *= 2;
    }
    if (delay > p->conf->retry_max_ms) {
        delay = p->conf->retry_max_ms;
    }
    delay = jitter(delay, 20);
    int64_t ra = na_http_retry_after_ms(retry_after, na_now_ms() / 1000);
    if (ra > delay) {
        delay = ra;
    }
    fs->errors_in_row++;
    fs->next_due_ms = na_mono_ms() + delay;
}

static void handle_items(struct producer *p, struct feed_state *fs, struct na_feed *doc) {
    int64_t now_s = na_now_ms() / 1000;
    for (size_t i = 0; i < doc->items_cnt; i++) {
        struct na_article *a = &doc->items[i];
        bool dup = false;
        p->stats->items++;
        free(a->source_id);
        free(a->source_name);
        free(a->source_feed_url);
        a->source_id = na_strdup(fs->src->id);
        a->source_name = na_strdup(fs->src->name);
        a->source_feed_url = na_strdup(fs->src->url);
        a->fetched_at = now_s;
        na_article_set_id(a);
        for (size_t j = 0; j < i && !dup; j++) {
            dup = !strcmp(doc->items[j].id, a->id);
        }
        if (dup || na_seen_has(p->seen, fs->src->id, a->id)) {
            p->stats->skipped_seen++;
            continue;
        }
        if (produce_article(p, fs, a)) {
            fs->failed = true;
        }
    }
}

static void on_fetched(struct na_fetch_res *res, void *opaque) {
    struct producer *p = opaque;
    struct feed_state *fs = res->opaque;
    struct na_feed doc;
    char errstr[512];
    na_outcome_t outcome = na_http_classify(res->code, res->status);

    fs->in_flight = false;
    fs->fetched = true;
    p->stats->fetches++;
    feed_inc(fs, "newsalert_producer_fetches_total", "Feed fetches completed.");
    if (res->status == 304) {
        p->stats->not_modified++;
        feed_inc(fs, "newsalert_producer_not_modified_total", "Fetches answered 304.");
        fs->errors_in_row = 0;
        fs->next_due_ms = na_mono_ms() + jitter(fs->src->interval_ms, 10);
        na_log(NA_LOG_DEBUG, "fetch", "not_modified", "feed=%s ms=%lld",
               na_log_q(fs->src->id), (long long)res->elapsed_ms);
        return;
    }
    if (outcome != NA_OUTCOME_OK || res->too_large) {
        p->stats->fetch_errors++;
        feed_inc(fs, "newsalert_producer_fetch_errors_total", "Failed fetches.");
        schedule_error(p, fs, res->retry_after);
        na_log(NA_LOG_WARN, "fetch", "fetch_error",
               "feed=%s url=%s status=%ld err=%s outcome=%s retry_in_ms=%lld",
               na_log_q(fs->src->id), na_log_q(fs->src->url), res->status,
               na_log_q(res->errstr[0] ? res->errstr : "HTTP error status"),
               na_outcome2str(res->too_large ? NA_OUTCOME_DROP : outcome),
               (long long)(fs->next_due_ms - na_mono_ms()));
        return;
    }
    na_feed_init(&doc);
    na_err_t err = na_feed_parse(res->body, res->body_len, res->effective_url, &doc, errstr,
                                 sizeof(errstr));
    if (err) {
        p->stats->parse_errors++;
        feed_inc(fs, "newsalert_producer_parse_errors_total", "Feed documents that did "
                 "not parse.");
        schedule_error(p, fs, NULL);
        na_log(NA_LOG_WARN, "fetch", "feed_parse_error", "feed=%s url=%s err=%s",
               na_log_q(fs->src->id), na_log_q(fs->src->url), na_log_q(errstr));
        return;
    }
    fs->errors_in_row = 0;
    fs->next_due_ms = na_mono_ms() + jitter(fs->src->interval_ms, 10);
    {
        char esc[256], labels[300];
        snprintf(labels, sizeof(labels), "feed=\"%s\"",
                 na_metrics_label_escape(fs->src->id, esc, sizeof(esc)));
        na_metric_set(na_metrics_get(NA_METRIC_GAUGE,
                                     "newsalert_producer_feed_last_success_seconds",
                                     "Unix time of the last successful fetch.", labels),
                      (double)na_now_ms() / 1000.0);
    }
    fs->new_etag = na_strdup(res->etag);
    fs->new_lm = na_strdup(res->last_modified);
    handle_items(p, fs, &doc);
    na_log(NA_LOG_INFO, "fetch", "fetched",
           "feed=%s format=%s status=%ld bytes=%zu items=%zu new=%zu dropped=%zu ms=%lld",
           na_log_q(fs->src->id), doc.format ? doc.format : "?", res->status, res->body_len,
           doc.items_cnt, fs->pending, doc.items_dropped, (long long)res->elapsed_ms);
    if (fs->pending == 0) {
        finish_batch(p, fs);
    }
    na_feed_cleanup(&doc);
}

static void start_due_fetches(struct producer *p) {
    int64_t now = na_mono_ms();
    for (size_t i = 0; i < p->sources.cnt; i++) {
        struct feed_state *fs = &p->feeds[i];
        if (fs->in_flight || fs->pending || now < fs->next_due_ms ||
            (p->conf->once && fs->fetched)) {
            continue;
        }
        struct na_fetch_req req = {
            .url = fs->src->url,
            .headers = fs->src->headers,
            .headers_cnt = fs->src->headers_cnt,
            .etag = na_seen_validator(p->seen, fs->src->id, "etag"),
            .last_modified = na_seen_validator(p->seen, fs->src->id, "last_modified"),
            .opaque = fs,
        };
        if (na_fetcher_add(p->fetcher, &req)) {
            fs->next_due_ms = now + 1000;
            continue;
        }
        fs->in_flight = true;
    }
}

static bool round_done(const struct producer *p) {
    for (size_t i = 0; i < p->sources.cnt; i++) {
        if (!p->feeds[i].fetched || p->feeds[i].in_flight || p->feeds[i].pending) {
            return false;
        }
    }
    return true;
}

static void save_state(struct producer *p) {
    char errstr[512];
    if (na_seen_save(p->seen, errstr, sizeof(errstr))) {
        na_log(NA_LOG_ERROR, "producer", "state_save_failed", "err=%s", na_log_q(errstr));
    }
    p->last_save_ms = na_mono_ms();
}

na_err_t na_producer_run(const struct na_producer_conf *conf, volatile sig_atomic_t *running,
                         struct na_producer_stats *stats, char *errstr, size_t errstr_size) {
    struct producer p;
    rd_kafka_conf_t *kconf = NULL;
    char path[4096];
    na_err_t err = NA_OK;

    memset(&p, 0, sizeof(p));
    memset(stats, 0, sizeof(*stats));
    p.conf = conf;
    p.stats = stats;
    srandom((unsigned)na_now_ms());

    if ((err = na_sources_load_file(conf->sources, &p.sources, errstr, errstr_size))) {
        goto out;
    }
    if (mkdir(conf->state_dir, 0700) && errno != EEXIST) {
        snprintf(errstr, errstr_size, "state_dir %s: %s", conf->state_dir, strerror(errno));
        err = NA_ERR_IO;
        goto out;
    }
    snprintf(path, sizeof(path), "%s/seen.json", conf->state_dir);
    if ((err = na_seen_load(path, &p.seen, errstr, errstr_size))) {
        goto out;
    }
    p.feeds = calloc(p.sources.cnt + 1, sizeof(*p.feeds));
    if (!p.feeds) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    int64_t now = na_mono_ms();
    for (size_t i = 0; i < p.sources.cnt; i++) {
        p.feeds[i].src = &p.sources.v[i];
        p.feeds[i].next_due_ms = now;
    }
    struct na_fetch_opts fopts = {
        .max_total = conf->fetch_concurrency,
        .max_per_host = conf->fetch_per_host,
        .connect_timeout_ms = conf->fetch_connect_timeout_ms,
        .timeout_ms = conf->fetch_timeout_ms,
        .max_redirects = conf->fetch_max_redirects,
        .max_bytes = (size_t)conf->fetch_max_bytes,
        .user_agent = conf->user_agent,
    };
    if (!(p.fetcher = na_fetcher_new(&fopts))) {
        err = NA_ERR_NOMEM;
        goto out;
    }

    if (!(kconf = na_kafka_conf_new(NULL, NULL, errstr, errstr_size))) {
        err = NA_ERR_CONFIG;
        goto out;
    }
    /* Our delivery guarantees first, then the user's -X (which may tune them). */
    if ((err = na_kafka_conf_set(kconf, "bootstrap.servers", conf->brokers, errstr,
                                 errstr_size)) ||
        (err = na_kafka_conf_set(kconf, "client.id", "newsalert-producer", errstr,
                                 errstr_size)) ||
        (err = na_kafka_conf_set(kconf, "enable.idempotence", "true", errstr,
                                 errstr_size)) ||
        (err = na_kafka_conf_set(kconf, "acks", "all", errstr, errstr_size)) ||
        (err = na_kafka_conf_set(kconf, "linger.ms", "5", errstr, errstr_size)) ||
        (err = na_kafka_conf_set(kconf, "compression.type", "lz4", errstr, errstr_size))) {
        goto out;
    }
    for (size_t i = 0; i < conf->props.cnt; i++) {
        char key[256];
        const char *eq = strchr(conf->props.kv[i], '=');
        snprintf(key, sizeof(key), "%.*s", (int)(eq - conf->props.kv[i]), conf->props.kv[i]);
        if ((err = na_kafka_conf_set(kconf, key, eq + 1, errstr, errstr_size))) {
            goto out;
        }
    }
    rd_kafka_conf_set_dr_msg_cb(kconf, on_delivery);
    rd_kafka_conf_set_error_cb(kconf, on_error);
    rd_kafka_conf_set_opaque(kconf, &p);
    p.rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, errstr_size);
    if (!p.rk) {
        err = NA_ERR_KAFKA;
        goto out;
    }
    kconf = NULL; /* taken by rd_kafka_new() */
    if (conf->create_topics) {
        struct na_topic_spec spec = na_kafka_topic_articles(conf->topic);
        char terr[512];
        if (na_kafka_ensure_topics(p.rk, &spec, 1, 10000, terr, sizeof(terr))) {
            na_log(NA_LOG_WARN, "producer", "topic_check_failed", "err=%s", na_log_q(terr));
        }
    }
    na_log(NA_LOG_INFO, "producer", "started", "sources=%zu topic=%s once=%d",
           p.sources.cnt, na_log_q(conf->topic), conf->once);

    while (*running && !p.fatal) {
        start_due_fetches(&p);
        na_fetcher_run(p.fetcher, na_fetcher_active(p.fetcher) ? 100 : 0, on_fetched, &p);
        rd_kafka_poll(p.rk, na_fetcher_active(p.fetcher) ? 0 : 100);
        if (na_mono_ms() - p.last_save_ms > 1000) {
            save_state(&p);
        }
        if (conf->once && round_done(&p)) {
            break;
        }
    }

    /* Shutdown: flush -> check the out queue -> save -> destroy. */
    rd_kafka_resp_err_t ferr = rd_kafka_flush(p.rk, (int)conf->flush_timeout_ms);
    if (ferr || rd_kafka_outq_len(p.rk) > 0) {
        snprintf(errstr, errstr_size, "%d messages not delivered within %lld ms",
                 rd_kafka_outq_len(p.rk), conf->flush_timeout_ms);
        err = NA_ERR_TIMEOUT;
    }
    save_state(&p);
    if (!err && p.fatal) {
        snprintf(errstr, errstr_size, "fatal Kafka error (see log)");
        err = NA_ERR_KAFKA;
    }
    if (!err && stats->delivery_errors) {
        snprintf(errstr, errstr_size, "%llu articles were not delivered (they will be "
                 "produced again on the next run)", stats->delivery_errors);
        err = NA_ERR_KAFKA;
    }
    na_log(NA_LOG_INFO, "producer", "summary",
           "fetches=%llu fetch_errors=%llu not_modified=%llu parse_errors=%llu items=%llu "
           "skipped_seen=%llu produced=%llu delivered=%llu delivery_errors=%llu",
           stats->fetches, stats->fetch_errors, stats->not_modified, stats->parse_errors,
           stats->items, stats->skipped_seen, stats->produced, stats->delivered,
           stats->delivery_errors);
out:
    if (p.rk) {
        if (rd_kafka_outq_len(p.rk) > 0) {
            /* Messages still queued after the deadline: their contexts are
             * freed by the purge's delivery reports. */
            rd_kafka_purge(p.rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_poll(p.rk, 0);
        }
        rd_kafka_destroy(p.rk);
    }
    if (kconf) {
        rd_kafka_conf_destroy(kconf);
    }
    na_fetcher_destroy(p.fetcher);
    for (size_t i = 0; p.feeds && i < p.sources.cnt; i++) {
        free(p.feeds[i].new_etag);
        free(p.feeds[i].new_lm);
    }
    free(p.feeds);
    na_seen_destroy(p.seen);
    na_sources_cleanup(&p.sources);
    return err;
}
