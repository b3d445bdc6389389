/**
 * @file kafka.h
 * @brief librdkafka set-up shared by both daemons: configuration with
 *        `-X key=value` pass-through, logging, topic creation, and the one
 *        function that classifies Kafka errors.
 */
#ifndef NEWSALERT_KAFKA_H
#define NEWSALERT_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "newsalert/err.h"

#define NA_TOPIC_ARTICLES "news.articles"
#define NA_TOPIC_ALERTS "news.alerts"
#define NA_TOPIC_DLQ "news.dlq"
#define NA_TOPIC_ALERTS_RETRY "news.alerts.retry"

/** Retention of news.articles (30 days); see DESIGN.md on message timestamps. */
#define NA_ARTICLES_RETENTION_MS (30LL * 24 * 3600 * 1000)
#define NA_ARTICLES_PARTITIONS 6
#define NA_DLQ_RETENTION_MS (30LL * 24 * 3600 * 1000)

/** A list of librdkafka properties "key=value", in the order given. */
struct na_kafka_props {
    char **kv;
    size_t cnt;
};

/** @brief Append "key=value" (copied); NA_ERR_INVALID without '='. */
NA_WUR na_err_t na_kafka_props_add(struct na_kafka_props *props, const char *kv);
void na_kafka_props_cleanup(struct na_kafka_props *props);

/**
 * @brief New librdkafka configuration: bootstrap.servers = @p brokers (when
 *        not NULL), our log callback, then @p props in order (so `-X` wins).
 * @returns new conf (rd_kafka_new() takes it; else rd_kafka_conf_destroy()),
 *          or NULL with librdkafka's error text verbatim in errstr.
 */
rd_kafka_conf_t *na_kafka_conf_new(const char *brokers,
                                   const struct na_kafka_props *props, char *errstr,
                                   size_t errstr_size);

/** @brief Set one property, librdkafka's error text verbatim in errstr. */
NA_WUR na_err_t na_kafka_conf_set(rd_kafka_conf_t *conf, const char *key,
                                  const char *value, char *errstr, size_t errstr_size);

/** Declarative description of a topic the programs create when missing. */
struct na_topic_spec {
    const char *name;
    int partitions;
    const char *const *configs; /**< NULL-terminated key, value, key, value, ... */
};

/**
 * @brief Create the topics that do not exist yet (CreateTopics; "already
 *        exists" is success). Brokers that refuse (no ACL, auto-creation
 *        only) are logged, not fatal: producing will then auto-create.
 * @returns NA_OK, or NA_ERR_KAFKA / NA_ERR_TIMEOUT with errstr.
 */
NA_WUR na_err_t na_kafka_ensure_topics(rd_kafka_t *rk, const struct na_topic_spec *specs,
                                       size_t cnt, int timeout_ms, char *errstr,
                                       size_t errstr_size);

/** @returns the spec of one of the well-known topics, with @p name overriding. */
struct na_topic_spec na_kafka_topic_articles(const char *name);
struct na_topic_spec na_kafka_topic_dlq(const char *name);
struct na_topic_spec na_kafka_topic_alerts(const char *name);

/**
 * @brief The one place Kafka errors are classified: OK, RETRY (transient:
 *        the client retries or we try later), DROP (this message can never
 *        succeed: too large, bad topic), FATAL (the client instance is
 *        unusable: fenced idempotent producer, authentication).
 */
na_outcome_t na_kafka_classify(rd_kafka_resp_err_t err, int is_fatal);

/**
 * @brief Wait until the cluster answers a metadata request.
 * @returns NA_OK or NA_ERR_TIMEOUT.
 */
NA_WUR na_err_t na_kafka_wait_ready(rd_kafka_t *rk, int timeout_ms);

#endif
