/**
 * @file ledger.h
 * @brief The alert ledger: which alert went to which route, kept in the
 *        compacted topic `news.alerts` (key = alert id, value = alert/v1
 *        plus a "deliveries" object with one outcome per route).
 *
 * Invariant: an alert is sent to a route only when the ledger has no
 * delivered record of (alert id, route); a delivery is confirmed by the
 * broker (idempotent producer, acks=all) before the offset of the article
 * that raised it may be stored. Together with at-least-once consumption this
 * means an alert reaches a route at most once per ledger, also after a kill
 * -9 between delivery and commit: the article is consumed again, the ledger
 * says delivered, nothing is re-sent. (A crash between the HTTP 2xx and the
 * ledger write can still re-send once; the webhook-id header lets the
 * receiver drop that copy.)
 *
 * Compaction keeps only the last value of a key, so every record carries
 * ALL routes known delivered for its alert, not just the newest one.
 *
 * Horizon: with na_ledger_opts.horizon_ms, an alert whose newest outcome is
 * older is forgotten (memory and topic stay bounded). "Never twice" then
 * holds for alerts raised within the horizon; the consumer raises no alert
 * for a record older than the horizon (docs/delivery.md).
 *
 * Following (na_ledger_opts.follow): after the load the ledger goes on
 * reading the topic, so that every member of a consumer group learns what
 * the others delivered, dead-lettered, handed over or opened as stories
 * (load_cb runs for each record, inside na_ledger_poll()). A member that is
 * given partitions calls na_ledger_catch_up() first: what the previous
 * owner wrote before it let them go is then known.
 *
 * Hand-over (docs/delivery.md): a member that gives up a partition while an
 * alert of it is in flight writes "pending" with "until_ms" for it; the new
 * owner waits for "delivered", "dead_lettered" or "released" (or for
 * until_ms) before it sends that alert itself.
 *
 * Owners (docs/delivery.md, "Consumer groups"): besides alerts the topic
 * keeps one record per partition of an input topic (key "owner/TOPIC/P"):
 * "taken" when a member is given the partition, "released" when it let the
 * partition go with every alert it sent recorded. A new owner that finds
 * "taken" knows the previous owner did not hand over cleanly (it died, or
 * lost its group session while cut off from the broker and may still write
 * ledger records of alerts it sent) and holds the alerts of records it
 * reads again for handover_grace before it sends them.
 *
 * Threading: one thread. Confirmation callbacks run inside
 * na_ledger_poll() / na_ledger_flush() on the caller's thread.
 */
#ifndef NEWSALERT_LEDGER_H
#define NEWSALERT_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "newsalert/err.h"
#include "newsalert/kafka.h"

#define NA_LEDGER_SCHEMA "alert/v1"
/** A "pending" mark holds its alert deliver_timeout plus this (ms) from
 *  when it is written (until_ms); a reader holds it no longer than that
 *  from when it reads it, whatever the mark's until_ms says. */
#define NA_LEDGER_HANDOVER_SLACK_MS 10000

typedef struct na_ledger_s na_ledger_t;

/**
 * Called once per na_ledger_record() when the broker confirmed (err NA_OK)
 * or refused (err NA_ERR_KAFKA) the record. @p opaque is what
 * na_ledger_record() got.
 */
typedef void(na_ledger_confirm_cb)(void *opaque, na_err_t err, void *ctx);

/**
 * Called by na_ledger_open() for every record read while loading, after it
 * was applied (e.g. to re-open stories from a record's "story" member).
 * @p value is borrowed for the call; NULL for a tombstone.
 */
typedef void(na_ledger_load_cb)(const char *alert_id, const json_t *value, void *ctx);

struct na_ledger_opts {
    const char *brokers;                /**< bootstrap servers */
    const struct na_kafka_props *props; /**< -X pass-through, or NULL */
    const char *topic;                  /**< NULL: NA_TOPIC_ALERTS */
    int load_timeout_ms;                /**< reading the ledger to its end */
    bool create_topic;                  /**< create the compacted topic if missing */
    na_ledger_confirm_cb *confirm_cb;   /**< may be NULL */
    void *ctx;                          /**< passed to confirm_cb */
    na_ledger_load_cb *load_cb;         /**< may be NULL */
    void *load_ctx;                     /**< passed to load_cb */
    /** Go on reading the topic after the load (see above). */
    bool follow;
    /** Forget alerts whose newest outcome is older than this (ms; 0 keeps
     *  every alert): records older are skipped at load (load_cb is not
     *  called for them), na_ledger_prune() drops them later, and a topic
     *  the ledger creates deletes them too (compact,delete, retention.ms).
     *  An alert whose outcomes carry no time ("at_ms") is kept. */
    int64_t horizon_ms;
};

/** One route's outcome for an alert, as written in "deliveries". */
struct na_ledger_delivery {
    const char *outcome; /**< "delivered", "digest" (sent inside a digest),
                              "dead_lettered", "linked" (story follow-up, not
                              sent), "parked" (written to retry_topic: its
                              reader sends it), "pending" (in flight at a member that gave
                              its partition up), "released" (that member
                              stopped: the new owner sends it) */
    long status;         /**< last HTTP status, 0 if none */
    int attempts;
    int64_t at_ms;    /**< Unix ms of the outcome */
    int64_t until_ms; /**< "pending": Unix ms until which it holds */
};

/** What the ledger says of (alert, route), for the decision to send. */
enum na_ledger_state {
    NA_LEDGER_NONE = 0, /**< nothing that stops a send */
    NA_LEDGER_SENT,     /**< "delivered" or "digest" */
    NA_LEDGER_DEAD,     /**< "dead_lettered": given up on, in the DLQ */
    NA_LEDGER_PENDING,  /**< "pending": another member is sending it */
    NA_LEDGER_PARKED,   /**< "parked": it waits in retry_topic, whose reader
                             sends it */
};

/**
 * @brief Open the ledger: read @p opts->topic from the beginning to its
 *        current end (every partition) into memory, and make the idempotent
 *        producer that na_ledger_record() uses.
 * @param out new ledger; destroy with na_ledger_destroy().
 * @returns NA_OK, NA_ERR_KAFKA / NA_ERR_TIMEOUT (errstr says which
 *          partition did not reach its end), NA_ERR_CONFIG, NA_ERR_NOMEM.
 * @remark A record that is not a ledger record is skipped, here as while
 *         following: counted (newsalert_ledger_invalid_total) and logged
 *         with partition, offset and reason (event=invalid_record, a few
 *         lines a minute at most).
 */
NA_WUR na_err_t na_ledger_open(const struct na_ledger_opts *opts, na_ledger_t **out,
                               char *errstr, size_t errstr_size);

/**
 * @brief An in-memory ledger with no Kafka behind it (tests, dry runs):
 *        na_ledger_record() marks and confirms at the next na_ledger_poll().
 * @returns new ledger; destroy with na_ledger_destroy(); NULL on no memory.
 */
na_ledger_t *na_ledger_new_memory(na_ledger_confirm_cb *cb, void *ctx);

/** @brief Flush outstanding records (up to 10 s) and free; NULL-safe. */
void na_ledger_destroy(na_ledger_t *l);

/** @returns true when (@p alert_id, @p route) is recorded as sent
 *           ("delivered" or "digest"). */
bool na_ledger_delivered(const na_ledger_t *l, const char *alert_id, const char *route);

/**
 * @returns the state of (@p alert_id, @p route); with NA_LEDGER_PENDING,
 *          *@p until_ms (may be NULL) is when the hand-over stops holding.
 */
enum na_ledger_state na_ledger_state(const na_ledger_t *l, const char *alert_id,
                                     const char *route, int64_t *until_ms);

/** @returns true when @p alert_id has any record (any route, any outcome). */
bool na_ledger_known(const na_ledger_t *l, const char *alert_id);

/** @returns alerts in memory. */
size_t na_ledger_count(const na_ledger_t *l);
/** @returns route names in memory: those the alerts in memory have an
 *           outcome of (a name no alert has any more is forgotten). */
size_t na_ledger_route_names(const na_ledger_t *l);

/** @returns borrowed: the ledger's Kafka client (NULL for a memory ledger),
 *           valid until na_ledger_destroy(); for SIGHUP's new credentials. */
rd_kafka_t *na_ledger_client(na_ledger_t *l);

/**
 * @brief Mark (@p alert_id, @p route) in memory and produce the alert's
 *        record (alert/v1 @p alert_json plus every route's outcome known).
 *        The in-memory mark is immediate, so a second call for the same
 *        pair is answered "delivered" at once; the record is durable only
 *        when the confirm callback says NA_OK.
 * @param alert_json borrowed alert/v1 object text (the record's body);
 *        NULL writes a record with "deliveries" only.
 * @returns NA_OK (confirm_cb will be called exactly once with @p opaque),
 *          or an error (confirm_cb is not called).
 */
NA_WUR na_err_t na_ledger_record(na_ledger_t *l, const char *alert_id, const char *route,
                                 const struct na_ledger_delivery *d,
                                 const char *alert_json, void *opaque);

/** @brief Set the horizon (see na_ledger_opts.horizon_ms) of @p l, e.g. of
 *         a memory ledger; records applied later are checked against it. */
void na_ledger_set_horizon(na_ledger_t *l, int64_t horizon_ms);

/**
 * @brief Forget the alerts whose newest outcome is older than the horizon
 *        at @p now_ms (Unix ms). A no-op without a horizon. Cost: one pass
 *        over the table, and a rebuilt table when anything was dropped.
 * @returns alerts forgotten.
 */
size_t na_ledger_prune(na_ledger_t *l, int64_t now_ms);

/** @brief Serve producer events (confirmations) for up to @p timeout_ms,
 *         and apply what the follower read meanwhile (no waiting for it). */
void na_ledger_poll(na_ledger_t *l, int timeout_ms);

/**
 * @brief Read the topic up to the end it has now (every partition), so
 *        that what any member wrote before this call is applied. A no-op
 *        without following.
 * @returns NA_OK, NA_ERR_TIMEOUT after @p timeout_ms, NA_ERR_KAFKA.
 */
NA_WUR na_err_t na_ledger_catch_up(na_ledger_t *l, int timeout_ms);

/** @returns records produced and not yet confirmed or refused. */
size_t na_ledger_outstanding(const na_ledger_t *l);

/** What the owner records say of a partition of an input topic. */
enum na_ledger_owner {
    NA_OWNER_UNKNOWN = 0, /**< never marked (a new group, or an older version) */
    NA_OWNER_TAKEN,       /**< a member took it and has not released it */
    NA_OWNER_RELEASED,    /**< its last owner let it go with every send recorded */
};

/**
 * @brief Mark @p partition of @p topic as taken or released by @p member
 *        (in memory at once; a Kafka ledger's confirmation of the record
 *        reaches confirm_cb with a NULL opaque, like a hand-over mark).
 * @param state NA_OWNER_TAKEN or NA_OWNER_RELEASED.
 * @returns NA_OK, NA_ERR_INVALID (state, or a topic name too long for a
 *          key), NA_ERR_NOMEM, NA_ERR_KAFKA (not queued).
 */
NA_WUR na_err_t na_ledger_mark_owner(na_ledger_t *l, const char *topic, int32_t partition,
                                     enum na_ledger_owner state, const char *member);

/** @returns what the owner records say of @p partition of @p topic;
 *           *@p at_ms (may be NULL) is when that was written (Unix ms). */
enum na_ledger_owner na_ledger_owner(const na_ledger_t *l, const char *topic,
                                     int32_t partition, int64_t *at_ms);

/**
 * @brief Apply one ledger record (key, value; value NULL = tombstone) to
 *        the in-memory state, as loading does. Exposed for tests.
 * @returns NA_OK, or NA_ERR_INVALID for a value that is not a ledger record
 *          (it is skipped).
 */
NA_WUR na_err_t na_ledger_apply(na_ledger_t *l, const char *key, size_t key_len,
                                const char *value, size_t len);

#endif
