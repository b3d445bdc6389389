/* One record of the articles topic through the daemon: the pipeline
 * decides, this file acts (deliver, link, wait, park, dead-letter). */
#include "consumer_internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

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
    json_t *doc =
        json_pack("{s:s, s:s, s:s, s:f, s:s, s:s?, s:s?, s:s?, s:o*, s:o*}", "at", at,
                  "alert_id", alert->id, "topic", m->topic, "score", m->score, "title",
                  a->title ? a->title : "", "url", a->url, "source", a->source_name,
                  "published_at", *pub ? pub : NULL, "evidence", ev, "story",
                  alert->story ? json_deep_copy(alert->story) : NULL);
    if (!c->recent || !doc) {
        json_decref(doc);
        return;
    }
    json_array_insert_new(c->recent, 0, doc);
    while (json_array_size(c->recent) > NA_HTTPD_MAX_ALERTS) {
        json_array_remove(c->recent, json_array_size(c->recent) - 1);
    }
}

/* The status page: a later report of a story whose alert is among the
 * recent ones updates it (reports so far, the latest report). */
static void remember_linked(struct consumer *c, const struct na_alert *alert) {
    const struct na_article *a = alert->article;
    char pub[NA_RFC3339_LEN] = "";
    size_t i;
    json_t *doc;
    if (a->published_at != NA_TIME_UNKNOWN) {
        na_time_format_rfc3339(a->published_at, pub);
    }
    json_array_foreach(c->recent, i, doc) {
        const char *id = json_string_value(json_object_get(doc, "alert_id"));
        json_t *story = json_object_get(doc, "story");
        if (!id || strcmp(id, alert->id) || !json_is_object(story)) {
            continue;
        }
        json_object_set_new(story, "articles",
                            json_integer((json_int_t)na_story_article_count(
                                c->stories, alert->story_id)));
        json_object_set_new(doc, "latest",
                            json_pack("{s:s, s:s?, s:s?, s:s?}", "title",
                                      a->title ? a->title : "", "url", a->url, "source",
                                      a->source_name, "published_at", *pub ? pub : NULL));
        return;
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

/* Does the linked report that made a story @p articles long update its
 * alert's ledger record? At 2, 4, 8, 16 ... reports: a story of n reports
 * writes about log2(n) records, not n (each carries the alert and the
 * story's signature, ~5 KB, which every member reads back), and what a
 * restart re-opens from the ledger lacks at most the later half of a
 * story's reports, whose words its first half mostly has. */
static bool link_recorded(size_t articles) {
    return articles < 2 || (articles & (articles - 1)) == 0;
}

/* A later article of a story whose alert a route already has (or is
 * sending): counted and logged, and the ledger record updated ("linked",
 * which never downgrades "delivered") when the story reached a power of
 * two reports, not sent again. */
static void link_article(struct consumer *c, const struct na_pipeline *p,
                         struct na_decision *d, struct na_tracker_entry *entry,
                         const struct na_alert *alert, const struct na_route *route,
                         int32_t partition, int64_t offset) {
    struct job_ctx *jc = NULL;
    json_t *root = NULL;
    size_t articles = na_story_article_count(c->stories, alert->story_id);
    c->stats->story_linked++;
    na_jobs_route_inc("newsalert_consumer_story_linked_total",
                      "Articles of a story already alerted: linked, not sent again.",
                      route->name);
    na_log(NA_LOG_INFO, "consumer", "story_linked",
           "route=%s alert=%s story=%s article=%s "
           "articles=%zu",
           na_log_q(route->name), alert->id, alert->story_id, alert->article->id,
           articles);
    if (!c->ledger || !link_recorded(articles) ||
        !na_ledger_delivered(c->ledger, alert->id, route->name) ||
        na_pipeline_signature(p, d) || !(jc = na_jobs_new(c)) ||
        !(root = na_alert_to_ledger_json(alert)) ||
        !(jc->alert_json = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
        json_decref(root);
        na_jobs_free(c, jc);
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
    na_jobs_ledger_write(c, jc);
}

/* Decide and start the alerts of one classified record. @returns NA_OK, or
 * NA_ERR_NOMEM when something could not be allocated: what was started
 * stays started and the caller processes the record again later (the
 * ledger and the deliverer's queue make that idempotent). */
static na_err_t raise_alerts(struct consumer *c, const struct na_pipeline *p,
                             struct na_tracker_entry *entry, struct na_decision *d,
                             int32_t partition, int64_t offset) {
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
        } else {
            remember_linked(c, alert);
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
            /* A parked alert is safe in retry_topic (marked only once the
             * broker had it there): a reading that finds it parked waits
             * for no delivery of it. The retry topic's reader may be
             * probing a route that is down with it until park_max_age, and
             * this record's partition would store no offset all along. */
            bool in_flight =
                need != NA_NEED_PARKED && na_jobs_on_its_way(c, route, alert->id);
            bool sent = need == NA_NEED_SENT || need == NA_NEED_PARKED;
            if (!d->story_new && !linked && (sent || in_flight)) {
                link_article(c, p, d, entry, alert, route, partition, offset);
                linked = true;
                if (in_flight && na_jobs_wait(c, entry, route, alert->id)) {
                    ret = NA_ERR_NOMEM;
                }
                continue;
            }
            if (in_flight) {
                /* On its way already (same story, or this record read again
                 * after its first reading was revoked): wait for that one. */
                if (na_jobs_wait(c, entry, route, alert->id)) {
                    ret = NA_ERR_NOMEM;
                }
                continue;
            }
            if (sent || need == NA_NEED_DEAD) {
                c->stats->ledger_skipped++;
                if (need == NA_NEED_SENT) {
                    na_jobs_route_inc("newsalert_consumer_alerts_already_sent_total",
                                      "Alerts not sent again: the ledger records them.",
                                      route->name);
                }
                na_log(NA_LOG_INFO, "consumer",
                       need == NA_NEED_SENT     ? "already_sent"
                       : need == NA_NEED_PARKED ? "already_parked"
                                                : "already_dead_lettered",
                       "route=%s alert=%s", na_log_q(route->name), alert->id);
                continue;
            }
            int64_t until_ms = da->pending_until_ms[r];
            if (c->ledger && !alert_json && !na_pipeline_signature(p, d)) {
                json_t *root = na_alert_to_ledger_json(alert);
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
                na_jobs_route_inc("newsalert_consumer_render_errors_total",
                                  "Alerts a route's format could not render.",
                                  route->name);
                /* Not lost in silence: the alert/v1 goes to the dead-letter
                 * topic (the entry waits for that record). */
                json_t *root = na_alert_to_json(alert);
                char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
                json_decref(root);
                if (!text ||
                    na_jobs_dead_letter(c, entry, alert->id, strlen(alert->id), text,
                                        strlen(text), "render", na_err2str(err),
                                        route->name, NULL, partition, offset)) {
                    ret = NA_ERR_NOMEM;
                }
                free(text);
                continue;
            }
            if (err || !(jc = na_jobs_new(c)) || !(item = na_digest_item_new(alert)) ||
                (c->ledger && !alert_json) ||
                (alert_json && !(jc->alert_json = na_strdup(alert_json)))) {
                na_log(NA_LOG_ERROR, "consumer", "alert_failed",
                       "route=%s alert=%s err=%s", na_log_q(route->name), alert->id,
                       na_err2str(NA_ERR_NOMEM));
                na_buf_cleanup(&body);
                na_digest_item_free(item);
                na_jobs_free(c, jc);
                ret = NA_ERR_NOMEM;
                continue;
            }
            jc->entry = entry;
            jc->partition = partition;
            jc->offset = offset;
            jc->route = route;
            memcpy(jc->alert_id, alert->id, sizeof(jc->alert_id));
            int64_t held_until = 0;
            bool held = need == NA_NEED_SEND &&
                        na_handover_held(c, false, partition, offset, &held_until);
            if (held) {
                /* Its previous owner did not hand the partition over
                 * cleanly: it may have sent this alert and still write
                 * the record (it was cut off from the broker). */
                jc->held = true;
                until_ms = held_until;
            }
            if ((need == NA_NEED_PENDING && until_ms > na_now_ms()) || held) {
                /* Another member is sending it (it gave this partition up
                 * with the alert in flight): wait for how that ends. */
                jc->awaiting = true;
                jc->await_until_ms = until_ms;
                jc->len = body.len;
                jc->body = na_buf_steal(&body);
                jc->item = item;
                c->awaiting++;
                na_jobs_register(c, jc);
                entry->pending++;
                na_log(NA_LOG_INFO, "consumer", held ? "handover_hold" : "handover_wait",
                       "route=%s alert=%s until_ms=%lld", na_log_q(route->name),
                       alert->id, (long long)until_ms);
                continue;
            }
            if (c->parked && c->parked[r] &&
                !na_deliver_route_count(c->deliver, route, true, true, na_park_main_job,
                                        NULL)) {
                /* The route is down: the alert waits in retry_topic, after
                 * the ones parked before it (while older ones of it are
                 * still in the deliverer, it queues behind them there and
                 * is parked with them). */
                jc->len = body.len;
                jc->body = na_buf_steal(&body);
                jc->item = item;
                na_jobs_register(c, jc);
                entry->pending++;
                na_park_job(c, jc);
                continue;
            }
            size_t len = body.len;
            if (na_deliver_submit_steal(c->deliver, route, alert->id, na_buf_steal(&body),
                                        len, item, jc)) {
                na_jobs_free(c, jc);
                ret = NA_ERR_NOMEM;
                continue;
            }
            na_jobs_register(c, jc);
            jc->in_deliverer = true;
            entry->pending++;
        }
        free(alert_json);
    }
    return ret;
}

void na_records_eof_clear(struct consumer *c, int32_t partition) {
    for (size_t i = 0; i < c->eof_cnt; i++) {
        if (c->eof[i] == partition) {
            c->eof[i] = c->eof[--c->eof_cnt];
            return;
        }
    }
}

static void eof_set(struct consumer *c, int32_t partition) {
    na_records_eof_clear(c, partition);
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
/* One record on its way through the stages: decoded and classified by
 * na_records_work() (on a worker thread when there are workers), then acted on
 * here in the order records were read (finish_record()). */
struct rec {
    rd_kafka_message_t *rkm;
    struct na_tracker_entry *entry;
    struct na_decision d;
    na_err_t err;        /* NA_ERR_NOMEM from decoding or classifying */
    int64_t classify_us; /* -1: not classified */
};

/* na_work_fn: decode and classify one record. Runs on a worker thread: it
 * reads c->rules only, which is not swapped while records are out (the
 * loop drains them first, na_records_drain()), and reads a matching
 * article's story features (not c->stories: only whether it is set). */
void na_records_work(void *vr, void *vc) {
    struct rec *r = vr;
    struct consumer *c = vc;
    struct na_pipeline p = {.rules = c->rules, .read_stories = c->stories != NULL};
    na_decision_init(&r->d);
    r->classify_us = -1;
    r->err = na_pipeline_decode(&p, r->rkm->payload, r->rkm->len, &r->d);
    if (r->err || !r->d.decoded) {
        return;
    }
    int64_t t0 = na_mono_us();
    r->err = na_pipeline_classify(&p, &r->d);
    if (!r->err) {
        r->classify_us = na_mono_us() - t0;
    }
}

/* Act on a decoded and classified record: dead-letter a poison record,
 * drop one older than the ledger's horizon, else decide its story and
 * alerts and start them. @returns NA_ERR_NOMEM when the record must be
 * processed again later, else NA_OK. */
static na_err_t finish_record(struct consumer *c, struct rec *r) {
    const rd_kafka_message_t *rkm = r->rkm;
    na_err_t err = r->err;
    if (err) {
        if (r->d.decoded) {
            na_log(NA_LOG_ERROR, "consumer", "classify_failed", "article=%s err=%s",
                   r->d.article.id, na_log_q(na_err2str(err)));
        }
        return err;
    }
    if (!r->d.decoded) {
        c->stats->poison++;
        na_metrics_inc("newsalert_consumer_poison_records_total",
                       "Records that are not valid article/v1.", NULL);
        na_log(NA_LOG_WARN, "consumer", "poison_record",
               "partition=%d offset=%lld err=%s", (int)rkm->partition,
               (long long)rkm->offset, na_log_q(r->d.error));
        return na_jobs_dead_letter(c, r->entry, rkm->key, rkm->key_len, rkm->payload,
                                   rkm->len, "decode", r->d.error, NULL, NULL,
                                   rkm->partition, rkm->offset);
    }
    if (too_old(c, rkm, &r->d.article)) {
        return NA_OK;
    }
    na_metric_observe(na_metrics_get(NA_METRIC_HISTOGRAM,
                                     "newsalert_consumer_classify_seconds",
                                     "Time to classify one article.", NULL),
                      (double)r->classify_us / 1e6);
    struct na_pipeline p = {c->rules, c->stories, c->ledger, c->routes, false};
    if (!(err = na_pipeline_alerts(&p, &r->d))) {
        err = raise_alerts(c, &p, r->entry, &r->d, rkm->partition, rkm->offset);
    }
    return err;
}

/* All the stages on this thread (no workers, or a record processed
 * again). */
static na_err_t process_record(struct consumer *c, rd_kafka_message_t *rkm,
                               struct na_tracker_entry *entry) {
    struct rec r = {.rkm = rkm, .entry = entry};
    na_records_work(&r, c);
    na_err_t err = finish_record(c, &r);
    na_decision_cleanup(&r.d);
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
    na_jobs_retry_later(c, &rp->retry, na_err2str(NA_ERR_NOMEM));
    return true;
}

/* @returns true when @p rkm was taken (kept for processing again later);
 * false when the caller destroys it. */
bool na_records_handle(struct consumer *c, rd_kafka_message_t *rkm) {
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
    /* --exit-eof: the fetch that brought the partition's last record named
     * its end; the EOF event would come only after an empty fetch the
     * broker holds for fetch.wait.max.ms (half a second by default). */
    if (c->conf->exit_eof && na_kafka_at_end(c->rk, rkm)) {
        eof_set(c, rkm->partition);
        c->stats->ends++;
    } else {
        na_records_eof_clear(c, rkm->partition);
    }
    c->stats->consumed++;
    na_metrics_inc("newsalert_consumer_articles_consumed_total", "Records consumed.",
                   NULL);
    entry = na_tracker_add(c->tracker, rkm->partition, rkm->offset);
    if (!entry) {
        c->fatal = true;
        return false;
    }
    struct rec *r = c->workq ? calloc(1, sizeof(*r)) : NULL;
    if (r) {
        r->rkm = rkm;
        r->entry = entry;
        if (na_workq_submit(c->workq, r)) {
            return true; /* na_records_collect() finishes it */
        }
        free(r);
    }
    /* No workers (or no room, or no memory for the record's slot): all
     * the stages here, after the records read before it. */
    na_records_drain(c);
    if (process_record(c, rkm, entry)) {
        return process_later(c, rkm, entry);
    }
    na_tracker_done(entry);
    return false;
}

/* The record's stages are done on the worker: finish it here. */
static void collect_one(struct consumer *c, struct rec *r) {
    if (r->entry->orphaned) {
        /* Its partition went to another member meanwhile: that one reads
         * it again; nothing of it happens here. */
        na_tracker_done(r->entry);
        rd_kafka_message_destroy(r->rkm);
    } else if (!finish_record(c, r)) {
        na_tracker_done(r->entry);
        rd_kafka_message_destroy(r->rkm);
    } else if (!process_later(c, r->rkm, r->entry)) {
        /* Without memory even to keep it: stuck, its entry unfinished
         * (never stored; /readyz says so, the restart reads it again). */
        rd_kafka_message_destroy(r->rkm);
    } /* else kept by process_later(), to be processed again */
    na_decision_cleanup(&r->d);
    free(r);
}

size_t na_records_collect(struct consumer *c, int timeout_ms) {
    size_t n = 0;
    struct rec *r;
    while (c->workq && (r = na_workq_take(c->workq, n ? 0 : timeout_ms))) {
        collect_one(c, r);
        n++;
    }
    return n;
}

void na_records_drain(struct consumer *c) {
    while (c->workq && na_workq_pending(c->workq)) {
        na_records_collect(c, 100);
    }
}

void na_records_discard(struct consumer *c) {
    while (c->workq && na_workq_pending(c->workq)) {
        struct rec *r = na_workq_take(c->workq, 100);
        if (r) {
            /* Unfinished: read again after the restart. */
            na_decision_cleanup(&r->d);
            rd_kafka_message_destroy(r->rkm);
            free(r);
        }
    }
}

/* A record kept by process_later() is due: process it again, unless its
 * partition went to another consumer meanwhile (that one reads it). */
void na_records_reprocess(struct consumer *c, struct reprocess *rp) {
    if (!rp->entry->orphaned && process_record(c, rp->rkm, rp->entry)) {
        na_jobs_retry_later(c, &rp->retry, na_err2str(NA_ERR_NOMEM));
        return;
    }
    na_tracker_done(rp->entry);
    rd_kafka_message_destroy(rp->rkm);
    free(rp);
}

/* Try again what is due. */
