#include "newsalert/kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/log.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

na_err_t na_kafka_props_add(struct na_kafka_props *props, const char *kv) {
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) {
        return NA_ERR_INVALID;
    }
    char **n = realloc(props->kv, (props->cnt + 1) * sizeof(*n));
    if (!n) {
        return NA_ERR_NOMEM;
    }
    props->kv = n;
    if (!(n[props->cnt] = na_strdup(kv))) {
        return NA_ERR_NOMEM;
    }
    props->cnt++;
    return NA_OK;
}

void na_kafka_props_cleanup(struct na_kafka_props *props) {
    if (!props) {
        return;
    }
    for (size_t i = 0; i < props->cnt; i++) {
        free(props->kv[i]);
    }
    free(props->kv);
    props->kv = NULL;
    props->cnt = 0;
}

/* librdkafka calls this from its own threads; na_log() is thread-safe. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    enum na_log_level lvl = level <= 3   ? NA_LOG_ERROR
                            : level <= 4 ? NA_LOG_WARN
                            : level <= 6 ? NA_LOG_INFO
                                         : NA_LOG_DEBUG;
    na_log(lvl, "kafka", "rdkafka_log", "client=%s fac=%s msg=%s", rd_kafka_name(rk),
           na_log_q(fac), na_log_q(buf));
}

na_err_t na_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                           char *errstr, size_t errstr_size) {
    if (rd_kafka_conf_set(conf, key, value, errstr, errstr_size) != RD_KAFKA_CONF_OK) {
        return NA_ERR_CONFIG;
    }
    return NA_OK;
}

rd_kafka_conf_t *na_kafka_conf_new(const char *brokers,
                                   const struct na_kafka_props *props, char *errstr,
                                   size_t errstr_size) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char key[256];

    rd_kafka_conf_set_log_cb(conf, log_cb);
    if (brokers &&
        na_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, errstr_size)) {
        goto fail;
    }
    for (size_t i = 0; props && i < props->cnt; i++) {
        const char *eq = strchr(props->kv[i], '=');
        size_t klen = (size_t)(eq - props->kv[i]);
        if (klen >= sizeof(key)) {
            snprintf(errstr, errstr_size, "property name too long");
            goto fail;
        }
        memcpy(key, props->kv[i], klen);
        key[klen] = '\0';
        if (na_kafka_conf_set(conf, key, eq + 1, errstr, errstr_size)) {
            goto fail;
        }
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static const char *const articles_configs[] = {"cleanup.policy",
                                               "compact,delete",
                                               "retention.ms",
                                               "2592000000",
                                               "max.message.bytes",
                                               "2097152",
                                               NULL};
static const char *const dlq_configs[] = {"cleanup.policy", "delete", "retention.ms",
                                          "2592000000", NULL};
static const char *const alerts_configs[] = {"cleanup.policy", "compact", NULL};

struct na_topic_spec na_kafka_topic_articles(const char *name) {
    struct na_topic_spec s = {name ? name : NA_TOPIC_ARTICLES, NA_ARTICLES_PARTITIONS,
                              articles_configs};
    return s;
}

struct na_topic_spec na_kafka_topic_dlq(const char *name) {
    struct na_topic_spec s = {name ? name : NA_TOPIC_DLQ, 1, dlq_configs};
    return s;
}

struct na_topic_spec na_kafka_topic_alerts(const char *name) {
    struct na_topic_spec s = {name ? name : NA_TOPIC_ALERTS, 3, alerts_configs};
    return s;
}

na_err_t na_kafka_ensure_topics(rd_kafka_t *rk, const struct na_topic_spec *specs,
                                size_t cnt, int timeout_ms, char *errstr,
                                size_t errstr_size) {
    rd_kafka_NewTopic_t **topics = NULL;
    rd_kafka_queue_t *queue = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_event_t *ev = NULL;
    na_err_t err = NA_OK;
    char detail[512];

    topics = calloc(cnt, sizeof(*topics));
    if (!topics) {
        return NA_ERR_NOMEM;
    }
    for (size_t i = 0; i < cnt; i++) {
        topics[i] = rd_kafka_NewTopic_new(specs[i].name, specs[i].partitions, -1, detail,
                                          sizeof(detail));
        if (!topics[i]) {
            snprintf(errstr, errstr_size, "topic %s: %s", specs[i].name, detail);
            err = NA_ERR_INVALID;
            goto out;
        }
        for (const char *const *c = specs[i].configs; c && *c; c += 2) {
            if (rd_kafka_NewTopic_set_config(topics[i], c[0], c[1])) {
                snprintf(errstr, errstr_size, "topic %s: bad config %s", specs[i].name,
                         c[0]);
                err = NA_ERR_INVALID;
                goto out;
            }
        }
    }
    queue = rd_kafka_queue_new(rk);
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, NULL, 0);
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, NULL, 0);
    rd_kafka_CreateTopics(rk, topics, cnt, opts, queue);
    ev = rd_kafka_queue_poll(queue, timeout_ms + 2000);
    if (!ev) {
        snprintf(errstr, errstr_size, "creating topics: no answer within %d ms",
                 timeout_ms);
        err = NA_ERR_TIMEOUT;
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(errstr, errstr_size, "creating topics: %s",
                 rd_kafka_event_error_string(ev));
        err = NA_ERR_KAFKA;
        goto out;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t res_cnt = 0;
    const rd_kafka_topic_result_t **results =
        rd_kafka_CreateTopics_result_topics(res, &res_cnt);
    for (size_t i = 0; i < res_cnt; i++) {
        rd_kafka_resp_err_t terr = rd_kafka_topic_result_error(results[i]);
        const char *name = rd_kafka_topic_result_name(results[i]);
        if (!terr) {
            na_log(NA_LOG_INFO, "kafka", "topic_created", "topic=%s", na_log_q(name));
        } else if (terr != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            /* Not fatal: a broker that only auto-creates, or an ACL that lets us
             * produce but not create, still works. */
            na_log(NA_LOG_WARN, "kafka", "topic_create_failed", "topic=%s err=%s",
                   na_log_q(name),
                   na_log_q(rd_kafka_topic_result_error_string(results[i])));
        }
    }
out:
    if (ev) {
        rd_kafka_event_destroy(ev);
    }
    if (opts) {
        rd_kafka_AdminOptions_destroy(opts);
    }
    if (queue) {
        rd_kafka_queue_destroy(queue);
    }
    for (size_t i = 0; i < cnt; i++) {
        if (topics[i]) {
            rd_kafka_NewTopic_destroy(topics[i]);
        }
    }
    free(topics);
    return err;
}

na_outcome_t na_kafka_classify(rd_kafka_resp_err_t err, int is_fatal) {
    if (is_fatal || err == RD_KAFKA_RESP_ERR__FATAL) {
        return NA_OUTCOME_FATAL;
    }
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return NA_OUTCOME_OK;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return NA_OUTCOME_DROP;
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        return NA_OUTCOME_FATAL;
    default:
        return NA_OUTCOME_RETRY;
    }
}

na_err_t na_kafka_wait_ready(rd_kafka_t *rk, int timeout_ms) {
    int64_t deadline = na_mono_ms() + timeout_ms;
    while (na_mono_ms() < deadline) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, 2000);
        if (!err) {
            int brokers = md->broker_cnt;
            rd_kafka_metadata_destroy(md);
            if (brokers > 0) {
                return NA_OK;
            }
        }
        na_sleep_ms(200);
    }
    return NA_ERR_TIMEOUT;
}
