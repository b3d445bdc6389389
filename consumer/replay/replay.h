/**
 * @file replay.h
 * @brief Replay a range of the articles topic for backfill and backtests.
 *
 * A replay reads `news.articles` from a start bound to an end bound that are
 * resolved once, when it starts, into one half-open offset range
 * [start, end) per partition. It uses manual assignment and a consumer that
 * never commits, so the live consumer group's offsets are never touched, and
 * it stops by itself when every partition has reached its end (partitions
 * with an empty range are never assigned, so nothing waits for them).
 *
 * Bounds (--from / --to), see na_replay_bound_parse():
 * - `beginning`: the low watermark; `end`: the high watermark at start;
 * - an RFC 3339 time: offsets-for-times on message timestamps, which are
 *   the articles' published times (DESIGN.md), i.e. the first offset whose
 *   timestamp is >= the time, or the high watermark when there is none;
 * - `P:OFFSET,P:OFFSET..`: offsets per partition; only partitions named by
 *   both offset bounds (or by the one offset bound) are read.
 *
 * Timestamps are not ordered within a partition (articles of several feeds
 * arrive interleaved). For a time window the range therefore ends at
 * offsets-for-times(to + lateness) and each record is kept only when its
 * timestamp lies in [from, to): a window returns exactly the articles
 * published inside it, as long as none arrived more than `lateness` after
 * a record stamped past `to`.
 *
 * The engine (na_replay_run) is single-threaded; webhook delivery, ledger
 * confirmations and output produce callbacks all run on the caller's
 * thread.
 */
#ifndef NEWSALERT_REPLAY_H
#define NEWSALERT_REPLAY_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "consumer.h"
#include "newsalert/article.h"
#include "newsalert/err.h"
#include "newsalert/kafka.h"
#include "rules.h"

struct na_alert;
struct na_decision;

/** No timestamp filter on that side. */
#define NA_REPLAY_TS_NONE INT64_MIN
/** Default lateness allowed after a time --to (1 hour), "--lateness". */
#define NA_REPLAY_LATENESS_MS (3600LL * 1000)
/** Most partitions a bound may name. */
#define NA_REPLAY_MAX_PARTITIONS 100000

enum na_replay_bound_kind {
    NA_REPLAY_BEGINNING = 0,
    NA_REPLAY_END,
    NA_REPLAY_TIME,
    NA_REPLAY_OFFSETS,
};

struct na_replay_pos {
    int32_t partition;
    int64_t offset;
};

/** A parsed --from or --to. Embed; release with na_replay_bound_cleanup(). */
struct na_replay_bound {
    enum na_replay_bound_kind kind;
    int64_t time_ms;           /**< NA_REPLAY_TIME */
    struct na_replay_pos *pos; /**< NA_REPLAY_OFFSETS, sorted by partition */
    size_t pos_cnt;
};

/**
 * @brief Parse "beginning", "end", an RFC 3339 time, or "P:OFF[,P:OFF..]"
 *        (partition and offset non-negative, each partition once).
 * @param b initialised here; na_replay_bound_cleanup() it also on failure.
 * @returns NA_OK or NA_ERR_INVALID with one line in errstr.
 */
NA_WUR na_err_t na_replay_bound_parse(const char *s, struct na_replay_bound *b,
                                      char *errstr, size_t errstr_size);

void na_replay_bound_cleanup(struct na_replay_bound *b);

/** One partition's range and progress. */
struct na_replay_part {
    int32_t partition;
    int64_t low;    /**< low watermark when resolved */
    int64_t high;   /**< high watermark when resolved */
    int64_t start;  /**< first offset to read */
    int64_t end;    /**< one past the last offset to read */
    int64_t next;   /**< next offset to read (start .. end) */
    int64_t resume; /**< where a resumed run must start: every record below
                         it is finished (alerts delivered or given up) */
    bool done;      /**< next reached end */
};

/** A resolved replay: ranges per partition plus the timestamp filter. */
struct na_replay_range {
    struct na_replay_part *parts; /**< sorted by partition */
    size_t cnt;
    int64_t ts_from_ms; /**< keep records stamped >= this (or NA_REPLAY_TS_NONE) */
    int64_t ts_to_ms;   /**< keep records stamped < this (or NA_REPLAY_TS_NONE) */
};

/** What the broker said about one partition, input of na_replay_plan(). */
struct na_replay_wm {
    int32_t partition;
    int64_t low, high;
    int64_t from_time_offset; /**< offsets-for-times of a time --from; -1: none */
    int64_t to_time_offset; /**< offsets-for-times of a time --to (+lateness); -1: none */
};

/**
 * @brief Turn bounds and watermarks into per-partition ranges (pure: no
 *        I/O). Offsets are clamped into [low, high]; an end below its start
 *        becomes an empty range. A time --from sets ts_from_ms and a time
 *        --to sets ts_to_ms.
 * @param wm one entry per partition of the topic, any order.
 * @param range filled; release with na_replay_range_cleanup().
 * @returns NA_OK, NA_ERR_INVALID (an offset bound names a partition the
 *          topic does not have; errstr says which), NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_replay_plan(const struct na_replay_bound *from,
                               const struct na_replay_bound *to,
                               const struct na_replay_wm *wm, size_t wm_cnt,
                               struct na_replay_range *range, char *errstr,
                               size_t errstr_size);

/**
 * @brief Ask the broker for the topic's partitions, watermarks and
 *        offsets-for-times, then na_replay_plan().
 * @param rk a consumer handle (no subscription needed).
 * @param lateness_ms added to a time --to when looking up its end offset.
 * @returns NA_OK, NA_ERR_NOT_FOUND (no such topic), NA_ERR_KAFKA,
 *          NA_ERR_TIMEOUT, NA_ERR_INVALID, NA_ERR_NOMEM; errstr says why.
 */
NA_WUR na_err_t na_replay_resolve(rd_kafka_t *rk, const char *topic,
                                  const struct na_replay_bound *from,
                                  const struct na_replay_bound *to, int64_t lateness_ms,
                                  int timeout_ms, struct na_replay_range *range,
                                  char *errstr, size_t errstr_size);

void na_replay_range_cleanup(struct na_replay_range *range);

/** @returns records in all ranges (sum of end - start). */
uint64_t na_replay_range_total(const struct na_replay_range *range);

/** @returns records read so far (sum of next - start). */
uint64_t na_replay_range_done(const struct na_replay_range *range);

/**
 * @brief The bound arguments that resume @p range where it stopped:
 *        "--from P:RESUME,.. --to P:END,.." over every partition of the
 *        range, plus "--ts-from T" / "--ts-to T" when a filter is set.
 * @returns new string; free(); NULL on no memory.
 */
char *na_replay_resume_args(const struct na_replay_range *range);

/**
 * @brief One progress text. With @p bar: "[#####.....]  42.0%  420/1000
 *        1234 msg/s  ETA 0:05" sized for a terminal; without: logfmt pairs
 *        "done=420 total=1000 pct=42.0 rate=1234 eta_s=5".
 * @param rate messages per second (< 0: unknown yet).
 */
void na_replay_progress_format(char *buf, size_t size, uint64_t done, uint64_t total,
                               double rate, bool bar);

/* ---- backtest ---- */

/** One alert present under one rule set and not the other. */
struct na_replay_change {
    char *topic;
    char *title;
    char article_id[NA_SHA256_HEX_LEN + 1];
    bool gained; /**< raised by the new rules only (else by the baseline only) */
};

/** The difference between two rule sets over one range. Embed; _init/_cleanup. */
struct na_replay_diff {
    struct na_replay_change *v;
    size_t cnt;
    size_t size;
    uint64_t articles; /**< articles compared */
    uint64_t same;     /**< alerts raised by both */
};

void na_replay_diff_init(struct na_replay_diff *diff);
void na_replay_diff_cleanup(struct na_replay_diff *diff);

/**
 * @brief Compare the two classifications of @p a (new rules, baseline) and
 *        record every topic in one and not the other.
 * @returns NA_OK or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_replay_diff_add(struct na_replay_diff *diff,
                                   const struct na_article *a,
                                   const struct na_classification *cur,
                                   const struct na_classification *base);

/**
 * @brief Print the difference: per topic (in the order of @p topics), one
 *        line per change "+ TOPIC  TITLE  (article ID)" / "- ...", then one
 *        summary line per topic "TOPIC: +N -M", then a totals line.
 * @param topics topic names of both rule sets (NULL-terminated).
 */
void na_replay_diff_print(const struct na_replay_diff *diff, const char *const *topics,
                          FILE *fp);

/* ---- the run ---- */

/** What one run does; the outputs may be combined. */
struct na_replay_opts {
    rd_kafka_t *rk; /**< borrowed: the na_replay_consumer_new() that resolved the range */
    const struct na_consumer_conf *conf; /**< brokers, topic, props, routes, deliver_* */
    const na_rules_t *rules;             /**< the rules whose alerts are output */
    const na_rules_t *baseline;          /**< backtest against these, or NULL */
    struct na_replay_diff *diff;         /**< filled when baseline is set */
    bool post_routes; /**< --routes: post to conf->routes through the ledger
                           (conf->ledger_topic, conf->ledger_timeout_ms) */
    FILE *dry_run;    /**< --dry-run: alert/v1 lines here, or NULL */
    FILE *output;     /**< --output: classified lines here, or NULL; a line is written
                           once its record and every one before it in its partition
                           are finished (docs/replay.md, resume) */
    const char *output_topic;       /**< --output-topic, or NULL */
    int progress;                   /**< 0 none, 1 bar on stderr, 2 log lines */
    int64_t progress_interval_ms;   /**< log line interval (progress 2) */
    volatile sig_atomic_t *running; /**< cleared by SIGINT/SIGTERM */
};

struct na_replay_stats {
    uint64_t read;         /**< records read inside the offset ranges */
    uint64_t filtered;     /**< read but outside the timestamp window */
    uint64_t articles;     /**< decoded and classified */
    uint64_t poison;       /**< not article/v1 (skipped, logged) */
    uint64_t alerts;       /**< alerts raised by the rules */
    uint64_t already_sent; /**< (alert, route) pairs the ledger had, or that
                                another member sent while they were held */
    uint64_t linked;       /**< later reports of a story that alerted (not sent) */
    uint64_t sent;         /**< (alert, route) pairs delivered now */
    uint64_t failed;       /**< (alert, route) pairs given up on: not delivered,
                                or delivered but the ledger refused the record
                                for write_stall (also in sent) */
    uint64_t output_lines; /**< classified lines written or produced */
    uint64_t refills;      /**< prefetch refills sent (na_kafka_refill) */
    bool interrupted;      /**< stopped before the end: by *running, or by a
                                ledger record given up on; the range's resume
                                positions say where to go on */
};

/**
 * @brief Read @p range (resolved with na_replay_resolve() on opts->rk) and
 *        produce the outputs. Updates range->parts[].next/resume/done.
 * @returns NA_OK (also when interrupted: see stats->interrupted), or an
 *          error with errstr (the ledger could not be loaded, a fatal Kafka
 *          error, an output write failed).
 */
NA_WUR na_err_t na_replay_run(const struct na_replay_opts *opts,
                              struct na_replay_range *range,
                              struct na_replay_stats *stats, char *errstr,
                              size_t errstr_size);

/**
 * @brief replay --dry-run's "linked" line for a later report of a story
 *        that alerted: {"linked","article_id","story_id","topic","story",
 *        "article":{"title","url","source","published_at"}}, the bytes
 *        jansson's compact dump gives (written directly).
 * @returns new string without newline; free(); NULL on no memory or when
 *          a string is not valid UTF-8 (no line, as jansson refuses it).
 */
char *na_replay_linked_json(const struct na_decision *d, const struct na_alert *alert);

/**
 * @brief The classify command's JSON line for one article:
 *        {"id","title","topics":[{"topic","score","threshold","evidence":[..],
 *        "snippet"}]}.
 * @returns new string without newline; free(); NULL on no memory.
 */
char *na_replay_classified_json(const struct na_article *a,
                                const struct na_classification *cls);

/**
 * @brief Create a consumer for replays: the given brokers, the prefetch
 *        bound of na_kafka_conf_prefetch_defaults() and the -X properties
 *        (which may change it), then (overriding them) a group id of its own that is
 *        never joined or committed, enable.auto.commit=false and
 *        enable.auto.offset.store=false.
 * @returns new handle (rd_kafka_destroy()), or NULL with errstr.
 */
rd_kafka_t *na_replay_consumer_new(const char *brokers,
                                   const struct na_kafka_props *props, char *errstr,
                                   size_t errstr_size);

#endif
