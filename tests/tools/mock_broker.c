/*
 * newsalert-mock-broker: librdkafka's mock cluster in a process of its own,
 * so the demo's producer and consumer (separate processes) can share one
 * embedded broker over TCP. Prints the bootstrap servers on stdout (one
 * line), then runs until SIGTERM/SIGINT.
 *
 *   newsalert-mock-broker [--brokers N] [--partitions N] [--topic NAME]..
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/timeutil.h"
#include "newsalert/util.h"

static volatile sig_atomic_t run = 1;

static void on_signal(int sig) {
    (void)sig;
    run = 0;
}

static void usage(FILE *fp) {
    fprintf(fp, "Usage: newsalert-mock-broker [--brokers N] [--partitions N] "
                "[--topic NAME]...\n"
                "Starts librdkafka's in-process mock cluster, prints its bootstrap\n"
                "servers and runs until SIGTERM or SIGINT.\n"
                "Exit codes: 0 ok, 1 failure, 2 bad usage.\n");
}

int main(int argc, char **argv) {
    long long brokers = 1;
    long long partitions = 3;
    const char *topics[16];
    int topics_cnt = 0;
    char errstr[512];
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mcluster;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--brokers") && i + 1 < argc) {
            if (na_parse_int64(argv[++i], 1, 16, &brokers)) {
                usage(stderr);
                return 2;
            }
        } else if (!strcmp(argv[i], "--partitions") && i + 1 < argc) {
            if (na_parse_int64(argv[++i], 1, 1024, &partitions)) {
                usage(stderr);
                return 2;
            }
        } else if (!strcmp(argv[i], "--topic") && i + 1 < argc && topics_cnt < 16) {
            topics[topics_cnt++] = argv[++i];
        } else {
            usage(stderr);
            return 2;
        }
    }

    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr))) {
        fprintf(stderr, "newsalert-mock-broker: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "newsalert-mock-broker: %s\n", errstr);
        return 1;
    }
    mcluster = rd_kafka_mock_cluster_new(rk, (int)brokers);
    if (!mcluster) {
        fprintf(stderr, "newsalert-mock-broker: cannot create mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    for (int i = 0; i < topics_cnt; i++) {
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(mcluster, topics[i], (int)partitions, 1);
        if (err) {
            fprintf(stderr, "newsalert-mock-broker: topic %s: %s\n", topics[i],
                    rd_kafka_err2str(err));
        }
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mcluster));
    fflush(stdout);
    while (run) {
        na_sleep_ms(100);
    }
    rd_kafka_mock_cluster_destroy(mcluster);
    rd_kafka_destroy(rk);
    return 0;
}
