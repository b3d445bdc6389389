/**
 * @file producer.h
 * @brief The fetcher daemon: poll sources, parse, dedup, produce to Kafka.
 */
#ifndef NEWSALERT_PRODUCER_H
#define NEWSALERT_PRODUCER_H

#include <signal.h>

#include "newsalert/config.h"
#include "newsalert/err.h"
#include "newsalert/kafka.h"

/** Resolved producer settings; see na_producer_conf_table for keys. */
struct na_producer_conf {
    char *brokers;                  /**< "brokers" / --brokers */
    char *sources;                  /**< "sources": sources JSON file */
    char *state_dir;                /**< "state_dir": seen-state folder */
    char *topic;                    /**< "topic": articles topic */
    long long fetch_concurrency;    /**< "fetch_concurrency" */
    long long fetch_per_host;       /**< "fetch_per_host" */
    long long fetch_timeout_ms;     /**< "fetch_timeout" */
    long long fetch_connect_timeout_ms; /**< "fetch_connect_timeout" */
    long long fetch_max_bytes;      /**< "fetch_max_bytes" */
    long long fetch_max_redirects;  /**< "fetch_max_redirects" */
    long long retry_max_ms;         /**< "retry_max": cap of the error backoff */
    long long flush_timeout_ms;     /**< "flush_timeout": drain deadline at exit */
    char *user_agent;               /**< "user_agent" */
    char *log_level;                /**< "log_level" */
    int once;                       /**< "once" / --once */
    int create_topics;              /**< "create_topics": create the topic when missing */
    struct na_kafka_props props;    /**< "kafka": {...} and -X key=value */
};

extern const struct na_conf_entry na_producer_conf_table[];

/** Counters of one run (also logged as event=summary at exit). */
struct na_producer_stats {
    unsigned long long fetches;
    unsigned long long fetch_errors;
    unsigned long long not_modified;
    unsigned long long parse_errors;
    unsigned long long items;
    unsigned long long skipped_seen;
    unsigned long long produced;
    unsigned long long delivered;
    unsigned long long delivery_errors;
};

/**
 * @brief Run the daemon until *@p running becomes 0 (set by a signal
 *        handler) or, with conf->once, after one round is delivered.
 * @returns NA_OK, or an error with errstr (exit status 1).
 */
NA_WUR na_err_t na_producer_run(const struct na_producer_conf *conf,
                                volatile sig_atomic_t *running,
                                struct na_producer_stats *stats, char *errstr,
                                size_t errstr_size);

#endif
