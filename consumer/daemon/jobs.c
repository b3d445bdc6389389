/* The life of an alert job in the daemon: delivered then recorded in the
 * ledger, or dead-lettered; work the broker refused, tried again (see
 * consumer_internal.h and docs/delivery.md). */
#include "consumer_internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define NA_CONSUMER_RETRY_MIN_MS 250
#define NA_CONSUMER_RETRY_MAX_MS 30000

static const char *const retry_kind_names[] = {"dlq", "ledger", "record", "park"};

void na_jobs_register(struct consumer *c, struct job_ctx *jc) {
    jc->registered = true;
    jc->jprev = NULL;
    jc->jnext = c->jobs;
    if (c->jobs) {
        c->jobs->jprev = jc;
    }
    c->jobs = jc;
}

struct job_ctx *na_jobs_new(struct consumer *c) {
    struct job_ctx *jc = calloc(1, sizeof(*jc));
    c->jobs_live += jc != NULL;
    return jc;
}

/* Free @p jc (NULL-safe), leaving the registry and the counts. */
void na_jobs_free(struct consumer *c, struct job_ctx *jc) {
    if (!jc) {
        return;
    }
    c->jobs_live--;
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
    if (jc->holds_slot) {
        /* Recorded (or given up here): the route may send its next request
         * (at shutdown the deliverer may be gone already). */
        if (c->deliver) {
            na_deliver_recorded(c->deliver, jc->route, 1);
        }
        c->slots_held--;
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

void na_jobs_retry_later(struct consumer *c, struct retry *r, const char *why) {
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
            na_tracker_done(w->entry);
            free(w);
            continue;
        }
        pp = &w->next;
    }
}

/* The job ended for good: its unit of the entry is done. */
void na_jobs_end(struct consumer *c, struct job_ctx *jc) {
    if (!jc->linked) {
        release_waiters(c, jc->route, jc->alert_id);
    }
    na_tracker_done(jc->entry);
    na_jobs_free(c, jc);
}

/* ---- dead letters ---- */

/* A copy the client refused as too large (its message.max.bytes, which a
 * poison record of the articles topic may exceed): keep the first half of
 * its value, and say so (error.truncated), rather than try the same copy
 * again forever with its record unfinished. (A broker that refuses a copy
 * is tried again, as any refusal: its topic's limit can be raised.)
 * @returns false when there is nothing left to cut. */
static bool dlq_cut(struct dlq_ctx *ctx) {
    if (!ctx->len) {
        return false;
    }
    if (!ctx->full_len) {
        ctx->full_len = ctx->len;
        na_metrics_inc("newsalert_consumer_dlq_truncated_total",
                       "Dead-letter copies cut to fit the largest record the client "
                       "takes.",
                       NULL);
    }
    ctx->len /= 2;
    na_log(NA_LOG_WARN, "consumer", "dlq_truncated",
           "partition=%d offset=%lld bytes=%zu kept=%zu", (int)ctx->partition,
           (long long)ctx->offset, ctx->full_len, ctx->len);
    return true;
}

void na_jobs_dlq_produce(struct consumer *c, struct dlq_ctx *ctx) {
    rd_kafka_headers_t *hdrs;
    char num[32];
    rd_kafka_resp_err_t kerr;

    do {
        hdrs = rd_kafka_headers_new(7);
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
        if (ctx->full_len) {
            snprintf(num, sizeof(num), "%zu", ctx->full_len);
            rd_kafka_header_add(hdrs, "error.truncated", -1, num, -1);
        }
        do {
            /* F_COPY: the context keeps its value for a retry. */
            kerr = na_fault("dlq_produce")
                       ? RD_KAFKA_RESP_ERR__FAIL
                       : rd_kafka_producev(c->dlq, RD_KAFKA_V_TOPIC(c->conf->dlq_topic),
                                           RD_KAFKA_V_KEY(ctx->key, ctx->key_len),
                                           RD_KAFKA_V_VALUE(ctx->value, ctx->len),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_HEADERS(hdrs),
                                           RD_KAFKA_V_OPAQUE(ctx), RD_KAFKA_V_END);
            if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(c->dlq, 100);
            }
        } while (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        if (kerr) {
            rd_kafka_headers_destroy(hdrs);
        }
    } while (kerr == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && dlq_cut(ctx));
    if (kerr) {
        na_log(NA_LOG_ERROR, "consumer", "dlq_failed", "err=%s",
               na_log_q(rd_kafka_err2str(kerr)));
        na_jobs_retry_later(c, &ctx->retry, rd_kafka_err2str(kerr));
    }
}

void na_park_on_confirm(struct consumer *c, struct job_ctx *jc, rd_kafka_resp_err_t err);

/* Runs inside rd_kafka_poll(c->dlq) on the main thread: a dead-letter copy,
 * or a parked alert (the same producer writes both). */
void na_jobs_on_dlq_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                             void *opaque) {
    struct consumer *c = opaque;
    struct dlq_ctx *ctx = rkm->_private;
    rd_kafka_resp_err_t err = rkm->err;
    (void)rk;
    if (ctx->retry.kind == RETRY_PARK) {
        na_park_on_confirm(c, (struct job_ctx *)rkm->_private, err);
        return;
    }
    if (!err && na_fault("dlq_delivery")) {
        err = RD_KAFKA_RESP_ERR__FAIL;
    }
    if (err) {
        /* Unfinished until the record is written: tried again. */
        na_log(NA_LOG_ERROR, "consumer", "dlq_failed", "err=%s",
               na_log_q(rd_kafka_err2str(err)));
        na_jobs_retry_later(c, &ctx->retry, rd_kafka_err2str(err));
        return;
    }
    c->stats->dlq_produced++;
    if (ctx->jc && ctx->jc->handed_over && c->ledger) {
        /* The member that took the partition waits for this outcome. */
        struct job_ctx *jc = ctx->jc;
        snprintf(jc->outcome, sizeof(jc->outcome), "dead_lettered");
        jc->del.at_ms = na_now_ms();
        na_jobs_ledger_write(c, jc);
        return;
    }
    if (ctx->jc) {
        na_jobs_end(c, ctx->jc);
        return;
    }
    na_tracker_done(ctx->entry);
    free(ctx->value);
    free(ctx);
}

void na_jobs_dlq_fill(struct dlq_ctx *ctx, const void *key, size_t key_len,
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
na_err_t na_jobs_dead_letter(struct consumer *c, struct na_tracker_entry *entry,
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
    na_jobs_dlq_fill(ctx, key, key_len, stage, reason, route, partition, offset);
    ctx->source_topic = source_topic;
    entry->pending++;
    na_jobs_dlq_produce(c, ctx);
    return NA_OK;
}

/* ---- alerts ---- */

void na_jobs_route_inc(const char *name, const char *help, const char *route) {
    char esc[256], labels[300];
    snprintf(labels, sizeof(labels), "route=\"%s\"",
             na_metrics_label_escape(route, esc, sizeof(esc)));
    na_metrics_inc(name, help, labels);
}

/* @returns NA_ERR_NOMEM when the waiter could not be made (the caller
 * processes the record again later). */
bool na_jobs_on_its_way(const struct consumer *c, const struct na_route *route,
                        const char *alert_id) {
    if (na_deliver_has(c->deliver, route, alert_id)) {
        return true;
    }
    /* Or held here for another member's outcome, or answered and waiting
     * for its ledger record (a refused write is retried): sent once. */
    for (const struct job_ctx *jc = c->jobs; (c->awaiting || c->slots_held) && jc;
         jc = jc->jnext) {
        if ((jc->awaiting || jc->holds_slot) && !jc->dropped && jc->route == route &&
            !strcmp(jc->alert_id, alert_id)) {
            return true;
        }
    }
    return false;
}

na_err_t na_jobs_wait(struct consumer *c, struct na_tracker_entry *entry,
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
 * (na_jobs_on_recorded), and is tried again when it cannot be written. */
void na_jobs_ledger_write(struct consumer *c, struct job_ctx *jc) {
    jc->retry.kind = RETRY_LEDGER;
    jc->del.outcome = jc->outcome;
    na_err_t err = na_fault("ledger_record")
                       ? NA_ERR_KAFKA
                       : na_ledger_record(c->ledger, jc->alert_id, jc->route->name,
                                          &jc->del, jc->alert_json, jc);
    if (err) {
        na_log(NA_LOG_ERROR, "consumer", "ledger_failed", "route=%s alert=%s err=%s",
               na_log_q(jc->route->name), jc->alert_id, na_log_q(na_err2str(err)));
        na_jobs_retry_later(c, &jc->retry, na_err2str(err));
    }
}

/* Has @p jc, read back from retry_topic, waited longer than park_max_age
 * since it was first parked? */
static bool parked_too_long(const struct consumer *c, const struct job_ctx *jc) {
    return na_now_ms() - jc->parked_at_ms > c->conf->park_max_age_ms;
}

/* A parked alert whose route still fails after deliver_max_attempts goes
 * on waiting, in the deliverer at its place in the route's queue, until
 * it is park_max_age old (then take_expired() or this callback
 * dead-letters it). The attempt limit is for alerts sent directly: applied
 * to parked ones, it dead-lettered the backlog of a route down for hours
 * one alert every few minutes. Not kept: one whose partition of
 * retry_topic went to another member without a hand-over (that member
 * reads it again). A handed-over one is kept, and so released to the new
 * owner (na_handover_release()). */
static bool keep_parked(const struct consumer *c, const struct job_ctx *jc) {
    return jc->from_retry && (jc->handed_over || !jc->entry->orphaned) &&
           !parked_too_long(c, jc);
}

void na_jobs_on_delivered(void *opaque, const struct na_delivery_result *res, void *vc) {
    struct consumer *c = vc;
    struct job_ctx *jc = opaque;
    if (res->keep && keep_parked(c, jc)) {
        *res->keep = true; /* still in the deliverer: no outcome yet */
        return;
    }
    jc->in_deliverer = false;
    if (res->attempts > 1) {
        na_metric_add(na_metrics_get(NA_METRIC_COUNTER,
                                     "newsalert_consumer_alert_retries_total",
                                     "Webhook attempts after the first.", NULL),
                      res->attempts - 1);
    }
    if (res->outcome == NA_OUTCOME_OK) {
        c->stats->alerts_sent++;
        na_jobs_route_inc("newsalert_consumer_alerts_sent_total",
                          "Alerts a route accepted.", res->route->name);
        if (res->digest_cnt) {
            c->stats->digests++;
        }
        na_log(NA_LOG_INFO, "deliver", "alert_sent",
               "route=%s alert=%s status=%ld "
               "attempts=%d digest=%zu",
               na_log_q(res->route->name), res->alert_id, res->status, res->attempts,
               res->digest_cnt);
        if (c->ledger) {
            jc->holds_slot = true; /* see hold_until_recorded */
            c->slots_held++;
            snprintf(jc->outcome, sizeof(jc->outcome), "%s",
                     res->digest_cnt ? "digest" : "delivered");
            jc->del.status = res->status;
            jc->del.attempts = res->attempts;
            jc->del.at_ms = na_now_ms();
            na_jobs_ledger_write(c, jc);
            return;
        }
        na_jobs_end(c, jc);
        return;
    }
    const char *stage = "deliver";
    const char *reason = res->error;
    char expired[128];
    if (jc->from_retry && res->outcome == NA_OUTCOME_RETRY && parked_too_long(c, jc)) {
        stage = "park_expired"; /* as take_expired() says it */
        snprintf(expired, sizeof(expired), "parked for %llds, longer than park_max_age",
                 (long long)((na_now_ms() - jc->parked_at_ms) / 1000));
        reason = expired;
        na_jobs_route_inc("newsalert_consumer_parked_expired_total",
                          "Parked alerts older than park_max_age, dead-lettered.",
                          jc->route->name);
    }
    c->stats->alerts_failed++;
    na_jobs_route_inc("newsalert_consumer_alerts_dead_lettered_total",
                      "Alerts given up on and sent to the dead-letter topic.",
                      res->route->name);
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
    na_jobs_dlq_fill(ctx, res->alert_id, strlen(res->alert_id), stage, reason,
                     res->route->name, jc->partition, jc->offset);
    na_jobs_dlq_produce(c, ctx);
}

/* Runs inside na_ledger_poll(): the broker has the record (or refused it). */
void na_jobs_on_recorded(void *opaque, na_err_t err, void *vc) {
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
        na_jobs_retry_later(c, &jc->retry, na_err2str(err)); /* entry stays unfinished */
        return;
    }
    c->stats->ledger_recorded++;
    na_jobs_end(c, jc);
}

/* Keep the newest NA_HTTPD_MAX_ALERTS alerts (new stories only) for the
 * status page. */
void na_jobs_run_retries(struct consumer *c) {
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
            na_jobs_dlq_produce(c, (struct dlq_ctx *)r);
            break;
        case RETRY_LEDGER:
            na_jobs_ledger_write(c, (struct job_ctx *)r);
            break;
        case RETRY_RECORD:
            na_records_reprocess(c, (struct reprocess *)r);
            break;
        case RETRY_PARK:
            na_park_produce(c, (struct job_ctx *)r);
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
int64_t na_jobs_failing_ms(const struct consumer *c) {
    int64_t oldest = 0, now = na_mono_ms();
    for (const struct retry *r = c->retries; r; r = r->next) {
        if (now - r->since_ms > oldest) {
            oldest = now - r->since_ms;
        }
    }
    return oldest;
}

void na_jobs_free_retries(struct consumer *c) {
    while (c->retries) {
        struct retry *r = c->retries;
        c->retries = r->next;
        if (r->kind == RETRY_DLQ) {
            struct dlq_ctx *ctx = (struct dlq_ctx *)r;
            if (ctx->jc) {
                na_jobs_free(c, ctx->jc);
            } else {
                free(ctx->value);
                free(ctx);
            }
        } else if (r->kind == RETRY_LEDGER || r->kind == RETRY_PARK) {
            na_jobs_free(c, (struct job_ctx *)r);
        } else {
            rd_kafka_message_destroy(((struct reprocess *)r)->rkm);
            free(r);
        }
    }
    c->retries_cnt = 0;
}
