/*
 * newsalert-consumer: parses arguments and runs; the work is in the
 * na_consumer library.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_classify.h"
#include "cmd_eval.h"
#include "cmd_replay.h"
#include "consumer.h"
#include "newsalert/cli.h"
#include "newsalert/daemon.h"
#include "newsalert/http.h"
#include "newsalert/log.h"

static const char synopsis[] =
    "  newsalert-consumer [--brokers HOST:PORT[,..]] [--config FILE] [--rules FILE]\n"
    "                     [--webhook URL [--webhook-format FORMAT]] [--print]\n"
    "                     [--exit-eof] [-X key=value]..\n"
    "  newsalert-consumer classify [--rules FILE] [FILE..|-]\n"
    "  newsalert-consumer rules test FILE [--rules FILE]\n"
    "  newsalert-consumer eval --rules FILE [--json] DATA.jsonl\n"
    "  newsalert-consumer stories [--window DUR] [FILE..|-]\n"
    "  newsalert-consumer replay --from X --to Y [...] (see replay --help)\n"
    "\n"
    "Consumes article/v1 records in a consumer group, classifies each by the\n"
    "rules and posts one alert per matching topic to every route that wants it.\n"
    "Offsets are stored only below the lowest article whose alerts are not yet\n"
    "delivered or dead-lettered (at least once, in order per partition).\n"
    "Routes come from the config file's \"routes\" array\n"
    "  [{\"name\", \"url\" | \"url_file\", \"format\", \"topics\": [..], \"min_score\",\n"
    "    \"secret\": \"whsec_...\" | \"secret_file\", \"rate_per_s\", \"burst\",\n"
    "    \"digest_threshold\", \"max_queue\", \"keepalive\", \"max_in_flight\"}]\n"
    "or from --webhook URL (docs/delivery.md, \"Configuration\").\n"
    "FORMAT: json (alert/v1, Standard Webhooks signed) | slack | mattermost | discord |\n"
    "teams | googlechat. Delivered alerts are recorded in the compacted ledger topic\n"
    "(ledger_topic); an alert already recorded for a route is never sent to it again.\n"
    "SIGTERM/SIGINT: finish in-flight alerts (drain_timeout), commit, exit 0.\n";

static int file_key(void *ctx, const char *key, json_t *value, char *errstr,
                    size_t errstr_size) {
    struct na_consumer_conf *conf = ctx;
    if (strcmp(key, "routes")) {
        return 0;
    }
    return na_routes_parse(value, &conf->routes, errstr, errstr_size) ? -1 : 1;
}

/* --check-config refuses what the start would refuse. */
static na_err_t check(void *ctx, char *errstr, size_t errstr_size) {
    return na_consumer_conf_check(ctx, errstr, errstr_size);
}

/* --dump-config runs inside na_cli_load(), before --webhook becomes a
 * route: show it as the route it will be. */
static void dump(void *ctx, json_t *root) {
    struct na_consumer_conf *conf = ctx;
    struct na_routes routes = conf->routes;
    struct na_routes extra = {NULL, 0};
    char errstr[256];
    json_t *arr = na_routes_dump(&routes);
    if (conf->webhook && !na_routes_add_url(&extra, conf->webhook, conf->webhook_format,
                                            errstr, sizeof(errstr))) {
        json_t *more = na_routes_dump(&extra);
        json_array_extend(arr, more);
        json_decref(more);
    }
    na_routes_cleanup(&extra);
    json_object_set_new(root, "routes", arr);
}

int main(int argc, char **argv) {
    struct na_consumer_conf conf;
    struct na_consumer_stats stats;
    char errstr[1024];
    int rc = 0;

    if (argc > 1 && !strcmp(argv[1], "classify")) {
        return na_cmd_classify(argc - 1, argv + 1);
    }
    if (argc > 1 && !strcmp(argv[1], "rules")) {
        return na_cmd_rules(argc - 1, argv + 1);
    }
    if (argc > 1 && !strcmp(argv[1], "eval")) {
        return na_cmd_eval(argc - 1, argv + 1);
    }
    if (argc > 1 && !strcmp(argv[1], "stories")) {
        return na_cmd_stories(argc - 1, argv + 1);
    }
    if (argc > 1 && !strcmp(argv[1], "replay")) {
        return na_cmd_replay(argc - 1, argv + 1);
    }
    memset(&conf, 0, sizeof(conf));
    struct na_cli cli = {
        .prog = "newsalert-consumer",
        .synopsis = synopsis,
        .table = na_consumer_conf_table,
        .obj = &conf,
        .props = &conf.props,
        .file_key = file_key,
        .check = check,
        .dump = dump,
        .ctx = &conf,
    };
    /* Remember the config file: SIGHUP reads its routes again. */
    conf.config_path = getenv("NEWSALERT_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            conf.config_path = argv[i + 1];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            conf.config_path = argv[i] + 9;
        }
    }
    switch (na_cli_load(&cli, argc, argv)) {
    case NA_CLI_RUN:
        break;
    case NA_CLI_EXIT_OK:
        goto out;
    case NA_CLI_EXIT_FAIL:
        rc = 1;
        goto out;
    case NA_CLI_EXIT_USAGE:
        rc = 2;
        goto out;
    }
    if (conf.webhook && na_routes_add_url(&conf.routes, conf.webhook, conf.webhook_format,
                                          errstr, sizeof(errstr))) {
        fprintf(stderr, "newsalert-consumer: %s\n", errstr);
        rc = 1;
        goto out;
    }
    if ((rc = na_daemon_setup("newsalert-consumer", conf.log_level, &conf.daemon))) {
        goto out;
    }
    if (!conf.routes.cnt && !conf.print) {
        na_log(
            NA_LOG_WARN, "consumer", "no_routes",
            "msg=\"no routes: alerts are logged only (see --webhook, routes, --print)\"");
    }
    if (na_http_global_init()) {
        fprintf(stderr, "newsalert-consumer: libcurl initialisation failed\n");
        rc = 1;
        goto out;
    }
    if (na_consumer_run(&conf, na_daemon_running(), stdout, &stats, errstr,
                        sizeof(errstr))) {
        fprintf(stderr, "newsalert-consumer: %s\n", errstr);
        rc = 1;
    }
    na_http_global_cleanup();
out:
    na_conf_cleanup(na_consumer_conf_table, &conf);
    na_kafka_props_cleanup(&conf.props);
    na_routes_cleanup(&conf.routes);
    return rc;
}
