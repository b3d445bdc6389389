/**
 * @file producer.h
 * @brief The fetcher daemon: poll sources, parse, dedup, produce to Kafka.
 *
 * Two ways to get the sources (docs/producer.md):
 * - file mode ("sources"): one instance polls every feed of a JSON file,
 *   re-read when it changes; seen-state in state_dir/seen.json.
 * - topic mode ("sources_topic"): the sources are records of a compacted
 *   topic (key = source id) that every instance consumes in one consumer
 *   group ("group_id"); an instance polls exactly the feeds of the
 *   partitions assigned to it. Each feed's seen-state is a record of the
 *   compacted "state_topic" (key = source id, same partition number as its
 *   source record), read on assignment and written after each change.
 */
#ifndef NEWSALERT_PRODUCER_H
#define NEWSALERT_PRODUCER_H

#include <signal.h>

#include <stdbool.h>
#include <stdint.h>

#include "newsalert/article.h"
#include "newsalert/config.h"
#include "newsalert/daemon.h"
#include "newsalert/err.h"
#include "newsalert/kafka.h"

#define NA_TOPIC_SOURCES "news.sources"
#define NA_TOPIC_FETCHSTATE "news.fetchstate"
/** Partitions of news.sources (and so of news.fetchstate) when we create it. */
#define NA_SOURCES_PARTITIONS 12

/** Resolved producer settings; see na_producer_conf_table for keys. */
struct na_producer_conf {
    char *brokers;                      /**< "brokers" / --brokers */
    char *sources;                      /**< "sources": sources JSON file */
    char *sources_topic;                /**< "sources_topic": topic mode when set */
    char *state_topic;                  /**< "state_topic": per-feed state (topic mode) */
    char *group_id;                     /**< "group_id": consumer group (topic mode) */
    char *instance_id;                  /**< "instance_id": X-Newsalert-Instance, logs */
    char *state_dir;                    /**< "state_dir": seen-state folder */
    char *topic;                        /**< "topic": articles topic */
    char *metrics_file;                 /**< "metrics_file": Prometheus text, rewritten */
    long long fetch_concurrency;        /**< "fetch_concurrency" */
    long long fetch_per_host;           /**< "fetch_per_host" */
    long long fetch_timeout_ms;         /**< "fetch_timeout" */
    long long fetch_connect_timeout_ms; /**< "fetch_connect_timeout" */
    long long fetch_max_bytes;          /**< "fetch_max_bytes" */
    long long fetch_max_redirects;      /**< "fetch_max_redirects" */
    long long retry_base_ms;            /**< "retry_base": first backoff after an error */
    long long retry_max_ms;             /**< "retry_max": cap of the error backoff */
    long long full_text_wait_ms;        /**< "full_text_wait": longest an item waits
                                             for its page (fulltext.h) */
    long long state_grace_ms;           /**< "state_grace": keep state of removed feeds */
    long long flush_timeout_ms;         /**< "flush_timeout": drain deadline at exit */
    char *user_agent;                   /**< "user_agent" */
    char *log_level;                    /**< "log_level" */
    int once;                           /**< "once" / --once */
    int dry_run;                  /**< "dry_run": fetch and parse, produce nothing */
    int create_topics;            /**< "create_topics": create the topic when missing */
    struct na_kafka_props props;  /**< "kafka": {...} and -X key=value */
    struct na_daemon_conf daemon; /**< "log_format", "http_listen" */
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
    unsigned long long skipped_dup; /**< new id, known fingerprint */
    unsigned long long updates;     /**< edited items produced again */
    unsigned long long produced;
    unsigned long long delivered;
    unsigned long long delivery_errors;
    unsigned long long moved;                /**< permanent redirects stored */
    unsigned long long retired;              /**< feeds retired on 410 */
    unsigned long long full_text_ok;         /**< items with their page's story */
    unsigned long long full_text_failed;     /**< items with the feed's text instead */
    unsigned long long full_text_disallowed; /**< of those, pages robots.txt forbids */
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

/**
 * @brief `newsalert-producer sources load FILE`: publish a sources file to
 *        conf->sources_topic (key = id, value = the source's JSON), and a
 *        tombstone for every id in the topic that the file no longer has.
 *        Creates the sources and state topics when missing.
 * @returns NA_OK, or an error with errstr.
 */
NA_WUR na_err_t na_producer_sources_load(const struct na_producer_conf *conf,
                                         const char *path, char *errstr,
                                         size_t errstr_size);

/**
 * @brief When the next poll of a feed is due, per docs/producer.md.
 * @param now_wall_ms wall-clock now (for skipHours/skipDays, UTC).
 * @param interval_ms the source's interval; @p ttl_min RSS <ttl> or 0.
 * @param skip_hours bit h = skip hour h (UTC); @p skip_days bit 0 = Sunday.
 * @param jitter_pct spread, e.g. 10 for +-10 %.
 * @returns delay in ms from now.
 */
int64_t na_producer_next_delay_ms(int64_t now_wall_ms, int64_t interval_ms, int ttl_min,
                                  uint32_t skip_hours, uint8_t skip_days, int jitter_pct);

/**
 * @brief Backoff after @p errors_in_row failures (1 = the first): base
 *        doubled per failure, capped at @p max_ms, +-20 % jitter; never
 *        shorter than a Retry-After of @p retry_after_ms (>= 0).
 */
int64_t na_producer_backoff_ms(unsigned errors_in_row, int64_t base_ms, int64_t max_ms,
                               int64_t retry_after_ms);

/**
 * @brief Bound an article's published time by its fetch (article/v1 in
 *        DESIGN.md): a published_at later than fetched_at becomes
 *        fetched_at. Unknown times are left alone.
 * @returns true when published_at was in the future and was changed.
 */
bool na_producer_bound_published(struct na_article *a);

/**
 * @brief The Kafka timestamp (ms) of an article record, per DESIGN.md:
 *        published_at when known, never later than fetched_at, never older
 *        than fetched_at minus (NA_ARTICLES_RETENTION_MS - 1 day); fetched_at
 *        when published_at is unknown.
 */
int64_t na_producer_record_ts_ms(const struct na_article *a);

#endif
