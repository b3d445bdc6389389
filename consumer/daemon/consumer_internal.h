/**
 * @file consumer_internal.h
 * @brief Private to the daemon (the files of daemon/): its state and what its files
 *        share. consumer.c runs the loop (Kafka, offsets, pausing,
 *        rebalances, status); records.c acts on the pipeline's decisions
 *        for one record; jobs.c carries an alert job from delivery to the
 *        ledger or the dead-letter topic and retries refused writes;
 *        handover.c moves alerts in flight between members on a rebalance;
 *        park.c keeps the alerts of a route that is down in retry_topic.
 *
 * Threading: all of it runs on the daemon's main thread (callbacks inside
 * rd_kafka_poll(), na_deliver_run() and na_ledger_poll() included).
 */
#ifndef NEWSALERT_CONSUMER_INTERNAL_H
#define NEWSALERT_CONSUMER_INTERNAL_H

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
#include "newsalert/workq.h"
#include "rules.h"
#include "story.h"
#include "tracker.h"

/* A hand-over ("pending" in the ledger) holds for deliver_timeout plus this
 * (ms): the transfer in flight ends by then, and its outcome is written. */

#include "consumer.h"

/* A partition whose previous owner did not hand it over cleanly (its owner
 * record says "taken"): the alerts of its records below @c below (its end
 * when it was assigned) wait until @c until_ms (Unix ms) for that owner's
 * ledger records before they are sent (docs/delivery.md). */
struct hold {
    int64_t below;
    int64_t until_ms;
};

struct consumer {
    const struct na_consumer_conf *conf;
    struct na_consumer_stats *stats;
    FILE *out;
    rd_kafka_t *rk;                /* the group consumer */
    struct na_kafka_refill refill; /* of rk's prefetch */
    rd_kafka_t *dlq;               /* producer for news.dlq */
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
    size_t assigned_cnt; /* partitions of rk assigned (rebalance callback) */
    json_t *recent;      /* the newest alerts for the status page, newest first */
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
    size_t jobs_live;      /* job_ctx allocated (na_jobs_new()), not freed yet */
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
    struct hold *holds;             /* per articles partition, or NULL */
    int32_t holds_cnt;
    struct hold *rholds; /* per retry partition, or NULL */
    int32_t rholds_cnt;
    int64_t handover_checked_ms; /* na_handover_check()'s last look */
    size_t slots_held;           /* jobs answered 2xx whose records are not confirmed */
    na_workq_t *workq;           /* decode and classify on worker threads, or NULL */
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

/* The first member of each thing that can be retried (struct dlq_ctx,
 * struct job_ctx, struct na_records_reprocess), so that a retry is its container. */
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
    size_t full_len;          /* the value's length before na_jobs_dlq_cut(); 0: whole */
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
    bool holds_slot;   /* answered 2xx: its route's slot until recorded */
    struct job_ctx *jprev, *jnext;
    /* Another member holds this alert ("pending" in the ledger): the job
     * waits, with its body and digest item, until the ledger says how that
     * ended or until await_until_ms (Unix ms), and only then is submitted. */
    bool awaiting;
    int64_t await_until_ms;
    /* A "pending" mark's until_ms when last read (another member's clock),
     * and how long it is held for that mark (Unix ms): no longer than a
     * member holds a hand-over from when it was read (na_handover_check()). */
    int64_t mark_until_ms, mark_hold_ms;
    /* Awaiting because its partition was not handed over cleanly (no
     * "pending" mark): it waits for a ledger record until await_until_ms. */
    bool held;
    /* Awaiting still: submitting it failed for want of memory (logged
     * once); tried again at each look. */
    bool submit_failed;
    char *body;
    size_t len;
    struct na_digest_item *item;
    /* Its partition was given up while it was in flight: "pending" was
     * written; its outcome (or "released") is written when it ends here. */
    bool handed_over;
    /* Queued (or waiting for a hand-over) when its partition was given up:
     * taken out, its unit left undone until the partition is revoked in the
     * tracker (so no offset is stored past it: the new owner reads the
     * record again), then ended by na_handover_finish_dropped(). */
    bool dropped;
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

/* ---- jobs.c ---- */

/** @brief Register a delivery job (consumer.jobs). */
void na_jobs_register(struct consumer *c, struct job_ctx *jc);
/** @brief Free @p jc (NULL-safe), leaving the registry and the counts. */
/** @returns a zeroed job, counted in c->jobs_live (a job points at its
 *          route: routes read again on SIGHUP replace the old ones only once
 *          no job is left); NULL on no memory. */
struct job_ctx *na_jobs_new(struct consumer *c);
void na_jobs_free(struct consumer *c, struct job_ctx *jc);
/** @brief The job ended for good: waiters released, its unit of the entry done. */
void na_jobs_end(struct consumer *c, struct job_ctx *jc);
/** @brief Try @p r again after a backoff (counted, logged). */
void na_jobs_retry_later(struct consumer *c, struct retry *r, const char *why);
/** @brief Produce (again) the dead-letter copy @p ctx. */
void na_jobs_dlq_produce(struct consumer *c, struct dlq_ctx *ctx);
/** @brief Fill the headers' part of a dead-letter copy. */
void na_jobs_dlq_fill(struct dlq_ctx *ctx, const void *key, size_t key_len,
                      const char *stage, const char *reason, const char *route,
                      int32_t partition, int64_t offset);
/**
 * @brief Copy @p value to the DLQ with error headers; one unit of @p entry
 *        is done once the broker has the copy.
 * @param source_topic the topic the record came from (NULL: the articles').
 * @returns NA_OK, or NA_ERR_NOMEM (nothing taken: process the record again).
 */
na_err_t na_jobs_dead_letter(struct consumer *c, struct na_tracker_entry *entry,
                             const void *key, size_t key_len, const void *value,
                             size_t len, const char *stage, const char *reason,
                             const char *route, const char *source_topic,
                             int32_t partition, int64_t offset);
/** @brief Count @p name{route=@p route}. */
void na_jobs_route_inc(const char *name, const char *help, const char *route);
/** @returns true when an alert of @p alert_id to @p route is on its way:
 *           in the deliverer, or held for another member's outcome (a
 *           second job for it would send it twice). */
bool na_jobs_on_its_way(const struct consumer *c, const struct na_route *route,
                        const char *alert_id);
/** @brief @p entry waits for the delivery of (@p route, @p alert_id) in flight.
 *  @returns NA_OK or NA_ERR_NOMEM. */
na_err_t na_jobs_wait(struct consumer *c, struct na_tracker_entry *entry,
                      const struct na_route *route, const char *alert_id);
/** @brief Write the job's ledger record (jc->outcome, jc->del). */
void na_jobs_ledger_write(struct consumer *c, struct job_ctx *jc);
/** The deliverer's done callback (na_deliver_run()). */
void na_jobs_on_delivered(void *opaque, const struct na_delivery_result *res, void *vc);
/** The ledger's confirmation callback (na_ledger_poll()). */
void na_jobs_on_recorded(void *opaque, na_err_t err, void *vc);
/** The dead-letter producer's delivery report (rd_kafka_poll(c->dlq)). */
void na_jobs_on_dlq_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque);
/** @brief Try again what is due. */
void na_jobs_run_retries(struct consumer *c);
/** @returns how long the oldest retried work has been failing (ms), 0 if none. */
int64_t na_jobs_failing_ms(const struct consumer *c);
/** @brief Free what waits to be tried again (its records are read again). */
void na_jobs_free_retries(struct consumer *c);

/* ---- records.c ---- */

/** @returns true when @p rkm was taken (kept to be processed again later). */
bool na_records_handle(struct consumer *c, rd_kafka_message_t *rkm);
/** na_work_fn of the workers: decode and classify one record. */
void na_records_work(void *rec, void *consumer);
/** @brief Finish the records the workers are done with, in the order they
 *         were read; wait up to @p timeout_ms for the first. @returns how
 *         many. */
size_t na_records_collect(struct consumer *c, int timeout_ms);
/** @brief Finish every record out with the workers (before the rules are
 *         swapped, or for exit_eof). */
void na_records_drain(struct consumer *c);
/** @brief Drop the records out with the workers unfinished (shutdown:
 *         they are read again after the restart). */
void na_records_discard(struct consumer *c);
/** @brief A record kept for want of memory is due: process it again. */
void na_records_reprocess(struct consumer *c, struct reprocess *rp);
/** @brief Forget that @p partition was at its end (exit_eof). */
void na_records_eof_clear(struct consumer *c, int32_t partition);

/* ---- handover.c ---- */

/** @brief Finish or hand over the alerts of @p parts (of retry_topic when
 *         @p from_retry) before they go to another member.
 *  @returns true when every alert sent from them is recorded in the
 *           ledger (or marked "pending" there): a clean hand-over. */
bool na_handover(struct consumer *c, const rd_kafka_topic_partition_list_t *parts,
                 bool from_retry);
/** @brief @p parts of @p topic were assigned through @p rk (ledger caught
 *         up): hold the partitions their previous owner did not release,
 *         and mark them taken. */
void na_handover_assigned(struct consumer *c, rd_kafka_t *rk, const char *topic,
                          const rd_kafka_topic_partition_list_t *parts, bool from_retry);
/** @brief @p parts of @p topic are given up through @p rk: mark them
 *         released when the hand-over was @p clean and the assignment not
 *         lost (another member may own them already). */
void na_handover_released(struct consumer *c, rd_kafka_t *rk, const char *topic,
                          const rd_kafka_topic_partition_list_t *parts, bool clean);
/** @returns true (and *@p until_ms) when an alert of the record at
 *           @p offset of @p partition must wait for the previous owner's
 *           ledger records. */
bool na_handover_held(const struct consumer *c, bool from_retry, int32_t partition,
                      int64_t offset, int64_t *until_ms);
/** @brief Jobs waiting for another member's outcome: end or send them. */
void na_handover_check(struct consumer *c);
/** @brief Release handed-over jobs that would be retried here. */
void na_handover_release(struct consumer *c);
/** @brief End the jobs na_handover() dropped; call once their partitions
 *         are revoked in the tracker (their entries orphaned). */
void na_handover_finish_dropped(struct consumer *c);

/* ---- park.c ---- */

/** @brief Start parking @p jc (it holds its body and digest item). */
void na_park_job(struct consumer *c, struct job_ctx *jc);
/** @brief Write @p jc to retry_topic (again). */
void na_park_produce(struct consumer *c, struct job_ctx *jc);
/** @brief The broker has @p jc in retry_topic (or refused it). */
void na_park_on_confirm(struct consumer *c, struct job_ctx *jc, rd_kafka_resp_err_t err);
/** na_deliver_route_count() filter: a job of the articles topic. */
bool na_park_main_job(void *opaque, void *ctx);
/** @brief Park and unpark routes; dead-letter parked alerts too old. */
void na_park_check(struct consumer *c);
/** @brief While routes wait to be swapped (SIGHUP), alerts read back from
 *         retry_topic that wait in the deliverer go back to it. */
void na_park_for_swap(struct consumer *c);
/** @brief Routes are swapped (SIGHUP): set @p keep[i] (zeroed, one per
 *         route of @p fresh) for each route of @p fresh parked now under
 *         its name. It stays parked: its backlog in retry_topic goes out
 *         before its new alerts, and it is unparked (its gauge back to 0)
 *         once that is drained. */
void na_park_carry(const struct consumer *c, const struct na_routes *fresh, bool *keep);
/** @brief One record of retry_topic. */
void na_park_handle(struct consumer *c, const rd_kafka_message_t *rkm);
/** @brief Hold or release the partitions of retry_topic. */
void na_park_flow(struct consumer *c);

#endif
