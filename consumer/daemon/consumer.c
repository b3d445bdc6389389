#include "consumer.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "deliver.h"
#include "format.h"
#include "consumer_reload.h"
#include "ledger.h"
#include "newsalert/article.h"
#include "pipeline.h"
#include "newsalert/daemon.h"
#include "newsalert/fault.h"
#include "newsalert/http.h"
#include "newsalert/httpd.h"
#include "newsalert/limits.h"
#include "newsalert/log.h"
#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"
#include "rules.h"
#include "story.h"
#include "tracker.h"

/* A hand-over ("pending" in the ledger) holds for deliver_timeout plus this
 * (ms): the transfer in flight ends by then, and its outcome is written. */
#define NA_CONSUMER_HANDOVER_SLACK_MS 10000
/* How long a revoke waits for its hand-over marks to be confirmed (ms). */
#define NA_CONSUMER_HANDOVER_WRITE_MS 5000
/* How often the ledger forgets alerts past its horizon. */
#define NA_CONSUMER_PRUNE_MS 60000
/* Backoff of a refused dead-letter or ledger write (doubles, with jitter). */
#define NA_CONSUMER_RETRY_MIN_MS 250
#define NA_CONSUMER_RETRY_MAX_MS 30000

#define C(f) offsetof(struct na_consumer_conf, f)
const struct na_conf_entry na_consumer_conf_table[] = {
    {"brokers", NA_CONF_STRING, C(brokers), "127.0.0.1:9092",
     "Kafka bootstrap servers HOST:PORT[,..]", 0, 0, 0},
    {"group_id", NA_CONF_STRING, C(group_id), "newsalert-consumer", "consumer group id",
     0, 0, 0},
    {"topic", NA_CONF_STRING, C(topic), NA_TOPIC_ARTICLES, "articles topic", 0, 0, 0},
    {"dlq_topic", NA_CONF_STRING, C(dlq_topic), NA_TOPIC_DLQ,
     "dead-letter topic (poison records, undeliverable alerts)", 0, 0, 0},
    {"rules", NA_CONF_STRING, C(rules), "/etc/newsalert/rules.json", "rules JSON file", 0,
     0, 0},
    {"webhook", NA_CONF_STRING, C(webhook), NULL,
     "one-route shortcut: post every alert to this URL", NA_CONF_SECRET, 0, 0},
    {"webhook_format", NA_CONF_STRING, C(webhook_format), "json",
     "format of --webhook: json|slack|mattermost|discord|teams|googlechat", 0, 0, 0},
    {"deliver_concurrency", NA_CONF_INT, C(deliver_concurrency), "16",
     "webhook requests in flight at once", 0, 1, 1000},
    {"deliver_timeout", NA_CONF_DURATION, C(deliver_timeout_ms), "15s",
     "timeout of one webhook request", 0, 100, 600000},
    {"deliver_max_attempts", NA_CONF_INT, C(deliver_max_attempts), "10",
     "attempts per alert before it is dead-lettered", 0, 1, 1000},
    {"deliver_backoff", NA_CONF_DURATION, C(deliver_backoff_ms), "1s",
     "first retry delay (doubles, with jitter)", 0, 1, 3600000},
    {"deliver_backoff_max", NA_CONF_DURATION, C(deliver_backoff_max_ms), "5m",
     "longest retry delay", 0, 1, 86400000},
    {"max_pending", NA_CONF_INT, C(max_pending), "1000",
     "alerts queued or in flight per route before the consumer pauses its partitions", 0,
     1, 1000000},
    {"ledger", NA_CONF_BOOL, C(ledger), "true",
     "record delivered alerts in the ledger topic and never send one twice", 0, 0, 0},
    {"ledger_topic", NA_CONF_STRING, C(ledger_topic), NA_TOPIC_ALERTS,
     "compacted alert ledger topic (key = alert id)", 0, 0, 0},
    {"stories", NA_CONF_BOOL, C(stories), "true",
     "group articles into stories: one alert per story and topic", 0, 0, 0},
    {"story_window", NA_CONF_DURATION, C(story_window_ms), "3d",
     "how long a story stays open after its newest article", 0, 60000, 31536000000LL},
    {"ledger_timeout", NA_CONF_DURATION, C(ledger_timeout_ms), "60s",
     "how long start-up may take to read the ledger to its end", 0, 100, 3600000},
    {"ledger_horizon", NA_CONF_DURATION, C(ledger_horizon_ms), "30d",
     "the ledger forgets alerts older than this, and records older than this (by the "
     "later of fetch time and record timestamp) raise no alert (0: keep every alert); at "
     "least story_window",
     0, 0, 0},
    {"drain_timeout", NA_CONF_DURATION, C(drain_timeout_ms), "30s",
     "how long SIGTERM waits for in-flight alerts", 0, 0, 3600000},
    {"park_after", NA_CONF_DURATION, C(park_after_ms), "60s",
     "a route whose requests have failed for this long is parked: its alerts wait in "
     "retry_topic, in order, and no other route waits for it (0: never park)",
     0, 0, 86400000},
    {"park_max_age", NA_CONF_DURATION, C(park_max_age_ms), "24h",
     "a parked alert older than this goes to the dead-letter topic instead", 0, 1000,
     2592000000LL},
    {"retry_topic", NA_CONF_STRING, C(retry_topic), NA_TOPIC_ALERTS_RETRY,
     "topic where the alerts of parked routes wait (key = route)", 0, 0, 0},
    {"revoke_timeout", NA_CONF_DURATION, C(revoke_timeout_ms), "10s",
     "how long a consumer that gives partitions up waits for their alerts in flight "
     "before it hands them over (docs/delivery.md)",
     0, 0, 120000},
    {"write_stall", NA_CONF_DURATION, C(write_stall_ms), "60s",
     "how long dead-letter or ledger writes may keep failing before /readyz says not "
     "ready (they are retried meanwhile, consumption paused)",
     0, 1000, 86400000},
    {"log_level", NA_CONF_STRING, C(log_level), "info", "error|warn|info|debug", 0, 0, 0},
    {"print", NA_CONF_BOOL, C(print), "false", "print each alert on stdout", 0, 0, 0},
    {"create_topics", NA_CONF_BOOL, C(create_topics), "true",
     "create the articles and dead-letter topics when missing", 0, 0, 0},
    {"exit_eof", NA_CONF_BOOL, C(exit_eof), "false",
     "exit when all partitions are consumed and all alerts finished", 0, 0, 0},
    NA_DAEMON_CONF_ENTRIES(struct na_consumer_conf, daemon),
    NA_CONF_END,
};
#undef C

struct consumer {
    const struct na_consumer_conf *conf;
    struct na_consumer_stats *stats;
    FILE *out;
    rd_kafka_t *rk;  /* the group consumer */
    rd_kafka_t *dlq; /* producer for news.dlq */
    na_rules_t *rules;
    na_deliver_t *deliver;
    na_tracker_t *tracker;
    na_ledger_t *ledger;        /* NULL with ledger=false */
    na_stories_t *stories;      /* NULL with stories=false */
    na_metric_t **route_gauges; /* newsalert_consumer_route_queue per route */
    bool paused;
    bool fatal;
    int32_t *eof; /* partitions at their end (exit_eof) */
    size_t eof_cnt;
    json_t *recent; /* the newest alerts for the status page, newest first */
    const struct na_routes *routes; /* conf->routes, or owned after a reload */
    struct na_routes owned;         /* routes read again on SIGHUP, in use */
    struct na_routes staged;        /* read on SIGHUP, waiting for a quiet moment */
    bool swap_pending;
    struct waiter *waiters; /* records waiting for another record's alert */
    struct retry *retries;  /* writes and records to try again, unordered */
    size_t retries_cnt;
    size_t stuck;          /* records that could not even be scheduled again (no
                              memory): never stored, read again after a restart */
    struct job_ctx *jobs;  /* every delivery job not ended (see job_ctx) */
    size_t awaiting;       /* jobs waiting for another member's hand-over */
    size_t handed_over;    /* jobs of partitions given up, still in flight here */
    bool ledger_following; /* the ledger is loaded: records now are live */
    /* Parked routes (park_after): per route of c->routes, and the reader of
     * retry_topic with its own offsets; NULL without parking. */
    bool *parked;
    size_t parked_cnt;
    int64_t unpark_checked_ms;
    rd_kafka_t *retry_rk;
    na_tracker_t *rtracker;
    int32_t retry_parts;
    size_t *rinflight;              /* per retry partition: jobs not ended */
    const struct na_route **rroute; /* per retry partition: its last job's route */
    bool *rpaused;                  /* per retry partition */
    bool closing;                   /* the final revoke: no waiting */
};

/* A record whose alert to a route is already on its way for another record
 * (the same record read again after a rebalance, whose first reading was
 * revoked; or a later article of the story): it must not be finished, and
 * its offset stored, before that delivery ends. */
struct waiter {
    const struct na_route *route;
    char alert_id[NA_SHA256_HEX_LEN + 1];
    struct na_tracker_entry *entry;
    struct waiter *next;
};

/* ---- work that must be tried again ----
 *
 * A dead-letter or ledger record the broker refused, or a record whose
 * processing ran out of memory, keeps its article's entry unfinished (its
 * offset is not stored) and is tried again with backoff until it succeeds
 * (or the daemon stops: then the record is read again after the restart).
 * Meanwhile the consumer pauses its partitions, so memory does not grow
 * with records it could not commit anyway, and once the oldest failure is
 * older than write_stall, /readyz says so. */

enum retry_kind { RETRY_DLQ, RETRY_LEDGER, RETRY_RECORD, RETRY_PARK };

static const char *const retry_kind_names[] = {"dlq", "ledger", "record", "park"};

/* The first member of each thing that can be retried (struct dlq_ctx,
 * struct job_ctx, struct reprocess), so that a retry is its container. */
struct retry {
    enum retry_kind kind;
    int attempts;
    int64_t due_ms;   /* na_mono_ms() */
    int64_t since_ms; /* when it first failed */
    struct retry *next;
};

/* One dead-letter record: its own copy of what it writes, so that it can
 * be produced again. Standalone (a poison record, a render failure: its
 * unit of @p entry is done on confirmation) or inside a job_ctx (a failed
 * delivery: the job ends on confirmation). */
struct dlq_ctx {
    struct retry retry;
    struct na_tracker_entry *entry;
    struct job_ctx *jc; /* NULL when standalone */
    char key[NA_SHA256_HEX_LEN * 2 + 1];
    size_t key_len;
    char *value;
    size_t len;
    const char *stage;        /* static */
    const char *source_topic; /* the topic the record came from (borrowed) */
    char reason[256];
    char route[128]; /* "" for none */
    int32_t partition;
    int64_t offset;
};

/* One (alert, route) on its way: delivered, then recorded in the ledger
 * (or dead-lettered), then its unit of the article's entry is done and the
 * records waiting for it are released. A "linked" job only writes the
 * ledger record of a story follow-up. */
struct job_ctx {
    struct retry retry; /* RETRY_LEDGER */
    struct na_tracker_entry *entry;
    int32_t partition;
    int64_t offset;
    char alert_id[NA_SHA256_HEX_LEN + 1];
    const struct na_route *route;
    char *alert_json; /* alert/v1 for the ledger record */
    bool linked;
    char outcome[16]; /* the ledger outcome, for a retried write */
    struct na_ledger_delivery del;
    struct dlq_ctx dlq; /* a failed delivery's dead-letter record */
    /* Delivery jobs (not linked ones) are registered in consumer.jobs, so
     * that a revoke finds those of its partitions. */
    bool registered;
    bool in_deliverer; /* submitted, not ended there yet */
    struct job_ctx *jprev, *jnext;
    /* Another member holds this alert ("pending" in the ledger): the job
     * waits, with its body and digest item, until the ledger says how that
     * ended or until await_until_ms (Unix ms), and only then is submitted. */
    bool awaiting;
    int64_t await_until_ms;
    char *body;
    size_t len;
    struct na_digest_item *item;
    /* Its partition was given up while it was in flight: "pending" was
     * written; its outcome (or "released") is written when it ends here. */
    bool handed_over;
    /* Read back from retry_topic (its entry belongs to rtracker), and when
     * it was first parked (Unix ms; 0: never). */
    bool from_retry;
    int32_t rpart; /* from_retry: its retry_topic partition */
    int64_t parked_at_ms;
};

/* A record whose processing ran out of memory: processed again later. */
struct reprocess {
    struct retry retry;
    rd_kafka_message_t *rkm;
    struct na_tracker_entry *entry;
};

static void job_register(struct consumer *c, struct job_ctx *jc) {
    jc->registered = true;
    jc->jprev = NULL;
    jc->jnext = c->jobs;
    if (c->jobs) {
        c->jobs->jprev = jc;
    }
    c->jobs = jc;
}

/* Free @p jc (NULL-safe), leaving the registry and the counts. */
static void job_ctx_free(struct consumer *c, struct job_ctx *jc) {
    if (!jc) {
        return;
    }
    if (jc->registered) {
        if (jc->jprev) {
            jc->jprev->jnext = jc->jnext;
        } else {
            c->jobs = jc->jnext;
        }
        if (jc->jnext) {
            jc->jnext->jprev = jc->jprev;
        }
    }
    c->awaiting -= jc->awaiting;
    c->handed_over -= jc->handed_over;
    if (jc->from_retry && c->rinflight && jc->rpart >= 0 && jc->rpart < c->retry_parts) {
        c->rinflight[jc->rpart]--;
    }
    free(jc->alert_json);
    free(jc->dlq.value);
    free(jc->body);
    na_digest_item_free(jc->item);
    free(jc);
}

static void schedule_retry(struct consumer *c, struct retry *r, const char *why) {
    int64_t now = na_mono_ms();
    int64_t delay = NA_CONSUMER_RETRY_MIN_MS;
    char labels[64];
    for (int i = 0; i < r->attempts && delay < NA_CONSUMER_RETRY_MAX_MS; i++) {
        delay *= 2;
    }
    if (delay > NA_CONSUMER_RETRY_MAX_MS) {
        delay = NA_CONSUMER_RETRY_MAX_MS;
    }
    delay = delay / 2 + (int64_t)(random() % (delay / 2 + 1));
    if (!r->attempts) {
        r->since_ms = now;
    }
    r->attempts++;
    r->due_ms = now + delay;
    r->next = c->retries;
    c->retries = r;
    c->retries_cnt++;
    snprintf(labels, sizeof(labels), "kind=\"%s\"", retry_kind_names[r->kind]);
    na_metrics_inc("newsalert_consumer_retries_total",
                   "Dead-letter or ledger writes, or record processing, tried again.",
                   labels);
    na_log(NA_LOG_WARN, "consumer", "retry_scheduled",
           "kind=%s attempt=%d retry_in_ms=%lld reason=%s", retry_kind_names[r->kind],
           r->attempts, (long long)delay, na_log_q(why));
}

/* Every job of @p route and @p alert_id that waits for another's delivery
 * is done now that it ended (delivered and recorded, or dead-lettered). */
static void release_waiters(struct consumer *c, const struct na_route *route,
                            const char *alert_id) {
    struct waiter **pp = &c->waiters;
    while (*pp) {
        struct waiter *w = *pp;
        if (w->route == route && !strcmp(w->alert_id, alert_id)) {
            *pp = w->next;
            na_tracker_done(c->tracker, w->entry);
            free(w);
            continue;
        }
        pp = &w->next;
    }
}

/* The job ended for good: its unit of the entry is done. */
static void job_end(struct consumer *c, struct job_ctx *jc) {
    if (!jc->linked) {
        release_waiters(c, jc->route, jc->alert_id);
    }
    na_tracker_done(c->tracker, jc->entry);
    job_ctx_free(c, jc);
}

static void ledger_write(struct consumer *c, struct job_ctx *jc);
static void park_produce(struct consumer *c, struct job_ctx *jc);
static void park_job(struct consumer *c, struct job_ctx *jc);
static bool main_job(void *opaque, void *ctx);

/* ---- dead letters ---- */

static void dlq_produce(struct consumer *c, struct dlq_ctx *ctx) {
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(6);
    char num[32];
    rd_kafka_resp_err_t kerr;

    rd_kafka_header_add(hdrs, "error.stage", -1, ctx->stage, -1);
    rd_kafka_header_add(hdrs, "error.reason", -1, ctx->reason, -1);
    rd_kafka_header_add(hdrs, "source.topic", -1,
                        ctx->source_topic ? ctx->source_topic : c->conf->topic, -1);
    snprintf(num, sizeof(num), "%d", (int)ctx->partition);
    rd_kafka_header_add(hdrs, "source.partition", -1, num, -1);
    snprintf(num, sizeof(num), "%lld", (long long)ctx->offset);
    rd_kafka_header_add(hdrs, "source.offset", -1, num, -1);
    if (*ctx->route) {
        rd_kafka_header_add(hdrs, "route", -1, ctx->route, -1);
    }
    do {
        /* F_COPY: the context keeps its value for a retry. */
        kerr = na_fault("dlq_produce")
                   ? RD_KAFKA_RESP_ERR__FAIL
                   : rd_kafka_producev(c->dlq, RD_KAFKA_V_TOPIC(c->conf->dlq_topic),
                                       RD_KAFKA_V_KEY(ctx->key, ctx->key_len),
                                       RD_KAFKA_V_VALUE(ctx->value, ctx->len),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(ctx),
                                       RD_KAFKA_V_END);
        if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(c->dlq, 100);
        }
    } while (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    if (kerr) {
        na_log(NA_LOG_ERROR, "consumer", "dlq_failed", "err=%s",
               na_log_q(rd_kafka_err2str(kerr)));
        rd_kafka_headers_destroy(hdrs);
        schedule_retry(c, &ctx->retry, rd_kafka_err2str(kerr));
    }
}

static void on_parked(struct consumer *c, struct job_ctx *jc, rd_kafka_resp_err_t err);

/* Runs inside rd_kafka_poll(c->dlq) on the main thread: a dead-letter copy,
 * or a parked alert (the same producer writes both). */
static void on_dlq_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque) {
    struct consumer *c = opaque;
    struct dlq_ctx *ctx = rkm->_private;
    rd_kafka_resp_err_t err = rkm->err;
    (void)rk;
    if (ctx->retry.kind == RETRY_PARK) {
        on_parked(c, (struct job_ctx *)rkm->_private, err);
        return;
    }
    if (!err && na_fault("dlq_delivery")) {
        err = RD_KAFKA_RESP_ERR__FAIL;
    }
    if (err) {
        /* Unfinished until the record is written: tried again. */
        na_log(NA_LOG_ERROR, "consumer", "dlq_failed", "err=%s",
               na_log_q(rd_kafka_err2str(err)));
        schedule_retry(c, &ctx->retry, rd_kafka_err2str(err));
        return;
    }
    c->stats->dlq_produced++;
    if (ctx->jc && ctx->jc->handed_over && c->ledger) {
        /* The member that took the partition waits for this outcome. */
        struct job_ctx *jc = ctx->jc;
        snprintf(jc->outcome, sizeof(jc->outcome), "dead_lettered");
        jc->del.at_ms = na_now_ms();
        ledger_write(c, jc);
        return;
    }
    if (ctx->jc) {
        job_end(c, ctx->jc);
        return;
    }
    na_tracker_done(c->tracker, ctx->entry);
    free(ctx->value);
    free(ctx);
}

static void dlq_fill(struct dlq_ctx *ctx, const void *key, size_t key_len,
                     const char *stage, const char *reason, const char *route,
                     int32_t partition, int64_t offset) {
    ctx->retry.kind = RETRY_DLQ;
    ctx->key_len = key_len < sizeof(ctx->key) ? key_len : sizeof(ctx->key);
    if (key) {
        memcpy(ctx->key, key, ctx->key_len);
    } else {
        ctx->key_len = 0;
    }
    ctx->stage = stage;
    snprintf(ctx->reason, sizeof(ctx->reason), "%s", reason ? reason : "");
    snprintf(ctx->route, sizeof(ctx->route), "%s", route ? route : "");
    ctx->partition = partition;
    ctx->offset = offset;
}

/* Copy @p value to the DLQ with error headers; one unit of @p entry is done
 * when the broker confirmed the copy. @returns NA_ERR_NOMEM (nothing taken,
 * the caller processes the record again later) or NA_OK. */
static na_err_t dead_letter(struct consumer *c, struct na_tracker_entry *entry,
                            const void *key, size_t key_len, const void *value,
                            size_t len, const char *stage, const char *reason,
                            const char *route, const char *source_topic,
                            int32_t partition, int64_t offset) {
    struct dlq_ctx *ctx = na_fault("dlq_alloc") ? NULL : calloc(1, sizeof(*ctx));
    if (!ctx || (len && !(ctx->value = malloc(len)))) {
        free(ctx);
        na_log(NA_LOG_ERROR, "consumer", "dlq_failed", "partition=%d offset=%lld err=%s",
               (int)partition, (long long)offset, na_log_q(na_err2str(NA_ERR_NOMEM)));
        return NA_ERR_NOMEM;
    }
    if (len) {
        memcpy(ctx->value, value, len);
    }
    ctx->len = len;
    ctx->entry = entry;
    dlq_fill(ctx, key, key_len, stage, reason, route, partition, offset);
    ctx->source_topic = source_topic;
    entry->pending++;
    dlq_produce(c, ctx);
    return NA_OK;
}

/* ---- alerts ---- */

static void route_inc(const char *name, const char *help, const char *route) {
    char esc[256], labels[300];
    snprintf(labels, sizeof(labels), "route=\"%s\"",
             na_metrics_label_escape(route, esc, sizeof(esc)));
    na_metrics_inc(name, help, labels);
}

/* @returns NA_ERR_NOMEM when the waiter could not be made (the caller
 * processes the record again later). */
static na_err_t wait_for_delivery(struct consumer *c, struct na_tracker_entry *entry,
                                  const struct na_route *route, const char *alert_id) {
    struct waiter *w = calloc(1, sizeof(*w));
    if (!w) {
        return NA_ERR_NOMEM;
    }
    w->route = route;
    memcpy(w->alert_id, alert_id, sizeof(w->alert_id));
    w->entry = entry;
    entry->pending++;
    w->next = c->waiters;
    c->waiters = w;
    return NA_OK;
}

/* Write the job's ledger record; the job ends when the broker confirmed it
 * (on_recorded), and is tried again when it cannot be written. */
static void ledger_write(struct consumer *c, struct job_ctx *jc) {
    jc->retry.kind = RETRY_LEDGER;
    jc->del.outcome = jc->outcome;
    na_err_t err = na_fault("ledger_record")
                       ? NA_ERR_KAFKA
                       : na_ledger_record(c->ledger, jc->alert_id, jc->route->name,
                                          &jc->del, jc->alert_json, jc);
    if (err) {
        na_log(NA_LOG_ERROR, "consumer", "ledger_failed", "route=%s alert=%s err=%s",
               na_log_q(jc->route->name), jc->alert_id, na_log_q(na_err2str(err)));
        schedule_retry(c, &jc->retry, na_err2str(err));
    }
}

static void on_delivered(void *opaque, const struct na_delivery_result *res, void *vc) {
    struct consumer *c = vc;
    struct job_ctx *jc = opaque;
    jc->in_deliverer = false;
    if (res->attempts > 1) {
        na_metric_add(na_metrics_get(NA_METRIC_COUNTER,
                                     "newsalert_consumer_alert_retries_total",
                                     "Webhook attempts after the first.", NULL),
                      res->attempts - 1);
    }
    if (res->outcome == NA_OUTCOME_OK) {
        c->stats->alerts_sent++;
        route_inc("newsalert_consumer_alerts_sent_total", "Alerts a route accepted.",
                  res->route->name);
        if (res->digest_cnt) {
            c->stats->digests++;
        }
        na_log(NA_LOG_INFO, "deliver", "alert_sent",
               "route=%s alert=%s status=%ld "
               "attempts=%d digest=%zu",
               na_log_q(res->route->name), res->alert_id, res->status, res->attempts,
               res->digest_cnt);
        if (c->ledger) {
            snprintf(jc->outcome, sizeof(jc->outcome), "%s",
                     res->digest_cnt ? "digest" : "delivered");
            jc->del.status = res->status;
            jc->del.attempts = res->attempts;
            jc->del.at_ms = na_now_ms();
            ledger_write(c, jc);
            return;
        }
        job_end(c, jc);
        return;
    }
    c->stats->alerts_failed++;
    route_inc("newsalert_consumer_alerts_dead_lettered_total",
              "Alerts given up on and sent to the dead-letter topic.", res->route->name);
    na_log(NA_LOG_ERROR, "deliver", "alert_failed",
           "route=%s alert=%s status=%ld attempts=%d err=%s outcome=%s",
           na_log_q(res->route->name), res->alert_id, res->status, res->attempts,
           na_log_q(res->error), na_outcome2str(res->outcome));
    /* Always dead-lettered, also when the partition was revoked meanwhile:
     * a reading of the record that waits for this delivery (the same
     * record read again) is released only once the copy is written. The
     * body is taken, not copied: no allocation on this path. */
    struct dlq_ctx *ctx = &jc->dlq;
    ctx->jc = jc;
    ctx->entry = jc->entry;
    if (res->body_take && *res->body_take) {
        ctx->value = *res->body_take;
        *res->body_take = NULL;
        ctx->len = res->len;
    } else if (res->len && (ctx->value = malloc(res->len))) {
        memcpy(ctx->value, res->body, res->len);
        ctx->len = res->len;
    } /* else: the copy holds the headers only (the alert id is its key) */
    dlq_fill(ctx, res->alert_id, strlen(res->alert_id), "deliver", res->error,
             res->route->name, jc->partition, jc->offset);
    dlq_produce(c, ctx);
}

/* Runs inside na_ledger_open() (and each time the ledger is read) for each
 * ledger record: re-open its story. */
static void seed_story(const char *alert_id, const json_t *value, void *vc) {
    struct consumer *c = vc;
    const char *sid = NULL;
    (void)alert_id;
    /* Live (another member's, or this one's own record coming back): only a
     * story this consumer does not have yet, so that a follow-up article
     * here joins it; one it has is not counted twice. */
    if (c->ledger_following) {
        sid = json_string_value(json_object_get(json_object_get(value, "story"), "id"));
        if (!sid || na_story_article_count(c->stories, sid)) {
            return;
        }
    }
    if (na_stories_seed_record(c->stories, value, &sid)) {
        na_log(NA_LOG_WARN, "consumer", "story_seed_failed", "story=%s", sid ? sid : "?");
    }
}

/* Runs inside na_ledger_poll(): the broker has the record (or refused it). */
static void on_recorded(void *opaque, na_err_t err, void *vc) {
    struct consumer *c = vc;
    struct job_ctx *jc = opaque;
    if (!jc) { /* a hand-over mark ("pending", "released"): best effort */
        if (err) {
            na_log(NA_LOG_WARN, "consumer", "handover_mark_failed", "err=%s",
                   na_log_q(na_err2str(err)));
        }
        return;
    }
    if (!err && na_fault("ledger_delivery")) {
        err = NA_ERR_KAFKA;
    }
    if (err) {
        na_log(NA_LOG_ERROR, "consumer", "ledger_failed", "route=%s alert=%s err=%s",
               na_log_q(jc->route->name), jc->alert_id, na_log_q(na_err2str(err)));
        schedule_retry(c, &jc->retry, na_err2str(err)); /* entry stays unfinished */
        return;
    }
    c->stats->ledger_recorded++;
    job_end(c, jc);
}

/* Keep the newest NA_HTTPD_MAX_ALERTS alerts (new stories only) for the
 * status page. */
static void remember_alert(struct consumer *c, const struct na_alert *alert) {
    const struct na_article *a = alert->article;
    const struct na_match *m = alert->match;
    char at[NA_RFC3339_LEN], pub[NA_RFC3339_LEN] = "";
    json_t *ev = json_array();
    if (!c->recent) {
        c->recent = json_array();
    }
    na_time_format_rfc3339(na_now_ms() / 1000, at);
    if (a->published_at != NA_TIME_UNKNOWN) {
        na_time_format_rfc3339(a->published_at, pub);
    }
    for (size_t i = 0; ev && i < m->evidence_cnt && i < 8; i++) {
        json_array_append_new(
            ev, json_pack("{s:s, s:s?, s:s}", "term", m->evidence[i].term, "matched",
                          m->evidence[i].matched, "field", m->evidence[i].field));
    }
    json_t *doc = json_pack(
        "{s:s, s:s, s:f, s:s, s:s?, s:s?, s:s?, s:o*}", "at", at, "topic", m->topic,
        "score", m->score, "title", a->title ? a->title : "", "url", a->url, "source",
        a->source_name, "published_at", *pub ? pub : NULL, "evidence", ev);
    if (!c->recent || !doc) {
        json_decref(doc);
        return;
    }
    json_array_insert_new(c->recent, 0, doc);
    while (json_array_size(c->recent) > NA_HTTPD_MAX_ALERTS) {
        json_array_remove(c->recent, json_array_size(c->recent) - 1);
    }
}

/* --print: a later article of a story that already alerted, in one line. */
static void print_linked(struct consumer *c, const struct na_alert *alert) {
    const struct na_article *a = alert->article;
    fprintf(c->out, "  +   %-16s same story (%zu articles): %s (%s)\n",
            alert->match->topic, na_story_article_count(c->stories, alert->story_id),
            a->title ? a->title : "(untitled)", a->source_name ? a->source_name : "?");
    fflush(c->out);
}

static void print_alert(struct consumer *c, const struct na_alert *alert) {
    const struct na_article *a = alert->article;
    const struct na_match *m = alert->match;
    char ts[NA_RFC3339_LEN] = "unknown time";
    if (a->published_at != NA_TIME_UNKNOWN) {
        na_time_format_rfc3339(a->published_at, ts);
    }
    fprintf(c->out, "ALERT %-16s score=%-6.2f %s\n      source: %s, %s\n      evidence:",
            m->topic, m->score, a->title ? a->title : "(untitled)",
            a->source_name ? a->source_name : "?", ts);
    for (size_t i = 0; i < m->evidence_cnt && i < 8; i++) {
        fprintf(c->out, "%s \"%s\" (%s)", i ? "," : "",
                m->evidence[i].matched ? m->evidence[i].matched : m->evidence[i].term,
                m->evidence[i].field);
    }
    fprintf(c->out, "\n");
    if (a->url) {
        fprintf(c->out, "      %s\n", a->url);
    }
    fflush(c->out);
}

/* A later article of a story whose alert a route already has (or is
 * sending): counted and logged, and the ledger record updated ("linked",
 * which never downgrades "delivered"), not sent again. */
static void link_article(struct consumer *c, struct na_tracker_entry *entry,
                         const struct na_alert *alert, const struct na_route *route,
                         int32_t partition, int64_t offset) {
    struct job_ctx *jc = NULL;
    json_t *root = NULL;
    c->stats->story_linked++;
    route_inc("newsalert_consumer_story_linked_total",
              "Articles of a story already alerted: linked, not sent again.",
              route->name);
    na_log(NA_LOG_INFO, "consumer", "story_linked",
           "route=%s alert=%s story=%s article=%s "
           "articles=%zu",
           na_log_q(route->name), alert->id, alert->story_id, alert->article->id,
           na_story_article_count(c->stories, alert->story_id));
    if (!c->ledger || !na_ledger_delivered(c->ledger, alert->id, route->name) ||
        !(jc = calloc(1, sizeof(*jc))) || !(root = na_alert_to_json(alert)) ||
        !(jc->alert_json = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
        json_decref(root);
        job_ctx_free(c, jc);
        return;
    }
    json_decref(root);
    jc->entry = entry;
    jc->partition = partition;
    jc->offset = offset;
    jc->route = route;
    jc->linked = true;
    memcpy(jc->alert_id, alert->id, sizeof(jc->alert_id));
    snprintf(jc->outcome, sizeof(jc->outcome), "linked");
    jc->del.at_ms = na_now_ms();
    entry->pending++;
    ledger_write(c, jc);
}

/* Decide and start the alerts of one classified record. @returns NA_OK, or
 * NA_ERR_NOMEM when something could not be allocated: what was started
 * stays started and the caller processes the record again later (the
 * ledger and the deliverer's queue make that idempotent). */
static na_err_t raise_alerts(struct consumer *c, struct na_tracker_entry *entry,
                             const struct na_decision *d, int32_t partition,
                             int64_t offset) {
    const struct na_article *a = &d->article;
    na_err_t ret = NA_OK;
    for (size_t i = 0; i < d->alerts_cnt; i++) {
        const struct na_decided_alert *da = &d->alerts[i];
        const struct na_alert *alert = &da->alert;
        c->stats->matched++;
        na_log(NA_LOG_INFO, "consumer", "match",
               "article=%s topic=%s score=%.2f alert=%s "
               "story=%s",
               a->id, na_log_q(alert->match->topic), alert->match->score, alert->id,
               d->has_story ? d->story_id : a->id);
        if (d->story_new) {
            remember_alert(c, alert);
        }
        if (c->conf->print) {
            if (d->story_new) {
                print_alert(c, alert);
            } else {
                print_linked(c, alert);
            }
        }
        bool linked = false;
        char *alert_json = NULL;
        for (size_t r = 0; r < c->routes->cnt && r < d->routes_cnt; r++) {
            const struct na_route *route = &c->routes->v[r];
            enum na_route_need need = da->need[r];
            struct na_buf body;
            struct job_ctx *jc = NULL;
            struct na_digest_item *item = NULL;
            if (need == NA_NEED_NONE) {
                continue;
            }
            bool in_flight = na_deliver_has(c->deliver, route, alert->id);
            if (!d->story_new && !linked && (need == NA_NEED_SENT || in_flight)) {
                link_article(c, entry, alert, route, partition, offset);
                linked = true;
                if (in_flight && wait_for_delivery(c, entry, route, alert->id)) {
                    ret = NA_ERR_NOMEM;
                }
                continue;
            }
            if (in_flight) {
                /* On its way already (same story, or this record read again
                 * after its first reading was revoked): wait for that one. */
                if (wait_for_delivery(c, entry, route, alert->id)) {
                    ret = NA_ERR_NOMEM;
                }
                continue;
            }
            if (need == NA_NEED_SENT || need == NA_NEED_DEAD) {
                c->stats->ledger_skipped++;
                if (need == NA_NEED_SENT) {
                    route_inc("newsalert_consumer_alerts_already_sent_total",
                              "Alerts not sent again: the ledger records them.",
                              route->name);
                }
                na_log(NA_LOG_INFO, "consumer",
                       need == NA_NEED_SENT ? "already_sent" : "already_dead_lettered",
                       "route=%s alert=%s", na_log_q(route->name), alert->id);
                continue;
            }
            int64_t until_ms = da->pending_until_ms[r];
            if (c->ledger && !alert_json) {
                json_t *root = na_alert_to_json(alert);
                alert_json =
                    root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
                json_decref(root);
            }
            na_buf_init(&body);
            na_err_t err = na_fault("render") ? NA_ERR_TOO_LARGE
                                              : route->format->render(alert, &body);
            if (!err && body.oom) {
                err = NA_ERR_NOMEM;
            }
            if (err && err != NA_ERR_NOMEM) {
                na_log(NA_LOG_ERROR, "consumer", "render_failed",
                       "route=%s alert=%s err=%s", na_log_q(route->name), alert->id,
                       na_err2str(err));
                na_buf_cleanup(&body);
                route_inc("newsalert_consumer_render_errors_total",
                          "Alerts a route's format could not render.", route->name);
                /* Not lost in silence: the alert/v1 goes to the dead-letter
                 * topic (the entry waits for that record). */
                json_t *root = na_alert_to_json(alert);
                char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
                json_decref(root);
                if (!text || dead_letter(c, entry, alert->id, strlen(alert->id), text,
                                         strlen(text), "render", na_err2str(err),
                                         route->name, NULL, partition, offset)) {
                    ret = NA_ERR_NOMEM;
                }
                free(text);
                continue;
            }
            if (err || !(jc = calloc(1, sizeof(*jc))) ||
                !(item = na_digest_item_new(alert)) || (c->ledger && !alert_json) ||
                (alert_json && !(jc->alert_json = na_strdup(alert_json)))) {
                na_log(NA_LOG_ERROR, "consumer", "alert_failed",
                       "route=%s alert=%s err=%s", na_log_q(route->name), alert->id,
                       na_err2str(NA_ERR_NOMEM));
                na_buf_cleanup(&body);
                na_digest_item_free(item);
                job_ctx_free(c, jc);
                ret = NA_ERR_NOMEM;
                continue;
            }
            jc->entry = entry;
            jc->partition = partition;
            jc->offset = offset;
            jc->route = route;
            memcpy(jc->alert_id, alert->id, sizeof(jc->alert_id));
            if (need == NA_NEED_PENDING && until_ms > na_now_ms()) {
                /* Another member is sending it (it gave this partition up
                 * with the alert in flight): wait for how that ends. */
                jc->awaiting = true;
                jc->await_until_ms = until_ms;
                jc->len = body.len;
                jc->body = na_buf_steal(&body);
                jc->item = item;
                c->awaiting++;
                job_register(c, jc);
                entry->pending++;
                na_log(NA_LOG_INFO, "consumer", "handover_wait",
                       "route=%s alert=%s until_ms=%lld", na_log_q(route->name),
                       alert->id, (long long)until_ms);
                continue;
            }
            if (c->parked && c->parked[r] &&
                !na_deliver_route_count(c->deliver, route, true, true, main_job, NULL)) {
                /* The route is down: the alert waits in retry_topic, after
                 * the ones parked before it (while older ones of it are
                 * still in the deliverer, it queues behind them there and
                 * is parked with them). */
                jc->len = body.len;
                jc->body = na_buf_steal(&body);
                jc->item = item;
                job_register(c, jc);
                entry->pending++;
                park_job(c, jc);
                continue;
            }
            size_t len = body.len;
            if (na_deliver_submit_steal(c->deliver, route, alert->id, na_buf_steal(&body),
                                        len, item, jc)) {
                job_ctx_free(c, jc);
                ret = NA_ERR_NOMEM;
                continue;
            }
            job_register(c, jc);
            jc->in_deliverer = true;
            entry->pending++;
        }
        free(alert_json);
    }
    return ret;
}

static void eof_clear(struct consumer *c, int32_t partition) {
    for (size_t i = 0; i < c->eof_cnt; i++) {
        if (c->eof[i] == partition) {
            c->eof[i] = c->eof[--c->eof_cnt];
            return;
        }
    }
}

static void eof_set(struct consumer *c, int32_t partition) {
    eof_clear(c, partition);
    int32_t *n = realloc(c->eof, (c->eof_cnt + 1) * sizeof(*n));
    if (n) {
        c->eof = n;
        c->eof[c->eof_cnt++] = partition;
    }
}

/*
 * Did the record reach Kafka longer ago than the ledger horizon? Then the
 * ledger may have forgotten an alert it raised (every delivery for it came
 * later), so it raises none: counted and logged (an operator who wants its
 * alerts replays it; docs/delivery.md). Both the article's fetch time and
 * the record's timestamp come before the record reached Kafka, so the later
 * of the two is the time that counts. Neither alone will do: the producer
 * stamps records with the published time, which may be far older than the
 * fetch, and other writers may copy old articles with their old fetch time.
 */
static bool too_old(struct consumer *c, const rd_kafka_message_t *rkm,
                    const struct na_article *a) {
    int64_t horizon = c->conf->ledger_horizon_ms;
    rd_kafka_timestamp_type_t tst;
    int64_t ts = rd_kafka_message_timestamp(rkm, &tst);
    int64_t t = a->fetched_at == NA_TIME_UNKNOWN ? INT64_MIN : a->fetched_at * 1000;
    if (tst != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && ts > t) {
        t = ts;
    }
    if (!c->ledger || horizon <= 0 || t == INT64_MIN || t >= na_now_ms() - horizon) {
        return false;
    }
    c->stats->too_old++;
    na_metrics_inc("newsalert_consumer_too_old_total",
                   "Records older than the ledger horizon: no alert raised.", NULL);
    na_log(NA_LOG_WARN, "consumer", "too_old",
           "partition=%d offset=%lld article=%s age_ms=%lld horizon_ms=%lld",
           (int)rkm->partition, (long long)rkm->offset, a->id,
           (long long)(na_now_ms() - t), (long long)horizon);
    return true;
}

/* Decode, classify and raise the alerts of one record; the record's own
 * unit of @p entry stays for the caller. @returns NA_ERR_NOMEM when the
 * record must be processed again later (see raise_alerts()), else NA_OK. */
static na_err_t process_record(struct consumer *c, const rd_kafka_message_t *rkm,
                               struct na_tracker_entry *entry) {
    struct na_pipeline p = {c->rules, c->stories, c->ledger, c->routes};
    struct na_decision d;
    na_decision_init(&d);
    na_err_t err = na_pipeline_decode(&p, rkm->payload, rkm->len, &d);
    if (err) {
        goto out;
    }
    if (!d.decoded) {
        c->stats->poison++;
        na_metrics_inc("newsalert_consumer_poison_records_total",
                       "Records that are not valid article/v1.", NULL);
        na_log(NA_LOG_WARN, "consumer", "poison_record",
               "partition=%d offset=%lld err=%s", (int)rkm->partition,
               (long long)rkm->offset, na_log_q(d.error));
        err = dead_letter(c, entry, rkm->key, rkm->key_len, rkm->payload, rkm->len,
                          "decode", d.error, NULL, NULL, rkm->partition, rkm->offset);
        goto out;
    }
    if (too_old(c, rkm, &d.article)) {
        goto out;
    }
    int64_t t0 = na_mono_us();
    err = na_pipeline_classify(&p, &d);
    na_metric_observe(na_metrics_get(NA_METRIC_HISTOGRAM,
                                     "newsalert_consumer_classify_seconds",
                                     "Time to classify one article.", NULL),
                      (double)(na_mono_us() - t0) / 1e6);
    if (err) {
        na_log(NA_LOG_ERROR, "consumer", "classify_failed", "article=%s err=%s",
               d.article.id, na_log_q(na_err2str(err)));
        goto out;
    }
    if (!(err = na_pipeline_alerts(&p, &d))) {
        err = raise_alerts(c, entry, &d, rkm->partition, rkm->offset);
    }
out:
    na_decision_cleanup(&d);
    return err;
}

/* The record could not be processed for want of memory: keep it (and its
 * entry unfinished) and process it again after a backoff. @returns true
 * when @p rkm was taken. */
static bool process_later(struct consumer *c, rd_kafka_message_t *rkm,
                          struct na_tracker_entry *entry) {
    struct reprocess *rp = calloc(1, sizeof(*rp));
    if (!rp) {
        /* Not even that: the entry stays unfinished for good, so the
         * record is read again after a restart; /readyz says so. */
        c->stuck++;
        na_log(NA_LOG_ERROR, "consumer", "record_stuck", "partition=%d offset=%lld",
               (int)rkm->partition, (long long)rkm->offset);
        return false;
    }
    rp->retry.kind = RETRY_RECORD;
    rp->rkm = rkm;
    rp->entry = entry;
    schedule_retry(c, &rp->retry, na_err2str(NA_ERR_NOMEM));
    return true;
}

/* @returns true when @p rkm was taken (kept for processing again later);
 * false when the caller destroys it. */
static bool handle_message(struct consumer *c, rd_kafka_message_t *rkm) {
    struct na_tracker_entry *entry;

    if (rkm->err) {
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eof_set(c, rkm->partition);
        } else {
            na_log(NA_LOG_WARN, "consumer", "consume_error", "err=%s",
                   na_log_q(rd_kafka_message_errstr(rkm)));
            if (na_kafka_classify(rkm->err, 0) == NA_OUTCOME_FATAL) {
                c->fatal = true;
            }
        }
        return false;
    }
    eof_clear(c, rkm->partition);
    c->stats->consumed++;
    na_metrics_inc("newsalert_consumer_articles_consumed_total", "Records consumed.",
                   NULL);
    entry = na_tracker_add(c->tracker, rkm->partition, rkm->offset);
    if (!entry) {
        c->fatal = true;
        return false;
    }
    if (process_record(c, rkm, entry)) {
        return process_later(c, rkm, entry);
    }
    na_tracker_done(c->tracker, entry);
    return false;
}

/* A record kept by process_later() is due: process it again, unless its
 * partition went to another consumer meanwhile (that one reads it). */
static void reprocess(struct consumer *c, struct reprocess *rp) {
    if (!rp->entry->orphaned && process_record(c, rp->rkm, rp->entry)) {
        schedule_retry(c, &rp->retry, na_err2str(NA_ERR_NOMEM));
        return;
    }
    na_tracker_done(c->tracker, rp->entry);
    rd_kafka_message_destroy(rp->rkm);
    free(rp);
}

/* Try again what is due. */
static void run_retries(struct consumer *c) {
    int64_t now = na_mono_ms();
    struct retry *due = NULL;
    for (struct retry **pp = &c->retries; *pp;) {
        struct retry *r = *pp;
        if (r->due_ms > now) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        c->retries_cnt--;
        r->next = due;
        due = r;
    }
    while (due) {
        struct retry *r = due;
        due = r->next;
        r->next = NULL;
        switch (r->kind) {
        case RETRY_DLQ:
            dlq_produce(c, (struct dlq_ctx *)r);
            break;
        case RETRY_LEDGER:
            ledger_write(c, (struct job_ctx *)r);
            break;
        case RETRY_RECORD:
            reprocess(c, (struct reprocess *)r);
            break;
        case RETRY_PARK:
            park_produce(c, (struct job_ctx *)r);
            break;
        }
    }
    na_metric_set(na_metrics_get(NA_METRIC_GAUGE, "newsalert_consumer_retries_waiting",
                                 "Dead-letter or ledger writes and records waiting to be "
                                 "tried again.",
                                 NULL),
                  (double)c->retries_cnt);
}

/* @returns how long the oldest retried work has been failing (ms), 0 if none. */
static int64_t retry_failing_ms(const struct consumer *c) {
    int64_t oldest = 0, now = na_mono_ms();
    for (const struct retry *r = c->retries; r; r = r->next) {
        if (now - r->since_ms > oldest) {
            oldest = now - r->since_ms;
        }
    }
    return oldest;
}

static void retries_free(struct consumer *c) {
    while (c->retries) {
        struct retry *r = c->retries;
        c->retries = r->next;
        if (r->kind == RETRY_DLQ) {
            struct dlq_ctx *ctx = (struct dlq_ctx *)r;
            if (ctx->jc) {
                job_ctx_free(c, ctx->jc);
            } else {
                free(ctx->value);
                free(ctx);
            }
        } else if (r->kind == RETRY_LEDGER || r->kind == RETRY_PARK) {
            job_ctx_free(c, (struct job_ctx *)r);
        } else {
            rd_kafka_message_destroy(((struct reprocess *)r)->rkm);
            free(r);
        }
    }
    c->retries_cnt = 0;
}

/* ---- hand-over between the members of a group ----
 *
 * A member that gives partitions up waits (revoke_timeout) for their
 * alerts in flight; what is still queued goes (the new owner reads those
 * records again and sends it); what is still in flight is marked "pending"
 * in the ledger until deliver_timeout plus a slack, and its outcome
 * ("delivered", "dead_lettered", or "released" when it would be retried)
 * is written when it ends here. The new owner catches the ledger up before
 * it reads the partitions and holds back a pending alert until the ledger
 * says how it ended or the hand-over expires (the old owner died). */

static bool in_parts(const rd_kafka_topic_partition_list_t *parts, int32_t partition) {
    for (int i = 0; i < parts->cnt; i++) {
        if (parts->elems[i].partition == partition) {
            return true;
        }
    }
    return false;
}

/* Jobs waiting for another member's outcome: end once the ledger says how
 * that ended, or go out here once the hand-over expired or was released. */
static void check_awaiting(struct consumer *c) {
    int64_t now = na_now_ms();
    for (struct job_ctx *jc = c->jobs, *next; c->awaiting && jc; jc = next) {
        next = jc->jnext;
        if (!jc->awaiting) {
            continue;
        }
        int64_t until = 0;
        enum na_ledger_state ls =
            na_ledger_state(c->ledger, jc->alert_id, jc->route->name, &until);
        if (ls == NA_LEDGER_SENT || ls == NA_LEDGER_DEAD || jc->entry->orphaned) {
            na_log(NA_LOG_INFO, "consumer", "handover_done",
                   "route=%s alert=%s outcome=%s", na_log_q(jc->route->name),
                   jc->alert_id,
                   ls == NA_LEDGER_SENT   ? "sent"
                   : ls == NA_LEDGER_DEAD ? "dead_lettered"
                                          : "revoked");
            if (ls == NA_LEDGER_SENT) {
                c->stats->ledger_skipped++;
            }
            job_end(c, jc);
            continue;
        }
        if (ls == NA_LEDGER_PENDING && until > now) {
            continue;
        }
        char *body = jc->body;
        struct na_digest_item *item = jc->item;
        jc->body = NULL;
        jc->item = NULL;
        jc->awaiting = false;
        c->awaiting--;
        na_log(NA_LOG_INFO, "consumer", "handover_send", "route=%s alert=%s reason=%s",
               na_log_q(jc->route->name), jc->alert_id,
               ls == NA_LEDGER_PENDING ? "expired" : "released");
        if (na_deliver_submit_steal(c->deliver, jc->route, jc->alert_id, body, jc->len,
                                    item, jc)) {
            /* Its unit stays undone: read again after a restart. */
            c->stuck++;
            job_ctx_free(c, jc);
            continue;
        }
        jc->in_deliverer = true;
    }
}

/* Is @p jc one of the records of @p parts (of retry_topic when @p
 * from_retry, else of the articles topic)? */
static bool job_of(const struct job_ctx *jc, const rd_kafka_topic_partition_list_t *parts,
                   bool from_retry) {
    return jc->from_retry == from_retry && !jc->entry->orphaned &&
           in_parts(parts, jc->entry->partition);
}

struct take_ctx {
    struct consumer *c;
    const rd_kafka_topic_partition_list_t *parts; /* NULL: handed-over jobs */
    bool from_retry;                              /* parts are retry_topic's */
};

/* na_deliver_take(): a queued job of a partition given up goes (the new
 * owner sends it); a handed-over one that would be retried is released. */
static bool take_job(struct na_deliver_queued *q, void *vt) {
    struct take_ctx *t = vt;
    struct job_ctx *jc = q->opaque;
    if (!jc || (t->parts ? !job_of(jc, t->parts, t->from_retry) : !jc->handed_over)) {
        return false;
    }
    free(q->body);
    na_digest_item_free(q->item);
    jc->in_deliverer = false;
    if (!t->parts && t->c->ledger) {
        struct na_ledger_delivery del = {"released", 0, q->attempts, na_now_ms(), 0};
        if (na_ledger_record(t->c->ledger, jc->alert_id, jc->route->name, &del,
                             jc->alert_json, NULL)) {
            na_log(NA_LOG_WARN, "consumer", "handover_mark_failed", "alert=%s",
                   jc->alert_id);
        }
        na_log(NA_LOG_INFO, "consumer", "handover_released", "route=%s alert=%s",
               na_log_q(jc->route->name), jc->alert_id);
    }
    job_end(t->c, jc);
    return true;
}

static size_t jobs_of(const struct consumer *c,
                      const rd_kafka_topic_partition_list_t *parts, bool from_retry) {
    size_t n = 0;
    for (const struct job_ctx *jc = c->jobs; jc; jc = jc->jnext) {
        n += job_of(jc, parts, from_retry);
    }
    return n;
}

static void hand_over(struct consumer *c, const rd_kafka_topic_partition_list_t *parts,
                      bool from_retry) {
    int64_t deadline = na_mono_ms() + (c->closing ? 0 : c->conf->revoke_timeout_ms);
    size_t waited = jobs_of(c, parts, from_retry);
    while (jobs_of(c, parts, from_retry) && na_mono_ms() < deadline) {
        na_deliver_run(c->deliver, 20, on_delivered, c);
        rd_kafka_poll(c->dlq, 0);
        if (c->ledger) {
            na_ledger_poll(c->ledger, 0);
        }
        run_retries(c);
        check_awaiting(c);
    }
    if (!jobs_of(c, parts, from_retry)) {
        if (waited) {
            na_log(NA_LOG_INFO, "consumer", "revoke_drained", "jobs=%zu", waited);
        }
        return;
    }
    /* What waits here goes: the new owner reads these records again. */
    struct take_ctx t = {c, parts, from_retry};
    size_t dropped = na_deliver_take(c->deliver, NULL, take_job, &t);
    for (struct job_ctx *jc = c->jobs, *next; jc; jc = next) {
        next = jc->jnext;
        if (jc->awaiting && job_of(jc, parts, from_retry)) {
            job_end(c, jc);
            dropped++;
        }
    }
    /* What is in flight is handed over. */
    size_t marked = 0;
    int64_t until =
        na_now_ms() + c->conf->deliver_timeout_ms + NA_CONSUMER_HANDOVER_SLACK_MS;
    for (struct job_ctx *jc = c->jobs; c->ledger && jc; jc = jc->jnext) {
        if (!jc->in_deliverer || jc->handed_over || !job_of(jc, parts, from_retry)) {
            continue;
        }
        struct na_ledger_delivery del = {"pending", 0, 0, na_now_ms(), until};
        if (na_ledger_record(c->ledger, jc->alert_id, jc->route->name, &del,
                             jc->alert_json, NULL)) {
            na_log(NA_LOG_WARN, "consumer", "handover_mark_failed", "alert=%s",
                   jc->alert_id);
            continue;
        }
        jc->handed_over = true;
        c->handed_over++;
        marked++;
    }
    int64_t written = na_mono_ms() + NA_CONSUMER_HANDOVER_WRITE_MS;
    while (marked && na_ledger_outstanding(c->ledger) && na_mono_ms() < written) {
        na_ledger_poll(c->ledger, 20);
    }
    na_log(NA_LOG_INFO, "consumer", "handed_over", "dropped=%zu in_flight=%zu", dropped,
           marked);
}

/* ---- parked routes: a route that is down waits in Kafka, not in memory ----
 *
 * A route whose requests have failed for park_after is parked: its queued
 * alerts, and every new one, are written in order to retry_topic (key =
 * route, one partition per route), and their articles finish once the
 * broker has them; so the consumer reads on, and the other routes get
 * their alerts as usual. The members of the group read retry_topic as the
 * group "<group_id>.retry" and send its alerts, one at a time while the
 * route still fails (the deliverer's backoff probes it), many at once when
 * it answers again, in order; one older than park_max_age goes to the
 * dead-letter topic instead (stage "park_expired"). A route is unparked
 * once its partition of retry_topic is read and committed to its end. */

/* Most alerts of one retry_topic partition in the deliverer at once. */
#define NA_CONSUMER_RETRY_WINDOW 50
/* How often parked routes are checked for being drained (ms). */
#define NA_CONSUMER_UNPARK_CHECK_MS 2000
/* Largest parked/v1 record read back (bytes). */
#define NA_CONSUMER_MAX_PARKED_BYTES (2u * 1024u * 1024u)

static uint32_t route_hash(const char *s) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

static int32_t retry_partition(const struct consumer *c, const char *route) {
    return (int32_t)(route_hash(route) % (uint32_t)c->retry_parts);
}

/* parked/v1: what a reader of retry_topic needs to send the alert. */
static char *parked_value(const struct consumer *c, const struct job_ctx *jc) {
    json_error_t jerr;
    json_t *alert = jc->alert_json ? json_loads(jc->alert_json, 0, &jerr) : NULL;
    const struct na_digest_item *it = jc->item;
    json_t *item = it ? json_pack("{s:s, s:f, s:s?, s:s?, s:s?}", "topic", it->topic,
                                  "score", it->score, "title", it->title, "url", it->url,
                                  "source", it->source)
                      : NULL;
    json_t *root = json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:s%, s:o*, s:o*, s:{s:i, s:I}}", "schema",
        "parked/v1", "group", c->conf->group_id, "route", jc->route->name, "alert_id",
        jc->alert_id, "parked_at_ms", (json_int_t)jc->parked_at_ms, "body",
        jc->body ? jc->body : "", jc->body ? jc->len : 0, "alert", alert, "item", item,
        "source", "partition", (int)jc->partition, "offset", (json_int_t)jc->offset);
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return text;
}

/* Write @p jc (body and item in it) to retry_topic; the job ends when the
 * broker has it (on_parked), or is tried again. */
static void park_produce(struct consumer *c, struct job_ctx *jc) {
    char *value = parked_value(c, jc);
    rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR__FAIL;
    jc->retry.kind = RETRY_PARK;
    if (value) {
        do {
            /* F_FREE: librdkafka frees value once it is written. */
            kerr = rd_kafka_producev(
                c->dlq, RD_KAFKA_V_TOPIC(c->conf->retry_topic),
                RD_KAFKA_V_PARTITION(retry_partition(c, jc->route->name)),
                RD_KAFKA_V_KEY(jc->route->name, strlen(jc->route->name)),
                RD_KAFKA_V_VALUE(value, strlen(value)),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                RD_KAFKA_V_HEADER("content-type", "application/json", -1),
                RD_KAFKA_V_HEADER("schema", "parked/v1", -1),
                RD_KAFKA_V_OPAQUE(&jc->retry), RD_KAFKA_V_END);
            if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(c->dlq, 100);
            }
        } while (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    }
    if (kerr) {
        free(value);
        na_log(NA_LOG_ERROR, "consumer", "park_failed", "route=%s alert=%s err=%s",
               na_log_q(jc->route->name), jc->alert_id,
               na_log_q(value ? rd_kafka_err2str(kerr) : na_err2str(NA_ERR_NOMEM)));
        schedule_retry(c, &jc->retry,
                       value ? rd_kafka_err2str(kerr) : na_err2str(NA_ERR_NOMEM));
    }
}

/* Runs inside rd_kafka_poll(c->dlq). */
static void on_parked(struct consumer *c, struct job_ctx *jc, rd_kafka_resp_err_t err) {
    if (err) {
        na_log(NA_LOG_ERROR, "consumer", "park_failed", "route=%s alert=%s err=%s",
               na_log_q(jc->route->name), jc->alert_id, na_log_q(rd_kafka_err2str(err)));
        schedule_retry(c, &jc->retry, rd_kafka_err2str(err));
        return;
    }
    route_inc("newsalert_consumer_alerts_parked_total",
              "Alerts of a parked route written to the retry topic.", jc->route->name);
    na_log(NA_LOG_DEBUG, "consumer", "alert_parked", "route=%s alert=%s",
           na_log_q(jc->route->name), jc->alert_id);
    job_end(c, jc);
}

/* na_deliver_route_count(): a job of the articles topic (not one read back
 * from retry_topic, nor one handed over). */
static bool main_job(void *opaque, void *ctx) {
    const struct job_ctx *jc = opaque;
    (void)ctx;
    return jc && !jc->from_retry && !jc->handed_over;
}

/* Start parking @p jc: it holds its body and digest item. */
static void park_job(struct consumer *c, struct job_ctx *jc) {
    if (!jc->parked_at_ms) {
        jc->parked_at_ms = na_now_ms();
    }
    park_produce(c, jc);
}

/* na_deliver_take() of a parked route: what waits in memory goes to Kafka
 * (not what retry_topic's reader sent, nor a job handed over). */
static bool take_for_park(struct na_deliver_queued *q, void *vc) {
    struct consumer *c = vc;
    struct job_ctx *jc = q->opaque;
    if (!jc || jc->from_retry || jc->handed_over) {
        return false;
    }
    jc->in_deliverer = false;
    jc->body = q->body;
    jc->len = q->len;
    jc->item = q->item;
    park_job(c, jc);
    return true;
}

static void set_route_parked(struct consumer *c, size_t r, bool parked) {
    char esc[256], labels[300];
    const struct na_route *route = &c->routes->v[r];
    c->parked[r] = parked;
    c->parked_cnt += parked ? 1 : (size_t)-1;
    snprintf(labels, sizeof(labels), "route=\"%s\"",
             na_metrics_label_escape(route->name, esc, sizeof(esc)));
    na_metric_set(na_metrics_get(NA_METRIC_GAUGE, "newsalert_consumer_route_parked",
                                 "1 while a route is parked (its alerts wait in the "
                                 "retry topic).",
                                 labels),
                  parked ? 1 : 0);
    na_log(parked ? NA_LOG_WARN : NA_LOG_INFO, "consumer",
           parked ? "route_parked" : "route_unparked", "route=%s", na_log_q(route->name));
}

/* Is retry_topic's partition of @p route read and committed to its end? */
static bool retry_drained(struct consumer *c, const struct na_route *route) {
    int32_t p = retry_partition(c, route->name);
    int64_t lo = 0, hi = 0;
    bool drained = false;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, c->conf->retry_topic, p);
    if (!rd_kafka_committed(c->retry_rk, l, 2000) &&
        !rd_kafka_query_watermark_offsets(c->dlq, c->conf->retry_topic, p, &lo, &hi,
                                          2000)) {
        int64_t done = l->elems[0].offset >= 0 ? l->elems[0].offset : lo;
        drained = done >= hi;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return drained;
}

/* na_deliver_take(): an alert read back from retry_topic that waited past
 * park_max_age in the deliverer (its route still down) is dead-lettered. */
static bool take_expired(struct na_deliver_queued *q, void *vc) {
    struct consumer *c = vc;
    struct job_ctx *jc = q->opaque;
    char reason[128];
    if (!jc || !jc->from_retry ||
        na_now_ms() - jc->parked_at_ms <= c->conf->park_max_age_ms) {
        return false;
    }
    na_digest_item_free(q->item);
    jc->in_deliverer = false;
    snprintf(reason, sizeof(reason), "parked for %llds, longer than park_max_age",
             (long long)((na_now_ms() - jc->parked_at_ms) / 1000));
    route_inc("newsalert_consumer_parked_expired_total",
              "Parked alerts older than park_max_age, dead-lettered.", jc->route->name);
    na_log(NA_LOG_ERROR, "consumer", "parked_dead_lettered", "route=%s alert=%s err=%s",
           na_log_q(jc->route->name), jc->alert_id, na_log_q(reason));
    struct dlq_ctx *ctx = &jc->dlq;
    ctx->jc = jc;
    ctx->entry = jc->entry;
    ctx->value = q->body;
    ctx->len = q->len;
    dlq_fill(ctx, jc->alert_id, strlen(jc->alert_id), "park_expired", reason,
             jc->route->name, jc->partition, jc->offset);
    dlq_produce(c, ctx);
    return true;
}

/* Park the routes that have failed for park_after; move what their queues
 * hold to retry_topic; unpark the ones whose backlog is gone. */
static void check_parking(struct consumer *c) {
    int64_t now = na_mono_ms();
    for (size_t r = 0; c->parked && r < c->routes->cnt; r++) {
        const struct na_route *route = &c->routes->v[r];
        if (!c->parked[r]) {
            int64_t since = na_deliver_route_failing_since(c->deliver, route);
            if (!since || now - since < c->conf->park_after_ms) {
                continue;
            }
            set_route_parked(c, r, true);
        }
        /* In order: what waits goes once the one in flight came back. */
        if (!na_deliver_route_count(c->deliver, route, true, false, main_job, NULL)) {
            (void)na_deliver_take(c->deliver, route, take_for_park, c);
        }
    }
    if (now - c->unpark_checked_ms < NA_CONSUMER_UNPARK_CHECK_MS) {
        return;
    }
    c->unpark_checked_ms = now;
    (void)na_deliver_take(c->deliver, NULL, take_expired, c);
    for (size_t r = 0; r < c->routes->cnt; r++) {
        const struct na_route *route = &c->routes->v[r];
        bool parking = false;
        if (!c->parked[r]) {
            continue;
        }
        for (const struct job_ctx *jc = c->jobs; jc && !parking; jc = jc->jnext) {
            parking = jc->route == route && jc->retry.kind == RETRY_PARK;
        }
        if (!parking && retry_drained(c, route)) {
            set_route_parked(c, r, false);
        }
    }
}

static const struct na_route *route_by_name(const struct consumer *c, const char *name) {
    for (size_t r = 0; r < c->routes->cnt; r++) {
        if (!strcmp(c->routes->v[r].name, name)) {
            return &c->routes->v[r];
        }
    }
    return NULL;
}

static struct na_digest_item *item_from_json(const json_t *j, const char *alert_id) {
    struct na_digest_item *it;
    const char *topic = json_string_value(json_object_get(j, "topic"));
    if (!topic || !(it = calloc(1, sizeof(*it)))) {
        return NULL;
    }
    snprintf(it->alert_id, sizeof(it->alert_id), "%s", alert_id);
    it->score = json_number_value(json_object_get(j, "score"));
    it->topic = na_strdup(topic);
    const char *v;
    if ((v = json_string_value(json_object_get(j, "title")))) {
        it->title = na_strdup(v);
    }
    if ((v = json_string_value(json_object_get(j, "url")))) {
        it->url = na_strdup(v);
    }
    if ((v = json_string_value(json_object_get(j, "source")))) {
        it->source = na_strdup(v);
    }
    if (!it->topic) {
        na_digest_item_free(it);
        return NULL;
    }
    return it;
}

/* One record of retry_topic: send its alert (or dead-letter it). */
static void handle_parked(struct consumer *c, const rd_kafka_message_t *rkm) {
    struct na_tracker_entry *entry;
    json_t *root = NULL, *alert = NULL, *item = NULL, *src = NULL;
    json_error_t jerr;
    const char *route_name = NULL, *alert_id = NULL, *body = NULL, *schema = NULL;
    const char *group = NULL;
    size_t body_len = 0;
    json_int_t parked_at = 0;
    struct job_ctx *jc = NULL;
    char reason[256] = "";
    const char *stage = NULL;

    if (rkm->err) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            na_log(NA_LOG_WARN, "consumer", "retry_consume_error", "err=%s",
                   na_log_q(rd_kafka_message_errstr(rkm)));
        }
        return;
    }
    if (!(entry = na_tracker_add(c->rtracker, rkm->partition, rkm->offset))) {
        c->fatal = true;
        return;
    }
    if (!rkm->payload || rkm->len > NA_CONSUMER_MAX_PARKED_BYTES ||
        !(root = json_loadb(rkm->payload, rkm->len, 0, &jerr)) ||
        json_unpack_ex(root, &jerr, 0, "{s:s, s:s, s:s, s:s, s:s%, s:I, s?o, s?o, s?o}",
                       "schema", &schema, "group", &group, "route", &route_name,
                       "alert_id", &alert_id, "body", &body, &body_len, "parked_at_ms",
                       &parked_at, "alert", &alert, "item", &item, "source", &src) ||
        strcmp(schema, "parked/v1") || strlen(alert_id) != NA_SHA256_HEX_LEN) {
        stage = "park_decode";
        snprintf(reason, sizeof(reason), "not a parked/v1 record: %s",
                 root ? jerr.text : "not JSON");
        goto dead;
    }
    if (strcmp(group, c->conf->group_id)) {
        goto out; /* another deployment shares the topic: its record */
    }
    const struct na_route *route = route_by_name(c, route_name);
    if (!route) {
        stage = "park_route";
        snprintf(reason, sizeof(reason), "route %s is no longer configured", route_name);
        goto dead;
    }
    enum na_ledger_state ls =
        c->ledger ? na_ledger_state(c->ledger, alert_id, route->name, NULL)
                  : NA_LEDGER_NONE;
    if (ls == NA_LEDGER_SENT || ls == NA_LEDGER_DEAD) {
        na_log(NA_LOG_INFO, "consumer", "already_sent", "route=%s alert=%s",
               na_log_q(route->name), alert_id);
        goto out;
    }
    if (na_now_ms() - parked_at > c->conf->park_max_age_ms) {
        stage = "park_expired";
        snprintf(reason, sizeof(reason), "parked for %llds, longer than park_max_age",
                 (long long)((na_now_ms() - parked_at) / 1000));
        route_inc("newsalert_consumer_parked_expired_total",
                  "Parked alerts older than park_max_age, dead-lettered.", route->name);
        goto dead;
    }
    if (!(jc = calloc(1, sizeof(*jc))) || !(jc->body = malloc(body_len + 1)) ||
        (alert &&
         !(jc->alert_json = json_dumps(alert, JSON_COMPACT | JSON_PRESERVE_ORDER)))) {
        goto nomem;
    }
    memcpy(jc->body, body, body_len);
    jc->body[body_len] = '\0';
    jc->len = body_len;
    jc->item = item ? item_from_json(item, alert_id) : NULL;
    jc->from_retry = true;
    jc->rpart = rkm->partition;
    jc->parked_at_ms = parked_at;
    jc->entry = entry;
    jc->partition = (int32_t)json_integer_value(json_object_get(src, "partition"));
    jc->offset = (int64_t)json_integer_value(json_object_get(src, "offset"));
    jc->route = route;
    snprintf(jc->alert_id, sizeof(jc->alert_id), "%s", alert_id);
    char *b = jc->body;
    struct na_digest_item *it = jc->item;
    jc->body = NULL;
    jc->item = NULL;
    if (na_deliver_submit_steal(c->deliver, route, jc->alert_id, b, body_len, it, jc)) {
        goto nomem;
    }
    job_register(c, jc);
    jc->in_deliverer = true;
    entry->pending++;
    if (rkm->partition >= 0 && rkm->partition < c->retry_parts) {
        c->rinflight[rkm->partition]++;
        c->rroute[rkm->partition] = route;
    }
    goto out;
nomem:
    job_ctx_free(c, jc);
    c->stuck++; /* the entry stays unfinished: read again after a restart */
    json_decref(root);
    return;
dead:
    na_log(NA_LOG_ERROR, "consumer", "parked_dead_lettered",
           "partition=%d offset=%lld stage=%s err=%s", (int)rkm->partition,
           (long long)rkm->offset, stage, na_log_q(reason));
    if (dead_letter(c, entry, rkm->key, rkm->key_len,
                    body ? (const void *)body : rkm->payload, body ? body_len : rkm->len,
                    stage, reason, route_name, c->conf->retry_topic, rkm->partition,
                    rkm->offset)) {
        c->stuck++;
        json_decref(root);
        return;
    }
out:
    json_decref(root);
    na_tracker_done(c->rtracker, entry);
}

/* Hold a partition of retry_topic while the deliverer has enough of it, or
 * while its route still fails (one alert probes it); and while routes are
 * being swapped. */
static void retry_flow(struct consumer *c) {
    for (int32_t p = 0; p < c->retry_parts; p++) {
        bool hold = c->swap_pending || c->rinflight[p] >= NA_CONSUMER_RETRY_WINDOW ||
                    (c->rinflight[p] && c->rroute[p] &&
                     na_deliver_route_failing_since(c->deliver, c->rroute[p]));
        if (hold == c->rpaused[p]) {
            continue;
        }
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, c->conf->retry_topic, p);
        if (hold) {
            rd_kafka_pause_partitions(c->retry_rk, l);
        } else {
            rd_kafka_resume_partitions(c->retry_rk, l);
        }
        rd_kafka_topic_partition_list_destroy(l);
        c->rpaused[p] = hold;
    }
}

/* ---- offsets, pausing, rebalancing ---- */

static void store_offsets_of(struct consumer *c, rd_kafka_t *rk, na_tracker_t *tracker,
                             const char *topic) {
    for (size_t i = 0; rk && i < na_tracker_partitions(tracker); i++) {
        int32_t partition = na_tracker_partition(tracker, i);
        int64_t offset;
        if (!na_tracker_committable(tracker, partition, &offset)) {
            continue;
        }
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
        rd_kafka_resp_err_t err = rd_kafka_offsets_store(rk, l);
        if (err) {
            na_log(NA_LOG_WARN, "consumer", "offset_store_failed",
                   "partition=%d offset=%lld err=%s", (int)partition, (long long)offset,
                   na_log_q(rd_kafka_err2str(err)));
        } else {
            c->stats->offsets_stored += tracker == c->tracker;
        }
        rd_kafka_topic_partition_list_destroy(l);
    }
}

static void store_offsets(struct consumer *c) {
    store_offsets_of(c, c->rk, c->tracker, c->conf->topic);
    store_offsets_of(c, c->retry_rk, c->rtracker, c->conf->retry_topic);
}

static void set_paused(struct consumer *c, bool pause);

static size_t route_bound(const struct consumer *c, const struct na_route *route) {
    return route->max_queue > 0 ? (size_t)route->max_queue : (size_t)c->conf->max_pending;
}

/* Pause when any route's queue is full (a route that is down fills only its
 * own queue); resume when every route is below half of its bound. */
static void update_pause(struct consumer *c) {
    bool full = false, low = true;
    for (size_t r = 0; r < c->routes->cnt; r++) {
        const struct na_route *route = &c->routes->v[r];
        size_t pending = na_deliver_route_pending(c->deliver, route);
        size_t bound = route_bound(c, route);
        na_metric_set(c->route_gauges ? c->route_gauges[r] : NULL, (double)pending);
        if (c->parked && c->parked[r]) {
            continue; /* what it holds comes from retry_topic, bounded there */
        }
        full |= pending >= bound;
        low &= pending < bound / 2 + (bound < 2);
    }
    /* Ledger records waiting for the broker count against the global bound. */
    size_t outstanding = na_ledger_outstanding(c->ledger);
    full |= outstanding >= (size_t)c->conf->max_pending;
    low &= outstanding < (size_t)c->conf->max_pending / 2 + 1;
    /* New routes wait for the old ones to go quiet: no new records meanwhile. */
    full |= c->swap_pending;
    low &= !c->swap_pending;
    /* Work to try again (a refused dead-letter or ledger write): its records
     * cannot be stored, so reading more would only grow memory. */
    full |= c->retries != NULL;
    low &= c->retries == NULL;
    if (!c->paused && full) {
        set_paused(c, true);
    } else if (c->paused && low) {
        set_paused(c, false);
    }
}

static void set_paused(struct consumer *c, bool pause) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (c->paused == pause || rd_kafka_assignment(c->rk, &parts)) {
        return;
    }
    if (pause) {
        rd_kafka_pause_partitions(c->rk, parts);
        c->stats->paused++;
    } else {
        rd_kafka_resume_partitions(c->rk, parts);
    }
    na_log(NA_LOG_INFO, "consumer", pause ? "paused" : "resumed",
           "pending=%zu partitions=%d", na_deliver_pending(c->deliver), parts->cnt);
    rd_kafka_topic_partition_list_destroy(parts);
    c->paused = pause;
}

/* Runs inside rd_kafka_consumer_poll() on the main thread. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    struct consumer *c = opaque;
    bool cooperative = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* What the previous owners wrote before they let these go (their
         * deliveries, hand-overs, stories) is known before any is read. */
        int64_t t0 = na_mono_ms();
        if (c->ledger && na_ledger_catch_up(c->ledger, (int)c->conf->ledger_timeout_ms)) {
            na_log(NA_LOG_WARN, "consumer", "ledger_behind",
                   "partitions=%d waited_ms=%lld", parts->cnt,
                   (long long)(na_mono_ms() - t0));
        }
        na_log(NA_LOG_INFO, "consumer", "assigned", "partitions=%d ledger_ms=%lld",
               parts->cnt, (long long)(na_mono_ms() - t0));
        if (cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
            if (e) {
                rd_kafka_error_destroy(e);
            }
        } else {
            rd_kafka_assign(rk, parts);
        }
        if (c->paused) {
            rd_kafka_pause_partitions(rk, parts);
        }
        return;
    }
    /* Revoked: finish or hand over what is in flight, store what is
     * finished (auto-commit commits it on unassign), then forget the rest;
     * the next owner re-reads it. */
    na_log(NA_LOG_INFO, "consumer", "revoked", "partitions=%d", parts->cnt);
    hand_over(c, parts, false);
    store_offsets(c);
    for (int i = 0; i < parts->cnt; i++) {
        na_tracker_revoke(c->tracker, parts->elems[i].partition);
        eof_clear(c, parts->elems[i].partition);
    }
    if (cooperative) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e) {
            rd_kafka_error_destroy(e);
        }
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

/* The reader of retry_topic; runs inside rd_kafka_consumer_poll(retry_rk). */
static void on_retry_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *parts, void *opaque) {
    struct consumer *c = opaque;
    bool cooperative = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (c->ledger && na_ledger_catch_up(c->ledger, (int)c->conf->ledger_timeout_ms)) {
            na_log(NA_LOG_WARN, "consumer", "ledger_behind", "retry_partitions=%d",
                   parts->cnt);
        }
        for (int i = 0; i < parts->cnt; i++) {
            int32_t p = parts->elems[i].partition;
            if (p >= 0 && p < c->retry_parts) {
                c->rpaused[p] = false;
            }
        }
        na_log(NA_LOG_INFO, "consumer", "retry_assigned", "partitions=%d", parts->cnt);
        if (cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
            if (e) {
                rd_kafka_error_destroy(e);
            }
        } else {
            rd_kafka_assign(rk, parts);
        }
        return;
    }
    na_log(NA_LOG_INFO, "consumer", "retry_revoked", "partitions=%d", parts->cnt);
    hand_over(c, parts, true);
    store_offsets_of(c, c->retry_rk, c->rtracker, c->conf->retry_topic);
    for (int i = 0; i < parts->cnt; i++) {
        na_tracker_revoke(c->rtracker, parts->elems[i].partition);
    }
    if (cooperative) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e) {
            rd_kafka_error_destroy(e);
        }
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

static bool caught_up(struct consumer *c) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    bool done = true;
    if (na_deliver_pending(c->deliver) || na_tracker_unfinished(c->tracker) ||
        rd_kafka_outq_len(c->dlq) || na_ledger_outstanding(c->ledger) ||
        rd_kafka_assignment(c->rk, &parts)) {
        return false;
    }
    if (!parts->cnt) {
        done = false;
    }
    for (int i = 0; done && i < parts->cnt; i++) {
        bool at_end = false;
        for (size_t j = 0; j < c->eof_cnt; j++) {
            at_end |= c->eof[j] == parts->elems[i].partition;
        }
        done = at_end;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return done;
}

/* The group consumer, the dead-letter (and parked alerts) producer, or
 * with @p retry the reader of retry_topic (group "<group_id>.retry"). */
static rd_kafka_t *make_client(const struct na_consumer_conf *conf, rd_kafka_type_t type,
                               bool retry, struct consumer *c, char *errstr,
                               size_t errstr_size) {
    rd_kafka_conf_t *kconf = na_kafka_conf_new(conf->brokers, NULL, errstr, errstr_size);
    rd_kafka_t *rk = NULL;
    char group[512];
    if (!kconf) {
        return NULL;
    }
    if (retry) {
        snprintf(group, sizeof(group), "%s.retry", conf->group_id);
        if (na_kafka_conf_set(kconf, "group.id", group, errstr, errstr_size) ||
            na_kafka_conf_set(kconf, "client.id", "newsalert-consumer-retry", errstr,
                              errstr_size) ||
            na_kafka_conf_set(kconf, "enable.auto.offset.store", "false", errstr,
                              errstr_size) ||
            na_kafka_conf_set(kconf, "auto.offset.reset", "earliest", errstr,
                              errstr_size) ||
            /* Unparking waits for this partition's commit to reach its end. */
            na_kafka_conf_set(kconf, "auto.commit.interval.ms", "1000", errstr,
                              errstr_size)) {
            goto fail;
        }
        rd_kafka_conf_set_rebalance_cb(kconf, on_retry_rebalance);
    } else if (type == RD_KAFKA_CONSUMER) {
        if (na_kafka_conf_set(kconf, "group.id", conf->group_id, errstr, errstr_size) ||
            na_kafka_conf_set(kconf, "client.id", "newsalert-consumer", errstr,
                              errstr_size) ||
            na_kafka_conf_set(kconf, "enable.auto.offset.store", "false", errstr,
                              errstr_size) ||
            na_kafka_conf_set(kconf, "auto.offset.reset", "earliest", errstr,
                              errstr_size) ||
            na_kafka_conf_set(kconf, "enable.partition.eof",
                              conf->exit_eof ? "true" : "false", errstr, errstr_size)) {
            goto fail;
        }
        rd_kafka_conf_set_rebalance_cb(kconf, on_rebalance);
    } else {
        if (na_kafka_conf_set(kconf, "client.id", "newsalert-consumer-dlq", errstr,
                              errstr_size) ||
            na_kafka_conf_set(kconf, "enable.idempotence", "true", errstr, errstr_size) ||
            na_kafka_conf_set(kconf, "acks", "all", errstr, errstr_size)) {
            goto fail;
        }
        rd_kafka_conf_set_dr_msg_cb(kconf, on_dlq_delivery);
    }
    /* The user's -X last, on both clients: librdkafka warns about and
     * ignores a consumer-only property on the producer and vice versa. */
    for (size_t i = 0; i < conf->props.cnt; i++) {
        char key[256];
        char ignored[512];
        const char *eq = strchr(conf->props.kv[i], '=');
        snprintf(key, sizeof(key), "%.*s", (int)(eq - conf->props.kv[i]),
                 conf->props.kv[i]);
        if (rd_kafka_conf_set(kconf, key, eq + 1, ignored, sizeof(ignored)) !=
            RD_KAFKA_CONF_OK) {
            snprintf(errstr, errstr_size, "%s", ignored);
            goto fail;
        }
    }
    rd_kafka_conf_set_opaque(kconf, c);
    rk = rd_kafka_new(type, kconf, errstr, errstr_size);
    if (!rk) {
        goto fail;
    }
    return rk;
fail:
    rd_kafka_conf_destroy(kconf);
    return NULL;
}

/* Parking: retry_topic (created when missing), its partitions, its reader. */
static na_err_t open_retry(struct consumer *c, char *errstr, size_t errstr_size) {
    const struct na_consumer_conf *conf = c->conf;
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = NULL;
    rd_kafka_topic_partition_list_t *sub = NULL;
    na_err_t err = NA_OK;
    if (conf->create_topics) {
        char retention[32], terr[512];
        snprintf(retention, sizeof(retention), "%lld",
                 conf->park_max_age_ms + 24LL * 3600 * 1000);
        const char *configs[] = {"cleanup.policy", "delete", "retention.ms", retention,
                                 NULL};
        struct na_topic_spec spec = {conf->retry_topic, 3, configs};
        if (na_kafka_ensure_topics(c->dlq, &spec, 1, 10000, terr, sizeof(terr))) {
            na_log(NA_LOG_WARN, "consumer", "topic_check_failed", "err=%s",
                   na_log_q(terr));
        }
    }
    rkt = rd_kafka_topic_new(c->dlq, conf->retry_topic, NULL);
    for (int i = 0; i < 50; i++) { /* a topic just made may not be known yet */
        rd_kafka_resp_err_t kerr = rd_kafka_metadata(c->dlq, 0, rkt, &md, 10000);
        if (!kerr && md->topic_cnt == 1 && !md->topics[0].err &&
            md->topics[0].partition_cnt > 0) {
            break;
        }
        if (md) {
            rd_kafka_metadata_destroy(md);
            md = NULL;
        }
        na_sleep_ms(100);
    }
    if (!md) {
        snprintf(errstr, errstr_size,
                 "retry_topic %s: not found (create it, or set park_after to 0)",
                 conf->retry_topic);
        err = NA_ERR_KAFKA;
        goto out;
    }
    c->retry_parts = md->topics[0].partition_cnt;
    if (!(c->parked = calloc(c->routes->cnt + 1, sizeof(*c->parked))) ||
        !(c->rinflight = calloc((size_t)c->retry_parts, sizeof(*c->rinflight))) ||
        !(c->rroute = calloc((size_t)c->retry_parts, sizeof(*c->rroute))) ||
        !(c->rpaused = calloc((size_t)c->retry_parts, sizeof(*c->rpaused))) ||
        !(c->rtracker = na_tracker_new())) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    if (!(c->retry_rk =
              make_client(conf, RD_KAFKA_CONSUMER, true, c, errstr, errstr_size))) {
        err = NA_ERR_CONFIG;
        goto out;
    }
    sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, conf->retry_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t kerr = rd_kafka_subscribe(c->retry_rk, sub);
    if (kerr) {
        snprintf(errstr, errstr_size, "subscribe %s: %s", conf->retry_topic,
                 rd_kafka_err2str(kerr));
        err = NA_ERR_KAFKA;
    }
out:
    if (sub) {
        rd_kafka_topic_partition_list_destroy(sub);
    }
    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    if (rkt) {
        rd_kafka_topic_destroy(rkt);
    }
    return err;
}

static void make_route_gauges(struct consumer *c) {
    /* Routes are (re)made: none is parked yet, none in retry_flow's view. */
    if (c->parked) {
        free(c->parked);
        c->parked = calloc(c->routes->cnt + 1, sizeof(*c->parked));
        c->parked_cnt = 0;
    }
    for (int32_t p = 0; c->rroute && p < c->retry_parts; p++) {
        c->rroute[p] = NULL;
    }
    free(c->route_gauges);
    c->route_gauges = calloc(c->routes->cnt + 1, sizeof(*c->route_gauges));
    for (size_t r = 0; c->route_gauges && r < c->routes->cnt; r++) {
        char esc[256], labels[300];
        snprintf(labels, sizeof(labels), "route=\"%s\"",
                 na_metrics_label_escape(c->routes->v[r].name, esc, sizeof(esc)));
        c->route_gauges[r] =
            na_metrics_get(NA_METRIC_GAUGE, "newsalert_consumer_route_queue",
                           "Alerts of a route queued or in flight.", labels);
    }
}

/* SIGHUP: read the config file's routes again; they replace the old ones
 * once no delivery of the old ones is in flight (deliveries point at their
 * route), consumption paused meanwhile. A file that does not load leaves
 * the old routes (logged by na_consumer_reload_routes). */
static void stage_routes(struct consumer *c) {
    struct na_routes fresh = {NULL, 0};
    if (!c->conf->config_path ||
        na_consumer_reload_routes(c->conf->config_path, c->conf->webhook,
                                  c->conf->webhook_format, &fresh)) {
        return;
    }
    na_routes_cleanup(&c->staged);
    c->staged = fresh;
    c->swap_pending = true;
}

static void swap_routes_when_quiet(struct consumer *c) {
    if (!c->swap_pending || na_deliver_pending(c->deliver) ||
        na_ledger_outstanding(c->ledger) || c->retries) {
        return;
    }
    na_deliver_forget_routes(c->deliver);
    na_routes_cleanup(&c->owned);
    c->owned = c->staged;
    memset(&c->staged, 0, sizeof(c->staged));
    c->routes = &c->owned;
    c->swap_pending = false;
    make_route_gauges(c);
    na_log(NA_LOG_INFO, "consumer", "routes_swapped", "routes=%zu", c->routes->cnt);
}

void na_consumer_deliver_opts(const struct na_consumer_conf *conf,
                              struct na_deliver_opts *opts) {
    struct na_deliver_opts o = {
        .concurrency = conf->deliver_concurrency,
        .timeout_ms = conf->deliver_timeout_ms,
        .connect_timeout_ms = conf->deliver_timeout_ms,
        .max_attempts = (int)conf->deliver_max_attempts,
        .backoff_ms = conf->deliver_backoff_ms,
        .backoff_max_ms = conf->deliver_backoff_max_ms,
        .user_agent = NA_HTTP_USER_AGENT,
    };
    *opts = o;
}

/* The status snapshot for the operations listener (httpd.h), main thread. */
static json_t *status_doc(struct consumer *c) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    int assigned = !rd_kafka_assignment(c->rk, &parts) ? parts->cnt : 0;
    json_t *not_ready = json_array();
    json_t *routes = json_array();
    char esc[256], labels[300];
    if (parts) {
        rd_kafka_topic_partition_list_destroy(parts);
    }
    if (!assigned) {
        json_array_append_new(not_ready,
                              json_string("kafka: no partitions assigned yet"));
    }
    int64_t failing = retry_failing_ms(c);
    if (failing >= c->conf->write_stall_ms) {
        char why[200];
        snprintf(
            why, sizeof(why),
            "dead-letter or ledger writes failing for %llds (%zu waiting to be tried "
            "again); consumption paused",
            (long long)(failing / 1000), c->retries_cnt);
        json_array_append_new(not_ready, json_string(why));
    }
    if (c->stuck) {
        char why[200];
        snprintf(why, sizeof(why),
                 "%zu records could not be processed (out of memory): they are read "
                 "again after a restart",
                 c->stuck);
        json_array_append_new(not_ready, json_string(why));
    }
    for (size_t i = 0; i < c->routes->cnt; i++) {
        const struct na_route *r = &c->routes->v[i];
        snprintf(labels, sizeof(labels), "route=\"%s\"",
                 na_metrics_label_escape(r->name, esc, sizeof(esc)));
        double sent = na_metric_value(
            na_metrics_get(NA_METRIC_COUNTER, "newsalert_consumer_alerts_sent_total",
                           "Alerts a route accepted.", labels));
        double failed = na_metric_value(na_metrics_get(
            NA_METRIC_COUNTER, "newsalert_consumer_alerts_dead_lettered_total",
            "Alerts given up on and sent to the dead-letter topic.", labels));
        json_array_append_new(
            routes,
            json_pack("{ss ss sb sb sf sf sI}", "name", r->name, "format",
                      r->format->name, "healthy", failed == 0 || sent > 0, "parked",
                      c->parked && c->parked[i], "sent", sent, "failed", failed,
                      "pending", (json_int_t)na_deliver_route_pending(c->deliver, r)));
    }
    /* A deep copy: the HTTP thread reads the snapshot while this thread
     * goes on changing c->recent. */
    return json_pack("{ss ss sb so s{sb ss} s{ss si} so so}", "daemon",
                     "newsalert-consumer", "version", NA_VERSION, "ready",
                     json_array_size(not_ready) == 0, "not_ready", not_ready, "kafka",
                     "connected", assigned > 0, "brokers", c->conf->brokers, "rules",
                     "version", na_rules_version(c->rules), "topics",
                     (int)na_rules_topic_count(c->rules), "routes", routes, "alerts",
                     c->recent ? json_deep_copy(c->recent) : json_array());
}

na_err_t na_consumer_run(const struct na_consumer_conf *conf,
                         volatile sig_atomic_t *running, FILE *out,
                         struct na_consumer_stats *stats, char *errstr,
                         size_t errstr_size) {
    struct consumer c;
    na_err_t err = NA_OK;
    rd_kafka_topic_partition_list_t *sub = NULL;
    na_httpd_t *httpd = NULL;
    int64_t published_ms = 0;
    int64_t pruned_ms = 0;

    memset(&c, 0, sizeof(c));
    memset(stats, 0, sizeof(*stats));
    c.conf = conf;
    c.stats = stats;
    c.out = out;
    srandom((unsigned)na_now_ms());

    if (conf->ledger && conf->stories && conf->ledger_horizon_ms > 0 &&
        conf->ledger_horizon_ms < conf->story_window_ms) {
        snprintf(errstr, errstr_size,
                 "ledger_horizon (%lld ms) is shorter than story_window (%lld ms): "
                 "stories would outlive the alerts that opened them",
                 conf->ledger_horizon_ms, conf->story_window_ms);
        err = NA_ERR_CONFIG;
        goto out;
    }
    if ((err = na_rules_load_file(conf->rules, &c.rules, errstr, errstr_size))) {
        goto out;
    }
    struct na_deliver_opts dopts;
    na_consumer_deliver_opts(conf, &dopts);
    if (!(c.deliver = na_deliver_new(&dopts)) || !(c.tracker = na_tracker_new())) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    if (!(c.dlq = make_client(conf, RD_KAFKA_PRODUCER, false, &c, errstr, errstr_size)) ||
        !(c.rk = make_client(conf, RD_KAFKA_CONSUMER, false, &c, errstr, errstr_size))) {
        err = NA_ERR_CONFIG;
        goto out;
    }
    if (conf->create_topics) {
        struct na_topic_spec specs[2] = {na_kafka_topic_articles(conf->topic),
                                         na_kafka_topic_dlq(conf->dlq_topic)};
        char terr[512];
        if (na_kafka_ensure_topics(c.dlq, specs, 2, 10000, terr, sizeof(terr))) {
            na_log(NA_LOG_WARN, "consumer", "topic_check_failed", "err=%s",
                   na_log_q(terr));
        }
    }
    c.routes = &conf->routes;
    make_route_gauges(&c);
    if (conf->stories && !(c.stories = na_stories_new(conf->story_window_ms))) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    if (conf->ledger) {
        /* Read the whole ledger before the first article is consumed; its
         * records re-open the stories of the window. */
        struct na_ledger_opts lopts = {
            .brokers = conf->brokers,
            .props = &conf->props,
            .topic = conf->ledger_topic,
            .load_timeout_ms = (int)conf->ledger_timeout_ms,
            .create_topic = conf->create_topics,
            .confirm_cb = on_recorded,
            .ctx = &c,
            .load_cb = c.stories ? seed_story : NULL,
            .load_ctx = &c,
            .horizon_ms = conf->ledger_horizon_ms,
            .follow = true,
        };
        if ((err = na_ledger_open(&lopts, &c.ledger, errstr, errstr_size))) {
            goto out;
        }
        c.ledger_following = true;
    }
    if (conf->park_after_ms > 0 && (err = open_retry(&c, errstr, errstr_size))) {
        goto out;
    }
    if (conf->daemon.http_listen && *conf->daemon.http_listen) {
        struct na_httpd_opts hopts = {conf->daemon.http_listen, "newsalert-consumer", 0};
        if ((err = na_httpd_start(&hopts, &httpd, errstr, errstr_size))) {
            goto out;
        }
    }
    rd_kafka_poll_set_consumer(c.rk);
    sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, conf->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t kerr = rd_kafka_subscribe(c.rk, sub);
    if (kerr) {
        snprintf(errstr, errstr_size, "subscribe %s: %s", conf->topic,
                 rd_kafka_err2str(kerr));
        err = NA_ERR_KAFKA;
        goto out;
    }
    na_log(NA_LOG_INFO, "consumer", "started",
           "topic=%s group=%s routes=%zu rules=%s "
           "topics=%zu",
           na_log_q(conf->topic), na_log_q(conf->group_id), conf->routes.cnt,
           na_rules_version(c.rules), na_rules_topic_count(c.rules));

    while (*running && !c.fatal) {
        if (na_daemon_take_reload()) {
            /* Between records: nothing holds on to the old rules. */
            (void)na_consumer_reload_rules(conf->rules, &c.rules);
            stage_routes(&c);
        }
        if (c.ledger && na_mono_ms() - pruned_ms >= NA_CONSUMER_PRUNE_MS) {
            size_t n = na_ledger_prune(c.ledger, na_now_ms());
            if (n) {
                na_log(NA_LOG_INFO, "consumer", "ledger_pruned",
                       "forgotten=%zu alerts=%zu", n, na_ledger_count(c.ledger));
            }
            na_metric_set(na_metrics_get(NA_METRIC_GAUGE, "newsalert_ledger_alerts",
                                         "Alerts the ledger holds in memory.", NULL),
                          (double)na_ledger_count(c.ledger));
            pruned_ms = na_mono_ms();
        }
        if (httpd && na_mono_ms() - published_ms >= 1000) {
            na_httpd_publish_steal(httpd, status_doc(&c));
            na_daemon_kafka_gauges(c.rk, "consumer");
            na_daemon_kafka_gauges(c.dlq, "dlq");
            published_ms = na_mono_ms();
        }
        bool busy = na_deliver_pending(c.deliver) > 0;
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c.rk, busy ? 0 : 100);
        if (rkm && !handle_message(&c, rkm)) {
            rd_kafka_message_destroy(rkm);
        }
        na_deliver_run(c.deliver, rkm ? 0 : (busy ? 20 : 0), on_delivered, &c);
        rd_kafka_poll(c.dlq, 0);
        if (c.ledger) {
            na_ledger_poll(c.ledger, 0);
        }
        run_retries(&c);
        check_awaiting(&c);
        if (c.retry_rk) {
            for (int i = 0; i < 100; i++) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(c.retry_rk, 0);
                if (!m) {
                    break;
                }
                handle_parked(&c, m);
                rd_kafka_message_destroy(m);
            }
            check_parking(&c);
            retry_flow(&c);
        }
        if (c.handed_over) {
            struct take_ctx t = {&c, NULL, false};
            (void)na_deliver_take(c.deliver, NULL, take_job, &t);
        }
        store_offsets(&c);
        size_t pending = na_deliver_pending(c.deliver);
        na_metric_set(na_metrics_get(NA_METRIC_GAUGE, "newsalert_consumer_alerts_pending",
                                     "Alerts queued or in flight.", NULL),
                      (double)pending);
        swap_routes_when_quiet(&c);
        update_pause(&c);
        if (conf->exit_eof && caught_up(&c)) {
            na_log(NA_LOG_INFO, "consumer", "caught_up", NULL);
            break;
        }
    }

    /* Drain: finish in-flight alerts up to the deadline (a second SIGTERM
     * or SIGINT ends it at once), store, close. */
    int64_t deadline = na_daemon_deadline(conf->drain_timeout_ms);
    while ((na_deliver_pending(c.deliver) || rd_kafka_outq_len(c.dlq) ||
            na_ledger_outstanding(c.ledger) || c.retries) &&
           na_daemon_deadline_left_ms(deadline, 1) > 0) {
        na_deliver_run(c.deliver, 50, on_delivered, &c);
        rd_kafka_poll(c.dlq, 10);
        if (c.ledger) {
            na_ledger_poll(c.ledger, 10);
        }
        run_retries(&c);
        store_offsets(&c);
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c.rk, 0);
        if (rkm) {
            /* Paused or not, nothing new is started while draining: this
             * record is not stored and is consumed again next time. */
            rd_kafka_message_destroy(rkm);
        }
    }
    if (na_deliver_pending(c.deliver) || c.retries) {
        na_log(NA_LOG_WARN, "consumer", "drain_timeout", "unfinished=%zu retries=%zu",
               na_deliver_pending(c.deliver), c.retries_cnt);
    }
    rd_kafka_flush(c.dlq, na_daemon_should_abort() ? 0 : 10000);
    for (int i = 0; c.ledger && na_ledger_outstanding(c.ledger) && i < 100 &&
                    !na_daemon_should_abort();
         i++) {
        na_ledger_poll(c.ledger, 100);
    }
    store_offsets(&c);
    if (c.fatal) {
        snprintf(errstr, errstr_size, "fatal Kafka error (see log)");
        err = NA_ERR_KAFKA;
    }
    na_log(NA_LOG_INFO, "consumer", "summary",
           "consumed=%llu poison=%llu matched=%llu alerts_sent=%llu alerts_failed=%llu "
           "dlq=%llu offsets_stored=%llu paused=%llu ledger_skipped=%llu "
           "ledger_recorded=%llu digests=%llu story_linked=%llu too_old=%llu",
           stats->consumed, stats->poison, stats->matched, stats->alerts_sent,
           stats->alerts_failed, stats->dlq_produced, stats->offsets_stored,
           stats->paused, stats->ledger_skipped, stats->ledger_recorded, stats->digests,
           stats->story_linked, stats->too_old);
out:
    na_httpd_stop(httpd);
    if (sub) {
        rd_kafka_topic_partition_list_destroy(sub);
    }
    retries_free(&c); /* their records are read again after a restart */
    c.closing = true; /* the revoke of the close hands over without waiting */
    if (c.rk) {
        rd_kafka_consumer_close(c.rk); /* commits the stored offsets */
        rd_kafka_destroy(c.rk);
    }
    if (c.retry_rk) {
        rd_kafka_consumer_close(c.retry_rk);
        rd_kafka_destroy(c.retry_rk);
    }
    na_deliver_destroy(c.deliver);
    na_ledger_destroy(c.ledger);
    na_stories_destroy(c.stories);
    free(c.route_gauges);
    if (c.dlq) {
        rd_kafka_flush(c.dlq, 5000);
        rd_kafka_destroy(c.dlq);
    }
    while (c.jobs) { /* abandoned by the drain's deadline: read again after a restart */
        job_ctx_free(&c, c.jobs);
    }
    na_tracker_destroy(c.tracker);
    na_tracker_destroy(c.rtracker);
    free(c.parked);
    free(c.rinflight);
    free(c.rroute);
    free(c.rpaused);
    na_rules_destroy(c.rules);
    free(c.eof);
    json_decref(c.recent);
    na_routes_cleanup(&c.owned);
    na_routes_cleanup(&c.staged);
    while (c.waiters) {
        struct waiter *w = c.waiters;
        c.waiters = w->next;
        free(w);
    }
    return err;
}
