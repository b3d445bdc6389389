/**
 * @file consumer.h
 * @brief The classifier and alerter daemon.
 */
#ifndef NEWSALERT_CONSUMER_H
#define NEWSALERT_CONSUMER_H

#include <signal.h>
#include <stdio.h>

#include "newsalert/config.h"
#include "newsalert/daemon.h"
#include "newsalert/err.h"
#include "newsalert/kafka.h"
#include "route.h"

/** Resolved consumer settings; see na_consumer_conf_table for keys. */
struct na_consumer_conf {
    char *brokers;                    /**< "brokers" */
    char *group_id;                   /**< "group_id" */
    char *topic;                      /**< "topic": articles topic */
    char *dlq_topic;                  /**< "dlq_topic" */
    char *rules;                      /**< "rules": rules JSON file */
    char *webhook;                    /**< "webhook": one-route shortcut URL */
    char *webhook_format;             /**< "webhook_format" for --webhook */
    long long deliver_concurrency;    /**< "deliver_concurrency" */
    long long deliver_timeout_ms;     /**< "deliver_timeout" */
    long long deliver_max_attempts;   /**< "deliver_max_attempts" */
    long long deliver_backoff_ms;     /**< "deliver_backoff" */
    long long deliver_backoff_max_ms; /**< "deliver_backoff_max" */
    long long max_pending;            /**< "max_pending": alerts in flight before pausing
                                           (per route unless the route sets max_queue) */
    char *ledger_topic;               /**< "ledger_topic": compacted alert ledger */
    int ledger;                       /**< "ledger": read and write the alert ledger */
    long long ledger_timeout_ms;  /**< "ledger_timeout": reading the ledger at start */
    long long ledger_horizon_ms;  /**< "ledger_horizon": alerts forgotten after this;
                                       records older raise none (0: never) */
    int stories;                  /**< "stories": one alert per story and topic */
    long long story_window_ms;    /**< "story_window" */
    long long story_reorder_ms;   /**< "story_reorder" */
    long long drain_timeout_ms;   /**< "drain_timeout": SIGTERM drain deadline */
    long long park_after_ms;      /**< "park_after": a route failing this long is
                                       parked (0: never) */
    long long park_max_age_ms;    /**< "park_max_age": parked alerts older go to
                                       the DLQ */
    char *retry_topic;            /**< "retry_topic": where parked alerts wait */
    long long revoke_timeout_ms;  /**< "revoke_timeout": a revoke waits this long
                                       for alerts in flight, then hands over */
    long long handover_grace_ms;  /**< "handover_grace": alerts of records read
                                       again after an unclean hand-over wait
                                       this long for the old owner's records */
    long long write_stall_ms;     /**< "write_stall": failing DLQ/ledger writes
                                       make /readyz fail after this */
    char *log_level;              /**< "log_level" */
    int print;                    /**< "print": alerts to stdout as they happen */
    int create_topics;            /**< "create_topics": create missing topics */
    int exit_eof;                 /**< "exit_eof": exit once caught up and delivered */
    long long workers;            /**< "workers": decode/classify threads (-1: auto) */
    struct na_kafka_props props;  /**< "kafka" and -X */
    struct na_routes routes;      /**< "routes" plus --webhook */
    struct na_daemon_conf daemon; /**< "log_format", "http_listen" */
    const char *config_path; /**< --config / NEWSALERT_CONFIG (routes reload; borrowed) */
};

extern const struct na_conf_entry na_consumer_conf_table[];

struct na_deliver_opts;
/** @brief The deliverer's options from the consumer config (daemon and replay). */
void na_consumer_deliver_opts(const struct na_consumer_conf *conf,
                              struct na_deliver_opts *opts);

/**
 * @brief Checks across keys that the table cannot make, which the daemon
 *        would refuse at start: a ledger_horizon shorter than story_window,
 *        a webhook_format no format has. --check-config runs it too, so
 *        both refuse the same way (exit 1, this message).
 */
NA_WUR na_err_t na_consumer_conf_check(const struct na_consumer_conf *conf, char *errstr,
                                       size_t errstr_size);

struct na_stories_opts;
/** @brief The story grouping's options from the consumer config ("story_window",
 *         "story_reorder"; the shipped model), for the daemon and replay. */
void na_consumer_story_opts(const struct na_consumer_conf *conf,
                            struct na_stories_opts *opts);

struct na_consumer_stats {
    unsigned long long consumed;
    unsigned long long poison;
    unsigned long long matched;
    unsigned long long alerts_sent;
    unsigned long long alerts_failed;
    unsigned long long dlq_produced;
    unsigned long long offsets_stored;
    unsigned long long paused;
    unsigned long long ledger_skipped;  /**< alerts not sent: the ledger had them */
    unsigned long long ledger_recorded; /**< ledger records confirmed */
    unsigned long long digests;         /**< alerts that went out inside a digest */
    unsigned long long story_linked;    /**< story follow-ups linked, not sent */
    unsigned long long too_old;         /**< records older than the ledger horizon */
    unsigned long long refills;         /**< prefetch refills sent (na_kafka_refill) */
    unsigned long long ends;            /**< --exit-eof: partitions whose end the
                                             fetch of their last record named
                                             (na_kafka_at_end()) */
};

/**
 * @brief Run until *@p running is 0 (signal) or, with exit_eof, until every
 *        assigned partition is at its end and all alerts are finished.
 * @param out where --print writes alerts (stdout).
 */
NA_WUR na_err_t na_consumer_run(const struct na_consumer_conf *conf,
                                volatile sig_atomic_t *running, FILE *out,
                                struct na_consumer_stats *stats, char *errstr,
                                size_t errstr_size);

#endif
