/* Routes that are down: their alerts wait in retry_topic (docs/delivery.md,
 * invariant 4). */
#include "consumer_internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

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
 * once its partition of retry_topic is read and committed to its end and
 * its last request was answered. */

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
 * broker has it (na_park_on_confirm), or is tried again. */
void na_park_produce(struct consumer *c, struct job_ctx *jc) {
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
        na_jobs_retry_later(c, &jc->retry,
                            value ? rd_kafka_err2str(kerr) : na_err2str(NA_ERR_NOMEM));
    }
}

/* Runs inside rd_kafka_poll(c->dlq). */
void na_park_on_confirm(struct consumer *c, struct job_ctx *jc, rd_kafka_resp_err_t err) {
    if (err) {
        na_log(NA_LOG_ERROR, "consumer", "park_failed", "route=%s alert=%s err=%s",
               na_log_q(jc->route->name), jc->alert_id, na_log_q(rd_kafka_err2str(err)));
        na_jobs_retry_later(c, &jc->retry, rd_kafka_err2str(err));
        return;
    }
    na_jobs_route_inc("newsalert_consumer_alerts_parked_total",
                      "Alerts of a parked route written to the retry topic.",
                      jc->route->name);
    na_log(NA_LOG_DEBUG, "consumer", "alert_parked", "route=%s alert=%s",
           na_log_q(jc->route->name), jc->alert_id);
    if (c->ledger) {
        /* "parked" in the ledger before the article may finish: a member
         * that reads the article again (this one was killed before its
         * offset was committed) leaves the alert to the retry topic's
         * reader instead of sending a second copy. */
        snprintf(jc->outcome, sizeof(jc->outcome), "parked");
        jc->del.status = 0;
        jc->del.attempts = 0;
        jc->del.at_ms = na_now_ms();
        na_jobs_ledger_write(c, jc);
        return;
    }
    na_jobs_end(c, jc);
}

/* na_deliver_route_count(): a job of the articles topic (not one read back
 * from retry_topic, nor one handed over). */
bool na_park_main_job(void *opaque, void *ctx) {
    const struct job_ctx *jc = opaque;
    (void)ctx;
    return jc && !jc->from_retry && !jc->handed_over;
}

/* Start parking @p jc: it holds its body and digest item. */
void na_park_job(struct consumer *c, struct job_ctx *jc) {
    if (!jc->parked_at_ms) {
        jc->parked_at_ms = na_now_ms();
    }
    na_park_produce(c, jc);
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
    na_park_job(c, jc);
    return true;
}

/* na_deliver_take() while new routes wait to replace the old ones (SIGHUP):
 * an alert read back from retry_topic that waits in the deliverer for its
 * route (down, and kept past its attempts until park_max_age) goes back
 * to retry_topic, its parked time kept, and is read again after the swap.
 * Else the swap, which needs every job of the old routes gone, would wait
 * for that route to answer, consumption paused all the while. */
static bool take_for_swap(struct na_deliver_queued *q, void *vc) {
    struct consumer *c = vc;
    struct job_ctx *jc = q->opaque;
    if (!jc || !jc->from_retry || jc->handed_over) {
        return false;
    }
    jc->in_deliverer = false;
    jc->body = q->body;
    jc->len = q->len;
    jc->item = q->item;
    na_log(NA_LOG_INFO, "consumer", "parked_for_swap", "route=%s alert=%s",
           na_log_q(jc->route->name), jc->alert_id);
    na_park_job(c, jc);
    return true;
}

void na_park_for_swap(struct consumer *c) {
    if (c->swap_pending) {
        (void)na_deliver_take(c->deliver, NULL, take_for_swap, c);
    }
}

static void parked_gauge(const char *route, bool parked) {
    char esc[256], labels[300];
    snprintf(labels, sizeof(labels), "route=\"%s\"",
             na_metrics_label_escape(route, esc, sizeof(esc)));
    na_metric_set(na_metrics_get(NA_METRIC_GAUGE, "newsalert_consumer_route_parked",
                                 "1 while a route is parked (its alerts wait in the "
                                 "retry topic).",
                                 labels),
                  parked ? 1 : 0);
}

static void set_route_parked(struct consumer *c, size_t r, bool parked) {
    const struct na_route *route = &c->routes->v[r];
    c->parked[r] = parked;
    c->parked_cnt += parked ? 1 : (size_t)-1;
    parked_gauge(route->name, parked);
    na_log(parked ? NA_LOG_WARN : NA_LOG_INFO, "consumer",
           parked ? "route_parked" : "route_unparked", "route=%s", na_log_q(route->name));
}

void na_park_carry(const struct consumer *c, const struct na_routes *fresh, bool *keep) {
    for (size_t r = 0; c->parked && r < c->routes->cnt; r++) {
        bool kept = false;
        for (size_t i = 0; c->parked[r] && i < fresh->cnt; i++) {
            if (!strcmp(fresh->v[i].name, c->routes->v[r].name)) {
                keep[i] = kept = true;
            }
        }
        if (c->parked[r] && !kept) {
            parked_gauge(c->routes->v[r].name, false); /* gone with its route */
        }
    }
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
    na_jobs_route_inc("newsalert_consumer_parked_expired_total",
                      "Parked alerts older than park_max_age, dead-lettered.",
                      jc->route->name);
    na_log(NA_LOG_ERROR, "consumer", "parked_dead_lettered", "route=%s alert=%s err=%s",
           na_log_q(jc->route->name), jc->alert_id, na_log_q(reason));
    struct dlq_ctx *ctx = &jc->dlq;
    ctx->jc = jc;
    ctx->entry = jc->entry;
    ctx->value = q->body;
    ctx->len = q->len;
    na_jobs_dlq_fill(ctx, jc->alert_id, strlen(jc->alert_id), "park_expired", reason,
                     jc->route->name, jc->partition, jc->offset);
    na_jobs_dlq_produce(c, ctx);
    return true;
}

/* Park the routes that have failed for park_after; move what their queues
 * hold to retry_topic; unpark the ones whose backlog is gone. */
void na_park_check(struct consumer *c) {
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
        if (!na_deliver_route_count(c->deliver, route, true, false, na_park_main_job,
                                    NULL)) {
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
        /* A route still failing stays parked with nothing left to send (its
         * backlog expired): unparked, it would park again at once, every
         * check. Its next alert, read back from retry_topic, probes it. */
        if (!parking && !na_deliver_route_failing_since(c->deliver, route) &&
            retry_drained(c, route)) {
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
void na_park_handle(struct consumer *c, const rd_kafka_message_t *rkm) {
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
    /* The alert becomes the ledger record's text: an object, or none. */
    if ((alert && !json_is_object(alert)) || (item && !json_is_object(item)) ||
        (src && !json_is_object(src))) {
        stage = "park_decode";
        snprintf(reason, sizeof(reason),
                 "not a parked/v1 record: alert, item and source must be objects");
        goto dead;
    }
    const struct na_route *route = route_by_name(c, route_name);
    if (!route) {
        stage = "park_route";
        snprintf(reason, sizeof(reason), "route %s is no longer configured", route_name);
        goto dead;
    }
    int64_t pending_until = 0;
    enum na_ledger_state ls =
        c->ledger ? na_ledger_state(c->ledger, alert_id, route->name, &pending_until)
                  : NA_LEDGER_NONE;
    if (ls == NA_LEDGER_SENT || ls == NA_LEDGER_DEAD) {
        na_log(NA_LOG_INFO, "consumer", "already_sent", "route=%s alert=%s",
               na_log_q(route->name), alert_id);
        goto out;
    }
    if (na_jobs_on_its_way(c, route, alert_id)) {
        /* The same alert on its way already: parked twice (by a member that
         * died before it committed the article, then again by the member
         * that read the article next), or queued by the article's own
         * reading. Wait for that delivery instead of sending a copy. */
        na_log(NA_LOG_INFO, "consumer", "already_in_flight", "route=%s alert=%s",
               na_log_q(route->name), alert_id);
        if (na_jobs_wait(c, entry, route, alert_id)) {
            c->stuck++; /* the entry stays unfinished: read again after a restart */
            json_decref(root);
            return;
        }
        goto out;
    }
    if (na_now_ms() - parked_at > c->conf->park_max_age_ms) {
        stage = "park_expired";
        snprintf(reason, sizeof(reason), "parked for %llds, longer than park_max_age",
                 (long long)((na_now_ms() - parked_at) / 1000));
        na_jobs_route_inc("newsalert_consumer_parked_expired_total",
                          "Parked alerts older than park_max_age, dead-lettered.",
                          route->name);
        goto dead;
    }
    if (!(jc = na_jobs_new(c)) || !(jc->body = malloc(body_len + 1)) ||
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
    int64_t held_until = 0;
    bool held = na_handover_held(c, true, rkm->partition, rkm->offset, &held_until);
    if (held || (ls == NA_LEDGER_PENDING && pending_until > na_now_ms())) {
        /* The member that had this retry partition did not let it go
         * cleanly (held), or handed this alert over in flight ("pending"):
         * wait for its ledger record (na_handover_check()). */
        jc->awaiting = true;
        jc->held = held;
        jc->await_until_ms = held ? held_until : pending_until;
        c->awaiting++;
        na_jobs_register(c, jc);
        entry->pending++;
        na_log(NA_LOG_INFO, "consumer", held ? "handover_hold" : "handover_wait",
               "route=%s alert=%s until_ms=%lld", na_log_q(route->name), jc->alert_id,
               (long long)jc->await_until_ms);
    } else {
        char *b = jc->body;
        struct na_digest_item *it = jc->item;
        jc->body = NULL;
        jc->item = NULL;
        if (na_deliver_submit_steal(c->deliver, route, jc->alert_id, b, body_len, it,
                                    jc)) {
            goto nomem;
        }
        na_jobs_register(c, jc);
        jc->in_deliverer = true;
        entry->pending++;
    }
    if (rkm->partition >= 0 && rkm->partition < c->retry_parts) {
        c->rinflight[rkm->partition]++;
        c->rroute[rkm->partition] = route;
    }
    goto out;
nomem:
    na_jobs_free(c, jc);
    c->stuck++; /* the entry stays unfinished: read again after a restart */
    json_decref(root);
    return;
dead:
    if (!strcmp(stage, "park_decode")) {
        na_metrics_inc("newsalert_consumer_parked_invalid_total",
                       "Records of the retry topic that are not parked/v1 "
                       "(dead-lettered).",
                       NULL);
    }
    na_log(NA_LOG_ERROR, "consumer", "parked_dead_lettered",
           "partition=%d offset=%lld stage=%s err=%s", (int)rkm->partition,
           (long long)rkm->offset, stage, na_log_q(reason));
    if (na_jobs_dead_letter(c, entry, rkm->key, rkm->key_len,
                            body ? (const void *)body : rkm->payload,
                            body ? body_len : rkm->len, stage, reason, route_name,
                            c->conf->retry_topic, rkm->partition, rkm->offset)) {
        c->stuck++;
        json_decref(root);
        return;
    }
out:
    json_decref(root);
    na_tracker_done(entry);
}

/* Hold a partition of retry_topic while the deliverer has enough of it, or
 * while its route still fails (one alert probes it); and while routes are
 * being swapped. */
void na_park_flow(struct consumer *c) {
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
