/* Partitions that move between the members of a group (docs/delivery.md,
 * "Consumer groups"). */
#include "consumer_internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* How long a revoke waits for its hand-over marks to be confirmed (ms). */
#define NA_CONSUMER_HANDOVER_WRITE_MS 5000
/* How often jobs waiting for another member's outcome look at the ledger. */
#define NA_CONSUMER_HANDOVER_CHECK_MS 10
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
    /* The ledger's answers change only as records are followed: a look
     * every few milliseconds is enough, and keeps a long hold cheap. */
    if (!c->awaiting || (now >= c->handover_checked_ms &&
                         now - c->handover_checked_ms < NA_CONSUMER_HANDOVER_CHECK_MS)) {
        return;
    }
    c->handover_checked_ms = now;
    for (struct job_ctx *jc = c->jobs, *next; c->awaiting && jc; jc = next) {
        next = jc->jnext;
        if (!jc->awaiting) {
            continue;
        }
        int64_t until = 0;
        enum na_ledger_state ls =
            na_ledger_state(c->ledger, jc->alert_id, jc->route->name, &until);
        /* "parked" ends a job of the articles topic (the retry topic's
         * reader sends it), not the parked copy itself. */
        bool parked = ls == NA_LEDGER_PARKED && !jc->from_retry;
        if (ls == NA_LEDGER_SENT || ls == NA_LEDGER_DEAD || parked ||
            jc->entry->orphaned) {
            na_log(NA_LOG_INFO, "consumer", "handover_done",
                   "route=%s alert=%s outcome=%s", na_log_q(jc->route->name),
                   jc->alert_id,
                   ls == NA_LEDGER_SENT   ? "sent"
                   : ls == NA_LEDGER_DEAD ? "dead_lettered"
                   : parked               ? "parked"
                                          : "revoked");
            if (ls == NA_LEDGER_SENT) {
                c->stats->ledger_skipped++;
            }
            na_jobs_end(c, jc);
            continue;
        }
        if (ls == NA_LEDGER_PENDING) {
            /* A member holds a hand-over deliver_timeout plus the slack from
             * when it writes the mark: held here no longer than that from
             * when the mark is read, whatever its until_ms (a member's clock
             * far ahead, or a bad record, would hold the alert and its
             * partition's offsets until then). A new mark counts anew. */
            if (until != jc->mark_until_ms) {
                int64_t most =
                    now + c->conf->deliver_timeout_ms + NA_LEDGER_HANDOVER_SLACK_MS;
                jc->mark_until_ms = until;
                jc->mark_hold_ms = until < most ? until : most;
            }
            if (jc->mark_hold_ms > now) {
                continue;
            }
        }
        if (jc->held && (ls == NA_LEDGER_NONE || ls == NA_LEDGER_PARKED) &&
            jc->await_until_ms > now) {
            continue; /* the previous owner may still write its record */
        }
        if (na_deliver_submit(c->deliver, jc->route, jc->alert_id, jc->body, jc->len,
                              jc->item, jc)) {
            /* No memory for the deliverer's job: it keeps waiting here,
             * body and all, and is submitted again at the next look (the
             * records that wait for it stay unfinished only until then). */
            if (!jc->submit_failed) {
                jc->submit_failed = true;
                na_log(NA_LOG_ERROR, "consumer", "handover_send_failed",
                       "route=%s alert=%s err=%s", na_log_q(jc->route->name),
                       jc->alert_id, na_err2str(NA_ERR_NOMEM));
            }
            continue;
        }
        jc->body = NULL;
        jc->item = NULL;
        jc->awaiting = false;
        c->awaiting--;
        na_log(NA_LOG_INFO, "consumer", "handover_send", "route=%s alert=%s reason=%s",
               na_log_q(jc->route->name), jc->alert_id,
               ls == NA_LEDGER_PENDING ? "expired"
               : jc->held              ? "hold_expired"
                                       : "released");
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

/* Does a record read here wait for @p jc's delivery (the partition came
 * back to this member, which read the record again)? */
static bool waited_for_here(const struct consumer *c, const struct job_ctx *jc) {
    for (const struct waiter *w = c->waiters; w; w = w->next) {
        if (w->route == jc->route && !strcmp(w->alert_id, jc->alert_id)) {
            return true;
        }
    }
    return false;
}

/* na_deliver_take(): a queued job of a partition given up goes (the new
 * owner sends it); a handed-over one that would be retried is released,
 * unless its partition came back here and the record read again waits for
 * it: releasing it would finish that record with the alert unsent (no
 * member sends an alert whose reader already finished it), so this member,
 * the owner again, keeps trying it; its outcome replaces the "pending"
 * mark in the ledger. */
static bool take_job(struct na_deliver_queued *q, void *vt) {
    struct take_ctx *t = vt;
    struct job_ctx *jc = q->opaque;
    if (!jc || (t->parts ? !job_of(jc, t->parts, t->from_retry) : !jc->handed_over)) {
        return false;
    }
    if (!t->parts && waited_for_here(t->c, jc)) {
        jc->handed_over = false;
        t->c->handed_over--;
        na_log(NA_LOG_INFO, "consumer", "handover_reclaimed", "route=%s alert=%s",
               na_log_q(jc->route->name), jc->alert_id);
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

bool na_handover(struct consumer *c, const rd_kafka_topic_partition_list_t *parts,
                 bool from_retry) {
    int64_t deadline = na_mono_ms() + (c->closing ? 0 : c->conf->revoke_timeout_ms);
    size_t waited = jobs_of(c, parts, from_retry);
    while (jobs_of(c, parts, from_retry) && na_mono_ms() < deadline &&
           !na_daemon_should_abort()) {
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
        return true;
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
    size_t marked = 0, unmarked = 0;
    int64_t until =
        na_now_ms() + c->conf->deliver_timeout_ms + NA_LEDGER_HANDOVER_SLACK_MS;
    for (struct job_ctx *jc = c->jobs; c->ledger && jc; jc = jc->jnext) {
        if (!jc->in_deliverer || jc->handed_over || !job_of(jc, parts, from_retry)) {
            continue;
        }
        struct na_ledger_delivery del = {"pending", 0, 0, na_now_ms(), until};
        if (na_ledger_record(c->ledger, jc->alert_id, jc->route->name, &del,
                             jc->alert_json, NULL)) {
            na_log(NA_LOG_WARN, "consumer", "handover_mark_failed", "alert=%s",
                   jc->alert_id);
            unmarked++;
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
     * owner too), and for the marks above; a second SIGTERM/SIGINT ends
     * the wait (an alert whose record is not confirmed then may be sent
     * again after the restart). */
    size_t recording = c->ledger ? recording_of(c, parts, from_retry) : 0;
    size_t unrecorded = recording;
    int64_t written = na_mono_ms() + (recording ? c->conf->write_stall_ms
                                                : NA_CONSUMER_HANDOVER_WRITE_MS);
    while (((marked && na_ledger_outstanding(c->ledger)) || unrecorded) &&
           na_mono_ms() < written && !na_daemon_should_abort()) {
        na_ledger_poll(c->ledger, 20);
        na_jobs_run_retries(c);
        unrecorded = recording ? recording_of(c, parts, from_retry) : 0;
    }
    bool unconfirmed = marked && na_ledger_outstanding(c->ledger);
    na_log(NA_LOG_INFO, "consumer", "handed_over",
           "dropped=%zu in_flight=%zu recorded=%zu unrecorded=%zu", dropped, marked,
           recording - unrecorded, unrecorded);
    return !unrecorded && !unmarked && !unconfirmed;
}

/* ---- owners: who held a partition, and did it let go cleanly ----
 *
 * A member that lost its group session while cut off from the broker (or
 * that was killed) did not hand its partitions over: alerts it sent may
 * have no ledger record yet, and a member cut off writes them when it gets
 * through again, after the new owner read the records. So each member
 * marks the partitions it is given "taken" in the ledger and those it lets
 * go with every send recorded "released". A new owner that finds "taken"
 * holds the alerts of the records it reads again (those below the
 * partition's end at the assignment) for handover_grace, and sends only
 * those the ledger still does not know by then. */

static struct hold *holds_of(struct consumer *c, bool from_retry, int32_t partition) {
    struct hold **v = from_retry ? &c->rholds : &c->holds;
    int32_t *cnt = from_retry ? &c->rholds_cnt : &c->holds_cnt;
    if (partition < 0 || partition >= 1 << 20) {
        return NULL;
    }
    if (partition >= *cnt) {
        int32_t n = partition + 1;
        struct hold *nv = realloc(*v, (size_t)n * sizeof(*nv));
        if (!nv) {
            return NULL;
        }
        memset(nv + *cnt, 0, (size_t)(n - *cnt) * sizeof(*nv));
        *v = nv;
        *cnt = n;
    }
    return &(*v)[partition];
}

bool na_handover_held(const struct consumer *c, bool from_retry, int32_t partition,
                      int64_t offset, int64_t *until_ms) {
    const struct hold *v = from_retry ? c->rholds : c->holds;
    int32_t cnt = from_retry ? c->rholds_cnt : c->holds_cnt;
    if (partition < 0 || partition >= cnt || !v[partition].until_ms ||
        offset >= v[partition].below || v[partition].until_ms <= na_now_ms()) {
        return false;
    }
    *until_ms = v[partition].until_ms;
    return true;
}

static const char *member_of(rd_kafka_t *rk, char **owned) {
    *owned = rd_kafka_memberid(rk);
    return *owned ? *owned : "";
}

void na_handover_assigned(struct consumer *c, rd_kafka_t *rk, const char *topic,
                          const rd_kafka_topic_partition_list_t *parts, bool from_retry) {
    char *member = NULL;
    const char *name = member_of(rk, &member);
    for (int i = 0; c->ledger && i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        struct hold *h = holds_of(c, from_retry, p);
        int64_t at = 0;
        if (h) {
            h->until_ms = 0;
        }
        if (na_ledger_owner(c->ledger, topic, p, &at) == NA_OWNER_TAKEN &&
            c->conf->handover_grace_ms > 0 && h) {
            /* Its end now: what was written later, no owner read before. */
            int64_t lo = 0, hi = INT64_MAX;
            rd_kafka_resp_err_t kerr =
                rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 5000);
            h->below = kerr ? INT64_MAX : hi;
            h->until_ms = na_now_ms() + c->conf->handover_grace_ms;
            na_log(NA_LOG_INFO, "consumer", "handover_unclean",
                   "topic=%s partition=%d below=%lld grace_ms=%lld taken_at_ms=%lld",
                   na_log_q(topic), (int)p, (long long)h->below,
                   c->conf->handover_grace_ms, (long long)at);
        }
        if (na_ledger_mark_owner(c->ledger, topic, p, NA_OWNER_TAKEN, name)) {
            na_log(NA_LOG_WARN, "consumer", "owner_mark_failed", "topic=%s partition=%d",
                   na_log_q(topic), (int)p);
        }
    }
    rd_kafka_mem_free(rk, member);
}

void na_handover_released(struct consumer *c, rd_kafka_t *rk, const char *topic,
                          const rd_kafka_topic_partition_list_t *parts, bool clean) {
    char *member = NULL;
    if (!c->ledger) {
        return;
    }
    if (!clean || rd_kafka_assignment_lost(rk)) {
        /* The next owner finds "taken" and holds what it reads again. */
        na_log(NA_LOG_WARN, "consumer", "handover_unclean_exit",
               "topic=%s partitions=%d reason=%s", na_log_q(topic), parts->cnt,
               clean ? "assignment_lost" : "unrecorded");
        return;
    }
    const char *name = member_of(rk, &member);
    for (int i = 0; i < parts->cnt; i++) {
        if (na_ledger_mark_owner(c->ledger, topic, parts->elems[i].partition,
                                 NA_OWNER_RELEASED, name)) {
            na_log(NA_LOG_WARN, "consumer", "owner_mark_failed", "topic=%s partition=%d",
                   na_log_q(topic), (int)parts->elems[i].partition);
        }
    }
    rd_kafka_mem_free(rk, member);
    /* Confirmed before the partitions go, so the next owner finds them. */
    int64_t deadline = na_mono_ms() + NA_CONSUMER_HANDOVER_WRITE_MS;
    while (na_ledger_outstanding(c->ledger) && na_mono_ms() < deadline &&
           !na_daemon_should_abort()) {
        na_ledger_poll(c->ledger, 20);
        na_jobs_run_retries(c);
    }
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
