/*
 * newsalert-producer: parses arguments and runs; the work is in the
 * na_producer library.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cmd_parse.h"
#include "newsalert/cli.h"
#include "newsalert/daemon.h"
#include "newsalert/http.h"
#include "newsalert/log.h"
#include "producer.h"

static const char synopsis[] =
    "  newsalert-producer [--once] [--brokers HOST:PORT[,..]] [--config FILE]\n"
    "                     [--sources FILE] [--state-dir DIR] [-X key=value]..\n"
    "                     [--sources-topic TOPIC --group-id GROUP] [--dry-run]\n"
    "  newsalert-producer sources load FILE --sources-topic TOPIC [--brokers ..]\n"
    "  newsalert-producer parse [--base-url URL] FILE|-\n"
    "\n"
    "Polls the feeds of the sources file, normalises every new item to article/v1\n"
    "and produces it to Kafka (idempotent, acks=all, key = article id).\n"
    "With --sources-topic the feeds are the records of that compacted topic, shared\n"
    "by every instance of --group-id (each polls the partitions Kafka assigns it);\n"
    "`sources load FILE` publishes a sources file to that topic (and removes the\n"
    "sources the file no longer has).\n"
    "SIGTERM/SIGINT: stop fetching, wait for deliveries (flush_timeout), exit 0.\n";

int main(int argc, char **argv) {
    struct na_producer_conf conf;
    struct na_producer_stats stats;
    char errstr[1024];
    int rc = 0;

    const char *load_file = NULL;
    if (argc > 1 && !strcmp(argv[1], "parse")) {
        return na_cmd_parse(argc - 1, argv + 1);
    }
    if (argc > 1 && !strcmp(argv[1], "sources")) {
        if (argc < 4 || strcmp(argv[2], "load") || argv[3][0] == '-') {
            fprintf(stderr,
                    "newsalert-producer: usage: newsalert-producer sources load FILE "
                    "--sources-topic TOPIC [--brokers HOST:PORT] [-X key=value]..\n");
            return 2;
        }
        load_file = argv[3];
        argv[3] = argv[0]; /* the options after FILE, with a program name in front */
        argc -= 3;
        argv += 3;
    }
    memset(&conf, 0, sizeof(conf));
    struct na_cli cli = {
        .prog = "newsalert-producer",
        .synopsis = synopsis,
        .table = na_producer_conf_table,
        .obj = &conf,
        .props = &conf.props,
    };
    switch (na_cli_load(&cli, argc, argv)) {
    case NA_CLI_RUN:
        break;
    case NA_CLI_EXIT_OK:
        rc = 0;
        goto out;
    case NA_CLI_EXIT_FAIL:
        rc = 1;
        goto out;
    case NA_CLI_EXIT_USAGE:
        rc = 2;
        goto out;
    }
    if ((rc = na_daemon_setup("newsalert-producer", conf.log_level, &conf.daemon))) {
        goto out;
    }
    if (na_http_global_init()) {
        fprintf(stderr, "newsalert-producer: libcurl initialisation failed\n");
        rc = 1;
        goto out;
    }
    if (load_file) {
        na_err_t err = na_producer_sources_load(&conf, load_file, errstr, sizeof(errstr));
        if (err) {
            fprintf(stderr, "newsalert-producer: %s\n", errstr);
            rc = err == NA_ERR_USAGE ? 2 : 1;
        }
    } else if (na_producer_run(&conf, na_daemon_running(), &stats, errstr,
                               sizeof(errstr))) {
        fprintf(stderr, "newsalert-producer: %s\n", errstr);
        rc = 1;
    }
    na_http_global_cleanup();
out:
    na_conf_cleanup(na_producer_conf_table, &conf);
    na_kafka_props_cleanup(&conf.props);
    return rc;
}
