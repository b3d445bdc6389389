/**
 * @file cli.h
 * @brief The daemons' shared command line: defaults, --config FILE,
 *        NEWSALERT_* environment, then flags (flag > env > file > default),
 *        `-X key=value` and the config file's "kafka" object for librdkafka,
 *        --help, --version, --dump-config, --check-config.
 */
#ifndef NEWSALERT_CLI_H
#define NEWSALERT_CLI_H

#include <jansson.h>
#include <stdio.h>

#include "newsalert/config.h"
#include "newsalert/kafka.h"

/** What main() should do after na_cli_load(). */
enum na_cli_action {
    NA_CLI_RUN = 0,
    NA_CLI_EXIT_OK,   /**< --help, --version, --dump-config, --check-config done */
    NA_CLI_EXIT_FAIL, /**< bad configuration: exit 1 (message printed) */
    NA_CLI_EXIT_USAGE /**< bad usage: exit 2 (message printed) */
};

struct na_cli {
    const char *prog;     /**< "newsalert-producer" */
    const char *synopsis; /**< usage lines printed by --help */
    const struct na_conf_entry *table;
    void *obj;                    /**< the config struct the table describes */
    struct na_kafka_props *props; /**< receives "kafka" and -X */
    /**
     * Optional: a top-level config-file key that the table does not know
     * ("routes"). @returns 1 if handled, 0 if unknown, -1 on error (errstr).
     */
    int (*file_key)(void *ctx, const char *key, json_t *value, char *errstr,
                    size_t errstr_size);
    /**
     * Optional: a flag the table does not know. *@p used is set to the number
     * of argv entries consumed after the flag. @returns 1 handled, 0 unknown,
     * -1 on error (errstr).
     */
    int (*flag)(void *ctx, const char *name, const char *value, int *used, char *errstr,
                size_t errstr_size);
    /** Optional: extra text for --help (options of the callbacks). */
    const char *extra_help;
    /**
     * Optional: checks across keys that the table cannot make (run for a
     * start, --check-config and --dump-config alike, after the table's
     * own). @returns nonzero to refuse the configuration (errstr; exit 1).
     */
    na_err_t (*check)(void *ctx, char *errstr, size_t errstr_size);
    /** Optional: add members to the --dump-config output. */
    void (*dump)(void *ctx, json_t *root);
    void *ctx;
};

/**
 * @brief Resolve the configuration from defaults, file, environment and
 *        @p argv (argv[0] is skipped). Prints diagnostics to stderr as
 *        "<prog>: <problem>" and --help/--version/--dump-config to stdout.
 */
enum na_cli_action na_cli_load(const struct na_cli *cli, int argc, char **argv);

#endif
