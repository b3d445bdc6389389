#include "consumer_internal.h"

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

#define NA_CONSUMER_PRUNE_MS 60000
/* Records with the workers at once (workers > 0). */
#define NA_CONSUMER_WORK_WINDOW 256
/* Longest wait for the workers' oldest record while nothing else is read
 * (deliveries are driven again after it). */
#define NA_CONSUMER_WORK_WAIT_MS 5
/* Backoff of a refused dead-letter or ledger write (doubles, with jitter). */

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
     "an article dated more than this outside a story's span never joins it", 0, 60000,
     31536000000LL},
    {"story_reorder", NA_CONF_DURATION, C(story_reorder_ms), "7d",
     "how far out of time order an article may arrive and still find its story: a story "
     "closes once the newest article time seen is story_window + story_reorder past its "
     "newest article",
     0, 0, 31536000000LL},
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
    {"handover_grace", NA_CONF_DURATION, C(handover_grace_ms), "15s",
     "when the previous owner of a partition did not hand it over cleanly (it died, or "
     "lost its group session while cut off from the broker), the alerts of records read "
     "again wait this long for its ledger records before they are sent (0: no wait; "
     "docs/delivery.md)",
     0, 0, 600000},
    {"write_stall", NA_CONF_DURATION, C(write_stall_ms), "60s",
     "how long dead-letter or ledger writes may keep failing before /readyz says not "
     "ready (they are retried meanwhile, consumption paused)",
     0, 1000, 86400000},
    {"log_level", NA_CONF_STRING, C(log_level), "info", "error|warn|info|debug", 0, 0, 0},
    {"print", NA_CONF_BOOL, C(print), "false", "print each alert on stdout", 0, 0, 0},
    {"create_topics", NA_CONF_BOOL, C(create_topics), "true",
     "create the articles and dead-letter topics when missing", 0, 0, 0},
    {"workers", NA_CONF_INT, C(workers), "-1",
     "threads that decode and classify articles beside the main one (-1: one fewer "
     "than the CPUs it may run on, none on one; 0: all on the main thread)",
     0, -1, NA_WORKQ_MAX_THREADS},
    {"exit_eof", NA_CONF_BOOL, C(exit_eof), "false",
     "exit when all partitions are consumed and all alerts finished", 0, 0, 0},
    NA_DAEMON_CONF_ENTRIES(struct na_consumer_conf, daemon),
    NA_CONF_END,
};
#undef C

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
        na_handover_assigned(c, rk, c->conf->topic, parts, false);
        c->assigned_cnt = (cooperative ? c->assigned_cnt : 0) + (size_t)parts->cnt;
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
    bool clean = na_handover(c, parts, false);
    store_offsets(c);
    for (int i = 0; i < parts->cnt; i++) {
        na_tracker_revoke(c->tracker, parts->elems[i].partition);
        na_records_eof_clear(c, parts->elems[i].partition);
    }
    na_handover_finish_dropped(c); /* their entries are orphans now */
    na_handover_released(c, rk, c->conf->topic, parts, clean);
    c->assigned_cnt = cooperative && c->assigned_cnt > (size_t)parts->cnt
                          ? c->assigned_cnt - (size_t)parts->cnt
                          : 0;
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
        na_handover_assigned(c, rk, c->conf->retry_topic, parts, true);
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
    bool clean = na_handover(c, parts, true);
    store_offsets_of(c, c->retry_rk, c->rtracker, c->conf->retry_topic);
    for (int i = 0; i < parts->cnt; i++) {
        na_tracker_revoke(c->rtracker, parts->elems[i].partition);
    }
    na_handover_finish_dropped(c);
    na_handover_released(c, rk, c->conf->retry_topic, parts, clean);
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
    /* rd_kafka_assignment() waits for librdkafka's main thread: asked once
     * a record, it kept the daemon asleep for 40 % of a backlog. The end
     * of every partition assigned comes first (EOF marks are cleared on
     * revoke: never more of them than partitions assigned). */
    if (!c->assigned_cnt || c->eof_cnt < c->assigned_cnt) {
        return false;
    }
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
    if (type == RD_KAFKA_CONSUMER &&
        na_kafka_conf_prefetch_defaults(kconf, errstr, errstr_size)) {
        goto fail;
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
        rd_kafka_conf_set_dr_msg_cb(kconf, na_jobs_on_dlq_delivery);
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
 * once no job of the old ones is left (jobs point at their route),
 * consumption paused meanwhile. A file that does not load leaves
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

/* Every job points at its route (in the deliverer, waiting for another
 * member's hand-over, or for the broker to confirm its ledger, dead-letter
 * or parking record): the old routes go only once no job is left. */
static void swap_routes_when_quiet(struct consumer *c) {
    if (!c->swap_pending || c->jobs_live || na_deliver_pending(c->deliver) ||
        na_ledger_outstanding(c->ledger) || c->retries) {
        return;
    }
    /* A route parked under the old routes stays parked under the new. */
    bool *keep = c->parked ? calloc(c->staged.cnt + 1, sizeof(*keep)) : NULL;
    if (keep) {
        na_park_carry(c, &c->staged, keep);
    }
    na_deliver_forget_routes(c->deliver);
    na_routes_cleanup(&c->owned);
    c->owned = c->staged;
    memset(&c->staged, 0, sizeof(c->staged));
    c->routes = &c->owned;
    c->swap_pending = false;
    make_route_gauges(c);
    for (size_t r = 0; keep && c->parked && r < c->routes->cnt; r++) {
        c->parked[r] = keep[r];
        c->parked_cnt += keep[r];
    }
    free(keep);
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

void na_consumer_story_opts(const struct na_consumer_conf *conf,
                            struct na_stories_opts *opts) {
    struct na_stories_opts o = {
        .window_ms = conf->story_window_ms,
        .reorder_ms = conf->story_reorder_ms,
        .reorder_set = true,
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
    int64_t failing = na_jobs_failing_ms(c);
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

na_err_t na_consumer_conf_check(const struct na_consumer_conf *conf, char *errstr,
                                size_t errstr_size) {
    if (conf->ledger && conf->stories && conf->ledger_horizon_ms > 0 &&
        conf->ledger_horizon_ms < conf->story_window_ms) {
        snprintf(errstr, errstr_size,
                 "ledger_horizon (%lld ms) is shorter than story_window (%lld ms): "
                 "stories would outlive the alerts that opened them",
                 conf->ledger_horizon_ms, conf->story_window_ms);
        return NA_ERR_CONFIG;
    }
    if (conf->webhook) {
        /* The route main() makes of it, made and thrown away. */
        struct na_routes one = {NULL, 0};
        na_err_t err = na_routes_add_url(&one, conf->webhook, conf->webhook_format,
                                         errstr, errstr_size);
        na_routes_cleanup(&one);
        if (err == NA_ERR_NOMEM) {
            snprintf(errstr, errstr_size, "%s", na_err2str(err));
        }
        return err;
    }
    return NA_OK;
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

    if ((err = na_consumer_conf_check(conf, errstr, errstr_size))) {
        goto out;
    }
    if ((err = na_rules_load_file(conf->rules, &c.rules, errstr, errstr_size))) {
        goto out;
    }
    struct na_deliver_opts dopts;
    na_consumer_deliver_opts(conf, &dopts);
    /* A route's answered request keeps its slot until its ledger record is
     * confirmed: a crash re-sends at most max_in_flight requests a route. */
    dopts.hold_until_recorded = conf->ledger;
    if (!(c.deliver = na_deliver_new(&dopts)) || !(c.tracker = na_tracker_new())) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    /* One client reaches the broker first: a refused credential or
     * certificate ends the start after one client's attempts, not two. */
    if (!(c.dlq = make_client(conf, RD_KAFKA_PRODUCER, false, &c, errstr, errstr_size))) {
        err = NA_ERR_CONFIG;
        goto out;
    }
    if ((err = na_kafka_start_check(c.dlq, errstr, errstr_size))) {
        goto out;
    }
    if (!(c.rk = make_client(conf, RD_KAFKA_CONSUMER, false, &c, errstr, errstr_size))) {
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
    struct na_stories_opts sopts;
    na_consumer_story_opts(conf, &sopts);
    if (conf->stories && !(c.stories = na_stories_new_opts(&sopts))) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    int workers = na_workq_threads(conf->workers);
    /* Records out with the workers at once: enough to keep them busy while
     * the main thread delivers, few enough to bound memory. */
    if (workers && !(c.workq = na_workq_new(workers, NA_CONSUMER_WORK_WINDOW,
                                            na_records_work, &c))) {
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
            .confirm_cb = na_jobs_on_recorded,
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
    na_kafka_refill_init(&c.refill, c.rk);
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
            /* Between records: nothing holds on to the old rules (the
             * workers finish what they have first). */
            na_records_drain(&c);
            (void)na_consumer_reload_rules(conf->rules, &c.rules);
            stage_routes(&c);
            rd_kafka_t *rks[] = {c.rk, c.dlq, c.retry_rk, na_ledger_client(c.ledger)};
            na_kafka_reload_sasl(&conf->props, rks, sizeof(rks) / sizeof(rks[0]));
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
        size_t working = c.workq ? na_workq_pending(c.workq) : 0;
        bool delivering = na_deliver_pending(c.deliver) > 0;
        bool busy = delivering || working;
        /* Records whose ledger records are on their way finish when the
         * broker confirms those (na_ledger_poll() below, a few ms): a 100 ms
         * wait for new records first held each of them that long. */
        int wait = busy                              ? 0
                   : na_ledger_outstanding(c.ledger) ? NA_CONSUMER_WORK_WAIT_MS
                                                     : 100;
        /* Read on while the workers have room (bounded memory). */
        rd_kafka_message_t *rkm = !c.workq || na_workq_has_room(c.workq)
                                      ? rd_kafka_consumer_poll(c.rk, wait)
                                      : NULL;
        na_kafka_refill_note(&c.refill, rkm);
        if (rkm && !na_records_handle(&c, rkm)) {
            rd_kafka_message_destroy(rkm);
        }
        /* Nothing read: wait for what comes next. While the workers hold
         * records that is the oldest one's end (the wait ends with it), not
         * the deliveries' sockets: a 20 ms wait on those each time the
         * workers' window was full kept a backlog's daemon idle for a third
         * of its time (docs/benchmarks.md). */
        na_records_collect(&c, rkm || !working ? 0 : NA_CONSUMER_WORK_WAIT_MS);
        na_deliver_run(c.deliver, rkm || working ? 0 : (delivering ? 20 : 0),
                       na_jobs_on_delivered, &c);
        rd_kafka_poll(c.dlq, 0);
        if (c.ledger) {
            na_ledger_poll(c.ledger, 0);
        }
        na_jobs_run_retries(&c);
        na_handover_check(&c);
        if (c.retry_rk) {
            for (int i = 0; i < 100; i++) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(c.retry_rk, 0);
                if (!m) {
                    break;
                }
                na_park_handle(&c, m);
                rd_kafka_message_destroy(m);
            }
            na_park_check(&c);
            na_park_flow(&c);
        }
        na_handover_release(&c);
        store_offsets(&c);
        size_t pending = na_deliver_pending(c.deliver);
        na_metric_set(na_metrics_get(NA_METRIC_GAUGE, "newsalert_consumer_alerts_pending",
                                     "Alerts queued or in flight.", NULL),
                      (double)pending);
        na_park_for_swap(&c);
        swap_routes_when_quiet(&c);
        update_pause(&c);
        if (conf->exit_eof && caught_up(&c)) {
            na_log(NA_LOG_INFO, "consumer", "caught_up", NULL);
            break;
        }
    }

    /* Records the workers still hold raised nothing yet: read again next
     * time. */
    na_records_discard(&c);
    /* Drain: finish in-flight alerts up to the deadline (a second SIGTERM
     * or SIGINT ends it at once), store, close. */
    int64_t deadline = na_daemon_deadline(conf->drain_timeout_ms);
    while ((na_deliver_pending(c.deliver) || rd_kafka_outq_len(c.dlq) ||
            na_ledger_outstanding(c.ledger) || c.retries) &&
           na_daemon_deadline_left_ms(deadline, 1) > 0) {
        na_deliver_run(c.deliver, 50, na_jobs_on_delivered, &c);
        rd_kafka_poll(c.dlq, 10);
        if (c.ledger) {
            na_ledger_poll(c.ledger, 10);
        }
        na_jobs_run_retries(&c);
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
    stats->refills = c.refill.sent;
    na_log(
        NA_LOG_INFO, "consumer", "summary",
        "consumed=%llu poison=%llu matched=%llu alerts_sent=%llu alerts_failed=%llu "
        "dlq=%llu offsets_stored=%llu paused=%llu ledger_skipped=%llu "
        "ledger_recorded=%llu digests=%llu story_linked=%llu too_old=%llu refills=%llu "
        "ends=%llu",
        stats->consumed, stats->poison, stats->matched, stats->alerts_sent,
        stats->alerts_failed, stats->dlq_produced, stats->offsets_stored, stats->paused,
        stats->ledger_skipped, stats->ledger_recorded, stats->digests,
        stats->story_linked, stats->too_old, stats->refills, stats->ends);
out:
    na_httpd_stop(httpd);
    if (sub) {
        rd_kafka_topic_partition_list_destroy(sub);
    }
    na_records_discard(&c);
    na_workq_destroy(c.workq);
    na_jobs_free_retries(&c); /* their records are read again after a restart */
    c.closing = true;         /* the revoke of the close hands over without waiting */
    na_kafka_refill_cleanup(&c.refill);
    if (c.rk) {
        rd_kafka_consumer_close(c.rk); /* commits the stored offsets */
        rd_kafka_destroy(c.rk);
    }
    if (c.retry_rk) {
        rd_kafka_consumer_close(c.retry_rk);
        rd_kafka_destroy(c.retry_rk);
    }
    na_deliver_destroy(c.deliver);
    c.deliver = NULL; /* jobs freed below (ledger confirmations too) hold no slot */
    na_ledger_destroy(c.ledger);
    na_stories_destroy(c.stories);
    free(c.route_gauges);
    if (c.dlq) {
        rd_kafka_flush(c.dlq, na_daemon_should_abort() ? 0 : 5000);
        rd_kafka_destroy(c.dlq);
    }
    while (c.jobs) { /* abandoned by the drain's deadline: read again after a restart */
        na_jobs_free(&c, c.jobs);
    }
    na_tracker_destroy(c.tracker);
    na_tracker_destroy(c.rtracker);
    free(c.parked);
    free(c.rinflight);
    free(c.holds);
    free(c.rholds);
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
