/*
 * newsalert-produce-at: produce records with explicit message timestamps
 * (kcat cannot set them), for tests and benchmarks of replay.
 *
 *   newsalert-produce-at -b BROKERS -t TOPIC [-p PARTITIONS] [-r RETENTION_MS]
 *                        [-X key=value].. < LINES
 *
 * Each stdin line is TIMESTAMP_MS <TAB> PARTITION <TAB> KEY <TAB> VALUE
 * (PARTITION -1: by key, as the producer daemon does). With -p the topic is
 * created first (when missing) with that many partitions and retention.ms
 * RETENTION_MS (default 30 days). Idempotent, acks=all; exits 0 only when
 * every record was acknowledged, and prints "produced N" on stderr.
 *
 *   newsalert-produce-at -b BROKERS -t TOPIC -G GROUP
 *
 * prints the committed offsets of consumer group GROUP on TOPIC instead, one
 * "PARTITION OFFSET" line per partition (-1001: none), without joining the
 * group or committing anything.
 *
 * -c key=value (repeatable) adds a topic config to the topic -p creates;
 *
 *   newsalert-produce-at -b BROKERS -t TOPIC -A -c key=value..
 *
 * sets those configs of an existing topic instead (AlterConfigs: the topic's
 * other dynamic configs return to their defaults), for tests that make the
 * broker refuse writes and then accept them again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "newsalert/kafka.h"
#include "newsalert/util.h"

static unsigned long long acked;
static unsigned long long failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque) {
    (void)rk;
    (void)opaque;
    if (rkm->err) {
        if (!failed) {
            fprintf(stderr, "newsalert-produce-at: %s\n", rd_kafka_err2str(rkm->err));
        }
        failed++;
    } else {
        acked++;
    }
}

/* -G: committed offsets of @p group on every partition of @p topic. */
static int committed(const char *brokers, const char *topic, const char *group,
                     const struct na_kafka_props *props) {
    char errstr[512];
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *l = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_t *rkt = NULL;
    int rc = 1;
    rd_kafka_conf_t *conf = na_kafka_conf_new(brokers, props, errstr, sizeof(errstr));
    if (!conf || na_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) ||
        na_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr))) {
        fprintf(stderr, "newsalert-produce-at: %s\n", errstr);
        if (conf) {
            rd_kafka_conf_destroy(conf);
        }
        return 1;
    }
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr)))) {
        fprintf(stderr, "newsalert-produce-at: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t kerr = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (kerr || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "newsalert-produce-at: metadata of %s: %s\n", topic,
                rd_kafka_err2str(kerr ? kerr : md->topics[0].err));
        goto out;
    }
    l = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt; i++) {
        rd_kafka_topic_partition_list_add(l, topic, md->topics[0].partitions[i].id);
    }
    if ((kerr = rd_kafka_committed(rk, l, 10000))) {
        fprintf(stderr, "newsalert-produce-at: committed: %s\n", rd_kafka_err2str(kerr));
        goto out;
    }
    for (int i = 0; i < l->cnt; i++) {
        printf("%d %lld\n", (int)l->elems[i].partition, (long long)l->elems[i].offset);
    }
    rc = 0;
out:
    if (l) {
        rd_kafka_topic_partition_list_destroy(l);
    }
    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return rc;
}

/* -A: set the configs @p kv (key, value, .., NULL) of @p topic. */
static int alter(const char *brokers, const char *topic, const char *const *kv,
                 const struct na_kafka_props *props) {
    char errstr[512];
    int rc = 1;
    rd_kafka_conf_t *conf = na_kafka_conf_new(brokers, props, errstr, sizeof(errstr));
    rd_kafka_t *rk =
        conf ? rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)) : NULL;
    if (!rk) {
        fprintf(stderr, "newsalert-produce-at: %s\n", errstr);
        if (conf) {
            rd_kafka_conf_destroy(conf);
        }
        return 1;
    }
    rd_kafka_ConfigResource_t *res =
        rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    for (size_t i = 0; kv[i] && kv[i + 1]; i += 2) {
        rd_kafka_ConfigResource_set_config(res, kv[i], kv[i + 1]);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts =
        rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
    rd_kafka_AdminOptions_set_request_timeout(opts, 20000, errstr, sizeof(errstr));
    rd_kafka_AlterConfigs(rk, &res, 1, opts, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    if (!ev) {
        fprintf(stderr, "newsalert-produce-at: alter %s: timed out\n", topic);
    } else if (rd_kafka_event_error(ev)) {
        fprintf(stderr, "newsalert-produce-at: alter %s: %s\n", topic,
                rd_kafka_event_error_string(ev));
    } else {
        size_t cnt = 0;
        const rd_kafka_ConfigResource_t **out = rd_kafka_AlterConfigs_result_resources(
            rd_kafka_event_AlterConfigs_result(ev), &cnt);
        if (cnt == 1 && rd_kafka_ConfigResource_error(out[0])) {
            fprintf(stderr, "newsalert-produce-at: alter %s: %s\n", topic,
                    rd_kafka_ConfigResource_error_string(out[0]));
        } else {
            rc = 0;
        }
    }
    if (ev) {
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_ConfigResource_destroy(res);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

static int usage(void) {
    fprintf(stderr,
            "usage: newsalert-produce-at -b BROKERS -t TOPIC [-p PARTITIONS] "
            "[-r RETENTION_MS] [-X key=value].. < TS\\tPARTITION\\tKEY\\tVALUE "
            "[-c key=value].. lines\n"
            "       newsalert-produce-at -b BROKERS -t TOPIC -G GROUP\n"
            "       newsalert-produce-at -b BROKERS -t TOPIC -A -c key=value..\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *brokers = NULL, *topic = NULL, *group = NULL;
    long long partitions = 0, retention_ms = 30LL * 24 * 3600 * 1000;
    struct na_kafka_props props = {NULL, 0, NULL};
    char errstr[512];
    char retention[32];
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    unsigned long long sent = 0;
    int rc = 1;
    /* The topic -p creates: "retention.ms", "max.message.bytes" and the -c
     * pairs (a -c of the same key replaces the default). */
    const char *configs[2 * 10 + 1] = {"retention.ms", retention, "max.message.bytes",
                                       "2097152", NULL};
    const char *user[2 * 8 + 1] = {NULL}; /* the -c pairs alone (-A) */
    char *owned[8] = {NULL};
    size_t configs_cnt = 4, owned_cnt = 0;
    int do_alter = 0;

    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "-A")) {
            do_alter = 1;
            continue;
        }
        if (!v) {
            return usage();
        }
        if (!strcmp(argv[i], "-b")) {
            brokers = v;
        } else if (!strcmp(argv[i], "-t")) {
            topic = v;
        } else if (!strcmp(argv[i], "-G")) {
            group = v;
        } else if (!strcmp(argv[i], "-p")) {
            if (na_parse_int64(v, 1, 10000, &partitions)) {
                return usage();
            }
        } else if (!strcmp(argv[i], "-r")) {
            if (na_parse_int64(v, 1, INT64_MAX, &retention_ms)) {
                return usage();
            }
        } else if (!strcmp(argv[i], "-X")) {
            if (na_kafka_props_add(&props, v)) {
                return usage();
            }
        } else if (!strcmp(argv[i], "-c")) {
            const char *eq = strchr(v, '=');
            char *key;
            if (!eq || eq == v || owned_cnt == 8 ||
                !(key = na_strndup(v, (size_t)(eq - v)))) {
                return usage();
            }
            user[2 * owned_cnt] = key;
            user[2 * owned_cnt + 1] = eq + 1;
            owned[owned_cnt++] = key;
            size_t k = 0;
            while (k < configs_cnt && strcmp(configs[k], key)) {
                k += 2;
            }
            configs[k] = key;
            configs[k + 1] = eq + 1;
            if (k == configs_cnt) {
                configs_cnt += 2;
                configs[configs_cnt] = NULL;
            }
        } else {
            return usage();
        }
        i++;
    }
    if (!brokers || !topic) {
        return usage();
    }
    snprintf(retention, sizeof(retention), "%lld", retention_ms);
    if (group || do_alter) {
        rc = group ? committed(brokers, topic, group, &props)
                   : alter(brokers, topic, user, &props);
        goto out;
    }
    if (!(conf = na_kafka_conf_new(brokers, &props, errstr, sizeof(errstr))) ||
        na_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)) ||
        na_kafka_conf_set(conf, "linger.ms", "20", errstr, sizeof(errstr))) {
        fprintf(stderr, "newsalert-produce-at: %s\n", errstr);
        goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)))) {
        fprintf(stderr, "newsalert-produce-at: %s\n", errstr);
        goto out;
    }
    conf = NULL;
    if (partitions) {
        struct na_topic_spec spec = {topic, (int)partitions, configs};
        if (na_kafka_ensure_topics(rk, &spec, 1, 20000, errstr, sizeof(errstr))) {
            fprintf(stderr, "newsalert-produce-at: %s\n", errstr);
            goto out;
        }
    }
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&buf, &cap, stdin)) > 0) {
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
            buf[--n] = '\0';
        }
        if (!n) {
            continue;
        }
        char *f[4] = {buf, NULL, NULL, NULL};
        for (int k = 1; k < 4 && f[k - 1]; k++) {
            char *tab = strchr(f[k - 1], '\t');
            if (tab) {
                *tab = '\0';
                f[k] = tab + 1;
            }
        }
        long long ts, part;
        if (!f[3] || na_parse_int64(f[0], 0, INT64_MAX, &ts) ||
            na_parse_int64(f[1], -1, 100000, &part)) {
            fprintf(stderr,
                    "newsalert-produce-at: bad line %llu (want "
                    "TS\\tPARTITION\\tKEY\\tVALUE)\n",
                    sent + 1);
            free(buf);
            goto out;
        }
        rd_kafka_resp_err_t kerr;
        do {
            /* F_COPY: the line buffer is reused. */
            kerr = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic),
                RD_KAFKA_V_PARTITION(part < 0 ? RD_KAFKA_PARTITION_UA : (int32_t)part),
                RD_KAFKA_V_KEY(f[2], strlen(f[2])), RD_KAFKA_V_VALUE(f[3], strlen(f[3])),
                RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_HEADER("content-type", "application/json", -1),
                RD_KAFKA_V_HEADER("schema", "article/v1", -1), RD_KAFKA_V_END);
            if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 100);
            }
        } while (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        if (kerr) {
            fprintf(stderr, "newsalert-produce-at: %s\n", rd_kafka_err2str(kerr));
            free(buf);
            goto out;
        }
        sent++;
        rd_kafka_poll(rk, 0);
    }
    free(buf);
    rd_kafka_flush(rk, 60000);
    if (rd_kafka_outq_len(rk) || failed || acked != sent) {
        fprintf(stderr, "newsalert-produce-at: %llu of %llu records acknowledged\n",
                acked, sent);
        goto out;
    }
    fprintf(stderr, "produced %llu\n", acked);
    rc = 0;
out:
    if (conf) {
        rd_kafka_conf_destroy(conf);
    }
    if (rk) {
        rd_kafka_destroy(rk);
    }
    na_kafka_props_cleanup(&props);
    for (size_t i = 0; i < owned_cnt; i++) {
        free(owned[i]);
    }
    return rc;
}
