/* Partitions that move between the members of a group (docs/delivery.md,
 * "Consumer groups"). */
#include "consumer_internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define NA_CONSUMER_HANDOVER_SLACK_MS 10000
/* How long a revoke waits for its hand-over marks to be confirmed (ms). */
#define NA_CONSUMER_HANDOVER_WRITE_MS 5000
/* How often the ledger forgets alerts past its horizon. */

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
void na_handover_check(struct consumer *c) {
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
            na_jobs_end(c, jc);
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
            na_jobs_free(c, jc);
            continue;
        }
        jc->in_deliverer = true;
    }
}

/* Is @p jc one of the records of @p parts (of retry_topic when @p
 * from_retry, else of the articles topic)? */
static bool job_of(const struct job_ctx *jc, const rd_kafka_topic_partition_list_t *parts,
                   bool from_retry) {
    return jc->from_retry == from_retry && !jc->dropped && !jc->entry->orphaned &&
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
    if (t->parts) {
        jc->dropped = true; /* ended once the partition is revoked */
        return true;
    }
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
    na_jobs_end(t->c, jc);
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

/* Jobs of @p parts whose route took the alert and whose ledger record the
 * broker has not confirmed yet (it may be down). */
static size_t recording_of(const struct consumer *c,
                           const rd_kafka_topic_partition_list_t *parts,
                           bool from_retry) {
    size_t n = 0;
    for (const struct job_ctx *jc = c->jobs; jc; jc = jc->jnext) {
        n += jc->outcome[0] && !jc->in_deliverer && !jc->awaiting && !jc->handed_over &&
             job_of(jc, parts, from_retry);
    }
    return n;
}

void na_handover(struct consumer *c, const rd_kafka_topic_partition_list_t *parts,
                 bool from_retry) {
    int64_t deadline = na_mono_ms() + (c->closing ? 0 : c->conf->revoke_timeout_ms);
    size_t waited = jobs_of(c, parts, from_retry);
    while (jobs_of(c, parts, from_retry) && na_mono_ms() < deadline) {
        na_deliver_run(c->deliver, 20, na_jobs_on_delivered, c);
        rd_kafka_poll(c->dlq, 0);
        if (c->ledger) {
            na_ledger_poll(c->ledger, 0);
        }
        na_jobs_run_retries(c);
        na_handover_check(c);
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
            jc->awaiting = false;
            c->awaiting--;
            jc->dropped = true;
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
    /* Alerts a route took whose ledger records are not confirmed yet (the
     * broker was down, or is slow): the new owner must find those records
     * when it catches up, or it sends the alerts again. So the revoke
     * waits for them, up to write_stall (the broker is needed by the new
     * owner too), and for the marks above. */
    size_t recording = c->ledger ? recording_of(c, parts, from_retry) : 0;
    size_t unrecorded = recording;
    int64_t written = na_mono_ms() + (recording ? c->conf->write_stall_ms
                                                : NA_CONSUMER_HANDOVER_WRITE_MS);
    while (((marked && na_ledger_outstanding(c->ledger)) || unrecorded) &&
           na_mono_ms() < written) {
        na_ledger_poll(c->ledger, 20);
        na_jobs_run_retries(c);
        unrecorded = recording ? recording_of(c, parts, from_retry) : 0;
    }
    na_log(NA_LOG_INFO, "consumer", "handed_over",
           "dropped=%zu in_flight=%zu recorded=%zu unrecorded=%zu", dropped, marked,
           recording - unrecorded, unrecorded);
}

void na_handover_release(struct consumer *c) {
    if (c->handed_over) {
        struct take_ctx t = {c, NULL, false};
        (void)na_deliver_take(c->deliver, NULL, take_job, &t);
    }
}

void na_handover_finish_dropped(struct consumer *c) {
    for (struct job_ctx *jc = c->jobs, *next; jc; jc = next) {
        next = jc->jnext;
        if (jc->dropped) {
            na_jobs_end(c, jc);
        }
    }
}
